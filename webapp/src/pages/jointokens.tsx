// Join tokens: create one (its secret is shown once, with the agent command),
// list them and revoke them.

import { useContext, useState } from 'preact/hooks';
import { ApiError } from '../api/client';
import type { JoinToken, Network } from '../api/types';
import { Alert, Badge, Button, Card, ConfirmDialog, CopyButton, Empty, ErrorState, Field, FormErrors, Loading, Modal, PageHeader } from '../components/ui';
import { IconKey, IconPlus, IconTrash } from '../components/icons';
import { Pager } from '../components/pager';
import { AppContext } from '../lib/context';
import { ago, dateTime, parseLabels, until } from '../lib/format';
import { useAsync, useLive, useNow } from '../lib/hooks';

const LIMIT = 100;
const NETWORK_CHOICES = 200;

/** agentCommand is the command that registers a host with a join token. */
export function agentCommand(origin: string, secret: string): string {
  return `drago agent -server ${origin} -join ${secret}`;
}

const expiries: { label: string; ms?: number }[] = [
  { label: '1 hour', ms: 3600e3 },
  { label: '24 hours', ms: 86400e3 },
  { label: '7 days', ms: 7 * 86400e3 },
  { label: '30 days', ms: 30 * 86400e3 },
  { label: 'Never' },
];

