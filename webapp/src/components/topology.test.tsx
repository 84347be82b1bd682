import { render } from '@testing-library/preact';
import { describe, expect, it } from 'vitest';
import { layout, TopologyView } from './topology';

const now = Date.parse('2026-03-01T12:00:00Z');
const node = (id: string, status = 'ready', device = false) => ({ interface_id: id, name: id, addresses: ['10.0.0.1/24'], status, device, peers: 3, fresh: 1, stale: 1, never: 1 });

describe('TopologyView', () => {
  it('colours edges by handshake freshness', () => {
    const { container } = render(
      <TopologyView
        now={now}
        nodes={[node('a'), node('b'), node('c', 'down'), node('d', 'device', true)]}
        edges={[
          { a: 'a', b: 'b', last_handshake: new Date(now - 60e3).toISOString() },
          { a: 'a', b: 'c', last_handshake: new Date(now - 600e3).toISOString() },
          { a: 'a', b: 'd', implicit: true },
        ]}
      />,
    );
    const edges = [...container.querySelectorAll('line')].map((l) => l.getAttribute('data-freshness'));
    expect(edges).toEqual(['fresh', 'stale', 'never']);
    expect(container.querySelectorAll('.node')).toHaveLength(4);
    expect(container.querySelector('.node-device')).not.toBeNull();
    expect(container.querySelector('.node-down')).not.toBeNull();
  });

  it('puts the hub in the middle', () => {
    const pos = layout([node('a'), node('hub'), node('b')], 'hub', 800, 440);
    expect(pos.get('hub')).toEqual({ x: 400, y: 220 });
    expect(pos.get('a')!.y).toBeLessThan(220);
  });
});
