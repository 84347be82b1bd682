import { fireEvent, screen, waitFor, within } from '@testing-library/preact';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, render } from '@testing-library/preact';
import { SignIn } from '../app';
import type { Host } from '../api/types';
import { apiError, fakeFetch, list, meta, renderWithApp } from '../test/helpers';
import { publicKeyOf } from '../lib/wgkeys';
import { NetworksPage } from './networks';
import { HostsPage, keyAge, PAGE_SIZE } from './hosts';
import { JoinTokensPage, agentCommand } from './jointokens';
import { DevicesPage } from './devices';
import { OverviewPage } from './overview';

afterEach(() => cleanup());

const network = { ...meta('n1'), name: 'office', ipv4_range: '10.10.0.0/24', listen_port: 51820, mtu: 1420, persistent_keepalive: 0, topology: 'mesh' as const, default_action: 'accept' as const };

describe('SignIn', () => {
  it('shows the rejection next to the token field', async () => {
    const f = fakeFetch({ 'GET /status': () => apiError(401, 'invalid token') });
    const onSignIn = vi.fn();
    render(<SignIn onSignIn={onSignIn} fetch={f.fetch} />);
    fireEvent.input(screen.getByLabelText('Management token'), { target: { value: 'wrong' } });
    fireEvent.submit(screen.getByTestId('signin'));
    await waitFor(() => expect(document.querySelector('[data-error-for="token"]')?.textContent).toMatch(/not accepted/));
    expect(onSignIn).not.toHaveBeenCalled();
    expect(f.calls[0].headers.authorization).toBe('Bearer wrong');
  });

  it('signs in with a token the server accepts', async () => {
    const f = fakeFetch({ 'GET /status': () => ({ version: 'v1', index: 1 }) });
    const onSignIn = vi.fn();
    render(<SignIn onSignIn={onSignIn} fetch={f.fetch} />);
    fireEvent.input(screen.getByLabelText('Management token'), { target: { value: ' good ' } });
    fireEvent.submit(screen.getByTestId('signin'));
    await waitFor(() => expect(onSignIn).toHaveBeenCalledWith('good'));
  });
});

describe('NetworksPage', () => {
  it('shows an empty state, then puts the API error next to its field', async () => {
    const f = fakeFetch({
      'GET /networks': () => list([]),
      'POST /networks': () => apiError(400, 'ipv4_range: not a CIDR prefix', 'ipv4_range'),
    });
    renderWithApp(<NetworksPage />, f.fetch);
    await screen.findByText('No networks yet');
    fireEvent.click(screen.getByText('Create your first network'));
    const form = await screen.findByTestId('network-form');
    fireEvent.input(within(form).getByPlaceholderText('office'), { target: { value: 'office' } });
    fireEvent.input(within(form).getByPlaceholderText('10.10.0.0/24'), { target: { value: '10.10.0.0/99' } });
    fireEvent.click(within(form).getByText('Hub'));
    fireEvent.submit(form.querySelector('form')!);
    await waitFor(() => expect(form.querySelector('[data-error-for="ipv4_range"]')?.textContent).toBe('ipv4_range: not a CIDR prefix'));
    expect(form.querySelector('[data-error-for="name"]')).toBeNull();
    const post = f.calls.find((c) => c.method === 'POST')!;
    expect(post.body).toMatchObject({ name: 'office', ipv4_range: '10.10.0.0/99', topology: 'hub' });
  });

  it('lists networks from one page', async () => {
    const f = fakeFetch({ 'GET /networks': () => list([network], 1) });
    renderWithApp(<NetworksPage />, f.fetch);
    await screen.findByText('office');
    expect(f.calls[0].url.searchParams.get('limit')).toBe('50');
  });
});