export function JoinTokensPage() {
  const { api, toast } = useContext(AppContext);
  const now = useNow(30000);
  const tick = useLive(['join_token', 'host', 'network']);
  const [offset, setOffset] = useState(0);
  const list = useAsync((s) => api.listJoinTokens({ limit: LIMIT, offset }, s), [offset, tick]);
  const nets = useAsync((s) => api.listNetworks({ limit: NETWORK_CHOICES }, s), [tick]);
  const [creating, setCreating] = useState(false);
  const [revoking, setRevoking] = useState<JoinToken | null>(null);
  const netName = (id: string) => nets.data?.items.find((n) => n.id === id)?.name ?? id.slice(0, 8);

  return (
    <div class="page">
      <PageHeader
        title="Join tokens"
        subtitle="Secrets that let new hosts register their agent and join networks."
        actions={
          <Button variant="primary" icon={<IconPlus />} onClick={() => setCreating(true)}>
            New join token
          </Button>
        }
      />
      <Card flush>
        {list.error != null && !list.data ? (
          <ErrorState error={list.error} onRetry={list.reload} />
        ) : !list.data ? (
          <Loading rows={4} />
        ) : list.data.items.length === 0 ? (
          <Empty
            icon={<IconKey />}
            title="No join tokens"
            action={
              <Button variant="primary" icon={<IconPlus />} onClick={() => setCreating(true)}>
                Create a join token
              </Button>
            }
          >
            Create one, then run the command it shows on each new host.
          </Empty>
        ) : (
          <>
            <table class="table" data-testid="join-tokens-table">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Uses</th>
                  <th>Expires</th>
                  <th>Networks</th>
                  <th>Labels</th>
                  <th>Created</th>
                  <th class="actions-col" />
                </tr>
              </thead>
              <tbody>
                {list.data.items.map((t) => {
                  const exp = until(t.expires_at, now);
                  const used = t.max_uses ? t.uses >= t.max_uses : false;
                  return (
                    <tr key={t.id}>
                      <td class="strong">{t.name || <span class="muted">unnamed</span>}</td>
                      <td>
                        {t.uses} / {t.max_uses ? t.max_uses : '∞'} {used && <Badge tone="grey">used up</Badge>}
                      </td>
                      <td title={dateTime(t.expires_at)}>{exp === 'expired' ? <Badge tone="red">expired</Badge> : exp}</td>
                      <td>{t.networks?.length ? t.networks.map((id) => <Badge tone="blue">{netName(id)}</Badge>) : <span class="muted">—</span>}</td>
                      <td>{t.labels && Object.keys(t.labels).length ? Object.entries(t.labels).map(([k, v]) => <Badge>{`${k}=${v}`}</Badge>) : <span class="muted">—</span>}</td>
                      <td class="muted">{ago(t.created_at, now)}</td>
                      <td class="actions-col">
                        <Button size="sm" variant="ghost" icon={<IconTrash size={15} />} onClick={() => setRevoking(t)}>
                          Revoke
                        </Button>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
            <Pager offset={list.data.offset} limit={LIMIT} total={list.data.total} onOffset={setOffset} noun="token" />
          </>
        )}
      </Card>
      {creating && <JoinTokenForm networks={nets.data?.items ?? []} onClose={() => setCreating(false)} onCreated={() => list.reload()} />}
      {revoking && (
        <ConfirmDialog
          title={`Revoke ${revoking.name || 'this join token'}?`}
          confirmLabel="Revoke"
          onClose={() => setRevoking(null)}
          onConfirm={async () => {
            await api.deleteJoinToken(revoking.id);
            toast('Join token revoked');
            list.reload();
          }}
        >
          Hosts can no longer register with it. Hosts that already did are not affected.
        </ConfirmDialog>
      )}
    </div>
  );
}

const FIELDS = ['name', 'expires_at', 'max_uses', 'labels', 'networks'];

function JoinTokenForm(props: { networks: Network[]; onClose: () => void; onCreated: () => void }) {
  const { api } = useContext(AppContext);
  const [v, setV] = useState({ name: '', expiry: 1, max_uses: '', labels: '' });
  const [chosen, setChosen] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState(new FormErrors(null));
  const [created, setCreated] = useState<JoinToken>();
  const set = (k: 'name' | 'max_uses' | 'labels') => (e: { currentTarget: { value: string } }) => setV({ ...v, [k]: e.currentTarget.value });

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setErrors(new FormErrors(null));
    try {
      let labels: Record<string, string> | undefined;
      try {
        labels = parseLabels(v.labels);
      } catch (err) {
        throw new ApiError(400, (err as Error).message, 'labels');
      }
      const ms = expiries[v.expiry]?.ms;
      const body: Partial<JoinToken> = {
        name: v.name.trim(),
        expires_at: ms ? new Date(Date.now() + ms).toISOString() : undefined,
        never_expires: ms ? undefined : true,
        max_uses: v.max_uses.trim() ? Number(v.max_uses) : undefined,
        labels,
        networks: chosen.length ? chosen : undefined,
      };
      const t = await api.createJoinToken(body);
      setCreated(t);
      props.onCreated();
    } catch (err) {
      setErrors(new FormErrors(err));
    } finally {
      setBusy(false);
    }
  }

  if (created) {
    const cmd = agentCommand(location.origin, created.secret ?? '');
    return (
      <Modal
        title="Join token created"
        onClose={props.onClose}
        testid="join-token-secret"
        wide
        footer={
          <Button variant="primary" onClick={props.onClose}>
            Done
          </Button>
        }
      >
        <Alert tone="warning" title="Copy it now.">
          This is the only time the secret is shown. Drago stores only a hash of it.
        </Alert>
        <div class="secret-block">
          <div class="secret-label">Run on each new host</div>
          <pre class="code" data-testid="join-command">{cmd}</pre>
          <div class="secret-actions">
            <CopyButton text={cmd} label="Copy command" />
            <CopyButton text={created.secret ?? ''} label="Copy secret only" />
          </div>
        </div>
        <p class="muted small">
          {created.max_uses ? `Valid for ${created.max_uses} registration${created.max_uses === 1 ? '' : 's'}` : 'Valid for any number of registrations'}
          {created.expires_at ? `, until ${dateTime(created.expires_at)}.` : ', with no expiry.'}
        </p>
      </Modal>
    );
  }

  const general = errors.general(FIELDS);
  return (
    <Modal
      title="New join token"
      onClose={props.onClose}
      testid="join-token-form"
      footer={
        <>
          <Button onClick={props.onClose}>Cancel</Button>
          <Button variant="primary" type="submit" form="join-token-form" busy={busy}>
            Create token
          </Button>
        </>
      }
    >
      <form id="join-token-form" class="form" onSubmit={submit} noValidate>
        {general && <Alert tone="error">{general}</Alert>}
        <Field label="Name" name="name" error={errors.field('name')} hint="What it is for: letters, digits, “.”, “_” and “-”.">
          <input name="name" value={v.name} onInput={set('name')} placeholder="edge-servers" autocomplete="off" />
        </Field>
        <div class="form-row">
          <Field label="Expires after" name="expires_at" error={errors.field('expires_at')}>
            <select name="expires_at" value={String(v.expiry)} onChange={(e) => setV({ ...v, expiry: Number(e.currentTarget.value) })}>
              {expiries.map((x, i) => (
                <option value={String(i)}>{x.label}</option>
              ))}
            </select>
          </Field>
          <Field label="Max uses" name="max_uses" error={errors.field('max_uses')} hint="Empty for unlimited.">
            <input name="max_uses" inputMode="numeric" value={v.max_uses} onInput={set('max_uses')} placeholder="unlimited" />
          </Field>
        </div>
        <Field label="Networks to join" name="networks" error={errors.field('networks')} hint="Registering hosts get an interface in each." group>
          {props.networks.length === 0 ? (
            <span class="muted small">No networks yet: hosts register without joining one.</span>
          ) : (
            <div class="checks">
              {props.networks.map((n) => (
                <label class={`check ${chosen.includes(n.id) ? 'on' : ''}`}>
                  <input
                    type="checkbox"
                    name="networks"
                    value={n.id}
                    checked={chosen.includes(n.id)}
                    onChange={(e) => setChosen(e.currentTarget.checked ? [...chosen, n.id] : chosen.filter((x) => x !== n.id))}
                  />
                  <span>{n.name}</span>
                  <span class="muted mono small">{n.ipv4_range}</span>
                </label>
              ))}
            </div>
          )}
        </Field>
        <Field label="Labels" name="labels" error={errors.field('labels')} hint="Given to hosts that register: key=value, comma separated.">
          <input name="labels" value={v.labels} onInput={set('labels')} placeholder="site=par, role=edge" class="mono-input" />
        </Field>
      </form>
    </Modal>
  );
}
