// TopologyCanvas draws a large network on a canvas, in levels of detail:
// nodes grouped in clusters by state (problems first and larger), the
// problem links the server answers, and the selected node's links coloured
// by handshake freshness. Picking uses a d3-quadtree, so a click costs
// O(log n) at any size; a redraw is one path per colour.

import { quadtree, type Quadtree } from 'd3-quadtree';
import { useEffect, useMemo, useRef } from 'preact/hooks';
import type { TopologyEdge, TopologyNode } from '../api/types';
import { freshness } from '../lib/format';

export const CANVAS_WIDTH = 800;

/** Group is a cluster of the picture: nodes in one state. */
export type Group = 'down' | 'problem' | 'pending' | 'ready' | 'device';

export const GROUPS: { id: Group; label: string; color: string }[] = [
  { id: 'down', label: 'down', color: '#dc2626' },
  { id: 'problem', label: 'ready, links without a fresh handshake', color: '#d97706' },
  { id: 'pending', label: 'pending', color: '#98a2b3' },
  { id: 'ready', label: 'ready', color: '#16a34a' },
  { id: 'device', label: 'devices', color: '#7c3aed' },
];

const EDGE_COLOR = { fresh: '#16a34a', stale: '#d97706', never: '#98a2b3' };

/** LINE_LIMIT is the most links of the selected node drawn as lines; above, its peers are ringed. */
export const LINE_LIMIT = 600;
const DASH_LIMIT = 300;

/** groupOf places a node in its cluster. */
export function groupOf(n: TopologyNode): Group {
  if (n.device) return 'device';
  if (n.status === 'down') return 'down';
  if (n.status === 'pending') return 'pending';
  return n.stale + n.never > 0 ? 'problem' : 'ready';
}

export interface Placed {
  id: string;
  x: number;
  y: number;
  group: Group;
}

export interface Cluster {
  group: Group;
  count: number;
  x: number;
  y: number;
  r: number;
}

export interface CanvasLayout {
  points: Placed[];
  byId: Map<string, Placed>;
  clusters: Cluster[];
  height: number;
  dot: number; // node radius
}

const GOLDEN = Math.PI * (3 - Math.sqrt(5));

/**
 * clusterLayout places each cluster's nodes on a sunflower disc and the
 * discs in rows, in O(n): no force simulation, so 10,000 nodes take
 * milliseconds and stay put between refreshes.
 */
export function clusterLayout(nodes: TopologyNode[], width = CANVAS_WIDTH): CanvasLayout {
  const members = new Map<Group, TopologyNode[]>();
  for (const n of nodes) {
    const g = groupOf(n);
    const list = members.get(g);
    if (list) list.push(n);
    else members.set(g, [n]);
  }
  // Spacing so that all discs fill about half of a width x 0.6 width area.
  const spacing = Math.max(3, Math.min(22, Math.sqrt((width * width * 0.6 * 0.45) / Math.max(1, nodes.length))));
  const pad = 28;
  const clusters: Cluster[] = [];
  const points: Placed[] = [];
  let x = 0;
  let y = pad;
  let rowH = 0;
  for (const { id: group } of GROUPS) {
    const list = members.get(group);
    if (!list?.length) continue;
    // Problems get more room: they are the ones to look at.
    const s = group === 'ready' || group === 'device' ? spacing : spacing * 1.3;
    const r = s * Math.sqrt(list.length) * 0.6 + s;
    if (x > 0 && x + 2 * r + pad > width) {
      x = 0;
      y += rowH + pad;
      rowH = 0;
    }
    const cx = x + pad + r;
    const cy = y + r + 14;
    clusters.push({ group, count: list.length, x: cx, y: cy, r });
    list.forEach((n, k) => {
      const d = s * 0.6 * Math.sqrt(k + 0.5);
      const a = k * GOLDEN;
      points.push({ id: n.interface_id, x: cx + d * Math.cos(a), y: cy + d * Math.sin(a), group });
    });
    x = cx + r;
    rowH = Math.max(rowH, 2 * r + 14);
  }
  if (y === pad && clusters.length) {
    // One row: centre it.
    const shift = (width - (x + pad)) / 2;
    for (const c of clusters) c.x += shift;
    for (const p of points) p.x += shift;
  }
  return { points, byId: new Map(points.map((p) => [p.id, p])), clusters, height: Math.ceil(y + rowH + pad), dot: Math.max(1.2, Math.min(7, spacing * 0.3)) };
}

/** pick answers the node nearest to (x, y) within radius, or undefined. */
export function pick(tree: Quadtree<Placed>, x: number, y: number, radius: number): Placed | undefined {
  return tree.find(x, y, radius);
}

/** edgeCounts counts links by freshness, for the picture's data attributes. */
export function edgeCounts(edges: TopologyEdge[], now: number) {
  const c = { fresh: 0, stale: 0, never: 0 };
  for (const e of edges) c[freshness(e.last_handshake, now)]++;
  return c;
}