describe('HostsPage', () => {
  const host = (i: number): Host => ({ ...meta(`h${i}`), name: `host-${String(i).padStart(5, '0')}`, status: i % 7 ? 'ready' : 'down', os: 'linux', arch: 'amd64', last_seen: new Date().toISOString() });

  it('renders a window of 10,000 hosts and fetches only the pages it shows', async () => {
    const f = fakeFetch({
      'GET /hosts': (c) => {
        const offset = Number(c.url.searchParams.get('offset'));
        const limit = Number(c.url.searchParams.get('limit'));
        return list(Array.from({ length: Math.min(limit, 10000 - offset) }, (_, i) => host(offset + i)), 10000, offset);
      },
      'GET /interfaces': () => list([{ ...meta('i'), host_id: 'h', network_id: 'n1', name: 'wg0', addresses: [], listen_port: 1, mtu: 1, key_rotated_at: new Date(Date.now() - 3 * 86400e3).toISOString() }]),
    });
    renderWithApp(<HostsPage />, f.fetch);
    await screen.findByText('host-00000');
    expect(screen.getByTestId('hosts-total').textContent).toBe('10,000 hosts');
    const rows = document.querySelectorAll('.vspacer .vrow');
    expect(rows.length).toBeGreaterThan(5);
    expect(rows.length).toBeLessThan(40);
    const hostCalls = f.calls.filter((c) => c.path === '/hosts');
    expect(hostCalls.every((c) => Number(c.url.searchParams.get('limit')) === PAGE_SIZE)).toBe(true);
    expect(hostCalls.length).toBe(1);
    // Key ages come from the visible hosts' interfaces.
    await waitFor(() => expect(document.querySelector('[data-keyage]')?.textContent).toBe('3 d'));
    expect(f.calls.filter((c) => c.path === '/interfaces').length).toBeLessThanOrEqual(40);
  });

  it('flags the hosts in view whose agent does not enforce the access policy, and counts them all', async () => {
    const f = fakeFetch({
      'GET /hosts': () => list([host(1), host(2)], 2),
      'GET /status': () => ({ version: 'v', index: 1, firewall_behind: 1 }),
      'GET /interfaces': (c) =>
        list([{ ...meta(`i-${c.url.searchParams.get('host')}`), host_id: c.url.searchParams.get('host')!, network_id: 'n1', name: 'wg0', addresses: [], listen_port: 1, mtu: 1, firewall_revision: 5, firewall: c.url.searchParams.get('host') === 'h1' ? { enforced: false, reason: 'not supported on windows' } : { enforced: true, revision: 5 } }]),
    });
    renderWithApp(<HostsPage />, f.fetch);
    await screen.findByText('host-00001');
    await waitFor(() => expect(document.querySelectorAll('[data-firewall="behind"]')).toHaveLength(1));
    const flagged = document.querySelector('[data-firewall="behind"]')!;
    expect(flagged.closest('.vrow')!.textContent).toMatch(/host-00001/);
    expect(flagged.getAttribute('title')).toBe('not supported on windows');
    expect(screen.getByTestId('hosts-firewall-behind').textContent).toMatch(/1 interface not enforcing the access policy/);
  });

  it('filters by name prefix on the server', async () => {
    const f = fakeFetch({ 'GET /hosts': (c) => (c.url.searchParams.get('q') ? list([host(42)], 1) : list([host(1)], 10000)), 'GET /interfaces': () => list([]) });
    renderWithApp(<HostsPage />, f.fetch);
    await screen.findByText('host-00001');
    fireEvent.input(screen.getByLabelText('Filter hosts'), { target: { value: 'host-0004' } });
    await screen.findByText('host-00042');
    expect(f.calls.some((c) => c.url.searchParams.get('q') === 'host-0004')).toBe(true);
  });

  it('shows an empty state with no hosts', async () => {
    const f = fakeFetch({ 'GET /hosts': () => list([]) });
    renderWithApp(<HostsPage />, f.fetch);
    await screen.findByText('No hosts yet');
  });

  it('computes key age from the oldest key', () => {
    const now = Date.parse('2026-01-10T00:00:00Z');
    const i = (t?: string) => ({ ...meta('i'), host_id: 'h', network_id: 'n', name: 'wg0', addresses: [], listen_port: 0, mtu: 0, key_rotated_at: t });
    expect(keyAge([i('2026-01-09T00:00:00Z'), i('2026-01-01T00:00:00Z'), i()], now)).toBe('9 d');
    expect(keyAge([i()], now)).toBe('—');
  });
});

