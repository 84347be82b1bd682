// The cluster panel's view of GET /cluster: the store, this server's
// health, and the running servers, the leader and this one marked.

import type { Cluster } from '../api/types';

export interface ClusterRow {
  id: string;
  addr: string;
  started: string;
  leader: boolean;
  self: boolean;
}

export interface ClusterView {
  store: string;
  health: { tone: 'green' | 'red'; label: string; detail: string };
  rows: ClusterRow[];
  /** leader names the server running the cluster's jobs: its address, else its id, else none. */
  leader: string;
}

/** clusterView orders the servers by start time, oldest first (ids break ties). */
export function clusterView(c: Cluster): ClusterView {
  const rows = (c.servers ?? [])
    .map((s) => ({ id: s.id, addr: s.addr, started: s.started, leader: !!s.leader || s.id === c.leader, self: s.id === c.server }))
    .sort((a, b) => a.started.localeCompare(b.started) || a.id.localeCompare(b.id));
  const lead = rows.find((r) => r.leader);
  return {
    store: c.store === 'etcd' ? 'etcd' : c.store === 'bolt' ? 'bolt (one server)' : c.store,
    health: c.healthy
      ? { tone: 'green', label: 'healthy', detail: 'this server is up to date with its store' }
      : { tone: 'red', label: 'cut off', detail: 'this server cannot reach its store: it refuses requests until it is back' },
    rows,
    leader: lead ? lead.addr || lead.id : c.leader || 'none',
  };
}
