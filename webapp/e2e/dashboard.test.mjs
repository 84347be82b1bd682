// Browser tests of the dashboard: Debian's chromium, driven by playwright-core,
// against a real `drago server -dev` built from this repository with the
// dashboard embedded. Agents are simulated through the agent API.
//
// Run with `make webapp-e2e` (it builds the dashboard first). DRAGO_BIN=path
// uses an already built drago binary instead of building one.
// Screenshots go to test-output/screenshots/ at the repository root.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repo, until as untilDefault, dragoBinary, startServer, stopServer, launchBrowser } from './harness.mjs';

const shots = join(repo, 'test-output', 'screenshots');

let tmp;
let server;
let base;
let rootToken;
let context;
let page;
const consoleErrors = [];

/** until waits up to 20 s and shows the server's output when it gives up. */
const until = (what, fn) => untilDefault(what, fn, { detail: () => `\nserver output:\n${server?.out() ?? ''}` });

/** api calls the REST API as a test client would (never through the page). */
async function api(method, path, { token = rootToken, body } = {}) {
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = text;
  }
  return { status: res.status, body: json, headers: res.headers };
}

function wgKeyPair() {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const b64 = (u) => Buffer.from(u, 'base64url').toString('base64');
  return { privateKey: b64(privateKey.export({ format: 'jwk' }).d), publicKey: b64(publicKey.export({ format: 'jwk' }).x) };
}

/** publicOf derives the X25519 public key of a base64 WireGuard private key. */
function publicOf(priv) {
  const d = Buffer.from(priv, 'base64').toString('base64url');
  // A JWK needs x as well; derive it through a PKCS#8 DER instead.
  const der = Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), Buffer.from(d, 'base64url')]);
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  return Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x, 'base64url').toString('base64');
}

/** Agent simulates a host's agent through the agent API. */
class Agent {
  constructor(name) {
    this.name = name;
    this.keys = wgKeyPair();
  }
  async register(joinSecret) {
    const r = await api('POST', '/agent/register', { token: joinSecret, body: { name: this.name, os: 'linux', arch: 'amd64', agent_version: '0.9.0-e2e' } });
    assert.equal(r.status, 201, `register ${this.name}: ${JSON.stringify(r.body)}`);
    this.id = r.body.host_id;
    this.credential = r.body.credential;
    const cfg = await api('GET', '/agent/config', { token: this.credential });
    assert.equal(cfg.status, 200, JSON.stringify(cfg.body));
    this.desired = cfg.body;
    return this;
  }
  async report(peers = []) {
    const body = {
      backend: 'userspace',
      os: 'linux',
      arch: 'amd64',
      agent_version: '0.9.0-e2e',
      advertise_address: `192.0.2.${10 + Number(this.name.replace(/\D/g, '') || 0)}`,
      applied_index: this.desired.index,
      interfaces: this.desired.interfaces.map((i) => ({ id: i.id, public_key: this.keys.publicKey, listen_port: i.listen_port || 51820, peers })),
    };
    const r = await api('PUT', '/agent/status', { token: this.credential, body });
    assert.equal(r.status, 204, `status of ${this.name}: ${JSON.stringify(r.body)}`);
  }
  /** refresh reads the desired state again, after interfaces were added to the host. */
  async refresh() {
    const cfg = await api('GET', '/agent/config', { token: this.credential });
    assert.equal(cfg.status, 200, JSON.stringify(cfg.body));
    this.desired = cfg.body;
  }
}

/** serverConfig answers the server's wg-quick text of a device with privateKey in place of its placeholder. */
async function serverConfig(id, privateKey) {
  const r = await fetch(`${base}/api/v1/interfaces/${id}/config`, { headers: { Authorization: `Bearer ${rootToken}` } });
  assert.equal(r.status, 200);
  const text = await r.text();
  assert.match(text, /^PrivateKey = <[^>\n]+>$/m, 'the server leaves a placeholder for the private key');
  return text.replace(/^PrivateKey = <[^>\n]+>$/m, `PrivateKey = ${privateKey}`);
}

