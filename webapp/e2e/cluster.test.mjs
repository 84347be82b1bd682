// The Overview's Cluster panel against a real cluster (issue #17): three
// etcd members (server/store/etcdtest/member, real embedded etcd, each a
// process of its own) and two `drago server -store etcd`, Debian's chromium
// on each server's Overview. Both list the two servers and agree on the
// leader; after a kill -9 of the leader the survivor lists itself alone as
// the leader once the dead server's lease expires.
//
//   make webapp && cd webapp && node --test e2e/cluster.test.mjs

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until, dragoBinary, startServer, stopServer, launchBrowser, freePort, repo } from './harness.mjs';

let tmp;
let context;
const members = [];
const servers = [];

/** startMembers runs a three-member etcd cluster and returns its client URLs once it has a leader. */
async function startMembers(bin) {
  const ports = [];
  for (let i = 0; i < 3; i++) ports.push({ peer: await freePort(), client: await freePort() });
  const initial = ports.map((p, i) => `m${i}=http://127.0.0.1:${p.peer}`).join(',');
  const outs = ports.map((p, i) => {
    const proc = spawn(bin, ['-name', `m${i}`, '-dir', join(tmp, `etcd-m${i}`), '-peer-url', `http://127.0.0.1:${p.peer}`,
      '-client-url', `http://127.0.0.1:${p.client}`, '-initial-cluster', initial], { stdio: ['ignore', 'pipe', 'pipe'] });
    members.push(proc);
    const m = { out: '' };
    proc.stdout.on('data', (d) => (m.out += d));
    proc.stderr.on('data', (d) => (m.out += d));
    return m;
  });
  await until('the etcd members to be ready', () => outs.every((m) => m.out.includes('ready')), {
    ms: 60000,
    detail: () => outs.map((m, i) => `\nmember m${i}:\n${m.out}`).join(''),
  });
  return ports.map((p) => `http://127.0.0.1:${p.client}`).join(',');
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'drago-cluster-'));
  const bin = dragoBinary(tmp);
  const memberBin = join(tmp, 'member');
  execFileSync('go', ['build', '-o', memberBin, './server/store/etcdtest/member'], { cwd: repo, stdio: 'inherit', env: { ...process.env, CGO_ENABLED: '0' } });
  const endpoints = await startMembers(memberBin);
  const args = ['-store', 'etcd', '-etcd-endpoints', endpoints];
  servers.push(await startServer(bin, join(tmp, 'server-a'), args));
  servers.push(await startServer(bin, join(tmp, 'server-b'), args, undefined, servers[0].token));
  context = await launchBrowser(join(tmp, 'profile'));
});

after(async () => {
  await context?.close().catch(() => {});
  for (const s of servers) await stopServer(s.proc);
  for (const m of members) m.kill('SIGTERM');
  await Promise.all(members.map((m) => (m.exitCode === null ? new Promise((r) => m.once('exit', r)) : null)));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** overview signs in to server s's dashboard in a page of its own and opens the Overview. */
async function overview(s) {
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  await page.goto(`${s.base}/ui/`);
  await page.getByLabel('Management token').fill(s.token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  return page;
}

/** clusterRows returns the Cluster panel's rows: id, whether it is the page's server, role. */
async function clusterRows(page) {
  const rows = page.getByTestId('cluster').locator('[data-testid="cluster-servers"] tbody tr');
  const out = [];
  for (let i = 0; i < (await rows.count()); i++) {
    const r = rows.nth(i);
    const text = await r.textContent();
    out.push({ id: await r.getAttribute('data-server'), self: text.includes('(this one)'), leader: text.includes('leader') });
  }
  return out;
}

/** selfID asks server s who it is. */
async function selfID(s) {
  const res = await fetch(`${s.base}/api/v1/cluster`, { headers: { authorization: `Bearer ${s.token}` } });
  return (await res.json()).server;
}

let pages = [];

test('each server shows the two servers, itself marked, and the same leader', async () => {
  pages = [await overview(servers[0]), await overview(servers[1])];
  const ids = [await selfID(servers[0]), await selfID(servers[1])];
  assert.notEqual(ids[0], ids[1]);
  const leaders = [];
  for (const [k, page] of pages.entries()) {
    const rows = await until(`server ${k}'s panel to list both servers with one leader`, async () => {
      const r = await clusterRows(page);
      return r.length === 2 && r.filter((x) => x.leader).length === 1 && r;
    });
    assert.deepEqual(rows.map((r) => r.id).sort(), [...ids].sort());
    assert.equal(rows.find((r) => r.self)?.id, ids[k], 'the page marks its own server');
    const card = await page.getByTestId('cluster').textContent();
    assert.match(card, /Store: etcd/);
    assert.match(card, /healthy/);
    leaders.push(rows.find((r) => r.leader).id);
  }
  assert.equal(leaders[0], leaders[1], 'both servers name the same leader');
});

test('after a kill -9 of the leader the survivor lists itself alone, leading', async () => {
  const ids = [await selfID(servers[0]), await selfID(servers[1])];
  const rows = await clusterRows(pages[0]);
  const dead = ids.indexOf(rows.find((r) => r.leader).id);
  const alive = 1 - dead;
  servers[dead].proc.kill('SIGKILL');
  const left = await until(
    "the survivor's panel to list only itself as the leader",
    async () => {
      const r = await clusterRows(pages[alive]);
      return r.length === 1 && r[0].id === ids[alive] && r[0].self && r[0].leader && r;
    },
    { ms: 60000, every: 500 },
  );
  assert.equal(left.length, 1);
});
