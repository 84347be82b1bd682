// Topology data for the network page at any fleet size. The server answers
// a summary and nodes, not N^2 links (GET /networks/{network}/topology), so
// the page loads the nodes once (in pages), the links only where it shows
// them, and afterwards follows the event feed one node at a time. A small
// summary check catches what no event announces: handshakes and hosts going
// up or down.

import type { Client, TopologyQuery } from '../api/client';
import type { Event, Network, TopologyEdge, TopologyNode, TopologySummary } from '../api/types';

/** SMALL is the node count up to which the page shows every link (as SVG). */
export const SMALL = 60;
/** Nodes per request (the server's page bound) and links drawn at most. */
export const NODE_PAGE = 1000;
export const EDGE_CAP = 2000;
/** LINKS_CAP bounds a selected node's links (a mesh of 10,000 has 9,999 each). */
export const LINKS_CAP = 10000;
/** Changed nodes above which one reload is cheaper than node-by-node updates. */
export const MAX_NODE_UPDATES = 40;

export interface TopologyData {
  network: Network;
  summary: TopologySummary;
  nodes: TopologyNode[]; // ordered by interface id
  edges: TopologyEdge[]; // every link of a small network; the problem links of a large one
  edgesMore: boolean; // more links match than edges holds
  full: boolean; // edges holds every link
  index: number;
}

const nodeOnly: TopologyQuery = { edges: 'none', edge_limit: 1 };

/** loadTopology reads a network's summary, all its nodes and the links the picture shows. */
export async function loadTopology(api: Client, name: string, signal?: AbortSignal): Promise<TopologyData> {
  const first = await api.topology(name, { ...nodeOnly, limit: NODE_PAGE }, signal);
  const total = first.summary.nodes;
  const full = total <= SMALL;
  const pages = [];
  for (let offset = NODE_PAGE; offset < total; offset += NODE_PAGE) {
    pages.push(api.topology(name, { ...nodeOnly, limit: NODE_PAGE, offset }, signal));
  }
  const links = api.topology(name, { limit: 1, edges: full ? 'all' : 'problems', edge_limit: EDGE_CAP }, signal);
  const [rest, e] = await Promise.all([Promise.all(pages), links]);
  const nodes = first.nodes.concat(...rest.map((p) => p.nodes));
  return { network: e.network, summary: e.summary, nodes, edges: e.edges, edgesMore: !!e.edges_more, full, index: e.index };
}

/** loadLinks reads one node's links with their handshakes. */
export async function loadLinks(api: Client, name: string, id: string, signal?: AbortSignal) {
  const t = await api.topology(name, { node: id, edges: 'all', edge_limit: LINKS_CAP }, signal);
  return { id, node: t.nodes[0], edges: t.edges, more: !!t.edges_more };
}

/** summaryChanged reports whether two summaries differ in what the picture shows. */
export function summaryChanged(a: TopologySummary, b: TopologySummary): boolean {
  return (Object.keys(a) as (keyof TopologySummary)[]).some((k) => a[k] !== b[k]);
}

/** checkSummary reads the summary alone and reports whether the held data is out of date. */
export async function checkSummary(api: Client, name: string, data: TopologyData, signal?: AbortSignal): Promise<boolean> {
  const t = await api.topology(name, { ...nodeOnly, limit: 1 }, signal);
  return summaryChanged(t.summary, data.summary) || t.network.updated_at !== data.network.updated_at;
}

/** relevant reports whether an event of the feed may change network n's picture. */
export function relevant(e: Event, networkId: string): boolean {
  return ['network', 'interface', 'connection', 'host'].includes(e.kind) && (e.networks ?? []).includes(networkId);
}

/**
 * applyEvents updates data for events of the feed: it re-reads only the
 * nodes that changed (one small request each), drops deleted ones, and
 * answers undefined when a reload is the better way (the network itself
 * changed, or too much did).
 */
export async function applyEvents(api: Client, name: string, data: TopologyData, events: Event[], signal?: AbortSignal): Promise<TopologyData | undefined> {
  const ids = new Set<string>();
  const gone = new Set<string>();
  let links = false;
  for (const e of events) {
    if (!relevant(e, data.network.id)) continue;
    switch (e.kind) {
      case 'network':
        return undefined;
      case 'connection':
        links = true;
        break;
      case 'interface':
        if (e.action === 'deleted') gone.add(e.id);
        else ids.add(e.id);
        break;
      case 'host':
        for (const n of data.nodes) if (n.host_id === e.id) ids.add(n.interface_id);
        break;
    }
  }
  for (const id of gone) ids.delete(id);
  if (!ids.size && !gone.size && !links) return data;
  const total = data.nodes.length + ids.size - gone.size;
  if (ids.size > MAX_NODE_UPDATES || (data.full && (links || total > SMALL)) || (!data.full && total <= SMALL)) return undefined;
  const answers = await Promise.all(
    [...ids].map((id) => api.topology(name, { node: id, edges: data.full ? 'all' : 'none', edge_limit: data.full ? EDGE_CAP : 1 }, signal)),
  );
  const byId = new Map(data.nodes.map((n) => [n.interface_id, n]));
  for (const id of gone) byId.delete(id);
  let edges = data.edges.filter((e) => !gone.has(e.a) && !gone.has(e.b));
  let summary = data.summary;
  for (const t of answers) {
    const n = t.nodes[0];
    if (!n) continue;
    byId.set(n.interface_id, n);
    summary = t.summary;
    if (data.full) edges = edges.filter((e) => e.a !== n.interface_id && e.b !== n.interface_id).concat(t.edges);
  }
  if (links || !answers.length) {
    // The problem links (or, with only deletions, the summary) come in one request.
    const t = await api.topology(name, { limit: 1, edges: data.full ? 'all' : 'problems', edge_limit: EDGE_CAP }, signal);
    summary = t.summary;
    edges = t.edges;
  }
  const nodes = [...byId.values()].sort((a, b) => (a.interface_id < b.interface_id ? -1 : a.interface_id > b.interface_id ? 1 : 0));
  if (data.full) edges.sort((x, y) => (x.a + '/' + x.b < y.a + '/' + y.b ? -1 : 1));
  return { ...data, nodes, edges, summary };
}
