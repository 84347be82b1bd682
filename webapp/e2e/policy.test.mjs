// Browser tests of a network's access policy (docs/policies.md): Debian's
// chromium against a real `drago server -dev`, agents simulated through the
// agent API. The first suite edits a policy end to end; the second opens
// the network page of a mesh of POLICY_FLEET hosts (default 2000) with 50
// rules and measures how long it takes to be usable.
//
//   make webapp-e2e                (runs it with dashboard.test.mjs)
//   POLICY_FLEET=2000 node --test e2e/policy.test.mjs
//
// Results of the second suite: docs/benchmarks.md, "Access policy in the dashboard".

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repo, until as untilDefault, dragoBinary, startServer, stopServer, launchBrowser } from './harness.mjs';

const FLEET = Number(process.env.POLICY_FLEET || 2000);
// The page draws a canvas, whose node count the test reads, above 60 interfaces (lib/topology SMALL).
assert.ok(FLEET > 60, 'POLICY_FLEET must be over 60');
const FLEET_RULES = 50;
const shots = join(repo, 'test-output', 'screenshots');

let tmp;
let bin;
let context;
let page;
const consoleErrors = [];

before(async () => {
  mkdirSync(shots, { recursive: true });
  tmp = mkdtempSync(join(tmpdir(), 'drago-policy-e2e-'));
  bin = dragoBinary(tmp);
  context = await launchBrowser(join(tmp, 'profile'));
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(30000);
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
});

