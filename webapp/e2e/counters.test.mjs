// The peers' counters in the dashboard across a server restart (issue #18):
// a real `drago server -dev` and two real `drago agent`s (wireguard-go in
// two network namespaces on a bridge), Debian's chromium on the host page.
// The server is stopped and started again on the same data dir and address:
// the agents' whole reports bring the counters back to the API within one
// heartbeat, and the page shows them at its next refresh. The counter
// history is back from the server's data dir, sparklines included, on the host
// page and for the mesh's implicit connection (docs/telemetry.md).
//
// Needs root (network namespaces, TUN); make webapp-e2e runs it.
//   make webapp && cd webapp && node --test e2e/counters.test.mjs

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until, dragoBinary, startServer, stopServer, launchBrowser, freePort, repo } from './harness.mjs';

const HEARTBEAT_S = 10;
const PAGE_POLL_S = 15; // the host page's refresh (pages/host.tsx)
// Root runs it; DRAGO_PRIVILEGED_TESTS=1 makes it fail, not skip, without root.
const privileged = process.getuid?.() === 0 || process.env.DRAGO_PRIVILEGED_TESTS === '1';
const shots = join(repo, 'test-output', 'screenshots');

const id = randomBytes(2).toString('hex');
const bridge = `dgt${id}br`;
const nets = { a: `dgt-${id}-a`, b: `dgt-${id}-b` };
const addrs = { a: '10.231.7.2', b: '10.231.7.3' };
const serverIP = '10.231.7.1';

let tmp;
let bin;
let context;
const agents = [];
let server;

const ip = (...args) => execFileSync('ip', args, { stdio: 'pipe' });

