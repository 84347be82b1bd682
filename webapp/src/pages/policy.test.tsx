import { cleanup, fireEvent, screen, waitFor, within } from '@testing-library/preact';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Interface, Network, Rule, TopologyNode } from '../api/types';
import { apiError, fakeFetch, list, meta, renderWithApp } from '../test/helpers';
import { PolicySection, REACH_PAGE } from './policy';

afterEach(() => cleanup());

const network: Network = { ...meta('n1'), name: 'prod', ipv4_range: '10.4.0.0/24', listen_port: 51820, mtu: 1420, persistent_keepalive: 0, topology: 'mesh', default_action: 'accept' };

const rule = (id: string, position: number, x: Partial<Rule> = {}): Rule => ({ ...meta(id), network_id: 'n1', position, action: 'accept', from: ['role=web'], to: ['role=db'], protocol: 'tcp', ports: ['5432'], ...x });

const node = (k: number): TopologyNode => ({ interface_id: `i${String(k).padStart(4, '0')}`, host_id: `h${k}`, name: `host-${String(k).padStart(4, '0')}/dg-prod`, addresses: [`10.4.0.${k + 1}/24`], status: 'ready', peers: 0, fresh: 0, stale: 0, never: 0 });

const behindIface = (id: string, x: Partial<Interface> = {}): Interface => ({ ...meta(id), host_id: `host-of-${id}`, network_id: 'n1', name: 'dg-prod', addresses: [], listen_port: 0, mtu: 0, firewall_revision: 9, ...x });

function routes(rules: Rule[], extra: Record<string, Parameters<typeof fakeFetch>[0][string]> = {}) {
  return fakeFetch({
    'GET /rules': () => list(rules),
    'GET /interfaces': () => list([]),
    ...extra,
  });
}

function renderPolicy(f: ReturnType<typeof fakeFetch>, opts: { nodes?: TopologyNode[]; net?: Network; onNetwork?: (n: Network) => void } = {}) {
  return renderWithApp(<PolicySection network={opts.net ?? network} names={{}} nodes={opts.nodes} onNetwork={opts.onNetwork ?? vi.fn()} />, f.fetch);
}