after(async () => {
  await context?.close().catch(() => {});
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** pool runs fn over items with n at a time. */
async function pool(items, n, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

/** fleet is one server with its REST API, agents registered with fake keys, and the page signed in. */
function fleet(name, args = []) {
  const f = { hosts: new Map() };
  f.until = (what, fn, ms = 20000) => untilDefault(what, fn, { ms, every: 50, detail: () => `\nserver output:\n${f.server?.out() ?? ''}` });
  f.api = async (method, path, { token = f.token, body } = {}) => {
    const res = await fetch(`${f.base}/api/v1${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  f.start = async () => {
    f.server = await startServer(bin, join(tmp, `data-${name}`), ['-heartbeat-grace', '1h', ...args]);
    ({ base: f.base, token: f.token } = f.server);
  };
  /** register makes hosts with labels join network through a join token. */
  f.register = async (network, hosts) => {
    const jt = await f.api('POST', '/join-tokens', { body: { networks: [network] } });
    assert.equal(jt.status, 201, JSON.stringify(jt.body));
    await pool(hosts, 16, async ({ name, labels, os = 'linux' }) => {
      const r = await f.api('POST', '/agent/register', { token: jt.body.secret, body: { name, labels, os, arch: 'amd64', agent_version: '0.9.0-e2e' } });
      assert.equal(r.status, 201, `register ${name}: ${JSON.stringify(r.body)}`);
      f.hosts.set(name, { id: r.body.host_id, credential: r.body.credential, os, key: randomBytes(32).toString('base64') });
    });
  };
  /** report sends a host's status with what it enforces of its interface's policy (firewall). */
  f.report = async (name, firewall) => {
    const h = f.hosts.get(name);
    const cfg = await f.api('GET', '/agent/config', { token: h.credential });
    assert.equal(cfg.status, 200, JSON.stringify(cfg.body));
    const interfaces = cfg.body.interfaces.map((i) => ({ id: i.id, public_key: h.key, listen_port: i.listen_port || 51820, firewall: firewall(i) }));
    const r = await f.api('PUT', '/agent/status', { token: h.credential, body: { backend: 'userspace', os: h.os, arch: 'amd64', agent_version: '0.9.0-e2e', applied_index: cfg.body.index, interfaces } });
    assert.equal(r.status, 204, `status of ${name}: ${JSON.stringify(r.body)}`);
  };
  f.signIn = async () => {
    await page.goto(`${f.base}/ui/`);
    await page.getByLabel('Management token').fill(f.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
  };
  f.stop = () => stopServer(f.server?.proc);
  return f;
}

/** closed waits for a dialog to close; if it stays, the error it shows is the failure. */
async function closed(dialog) {
  try {
    await dialog.waitFor({ state: 'detached' });
  } catch {
    throw new Error(`the dialog stayed open: ${await dialog.textContent().catch(() => '')}`);
  }
}

describe('editing a policy through the real server', () => {
  const f = fleet('edit');
  let rules;

  before(async () => {
    await f.start();
    const n = await f.api('POST', '/networks', { body: { name: 'prod', ipv4_range: '10.4.0.0/24', topology: 'mesh' } });
    assert.equal(n.status, 201, JSON.stringify(n.body));
    await f.register('prod', [
      { name: 'web-1', labels: { role: 'web' } },
      { name: 'db-1', labels: { role: 'db' } },
      { name: 'win-1', labels: { role: 'db' }, os: 'windows' },
    ]);
    await f.signIn();
  });
  after(() => f.stop());

  test('adds a rule, and shows a bad port at the ports field', async () => {
    await page.goto(`${f.base}/ui/networks/prod`);
    const policy = page.getByTestId('policy');
    await policy.getByText('No rules').waitFor();
    await policy.getByRole('button', { name: 'Add rule' }).click();
    let form = page.getByTestId('rule-form');
    await form.locator('input[name=from]').fill('role=web');
    await form.locator('input[name=to]').fill('role=db');
    await form.locator('select[name=protocol]').selectOption('tcp');
    await form.locator('input[name=ports]').fill('5432');
    await form.locator('input[name=description]').fill('postgres');
    await form.getByRole('button', { name: 'Add rule' }).click();
    await closed(form);
    await policy.locator('[data-rule-id]').first().waitFor();

    await policy.getByRole('button', { name: 'Add rule' }).click();
    form = page.getByTestId('rule-form');
    await form.getByRole('radio', { name: 'drop' }).click();
    await form.locator('input[name=from]').fill('*');
    await form.locator('input[name=to]').fill('role=db');
    await form.locator('input[name=ports]').fill('22, 70000');
    await form.getByRole('button', { name: 'Add rule' }).click();
    // What the server itself answers for this body, shown at the field it names.
    const direct = await f.api('POST', '/rules', { body: { network_id: 'prod', action: 'drop', from: ['*'], to: ['role=db'], protocol: 'tcp', ports: ['22', '70000'] } });
    assert.equal(direct.status, 400);
    assert.equal(direct.body.error.field, 'ports[1]');
    const shown = form.locator('[data-field="ports"] [data-error-for="ports"]');
    await shown.waitFor();
    assert.equal((await shown.textContent()).trim(), direct.body.error.message);
    assert.equal(await form.locator('[data-error-for="from"]').count(), 0);
    await page.screenshot({ path: join(shots, 'policy-01-port-error.png') });
    await form.locator('input[name=ports]').fill('22');
    await form.getByRole('button', { name: 'Add rule' }).click();
    await closed(form);
    await f.until('two rules', async () => (await policy.locator('[data-rule-id]').count()) === 2);
    rules = (await f.api('GET', '/rules?network=prod')).body.items;
    assert.deepEqual(
      rules.map((r) => [r.position, r.action, r.from, r.to, r.protocol, r.ports, r.description ?? '']),
      [
        [0, 'accept', ['role=web'], ['role=db'], 'tcp', ['5432'], 'postgres'],
        [1, 'drop', ['*'], ['role=db'], 'tcp', ['22'], ''],
      ],
    );
  });

  test('moves a rule up, then checks a flow and highlights the deciding rule', async () => {
    const policy = page.getByTestId('policy');
    await policy.getByRole('button', { name: 'Move rule 1 up' }).click();
    await f.until('the drop rule first', async () => (await f.api('GET', '/rules?network=prod')).body.items[0].action === 'drop');
    await f.until('the list in the new order', async () => (await policy.locator('[data-rule-id]').first().getAttribute('data-rule-id')) === rules[1].id);

    const check = page.getByTestId('check-flow');
    await check.locator('input[name=check-from]').fill('web-1');
    await check.locator('input[name=check-to]').fill('db-1');
    await check.locator('input[name=check-port]').fill('5432/tcp');
    await check.getByRole('button', { name: 'Check' }).click();
    const verdict = check.getByTestId('verdict');
    await verdict.waitFor();
    assert.match(await verdict.textContent(), /^accept\s+by rule 1/);
    await policy.locator(`tr.is-decided[data-rule-id="${rules[0].id}"]`).waitFor();
    assert.equal(await policy.locator('tr.is-decided').count(), 1);

    await check.locator('input[name=check-port]').fill('22/tcp');
    await check.getByRole('button', { name: 'Check' }).click();
    await f.until('the drop verdict', async () => /^drop\s+by rule 0/.test(await verdict.textContent()));
    await policy.locator(`tr.is-decided[data-rule-id="${rules[1].id}"]`).waitFor();

    // A flow the server cannot place shows its error at the field it names.
    await check.locator('input[name=check-to]').fill('nobody');
    await check.getByRole('button', { name: 'Check' }).click();
    await check.locator('[data-error-for="to"]').waitFor();
    await page.screenshot({ path: join(shots, 'policy-02-check.png'), fullPage: true });
  });

  test('switches the default to drop only after a warning', async () => {
    const policy = page.getByTestId('policy');
    await policy.getByTestId('default-action').getByRole('radio', { name: 'drop' }).click();
    const confirm = page.getByTestId('confirm');
    await confirm.waitFor();
    assert.match(await confirm.textContent(), /Traffic no rule accepts will be refused/);
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await closed(confirm);
    assert.equal((await f.api('GET', '/networks/prod')).body.default_action, 'accept', 'cancel changes nothing');
    await policy.getByTestId('default-action').getByRole('radio', { name: 'drop' }).click();
    await page.getByTestId('confirm').getByRole('button', { name: 'Drop by default' }).click();
    await f.until('default drop on the server', async () => (await f.api('GET', '/networks/prod')).body.default_action === 'drop');
    await policy.locator('[data-testid="default-action"] [aria-checked="true"][data-value="drop"]').waitFor();
    // The default now decides what no rule matches, and the check says so.
    const check = page.getByTestId('check-flow');
    await check.locator('input[name=check-from]').fill('db-1');
    await check.locator('input[name=check-to]').fill('web-1');
    await check.locator('input[name=check-port]').fill('80/tcp');
    await check.getByRole('button', { name: 'Check' }).click();
    await f.until('the default decides', async () => /^drop\s+by the default action/.test(await check.getByTestId('verdict').textContent()));
    await policy.locator('[data-testid="default-action"].is-decided').waitFor();
  });

  test('shows who one host reaches, checked by the server', async () => {
    const reach = page.getByTestId('reach');
    await reach.locator('input[name=reach-source]').fill('web-1');
    await reach.getByRole('button', { name: 'Show' }).click();
    // Interfaces are named host/interface (web-1/dg-prod).
    const cell = (to, flow) => reach.locator(`[data-reach^="${to}/"][data-reach$="|${flow}"]`);
    await f.until('the checks', async () => /accept · rule 1/.test(await cell('db-1', '5432/tcp').textContent()));
    assert.match(await cell('db-1', '22/tcp').textContent(), /drop · rule 0/);
    assert.match(await cell('win-1', '5432/tcp').textContent(), /accept · rule 1/);
    // Incoming: nobody reaches web-1 on 5432 but through the default, which drops.
    await reach.getByLabel('Direction').selectOption('to');
    await f.until('incoming checks', async () => /drop · default/.test(await cell('db-1', '5432/tcp').textContent()));
    await page.screenshot({ path: join(shots, 'policy-03-reach.png'), fullPage: true });
  });

  test('flags hosts that do not enforce the policy, with the reason', async () => {
    // db-1 enforces what it must, win-1 cannot, web-1 has not reported.
    await f.report('db-1', (i) => ({ enforced: true, revision: i.firewall.revision }));
    await f.report('win-1', () => ({ enforced: false, reason: 'not supported on windows' }));
    const ifaces = (await f.api('GET', '/interfaces?network=prod&firewall=behind')).body;
    assert.equal(ifaces.total, 2, JSON.stringify(ifaces));
    await page.reload();
    const enf = page.getByTestId('enforcement');
    await f.until('two interfaces flagged', async () => /2 interfaces do not enforce the current policy/.test(await enf.textContent()));
    const text = await enf.textContent();
    assert.match(text, /win-1\S*\s*not enforced\s*not supported on windows/);
    assert.match(text, /web-1\S*\s*not enforced\s*The agent has not reported enforcing revision/);
    assert.doesNotMatch(text, /db-1/);
    const rows = page.getByTestId('interfaces');
    await f.until('badges in the interfaces table', async () => (await rows.locator('[data-firewall="behind"]').count()) === 2);
    assert.equal(await rows.locator('[data-firewall="ok"]').count(), 1);

    await page.goto(`${f.base}/ui/hosts`);
    await page.getByTestId('hosts-firewall-behind').waitFor();
    assert.match(await page.getByTestId('hosts-firewall-behind').textContent(), /2 interfaces not enforcing/);
    const row = (name) => page.locator('.vrow', { has: page.getByRole('link', { name, exact: true }) });
    await row('win-1').locator('[data-firewall="behind"]').waitFor();
    await row('web-1').locator('[data-firewall="behind"]').waitFor();
    assert.equal(await row('db-1').locator('[data-firewall="behind"]').count(), 0);

    await page.goto(`${f.base}/ui/hosts/win-1`);
    await page.getByTestId('host-firewall').waitFor();
    assert.match(await page.getByTestId('interface-firewall').textContent(), /not supported on windows/);
    await page.goto(`${f.base}/ui/hosts/db-1`);
    await page.getByTestId('interface-firewall').getByText('enforced').waitFor();
    assert.equal(await page.getByTestId('host-firewall').count(), 0);
  });

  test('marks a gateway interface masquerade, refused without routed subnets at its field', async () => {
    await page.goto(`${f.base}/ui/networks/prod`);
    const row = page.getByTestId('interfaces').locator('tr', { has: page.getByRole('link', { name: /^web-1/ }) });
    await row.getByRole('button', { name: /^Edit / }).click();
    let form = page.getByTestId('interface-form');
    await form.getByRole('checkbox', { name: /Source-NAT/ }).check();
    await form.getByRole('button', { name: 'Save changes' }).click();
    await form.locator('[data-field="masquerade"] [data-error-for="masquerade"]').waitFor();
    await form.locator('input[name=routed_subnets]').fill('192.168.50.0/24');
    await form.getByRole('button', { name: 'Save changes' }).click();
    await closed(form);
    const id = f.hosts.get('web-1').id;
    const i = (await f.api('GET', `/interfaces?host=${id}`)).body.items[0];
    assert.equal(i.masquerade, true);
    assert.deepEqual(i.routed_subnets, ['192.168.50.0/24']);
    await row.getByRole('button', { name: /^Edit / }).click();
    form = page.getByTestId('interface-form');
    assert.equal(await form.getByRole('checkbox', { name: /Source-NAT/ }).isChecked(), true);
    await form.getByRole('button', { name: 'Cancel' }).click();
  });

  test('follows rule changes made elsewhere, live', async () => {
    const policy = page.getByTestId('policy');
    const before = await policy.locator('[data-rule-id]').count();
    const r = await f.api('POST', '/rules', { body: { network_id: 'prod', action: 'accept', from: ['*'], to: ['*'], protocol: 'icmp', description: 'ping from the CLI' } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    await policy.locator(`[data-rule-id="${r.body.id}"]`).getByText('ping from the CLI').waitFor();
    assert.equal(await policy.locator('[data-rule-id]').count(), before + 1);
    assert.equal(await f.api('DELETE', `/rules/${r.body.id}`).then((x) => x.status), 204);
    await policy.locator(`[data-rule-id="${r.body.id}"]`).waitFor({ state: 'detached' });
  });

  test('raised no console errors', () => {
    const real = consoleErrors.filter((e) => !/Failed to load resource: the server responded with a status of (400|404)/.test(e));
    assert.deepEqual(real, []);
  });
});

describe(`the network page of ${FLEET} hosts with ${FLEET_RULES} rules`, () => {
  const f = fleet('fleet');
  const r = { hosts: FLEET, rules: FLEET_RULES };

  before(async () => {
    await f.start();
    const n = await f.api('POST', '/networks', { body: { name: 'fleet', ipv4_range: '10.64.0.0/16', topology: 'mesh' } });
    assert.equal(n.status, 201, JSON.stringify(n.body));
    const t0 = Date.now();
    const roles = ['web', 'db', 'cache', 'queue', 'batch'];
    await f.register(
      'fleet',
      Array.from({ length: FLEET }, (_, k) => ({ name: `fleet-${String(k).padStart(5, '0')}`, labels: { role: roles[k % roles.length], zone: `z${k % 10}` } })),
    );
    // 50 rules: label to label on a port each, and one to every host, so
    // that every interface has a firewall to enforce (none reports one).
    for (let k = 0; k < FLEET_RULES; k++) {
      const last = k === FLEET_RULES - 1;
      const body = last
        ? { network_id: 'fleet', action: 'accept', from: ['*'], to: ['*'], protocol: 'icmp' }
        : { network_id: 'fleet', action: k % 7 ? 'accept' : 'drop', from: [`role=${roles[k % 5]}`], to: [`zone=z${k % 10}`], protocol: k % 3 ? 'tcp' : 'udp', ports: [String(1000 + k)], description: `rule ${k}` };
      const res = await f.api('POST', '/rules', { body });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
    r.setup_s = (Date.now() - t0) / 1000;
    await f.signIn();
  });
  after(async () => {
    await f.stop();
    console.log(`\nAccess policy in the dashboard\n${JSON.stringify(r)}`);
  });

  test('is usable: rules, enforcement and topology load, a rule is added, one host is checked against a page', async () => {
    const t0 = Date.now();
    await page.goto(`${f.base}/ui/networks/fleet`);
    const policy = page.getByTestId('policy');
    await f.until('the rules', async () => (await policy.locator('[data-rule-id]').count()) === FLEET_RULES, 60000);
    r.rules_shown_ms = Date.now() - t0;
    await f.until('the enforcement count', async () => new RegExp(`${FLEET.toLocaleString('en')} interfaces do not enforce`).test(await page.getByTestId('enforcement').textContent()), 60000);
    r.enforcement_shown_ms = Date.now() - t0;
    const canvas = page.getByTestId('topology-canvas');
    await f.until('every node drawn', async () => Number(await canvas.getAttribute('data-nodes', { timeout: 60000 })) === FLEET, 60000);
    r.usable_ms = Date.now() - t0;
    // The page asked for no verdicts on its own: the reach view waits for a choice.
    assert.equal(await page.evaluate(() => performance.getEntriesByType('resource').filter((e) => e.name.includes('/rules/check')).length), 0);

    const t1 = Date.now();
    await policy.getByRole('button', { name: 'Add rule' }).click();
    const form = page.getByTestId('rule-form');
    await form.locator('input[name=from]').fill('role=web');
    await form.locator('input[name=to]').fill('role=db');
    await form.locator('input[name=ports]').fill('443');
    await form.locator('input[name=position]').fill('0');
    await form.getByRole('button', { name: 'Add rule' }).click();
    await closed(form);
    await f.until('the new rule first', async () => (await policy.locator('[data-rule-id]').count()) === FLEET_RULES + 1 && /443/.test(await policy.locator('[data-rule-id]').first().textContent()), 60000);
    r.add_rule_ms = Date.now() - t1;

    const t2 = Date.now();
    const reach = page.getByTestId('reach');
    await reach.locator('input[name=reach-source]').fill('fleet-00000');
    await reach.getByRole('button', { name: 'Show' }).click();
    const cells = reach.locator('[data-reach]');
    await f.until('a page of verdicts', async () => (await cells.count()) > 0 && (await reach.locator('[data-reach] .badge').count()) === (await cells.count()), 60000);
    r.reach_page_ms = Date.now() - t2;
    r.reach_page_checks = await cells.count();
    const checks = await page.evaluate(() => performance.getEntriesByType('resource').filter((e) => e.name.includes('/rules/check')).map((e) => e.duration));
    checks.sort((a, b) => a - b);
    r.check_request_median_ms = Math.round(checks[checks.length >> 1]);
    // The filter pages through the others by name.
    await reach.locator('input[name=reach-filter]').fill('fleet-00001');
    await f.until('fleet-00001 checked', async () => (await cells.count()) > 0 && (await reach.locator('[data-reach^="fleet-00001/"] .badge').count()) === (await cells.count()), 60000);
    assert.equal(await reach.locator('tbody tr').count(), 1);
    await page.screenshot({ path: join(shots, 'policy-fleet.png'), fullPage: true });
    console.log(JSON.stringify(r));
  });
});