before(async () => {
  if (!privileged) return;
  tmp = mkdtempSync(join(tmpdir(), 'drago-counters-'));
  mkdirSync(shots, { recursive: true });
  bin = dragoBinary(tmp);
  ip('link', 'add', bridge, 'type', 'bridge');
  ip('addr', 'add', `${serverIP}/24`, 'dev', bridge);
  ip('link', 'set', bridge, 'up');
  for (const [h, ns] of Object.entries(nets)) {
    ip('netns', 'add', ns);
    ip('link', 'add', `dgt${id}${h}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('link', 'set', `dgt${id}${h}`, 'master', bridge, 'up');
    ip('-n', ns, 'addr', 'add', `${addrs[h]}/24`, 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  }
  context = await launchBrowser(join(tmp, 'profile'));
});

after(async () => {
  for (const a of agents) a.kill('SIGTERM');
  await stopServer(server?.proc);
  await context?.close().catch(() => {});
  for (const ns of Object.values(nets)) {
    try {
      ip('netns', 'del', ns);
    } catch {}
  }
  try {
    ip('link', 'del', bridge);
  } catch {}
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** startAgent runs `drago agent` for host h in its namespace, with a private /run/wireguard. */
function startAgent(h, serverURL, join) {
  const script = 'mkdir -p /run/wireguard && mount -t tmpfs tmpfs /run/wireguard && exec "$0" "$@"';
  const p = spawn('ip', ['netns', 'exec', nets[h], 'unshare', '-m', '--propagation', 'private', 'sh', '-c', script, bin, 'agent',
    '-server', serverURL, '-join', join, '-name', h, '-data-dir', join_(tmp, `agent-${h}`), '-heartbeat-interval', `${HEARTBEAT_S}s`, '-log-level', 'debug'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  p.out = () => out;
  agents.push(p);
  return p;
}
const join_ = join;

test('the host page shows the counters again within a heartbeat of a server restart', { skip: !privileged && 'needs root: network namespaces and TUN' }, async () => {
  const listen = `${serverIP}:${await freePort()}`;
  const dataDir = join(tmp, 'server');
  const logs = () => `\nserver:\n${server?.out() ?? ''}\n${agents.map((a, k) => `agent ${k}:\n${a.out().slice(-3000)}`).join('\n')}`;
  server = await startServer(bin, dataDir, [], listen);
  const { base, token } = server;
  const api = async (method, path, body) => {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const net = await api('POST', '/networks', { name: 'ctr', ipv4_range: '10.77.0.0/24', topology: 'mesh', persistent_keepalive: 5 });
  assert.equal(net.status, 201, JSON.stringify(net.body));
  const jt = await api('POST', '/join-tokens', { networks: [net.body.id], max_uses: 2 });
  assert.equal(jt.status, 201, JSON.stringify(jt.body));
  startAgent('a', base, jt.body.secret);
  startAgent('b', base, jt.body.secret);

  /** counters answers host a's peer's rx+tx when it has a handshake, else 0. */
  const counters = async () => {
    const r = await api('GET', '/hosts/a/status');
    const p = r.body?.interfaces?.[0]?.peers?.[0];
    return p?.last_handshake && p.rx_bytes > 0 && p.tx_bytes > 0 ? p.rx_bytes + p.tx_bytes : 0;
  };
  await until('a handshake and traffic between the agents', counters, { ms: 90000, every: 500, detail: logs });

  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(30000);
  await page.goto(`${base}/ui/`);
  await page.getByLabel('Management token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  await page.goto(`${base}/ui/hosts/a`);
  const shown = async () => {
    const t = (await page.getByTestId('host-counters').textContent({ timeout: 1000 }).catch(() => '')) ?? '';
    return /[1-9]/.test(t) && t;
  };
  await until('the host page to show the counters', shown, { ms: 30000, detail: logs });
  // Two minutes of history (a point a minute), for the sparklines to draw.
  const histBefore = await until(
    'two points of history',
    async () => {
      const h = await api('GET', '/hosts/a/history');
      return h.body?.points?.length >= 2 && h.body.peers?.[0]?.points?.length >= 2 && h.body;
    },
    { ms: 90000, every: 1000, detail: logs },
  );

  // Restart the server on the same address and data.
  await stopServer(server.proc);
  await new Promise((r) => setTimeout(r, 2000));
  server = await startServer(bin, dataDir, [], listen);
  const back = Date.now();
  assert.equal(await counters(), 0, 'a restarted server holds no counters before the agents report');
  await until('the counters in the API after the restart', counters, { ms: (HEARTBEAT_S + 5) * 1000, every: 200, detail: logs });
  const apiSeconds = (Date.now() - back) / 1000;
  assert.ok(apiSeconds <= HEARTBEAT_S + 2, `the counters came back to the API after ${apiSeconds}s, over one heartbeat (${HEARTBEAT_S}s)`);

  await page.reload();
  const text = await until('the host page to show the counters after the restart', shown, { ms: (HEARTBEAT_S + PAGE_POLL_S + 5) * 1000, detail: logs });
  const pageSeconds = (Date.now() - back) / 1000;
  await page.screenshot({ path: join(shots, 'counters-after-restart.png') });
  // The history is back from the server's data dir: the points from before
  // the restart, and the sparklines drawn from them.
  const hist = await api('GET', '/hosts/a/history');
  assert.equal(hist.status, 200);
  const first = histBefore.points[0];
  assert.ok(
    hist.body.points.some((p) => p.time === first.time && p.rx_bytes === first.rx_bytes),
    `history after the restart ${JSON.stringify(hist.body.points)} lacks the point from before ${JSON.stringify(first)}`,
  );
  const tag = (testid) => page.getByTestId(testid).first().evaluate((e) => e.tagName.toLowerCase());
  assert.equal(await tag('host-handshake'), 'svg', 'the host page draws the handshake sparkline after the restart');
  // The mesh's implicit connection has its sparklines too (by its interfaces).
  await page.goto(`${base}/ui/networks/ctr`);
  const sparks = page.getByTestId('connection-sparks').first();
  await sparks.locator('svg').first().waitFor({ timeout: 15000 });
  console.log(`counters back: API ${apiSeconds.toFixed(1)}s, page ${pageSeconds.toFixed(1)}s after the server answered (heartbeat ${HEARTBEAT_S}s); shown "${text}"`);
});
