// A host's page: its details, interfaces, and the peers its agent last
// reported (GET /hosts/{h}/status) with handshakes and transfer.

import { useContext, useState } from 'preact/hooks';
import { ApiError } from '../api/client';
import type { CounterPoint, Host, HostHistory, Interface, InterfaceStatus, Network, StatusReport } from '../api/types';
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
  Modal,
  Mono,
  PageHeader,
  StatusBadge,
} from '../components/ui';
import { IconActivity, IconEdit, IconHost, IconRefresh, IconTrash } from '../components/icons';
import { AppContext } from '../lib/context';
import { ago, bytes, dateTime, formatLabels, freshness, parseLabels, shortKey } from '../lib/format';
import { useAsync, useLive, useNow } from '../lib/hooks';
import { navigate } from '../lib/router';
import { FirewallBadge } from '../components/firewall';
import { HandshakeSpark, TrafficSpark } from '../components/sparkline';
import { enforcement, worstEnforcement } from '../lib/policy';

interface PeerNames {
  networks: Record<string, Network>;
  byKey: Record<string, string>; // public key -> member name
}

export function HostPage({ name }: { name: string }) {
  const { api, toast } = useContext(AppContext);
  const live = useLive(['host', 'interface', 'connection']);
  const now = useNow(5000);
  // Heartbeats and handshakes change without change events: poll too.
  const tick = live + Math.floor(now / 15000);
  const host = useAsync((s) => api.getHost(name, s), [name, tick]);
  const h = host.data;
  const report = useAsync<StatusReport | null>(
    (s) =>
      api.hostStatus(name, s).catch((err) => {
        if (err instanceof ApiError && err.status === 404) return null;
        throw err;
      }),
    [name, tick, h?.last_seen],
  );
  const ifaces = useAsync((s) => (h ? api.listInterfaces({ host: h.id, limit: 100 }, s) : Promise.resolve(undefined)), [h?.id, tick]);
  const history = useAsync<HostHistory | null>((s) => api.hostHistory(name, s).catch(() => null), [name, tick, h?.last_seen]);
  const netIds = [...new Set((ifaces.data?.items ?? []).map((i) => i.network_id))].sort().join(',');
  const names = useAsync<PeerNames>(
    async (s) => {
      const out: PeerNames = { networks: {}, byKey: {} };
      await Promise.all(
        netIds
          .split(',')
          .filter(Boolean)
          .map(async (id) => {
            const [net, topo, members] = await Promise.all([
              api.getNetwork(id, s),
              api.topology(id, { limit: 1000, edges: 'none', edge_limit: 1 }, s).catch(() => undefined),
              api.listInterfaces({ network: id, limit: 1000 }, s).catch(() => undefined),
            ]);
            out.networks[id] = net;
            const nodeName: Record<string, string> = {};
            for (const n of topo?.nodes ?? []) nodeName[n.interface_id] = n.name;
            for (const m of members?.items ?? []) {
              if (m.public_key) out.byKey[m.public_key] = nodeName[m.id] ?? m.device_name ?? m.name;
            }
          }),
      );
      return out;
    },
    [netIds],
  );
  const [editing, setEditing] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [rotating, setRotating] = useState(false);

  if (!h) {
    return <PendingPage title={name} crumbs={[{ to: '/hosts', label: 'Hosts' }]} error={host.error} onRetry={host.reload} />;
  }

  const rep = report.data;
  const unenforced = worstEnforcement(ifaces.data?.items ?? []);
  const statusOf = (id: string): InterfaceStatus | undefined => rep?.interfaces?.find((s) => s.id === id);

  return (
    <div class="page">
      <PageHeader
        crumbs={[{ to: '/hosts', label: 'Hosts' }]}
        title={
          <span class="title-with-badge">
            {h.name} <StatusBadge status={h.status} />
            {h.rotate_keys && <Badge tone="amber">key rotation requested</Badge>}
            {unenforced && (
              <span data-testid="host-firewall" title={unenforced.detail}>
                <Badge tone="amber" dot>
                  access policy {unenforced.label}
                </Badge>
              </span>
            )}
          </span>
        }
        subtitle={`Last seen ${ago(h.last_seen, now)}${h.observed_address ? ` from ${h.observed_address}` : ''}`}
        actions={
          <>
            <Button icon={<IconRefresh />} busy={rotating} onClick={async () => {
              setRotating(true);
              try {
                host.setData(await api.rotateKeys(h.id));
                toast('Key rotation requested: the agent rotates at its next sync');
              } catch (err) {
                toast(err instanceof Error ? err.message : String(err), 'error');
              } finally {
                setRotating(false);
              }
            }}>
              Rotate keys
            </Button>
            <Button icon={<IconEdit />} onClick={() => setEditing(true)}>
              Edit
            </Button>
            <Button variant="danger" icon={<IconTrash />} onClick={() => setDeleting(true)}>
              Delete
            </Button>
          </>
        }
      />
      <div class="grid-2">
        <Card title="Host">
          <DefList
            items={[
              ['OS / arch', h.os ? `${h.os}/${h.arch ?? '?'}` : '—'],
              ['Agent version', h.agent_version ? <Mono>{h.agent_version}</Mono> : '—'],
              ['Backend', h.backend || rep?.backend || '—'],
              ['Advertise address', h.advertise_address ? <Mono>{h.advertise_address}</Mono> : '—'],
              ['Observed address', h.observed_address ? <Mono>{h.observed_address}</Mono> : '—'],
              ['Labels', h.labels && Object.keys(h.labels).length ? (
                <span class="labels">{Object.entries(h.labels).map(([k, v]) => <Badge>{`${k}=${v}`}</Badge>)}</span>
              ) : '—'],
            ]}
          />
        </Card>
        <Card title="Agent report">
          {report.error != null && !rep ? (
            <ErrorState error={report.error} onRetry={report.reload} />
          ) : report.loading && rep === undefined ? (
            <Loading />
          ) : !rep ? (
            <Empty icon={<IconActivity />} title="No status report yet">
              The agent sends one after it applies its first configuration.
            </Empty>
          ) : (
            <DefList
              items={[
                ['Last heartbeat', h.last_seen ? `${ago(h.last_seen, now)} (${dateTime(h.last_seen)})` : '—'],
                ['Applied index', <Mono>{rep.applied_index}</Mono>],
                ['Interfaces up', rep.interfaces?.length ?? 0],
                ['Traffic, last hour', <TrafficSpark points={history.data?.points ?? []} testid="host-traffic" />],
                ['Newest handshake, last hour', <HandshakeSpark points={history.data?.points ?? []} testid="host-handshake" />],
                [
                  'Received / sent',
                  <span data-testid="host-counters">
                    {bytes(sum(rep, 'rx_bytes'))} / {bytes(sum(rep, 'tx_bytes'))}
                  </span>,
                ],
                ['Registered', dateTime(h.created_at)],
                ['ID', <Mono>{h.id}</Mono>],
              ]}
            />
          )}
        </Card>
      </div>

      {ifaces.error != null && !ifaces.data ? (
        <ErrorState error={ifaces.error} onRetry={ifaces.reload} />
      ) : !ifaces.data ? (
        <Loading />
      ) : ifaces.data.items.length === 0 ? (
        <Card title="Interfaces">
          <Empty icon={<IconHost />} title="Not in any network">
            Add an interface for this host on a network's page, or register it with a join token that names networks.
          </Empty>
        </Card>
      ) : (
        ifaces.data.items.map((i) => (
          <InterfaceCard key={i.id} iface={i} status={statusOf(i.id)} names={names.data} now={now} reported={Boolean(rep)} history={history.data ?? undefined} />
        ))
      )}

      {editing && (
        <HostForm
          host={h}
          onClose={() => setEditing(false)}
          onSaved={(saved) => {
            setEditing(false);
            toast(`Host ${saved.name} saved`);
            if (saved.name !== name && name !== saved.id) navigate(`/hosts/${encodeURIComponent(saved.name)}`, { replace: true });
            else host.setData(saved);
          }}
        />
      )}
      {deleting && (
        <ConfirmDialog
          title={`Delete host ${h.name}?`}
          confirmLabel="Delete host"
          onClose={() => setDeleting(false)}
          onConfirm={async () => {
            await api.deleteHost(h.id);
            toast(`Host ${h.name} deleted`);
            navigate('/hosts');
          }}
        >
          Its credential stops working and its interfaces leave their networks. The agent must register again to come back.
        </ConfirmDialog>
      )}
    </div>
  );
}

