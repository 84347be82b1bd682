// A network's page: its topology picture (live), interfaces and connections.

import { useContext, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, isAbort } from '../api/client';
import type { Connection, Event as FeedEvent, Interface, Network, TopologyNode } from '../api/types';
import {
  PendingPage,
  Alert,
  Badge,
  Button,
  Card,
  ConfirmDialog,
  DefList,
  Empty,
  ErrorState,
  Field,
  FormErrors,
  Link,
  Loading,
  Mono,
  Modal,
  PageHeader,
  TopologyBadge,
} from '../components/ui';
import { IconDevice, IconEdit, IconHost, IconLink, IconNetwork, IconPlus, IconTrash } from '../components/icons';
import { Pager } from '../components/pager';
import { HandshakeSwatches, TopologyView } from '../components/topology';
import { GROUPS, TopologyCanvas } from '../components/topologycanvas';
import { AppContext } from '../lib/context';
import { ago, freshness, shortKey, splitList } from '../lib/format';
import { useAsync, useLive, useNow } from '../lib/hooks';
import { navigate } from '../lib/router';
import { applyEvents, checkSummary, loadLinks, loadTopology, relevant, type TopologyData } from '../lib/topology';
import { NetworkForm } from './networkform';
import { PolicySection } from './policy';
import { FirewallBadge } from '../components/firewall';
import { HandshakeSpark, TrafficSpark } from '../components/sparkline';

const LIMIT = 100;
/** How often the page asks for the topology summary alone (handshakes and heartbeats send no events). */
export const SUMMARY_CHECK_MS = 15000;
/** How long events gather before the picture follows them. */
const EVENT_BATCH_MS = 300;

/**
 * useTopology holds a network's topology: loaded once, then updated node by
 * node from the event feed and reloaded only when the summary (counts of
 * states and handshakes) changes.
 */
