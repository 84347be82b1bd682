// Formatting of times, sizes and keys for display.

export function parseTime(t?: string | null): number | undefined {
  if (!t) return undefined;
  const ms = Date.parse(t);
  // Go's zero time.Time marshals as 0001-01-01T00:00:00Z: treat it as unset.
  if (Number.isNaN(ms) || ms <= 0) return undefined;
  return ms;
}

/** ago formats the time since t, e.g. "12s ago", "3 min ago", "2 d ago". */
export function ago(t?: string | null, now = Date.now()): string {
  const ms = parseTime(t);
  if (ms === undefined) return 'never';
  return duration(now - ms, true);
}

/** duration formats a span of milliseconds compactly. */
export function duration(ms: number, suffix = false): string {
  const s = Math.max(0, Math.round(ms / 1000));
  let out: string;
  if (s < 5 && suffix) return 'just now';
  if (s < 60) out = `${s}s`;
  else if (s < 3600) out = `${Math.floor(s / 60)} min`;
  else if (s < 86400) out = `${Math.floor(s / 3600)} h`;
  else out = `${Math.floor(s / 86400)} d`;
  return suffix ? `${out} ago` : out;
}

/** until formats the time left until t, e.g. "in 3 d", or "expired". */
export function until(t?: string | null, now = Date.now()): string {
  const ms = parseTime(t);
  if (ms === undefined) return 'never';
  if (ms <= now) return 'expired';
  return `in ${duration(ms - now)}`;
}

export function dateTime(t?: string | null): string {
  const ms = parseTime(t);
  if (ms === undefined) return '—';
  return new Date(ms).toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
  });
}

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function bytes(n?: number): string {
  if (!n || n < 0) return '0 B';
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** shortKey abbreviates a base64 WireGuard key for tables. */
export function shortKey(k?: string): string {
  if (!k) return '—';
  return k.length > 12 ? `${k.slice(0, 8)}…${k.slice(-4)}` : k;
}

/** list splits a comma or whitespace separated input into values. */
export function splitList(s: string): string[] {
  return s
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean);
}

export type Freshness = 'fresh' | 'stale' | 'never';

/** FRESH_MS: a handshake younger than this is fresh (WireGuard rekeys every 2 min). */
export const FRESH_MS = 3 * 60 * 1000;

/** freshness classifies a last handshake time: fresh (< 3 min), stale, or never. */
export function freshness(t?: string | null, now = Date.now()): Freshness {
  const ms = parseTime(t);
  if (ms === undefined) return 'never';
  return now - ms < FRESH_MS ? 'fresh' : 'stale';
}

/** parseLabels reads "k=v, k2=v2" into a map; it throws on a malformed pair. */
export function parseLabels(s: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const pair of s.split(/[\s,]+/).filter(Boolean)) {
    const i = pair.indexOf('=');
    if (i <= 0) throw new Error(`"${pair}" is not key=value`);
    out[pair.slice(0, i)] = pair.slice(i + 1);
  }
  return Object.keys(out).length ? out : undefined;
}

export function formatLabels(l?: Record<string, string>): string {
  return l ? Object.entries(l).map(([k, v]) => `${k}=${v}`).join(', ') : '';
}
