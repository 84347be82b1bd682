// Networks: a server-side paged, filterable list and the create form.

import { useContext, useState } from 'preact/hooks';
import type { Network } from '../api/types';
import { Button, Card, Empty, ErrorState, Link, Loading, Mono, PageHeader, TopologyBadge } from '../components/ui';
import { IconNetwork, IconPlus, IconSearch } from '../components/icons';
import { Pager } from '../components/pager';
import { AppContext } from '../lib/context';
import { ago } from '../lib/format';
import { useAsync, useDebounced, useLive } from '../lib/hooks';
import { navigate } from '../lib/router';
import { NetworkForm } from './networkform';

const LIMIT = 50;

export function NetworksPage() {
  const { api, toast } = useContext(AppContext);
  const [q, setQ] = useState('');
  const dq = useDebounced(q.trim());
  const [offset, setOffset] = useState(0);
  const [creating, setCreating] = useState(false);
  const tick = useLive(['network', 'interface']);
  const list = useAsync((s) => api.listNetworks({ q: dq, limit: LIMIT, offset }, s), [dq, offset, tick]);

  const open = (n: Network) => navigate(`/networks/${encodeURIComponent(n.name)}`);
  return (
    <div class="page">
      <PageHeader
        title="Networks"
        subtitle="Overlays with their address ranges and how their interfaces peer."
        actions={
          <Button variant="primary" icon={<IconPlus />} onClick={() => setCreating(true)}>
            New network
          </Button>
        }
      />
      <Card flush>
        <div class="toolbar">
          <div class="search">
            <IconSearch size={16} />
            <input
              type="search"
              placeholder="Filter by name prefix"
              value={q}
              onInput={(e) => {
                setQ(e.currentTarget.value);
                setOffset(0);
              }}
              aria-label="Filter networks"
            />
          </div>
        </div>
        {list.error != null && !list.data ? (
          <ErrorState error={list.error} onRetry={list.reload} />
        ) : !list.data ? (
          <Loading rows={4} />
        ) : list.data.items.length === 0 ? (
          dq ? (
            <Empty icon={<IconSearch />} title="No matching networks">
              No network name starts with “{dq}”.
            </Empty>
          ) : (
            <Empty
              icon={<IconNetwork />}
              title="No networks yet"
              action={
                <Button variant="primary" icon={<IconPlus />} onClick={() => setCreating(true)}>
                  Create your first network
                </Button>
              }
            >
              A network is a WireGuard overlay: hosts join it through interfaces, and peer by its topology.
            </Empty>
          )
        ) : (
          <>
            <table class="table" data-testid="networks-table">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>IPv4 range</th>
                  <th>IPv6 range</th>
                  <th>Topology</th>
                  <th>Port</th>
                  <th>Updated</th>
                </tr>
              </thead>
              <tbody>
                {list.data.items.map((n) => (
                  <tr key={n.id} class="clickable" onClick={() => open(n)}>
                    <td>
                      <Link to={`/networks/${encodeURIComponent(n.name)}`} class="strong">
                        {n.name}
                      </Link>
                    </td>
                    <td>
                      <Mono>{n.ipv4_range || '—'}</Mono>
                    </td>
                    <td>{n.ipv6_range ? <Mono>{n.ipv6_range}</Mono> : <span class="muted">—</span>}</td>
                    <td>
                      <TopologyBadge topology={n.topology} />
                    </td>
                    <td class="num">{n.listen_port || '—'}</td>
                    <td class="muted">{ago(n.updated_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            <Pager offset={list.data.offset} limit={LIMIT} total={list.data.total} onOffset={setOffset} noun="network" />
          </>
        )}
      </Card>
      {creating && (
        <NetworkForm
          onClose={() => setCreating(false)}
          onSaved={(n) => {
            setCreating(false);
            toast(`Network ${n.name} created`);
            navigate(`/networks/${encodeURIComponent(n.name)}`);
          }}
        />
      )}
    </div>
  );
}