/** sum adds a counter over every peer of a status report. */
function sum(r: StatusReport, key: 'rx_bytes' | 'tx_bytes'): number {
  let n = 0;
  for (const i of r.interfaces ?? []) for (const p of i.peers ?? []) n += p[key];
  return n;
}

function InterfaceCard(props: { iface: Interface; status?: InterfaceStatus; names?: PeerNames; now: number; reported: boolean; history?: HostHistory }) {
  const { iface: i, status, names, now } = props;
  const series = (key: string): CounterPoint[] =>
    props.history?.peers.find((p) => p.interface_id === i.id && p.peer_public_key === key)?.points ?? [];
  const net = names?.networks[i.network_id];
  const peers = status?.peers ?? [];
  return (
    <Card
      testid="host-interface"
      title={
        <span class="title-with-badge">
          <Mono>{i.name}</Mono>
          <span class="muted">in</span>
          {net ? <Link to={`/networks/${encodeURIComponent(net.name)}`}>{net.name}</Link> : <Mono>{i.network_id.slice(0, 8)}</Mono>}
        </span>
      }
      subtitle={
        <span class="inline-facts">
          <span>
            Addresses <Mono>{i.addresses.join(', ') || '—'}</Mono>
          </span>
          <span>
            Port <Mono>{status?.listen_port || i.listen_port || '—'}</Mono>
          </span>
          <span>
            Key <Mono title={i.public_key}>{shortKey(status?.public_key || i.public_key)}</Mono>
          </span>
          <span>Key age {i.key_rotated_at ? ago(i.key_rotated_at, now).replace(' ago', '') : '—'}</span>
          <span data-testid="interface-firewall">
            Policy <FirewallBadge iface={i} /> {!enforcement(i).ok && <span class="muted small">{enforcement(i).detail}</span>}
          </span>
          {i.rotation_blocked && (
            <span data-testid="rotation-blocked">
              <Badge tone="amber" title={i.rotation_blocked}>key rotation blocked</Badge> <span class="muted small">{i.rotation_blocked}</span>
            </span>
          )}
        </span>
      }
      flush
    >
      {!props.reported ? (
        <p class="card-note muted">Peers show once the agent reports its status.</p>
      ) : !status ? (
        <p class="card-note muted">The agent did not report this interface yet.</p>
      ) : peers.length === 0 ? (
        <p class="card-note muted">No peers configured on this interface.</p>
      ) : (
        <table class="table" data-testid="peers">
          <thead>
            <tr>
              <th>Peer</th>
              <th>Endpoint</th>
              <th>Last handshake</th>
              <th class="num">Received</th>
              <th class="num">Sent</th>
              <th>Last hour</th>
            </tr>
          </thead>
          <tbody>
            {peers.map((p) => {
              const f = freshness(p.last_handshake, now);
              return (
                <tr key={p.public_key}>
                  <td>
                    <span class="strong">{names?.byKey[p.public_key] ?? <Mono title={p.public_key}>{shortKey(p.public_key)}</Mono>}</span>
                  </td>
                  <td>
                    <Mono>{p.endpoint || '—'}</Mono>
                  </td>
                  <td>
                    <span class={`hs hs-${f}`}>
                      <span class="dot" />
                      {ago(p.last_handshake, now)}
                    </span>
                  </td>
                  <td class="num">{bytes(p.rx_bytes)}</td>
                  <td class="num">{bytes(p.tx_bytes)}</td>
                  <td>
                    <TrafficSpark points={series(p.public_key)} testid="peer-traffic" />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </Card>
  );
}

const HOST_FIELDS = ['name', 'labels', 'advertise_address'];

function HostForm(props: { host: Host; onClose: () => void; onSaved: (h: Host) => void }) {
  const { api } = useContext(AppContext);
  const [v, setV] = useState({
    name: props.host.name,
    labels: formatLabels(props.host.labels),
    advertise_address: props.host.advertise_address ?? '',
  });
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState(new FormErrors(null));
  const set = (k: keyof typeof v) => (e: { currentTarget: { value: string } }) => setV({ ...v, [k]: e.currentTarget.value });
  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setErrors(new FormErrors(null));
    try {
      let labels: Record<string, string> | undefined;
      try {
        labels = parseLabels(v.labels) ?? {};
      } catch (err) {
        throw new ApiError(400, (err as Error).message, 'labels');
      }
      props.onSaved(await api.updateHost(props.host.id, { name: v.name.trim(), labels, advertise_address: v.advertise_address.trim() }));
    } catch (err) {
      setErrors(new FormErrors(err));
      setBusy(false);
    }
  }
  const general = errors.general(HOST_FIELDS);
  return (
    <Modal
      title={`Edit ${props.host.name}`}
      onClose={props.onClose}
      testid="host-form"
      footer={
        <>
          <Button onClick={props.onClose}>Cancel</Button>
          <Button variant="primary" type="submit" form="host-form" busy={busy}>
            Save changes
          </Button>
        </>
      }
    >
      <form id="host-form" class="form" onSubmit={submit} noValidate>
        {general && <Alert tone="error">{general}</Alert>}
        <Field label="Name" name="name" error={errors.field('name')}>
          <input name="name" value={v.name} onInput={set('name')} />
        </Field>
        <Field label="Advertise address" name="advertise_address" error={errors.field('advertise_address')} hint="host:port or host that peers dial; empty to let the agent decide.">
          <input name="advertise_address" value={v.advertise_address} onInput={set('advertise_address')} placeholder="203.0.113.10:51820" class="mono-input" />
        </Field>
        <Field label="Labels" name="labels" error={errors.field('labels')} hint="key=value pairs, comma separated.">
          <input name="labels" value={v.labels} onInput={set('labels')} placeholder="role=db, site=par" class="mono-input" />
        </Field>
      </form>
    </Modal>
  );
}