/** closed waits for a dialog to close; if it stays, the error it shows is the failure. */
async function closed(dialog) {
  try {
    await dialog.waitFor({ state: 'detached' });
  } catch (e) {
    const text = await dialog.textContent().catch(() => '');
    await page.screenshot({ path: join(shots, 'failure.png') }).catch(() => {});
    throw new Error(`the dialog stayed open: ${text}`);
  }
}

async function shot(name, { fullPage = false } = {}) {
  // Let toasts (4 s) go and transitions settle.
  await page.locator('.toast').first().waitFor({ state: 'detached', timeout: 6000 }).catch(() => {});
  await page.waitForTimeout(150);
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage });
}

async function go(path) {
  await page.getByRole('link', { name: path, exact: true }).first().click();
}

before(async () => {
  mkdirSync(shots, { recursive: true });
  tmp = mkdtempSync(join(tmpdir(), 'drago-webapp-e2e-'));
  server = await startServer(dragoBinary(tmp), join(tmp, 'data'), ['-heartbeat-grace', '10m']);
  ({ base, token: rootToken } = server);
  const ui = await fetch(`${base}/ui/`);
  const uiBody = await ui.text();
  if (ui.status !== 200 || !uiBody.includes('<div id="app">')) {
    throw new Error(
      `drago does not serve the built dashboard at /ui/ (status ${ui.status}: ${uiBody.slice(0, 160)}). ` +
        'The server must mount webapp.Handler() (cmd/drago/dashboard.go), and `make webapp` must run before go build.',
    );
  }
  context = await launchBrowser(join(tmp, 'profile'));
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(30000); // CI machines are small and may be busy
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
});

