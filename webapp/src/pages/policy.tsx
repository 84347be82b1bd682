// A network's access policy on its page: the default action, the ordered
// rules (add, edit, move, delete), a flow check that names the deciding
// rule, the interfaces that do not enforce the policy, and who can reach
// whom from one chosen interface (checked by the server, a page at a time).

import { useContext, useEffect, useState } from 'preact/hooks';
import type { Interface, Network, Rule, RuleProtocol, RuleVerdict, TopologyNode } from '../api/types';
import { Alert, Badge, Button, Card, ConfirmDialog, Empty, ErrorState, Field, FormErrors, Link, Loading, Modal, Mono, errorMessage } from '../components/ui';
import { IconEdit, IconPlus, IconShield, IconTrash } from '../components/icons';
import { Pager } from '../components/pager';
import { AppContext } from '../lib/context';
import { useAsync, useLive } from '../lib/hooks';
import { enforcement, flowText, parseProbes, pool, probeLabel, probes, ruleBody, ruleFields, type RuleFields } from '../lib/policy';

/** A network holds at most this many rules (server/state), so one page lists them all. */
const RULES_LIMIT = 1000;
/** How many interfaces that do not enforce the policy the page names. */
const BEHIND_SHOWN = 10;
/** How often the page asks again which interfaces enforce (agent reports send no events). */
export const ENFORCEMENT_POLL_MS = 15000;
/** Destinations per page of the reach view, and checks in flight at once. */
export const REACH_PAGE = 20;
const REACH_CONCURRENCY = 6;
const REACH_BATCH_MS = 100;

/** Highlight marks what a flow check found decisive: a rule, or the default action. */
type Highlight = { rule?: string; default?: boolean };

/**
 * PolicySection is the policy card and the reach view of a network's page;
 * names maps interface ids to host or device names, nodes are the network's
 * interfaces (from its topology).
 */
