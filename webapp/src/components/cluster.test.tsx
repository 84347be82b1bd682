import { cleanup, screen, waitFor } from '@testing-library/preact';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { apiError, fakeFetch, renderWithApp } from '../test/helpers';
import { CLUSTER_REFRESH_MS, ClusterCard } from './cluster';

afterEach(() => {
  cleanup();
  vi.useRealTimers();
});

const three = {
  store: 'etcd',
  healthy: true,
  server: 's2',
  leader: 's1',
  servers: [
    { id: 's1', addr: '10.0.0.1:8080', started: '2026-01-01T00:00:00Z', leader: true },
    { id: 's2', addr: '10.0.0.2:8080', started: '2026-01-01T00:01:00Z' },
    { id: 's3', addr: '10.0.0.3:8080', started: '2026-01-01T00:02:00Z' },
  ],
};

describe('ClusterCard', () => {
  it('shows the servers, the leader and this one, and refreshes', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    let answer: unknown = three;
    const f = fakeFetch({ 'GET /cluster': () => answer });
    renderWithApp(<ClusterCard />, f.fetch);
    const table = await screen.findByTestId('cluster-servers');
    const rows = [...table.querySelectorAll('tbody tr')].map((r) => r.textContent);
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatch(/s1.*10\.0\.0\.1:8080.*leader/);
    expect(rows[1]).toMatch(/s2 \(this one\).*follower/);
    expect(screen.getByTestId('cluster').textContent).toMatch(/Store: etcd · leader: 10\.0\.0\.1:8080/);
    expect(screen.getByText('healthy')).toBeTruthy();

    // s1 stops: s3 leads, and this server is cut off.
    answer = { ...three, healthy: false, leader: 's3', servers: [three.servers[1], { ...three.servers[2], leader: true }] };
    await vi.advanceTimersByTimeAsync(CLUSTER_REFRESH_MS);
    await waitFor(() => expect(screen.getByText('cut off')).toBeTruthy());
    const after = [...screen.getByTestId('cluster-servers').querySelectorAll('tbody tr')].map((r) => r.textContent);
    expect(after).toHaveLength(2);
    expect(after[1]).toMatch(/s3.*leader/);
    expect(f.calls.filter((c) => c.path === '/cluster').length).toBeGreaterThanOrEqual(2);
  });

  it('is absent for a token that may not read hosts', async () => {
    const f = fakeFetch({ 'GET /cluster': () => apiError(403, 'not allowed') });
    renderWithApp(<ClusterCard />, f.fetch);
    await waitFor(() => expect(f.calls.length).toBe(1));
    await waitFor(() => expect(screen.queryByTestId('cluster')).toBeNull());
  });

  it('shows another error with a retry', async () => {
    const f = fakeFetch({ 'GET /cluster': () => apiError(500, 'boom') });
    renderWithApp(<ClusterCard />, f.fetch);
    expect(await screen.findByText('boom')).toBeTruthy();
    expect(screen.getByText('Retry')).toBeTruthy();
  });
});
