// Sparklines of the counter history the server keeps (a point a minute for
// the last hour): transfer per minute and handshake age.

import type { CounterPoint } from '../api/types';
import { bytes, duration } from '../lib/format';

/** rates answers the bytes moved (received + sent) in each minute between points; a counter that fell (a restarted device) counts from 0. */
export function rates(points: CounterPoint[]): number[] {
  const out: number[] = [];
  for (let k = 1; k < points.length; k++) {
    const a = points[k - 1];
    const b = points[k];
    const minutes = Math.max(1, (Date.parse(b.time) - Date.parse(a.time)) / 60000);
    const d = (x: number, y: number) => (y >= x ? y - x : y);
    out.push((d(a.rx_bytes, b.rx_bytes) + d(a.tx_bytes, b.tx_bytes)) / minutes);
  }
  return out;
}

/** handshakeAges answers, per point, the seconds from the last handshake to the point's minute (-1: none). */
export function handshakeAges(points: CounterPoint[]): number[] {
  return points.map((p) => (p.last_handshake ? Math.max(0, (Date.parse(p.time) + 60000 - Date.parse(p.last_handshake)) / 1000) : -1));
}

/** Sparkline draws values as a small line, scaled to their maximum. */
export function Sparkline(props: { values: number[]; width?: number; height?: number; label: string; testid?: string }) {
  const { values, width = 96, height = 22 } = props;
  if (values.length < 2) {
    return (
      <span class="muted small" data-testid={props.testid} title={props.label}>
        collecting…
      </span>
    );
  }
  const max = Math.max(1, ...values);
  const step = width / (values.length - 1);
  const pts = values.map((v, k) => `${(k * step).toFixed(1)},${(height - 1 - (Math.max(v, 0) / max) * (height - 2)).toFixed(1)}`).join(' ');
  return (
    <svg class="sparkline" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={props.label} data-testid={props.testid}>
      <title>{props.label}</title>
      <polyline points={pts} fill="none" stroke="currentColor" stroke-width="1.5" />
    </svg>
  );
}

/** TrafficSpark shows the transfer per minute of a series, with the last minute's figure. */
export function TrafficSpark({ points, testid }: { points: CounterPoint[]; testid?: string }) {
  const r = rates(points);
  const last = r.length ? r[r.length - 1] : undefined;
  return (
    <span class="spark">
      <Sparkline values={r} label={`Transfer per minute over the last hour${last !== undefined ? `; last: ${bytes(last)}/min` : ''}`} testid={testid} />
      {last !== undefined && <span class="muted small">{bytes(last)}/min</span>}
    </span>
  );
}

/** HandshakeSpark shows the handshake age of a series over the last hour. */
export function HandshakeSpark({ points, testid }: { points: CounterPoint[]; testid?: string }) {
  const ages = handshakeAges(points);
  const last = ages.length ? ages[ages.length - 1] : -1;
  return (
    <span class="spark">
      <Sparkline values={ages} label={`Handshake age over the last hour${last >= 0 ? `; last: ${duration(last * 1000)}` : ''}`} testid={testid} />
    </span>
  );
}
