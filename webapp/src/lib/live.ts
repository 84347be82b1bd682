// Live updates: one long-poll loop on GET /api/v1/events?index=N&wait=30s per
// signed-in tab. Pages subscribe to the kinds they show and refetch on change.

import { ApiError, isAbort, type Client } from '../api/client';
import type { Event } from '../api/types';

export type LiveState = 'connecting' | 'live' | 'offline';

export interface LiveOptions {
  wait?: string;
  minIntervalMs?: number; // least time between two polls that answered nothing
  maxBackoffMs?: number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

export class LiveFeed {
  index = 0;
  state: LiveState = 'connecting';
  private readonly api: Client;
  private readonly opts: Required<LiveOptions>;
  private readonly subs = new Set<(events: Event[]) => void>();
  private readonly stateSubs = new Set<(s: LiveState) => void>();
  private ctrl?: AbortController;

  constructor(api: Client, opts: LiveOptions = {}) {
    this.api = api;
    this.opts = {
      wait: opts.wait ?? '30s',
      minIntervalMs: opts.minIntervalMs ?? 1000,
      maxBackoffMs: opts.maxBackoffMs ?? 30000,
      sleep: opts.sleep ?? defaultSleep,
    };
  }

  subscribe(fn: (events: Event[]) => void): () => void {
    this.subs.add(fn);
    return () => this.subs.delete(fn);
  }

  onState(fn: (s: LiveState) => void): () => void {
    this.stateSubs.add(fn);
    return () => this.stateSubs.delete(fn);
  }

  private setState(s: LiveState) {
    if (s === this.state) return;
    this.state = s;
    this.stateSubs.forEach((f) => f(s));
  }

  /** start polls for the changes after index until stop is called. */
  start(index: number): Promise<void> {
    this.stop();
    this.index = index;
    const ctrl = new AbortController();
    this.ctrl = ctrl;
    return this.loop(ctrl.signal);
  }

  stop() {
    this.ctrl?.abort();
    this.ctrl = undefined;
  }

  private async loop(signal: AbortSignal) {
    let backoff = 1000;
    let first = true;
    while (!signal.aborted) {
      const started = Date.now();
      try {
        // The first poll does not block, so the connection shows as live at once.
        const res = await this.api.events(this.index, first ? '0s' : this.opts.wait, signal);
        first = false;
        this.setState('live');
        backoff = 1000;
        const events = (res.events ?? []).filter((e) => e.index > this.index);
        if (typeof res.index === 'number') {
          // A smaller index means the server's change index restarted.
          this.index = res.index < this.index && !events.length ? res.index : Math.max(this.index, res.index);
        }
        for (const e of events) this.index = Math.max(this.index, e.index);
        if (events.length) this.subs.forEach((f) => f(events));
        else if (Date.now() - started < this.opts.minIntervalMs) {
          // The server did not block: do not spin.
          await this.opts.sleep(this.opts.minIntervalMs, signal);
        }
      } catch (err) {
        if (signal.aborted || isAbort(err)) return;
        if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
          this.setState('offline');
          return;
        }
        this.setState('offline');
        await this.opts.sleep(backoff, signal);
        backoff = Math.min(backoff * 2, this.opts.maxBackoffMs);
      }
    }
  }
}
