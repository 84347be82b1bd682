// Access policies (docs/policies.md) as the dashboard shows them: what an
// interface's agent enforces, rules as text, and the flows the "who can
// reach whom" view probes.

import type { Interface, Rule, RuleProtocol } from '../api/types';
import { splitList } from './format';

/** Enforcement is what an interface's agent does with the policy it must enforce. */
export interface Enforcement {
  /** ok: enforced or nothing to enforce; behind: flag it. */
  ok: boolean;
  label: string;
  detail: string;
}

/**
 * enforcement says whether i's agent enforces the revision of its policy
 * (server/api FirewallBehind), and in words why not, as `drago interface
 * show` does.
 */
export function enforcement(i: Interface): Enforcement {
  const fs = i.firewall;
  const want = i.firewall_revision ?? 0;
  if (i.device_name) return { ok: true, label: 'no agent', detail: 'A device runs no agent: nothing is enforced there.' };
  if (want === 0) {
    return fs && !fs.enforced && fs.reason
      ? { ok: true, label: 'nothing to enforce', detail: `No rule applies here; the agent could not enforce one anyway: ${fs.reason}` }
      : { ok: true, label: 'nothing to enforce', detail: 'No rule applies to this interface and the network accepts.' };
  }
  if (!fs) return { ok: false, label: 'not enforced', detail: `The agent has not reported enforcing revision ${want}.` };
  if (!fs.enforced) return { ok: false, label: 'not enforced', detail: fs.reason || 'The agent reports it does not enforce the policy.' };
  if (fs.revision !== want) return { ok: false, label: 'behind', detail: `Enforces revision ${fs.revision ?? 0}; the policy is at ${want}.` };
  return { ok: true, label: 'enforced', detail: `Enforces revision ${want}.` };
}

/** worstEnforcement answers the first flagged interface's enforcement, else undefined. */
export function worstEnforcement(ifaces: Interface[]): Enforcement | undefined {
  for (const i of ifaces) {
    const e = enforcement(i);
    if (!e.ok) return e;
  }
  return undefined;
}

/** RuleFields are a rule's form values, lists as comma separated text. */
export interface RuleFields {
  action: 'accept' | 'drop';
  from: string;
  to: string;
  protocol: RuleProtocol;
  ports: string;
  description: string;
}

export function ruleFields(r?: Rule): RuleFields {
  return {
    action: r?.action ?? 'accept',
    from: (r?.from ?? []).join(', '),
    to: (r?.to ?? []).join(', '),
    protocol: r?.protocol ?? 'tcp',
    ports: (r?.ports ?? []).join(', '),
    description: r?.description ?? '',
  };
}

/**
 * ruleBody is what the form sends: every field, lists split, so that a PATCH
 * clears what was emptied (it merges what it is sent).
 */
export function ruleBody(v: RuleFields): Pick<Rule, 'action' | 'from' | 'to' | 'protocol' | 'ports' | 'description'> {
  return {
    action: v.action,
    from: splitList(v.from),
    to: splitList(v.to),
    protocol: v.protocol,
    ports: splitList(v.ports),
    description: v.description.trim(),
  };
}

/** flowText writes what a rule matches: "tcp 22, 80", "icmp", "any protocol". */
export function flowText(r: Pick<Rule, 'protocol' | 'ports'>): string {
  if (r.protocol === 'any') return 'any protocol';
  if ((r.protocol === 'tcp' || r.protocol === 'udp') && !r.ports?.length) return `${r.protocol}, every port`;
  return r.ports?.length ? `${r.protocol} ${r.ports.join(', ')}` : r.protocol;
}

/** MAX_PROBES bounds the flows the reach view checks per destination. */
export const MAX_PROBES = 6;

/**
 * probes answers the flows to check between two interfaces (RuleCheck.port),
 * one per protocol and port the rules name (a range's first port), in rule
 * order, at most MAX_PROBES; an "any" rule adds the flow of no particular
 * protocol (""). With no rules it is that flow alone.
 */
export function probes(rules: Rule[]): string[] {
  const out: string[] = [];
  const add = (p: string) => !out.includes(p) && out.length < MAX_PROBES && out.push(p);
  const everyPort = new Set<string>();
  for (const r of rules) {
    if (r.protocol === 'icmp') add('icmp');
    else if (r.protocol === 'any') add('');
    else if (!r.ports?.length) everyPort.add(r.protocol);
    else for (const p of r.ports) add(`${p.split('-')[0]}/${r.protocol}`);
  }
  // A rule of every tcp (udp) port matches any port: probe one unless a port of its protocol is probed already.
  for (const proto of everyPort) if (!out.some((p) => p.endsWith('/' + proto))) add(`1/${proto}`);
  if (!out.length) add('');
  return out;
}

/** parseProbes reads the flows a user typed ("22/tcp, icmp"); "any" is the flow of no protocol. */
export function parseProbes(s: string): string[] {
  const out = splitList(s).map((p) => (p.toLowerCase() === 'any' ? '' : p.toLowerCase()));
  return [...new Set(out)].slice(0, MAX_PROBES);
}

/** probeLabel names a probe in a column header. */
export function probeLabel(p: string): string {
  return p || 'any';
}

/** pool runs fn over items, n at a time, and stops early when signal aborts. */
export async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>, signal?: AbortSignal): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length && !signal?.aborted) await fn(items[next++]);
    }),
  );
}