describe('PolicySection', () => {
  it('lists the rules in order, with the interfaces that do not enforce them asked of the server', async () => {
    const f = routes([rule('r0', 0, { action: 'drop', from: ['*'], ports: ['22'] }), rule('r1', 1, { description: 'postgres' })], {
      'GET /interfaces': (c) => {
        expect(c.url.searchParams.get('firewall')).toBe('behind');
        expect(c.url.searchParams.get('network')).toBe('n1');
        return list([behindIface('a', { firewall: { enforced: false, reason: 'not supported on windows' } })], 1234);
      },
    });
    renderPolicy(f);
    const rows = await screen.findAllByText(/role=db/);
    expect(rows).toHaveLength(2);
    const ids = [...document.querySelectorAll('[data-rule-id]')].map((r) => r.getAttribute('data-rule-id'));
    expect(ids).toEqual(['r0', 'r1']);
    const enf = await screen.findByTestId('enforcement');
    await waitFor(() => expect(enf.textContent).toMatch(/1,234 interfaces do not enforce the current policy/));
    expect(enf.textContent).toMatch(/not supported on windows/);
    expect(enf.textContent).toMatch(/and 1,233 more/);
    expect(f.calls.filter((c) => c.path === '/rules')[0].url.searchParams.get('limit')).toBe('1000');
  });

  it('shows a server error at the field it names and sends what the form holds', async () => {
    const f = routes([], { 'POST /rules': () => apiError(400, 'ports[1]: "70000" is not a port or range within 1-65535, first <= last', 'ports[1]') });
    renderPolicy(f);
    await screen.findByText('No rules');
    fireEvent.click(screen.getByRole('button', { name: 'Add rule' }));
    const form = await screen.findByTestId('rule-form');
    fireEvent.click(within(form).getByRole('radio', { name: 'drop' }));
    fireEvent.input(form.querySelector('input[name=from]')!, { target: { value: '*' } });
    fireEvent.input(form.querySelector('input[name=to]')!, { target: { value: 'role=db, host:db-1' } });
    fireEvent.input(form.querySelector('input[name=ports]')!, { target: { value: '22, 70000' } });
    fireEvent.submit(form.querySelector('form')!);
    await waitFor(() => expect(form.querySelector('[data-field="ports"] [data-error-for="ports"]')?.textContent).toMatch(/70000/));
    expect(form.querySelector('[data-error-for="from"]')).toBeNull();
    expect(form.querySelector('.alert-error')).toBeNull();
    const post = f.calls.find((c) => c.method === 'POST')!;
    expect(post.body).toEqual({ network_id: 'n1', action: 'drop', from: ['*'], to: ['role=db', 'host:db-1'], protocol: 'tcp', ports: ['22', '70000'], description: '' });
  });

  it('moves a rule by its position, and edits with every field so that emptied ones clear', async () => {
    const f = routes([rule('r0', 0), rule('r1', 1, { description: 'old' })], {
      'PATCH /rules/*': (c) => ({ ...rule(c.path.split('/')[2], 0), ...c.body }),
    });
    renderPolicy(f);
    await screen.findByLabelText('Move rule 1 up');
    expect((screen.getByLabelText('Move rule 0 up') as HTMLButtonElement).disabled).toBe(true);
    expect((screen.getByLabelText('Move rule 1 down') as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(screen.getByLabelText('Move rule 0 down'));
    await waitFor(() => expect(f.calls.find((c) => c.method === 'PATCH')?.body).toEqual({ position: 1 }));
    expect(f.calls.find((c) => c.method === 'PATCH')!.path).toBe('/rules/r0');
    await waitFor(() => expect((screen.getByLabelText('Edit rule 1') as HTMLButtonElement).disabled).toBe(false));
    fireEvent.click(screen.getByLabelText('Edit rule 1'));
    const form = await screen.findByTestId('rule-form');
    expect((form.querySelector('input[name=description]') as HTMLInputElement).value).toBe('old');
    fireEvent.input(form.querySelector('input[name=description]')!, { target: { value: '' } });
    fireEvent.input(form.querySelector('input[name=ports]')!, { target: { value: '' } });
    fireEvent.submit(form.querySelector('form')!);
    await waitFor(() => expect(f.calls.filter((c) => c.method === 'PATCH')).toHaveLength(2));
    expect(f.calls.filter((c) => c.method === 'PATCH')[1].body).toEqual({ action: 'accept', from: ['role=web'], to: ['role=db'], protocol: 'tcp', ports: [], description: '' });
  });

  it('switches to drop by default only after a warning that says nothing is accepted', async () => {
    const onNetwork = vi.fn();
    const f = routes([rule('r0', 0, { action: 'drop' })], { 'PATCH /networks/n1': (c) => ({ ...network, ...c.body }) });
    renderPolicy(f, { onNetwork });
    await screen.findByLabelText('Edit rule 0');
    fireEvent.click(within(screen.getByTestId('default-action')).getByRole('radio', { name: 'drop' }));
    const confirm = await screen.findByTestId('confirm');
    expect(confirm.textContent).toMatch(/No rule accepts anything/);
    expect(f.calls.some((c) => c.method === 'PATCH')).toBe(false);
    fireEvent.click(within(confirm).getByRole('button', { name: 'Drop by default' }));
    await waitFor(() => expect(onNetwork).toHaveBeenCalledWith(expect.objectContaining({ default_action: 'drop' })));
    expect(f.calls.find((c) => c.method === 'PATCH')!.body).toEqual({ default_action: 'drop' });
  });

  it('checks a flow and highlights the deciding rule, or the default action', async () => {
    let verdict: object = { action: 'accept', rule_id: 'r1', position: 1, reason: 'rule 1: accept role=web -> role=db tcp 5432' };
    const f = routes([rule('r0', 0, { action: 'drop', ports: ['22'] }), rule('r1', 1)], { 'POST /rules/check': () => verdict });
    renderPolicy(f);
    const check = await screen.findByTestId('check-flow');
    fireEvent.input(check.querySelector('input[name=check-from]')!, { target: { value: 'web-1' } });
    fireEvent.input(check.querySelector('input[name=check-to]')!, { target: { value: 'db-1' } });
    fireEvent.input(check.querySelector('input[name=check-port]')!, { target: { value: '5432/tcp' } });
    fireEvent.submit(check);
    await waitFor(() => expect(screen.getByTestId('verdict').textContent).toMatch(/accept\s*by rule 1/));
    expect(f.calls.find((c) => c.path === '/rules/check')!.body).toEqual({ network_id: 'n1', from: 'web-1', to: 'db-1', port: '5432/tcp' });
    expect([...document.querySelectorAll('tr.is-decided')].map((r) => r.getAttribute('data-rule-id'))).toEqual(['r1']);
    verdict = { action: 'accept', reason: "no rule matches; the network's default action" };
    fireEvent.submit(check);
    await waitFor(() => expect(screen.getByTestId('verdict').textContent).toMatch(/by the default action/));
    expect(document.querySelectorAll('tr.is-decided')).toHaveLength(0);
    expect(screen.getByTestId('default-action').classList.contains('is-decided')).toBe(true);
  });

  it('puts a check error at the field it names', async () => {
    const f = routes([], { 'POST /rules/check': () => apiError(400, 'to: no host "nobody" has an interface in network prod', 'to') });
    renderPolicy(f);
    const check = await screen.findByTestId('check-flow');
    fireEvent.submit(check);
    await waitFor(() => expect(check.querySelector('[data-field="to"] [data-error-for="to"]')?.textContent).toMatch(/nobody/));
  });

  it('checks who one host reaches a page at a time, and nothing before one is chosen', async () => {
    const nodes = Array.from({ length: 2000 }, (_, k) => node(k));
    const f = routes([rule('r0', 0, { ports: ['5432'] }), rule('r1', 1, { protocol: 'icmp', ports: undefined })], {
      'POST /rules/check': (c) => (c.body.to.endsWith('1') ? { action: 'accept', rule_id: 'r0', position: 0, reason: 'rule 0' } : { action: 'drop', reason: 'default' }),
    });
    renderPolicy(f, { nodes });
    const reach = await screen.findByTestId('reach');
    await screen.findByLabelText('Edit rule 0');
    expect((reach.querySelector('input[name=reach-flows]') as HTMLInputElement).value).toBe('5432/tcp, icmp');
    expect(f.calls.filter((c) => c.path === '/rules/check')).toHaveLength(0);
    fireEvent.input(reach.querySelector('input[name=reach-source]')!, { target: { value: 'host-0000' } });
    fireEvent.submit(reach.querySelector('form')!);
    await waitFor(() => expect(reach.querySelectorAll('[data-reach] .badge')).toHaveLength(REACH_PAGE * 2));
    const checks = f.calls.filter((c) => c.path === '/rules/check');
    expect(checks).toHaveLength(REACH_PAGE * 2);
    expect(checks.every((c) => c.body.from === 'interface:i0000' && c.body.to !== 'interface:i0000')).toBe(true);
    expect(checks.filter((c) => c.body.port === 'icmp')).toHaveLength(REACH_PAGE);
    expect(reach.querySelector('[data-reach="host-0001/dg-prod|5432/tcp"]')!.textContent).toMatch(/accept · rule 0/);
    expect(reach.querySelector('[data-reach="host-0002/dg-prod|5432/tcp"]')!.textContent).toMatch(/drop · default/);
    expect(reach.textContent).toMatch(/1–20 of 1999/);
    fireEvent.click(within(reach).getByRole('button', { name: 'Next' }));
    await waitFor(() => expect(f.calls.filter((c) => c.path === '/rules/check')).toHaveLength(REACH_PAGE * 4));
    expect(f.calls.filter((c) => c.path === '/rules/check').slice(REACH_PAGE * 2).every((c) => Number(c.body.to.slice(-4)) > REACH_PAGE)).toBe(true);
    // Incoming: the chosen host is the destination.
    fireEvent.change(within(reach).getByLabelText('Direction'), { target: { value: 'to' } });
    await waitFor(() => expect(f.calls.filter((c) => c.path === '/rules/check')).toHaveLength(REACH_PAGE * 6));
    expect(f.calls.filter((c) => c.path === '/rules/check').slice(REACH_PAGE * 4).every((c) => c.body.to === 'interface:i0000')).toBe(true);
  });
});
