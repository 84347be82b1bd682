// Audit: the trail of management writes and registrations, newest first,
// filtered by time, credential, object, kind and method.

import { useContext, useState } from 'preact/hooks';
import type { AuditEntry } from '../api/types';
import { Badge, Button, Card, Empty, ErrorState, Loading, PageHeader } from '../components/ui';
import { IconActivity, IconRefresh, IconSearch } from '../components/icons';
import { Pager } from '../components/pager';
import { AppContext } from '../lib/context';
import { ago, dateTime } from '../lib/format';
import { useAsync, useDebounced, useLive, useNow } from '../lib/hooks';

export const AUDIT_PAGE = 50;

/** AUDIT_KINDS are the kinds of objects the API's writes name. */
const AUDIT_KINDS = ['network', 'host', 'interface', 'device', 'connection', 'token', 'join_token', 'rule'];

const SINCE: { label: string; value: string }[] = [
  { label: 'Last hour', value: '1h' },
  { label: 'Last 24 hours', value: '24h' },
  { label: 'Last 7 days', value: '168h' },
  { label: 'All kept', value: '' },
];

/** auditFields shows an entry's fields as name=value, the redacted ones as name=(redacted). */
export function auditFields(e: AuditEntry): string[] {
  const out = Object.entries(e.fields ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const k of e.redacted ?? []) out.push(`${k}=(redacted)`);
  return out.sort();
}

export function AuditPage() {
  const { api } = useContext(AppContext);
  const now = useNow(30000);
  const tick = useLive(['network', 'host', 'interface', 'connection', 'token', 'join_token']);
  const [since, setSince] = useState('24h');
  const [kind, setKind] = useState('');
  const [method, setMethod] = useState('');
  const [token, setToken] = useState('');
  const [object, setObject] = useState('');
  const [offset, setOffset] = useState(0);
  const [refresh, setRefresh] = useState(0);
  const q = { since, kind, method, token: useDebounced(token.trim()), object: useDebounced(object.trim()) };
  const list = useAsync((s) => api.listAudit({ ...q, limit: AUDIT_PAGE, offset }, s), [q.since, q.kind, q.method, q.token, q.object, offset, tick, refresh]);
  const filtered = !!(kind || method || q.token || q.object);
  const change = (set: (v: string) => void) => (e: { currentTarget: { value: string } }) => {
    set(e.currentTarget.value);
    setOffset(0);
  };

  return (
    <div class="page">
      <PageHeader
        title="Audit"
        subtitle="Every write made through the API, refused ones too, and every host registration: who, from where, what, and the answer."
        actions={
          <Button icon={<IconRefresh />} onClick={() => setRefresh((r) => r + 1)}>
            Refresh
          </Button>
        }
      />
      <Card flush>
        <div class="toolbar" data-testid="audit-filters">
          <select value={since} onChange={change(setSince)} aria-label="Since" class="select-inline">
            {SINCE.map((s) => (
              <option value={s.value}>{s.label}</option>
            ))}
          </select>
          <select value={kind} onChange={change(setKind)} aria-label="Kind" class="select-inline">
            <option value="">All kinds</option>
            {AUDIT_KINDS.map((k) => (
              <option value={k}>{k.replace('_', ' ')}</option>
            ))}
          </select>
          <select value={method} onChange={change(setMethod)} aria-label="Method" class="select-inline">
            <option value="">All methods</option>
            {['POST', 'PUT', 'PATCH', 'DELETE'].map((m) => (
              <option value={m}>{m}</option>
            ))}
          </select>
          <div class="search">
            <IconSearch size={16} />
            <input type="search" placeholder="Token (name or id)" value={token} onInput={change(setToken)} aria-label="Token" />
          </div>
          <div class="search">
            <IconSearch size={16} />
            <input type="search" placeholder="Object (name or id)" value={object} onInput={change(setObject)} aria-label="Object" />
          </div>
          <span class="toolbar-count muted" data-testid="audit-total">
            {list.data ? `${list.data.total.toLocaleString()} entr${list.data.total === 1 ? 'y' : 'ies'}` : ''}
          </span>
        </div>
        {list.error != null && !list.data ? (
          <ErrorState error={list.error} onRetry={list.reload} />
        ) : !list.data ? (
          <Loading rows={6} />
        ) : list.data.items.length === 0 ? (
          <Empty icon={<IconActivity />} title={filtered ? 'No matching entries' : 'No writes in this period'}>
            {filtered ? 'Nothing matches this filter.' : 'Writes made through the API show here.'}
          </Empty>
        ) : (
          <>
            <table class="table" data-testid="audit-table">
              <thead>
                <tr>
                  <th>When</th>
                  <th>By</th>
                  <th>From</th>
                  <th>Request</th>
                  <th>Object</th>
                  <th>Status</th>
                  <th>Fields</th>
                </tr>
              </thead>
              <tbody>
                {list.data.items.map((e) => (
                  <tr key={e.id} data-testid="audit-row">
                    <td class="muted" title={dateTime(e.time)}>
                      {ago(e.time, now)}
                    </td>
                    <td title={`${e.actor.kind} ${e.actor.id}`}>
                      <span class="strong">{e.actor.name || e.actor.id.slice(0, 8)}</span> <span class="muted">{e.actor.kind.replace('_', ' ')}</span>
                    </td>
                    <td class="mono muted">{e.remote || '—'}</td>
                    <td class="mono">
                      <Badge tone={e.method === 'DELETE' ? 'red' : e.method === 'POST' ? 'blue' : 'violet'}>{e.method}</Badge> {e.path}
                    </td>
                    <td title={e.object_id}>
                      {e.kind.replace('_', ' ')} {e.object_name || (e.object_id ? e.object_id.slice(0, 8) : '')}
                    </td>
                    <td title={e.error}>
                      <Badge tone={e.status < 400 ? 'green' : 'red'}>{e.status}</Badge>
                      {e.error && <div class="muted small">{e.error}</div>}
                    </td>
                    <td class="mono small">
                      {auditFields(e).map((f) => (
                        <div>{f}</div>
                      ))}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <Pager offset={list.data.offset} limit={AUDIT_PAGE} total={list.data.total} onOffset={setOffset} noun="record" />
          </>
        )}
      </Card>
    </div>
  );
}