describe('JoinTokensPage', () => {
  it('shows the secret once with the agent command', async () => {
    const f = fakeFetch({
      'GET /join-tokens': () => list([]),
      'GET /networks': () => list([network]),
      'POST /join-tokens': (c) => ({ ...meta('j1'), ...c.body, uses: 0, secret: 'djt_SECRET123' }),
    });
    renderWithApp(<JoinTokensPage />, f.fetch);
    await screen.findByText('No join tokens');
    fireEvent.click(screen.getByText('New join token'));
    const form = await screen.findByTestId('join-token-form');
    fireEvent.input(within(form).getByPlaceholderText('edge-servers'), { target: { value: 'edge' } });
    fireEvent.input(within(form).getByPlaceholderText('unlimited'), { target: { value: '3' } });
    await within(form).findByText('office');
    fireEvent.click(within(form).getByRole('checkbox'));
    fireEvent.submit(form.querySelector('form')!);
    const secret = await screen.findByTestId('join-command');
    expect(secret.textContent).toBe(`drago agent -server ${location.origin} -join djt_SECRET123`);
    const post = f.calls.find((c) => c.method === 'POST')!;
    expect(post.body).toMatchObject({ name: 'edge', max_uses: 3, networks: ['n1'] });
    expect(Date.parse(post.body.expires_at) - Date.now()).toBeGreaterThan(23 * 3600e3);
    expect(agentCommand('https://d.example', 's')).toBe('drago agent -server https://d.example -join s');
  });
});