function useTopology(name: string) {
  const { api, live } = useContext(AppContext);
  const [state, setState] = useState<{ data?: TopologyData; error?: unknown }>({});
  const [nonce, setNonce] = useState(0);
  const dataRef = useRef<TopologyData>();
  dataRef.current = state.data;
  const reload = () => setNonce((k) => k + 1);
  useEffect(() => {
    const ctrl = new AbortController();
    loadTopology(api, name, ctrl.signal).then(
      (data) => !ctrl.signal.aborted && setState({ data }),
      (error) => !ctrl.signal.aborted && !isAbort(error) && setState((s) => ({ data: s.data, error })),
    );
    return () => ctrl.abort();
  }, [api, name, nonce]);
  useEffect(() => {
    if (!live) return;
    const ctrl = new AbortController();
    let queue: FeedEvent[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    let busy = false;
    const schedule = () => {
      if (!timer) timer = setTimeout(flush, EVENT_BATCH_MS);
    };
    const flush = async () => {
      timer = undefined;
      const data = dataRef.current;
      if (busy || !data) return schedule();
      const events = queue;
      queue = [];
      busy = true;
      try {
        const next = await applyEvents(api, name, data, events, ctrl.signal);
        if (ctrl.signal.aborted) return;
        if (next) setState({ data: next });
        else reload();
      } catch (err) {
        if (!isAbort(err)) reload();
      } finally {
        busy = false;
        if (queue.length) schedule();
      }
    };
    const unsubscribe = live.subscribe((events) => {
      const id = dataRef.current?.network.id;
      const mine = events.filter((e) => !id || relevant(e, id));
      if (mine.length) {
        queue.push(...mine);
        schedule();
      }
    });
    return () => {
      unsubscribe();
      ctrl.abort();
      clearTimeout(timer);
    };
  }, [api, live, name]);
  useEffect(() => {
    const ctrl = new AbortController();
    const t = setInterval(() => {
      const data = dataRef.current;
      if (!data || document.hidden) return;
      checkSummary(api, name, data, ctrl.signal).then(
        (changed) => changed && !ctrl.signal.aborted && reload(),
        () => undefined,
      );
    }, SUMMARY_CHECK_MS);
    return () => {
      clearInterval(t);
      ctrl.abort();
    };
  }, [api, name]);
  return { ...state, reload };
}

function plural(n: number, noun: string): string {
  return `${n.toLocaleString('en')} ${noun}${n === 1 ? '' : 's'}`;
}

export function NetworkPage({ name }: { name: string }) {
  const { api, toast } = useContext(AppContext);
  const netId = useRef<string>();
  // Lists refresh on changes of this network only: a fleet's other networks are busy too.
  const tick = useLive(['network', 'interface', 'connection', 'host'], (e) => !netId.current || relevant(e, netId.current));
  const now = useNow(5000);
  const net = useAsync((s) => api.getNetwork(name, s), [name, tick]);
  const n = net.data;
  netId.current = n?.id;
  const topo = useTopology(name);
  const [selected, setSelected] = useState<string>();
  const links = useAsync(
    (s) => (selected && topo.data && !topo.data.full ? loadLinks(api, name, selected, s) : Promise.resolve(undefined)),
    [selected, topo.data],
  );
  const [ifOffset, setIfOffset] = useState(0);
  const [cnOffset, setCnOffset] = useState(0);
  const ifaces = useAsync((s) => (n ? api.listInterfaces({ network: n.id, limit: LIMIT, offset: ifOffset }, s) : Promise.resolve(undefined)), [n?.id, ifOffset, tick]);
  const devices = useAsync((s) => (n ? api.listDevices({ network: n.id, limit: LIMIT }, s) : Promise.resolve(undefined)), [n?.id, tick]);
  const conns = useAsync((s) => (n ? api.listConnections({ network: n.id, limit: LIMIT, offset: cnOffset }, s) : Promise.resolve(undefined)), [n?.id, cnOffset, tick]);
  // The topology's implicit links (the API lists stored connections only), when the page
  // holds them all (a network small enough to draw whole): rows after the stored ones.
  const implicitLinks = useMemo(() => (topo.data?.full ? topo.data.edges.filter((e) => e.implicit) : []), [topo.data]);
  const implicitConns = implicitLinks
    .slice(0, LIMIT)
    .map((e) => ({ id: '', network_id: n?.id ?? '', a: { interface_id: e.a }, b: { interface_id: e.b }, implicit: true }) as Connection);

  const [editing, setEditing] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [ifForm, setIfForm] = useState<{ iface?: Interface } | null>(null);
  const [ifDelete, setIfDelete] = useState<Interface | null>(null);
  const [cnForm, setCnForm] = useState<{ conn?: Connection } | null>(null);
  const [cnDelete, setCnDelete] = useState<Connection | null>(null);

  // Interface id -> display name (host or device name), from the topology.
  const names = useMemo(() => {
    const m: Record<string, string> = {};
    for (const node of topo.data?.nodes ?? []) m[node.interface_id] = node.name;
    return m;
  }, [topo.data]);

  if (!n) {
    return <PendingPage title={name} crumbs={[{ to: '/networks', label: 'Networks' }]} error={net.error} onRetry={net.reload} />;
  }
  const ifName = (id: string) => names[id] ?? ifaces.data?.items.find((i) => i.id === id)?.name ?? id.slice(0, 8);
  const hubName = n.hub_interface_id ? ifName(n.hub_interface_id) : undefined;

  return (
    <div class="page">
      <PageHeader
        crumbs={[{ to: '/networks', label: 'Networks' }]}
        title={
          <span class="title-with-badge">
            {n.name} <TopologyBadge topology={n.topology} />
          </span>
        }
        subtitle={
          <span class="mono-list">
            {[n.ipv4_range, n.ipv6_range].filter(Boolean).join(' · ')}
          </span>
        }
        actions={
          <>
            <Button icon={<IconEdit />} onClick={() => setEditing(true)}>
              Edit
            </Button>
            <Button variant="danger" icon={<IconTrash />} onClick={() => setDeleting(true)}>
              Delete
            </Button>
          </>
        }
      />

      <div class="grid-topology">
        <Card
          title="Topology"
          subtitle={
            topo.data
              ? `${plural(topo.data.summary.nodes, 'interface')} · ${plural(topo.data.summary.links, 'link')}` +
                (topo.data.summary.problems ? ` · ${plural(topo.data.summary.problems, 'problem')}` : '')
              : undefined
          }
          testid="topology"
        >
          {topo.error != null && !topo.data ? (
            <ErrorState error={topo.error} onRetry={topo.reload} />
          ) : !topo.data ? (
            <Loading rows={5} />
          ) : topo.data.nodes.length === 0 ? (
            <Empty icon={<IconNetwork />} title="No interfaces in this network yet">
              Add an interface on a host, or a device, and it appears here with its connections.
            </Empty>
          ) : topo.data.full ? (
            <TopologyView nodes={topo.data.nodes} edges={topo.data.edges} hubId={n.hub_interface_id} now={now} />
          ) : (
            <LargeTopology
              data={topo.data}
              now={now}
              selected={selected}
              onSelect={setSelected}
              // The last node's links stay while the next node's load: never show them as the next's.
              links={links.data?.id === selected ? links.data?.edges : undefined}
              linksMore={links.data?.more}
            />
          )}
        </Card>
        <Card title="Settings">
          <DefList
            items={[
              ['Topology', n.topology === 'hub' ? `hub (${hubName ?? 'no hub chosen'})` : n.topology],
              ['Listen port', n.listen_port || 'default'],
              ['MTU', n.mtu || 'default'],
              ['Keepalive', n.persistent_keepalive ? `${n.persistent_keepalive}s` : 'off'],
              ['DNS', n.dns?.length ? <Mono>{n.dns.join(', ')}</Mono> : '—'],
              ['ID', <Mono>{n.id}</Mono>],
              ['Created', ago(n.created_at, now)],
            ]}
          />
        </Card>
      </div>

      <PolicySection network={n} names={names} nodes={topo.data?.nodes} onNetwork={net.setData} />

      <Card
        title="Interfaces"
        subtitle="Hosts and devices in this network."
        flush
        testid="interfaces"
        actions={
          <Button size="sm" icon={<IconPlus size={15} />} onClick={() => setIfForm({})}>
            Add interface
          </Button>
        }
      >
        {ifaces.error != null && !ifaces.data ? (
          <ErrorState error={ifaces.error} onRetry={ifaces.reload} />
        ) : !ifaces.data ? (
          <Loading />
        ) : ifaces.data.items.length + (devices.data?.items.length ?? 0) === 0 ? (
          <Empty icon={<IconHost />} title="No interfaces">
            Join tokens with this network put registering hosts here; or add one by hand.
          </Empty>
        ) : (
          <>
            <table class="table">
              <thead>
                <tr>
                  <th>Member</th>
                  <th>Interface</th>
                  <th>Addresses</th>
                  <th>Port</th>
                  <th>Public key</th>
                  <th>Key age</th>
                  <th>Policy</th>
                  <th class="actions-col" />
                </tr>
              </thead>
              <tbody>
                {/* Only this network's: a list of the page's previous network stays until its own arrives. */}
                {[...ifaces.data.items, ...(devices.data?.items ?? [])].filter((i) => i.network_id === n.id).map((i) => (
                  <tr key={i.id}>
                    <td>
                      {i.device_name ? (
                        <span class="with-icon">
                          <IconDevice size={15} /> {i.device_name} <Badge tone="violet">device</Badge>
                        </span>
                      ) : (
                        <Link to={`/hosts/${encodeURIComponent(i.host_id)}`} class="strong">
                          {names[i.id] ?? i.host_id.slice(0, 8)}
                        </Link>
                      )}
                    </td>
                    <td>
                      <Mono>{i.name}</Mono>
                    </td>
                    <td>
                      <Mono>{i.addresses.join(', ') || '—'}</Mono>
                    </td>
                    <td class="num">{i.listen_port || '—'}</td>
                    <td>
                      <Mono title={i.public_key}>{shortKey(i.public_key)}</Mono>
                    </td>
                    <td class="muted">{i.key_rotated_at ? ago(i.key_rotated_at, now).replace(' ago', '') : '—'}</td>
                    <td>
                      <FirewallBadge iface={i} />
                    </td>
                    <td class="actions-col">
                      {!i.device_name && (
                        <button type="button" class="icon-btn" title="Edit interface" aria-label={`Edit ${i.name}`} onClick={() => setIfForm({ iface: i })}>
                          <IconEdit size={16} />
                        </button>
                      )}
                      <button type="button" class="icon-btn danger" title="Delete interface" aria-label={`Delete ${i.name}`} onClick={() => setIfDelete(i)}>
                        <IconTrash size={16} />
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            {ifaces.data.total > LIMIT ? (
              <Pager offset={ifaces.data.offset} limit={LIMIT} total={ifaces.data.total} onOffset={setIfOffset} noun="host interface" />
            ) : (
              <div class="pager muted">
                {plural(ifaces.data.total, 'host interface')}
                {devices.data?.total ? `, ${plural(devices.data.total, 'device')}` : ''}
              </div>
            )}
          </>
        )}
      </Card>

      <Card
        title="Connections"
        subtitle={n.topology === 'none' ? 'Peerings you added.' : `Peerings from the ${n.topology} topology and any you added.`}
        flush
        testid="connections"
        actions={
          <Button size="sm" icon={<IconPlus size={15} />} onClick={() => setCnForm({})} disabled={(ifaces.data?.total ?? 0) < 2}>
            Add connection
          </Button>
        }
      >
        {conns.error != null && !conns.data ? (
          <ErrorState error={conns.error} onRetry={conns.reload} />
        ) : !conns.data ? (
          <Loading />
        ) : conns.data.items.length === 0 && implicitConns.length === 0 ? (
          <Empty icon={<IconLink />} title={n.topology === 'none' ? 'No connections' : 'No connections added'}>
            {n.topology === 'none'
              ? 'With topology “none”, interfaces peer only through connections you add.'
              : `The ${n.topology} topology peers the interfaces by itself, as the picture shows. Add a connection to set allowed IPs, endpoints or keepalive for one pair.`}
          </Empty>
        ) : (
          <>
            <table class="table">
              <thead>
                <tr>
                  <th>Between</th>
                  <th>Allowed IPs (A ← B / B ← A)</th>
                  <th>Endpoints</th>
                  <th>Keepalive</th>
                  <th>Last hour</th>
                  <th class="actions-col" />
                </tr>
              </thead>
              <tbody>
                {[...conns.data.items, ...implicitConns].map((c) => (
                  <tr key={c.id || `${c.a.interface_id}-${c.b.interface_id}`}>
                    <td>
                      <span class="strong">{ifName(c.a.interface_id)}</span>
                      <span class="link-arrow">↔</span>
                      <span class="strong">{ifName(c.b.interface_id)}</span>
                      {c.implicit && (
                        <Badge tone="blue" title="Derived from the network's topology">
                          {n.topology}
                        </Badge>
                      )}
                    </td>
                    <td>
                      <Mono>{c.a.allowed_ips?.join(', ') || 'auto'}</Mono>
                      <span class="muted"> / </span>
                      <Mono>{c.b.allowed_ips?.join(', ') || 'auto'}</Mono>
                    </td>
                    <td>
                      <Mono>{c.a.endpoint || 'auto'}</Mono>
                      <span class="muted"> / </span>
                      <Mono>{c.b.endpoint || 'auto'}</Mono>
                    </td>
                    <td class="muted">{c.persistent_keepalive != null ? `${c.persistent_keepalive}s` : 'network default'}</td>
                    <td>
                      <ConnectionSparks conn={c} tick={tick} />
                    </td>
                    <td class="actions-col">
                      {!c.implicit && (
                        <>
                          <button type="button" class="icon-btn" title="Edit connection" aria-label="Edit connection" onClick={() => setCnForm({ conn: c })}>
                            <IconEdit size={16} />
                          </button>
                          <button type="button" class="icon-btn danger" title="Delete connection" aria-label="Delete connection" onClick={() => setCnDelete(c)}>
                            <IconTrash size={16} />
                          </button>
                        </>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <Pager offset={conns.data.offset} limit={LIMIT} total={conns.data.total} onOffset={setCnOffset} noun="connection" />
            {implicitLinks.length > implicitConns.length && (
              <p class="muted small">
                The first {implicitConns.length} of {implicitLinks.length} links from the topology.
              </p>
            )}
          </>
        )}
      </Card>

      {editing && (
        <NetworkForm
          network={n}
          interfaces={ifaces.data?.items}
          names={names}
          onClose={() => setEditing(false)}
          onSaved={(saved: Network) => {
            setEditing(false);
            toast(`Network ${saved.name} saved`);
            if (saved.name !== name) navigate(`/networks/${encodeURIComponent(saved.name)}`, { replace: true });
            else net.setData(saved);
          }}
        />
      )}
      {deleting && (
        <ConfirmDialog
          title={`Delete network ${n.name}?`}
          confirmLabel="Delete network"
          onClose={() => setDeleting(false)}
          onConfirm={async () => {
            await api.deleteNetwork(n.id);
            toast(`Network ${n.name} deleted`);
            navigate('/networks');
          }}
        >
          Its interfaces and connections are removed, and every agent tears the tunnels down. This cannot be undone.
        </ConfirmDialog>
      )}
      {ifForm && (
        <InterfaceForm
          network={n}
          iface={ifForm.iface}
          onClose={() => setIfForm(null)}
          onSaved={() => {
            setIfForm(null);
            toast(ifForm.iface ? 'Interface saved' : 'Interface added');
            ifaces.reload();
            topo.reload();
          }}
        />
      )}
      {ifDelete && (
        <ConfirmDialog
          title={`Delete interface ${ifDelete.name}?`}
          onClose={() => setIfDelete(null)}
          onConfirm={async () => {
            await (ifDelete.device_name ? api.deleteDevice(ifDelete.id) : api.deleteInterface(ifDelete.id));
            toast('Interface deleted');
            ifaces.reload();
            devices.reload();
            topo.reload();
          }}
        >
          {ifName(ifDelete.id)} leaves {n.name}; its peers drop it at their next sync.
        </ConfirmDialog>
      )}
      {cnForm && (
        <ConnectionForm
          network={n}
          conn={cnForm.conn}
          interfaces={ifaces.data?.items ?? []}
          ifName={ifName}
          onClose={() => setCnForm(null)}
          onSaved={() => {
            setCnForm(null);
            toast(cnForm.conn ? 'Connection saved' : 'Connection added');
            conns.reload();
            topo.reload();
          }}
        />
      )}
      {cnDelete && (
        <ConfirmDialog
          title="Delete this connection?"
          onClose={() => setCnDelete(null)}
          onConfirm={async () => {
            await api.deleteConnection(cnDelete.id);
            toast('Connection deleted');
            conns.reload();
            topo.reload();
          }}
        >
          {ifName(cnDelete.a.interface_id)} and {ifName(cnDelete.b.interface_id)} stop peering.
        </ConfirmDialog>
      )}
    </div>
  );
}

/** LargeTopology is the picture of a network too large to draw every link: clusters, problems, the selected node's links. */
function LargeTopology(props: {
  data: TopologyData;
  now: number;
  selected?: string;
  onSelect: (id: string | undefined) => void;
  links?: import('../api/types').TopologyEdge[];
  linksMore?: boolean;
}) {
  const { data, now, selected } = props;
  const [find, setFind] = useState('');
  const [notFound, setNotFound] = useState(false);
  const byId = useMemo(() => new Map(data.nodes.map((x) => [x.interface_id, x])), [data.nodes]);
  const node: TopologyNode | undefined = selected ? byId.get(selected) : undefined;
  const links = selected ? props.links : undefined;
  const counts = { fresh: 0, stale: 0, never: 0 };
  for (const e of links ?? []) counts[freshness(e.last_handshake, now)]++;
  return (
    <div class="topology topology-large">
      <form
        class="topology-find"
        onSubmit={(e) => {
          e.preventDefault();
          const q = find.trim().toLowerCase();
          const hit = data.nodes.find((x) => x.name.toLowerCase() === q) ?? data.nodes.find((x) => x.name.toLowerCase().startsWith(q));
          setNotFound(!hit);
          if (hit) props.onSelect(hit.interface_id);
        }}
      >
        <input name="find" placeholder="Find a host or device…" value={find} onInput={(e) => setFind(e.currentTarget.value)} data-testid="topology-find" />
        {notFound && <span class="muted">No such interface.</span>}
        <span class="muted">Click a node to see its links.</span>
      </form>
      <TopologyCanvas nodes={data.nodes} edges={data.edges} links={links} selected={selected} now={now} onSelect={props.onSelect} />
      {node && (
        <div class="topology-selected" data-testid="topology-selected">
          <div>
            <strong>{node.name}</strong> <Badge tone={node.status === 'ready' ? 'green' : node.status === 'down' ? 'red' : 'grey'}>{node.device ? 'device' : node.status}</Badge>{' '}
            <Mono>{node.addresses.join(', ')}</Mono>
          </div>
          <div class="muted">
            {plural(node.peers, 'peer')}: {node.fresh} fresh, {node.stale} stale, {node.never} never (as its agent reports)
          </div>
          <div class="muted" data-testid="topology-links">
            {links
              ? `${plural(links.length, 'link')}${props.linksMore ? '+' : ''} drawn: ${counts.fresh} fresh, ${counts.stale} stale, ${counts.never} never`
              : 'Loading links…'}
          </div>
          <div>
            {node.host_id && <Link to={`/hosts/${encodeURIComponent(node.host_id)}`}>Open host</Link>}{' '}
            <button type="button" class="link-btn" onClick={() => props.onSelect(undefined)}>
              Clear
            </button>
          </div>
        </div>
      )}
      <div class="legend">
        {GROUPS.map((g) => (
          <span key={g.id}>
            <i class="legend-dot" style={{ background: g.color }} /> {g.label}
          </span>
        ))}
        <span class="legend-sep" />
        <HandshakeSwatches />
        <span class="muted">
          {data.edgesMore ? `the first ${data.edges.length} problem links` : plural(data.edges.length, 'problem link')}
        </span>
      </div>
    </div>
  );
}

const IF_FIELDS = ['host_id', 'host', 'name', 'addresses', 'listen_port', 'mtu', 'routed_subnets', 'masquerade', 'network_id'];

function InterfaceForm(props: { network: Network; iface?: Interface; onClose: () => void; onSaved: () => void }) {
  const { api } = useContext(AppContext);
  const i = props.iface;
  const [v, setV] = useState({
    host: '',
    name: i?.name ?? '',
    addresses: (i?.addresses ?? []).join(', '),
    listen_port: i?.listen_port ? String(i.listen_port) : '',
    mtu: i?.mtu ? String(i.mtu) : '',
    routed_subnets: (i?.routed_subnets ?? []).join(', '),
  });
  const [masquerade, setMasquerade] = useState(Boolean(i?.masquerade));
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState(new FormErrors(null));
  const hosts = useAsync((s) => (i ? Promise.resolve(undefined) : api.listHosts({ q: v.host.trim(), limit: 8 }, s)), [v.host]);
  const set = (k: keyof typeof v) => (e: { currentTarget: { value: string } }) => setV({ ...v, [k]: e.currentTarget.value });
  const num = (s: string) => (s.trim() ? Number(s.trim()) : undefined);

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setErrors(new FormErrors(null));
    const body: Partial<Interface> = {
      name: v.name.trim() || undefined,
      addresses: v.addresses.trim() ? splitList(v.addresses) : undefined,
      listen_port: num(v.listen_port),
      mtu: num(v.mtu),
      routed_subnets: v.routed_subnets.trim() ? splitList(v.routed_subnets) : undefined,
      masquerade,
    };
    try {
      if (i) {
        await api.updateInterface(i.id, { ...body, addresses: body.addresses ?? [], routed_subnets: body.routed_subnets ?? [] });
      } else {
        const hostName = v.host.trim();
        if (!hostName) throw new ApiError(400, 'Choose the host this interface belongs to.', 'host_id');
        let hostId: string;
        try {
          hostId = (await api.getHost(hostName)).id;
        } catch (err) {
          if (err instanceof ApiError && err.status === 404) throw new ApiError(404, `No host named “${hostName}”.`, 'host_id');
          throw err;
        }
        await api.createInterface({ ...body, host_id: hostId, network_id: props.network.id });
      }
      props.onSaved();
    } catch (err) {
      setErrors(new FormErrors(err));
      setBusy(false);
    }
  }
  const general = errors.general(IF_FIELDS);
  return (
    <Modal
      title={i ? `Edit interface ${i.name}` : `Add an interface to ${props.network.name}`}
      onClose={props.onClose}
      testid="interface-form"
      footer={
        <>
          <Button onClick={props.onClose}>Cancel</Button>
          <Button variant="primary" type="submit" form="interface-form" busy={busy}>
            {i ? 'Save changes' : 'Add interface'}
          </Button>
        </>
      }
    >
      <form id="interface-form" class="form" onSubmit={submit} noValidate>
        {general && <Alert tone="error">{general}</Alert>}
        {!i && (
          <Field label="Host" name="host_id" error={errors.field('host_id') ?? errors.field('host')} hint="Start typing a host name.">
            <input name="host" list="host-suggestions" value={v.host} onInput={set('host')} placeholder="web-1" autocomplete="off" />
            <datalist id="host-suggestions">
              {(hosts.data?.items ?? []).map((h) => (
                <option value={h.name}>{`${h.status} · ${h.os ?? ''}/${h.arch ?? ''}`}</option>
              ))}
            </datalist>
          </Field>
        )}
        <div class="form-row">
          <Field label="Interface name" name="name" error={errors.field('name')} hint="The OS interface; empty for the default.">
            <input name="name" value={v.name} onInput={set('name')} placeholder={`wg-${props.network.name}`.slice(0, 15)} class="mono-input" />
          </Field>
          <Field label="Listen port" name="listen_port" error={errors.field('listen_port')}>
            <input name="listen_port" inputMode="numeric" value={v.listen_port} onInput={set('listen_port')} placeholder={String(props.network.listen_port || 51820)} />
          </Field>
        </div>
        <Field label="Addresses" name="addresses" error={errors.field('addresses')} hint={`Empty: assigned from ${props.network.ipv4_range}${props.network.ipv6_range ? ` and ${props.network.ipv6_range}` : ''}.`}>
          <input name="addresses" value={v.addresses} onInput={set('addresses')} placeholder="10.10.0.5/24" class="mono-input" />
        </Field>
        <div class="form-row">
          <Field label="Routed subnets" name="routed_subnets" error={errors.field('routed_subnets')} hint="LANs reachable through this host.">
            <input name="routed_subnets" value={v.routed_subnets} onInput={set('routed_subnets')} placeholder="192.168.1.0/24" class="mono-input" />
          </Field>
          <Field label="MTU" name="mtu" error={errors.field('mtu')}>
            <input name="mtu" inputMode="numeric" value={v.mtu} onInput={set('mtu')} placeholder={String(props.network.mtu || 1420)} />
          </Field>
        </div>
        <Field label="Masquerade" name="masquerade" error={errors.field('masquerade')} group>
          <label class={`check ${masquerade ? 'on' : ''}`}>
            <input type="checkbox" name="masquerade" checked={masquerade} onChange={(e) => setMasquerade(e.currentTarget.checked)} />
            <span>Source-NAT the network's traffic to the routed subnets, so that LAN hosts need no route back (site gateway).</span>
          </label>
        </Field>
      </form>
    </Modal>
  );
}

const CN_FIELDS = ['a', 'b', 'a.interface_id', 'b.interface_id', 'a.allowed_ips', 'b.allowed_ips', 'a.endpoint', 'b.endpoint', 'persistent_keepalive', 'network_id'];

/**
 * ConnectionSparks shows a connection's traffic and handshake age over the last hour, as side a's agent reports
 * them (else side b's): a stored connection's by its id, a topology's implicit one's by its two interfaces.
 */
function ConnectionSparks({ conn, tick }: { conn: Connection; tick: number }) {
  const { api } = useContext(AppContext);
  const minute = useNow(60000);
  const { id, implicit } = conn;
  const [a, b] = [conn.a.interface_id, conn.b.interface_id];
  const h = useAsync(
    (s) => (id && !implicit ? api.connectionHistory(id, s) : api.peeringHistory(a, b, s)),
    [id, implicit, a, b, tick, Math.floor(minute / 60000)],
  );
  const pts = h.data ? (h.data.a.length ? h.data.a : h.data.b) : [];
  return (
    <span class="sparks" data-testid="connection-sparks">
      <TrafficSpark points={pts} />
      <HandshakeSpark points={pts} />
    </span>
  );
}

function ConnectionForm(props: {
  network: Network;
  conn?: Connection;
  interfaces: Interface[];
  ifName: (id: string) => string;
  onClose: () => void;
  onSaved: () => void;
}) {
  const { api } = useContext(AppContext);
  const c = props.conn;
  const [v, setV] = useState({
    a: c?.a.interface_id ?? '',
    b: c?.b.interface_id ?? '',
    a_allowed: (c?.a.allowed_ips ?? []).join(', '),
    b_allowed: (c?.b.allowed_ips ?? []).join(', '),
    a_endpoint: c?.a.endpoint ?? '',
    b_endpoint: c?.b.endpoint ?? '',
    keepalive: c?.persistent_keepalive != null ? String(c.persistent_keepalive) : '',
  });
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState(new FormErrors(null));
  const set = (k: keyof typeof v) => (e: { currentTarget: { value: string } }) => setV({ ...v, [k]: e.currentTarget.value });

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setErrors(new FormErrors(null));
    const body: Partial<Connection> = {
      // Empty values are sent, not left out: PATCH merges, so leaving a field
      // out would keep its old value instead of clearing it.
      a: { interface_id: v.a, allowed_ips: splitList(v.a_allowed), endpoint: v.a_endpoint.trim() },
      b: { interface_id: v.b, allowed_ips: splitList(v.b_allowed), endpoint: v.b_endpoint.trim() },
      persistent_keepalive: v.keepalive.trim() === '' ? null : Number(v.keepalive),
    };
    try {
      if (c) await api.updateConnection(c.id, body);
      else await api.createConnection({ ...body, network_id: props.network.id });
      props.onSaved();
    } catch (err) {
      setErrors(new FormErrors(err));
      setBusy(false);
    }
  }
  const side = (s: 'a' | 'b') => (
    <fieldset class="side">
      <legend>Side {s.toUpperCase()}</legend>
      <Field label="Interface" name={`${s}.interface_id`} error={errors.field(`${s}.interface_id`)}>
        {c ? (
          <input value={props.ifName(c[s].interface_id)} disabled />
        ) : (
          <select name={`${s}.interface_id`} value={v[s]} onChange={set(s)}>
            <option value="">Choose…</option>
            {props.interfaces.map((i) => (
              <option value={i.id}>
                {props.ifName(i.id)} ({i.addresses.join(', ')})
              </option>
            ))}
          </select>
        )}
      </Field>
      <Field label="Allowed IPs from the peer" name={`${s}.allowed_ips`} error={errors.field(`${s}.allowed_ips`)} hint="Empty: the peer's addresses and routed subnets.">
        <input name={`${s}.allowed_ips`} value={v[`${s}_allowed`]} onInput={set(`${s}_allowed`)} placeholder="auto" class="mono-input" />
      </Field>
      <Field label="Endpoint of the peer" name={`${s}.endpoint`} error={errors.field(`${s}.endpoint`)} hint="Empty: the peer host's address.">
        <input name={`${s}.endpoint`} value={v[`${s}_endpoint`]} onInput={set(`${s}_endpoint`)} placeholder="auto" class="mono-input" />
      </Field>
    </fieldset>
  );
  const general = errors.general(CN_FIELDS);
  return (
    <Modal
      wide
      title={c ? 'Edit connection' : `Add a connection in ${props.network.name}`}
      onClose={props.onClose}
      testid="connection-form"
      footer={
        <>
          <Button onClick={props.onClose}>Cancel</Button>
          <Button variant="primary" type="submit" form="connection-form" busy={busy}>
            {c ? 'Save changes' : 'Add connection'}
          </Button>
        </>
      }
    >
      <form id="connection-form" class="form" onSubmit={submit} noValidate>
        {general && <Alert tone="error">{general}</Alert>}
        <div class="form-row">
          {side('a')}
          {side('b')}
        </div>
        <Field label="Persistent keepalive (s)" name="persistent_keepalive" error={errors.field('persistent_keepalive')} hint="Empty: the network's default.">
          <input name="persistent_keepalive" inputMode="numeric" value={v.keepalive} onInput={set('keepalive')} placeholder={String(props.network.persistent_keepalive || 'off')} />
        </Field>
      </form>
    </Modal>
  );
}
