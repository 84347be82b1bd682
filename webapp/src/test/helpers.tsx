// Test helpers: a fake REST API behind a mocked fetch, and a renderer that
// provides the signed-in app context.

import { render } from '@testing-library/preact';
import type { ComponentChildren } from 'preact';
import { vi } from 'vitest';
import { Client } from '../api/client';
import { AppContext, type AppState } from '../lib/context';

export interface Call {
  method: string;
  url: URL;
  path: string; // without /api/v1
  headers: Record<string, string>;
  body?: any;
}

type Handler = (call: Call) => unknown | Response | Promise<unknown | Response>;

/** fakeFetch answers requests by "METHOD /path" (path without /api/v1 and without query). */
export function fakeFetch(routes: Record<string, Handler>) {
  const calls: Call[] = [];
  const fetch = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(String(input), 'http://drago.test');
    const path = url.pathname.replace(/^\/api\/v1/, '');
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries((init?.headers as Record<string, string>) ?? {})) headers[k.toLowerCase()] = v;
    const call: Call = {
      method: init?.method ?? 'GET',
      url,
      path,
      headers,
      body: init?.body ? JSON.parse(String(init.body)) : undefined,
    };
    calls.push(call);
    const key = `${call.method} ${path}`;
    const h = routes[key] ?? Object.entries(routes).find(([k]) => matchRoute(k, key))?.[1];
    if (!h) return json({ error: { message: `no route ${key}` } }, 404);
    const out = await h(call);
    if (out instanceof Response) return out;
    if (out === undefined) return new Response(null, { status: 204 });
    if (typeof out === 'string') return new Response(out, { status: 200, headers: { 'Content-Type': 'text/plain' } });
    return json(out);
  });
  return { fetch: fetch as unknown as typeof globalThis.fetch, calls };
}

function matchRoute(pattern: string, key: string): boolean {
  const ps = pattern.split('/');
  const ks = key.split('/');
  return ps.length === ks.length && ps.every((p, i) => p === '*' || p === ks[i]);
}

export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

export function apiError(status: number, message: string, field?: string): Response {
  return json({ error: { message, field } }, status);
}

export function list<T>(items: T[], total = items.length, offset = 0) {
  return { items, offset, total };
}

export function meta(id: string) {
  return { id, created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z', modify_index: 1 };
}

export function renderWithApp(ui: ComponentChildren, fetch: typeof globalThis.fetch, extra: Partial<AppState> = {}) {
  const api = new Client('test-token', { fetch });
  const toast = vi.fn();
  const ctx: AppState = { api, toast, signOut: vi.fn(), ...extra };
  return { ...render(<AppContext.Provider value={ctx}>{ui}</AppContext.Provider>), api, toast };
}