export function PolicySection(props: { network: Network; names: Record<string, string>; nodes?: TopologyNode[]; onNetwork: (n: Network) => void }) {
  const { api, toast } = useContext(AppContext);
  const n = props.network;
  const tick = useLive(['rule', 'interface', 'network'], (e) => (e.networks ?? []).includes(n.id) || e.id === n.id);
  const [poll, setPoll] = useState(0);
  useEffect(() => {
    const t = setInterval(() => !document.hidden && setPoll((p) => p + 1), ENFORCEMENT_POLL_MS);
    return () => clearInterval(t);
  }, []);
  const rules = useAsync((s) => api.listRules({ network: n.id, limit: RULES_LIMIT }, s), [n.id, tick]);
  const behind = useAsync((s) => api.listInterfaces({ network: n.id, firewall: 'behind', limit: BEHIND_SHOWN }, s), [n.id, tick, poll]);
  const [form, setForm] = useState<{ rule?: Rule } | null>(null);
  const [removing, setRemoving] = useState<Rule | null>(null);
  const [dropping, setDropping] = useState(false);
  const [highlight, setHighlight] = useState<Highlight>({});
  const [moving, setMoving] = useState<string>();
  const list = (rules.data?.items ?? []).filter((r) => r.network_id === n.id);

  async function move(r: Rule, position: number) {
    setMoving(r.id);
    try {
      await api.updateRule(r.id, { position });
      rules.reload();
    } catch (err) {
      toast(`Moving the rule failed: ${errorMessage(err)}`, 'error');
    } finally {
      setMoving(undefined);
    }
  }

  async function setDefault(action: 'accept' | 'drop') {
    const saved = await api.updateNetwork(n.id, { default_action: action });
    props.onNetwork(saved);
    toast(`Default action of ${n.name}: ${action}`);
  }

  const accepts = list.filter((r) => r.action === 'accept').length;
  const highlightVerdict = (v?: RuleVerdict) => setHighlight(v ? (v.rule_id ? { rule: v.rule_id } : { default: true }) : {});
  return (
    <>
    <Card
      title="Access policy"
      subtitle="Hosts apply the rules in order to traffic arriving through their interface: the first rule that matches decides; none matching leaves the default action."
      testid="policy"
      flush
      actions={
        <Button size="sm" icon={<IconPlus size={15} />} onClick={() => setForm({})}>
          Add rule
        </Button>
      }
    >
      <div class="policy-head">
        <div class={`policy-default ${highlight.default ? 'is-decided' : ''}`} data-testid="default-action">
          <span class="field-label">Default action</span>
          <div class="toggle" role="radiogroup" aria-label="Default action">
            {(['accept', 'drop'] as const).map((a) => (
              <button
                type="button"
                role="radio"
                aria-checked={n.default_action === a}
                class={n.default_action === a ? `active ${a}` : ''}
                data-value={a}
                onClick={() => {
                  if (n.default_action === a) return;
                  if (a === 'drop') setDropping(true);
                  else setDefault('accept').catch((err) => toast(errorMessage(err), 'error'));
                }}
              >
                {a}
              </button>
            ))}
          </div>
          <span class="muted small">
            {n.default_action === 'drop' ? 'Traffic no rule accepts is dropped.' : 'Traffic no rule drops is accepted.'}
          </span>
        </div>
        <Enforcement behind={behind.data} error={behind.error} names={props.names} />
      </div>
      {rules.error != null && !rules.data ? (
        <ErrorState error={rules.error} onRetry={rules.reload} />
      ) : !rules.data ? (
        <Loading />
      ) : list.length === 0 ? (
        <Empty icon={<IconShield />} title="No rules">
          {n.default_action === 'drop'
            ? 'Every host drops what arrives from the network, replies to its own connections aside. Add rules to let traffic in.'
            : 'Every host of the network reaches every port of every other. Add rules to limit that.'}
        </Empty>
      ) : (
        <RuleTable rules={list} highlight={highlight.rule} moving={moving} onMove={move} onEdit={(r) => setForm({ rule: r })} onRemove={setRemoving} />
      )}
      <CheckFlow network={n} onVerdict={highlightVerdict} />
      {form && (
        <RuleForm
          network={n}
          rule={form.rule}
          count={list.length}
          onClose={() => setForm(null)}
          onSaved={() => {
            setForm(null);
            toast(form.rule ? 'Rule saved' : 'Rule added');
            rules.reload();
          }}
        />
      )}
      {removing && (
        <ConfirmDialog
          title={`Remove rule ${removing.position}?`}
          confirmLabel="Remove rule"
          onClose={() => setRemoving(null)}
          onConfirm={async () => {
            await api.deleteRule(removing.id);
            toast('Rule removed');
            rules.reload();
          }}
        >
          {removing.action} from {removing.from.join(', ')} to {removing.to.join(', ')} ({flowText(removing)}) goes; the rules after it move up.
        </ConfirmDialog>
      )}
      {dropping && (
        <ConfirmDialog
          title={`Drop by default in ${n.name}?`}
          confirmLabel="Drop by default"
          onClose={() => setDropping(false)}
          onConfirm={() => setDefault('drop')}
        >
          <Alert tone="warning" title="Traffic no rule accepts will be refused">
            {accepts === 0
              ? 'No rule accepts anything: every host will refuse every new connection from the network (SSH included), replies to its own connections aside.'
              : `Only what the ${accepts} accept rule${accepts === 1 ? '' : 's'} let${accepts === 1 ? 's' : ''} in will pass; every other new connection between hosts is refused.`}{' '}
            Hosts that do not enforce the policy (see the list) keep accepting everything. Check a flow first if unsure.
          </Alert>
        </ConfirmDialog>
      )}
    </Card>
    <ReachCard network={n} nodes={props.nodes} rules={rules.data ? list : undefined} onVerdict={highlightVerdict} />
    </>
  );
}