export function TopologyCanvas(props: {
  nodes: TopologyNode[];
  edges: TopologyEdge[]; // problem links
  links?: TopologyEdge[]; // the selected node's links
  selected?: string;
  now: number;
  onSelect: (id: string | undefined) => void;
}) {
  const { nodes, edges, links, selected, now } = props;
  const ref = useRef<HTMLCanvasElement>(null);
  const lay = useMemo(() => clusterLayout(nodes), [nodes]);
  const tree = useMemo(() => quadtree<Placed>().x((p) => p.x).y((p) => p.y).addAll(lay.points), [lay]);

  useEffect(() => {
    const c = ref.current;
    const ctx = c?.getContext('2d');
    if (!c || !ctx) return;
    const dpr = window.devicePixelRatio || 1;
    c.width = CANVAS_WIDTH * dpr;
    c.height = lay.height * dpr;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, CANVAS_WIDTH, lay.height);
    const line = (list: TopologyEdge[], alpha: number, width: number) => {
      for (const f of ['never', 'stale', 'fresh'] as const) {
        ctx.beginPath();
        for (const e of list) {
          if (freshness(e.last_handshake, now) !== f) continue;
          const a = lay.byId.get(e.a);
          const b = lay.byId.get(e.b);
          if (!a || !b) continue;
          ctx.moveTo(a.x, a.y);
          ctx.lineTo(b.x, b.y);
        }
        ctx.globalAlpha = alpha;
        ctx.lineWidth = width;
        ctx.strokeStyle = EDGE_COLOR[f];
        // Dashes cost a software rasterizer much per pixel: only for few lines.
        ctx.setLineDash(f === 'never' && list.length <= DASH_LIMIT ? [4, 4] : []);
        ctx.stroke();
      }
      ctx.setLineDash([]);
      ctx.globalAlpha = 1;
    };
    // Level 1: the clusters.
    ctx.font = '600 12px Inter Variable, system-ui, sans-serif';
    for (const cl of lay.clusters) {
      const g = GROUPS.find((x) => x.id === cl.group)!;
      ctx.fillStyle = g.color + '12';
      ctx.beginPath();
      ctx.arc(cl.x, cl.y, cl.r + 6, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillStyle = '#475467';
      ctx.textAlign = 'center';
      ctx.fillText(`${g.label} · ${cl.count.toLocaleString('en')}`, cl.x, cl.y - cl.r - 12);
    }
    // Level 2: problem links, faint unless a node is selected.
    line(edges, selected ? 0.12 : 0.35, 1);
    // Level 3: the nodes, one path per colour.
    for (const g of GROUPS) {
      ctx.beginPath();
      const r = g.id === 'ready' || g.id === 'device' ? lay.dot : lay.dot * 1.4;
      for (const p of lay.points) {
        if (p.group !== g.id) continue;
        ctx.moveTo(p.x + r, p.y);
        ctx.arc(p.x, p.y, r, 0, 2 * Math.PI);
      }
      ctx.fillStyle = g.color;
      ctx.fill();
    }
    // Level 4: the selected node and its links.
    const s = selected ? lay.byId.get(selected) : undefined;
    if (s && links && links.length <= LINE_LIMIT) {
      line(links, 0.8, 1.5);
    } else if (s && links) {
      // Thousands of lines through one point cost seconds to rasterize
      // and show nothing: ring each peer in its link's colour instead.
      for (const f of ['never', 'stale', 'fresh'] as const) {
        ctx.beginPath();
        for (const e of links) {
          if (freshness(e.last_handshake, now) !== f) continue;
          const p = lay.byId.get(e.a === s.id ? e.b : e.a);
          if (!p) continue;
          ctx.moveTo(p.x + lay.dot + 1.5, p.y);
          ctx.arc(p.x, p.y, lay.dot + 1.5, 0, 2 * Math.PI);
        }
        ctx.lineWidth = 1.5;
        ctx.strokeStyle = EDGE_COLOR[f];
        ctx.stroke();
      }
    }
    if (s) {
      ctx.beginPath();
      ctx.arc(s.x, s.y, lay.dot + 6, 0, 2 * Math.PI);
      ctx.lineWidth = 3;
      ctx.strokeStyle = '#101828';
      ctx.stroke();
    }
  }, [lay, edges, links, selected, now]);

  const counts = edgeCounts(links ?? edges, now);
  return (
    <canvas
      ref={ref}
      class="topology-canvas"
      role="img"
      aria-label={`Network topology: ${nodes.length} interfaces in ${lay.clusters.length} groups`}
      data-testid="topology-canvas"
      data-nodes={nodes.length}
      data-edges={(links ?? edges).length}
      data-fresh={counts.fresh}
      data-stale={counts.stale}
      data-never={counts.never}
      data-selected={selected ?? ''}
      data-first={lay.points.length ? `${Math.round(lay.points[0].x)},${Math.round(lay.points[0].y)},${CANVAS_WIDTH}` : ''}
      style={{ width: '100%', aspectRatio: `${CANVAS_WIDTH} / ${lay.height}` }}
      onClick={(e) => {
        const c = e.currentTarget;
        const box = c.getBoundingClientRect();
        const scale = CANVAS_WIDTH / box.width;
        const p = pick(tree, (e.clientX - box.left) * scale, (e.clientY - box.top) * scale, Math.max(8, lay.dot * 3));
        props.onSelect(p?.id);
      }}
    />
  );
}