after(async () => {
  await context?.close().catch(() => {});
  await stopServer(server?.proc);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('dashboard against a real drago server', () => {
  let joinSecret;
  let joinSecret2;
  const agents = [new Agent('h1'), new Agent('h2'), new Agent('h3')];

  test('serves the app with strict security headers and SPA fallback', async () => {
    const res = await fetch(`${base}/ui/`);
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /<div id="app">/, 'the built dashboard is embedded (run make webapp before building drago)');
    assert.doesNotMatch(html, /<script>/);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    const asset = /src="(\/ui\/assets\/[^"]+\.js)"/.exec(html)[1];
    const a = await fetch(base + asset);
    assert.equal(a.status, 200);
    assert.equal(a.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    const deep = await fetch(`${base}/ui/networks/office`);
    assert.equal(deep.status, 200);
    assert.match(await deep.text(), /<div id="app">/);
    assert.equal((await fetch(`${base}/ui/assets/missing-000.js`)).status, 404);
  });

  test('signs in with the root token, refusing a wrong one next to the field', async () => {
    await page.goto(`${base}/ui/`);
    await page.getByLabel('Management token').fill('drago_not-a-real-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const err = page.locator('[data-error-for="token"]');
    await err.waitFor();
    assert.match(await err.textContent(), /not accepted/);
    await shot('01-signin-error');
    await page.getByLabel('Management token').fill(rootToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.locator('[data-testid="live"].live-live').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('drago.token')), rootToken);
    assert.ok(!page.url().includes(rootToken), 'the token never goes in a URL');
    await shot('02-overview-empty');
  });

  test('creates a network', async () => {
    await go('Networks');
    await page.getByText('No networks yet').waitFor();
    await page.getByRole('button', { name: 'New network' }).click();
    const form = page.getByTestId('network-form');
    await form.locator('input[name=name]').fill('office');
    await form.locator('input[name=ipv4_range]').fill('10.10.0.0/24');
    await form.locator('input[name=ipv6_range]').fill('fd10:10::/64');
    await form.getByRole('radio', { name: /Mesh/ }).click();
    await shot('03-network-form');
    await form.getByRole('button', { name: 'Create network' }).click();
    await page.getByRole('heading', { name: /office/ }).waitFor();
    assert.match(page.url(), /\/ui\/networks\/office$/);
    const n = await api('GET', '/networks/office');
    assert.equal(n.status, 200);
    assert.equal(n.body.topology, 'mesh');
    assert.equal(n.body.ipv4_range, '10.10.0.0/24');
  });

  test("shows the API's message next to the field it names", async () => {
    await go('Networks');
    await page.getByTestId('networks-table').waitFor();
    await page.getByRole('button', { name: 'New network' }).click();
    const form = page.getByTestId('network-form');
    await form.locator('input[name=name]').fill('lab');
    await form.locator('input[name=ipv4_range]').fill('10.20.0.0/33');
    await form.getByRole('button', { name: 'Create network' }).click();
    // What the server itself answers for this body:
    const direct = await api('POST', '/networks', { body: { name: 'lab', ipv4_range: '10.20.0.0/33', topology: 'mesh' } });
    assert.equal(direct.status, 400);
    const field = direct.body.error.field;
    assert.ok(field, `the API names the field: ${JSON.stringify(direct.body)}`);
    const shown = form.locator(`[data-error-for="${field}"]`);
    await shown.waitFor();
    assert.equal((await shown.textContent()).trim(), direct.body.error.message);
    // The message sits inside that field's block, under its input.
    assert.equal(await form.locator(`[data-field="${field}"] [data-error-for="${field}"]`).count(), 1);
    await shot('04-network-form-error');
    await form.getByRole('button', { name: 'Cancel' }).click();
  });

  test('creates a join token and shows its secret once, with the agent command', async () => {
    await go('Join tokens');
    await page.getByText('No join tokens').waitFor();
    await page.getByRole('button', { name: 'New join token' }).click();
    const form = page.getByTestId('join-token-form');
    await form.locator('input[name=name]').fill('edge-servers');
    await form.locator('input[name=max_uses]').fill('5');
    await form.getByRole('checkbox', { name: /office/ }).check();
    await form.getByRole('button', { name: 'Create token' }).click();
    const cmd = page.getByTestId('join-command');
    await cmd.waitFor();
    const text = (await cmd.textContent()).trim();
    const m = new RegExp(`^drago agent -server ${base.replace(/[.]/g, '\\.')} -join (\\S+)$`).exec(text);
    assert.ok(m, `command: ${text}`);
    joinSecret = m[1];
    await shot('05-join-token-secret');
    await page.getByRole('button', { name: 'Done' }).click();
    await page.getByTestId('join-tokens-table').waitFor();
    assert.ok(!(await page.content()).includes(joinSecret), 'the secret is shown only once');
    const list = await api('GET', '/join-tokens');
    assert.equal(list.body.items.length, 1);
    assert.equal(list.body.items[0].secret ?? '', '');
    assert.equal(list.body.items[0].max_uses, 5);
    const second = await api('POST', '/join-tokens', { body: { name: 'bulk' } });
    assert.equal(second.status, 201, JSON.stringify(second.body));
    joinSecret2 = second.body.secret;
    await page.getByText('bulk').waitFor(); // live: created through the API, shown without reload
    await shot('06-join-tokens');
  });

  test('shows a host appear live when an agent registers and reports', async () => {
    await go('Hosts');
    await page.getByText('No hosts yet').waitFor();
    const [h1, h2, h3] = agents;
    await h1.register(joinSecret);
    // No reload: the long-poll on /events brings it in.
    const row = page.locator('.vspacer .vrow', { hasText: 'h1' });
    await row.waitFor();
    await h1.report();
    await row.locator('.badge', { hasText: 'ready' }).waitFor();
    await h2.register(joinSecret);
    await h3.register(joinSecret);
    await h2.report();
    await h3.report();
    const now = Date.now();
    const hs = (ago) => new Date(now - ago * 1000).toISOString();
    await h1.report([
      { public_key: h2.keys.publicKey, endpoint: '192.0.2.12:51820', last_handshake: hs(20), rx_bytes: 1843200, tx_bytes: 912345 },
      { public_key: h3.keys.publicKey, endpoint: '192.0.2.13:51820', last_handshake: hs(900), rx_bytes: 20480, tx_bytes: 4096 },
    ]);
    await h2.report([{ public_key: h1.keys.publicKey, endpoint: '192.0.2.11:51820', last_handshake: hs(20), rx_bytes: 912345, tx_bytes: 1843200 }]);
    await page.locator('.vspacer .vrow', { hasText: 'h3' }).locator('.badge', { hasText: 'ready' }).waitFor();
    assert.equal((await page.getByTestId('hosts-total').textContent()).trim(), '3 hosts');
    await until('key ages', async () => (await page.locator('[data-keyage]').allTextContents()).every((t) => t.trim() && t.trim() !== '—'));
    const rowText = await row.textContent();
    assert.match(rowText, /linux\/amd64/);
    assert.match(rowText, /0\.9\.0-e2e/);
    assert.match(rowText, /userspace/);
    await shot('07-hosts');
  });

  test("shows a host's interfaces and peers with handshake and transfer", async () => {
    await page.locator('.vspacer .vrow', { hasText: 'h1' }).getByRole('link', { name: 'h1' }).click();
    await page.getByRole('heading', { name: /h1/ }).waitFor();
    const peers = page.getByTestId('peers');
    await peers.waitFor();
    const h2row = peers.locator('tr', { hasText: 'h2' });
    await h2row.waitFor();
    assert.match(await h2row.textContent(), /1\.8 MiB/);
    assert.equal(await h2row.locator('.hs-fresh').count(), 1);
    assert.equal(await peers.locator('tr', { hasText: 'h3' }).locator('.hs-stale').count(), 1);
    await shot('08-host');
  });

  test('draws the topology with edges coloured by handshake freshness', async () => {
    await go('Networks');
    await page.getByTestId('networks-table').getByRole('link', { name: 'office' }).click();
    const svg = page.getByTestId('topology-svg');
    await svg.waitFor();
    await until('three nodes', async () => (await svg.locator('.node').count()) === 3);
    await until('a fresh and a stale edge', async () =>
      (await svg.locator('line[data-freshness="fresh"]').count()) >= 1 && (await svg.locator('line[data-freshness="stale"]').count()) >= 1,
    );
    assert.equal(await svg.locator('line').count(), 3, 'mesh of three: three edges');
    assert.equal(await svg.locator('line[data-freshness="never"]').count(), 1, 'h2-h3 never shook hands');
    await shot('09-network-topology');
  });

  test('adds a device: keys made in the browser, config and QR code shown', async () => {
    await go('Devices');
    await page.getByText('No devices').waitFor();
    await page.getByRole('button', { name: 'Add device' }).click();
    const form = page.getByTestId('device-form');
    await form.locator('input[name=name]').fill('alice-phone');
    const posted = [];
    page.on('request', (r) => r.method() !== 'GET' && posted.push(r.postData() ?? ''));
    await form.getByRole('button', { name: 'Generate keys and add' }).click();
    const cfg = page.getByTestId('device-config-text');
    await cfg.waitFor();
    const text = await cfg.textContent();
    const priv = /^PrivateKey = (\S+)$/m.exec(text)?.[1];
    assert.ok(priv, text);
    const devs = await api('GET', '/devices?network=office');
    assert.equal(devs.body.items.length, 1);
    assert.equal(devs.body.items[0].public_key, publicOf(priv), 'the server holds the public key of the shown private key');
    assert.ok(posted.every((b) => !b.includes(priv)), 'the private key never left the browser');
    assert.ok(posted.some((b) => b.includes(devs.body.items[0].public_key)));
    assert.equal(text, await serverConfig(devs.body.items[0].id, priv), "the server's config with the browser's private key");
    assert.equal((text.match(/^\[Peer\]$/gm) ?? []).length, 3, 'one peer per host with a key');
    assert.match(text, new RegExp(`PublicKey = ${agents[0].keys.publicKey.replace(/[+/]/g, '\\$&')}`));
    const qr = page.getByTestId('qr');
    await qr.waitFor();
    assert.match((await qr.locator('path').getAttribute('d')) ?? '', /^M\d/);
    await shot('10-device-config');
    await page.getByRole('button', { name: 'Done' }).click();
    await page.getByTestId('devices-table').getByText('alice-phone').waitFor();
    await shot('11-devices');
  });

  test('the overview counts everything and lists recent changes', async () => {
    await go('Overview');
    await until('counts', async () => /^Hosts ready3of/.test(await page.getByTestId('stat-ready').textContent()));
    assert.match(await page.getByTestId('stat-networks').textContent(), /1/);
    assert.match(await page.getByTestId('stat-devices').textContent(), /1/);
    const recent = page.getByTestId('recent-changes');
    await recent.getByText('alice-phone').first().waitFor();
    await shot('12-overview');
  });

  test('the overview shows the cluster: a bolt server is a cluster of one that leads', async () => {
    await go('Overview');
    const card = page.getByTestId('cluster');
    const rows = card.locator('[data-testid="cluster-servers"] tbody tr');
    await until('the cluster table', async () => (await rows.count()) === 1);
    const api = await (await fetch(`${base}/api/v1/cluster`, { headers: { authorization: `Bearer ${rootToken}` } })).json();
    const row = await rows.first().textContent();
    assert.ok(row.includes(api.server) && row.includes('(this one)') && row.includes('leader'), row);
    assert.ok(row.includes(new URL(base).host), `the row names the server's address: ${row}`);
    assert.match(await card.textContent(), /Store: bolt \(one server\)/);
    assert.match(await card.textContent(), /healthy/);
  });

  test('the network page shows the device in the topology', async () => {
    await page.goto(`${base}/ui/networks/office`);
    const svg = page.getByTestId('topology-svg');
    await svg.waitFor();
    await until('four nodes', async () => (await svg.locator('.node').count()) === 4);
    assert.equal(await svg.locator('.node-device').count(), 1);
    await page.getByTestId('interfaces').getByText('alice-phone').waitFor();
    await shot('13-network-with-device', { fullPage: true });
  });

  test("a host peered with a device shows why its key cannot rotate, and the refusal's reason", async () => {
    await page.goto(`${base}/ui/hosts/h1`);
    const blocked = page.getByTestId('rotation-blocked');
    await blocked.waitFor();
    assert.match(await blocked.textContent(), /alice-phone/);
    await page.getByRole('button', { name: 'Rotate keys' }).click();
    const toast = page.locator('.toast', { hasText: 'alice-phone' });
    await toast.waitFor();
    assert.match(await toast.textContent(), /delete those devices/);
    const h = await api('GET', '/hosts/h1');
    assert.equal(h.body.rotate_keys, undefined, 'the refused rotation was not requested');
  });

  test("a device of a hub network gets the server's config: the hub as its only peer", async () => {
    const net = await api('POST', '/networks', { body: { name: 'hubs', ipv4_range: '10.40.0.0/24', topology: 'hub' } });
    assert.equal(net.status, 201, JSON.stringify(net.body));
    const ifaces = {};
    for (const a of agents) {
      const r = await api('POST', '/interfaces', { body: { host_id: a.id, network_id: net.body.id, name: 'wg-hubs' } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      ifaces[a.name] = r.body;
      await a.refresh();
      await a.report();
    }
    const hub = await api('PATCH', `/networks/${net.body.id}`, { body: { hub_interface_id: ifaces.h1.id } });
    assert.equal(hub.status, 200, JSON.stringify(hub.body));

    await go('Devices');
    await page.getByTestId('devices-table').waitFor();
    await page.getByRole('button', { name: 'Add device' }).click();
    const form = page.getByTestId('device-form');
    await form.locator('select[name=network]').selectOption({ label: 'hubs (10.40.0.0/24)' });
    await form.locator('input[name=name]').fill('bob-laptop');
    await form.getByRole('button', { name: 'Generate keys and add' }).click();
    const cfg = page.getByTestId('device-config-text');
    await cfg.waitFor();
    const text = await cfg.textContent();
    const priv = /^PrivateKey = (\S+)$/m.exec(text)?.[1];
    assert.ok(priv, text);
    const devs = await api('GET', `/devices?network=${net.body.id}`);
    assert.equal(devs.body.items.length, 1);
    const dev = devs.body.items[0];
    assert.equal(dev.public_key, publicOf(priv));
    assert.equal(text, await serverConfig(dev.id, priv), "the dashboard shows the server's config, with only the private key put in");
    const peers = [...text.matchAll(/^PublicKey = (\S+)$/gm)].map((m) => m[1]);
    assert.deepEqual(peers, [agents[0].keys.publicKey], 'in a hub network a device peers with the hub only');
    assert.match(text, /^AllowedIPs = 10\.40\.0\.0\/24$/m, 'through the hub the device reaches the whole network');
    await shot('13b-hub-device-config');
    await page.getByRole('button', { name: 'Done' }).click();
    await page.getByTestId('devices-table').getByText('bob-laptop').waitFor();

    assert.equal((await api('DELETE', `/devices/${dev.id}`)).status, 204);
    assert.equal((await api('DELETE', `/networks/${net.body.id}`)).status, 204);
    for (const a of agents) await a.refresh();
  });

  test('adds interfaces and an explicit connection, edits and deletes it', async () => {
    const made = await api('POST', '/networks', { body: { name: 'lab', ipv4_range: '10.30.0.0/24', topology: 'none' } });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    await page.goto(`${base}/ui/networks/lab`);
    await page.getByRole('heading', { name: /lab/ }).waitFor();
    for (const h of ['h1', 'h2']) {
      await page.getByRole('button', { name: 'Add interface' }).click();
      const form = page.getByTestId('interface-form');
      await form.locator('input[name=host]').fill(h);
      await form.locator('input[name=name]').fill('wg-lab');
      await form.getByRole('button', { name: 'Add interface' }).click();
      await closed(form);
    }
    const ifaces = page.getByTestId('interfaces');
    await ifaces.locator('tr', { hasText: /^h2\/wg-lab/ }).waitFor();
    // A host that does not exist is refused next to the host field.
    await page.getByRole('button', { name: 'Add interface' }).click();
    let form = page.getByTestId('interface-form');
    await form.locator('input[name=host]').fill('nope');
    await form.getByRole('button', { name: 'Add interface' }).click();
    assert.match(await form.locator('[data-error-for="host_id"]').textContent(), /No host named/);
    await form.getByRole('button', { name: 'Cancel' }).click();

    await page.getByRole('button', { name: 'Add connection' }).click();
    form = page.getByTestId('connection-form');
    const opts = await form.locator('select[name="a.interface_id"] option').allTextContents();
    assert.equal(opts.length, 3, opts.join(' | '));
    await form.locator('select[name="a.interface_id"]').selectOption({ index: 1 });
    await form.locator('select[name="b.interface_id"]').selectOption({ index: 2 });
    await form.locator('input[name="a.allowed_ips"]').fill('not-an-ip');
    await form.getByRole('button', { name: 'Add connection' }).click();
    const direct = await api('POST', '/connections', {
      body: { network_id: made.body.id, a: { interface_id: 'x', allowed_ips: ['not-an-ip'] }, b: { interface_id: 'y' } },
    });
    assert.equal(direct.status >= 400, true);
    await form.locator('.field-error, .alert-error').first().waitFor();
    await form.locator('input[name="a.allowed_ips"]').fill('10.30.0.0/24, 192.168.50.0/24');
    await form.locator('input[name="b.endpoint"]').fill('198.51.100.20:51820');
    await form.locator('input[name=persistent_keepalive]').fill('25');
    await form.getByRole('button', { name: 'Add connection' }).click();
    await closed(form);
    const conns = page.getByTestId('connections');
    const row = conns.locator('tbody tr').first();
    await row.getByText('192.168.50.0/24', { exact: false }).waitFor();
    let list = await api('GET', `/connections?network=${made.body.id}`);
    assert.equal(list.body.items.length, 1);
    assert.deepEqual(list.body.items[0].a.allowed_ips, ['10.30.0.0/24', '192.168.50.0/24']);
    assert.equal(list.body.items[0].b.endpoint, '198.51.100.20:51820');
    assert.equal(list.body.items[0].persistent_keepalive, 25);
    const svg = page.getByTestId('topology-svg');
    await until('the connection in the picture', async () => (await svg.locator('line').count()) === 1);
    await shot('14-network-connections', { fullPage: true });

    await row.getByRole('button', { name: 'Edit connection' }).click();
    form = page.getByTestId('connection-form');
    await form.locator('input[name=persistent_keepalive]').fill('15');
    await form.locator('input[name="b.endpoint"]').fill('');
    await form.getByRole('button', { name: 'Save changes' }).click();
    await closed(form);
    await row.getByText('15s').waitFor();
    list = await api('GET', `/connections?network=${made.body.id}`);
    assert.equal(list.body.items[0].persistent_keepalive, 15);
    assert.equal(list.body.items[0].b.endpoint ?? '', '');

    await row.getByRole('button', { name: 'Delete connection' }).click();
    await page.getByTestId('confirm').getByRole('button', { name: 'Delete' }).click();
    await conns.getByText('No connections', { exact: true }).waitFor();
    assert.equal((await api('GET', `/connections?network=${made.body.id}`)).body.total, 0);

    // Edit an interface's addresses, then delete it.
    const h2row = ifaces.locator('tr', { hasText: /^h2\/wg-lab/ });
    await h2row.getByRole('button', { name: /Edit/ }).click();
    form = page.getByTestId('interface-form');
    await form.locator('input[name=addresses]').fill('10.30.0.77/24');
    await form.getByRole('button', { name: 'Save changes' }).click();
    await closed(form);
    await h2row.getByText('10.30.0.77/24').waitFor();
    await h2row.getByRole('button', { name: /Delete/ }).click();
    await page.getByTestId('confirm').getByRole('button', { name: 'Delete' }).click();
    await ifaces.locator('tr', { hasText: /^h2\/wg-lab/ }).waitFor({ state: 'detached' });

    // Edit the network, then delete it after confirming.
    await page.getByRole('button', { name: 'Edit', exact: true }).click();
    form = page.getByTestId('network-form');
    await form.getByText('Advanced defaults').click();
    await form.locator('input[name=persistent_keepalive]').fill('30');
    await form.getByRole('button', { name: 'Save changes' }).click();
    await closed(form);
    assert.equal((await api('GET', '/networks/lab')).body.persistent_keepalive, 30);
    await page.getByText('30s').first().waitFor();
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    const confirm = page.getByTestId('confirm');
    await confirm.getByText(/cannot be undone/).waitFor();
    await confirm.getByRole('button', { name: 'Delete network' }).click();
    await page.getByRole('heading', { name: 'Networks', exact: true }).waitFor();
    assert.equal((await api('GET', '/networks/lab')).status, 404);
  });

  test('pages and filters hosts on the server, rendering only visible rows', async () => {
    const MORE = 260;
    for (let i = 1; i <= MORE; i++) {
      const r = await api('POST', '/agent/register', { token: joinSecret2, body: { name: `edge-${String(i).padStart(4, '0')}`, os: i % 3 ? 'linux' : 'windows', arch: i % 2 ? 'amd64' : 'arm64' } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
    const asked = [];
    const onReq = (r) => r.url().includes('/api/v1/hosts?') && asked.push(new URL(r.url()).searchParams);
    page.on('request', onReq);
    await go('Hosts');
    const total = page.getByTestId('hosts-total');
    await until('the total', async () => (await total.textContent()).trim() === `${MORE + 3} hosts`);
    const rendered = await page.locator('.vspacer .vrow').count();
    assert.ok(rendered < 60, `rendered ${rendered} rows of ${MORE + 3}`);
    // Scroll to the end: the last page is fetched, not the ones in between.
    await page.locator('.vbody').evaluate((el) => (el.scrollTop = el.scrollHeight));
    await page.locator('.vspacer .vrow', { hasText: 'h3' }).waitFor();
    assert.ok((await page.locator('.vspacer .vrow').count()) < 60);
    await page.locator('.vbody').evaluate((el) => (el.scrollTop = el.scrollHeight / 2));
    await page.locator('.vspacer .vrow', { hasText: 'edge-0130' }).waitFor();
    await shot('15-hosts-paged');
    await page.getByLabel('Filter hosts').fill('edge-02');
    await until('the filtered total', async () => (await total.textContent()).trim() === '61 hosts'); // edge-0200 to edge-0260
    await page.locator('.vspacer .vrow', { hasText: 'edge-0200' }).waitFor();
    page.off('request', onReq);
    assert.ok(asked.length >= 3, 'several pages were asked for');
    assert.ok(asked.every((q) => Number(q.get('limit')) <= 100), 'never more than a page at once');
    assert.ok(asked.some((q) => q.get('q') === 'edge-02'), 'the filter goes to the server');
    await page.getByLabel('Filter hosts').fill('');
  });

  test('draws a large mesh on a canvas: clusters, problem links, the selected node with its links, live additions', async () => {
    const net = await api('POST', '/networks', { body: { name: 'big', ipv4_range: '10.60.0.0/24', topology: 'mesh' } });
    assert.equal(net.status, 201, JSON.stringify(net.body));
    const jt = await api('POST', '/join-tokens', { body: { name: 'big', networks: ['big'] } });
    assert.equal(jt.status, 201, JSON.stringify(jt.body));
    const SIZE = 80;
    const big = [];
    for (let i = 0; i < SIZE; i++) big.push(await new Agent(`big-${String(i).padStart(2, '0')}`).register(jt.body.secret));
    const now = Date.now();
    await big[0].report([
      { public_key: big[1].keys.publicKey, last_handshake: new Date(now - 30e3).toISOString(), rx_bytes: 1, tx_bytes: 1 },
      { public_key: big[2].keys.publicKey, last_handshake: new Date(now - 600e3).toISOString(), rx_bytes: 1, tx_bytes: 1 },
    ]);
    for (const a of big.slice(1)) await a.report();
    const asked = [];
    const onReq = (r) => r.url().includes('/topology') && asked.push(new URL(r.url()).searchParams);
    page.on('request', onReq);
    await page.goto(`${base}/ui/networks/big`);
    const canvas = page.getByTestId('topology-canvas');
    await until('every node drawn', async () => Number(await canvas.getAttribute('data-nodes')) === SIZE);
    assert.equal(await page.getByTestId('topology-svg').count(), 0, 'no SVG line per pair');
    assert.ok(Number(await canvas.getAttribute('data-never')) > 0, 'the problem links are drawn');
    assert.ok(asked.every((q) => q.get('edges') !== 'all' || q.get('node')), 'never all the links of the network');
    // Find a node: its links, coloured by freshness.
    await page.getByTestId('topology-find').fill('big-00');
    await page.getByTestId('topology-find').press('Enter');
    await page.getByTestId('topology-selected').getByText('big-00').waitFor();
    await until('its links', async () => Number(await canvas.getAttribute('data-edges')) === SIZE - 1);
    assert.deepEqual(
      [await canvas.getAttribute('data-fresh'), await canvas.getAttribute('data-stale'), await canvas.getAttribute('data-never')],
      ['1', '1', String(SIZE - 3)],
    );
    await shot('16-network-large');
    // A click on a node selects it.
    await page.getByTestId('topology-selected').getByRole('button', { name: 'Clear' }).click();
    await until('no selection', async () => (await canvas.getAttribute('data-selected')) === '');
    const [x, y, w] = (await canvas.getAttribute('data-first')).split(',').map(Number);
    const box = await canvas.boundingBox();
    await canvas.click({ position: { x: (x * box.width) / w, y: (y * box.width) / w } });
    await until('the clicked node', async () => (await canvas.getAttribute('data-selected')) !== '');
    await page.getByTestId('topology-selected').waitFor();
    // A host joining shows up from the event feed, read alone.
    asked.length = 0;
    const late = await new Agent('big-late').register(jt.body.secret);
    await late.report();
    await until('the new node', async () => Number(await canvas.getAttribute('data-nodes')) === SIZE + 1);
    assert.ok(asked.some((q) => q.get('node') === late.desired.interfaces[0].id && q.get('edges') === 'none'), `the new node was read alone: ${asked.map(String)}`);
    page.off('request', onReq);
  });

  test('signs out', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByTestId('signin').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('drago.token')), null);
  });

  test('raised no console errors (CSP violations included)', () => {
    // The browser logs each failed request; the 400s, 401 and 404 (host "nope") above are expected.
    const real = consoleErrors.filter((e) => !/Failed to load resource: the server responded with a status of (400|401|404|409)/.test(e));
    assert.deepEqual(real, []);
  });
});