function Enforcement(props: { behind?: { items: Interface[]; total: number }; error?: unknown; names: Record<string, string> }) {
  const b = props.behind;
  if (!b) return props.error != null ? <Alert tone="error">Which hosts enforce the policy is unknown: {errorMessage(props.error)}</Alert> : null;
  if (b.total === 0) {
    return (
      <div class="policy-enforced muted" data-testid="enforcement">
        <Badge tone="green" dot>
          enforced
        </Badge>{' '}
        Every agent enforces the current policy, where there is one to enforce.
      </div>
    );
  }
  return (
    <div class="policy-behind" data-testid="enforcement">
      <Alert tone="warning" title={`${b.total.toLocaleString('en')} interface${b.total === 1 ? ' does' : 's do'} not enforce the current policy`}>
        <ul class="behind-list">
          {b.items.map((i) => {
            const e = enforcement(i);
            return (
              <li key={i.id} data-behind={i.id}>
                <Link to={`/hosts/${encodeURIComponent(i.host_id)}`} class="strong">
                  {props.names[i.id] ?? i.host_id.slice(0, 8)}
                </Link>{' '}
                <Badge tone="amber">{e.label}</Badge> <span>{e.detail}</span>
              </li>
            );
          })}
        </ul>
        {b.total > b.items.length && <div>and {(b.total - b.items.length).toLocaleString('en')} more (drago status lists them all).</div>}
      </Alert>
    </div>
  );
}

