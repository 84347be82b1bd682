import { describe, expect, it } from 'vitest';
import type { Interface, Rule } from '../api/types';
import { enforcement, flowText, MAX_PROBES, parseProbes, pool, probes, ruleBody, ruleFields, worstEnforcement } from './policy';

const iface = (x: Partial<Interface>): Interface => ({
  id: 'i1',
  created_at: '',
  updated_at: '',
  modify_index: 1,
  host_id: 'h1',
  network_id: 'n1',
  name: 'dg-prod',
  addresses: [],
  listen_port: 0,
  mtu: 0,
  ...x,
});

const rule = (x: Partial<Rule>): Rule => ({
  id: 'r',
  created_at: '',
  updated_at: '',
  modify_index: 1,
  network_id: 'n1',
  position: 0,
  action: 'accept',
  from: ['*'],
  to: ['*'],
  protocol: 'tcp',
  ...x,
});

describe('enforcement', () => {
  it('flags an interface that must enforce a revision its agent does not report enforcing', () => {
    const cases: [Partial<Interface>, boolean, string, RegExp][] = [
      [{ firewall_revision: 7, firewall: { enforced: true, revision: 7 } }, true, 'enforced', /revision 7/],
      [{ firewall_revision: 7 }, false, 'not enforced', /not reported enforcing revision 7/],
      [{ firewall_revision: 7, firewall: { enforced: false, reason: 'not supported on windows' } }, false, 'not enforced', /^not supported on windows$/],
      [{ firewall_revision: 8, firewall: { enforced: true, revision: 7 } }, false, 'behind', /revision 7; the policy is at 8/],
      [{}, true, 'nothing to enforce', /network accepts/],
      [{ firewall: { enforced: false, reason: 'nf_tables not available' } }, true, 'nothing to enforce', /nf_tables not available/],
      [{ device_name: 'phone', firewall_revision: 7 }, true, 'no agent', /runs no agent/],
    ];
    for (const [x, ok, label, detail] of cases) {
      const e = enforcement(iface(x));
      expect([e.ok, e.label], JSON.stringify(x)).toEqual([ok, label]);
      expect(e.detail).toMatch(detail);
    }
  });

  it('answers the first interface of a host that is flagged', () => {
    expect(worstEnforcement([iface({}), iface({ firewall_revision: 3, firewall: { enforced: true, revision: 3 } })])).toBeUndefined();
    expect(worstEnforcement([iface({}), iface({ firewall_revision: 3 })])?.label).toBe('not enforced');
  });
});

describe('rule fields', () => {
  it('round-trips a rule through the form, sending emptied lists so that a PATCH clears them', () => {
    const r = rule({ from: ['role=web', 'host:a'], to: ['role=db'], ports: ['22', '8000-8100'], description: 'x' });
    expect(ruleBody(ruleFields(r))).toEqual({ action: 'accept', from: ['role=web', 'host:a'], to: ['role=db'], protocol: 'tcp', ports: ['22', '8000-8100'], description: 'x' });
    expect(ruleBody({ ...ruleFields(r), ports: ' ', description: ' ' })).toMatchObject({ ports: [], description: '' });
    expect(ruleFields()).toMatchObject({ action: 'accept', protocol: 'tcp', from: '', ports: '' });
  });

  it('writes what a rule matches', () => {
    expect(flowText(rule({ ports: ['22', '80'] }))).toBe('tcp 22, 80');
    expect(flowText(rule({ protocol: 'udp' }))).toBe('udp, every port');
    expect(flowText(rule({ protocol: 'icmp' }))).toBe('icmp');
    expect(flowText(rule({ protocol: 'any' }))).toBe('any protocol');
  });
});

describe('probes', () => {
  it('checks each protocol and port the rules name once, in rule order, capped', () => {
    expect(probes([])).toEqual(['']);
    expect(
      probes([
        rule({ ports: ['5432'] }),
        rule({ protocol: 'udp', ports: ['53', '8000-8100'] }),
        rule({ ports: ['5432'] }),
        rule({ protocol: 'icmp' }),
        rule({ protocol: 'any' }),
      ]),
    ).toEqual(['5432/tcp', '53/udp', '8000/udp', 'icmp', '']);
    // A rule of every port probes one, unless a port of its protocol is probed.
    expect(probes([rule({ protocol: 'udp' }), rule({ ports: ['22'] })])).toEqual(['22/tcp', '1/udp']);
    expect(probes([rule({}), rule({ ports: ['22'] })])).toEqual(['22/tcp']);
    const many = Array.from({ length: 20 }, (_, k) => rule({ ports: [String(1000 + k)] }));
    expect(probes(many)).toHaveLength(MAX_PROBES);
  });

  it('reads the flows a user types, "any" as the flow of no protocol', () => {
    expect(parseProbes('22/TCP, icmp any,22/tcp')).toEqual(['22/tcp', 'icmp', '']);
    expect(parseProbes('1/tcp 2/tcp 3/tcp 4/tcp 5/tcp 6/tcp 7/tcp')).toHaveLength(MAX_PROBES);
  });
});

describe('pool', () => {
  it('runs at most n at a time and stops when aborted', async () => {
    let running = 0;
    let peak = 0;
    const done: number[] = [];
    await pool([1, 2, 3, 4, 5, 6, 7], 3, async (x) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 1));
      running--;
      done.push(x);
    });
    expect(peak).toBe(3);
    expect(done.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    const ctrl = new AbortController();
    const seen: number[] = [];
    await pool([1, 2, 3, 4, 5], 1, async (x) => {
      seen.push(x);
      if (x === 2) ctrl.abort();
    }, ctrl.signal);
    expect(seen).toEqual([1, 2]);
  });
});
