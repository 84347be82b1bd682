import { describe, expect, it, vi } from 'vitest';
import { ApiError, Client, queryString } from './client';
import { apiError, fakeFetch, json } from '../test/helpers';

describe('Client', () => {
  it('sends the token as a Bearer header and never in the URL', async () => {
    const f = fakeFetch({ 'GET /status': () => ({ version: 'v1', index: 3 }) });
    const c = new Client('s3cret-token', { fetch: f.fetch });
    await c.status();
    expect(f.calls[0].headers.authorization).toBe('Bearer s3cret-token');
    expect(f.calls[0].url.toString()).not.toContain('s3cret');
    expect(f.calls[0].url.pathname).toBe('/api/v1/status');
  });

  it('pages and filters lists with query parameters', async () => {
    const f = fakeFetch({ 'GET /hosts': () => ({ items: [], offset: 200, total: 0 }) });
    const c = new Client('t', { fetch: f.fetch });
    await c.listHosts({ q: 'web', status: 'ready', limit: 100, offset: 200 });
    const q = f.calls[0].url.searchParams;
    expect(Object.fromEntries(q)).toEqual({ q: 'web', status: 'ready', limit: '100', offset: '200' });
  });

  it('asks for events as a blocking query', async () => {
    const f = fakeFetch({ 'GET /events': () => ({ index: 9, events: [] }) });
    await new Client('t', { fetch: f.fetch }).events(7, '30s');
    expect(f.calls[0].url.search).toBe('?index=7&wait=30s');
  });

  it('escapes path parameters', async () => {
    const f = fakeFetch({ 'GET /networks/*': () => ({}) });
    await new Client('t', { fetch: f.fetch }).getNetwork('a/b c');
    expect(f.calls[0].url.pathname).toBe('/api/v1/networks/a%2Fb%20c');
  });

  it('sends JSON bodies', async () => {
    const f = fakeFetch({ 'POST /networks': (c) => ({ ...c.body, id: 'n1' }) });
    const n = await new Client('t', { fetch: f.fetch }).createNetwork({ name: 'office', ipv4_range: '10.0.0.0/24' });
    expect(f.calls[0].headers['content-type']).toBe('application/json');
    expect(f.calls[0].body).toEqual({ name: 'office', ipv4_range: '10.0.0.0/24' });
    expect(n.id).toBe('n1');
  });

  it('turns error bodies into ApiError with message and field', async () => {
    const f = fakeFetch({ 'POST /networks': () => apiError(400, 'invalid CIDR', 'ipv4_range') });
    const err = await new Client('t', { fetch: f.fetch }).createNetwork({}).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 400, message: 'invalid CIDR', field: 'ipv4_range' });
  });

  it('keeps the status line when the error body is not JSON', async () => {
    const f = fakeFetch({ 'GET /status': () => new Response('oops', { status: 502, statusText: 'Bad Gateway' }) });
    const err = await new Client('t', { fetch: f.fetch }).status().catch((e) => e);
    expect(err).toMatchObject({ status: 502, message: '502 Bad Gateway' });
  });

  it('reports 401 to onUnauthorized', async () => {
    const f = fakeFetch({ 'GET /status': () => apiError(401, 'bad token') });
    const c = new Client('t', { fetch: f.fetch });
    c.onUnauthorized = vi.fn();
    await expect(c.status()).rejects.toThrow('bad token');
    expect(c.onUnauthorized).toHaveBeenCalledOnce();
  });

  it('answers 204 as undefined and config as text', async () => {
    const f = fakeFetch({
      'DELETE /networks/x': () => undefined,
      'GET /interfaces/i1/config': () => '[Interface]\nAddress = 10.0.0.2/24\n',
    });
    const c = new Client('t', { fetch: f.fetch });
    expect(await c.deleteNetwork('x')).toBeUndefined();
    expect(await c.interfaceConfig('i1')).toContain('[Interface]');
    expect(f.calls[1].headers.accept).toBe('text/plain');
  });

  it('builds query strings without empty values', () => {
    expect(queryString({ a: 1, b: '', c: undefined, d: null, e: 'x y' })).toBe('?a=1&e=x+y');
    expect(queryString({})).toBe('');
    expect(json({}).status).toBe(200);
  });
});
