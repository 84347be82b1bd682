import { describe, expect, it } from 'vitest';
import { Client } from '../api/client';
import type { Topology, TopologyNode, TopologySummary } from '../api/types';
import { fakeFetch, meta } from '../test/helpers';
import { applyEvents, checkSummary, loadTopology, NODE_PAGE, SMALL } from './topology';

const network = { ...meta('n1'), name: 'fleet', ipv4_range: '10.64.0.0/16', listen_port: 51820, mtu: 1420, persistent_keepalive: 0, topology: 'mesh' as const, default_action: 'accept' as const };
const node = (k: number, over: Partial<TopologyNode> = {}): TopologyNode => ({
  interface_id: `i${String(k).padStart(5, '0')}`,
  host_id: `h${k}`,
  name: `host-${k}`,
  addresses: [`10.64.0.${k}/16`],
  status: 'ready',
  peers: 1,
  fresh: 0,
  stale: 0,
  never: 1,
  ...over,
});
const summary = (nodes: number): TopologySummary => ({ nodes, ready: nodes, down: 0, pending: 0, devices: 0, links: (nodes * (nodes - 1)) / 2, problems: nodes, fresh: 0, stale: 0 });

/** fakeTopology answers GET /networks/fleet/topology as the server would, for n nodes. */
function fakeTopology(n: number, nodes = Array.from({ length: n }, (_, k) => node(k))) {
  return fakeFetch({
    'GET /networks/fleet/topology': ({ url }): Topology => {
      const q = url.searchParams;
      const id = q.get('node');
      const limit = Number(q.get('limit') || 100);
      const offset = Number(q.get('offset') || 0);
      const picked = id ? nodes.filter((x) => x.interface_id === id) : nodes.slice(offset, offset + limit);
      const edges = q.get('edges') === 'none' ? [] : [{ a: nodes[0].interface_id, b: nodes[1].interface_id, implicit: true }];
      return { network, index: 9, summary: summary(nodes.length), nodes: picked, offset, edges };
    },
  });
}

describe('loadTopology', () => {
  it('reads a small network with every link', async () => {
    const f = fakeTopology(SMALL);
    const t = await loadTopology(new Client('t', { fetch: f.fetch }), 'fleet');
    expect(t.full).toBe(true);
    expect(t.nodes).toHaveLength(SMALL);
    expect(f.calls.map((c) => c.url.searchParams.get('edges'))).toEqual(['none', 'all']);
  });

  it('reads a large network in node pages and its problem links only', async () => {
    const f = fakeTopology(2500);
    const t = await loadTopology(new Client('t', { fetch: f.fetch }), 'fleet');
    expect(t.full).toBe(false);
    expect(t.nodes).toHaveLength(2500);
    expect(t.nodes[2499].interface_id).toBe('i02499');
    const asked = f.calls.map((c) => Object.fromEntries(c.url.searchParams));
    expect(asked.filter((q) => q.edges === 'none').map((q) => Number(q.offset ?? 0))).toEqual([0, NODE_PAGE, 2 * NODE_PAGE]);
    expect(asked.filter((q) => q.edges === 'problems')).toHaveLength(1);
    expect(asked.every((q) => q.edges !== 'all'), 'no request for all links').toBe(true);
  });
});

describe('applyEvents', () => {
  const ev = (kind: string, action: string, id: string) => ({ index: 10, time: '2026-01-01T00:00:00Z', kind, action, id, networks: ['n1'] });

  it('re-reads only the changed node and drops deleted ones', async () => {
    const nodes = Array.from({ length: 100 }, (_, k) => node(k));
    const f = fakeTopology(100, nodes);
    const api = new Client('t', { fetch: f.fetch });
    const data = await loadTopology(api, 'fleet');
    f.calls.length = 0;
    nodes[5] = node(5, { status: 'down' });
    const next = await applyEvents(api, 'fleet', data, [ev('host', 'updated', 'h5'), ev('interface', 'deleted', 'i00007'), ev('token', 'created', 'x')]);
    expect(f.calls.map((c) => c.url.searchParams.get('node'))).toEqual(['i00005']);
    expect(next!.nodes).toHaveLength(99);
    expect(next!.nodes.find((x) => x.interface_id === 'i00005')!.status).toBe('down');
    expect(next!.nodes.some((x) => x.interface_id === 'i00007')).toBe(false);
  });

  it('asks for a reload when the network itself changed', async () => {
    const f = fakeTopology(100);
    const api = new Client('t', { fetch: f.fetch });
    const data = await loadTopology(api, 'fleet');
    expect(await applyEvents(api, 'fleet', data, [ev('network', 'updated', 'n1')])).toBeUndefined();
  });

  it('ignores other networks without a request', async () => {
    const f = fakeTopology(100);
    const api = new Client('t', { fetch: f.fetch });
    const data = await loadTopology(api, 'fleet');
    f.calls.length = 0;
    expect(await applyEvents(api, 'fleet', data, [{ ...ev('interface', 'created', 'x'), networks: ['n2'] }])).toBe(data);
    expect(f.calls).toHaveLength(0);
  });
});

describe('checkSummary', () => {
  it('reads the summary alone and reports a change', async () => {
    const f = fakeTopology(100);
    const api = new Client('t', { fetch: f.fetch });
    const data = await loadTopology(api, 'fleet');
    f.calls.length = 0;
    expect(await checkSummary(api, 'fleet', data)).toBe(false);
    expect(f.calls[0].url.searchParams.get('limit')).toBe('1');
    expect(f.calls[0].url.searchParams.get('edges')).toBe('none');
    expect(await checkSummary(api, 'fleet', { ...data, summary: { ...data.summary, down: 1 } })).toBe(true);
  });
});
