// TopologyView draws a network's interfaces and connections as an SVG graph;
// edges are coloured by handshake freshness.

import type { TopologyEdge, TopologyNode } from '../api/types';
import { ago, freshness } from '../lib/format';

export interface Point {
  x: number;
  y: number;
}

export const WIDTH = 800;
export const HEIGHT = 440;

/** layout places nodes on a circle; a hub, if given, sits in the middle. */
export function layout(nodes: TopologyNode[], hubId?: string, w = WIDTH, h = HEIGHT): Map<string, Point> {
  const pos = new Map<string, Point>();
  const cx = w / 2;
  const cy = h / 2;
  const hub = hubId ? nodes.find((n) => n.interface_id === hubId) : undefined;
  const ring = nodes.filter((n) => n !== hub);
  if (hub) pos.set(hub.interface_id, { x: cx, y: cy });
  if (ring.length === 1 && !hub) {
    pos.set(ring[0].interface_id, { x: cx, y: cy });
    return pos;
  }
  const rx = w / 2 - 110;
  const ry = h / 2 - 60;
  // Two nodes side by side read better than one above the other.
  const start = ring.length === 2 && !hub ? Math.PI : -Math.PI / 2;
  ring.forEach((n, i) => {
    const a = start + (2 * Math.PI * i) / ring.length;
    pos.set(n.interface_id, { x: cx + rx * Math.cos(a), y: cy + ry * Math.sin(a) });
  });
  return pos;
}

const nodeClass: Record<string, string> = { ready: 'ready', down: 'down', pending: 'pending', device: 'device' };

export function TopologyView(props: { nodes: TopologyNode[]; edges: TopologyEdge[]; hubId?: string; now: number }) {
  const { nodes, edges, now } = props;
  const pos = layout(nodes, props.hubId);
  const labels = nodes.length <= 40;
  const r = nodes.length > 60 ? 6 : nodes.length > 20 ? 10 : 16;
  const byId = new Map(nodes.map((n) => [n.interface_id, n]));
  return (
    <div class="topology">
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label="Network topology" data-testid="topology-svg">
        <g class="edges">
          {edges.map((e) => {
            const a = pos.get(e.a);
            const b = pos.get(e.b);
            if (!a || !b) return null;
            const f = freshness(e.last_handshake, now);
            const title = `${byId.get(e.a)?.name ?? e.a} ↔ ${byId.get(e.b)?.name ?? e.b}: ${
              f === 'never' ? 'no handshake yet' : `handshake ${ago(e.last_handshake, now)}`
            }${e.implicit ? ' (from the topology)' : ''}`;
            return (
              <line
                key={`${e.a}-${e.b}`}
                x1={a.x}
                y1={a.y}
                x2={b.x}
                y2={b.y}
                class={`edge edge-${f} ${e.implicit ? 'edge-implicit' : ''}`}
                data-freshness={f}
              >
                <title>{title}</title>
              </line>
            );
          })}
        </g>
        <g class="nodes">
          {nodes.map((n) => {
            const p = pos.get(n.interface_id)!;
            const status = n.device ? 'device' : n.status;
            const below = p.y >= HEIGHT / 2 || nodes.length < 3;
            return (
              <g key={n.interface_id} class={`node node-${nodeClass[status] ?? 'pending'}`} transform={`translate(${p.x} ${p.y})`} data-node={n.name}>
                <title>{`${n.name} · ${n.addresses.join(', ')} · ${status}`}</title>
                <circle r={r + 5} class="node-halo" />
                <circle r={r} class="node-dot" />
                {n.device ? (
                  <rect x={-r / 3} y={-r / 2} width={(2 * r) / 3} height={r} rx={2} class="node-glyph" />
                ) : (
                  <path d={`M${-r / 2.4} ${-r / 4}h${r / 1.2}M${-r / 2.4} ${r / 4}h${r / 1.2}`} class="node-glyph" />
                )}
                {labels && (
                  <>
                    <text y={below ? r + 20 : -r - 22} class="node-label">
                      {n.name}
                    </text>
                    <text y={below ? r + 35 : -r - 8} class="node-addr">
                      {n.addresses[0] ?? ''}
                    </text>
                  </>
                )}
              </g>
            );
          })}
        </g>
      </svg>
      <div class="legend">
        <HandshakeSwatches />
        <span>
          <i class="swatch explicit" /> added connection
        </span>
        <span class="legend-sep" />
        <span>
          <i class="dot-ready" /> ready
        </span>
        <span>
          <i class="dot-down" /> down
        </span>
        <span>
          <i class="dot-pending" /> pending
        </span>
        <span>
          <i class="dot-device" /> device
        </span>
      </div>
    </div>
  );
}

/** HandshakeSwatches is the legend of a link's colour by its last handshake. */
export function HandshakeSwatches() {
  return (
    <>
      <span>
        <i class="swatch fresh" /> handshake &lt; 3 min
      </span>
      <span>
        <i class="swatch stale" /> older
      </span>
      <span>
        <i class="swatch never" /> never
      </span>
    </>
  );
}
