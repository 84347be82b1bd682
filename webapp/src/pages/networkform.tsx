// The form that creates or edits a network.

import { useContext, useState } from 'preact/hooks';
import type { Interface, Network, TopologyMode } from '../api/types';
import { Alert, Button, Field, FormErrors, Modal } from '../components/ui';
import { AppContext } from '../lib/context';
import { splitList } from '../lib/format';

const FIELDS = ['name', 'ipv4_range', 'ipv6_range', 'topology', 'listen_port', 'mtu', 'persistent_keepalive', 'dns', 'hub_interface_id'];

const topologies: { value: TopologyMode; label: string; help: string }[] = [
  { value: 'mesh', label: 'Mesh', help: 'Every interface peers with every other.' },
  { value: 'hub', label: 'Hub', help: 'Every interface peers with one hub.' },
  { value: 'none', label: 'None', help: 'Only the connections you add.' },
];

function num(s: string): number | undefined {
  const t = s.trim();
  return t === '' ? undefined : Number(t);
}

export function NetworkForm(props: {
  network?: Network;
  interfaces?: Interface[];
  names?: Record<string, string>;
  onClose: () => void;
  onSaved: (n: Network) => void;
}) {
  const { api } = useContext(AppContext);
  const n = props.network;
  const [v, setV] = useState({
    name: n?.name ?? '',
    ipv4_range: n?.ipv4_range ?? '',
    ipv6_range: n?.ipv6_range ?? '',
    topology: (n?.topology ?? 'mesh') as TopologyMode,
    listen_port: n?.listen_port ? String(n.listen_port) : '',
    mtu: n?.mtu ? String(n.mtu) : '',
    persistent_keepalive: n?.persistent_keepalive ? String(n.persistent_keepalive) : '',
    dns: (n?.dns ?? []).join(', '),
    hub_interface_id: n?.hub_interface_id ?? '',
  });
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState(new FormErrors(null));
  const set = (k: keyof typeof v) => (e: { currentTarget: { value: string } }) => setV({ ...v, [k]: e.currentTarget.value });

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setErrors(new FormErrors(null));
    const body: Partial<Network> = {
      name: v.name.trim(),
      ipv4_range: v.ipv4_range.trim(),
      ipv6_range: v.ipv6_range.trim() || undefined,
      topology: v.topology,
      listen_port: num(v.listen_port),
      mtu: num(v.mtu),
      persistent_keepalive: num(v.persistent_keepalive),
      dns: v.dns.trim() ? splitList(v.dns) : undefined,
    };
    if (v.topology === 'hub' && v.hub_interface_id) body.hub_interface_id = v.hub_interface_id;
    try {
      let saved: Network;
      if (n) {
        // PATCH only what changed.
        const patch: Record<string, unknown> = {};
        for (const [k, val] of Object.entries(body)) {
          const old = (n as unknown as Record<string, unknown>)[k];
          if (JSON.stringify(val ?? null) !== JSON.stringify(old ?? null)) patch[k] = val ?? (k === 'dns' ? [] : k === 'ipv6_range' ? '' : 0);
        }
        saved = Object.keys(patch).length ? await api.updateNetwork(n.id, patch as Partial<Network>) : n;
      } else {
        saved = await api.createNetwork(body);
      }
      props.onSaved(saved);
    } catch (err) {
      setErrors(new FormErrors(err));
      setBusy(false);
    }
  }

  const general = errors.general(FIELDS);
  return (
    <Modal
      title={n ? `Edit ${n.name}` : 'New network'}
      onClose={props.onClose}
      testid="network-form"
      footer={
        <>
          <Button onClick={props.onClose}>Cancel</Button>
          <Button variant="primary" type="submit" form="network-form" busy={busy}>
            {n ? 'Save changes' : 'Create network'}
          </Button>
        </>
      }
    >
      <form id="network-form" class="form" onSubmit={submit} noValidate>
        {general && <Alert tone="error">{general}</Alert>}
        <Field label="Name" name="name" error={errors.field('name')} hint="Lowercase letters, digits and dashes.">
          <input name="name" value={v.name} onInput={set('name')} placeholder="office" autocomplete="off" />
        </Field>
        <div class="form-row">
          <Field label="IPv4 range" name="ipv4_range" error={errors.field('ipv4_range')} hint="Addresses are assigned from it.">
            <input name="ipv4_range" value={v.ipv4_range} onInput={set('ipv4_range')} placeholder="10.10.0.0/24" class="mono-input" />
          </Field>
          <Field label="IPv6 range" name="ipv6_range" error={errors.field('ipv6_range')} hint="Optional.">
            <input name="ipv6_range" value={v.ipv6_range} onInput={set('ipv6_range')} placeholder="fd10::/64" class="mono-input" />
          </Field>
        </div>
        <Field label="Topology" name="topology" error={errors.field('topology')} group>
          <div class="segmented" role="radiogroup">
            {topologies.map((t) => (
              <button
                type="button"
                role="radio"
                aria-checked={v.topology === t.value}
                class={v.topology === t.value ? 'active' : ''}
                data-value={t.value}
                onClick={() => setV({ ...v, topology: t.value })}
              >
                <strong>{t.label}</strong>
                <span>{t.help}</span>
              </button>
            ))}
          </div>
        </Field>
        {n && v.topology === 'hub' && (
          <Field label="Hub interface" name="hub_interface_id" error={errors.field('hub_interface_id')} hint="The interface every other one peers with.">
            <select name="hub_interface_id" value={v.hub_interface_id} onChange={set('hub_interface_id')}>
              <option value="">Choose an interface…</option>
              {(props.interfaces ?? []).map((i) => (
                <option value={i.id}>
                  {props.names?.[i.id] ?? i.name} ({i.addresses.join(', ')})
                </option>
              ))}
            </select>
          </Field>
        )}
        <details class="advanced" open={Boolean(errors.field('listen_port') || errors.field('mtu') || errors.field('persistent_keepalive') || errors.field('dns'))}>
          <summary>Advanced defaults</summary>
          <div class="form-row three">
            <Field label="Listen port" name="listen_port" error={errors.field('listen_port')}>
              <input name="listen_port" inputMode="numeric" value={v.listen_port} onInput={set('listen_port')} placeholder="51820" />
            </Field>
            <Field label="MTU" name="mtu" error={errors.field('mtu')}>
              <input name="mtu" inputMode="numeric" value={v.mtu} onInput={set('mtu')} placeholder="1420" />
            </Field>
            <Field label="Keepalive (s)" name="persistent_keepalive" error={errors.field('persistent_keepalive')}>
              <input name="persistent_keepalive" inputMode="numeric" value={v.persistent_keepalive} onInput={set('persistent_keepalive')} placeholder="0 = off" />
            </Field>
          </div>
          <Field label="DNS servers" name="dns" error={errors.field('dns')} hint="Comma separated; written into device configs.">
            <input name="dns" value={v.dns} onInput={set('dns')} placeholder="10.10.0.1" class="mono-input" />
          </Field>
        </details>
      </form>
    </Modal>
  );
}