describe('DevicesPage', () => {
  it('generates the key in the browser, sends only the public key, and shows config and QR code', async () => {
    const gwKey = 'R3dHd0dXZ3dnd2d3Z3dnd2d3Z3dnd2d3Z3dnd2d3Z3c=';
    // As server/state InterfaceConfig writes it for a device of a hub network.
    const serverConfig = [
      '# alice-phone in network office (id d1)',
      '[Interface]',
      'PrivateKey = <private key of this device, never sent to the server>',
      'Address = 10.10.0.9/24',
      'MTU = 1420',
      '',
      '# gw/drago0',
      '[Peer]',
      `PublicKey = ${gwKey}`,
      'AllowedIPs = 10.10.0.0/24',
      'Endpoint = 198.51.100.7:51820',
      'PersistentKeepalive = 25',
      '',
    ].join('\n');
    const f = fakeFetch({
      'GET /networks': () => list([network]),
      'GET /devices': () => list([]),
      'POST /devices': (c) => ({ ...meta('d1'), host_id: '', network_id: 'n1', name: 'phone', device_name: c.body.name, addresses: ['10.10.0.9/24'], listen_port: 0, mtu: 0, public_key: c.body.public_key }),
      'GET /interfaces/d1/config': () => serverConfig,
    });
    renderWithApp(<DevicesPage />, f.fetch);
    await screen.findByText('No devices');
    fireEvent.click(screen.getByText('Add device'));
    const form = await screen.findByTestId('device-form');
    fireEvent.input(within(form).getByPlaceholderText('alice-phone'), { target: { value: 'alice-phone' } });
    fireEvent.submit(form.querySelector('form')!);
    const text = (await screen.findByTestId('device-config-text')).textContent!;
    const post = f.calls.find((c) => c.method === 'POST')!;
    expect(Object.keys(post.body).sort()).toEqual(['name', 'network', 'public_key']);
    const priv = /PrivateKey = (\S+)/.exec(text)![1];
    expect(await publicKeyOf(priv)).toBe(post.body.public_key);
    // The private key went to no request.
    for (const c of f.calls) expect(JSON.stringify(c.body ?? '') + c.url).not.toContain(priv);
    // The server's text, with only the private key put in.
    expect(text).toBe(serverConfig.replace(/^PrivateKey = .*$/m, `PrivateKey = ${priv}`));
    // Nothing but that text went into it: no topology, interfaces or hosts read.
    expect(f.calls.map((c) => c.path).filter((p) => p !== '/networks' && p !== '/devices')).toEqual(['/interfaces/d1/config']);
    expect(screen.getByTestId('qr').querySelector('path')?.getAttribute('d')).toMatch(/^M/);
  });

  it('keeps the private key on screen when the configuration cannot be fetched, and fetches again', async () => {
    let fail = true;
    const f = fakeFetch({
      'GET /networks': () => list([network]),
      'GET /devices': () => list([]),
      'POST /devices': (c) => ({ ...meta('d1'), host_id: '', network_id: 'n1', name: 'phone', device_name: c.body.name, addresses: ['10.10.0.9/24'], listen_port: 0, mtu: 0, public_key: c.body.public_key }),
      'GET /interfaces/d1/config': () => (fail ? apiError(500, 'internal error') : '[Interface]\nPrivateKey = <private key of this device, never sent to the server>\nAddress = 10.10.0.9/24\n'),
    });
    renderWithApp(<DevicesPage />, f.fetch);
    await screen.findByText('No devices');
    fireEvent.click(screen.getByText('Add device'));
    const form = await screen.findByTestId('device-form');
    fireEvent.input(within(form).getByPlaceholderText('alice-phone'), { target: { value: 'alice-phone' } });
    fireEvent.submit(form.querySelector('form')!);
    const dialog = await screen.findByTestId('device-config');
    await within(dialog).findByText('internal error');
    const post = f.calls.find((c) => c.method === 'POST')!;
    const priv = [...dialog.querySelectorAll('.mono')].map((e) => e.textContent ?? '').find((t) => t.endsWith('='))!;
    expect(await publicKeyOf(priv)).toBe(post.body.public_key);
    fail = false;
    fireEvent.click(within(dialog).getByText('Fetch again'));
    const text = (await screen.findByTestId('device-config-text')).textContent!;
    expect(text).toBe(`[Interface]\nPrivateKey = ${priv}\nAddress = 10.10.0.9/24\n`);
  });

  it('shows API errors next to the device fields', async () => {
    const f = fakeFetch({
      'GET /networks': () => list([network]),
      'GET /devices': () => list([]),
      'POST /devices': () => apiError(409, 'name already used in this network', 'name'),
    });
    renderWithApp(<DevicesPage />, f.fetch);
    await screen.findByText('No devices');
    fireEvent.click(screen.getByText('Add device'));
    const form = await screen.findByTestId('device-form');
    fireEvent.input(within(form).getByPlaceholderText('alice-phone'), { target: { value: 'dup' } });
    fireEvent.submit(form.querySelector('form')!);
    await waitFor(() => expect(form.querySelector('[data-error-for="name"]')?.textContent).toBe('name already used in this network'));
  });
});

describe('OverviewPage', () => {
  it('shows counts and recent changes', async () => {
    const f = fakeFetch({
      'GET /status': () => ({ version: 'v1', index: 7, networks: 2, hosts: 5, hosts_ready: 4, hosts_down: 1, hosts_pending: 0, interfaces: 6, devices: 3 }),
      'GET /networks': () => list([network]),
      'GET /events': () => ({ index: 7, events: [{ index: 7, time: new Date().toISOString(), kind: 'network', action: 'created', id: 'n1', name: 'office' }] }),
    });
    renderWithApp(<OverviewPage />, f.fetch);
    await waitFor(() => expect(screen.getByTestId('stat-ready').textContent).toContain('4'));
    expect(screen.getByTestId('stat-ready').textContent).toContain('of 5 hosts');
    expect(screen.getByTestId('stat-down').textContent).toContain('1');
    const recent = screen.getByTestId('recent-changes');
    await within(recent).findByText('office');
  });
});
