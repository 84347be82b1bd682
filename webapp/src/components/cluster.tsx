// The cluster panel: GET /cluster, refreshed every few seconds.

import { useContext } from 'preact/hooks';
import { ApiError } from '../api/client';
import { AppContext } from '../lib/context';
import { clusterView } from '../lib/cluster';
import { ago, dateTime } from '../lib/format';
import { useAsync, useNow } from '../lib/hooks';
import { Badge, Card, ErrorState, Loading, Mono } from './ui';

/** CLUSTER_REFRESH_MS is how often the panel asks again. */
export const CLUSTER_REFRESH_MS = 5000;

/** ClusterCard shows the servers sharing the store; nothing for a token that may not read hosts. */
export function ClusterCard() {
  const { api } = useContext(AppContext);
  const now = useNow(CLUSTER_REFRESH_MS);
  const cluster = useAsync((s) => api.cluster(s), [now]);
  if (cluster.error instanceof ApiError && cluster.error.status === 403) return null;
  const v = cluster.data && clusterView(cluster.data);
  return (
    <Card
      title="Cluster"
      subtitle={v ? `Store: ${v.store} · leader: ${v.leader}` : 'Servers sharing the store'}
      actions={v ? <Badge tone={v.health.tone} dot title={v.health.detail}>{v.health.label}</Badge> : null}
      testid="cluster"
      flush
    >
      {cluster.error != null && !v ? (
        <ErrorState error={cluster.error} onRetry={cluster.reload} />
      ) : !v ? (
        <Loading rows={1} />
      ) : (
        <table class="table" data-testid="cluster-servers">
          <thead>
            <tr>
              <th>Server</th>
              <th>Address</th>
              <th>Started</th>
              <th>Role</th>
            </tr>
          </thead>
          <tbody>
            {v.rows.map((r) => (
              <tr key={r.id} data-server={r.id}>
                <td class="strong">
                  <Mono>{r.id}</Mono>
                  {r.self ? <span class="muted"> (this one)</span> : null}
                </td>
                <td>
                  <Mono>{r.addr || '—'}</Mono>
                </td>
                <td title={dateTime(r.started)}>{ago(r.started, now)}</td>
                <td>{r.leader ? <Badge tone="violet">leader</Badge> : <Badge>follower</Badge>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Card>
  );
}
