import { describe, expect, it } from 'vitest';
import { clusterView } from './cluster';

describe('clusterView', () => {
  it('orders three etcd servers by start, marks the leader and this one', () => {
    const v = clusterView({
      store: 'etcd',
      healthy: true,
      server: 'b',
      leader: 'c',
      servers: [
        { id: 'b', addr: 'd2:8080', started: '2026-01-02T00:00:00Z' },
        { id: 'c', addr: 'd3:8080', started: '2026-01-01T00:00:00Z', leader: true },
        { id: 'a', addr: '', started: '2026-01-02T00:00:00Z' },
      ],
    });
    expect(v.rows).toEqual([
      { id: 'c', addr: 'd3:8080', started: '2026-01-01T00:00:00Z', leader: true, self: false },
      { id: 'a', addr: '', started: '2026-01-02T00:00:00Z', leader: false, self: false },
      { id: 'b', addr: 'd2:8080', started: '2026-01-02T00:00:00Z', leader: false, self: true },
    ]);
    expect(v.store).toBe('etcd');
    expect(v.leader).toBe('d3:8080');
    expect(v.health).toMatchObject({ tone: 'green', label: 'healthy' });
  });

  it('shows a cut-off server, and a leader outside the list by id', () => {
    const v = clusterView({ store: 'etcd', healthy: false, server: 'a', leader: 'z', servers: [{ id: 'a', addr: ':8080', started: '2026-01-01T00:00:00Z' }] });
    expect(v.health).toMatchObject({ tone: 'red', label: 'cut off' });
    expect(v.leader).toBe('z');
    expect(v.rows[0]).toMatchObject({ leader: false, self: true });
  });

  it('names a bolt store a cluster of one, and no leader as none', () => {
    expect(clusterView({ store: 'bolt', healthy: true, server: 'a', leader: '', servers: [] })).toMatchObject({ store: 'bolt (one server)', leader: 'none', rows: [] });
  });
});
