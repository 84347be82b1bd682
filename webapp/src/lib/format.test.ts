import { describe, expect, it } from 'vitest';
import { ago, bytes, freshness, parseLabels, shortKey, splitList, until } from './format';

const now = Date.parse('2026-03-01T12:00:00Z');
const before = (s: number) => new Date(now - s * 1000).toISOString();

describe('format', () => {
  it('classifies handshakes: < 3 min fresh, older stale, none never', () => {
    expect(freshness(before(10), now)).toBe('fresh');
    expect(freshness(before(179), now)).toBe('fresh');
    expect(freshness(before(180), now)).toBe('stale');
    expect(freshness(before(86400), now)).toBe('stale');
    expect(freshness(undefined, now)).toBe('never');
    expect(freshness('0001-01-01T00:00:00Z', now)).toBe('never');
  });

  it('says how long ago', () => {
    expect(ago(before(2), now)).toBe('just now');
    expect(ago(before(42), now)).toBe('42s ago');
    expect(ago(before(600), now)).toBe('10 min ago');
    expect(ago(before(7200), now)).toBe('2 h ago');
    expect(ago(before(3 * 86400), now)).toBe('3 d ago');
    expect(ago(undefined, now)).toBe('never');
    expect(until(new Date(now + 86400e3).toISOString(), now)).toBe('in 1 d');
    expect(until(before(1), now)).toBe('expired');
  });

  it('formats sizes, keys and lists', () => {
    expect(bytes(0)).toBe('0 B');
    expect(bytes(512)).toBe('512 B');
    expect(bytes(1536)).toBe('1.5 KiB');
    expect(bytes(50 * 1024 * 1024)).toBe('50 MiB');
    expect(shortKey('abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG=')).toBe('abcdefgh…EFG=');
    expect(splitList(' 10.0.0.1/32, 10.0.0.2/32\n fd00::1/128 ')).toEqual(['10.0.0.1/32', '10.0.0.2/32', 'fd00::1/128']);
  });

  it('parses labels', () => {
    expect(parseLabels('site=par, role=db')).toEqual({ site: 'par', role: 'db' });
    expect(parseLabels('  ')).toBeUndefined();
    expect(() => parseLabels('oops')).toThrow('not key=value');
  });
});
