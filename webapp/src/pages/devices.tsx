// Devices: plain WireGuard peers without an agent (phones, laptops). The key
// pair is generated here, in the browser; only the public key is sent. The
// configuration is the server's (GET /interfaces/{id}/config) with the
// private key put in here.

import { useContext, useState } from 'preact/hooks';
import type { Interface, Network } from '../api/types';
import {
  Alert,
  Badge,
  Button,
  Card,
  ConfirmDialog,
  errorMessage,
  CopyButton,
  Empty,
  ErrorState,
  Field,
  FormErrors,
  Link,
  Loading,
  Modal,
  Mono,
  PageHeader,
} from '../components/ui';
import { IconDevice, IconDownload, IconPlus, IconTrash } from '../components/icons';
import { Pager } from '../components/pager';
import { QRCodeView } from '../components/qrcode';
import { AppContext } from '../lib/context';
import { ago, shortKey } from '../lib/format';
import { useAsync, useLive, useNow } from '../lib/hooks';
import { generateKeyPair } from '../lib/wgkeys';
import { peerCount, withPrivateKey } from '../lib/wgconfig';

const LIMIT = 100;
const NETWORK_CHOICES = 200;

export function DevicesPage() {
  const { api, toast } = useContext(AppContext);
  const now = useNow(30000);
  const tick = useLive(['interface', 'network']);
  const [network, setNetwork] = useState('');
  const [offset, setOffset] = useState(0);
  const nets = useAsync((s) => api.listNetworks({ limit: NETWORK_CHOICES }, s), [tick]);
  const list = useAsync((s) => api.listDevices({ network: network || undefined, limit: LIMIT, offset }, s), [network, offset, tick]);
  const [adding, setAdding] = useState(false);
  const [deleting, setDeleting] = useState<Interface | null>(null);
  const netName = (id: string) => nets.data?.items.find((n) => n.id === id)?.name ?? id.slice(0, 8);
  const noNetworks = nets.data && nets.data.total === 0;

  return (
    <div class="page">
      <PageHeader
        title="Devices"
        subtitle="Phones and laptops that join a network with a plain WireGuard app."
        actions={
          <Button variant="primary" icon={<IconPlus />} onClick={() => setAdding(true)} disabled={noNetworks}>
            Add device
          </Button>
        }
      />
      <Card flush>
        <div class="toolbar">
          <select
            class="select-inline"
            aria-label="Network"
            value={network}
            onChange={(e) => {
              setNetwork(e.currentTarget.value);
              setOffset(0);
            }}
          >
            <option value="">All networks</option>
            {(nets.data?.items ?? []).map((n) => (
              <option value={n.id}>{n.name}</option>
            ))}
          </select>
        </div>
        {list.error != null && !list.data ? (
          <ErrorState error={list.error} onRetry={list.reload} />
        ) : !list.data ? (
          <Loading rows={4} />
        ) : list.data.items.length === 0 ? (
          noNetworks ? (
            <Empty icon={<IconDevice />} title="No networks yet" action={<Link to="/networks" class="btn btn-primary btn-sm">Create a network</Link>}>
              Devices join a network: create one first.
            </Empty>
          ) : (
            <Empty
              icon={<IconDevice />}
              title="No devices"
              action={
                <Button variant="primary" icon={<IconPlus />} onClick={() => setAdding(true)}>
                  Add a device
                </Button>
              }
            >
              Add a phone or laptop: Drago shows its configuration and a QR code for the WireGuard app.
            </Empty>
          )
        ) : (
          <>
            <table class="table" data-testid="devices-table">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Network</th>
                  <th>Addresses</th>
                  <th>Public key</th>
                  <th>Added</th>
                  <th class="actions-col" />
                </tr>
              </thead>
              <tbody>
                {list.data.items.map((d) => (
                  <tr key={d.id}>
                    <td class="strong">
                      <span class="with-icon">
                        <IconDevice size={15} /> {d.device_name || d.name}
                      </span>
                    </td>
                    <td>
                      <Link to={`/networks/${encodeURIComponent(netName(d.network_id))}`}>{netName(d.network_id)}</Link>
                    </td>
                    <td>
                      <Mono>{d.addresses.join(', ')}</Mono>
                    </td>
                    <td>
                      <Mono title={d.public_key}>{shortKey(d.public_key)}</Mono>
                    </td>
                    <td class="muted">{ago(d.created_at, now)}</td>
                    <td class="actions-col">
                      <button type="button" class="icon-btn danger" title="Delete device" aria-label={`Delete ${d.device_name}`} onClick={() => setDeleting(d)}>
                        <IconTrash size={16} />
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <Pager offset={list.data.offset} limit={LIMIT} total={list.data.total} onOffset={setOffset} noun="device" />
          </>
        )}
      </Card>
      {adding && <AddDevice networks={nets.data?.items ?? []} initialNetwork={network} onClose={() => setAdding(false)} onAdded={() => list.reload()} />}
      {deleting && (
        <ConfirmDialog
          title={`Delete device ${deleting.device_name || deleting.name}?`}
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await api.deleteDevice(deleting.id);
            toast('Device deleted');
            list.reload();
          }}
        >
          Its peers drop its key: the device can no longer connect.
        </ConfirmDialog>
      )}
    </div>
  );
}

const FIELDS = ['network', 'name', 'address', 'public_key'];

function AddDevice(props: { networks: Network[]; initialNetwork: string; onClose: () => void; onAdded: () => void }) {
  const { api } = useContext(AppContext);
  const [v, setV] = useState({ network: props.initialNetwork || props.networks[0]?.id || '', name: '', address: '' });
  const [busy, setBusy] = useState(false);
  const [step, setStep] = useState('');
  const [errors, setErrors] = useState(new FormErrors(null));
  const [result, setResult] = useState<{ device: Interface; networkName: string; privateKey: string; config?: string; configError?: unknown; via: string }>();
  const set = (k: keyof typeof v) => (e: { currentTarget: { value: string } }) => setV({ ...v, [k]: e.currentTarget.value });

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setErrors(new FormErrors(null));
    try {
      const network = props.networks.find((n) => n.id === v.network);
      setStep('Generating the key pair in your browser…');
      const keys = await generateKeyPair();
      setStep('Registering the public key…');
      const device = await api.createDevice({
        network: v.network,
        name: v.name.trim(),
        public_key: keys.publicKey,
        address: v.address.trim() || undefined,
      });
      props.onAdded();
      setStep('Fetching the configuration…');
      // The device exists now: from here on nothing may lose the private key.
      const networkName = network?.name ?? (await api.getNetwork(device.network_id).then((n) => n.name, () => device.network_id));
      setResult({ device, networkName, privateKey: keys.privateKey, via: keys.via, ...(await fetchConfig(device.id, keys.privateKey)) });
    } catch (err) {
      setErrors(new FormErrors(err));
    } finally {
      setBusy(false);
      setStep('');
    }
  }

  /** fetchConfig answers the server's configuration of the device with privateKey put in. */
  async function fetchConfig(id: string, privateKey: string): Promise<{ config?: string; configError?: unknown }> {
    try {
      return { config: withPrivateKey(await api.interfaceConfig(id), privateKey) };
    } catch (err) {
      return { configError: err };
    }
  }

  async function retry() {
    if (!result) return;
    setBusy(true);
    const got = await fetchConfig(result.device.id, result.privateKey);
    setResult({ ...result, config: got.config, configError: got.configError });
    setBusy(false);
  }

  if (result && result.config === undefined) {
    return (
      <Modal
        title={`${result.device.device_name || 'Device'} added to ${result.networkName}`}
        onClose={props.onClose}
        testid="device-config"
        footer={
          <>
            <Button onClick={props.onClose}>Close</Button>
            <Button variant="primary" onClick={retry} busy={busy}>
              Fetch again
            </Button>
          </>
        }
      >
        <Alert tone="error" title="The server's configuration could not be fetched.">
          {errorMessage(result.configError)}
        </Alert>
        <Alert tone="warning" title="The private key is shown only now.">
          Fetch the configuration again, or copy the private key into the text of <Mono>drago interface config {result.device.id}</Mono>.
        </Alert>
        <div class="secret-actions">
          <Mono>{result.privateKey}</Mono>
          <CopyButton text={result.privateKey} label="Copy" />
        </div>
      </Modal>
    );
  }

  if (result?.config !== undefined) {
    const config = result.config;
    const fileName = `${(result.device.device_name || 'device').replace(/[^A-Za-z0-9_=+.-]/g, '-').slice(0, 15)}.conf`;
    const peers = peerCount(config);
    return (
      <Modal
        wide
        title={`${result.device.device_name || 'Device'} added to ${result.networkName}`}
        onClose={props.onClose}
        testid="device-config"
        footer={
          <Button variant="primary" onClick={props.onClose}>
            Done
          </Button>
        }
      >
        <Alert tone="warning" title="The private key is shown only now.">
          It was generated in this browser and never sent to the server. Scan or save the configuration before closing.
        </Alert>
        {peers === 0 && (
          <Alert tone="info">No peer has a key yet: the configuration gains [Peer] sections once hosts in {result.networkName} report their keys. Add the device again then, or edit the file.</Alert>
        )}
        <div class="device-result">
          <div class="qr-box">
            <QRCodeView text={config} />
            <span class="muted small">Scan with the WireGuard app</span>
          </div>
          <div class="config-box">
            <pre class="code config" data-testid="device-config-text">{config}</pre>
            <div class="secret-actions">
              <CopyButton text={config} label="Copy" />
              <Button size="sm" icon={<IconDownload size={15} />} onClick={() => download(fileName, config)}>
                Download {fileName}
              </Button>
              <Badge tone="grey" title="Where the key pair came from">
                {result.via === 'webcrypto' ? 'WebCrypto X25519' : '@noble/curves X25519'}
              </Badge>
            </div>
          </div>
        </div>
      </Modal>
    );
  }

  const general = errors.general(FIELDS);
  return (
    <Modal
      title="Add a device"
      onClose={props.onClose}
      testid="device-form"
      footer={
        <>
          <Button onClick={props.onClose}>Cancel</Button>
          <Button variant="primary" type="submit" form="device-form" busy={busy}>
            Generate keys and add
          </Button>
        </>
      }
    >
      <form id="device-form" class="form" onSubmit={submit} noValidate>
        {general && <Alert tone="error">{general}</Alert>}
        <Field label="Network" name="network" error={errors.field('network')}>
          <select name="network" value={v.network} onChange={set('network')}>
            {props.networks.map((n) => (
              <option value={n.id}>
                {n.name} ({n.ipv4_range})
              </option>
            ))}
          </select>
        </Field>
        <Field label="Device name" name="name" error={errors.field('name')} hint="Letters, digits, “.”, “_” and “-”.">
          <input name="name" value={v.name} onInput={set('name')} placeholder="alice-phone" autocomplete="off" />
        </Field>
        <Field label="Address" name="address" error={errors.field('address')} hint="Optional: empty to assign the next free address.">
          <input name="address" value={v.address} onInput={set('address')} placeholder="auto" class="mono-input" />
        </Field>
        {errors.field('public_key') && <Alert tone="error">{errors.field('public_key')}</Alert>}
        <p class="muted small">
          {step || 'The key pair is generated in this browser. Only the public key is sent to the server.'}
        </p>
      </form>
    </Modal>
  );
}

function download(name: string, text: string) {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
