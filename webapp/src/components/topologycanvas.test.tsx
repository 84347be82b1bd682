import { render } from '@testing-library/preact';
import { quadtree } from 'd3-quadtree';
import { describe, expect, it, vi } from 'vitest';
import type { TopologyNode } from '../api/types';
import { clusterLayout, groupOf, pick, TopologyCanvas, type Placed } from './topologycanvas';

const now = Date.parse('2026-03-01T12:00:00Z');
const node = (id: string, over: Partial<TopologyNode> = {}): TopologyNode => ({ interface_id: id, name: id, addresses: [], status: 'ready', peers: 2, fresh: 2, stale: 0, never: 0, ...over });

describe('clusterLayout', () => {
  it('groups nodes by state, problems first, and keeps them inside the canvas', () => {
    const nodes = [
      ...Array.from({ length: 5000 }, (_, k) => node(`r${k}`)),
      node('down', { status: 'down' }),
      node('never', { fresh: 0, never: 2 }),
      node('phone', { device: true, status: 'device', fresh: 0, never: 2 }),
    ];
    const lay = clusterLayout(nodes);
    expect(lay.clusters.map((c) => [c.group, c.count])).toEqual([
      ['down', 1],
      ['problem', 1],
      ['ready', 5000],
      ['device', 1],
    ]);
    expect(lay.points).toHaveLength(nodes.length);
    const outside = lay.points.filter((p) => !(p.x > 0 && p.x < 800 && p.y > 0 && p.y < lay.height));
    expect(outside).toEqual([]);
    expect(groupOf(nodes[nodes.length - 1])).toBe('device');
  });

  it('lays out 10,000 nodes in well under a frame budget of a second', () => {
    const nodes = Array.from({ length: 10000 }, (_, k) => node(`n${k}`, k % 10 ? {} : { never: 1 }));
    const t = performance.now();
    const lay = clusterLayout(nodes);
    expect(performance.now() - t).toBeLessThan(500);
    expect(lay.byId.size).toBe(10000);
  });
});

describe('pick', () => {
  it('finds the nearest node within the radius', () => {
    const pts: Placed[] = [
      { id: 'a', x: 10, y: 10, group: 'ready' },
      { id: 'b', x: 100, y: 100, group: 'ready' },
    ];
    const tree = quadtree<Placed>().x((p) => p.x).y((p) => p.y).addAll(pts);
    expect(pick(tree, 12, 9, 8)?.id).toBe('a');
    expect(pick(tree, 50, 50, 8)).toBeUndefined();
  });
});

describe('TopologyCanvas', () => {
  it('states what it draws: nodes and links by freshness', () => {
    const { container } = render(
      <TopologyCanvas
        now={now}
        nodes={[node('a'), node('b'), node('c', { status: 'down' })]}
        edges={[
          { a: 'a', b: 'c', last_handshake: new Date(now - 600e3).toISOString() },
          { a: 'b', b: 'c' },
        ]}
        onSelect={vi.fn()}
      />,
    );
    const c = container.querySelector('canvas')!;
    expect(c.dataset.nodes).toBe('3');
    expect([c.dataset.fresh, c.dataset.stale, c.dataset.never]).toEqual(['0', '1', '1']);
    expect(c.getAttribute('aria-label')).toMatch(/3 interfaces in 2 groups/);
  });
});