function RuleTable(props: {
  rules: Rule[];
  highlight?: string;
  moving?: string;
  onMove: (r: Rule, position: number) => void;
  onEdit: (r: Rule) => void;
  onRemove: (r: Rule) => void;
}) {
  const last = props.rules.length - 1;
  useEffect(() => {
    if (props.highlight) document.querySelector(`[data-rule-id="${props.highlight}"]`)?.scrollIntoView?.({ block: 'nearest' });
  }, [props.highlight]);
  return (
    <div class="rules-scroll">
      <table class="table" data-testid="rules">
        <thead>
          <tr>
            <th class="num">#</th>
            <th>Action</th>
            <th>From</th>
            <th>To</th>
            <th>Protocol</th>
            <th>Ports</th>
            <th>Description</th>
            <th class="actions-col" />
          </tr>
        </thead>
        <tbody>
          {props.rules.map((r) => (
            <tr key={r.id} data-rule-id={r.id} class={props.highlight === r.id ? 'is-decided' : ''}>
              <td class="num">{r.position}</td>
              <td>
                <Badge tone={r.action === 'accept' ? 'green' : 'red'}>{r.action}</Badge>
              </td>
              <td>
                <Mono>{r.from.join(', ')}</Mono>
              </td>
              <td>
                <Mono>{r.to.join(', ')}</Mono>
              </td>
              <td>{r.protocol}</td>
              <td>
                <Mono>{r.ports?.join(', ') || (r.protocol === 'tcp' || r.protocol === 'udp' ? 'all' : '—')}</Mono>
              </td>
              <td class="muted">{r.description || ''}</td>
              <td class="actions-col">
                <button type="button" class="icon-btn" title="Move up" aria-label={`Move rule ${r.position} up`} disabled={r.position === 0 || props.moving != null} onClick={() => props.onMove(r, r.position - 1)}>
                  ↑
                </button>
                <button type="button" class="icon-btn" title="Move down" aria-label={`Move rule ${r.position} down`} disabled={r.position === last || props.moving != null} onClick={() => props.onMove(r, r.position + 1)}>
                  ↓
                </button>
                <button type="button" class="icon-btn" title="Edit rule" aria-label={`Edit rule ${r.position}`} onClick={() => props.onEdit(r)}>
                  <IconEdit size={16} />
                </button>
                <button type="button" class="icon-btn danger" title="Remove rule" aria-label={`Remove rule ${r.position}`} onClick={() => props.onRemove(r)}>
                  <IconTrash size={16} />
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const RULE_FIELDS = ['action', 'from', 'to', 'protocol', 'ports', 'description', 'position'];
const PROTOCOLS: RuleProtocol[] = ['tcp', 'udp', 'icmp', 'any'];

function RuleForm(props: { network: Network; rule?: Rule; count: number; onClose: () => void; onSaved: () => void }) {
  const { api } = useContext(AppContext);
  const r = props.rule;
  const [v, setV] = useState<RuleFields & { position: string }>({ ...ruleFields(r), position: '' });
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState(new FormErrors(null));
  const set = (k: keyof typeof v) => (e: { currentTarget: { value: string } }) => setV({ ...v, [k]: e.currentTarget.value });

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setErrors(new FormErrors(null));
    const body = ruleBody(v);
    try {
      if (r) await api.updateRule(r.id, body);
      else await api.createRule({ ...body, network_id: props.network.id, position: v.position.trim() === '' ? undefined : Number(v.position.trim()) });
      props.onSaved();
    } catch (err) {
      setErrors(new FormErrors(err));
      setBusy(false);
    }
  }
  const general = errors.general(RULE_FIELDS);
  const ports = v.protocol === 'tcp' || v.protocol === 'udp';
  return (
    <Modal
      wide
      title={r ? `Edit rule ${r.position}` : `Add a rule to ${props.network.name}`}
      onClose={props.onClose}
      testid="rule-form"
      footer={
        <>
          <Button onClick={props.onClose}>Cancel</Button>
          <Button variant="primary" type="submit" form="rule-form" busy={busy}>
            {r ? 'Save rule' : 'Add rule'}
          </Button>
        </>
      }
    >
      <form id="rule-form" class="form" onSubmit={submit} noValidate>
        {general && <Alert tone="error">{general}</Alert>}
        <Field label="Action" name="action" error={errors.field('action')} group>
          <div class="toggle" role="radiogroup">
            {(['accept', 'drop'] as const).map((a) => (
              <button type="button" role="radio" aria-checked={v.action === a} class={v.action === a ? `active ${a}` : ''} data-value={a} onClick={() => setV({ ...v, action: a })}>
                {a}
              </button>
            ))}
          </div>
        </Field>
        <div class="form-row">
          <Field label="From" name="from" error={errors.field('from')} hint="Selectors, comma separated: *, host:web-1, role=web, device:laptop, subnets:gw-1, 10.0.0.0/24.">
            <input name="from" value={v.from} onInput={set('from')} placeholder="role=web" class="mono-input" autocomplete="off" />
          </Field>
          <Field label="To" name="to" error={errors.field('to')} hint="The same selectors.">
            <input name="to" value={v.to} onInput={set('to')} placeholder="role=db" class="mono-input" autocomplete="off" />
          </Field>
        </div>
        <div class="form-row">
          <Field label="Protocol" name="protocol" error={errors.field('protocol')}>
            <select name="protocol" value={v.protocol} onChange={(e) => setV({ ...v, protocol: e.currentTarget.value as RuleProtocol, ports: ['tcp', 'udp'].includes(e.currentTarget.value) ? v.ports : '' })}>
              {PROTOCOLS.map((p) => (
                <option value={p}>{p === 'icmp' ? 'icmp (and ICMPv6)' : p}</option>
              ))}
            </select>
          </Field>
          <Field label="Ports" name="ports" error={errors.field('ports')} hint={ports ? 'Ports and ranges, comma separated; empty for every port.' : 'Only tcp and udp rules take ports.'}>
            <input name="ports" value={v.ports} onInput={set('ports')} placeholder={ports ? '22, 8000-8100' : ''} class="mono-input" disabled={!ports && !v.ports} autocomplete="off" />
          </Field>
        </div>
        <div class="form-row">
          <Field label="Description" name="description" error={errors.field('description')}>
            <input name="description" value={v.description} onInput={set('description')} placeholder="postgres from the web tier" autocomplete="off" />
          </Field>
          {!r && (
            <Field label="Position" name="position" error={errors.field('position')} hint={`0 is evaluated first; empty: last (${props.count}).`}>
              <input name="position" inputMode="numeric" value={v.position} onInput={set('position')} placeholder={String(props.count)} />
            </Field>
          )}
        </div>
      </form>
    </Modal>
  );
}

const CHECK_FIELDS = ['from', 'to', 'port'];

/** CheckFlow asks the server which action the policy takes for one flow. */
function CheckFlow(props: { network: Network; onVerdict: (v?: RuleVerdict) => void }) {
  const { api } = useContext(AppContext);
  const [v, setV] = useState({ from: '', to: '', port: '' });
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState(new FormErrors(null));
  const [verdict, setVerdict] = useState<RuleVerdict>();
  const set = (k: keyof typeof v) => (e: { currentTarget: { value: string } }) => setV({ ...v, [k]: e.currentTarget.value });
  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setErrors(new FormErrors(null));
    setVerdict(undefined);
    props.onVerdict(undefined);
    try {
      const out = await api.checkRule({ network_id: props.network.id, from: v.from.trim(), to: v.to.trim(), port: v.port.trim() || undefined });
      setVerdict(out);
      props.onVerdict(out);
    } catch (err) {
      setErrors(new FormErrors(err));
    } finally {
      setBusy(false);
    }
  }
  const general = errors.general(CHECK_FIELDS);
  return (
    <form class="check-flow" onSubmit={submit} noValidate data-testid="check-flow">
      <h3>Check a flow</h3>
      <div class="check-fields">
        <Field label="From" name="from" error={errors.field('from')}>
          <input name="check-from" value={v.from} onInput={set('from')} placeholder="web-1" class="mono-input" autocomplete="off" />
        </Field>
        <Field label="To" name="to" error={errors.field('to')}>
          <input name="check-to" value={v.to} onInput={set('to')} placeholder="db-1" class="mono-input" autocomplete="off" />
        </Field>
        <Field label="Port" name="port" error={errors.field('port')} hint="5432/tcp, 53/udp, icmp; empty: any protocol.">
          <input name="check-port" value={v.port} onInput={set('port')} placeholder="5432/tcp" class="mono-input" autocomplete="off" />
        </Field>
        <Button type="submit" busy={busy}>
          Check
        </Button>
      </div>
      {general && <Alert tone="error">{general}</Alert>}
      {verdict && (
        <div class={`verdict verdict-${verdict.action}`} data-testid="verdict" role="status">
          <Badge tone={verdict.action === 'accept' ? 'green' : 'red'}>{verdict.action}</Badge>{' '}
          <span>{verdict.rule_id ? `by rule ${verdict.position ?? 0}` : 'by the default action'}</span>
          <span class="muted"> · {verdict.reason}</span>
        </div>
      )}
    </form>
  );
}

/** ReachCell is one check of the reach view. */
interface ReachCell {
  verdict?: RuleVerdict;
  error?: string;
}

/**
 * ReachCard shows who one chosen interface can reach (or who can reach it)
 * on the flows the rules name: the server checks each flow for one page of
 * the other interfaces at a time, so a network of thousands costs a page of
 * checks, on demand.
 */
function ReachCard(props: { network: Network; nodes?: TopologyNode[]; rules?: Rule[]; onVerdict: (v?: RuleVerdict) => void }) {
  const { api } = useContext(AppContext);
  const n = props.network;
  const [find, setFind] = useState('');
  const [source, setSource] = useState<TopologyNode>();
  const [notFound, setNotFound] = useState(false);
  const [direction, setDirection] = useState<'from' | 'to'>('from');
  const [flows, setFlows] = useState<string>();
  const [filter, setFilter] = useState('');
  const [offset, setOffset] = useState(0);
  const [cells, setCells] = useState<Record<string, ReachCell>>({});
  const nodes = props.nodes ?? [];
  const suggested = probes(props.rules ?? []);
  // Any change of the policy checks the page again.
  const policyKey = (props.rules ?? []).map((r) => `${r.id}:${r.modify_index}`).join(',') + n.default_action;
  const flowList = flows === undefined ? suggested : parseProbes(flows);
  const q = filter.trim().toLowerCase();
  const others = source ? nodes.filter((x) => x.interface_id !== source.interface_id && (!q || x.name.toLowerCase().startsWith(q))) : [];
  const page = others.slice(offset, offset + REACH_PAGE);
  const pageKey = page.map((x) => x.interface_id).join(',');
  const flowKey = flowList.join(',');

  // Check the page in view: REACH_PAGE × flows requests, a few at a time.
  useEffect(() => {
    if (!source || !page.length) return;
    const ctrl = new AbortController();
    const jobs = page.flatMap((x) => flowList.map((flow) => ({ x, flow })));
    // Answers are shown in batches, not one render each.
    let batch: Record<string, ReachCell> = {};
    let timer: ReturnType<typeof setTimeout> | undefined;
    const flush = () => {
      timer = undefined;
      const b = batch;
      batch = {};
      if (!ctrl.signal.aborted) setCells((c) => ({ ...c, ...b }));
    };
    const put = (key: string, cell: ReachCell) => {
      batch[key] = cell;
      timer ??= setTimeout(flush, REACH_BATCH_MS);
    };
    setCells({});
    pool(
      jobs,
      REACH_CONCURRENCY,
      async ({ x, flow }) => {
        const [from, to] = direction === 'from' ? [source, x] : [x, source];
        const key = `${x.interface_id}|${flow}`;
        try {
          put(key, { verdict: await api.checkRule({ network_id: n.id, from: `interface:${from.interface_id}`, to: `interface:${to.interface_id}`, port: flow || undefined }, ctrl.signal) });
        } catch (err) {
          put(key, { error: errorMessage(err) });
        }
      },
      ctrl.signal,
    );
    return () => {
      ctrl.abort();
      clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [source?.interface_id, direction, pageKey, flowKey, n.id, policyKey]);

  function choose(e: Event) {
    e.preventDefault();
    const s = find.trim().toLowerCase();
    const hit = nodes.find((x) => x.name.toLowerCase() === s) ?? nodes.find((x) => x.name.toLowerCase().startsWith(s));
    setNotFound(!hit);
    setSource(hit);
    setOffset(0);
  }

  const accepted = page.filter((x) => flowList.some((f) => cells[`${x.interface_id}|${f}`]?.verdict?.action === 'accept')).length;
  return (
    <Card title="Who can reach whom" subtitle="Pick a host or device: the server checks each flow the rules name against a page of the others." testid="reach">
      <form class="reach-controls" onSubmit={choose}>
        <input name="reach-source" placeholder="Host or device…" value={find} onInput={(e) => setFind(e.currentTarget.value)} aria-label="Host or device" />
        <select value={direction} onChange={(e) => setDirection(e.currentTarget.value as 'from' | 'to')} aria-label="Direction" class="select-inline">
          <option value="from">reaches (outgoing)</option>
          <option value="to">is reached by (incoming)</option>
        </select>
        <input
          name="reach-flows"
          class="mono-input"
          aria-label="Flows"
          title="Flows to check, comma separated: 22/tcp, 53/udp, icmp, any"
          value={flows ?? suggested.map(probeLabel).join(', ')}
          onInput={(e) => setFlows(e.currentTarget.value)}
        />
        <Button type="submit" size="sm">
          Show
        </Button>
        {notFound && <span class="muted">No such host or device in this network.</span>}
      </form>
      {!props.nodes ? (
        <Loading rows={2} />
      ) : !source ? (
        <p class="muted">{nodes.length.toLocaleString('en')} interfaces: choose one to see what it reaches. Nothing is checked until you do.</p>
      ) : (
        <>
          <div class="reach-summary">
            <strong>{source.name}</strong> {direction === 'from' ? 'reaches' : 'is reached by'} {accepted} of the {page.length} shown on at least one flow.{' '}
            <input name="reach-filter" placeholder="Filter by name prefix" value={filter} onInput={(e) => {
                setFilter(e.currentTarget.value);
                setOffset(0);
              }} aria-label="Filter destinations" />
          </div>
          <table class="table" data-testid="reach-table">
            <thead>
              <tr>
                <th>{direction === 'from' ? 'To' : 'From'}</th>
                {flowList.map((f) => (
                  <th key={f}>{probeLabel(f)}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {page.map((x) => (
                <tr key={x.interface_id}>
                  <td>
                    <span class="strong">{x.name}</span> <Mono>{x.addresses[0] ?? ''}</Mono>
                  </td>
                  {flowList.map((f) => {
                    const c = cells[`${x.interface_id}|${f}`];
                    return (
                      <td key={f} data-reach={`${x.name}|${probeLabel(f)}`} title={c?.verdict?.reason ?? c?.error} class={c?.verdict ? 'clickable' : ''} onClick={() => c?.verdict && props.onVerdict(c.verdict)}>
                        {!c ? <span class="skeleton-line tiny" /> : c.error ? <Badge tone="grey">error</Badge> : (
                          <Badge tone={c.verdict!.action === 'accept' ? 'green' : 'red'}>
                            {c.verdict!.action}
                            {c.verdict!.rule_id ? ` · rule ${c.verdict!.position ?? 0}` : ' · default'}
                          </Badge>
                        )}
                      </td>
                    );
                  })}
                </tr>
              ))}
            </tbody>
          </table>
          <Pager offset={offset} limit={REACH_PAGE} total={others.length} onOffset={setOffset} noun="interface" />
        </>
      )}
    </Card>
  );
}
