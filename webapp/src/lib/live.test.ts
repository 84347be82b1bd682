import { describe, expect, it, vi } from 'vitest';
import { Client } from '../api/client';
import type { Event } from '../api/types';
import { apiError, fakeFetch } from '../test/helpers';
import { LiveFeed } from './live';

const ev = (index: number, kind = 'host'): Event => ({ index, time: '2026-01-01T00:00:00Z', kind, action: 'updated', id: `h${index}` });

describe('LiveFeed', () => {
  it('long-polls from the given index and passes changes on', async () => {
    const answers = [
      { index: 12, events: [ev(11), ev(12, 'network')] },
      { index: 12, events: [] },
    ];
    let feed: LiveFeed;
    const f = fakeFetch({
      'GET /events': () => {
        const a = answers.shift();
        if (!a) {
          feed.stop();
          return { index: 12, events: [] };
        }
        return a;
      },
    });
    feed = new LiveFeed(new Client('t', { fetch: f.fetch }), { sleep: async () => {} });
    const seen: Event[][] = [];
    feed.subscribe((e) => seen.push(e));
    const states: string[] = [];
    feed.onState((s) => states.push(s));
    await feed.start(10);
    expect(f.calls.map((c) => c.url.search)).toEqual(['?index=10&wait=0s', '?index=12&wait=30s', '?index=12&wait=30s']);
    expect(seen).toEqual([[ev(11), ev(12, 'network')]]);
    expect(feed.index).toBe(12);
    expect(states).toEqual(['live']);
  });

  it('backs off on errors and stops on 401', async () => {
    let n = 0;
    const f = fakeFetch({
      'GET /events': () => (++n === 1 ? new Response('down', { status: 503 }) : apiError(401, 'bad token')),
    });
    const sleep = vi.fn(async () => {});
    const feed = new LiveFeed(new Client('t', { fetch: f.fetch }), { sleep });
    await feed.start(0);
    expect(n).toBe(2);
    expect(sleep).toHaveBeenCalledWith(1000, expect.anything());
    expect(feed.state).toBe('offline');
  });

  it('ignores events it already has', async () => {
    let n = 0;
    let feed: LiveFeed;
    const f = fakeFetch({
      'GET /events': () => {
        if (++n > 1) feed.stop();
        return { index: 5, events: [ev(4), ev(5)] };
      },
    });
    feed = new LiveFeed(new Client('t', { fetch: f.fetch }), { sleep: async () => {} });
    const seen: number[] = [];
    feed.subscribe((es) => seen.push(...es.map((e) => e.index)));
    await feed.start(4);
    expect(seen).toEqual([5]);
  });
});
