// Overview: counts from GET /status, the latest changes from GET /events and
// the servers from GET /cluster.

import { useContext, useEffect, useState } from 'preact/hooks';
import type { Event, Network } from '../api/types';
import { Badge, Card, Empty, ErrorState, Link, Loading, PageHeader, Stat, TopologyBadge } from '../components/ui';
import { ClusterCard } from '../components/cluster';
import { IconActivity, IconDevice, IconHost, IconNetwork } from '../components/icons';
import { AppContext } from '../lib/context';
import { ago } from '../lib/format';
import { useAsync, useLive, useNow } from '../lib/hooks';

const RECENT = 12;

export function OverviewPage() {
  const { api, live } = useContext(AppContext);
  const tick = useLive(['network', 'host', 'interface', 'connection']);
  const now = useNow();
  const status = useAsync((s) => api.status(s), [tick]);
  const networks = useAsync((s) => api.listNetworks({ limit: 6 }, s), [tick]);
  const [events, setEvents] = useState<Event[]>();
  const [eventsError, setEventsError] = useState<unknown>();

  useEffect(() => {
    const ctrl = new AbortController();
    // Ask only for the changes of the last few indexes, not the whole log.
    api
      .status(ctrl.signal)
      .then((st) => api.events(Math.max(0, st.index - 2 * RECENT), '0s', ctrl.signal))
      .then(
        (r) => setEvents((r.events ?? []).slice(-RECENT).reverse()),
        (e) => !ctrl.signal.aborted && setEventsError(e),
      );
    const off = live?.subscribe((evs) =>
      setEvents((cur) => [...evs.slice().reverse(), ...(cur ?? [])].slice(0, RECENT)),
    );
    return () => {
      ctrl.abort();
      off?.();
    };
  }, [api, live]);

  const s = status.data;
  return (
    <div class="page">
      <PageHeader title="Overview" subtitle="The state of your WireGuard overlay at a glance." />
      {status.error != null && !s ? <ErrorState error={status.error} onRetry={status.reload} /> : null}
      <div class="stats" data-testid="overview-stats">
        <Stat label="Networks" icon={<IconNetwork />} value={s ? s.networks : '–'} detail={s ? `${s.interfaces} interfaces` : ' '} testid="stat-networks" />
        <Stat
          label="Hosts ready"
          tone="green"
          icon={<IconHost />}
          value={s ? s.hosts_ready : '–'}
          detail={s ? `of ${s.hosts} host${s.hosts === 1 ? '' : 's'}${s.hosts_pending ? `, ${s.hosts_pending} pending` : ''}` : ' '}
          testid="stat-ready"
        />
        <Stat
          label="Hosts down"
          tone={s && s.hosts_down > 0 ? 'red' : 'default'}
          icon={<IconHost />}
          value={s ? s.hosts_down : '–'}
          detail={s ? (s.hosts_down ? 'missed heartbeats' : 'all hosts reporting') : ' '}
          testid="stat-down"
        />
        <Stat label="Devices" tone="violet" icon={<IconDevice />} value={s ? s.devices : '–'} detail="plain WireGuard peers" testid="stat-devices" />
      </div>

      <div class="grid-2">
        <Card title="Recent changes" subtitle="Updated live from the change index" testid="recent-changes" flush>
          {eventsError != null && !events ? (
            <ErrorState error={eventsError} />
          ) : !events ? (
            <Loading />
          ) : events.length === 0 ? (
            <Empty icon={<IconActivity />} title="No changes yet">
              Changes to networks, hosts and connections show up here as they happen.
            </Empty>
          ) : (
            <ul class="events">
              {events.map((e) => (
                <li key={`${e.index}-${e.id}`} class="event">
                  <span class={`event-icon event-${e.action}`}>{kindIcon(e.kind)}</span>
                  <div class="event-text">
                    <span class="event-title">
                      <EventTarget e={e} />
                    </span>
                    <span class="event-meta">
                      {e.kind.replace('_', ' ')} {e.action}
                    </span>
                  </div>
                  <Badge tone={e.action === 'deleted' ? 'red' : e.action === 'created' ? 'green' : 'blue'}>{e.action}</Badge>
                  <time class="event-time" title={e.time}>
                    {ago(e.time, now)}
                  </time>
                </li>
              ))}
            </ul>
          )}
        </Card>
        <Card
          title="Networks"
          actions={
            <Link to="/networks" class="card-link">
              View all
            </Link>
          }
          flush
        >
          {networks.error != null && !networks.data ? (
            <ErrorState error={networks.error} onRetry={networks.reload} />
          ) : !networks.data ? (
            <Loading />
          ) : networks.data.items.length === 0 ? (
            <Empty icon={<IconNetwork />} title="No networks yet" action={<Link to="/networks" class="btn btn-primary btn-sm">Create a network</Link>}>
              A network is an overlay with its own address range and topology.
            </Empty>
          ) : (
            <ul class="mini-list">
              {networks.data.items.map((n: Network) => (
                <li key={n.id}>
                  <Link to={`/networks/${encodeURIComponent(n.name)}`} class="mini-link">
                    <span class="mini-name">{n.name}</span>
                    <span class="mini-meta">{[n.ipv4_range, n.ipv6_range].filter(Boolean).join(' · ')}</span>
                  </Link>
                  <TopologyBadge topology={n.topology} />
                </li>
              ))}
            </ul>
          )}
        </Card>
      </div>
      <ClusterCard />
    </div>
  );
}

function kindIcon(kind: string) {
  switch (kind) {
    case 'network':
      return <IconNetwork size={16} />;
    case 'host':
      return <IconHost size={16} />;
    case 'interface':
      return <IconDevice size={16} />;
    default:
      return <IconActivity size={16} />;
  }
}

function EventTarget({ e }: { e: Event }) {
  const label = e.name || e.id;
  if (e.action !== 'deleted') {
    if (e.kind === 'network') return <Link to={`/networks/${encodeURIComponent(e.name || e.id)}`}>{label}</Link>;
    if (e.kind === 'host') return <Link to={`/hosts/${encodeURIComponent(e.id)}`}>{label}</Link>;
  }
  return <span>{label}</span>;
}
