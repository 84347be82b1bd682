//go:build linux

package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/drago-wg/drago/platform"
	"github.com/drago-wg/drago/server/api"
)

// Scopes of scenario 6's rule.
const (
	policyScopeDB  = "db"  // a rule to role=db: every tenth host
	policyScopeAll = "all" // a rule to *: every host
)

// hasPort reports whether one of p's rules takes port.
func hasPort(p *platform.FirewallPolicy, port uint16) bool {
	if p == nil {
		return false
	}
	for _, r := range p.Rules {
		for _, pr := range r.Ports {
			if pr.First <= port && port <= pr.Last {
				return true
			}
		}
	}
	return false
}

// diffs collects the policy changes agents applied during one change.
type diffs struct {
	mu  sync.Mutex
	ops []platform.FirewallOps
}

func (d *diffs) add(o platform.FirewallOps) {
	d.mu.Lock()
	d.ops = append(d.ops, o)
	d.mu.Unlock()
}

// span returns the least and most of f over the collected changes.
func (d *diffs) span(f func(platform.FirewallOps) int) (lo, hi int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, o := range d.ops {
		v := f(o)
		if k == 0 || v < lo {
			lo = v
		}
		hi = max(hi, v)
	}
	return lo, hi
}

// runPolicy is scenario 6: one mesh whose hosts are labelled role=web, or
// role=db for every tenth, with one rule from role=web to role=db (to *
// with -policy-scope all). Each change moves the rule to another port:
// the hosts the rule's destination holds must apply the new firewall, and
// no other host wakes. Then one more host joins with role=web: the other
// hosts' firewalls must change in set elements only.
func (r *runner) runPolicy(ctx context.Context) error {
	c := r.c
	r.res.Layout = fmt.Sprintf("%d hosts in one mesh (%d peers each), every tenth labelled role=db, the others role=web", c.Hosts, c.Hosts-1)
	to := "role=db"
	if c.PolicyScope == policyScopeAll {
		to = "*"
	}
	r.res.Change = fmt.Sprintf("PATCH /rules/{id} ports of the rule role=web -> %s tcp: the hosts it protects get a new firewall revision", to)
	r.res.ConvergeWhat = "PATCH sent -> the agent applied the firewall with the new port, per host the rule's destination holds"
	if err := r.setupMeshes(ctx, 1, c.Hosts); err != nil {
		return err
	}
	n, err := r.api.Network(ctx, "m0000")
	if err != nil {
		return err
	}
	all := r.fleet.agents
	targets := map[int]bool{}
	for _, a := range all {
		role := "web"
		if a.idx%10 == 0 {
			role = "db"
		}
		if role == "db" || c.PolicyScope == policyScopeAll {
			targets[a.idx] = true
		}
		if _, err := r.api.UpdateHost(ctx, a.name, map[string]any{"labels": map[string]string{"role": role}}); err != nil {
			return fmt.Errorf("labelling %s: %w", a.name, err)
		}
	}
	rule, err := r.api.CreateRule(ctx, &api.RuleRequest{Rule: api.Rule{NetworkID: n.ID, Action: api.ActionAccept,
		From: []string{"role=web"}, To: []string{to}, Protocol: api.ProtocolTCP, Ports: []string{"1000"}}})
	if err != nil {
		return err
	}
	ifname := "dg-" + n.Name
	err = r.waitFor(ctx, "the policy on its hosts", c.SetupTimeout, all, func() (bool, string) {
		k := 0
		for idx := range targets {
			if hasPort(all[idx].fw.Policy(ifname), 1000) {
				k++
			}
		}
		return k == len(targets), fmt.Sprintf("%d/%d", k, len(targets))
	})
	if err != nil {
		return err
	}
	if err := r.waitQuiet(ctx, time.Second); err != nil {
		return err
	}
	idle, err := r.idleRate(ctx, baselineWindow)
	if err != nil {
		return err
	}

	stats := newChangeStats()
	var changed diffs
	m := r.beginMeasured()
	for i := range c.Changes {
		port := uint16(1001 + i)
		ch := change{
			do: func(ctx context.Context) error {
				_, err := r.api.UpdateRule(ctx, rule.ID, map[string]any{"ports": []string{fmt.Sprint(port)}})
				return err
			},
			goals: []*goal{
				{name: "applied", required: true, agents: targets, match: func(_ *simAgent, ev event) bool {
					if ev.op == opFirewall && hasPort(ev.policy, port) {
						changed.add(ev.diff)
						return true
					}
					return false
				}},
				deliveredGoal(targets),
			},
			scope: targets,
		}
		o, err := r.measureChange(ctx, ch)
		if err != nil {
			return err
		}
		stats.add(r, o, ch, "applied")
		r.log.Info("change measured", "i", i, "port", port, "timeout", o.timeout)
		if o.timeout {
			break
		}
		if err := r.waitQuiet(ctx, time.Second); err != nil {
			return err
		}
	}
	r.endMeasured(m)
	stats.fill(r.res, "applied", idle)
	r.res.Extra = append(r.res.Extra, NamedDist{"delivered", summarize(stats.lat["delivered"])})
	total := func(o platform.FirewallOps) int { return o.Total() }
	lo, hi := changed.span(total)
	r.res.note("firewall changes per host and rule change: %d-%d (rules, sets and elements a diffing firewall rewrites: the changed rule out and in)", lo, hi)

	joined, err := r.joinWeb(ctx, n, targets)
	if err != nil {
		return err
	}
	d := r.res.Convergence
	r.res.target("policy change p99 < 1s", d.N > 0 && r.res.NotConverged == 0 && d.P99 < time.Second, "p99 %s", ms(d.P99))
	r.res.target("a policy change wakes only the hosts whose firewall changed", r.res.WokenOutside == 0 && r.res.WokenMax == len(targets),
		"%d-%d woken of %d protected hosts, %d outside", r.res.WokenMin, r.res.WokenMax, len(targets), r.res.WokenOutside)
	rules, sets := joined.maxOf(func(o platform.FirewallOps) int { return o.Rules + o.Chains }), joined.maxOf(func(o platform.FirewallOps) int { return o.Sets })
	elo, ehi := joined.span(func(o platform.FirewallOps) int { return o.Elements })
	r.res.target("a host joining changes only set elements on the others", len(joined.ops) == len(targets) && rules == 0 && sets == 0 && elo >= 1,
		"%d hosts changed: %d-%d elements, at most %d rules and %d sets", len(joined.ops), elo, ehi, rules, sets)
	return r.convergedOrErr()
}

// maxOf returns the most of f over the collected changes.
func (d *diffs) maxOf(f func(platform.FirewallOps) int) int {
	_, hi := d.span(f)
	return hi
}

// joinWeb starts one more agent, whose join token puts it in network n
// with role=web, and measures how the hosts in targets change their
// firewalls: their role=web sets gain its addresses.
func (r *runner) joinWeb(ctx context.Context, n *api.Network, targets map[int]bool) (*diffs, error) {
	jt, err := r.api.CreateJoinToken(ctx, &api.JoinToken{Name: "lg-join", Networks: []string{n.ID}, Labels: map[string]string{"role": "web"}, MaxUses: 1})
	if err != nil {
		return nil, err
	}
	olds := slices.Clone(r.fleet.agents)
	for _, a := range olds {
		a.expect++
	}
	newcomer := r.fleet.add(0, int64(len(olds)))
	var joined diffs
	ch := change{
		do: func(context.Context) error { r.fleet.start(newcomer, jt.Secret); return nil },
		goals: []*goal{
			{name: "sets", required: true, agents: targets, match: func(_ *simAgent, ev event) bool {
				if ev.op == opFirewall {
					joined.add(ev.diff)
					return true
				}
				return false
			}},
		},
		scope: indexSet(r.fleet.agents, nil),
	}
	o, err := r.measureChange(ctx, ch)
	if err != nil {
		return nil, err
	}
	lat, missing := o.w.latencies("sets")
	r.res.Extra = append(r.res.Extra, NamedDist{"join->sets", summarize(lat)})
	r.res.note("join->sets: a role=web agent started -> each protected host applied its firewall with the newcomer in its role=web set (registration, key report and the mesh's wake-up included); %d did not", missing)
	if o.timeout || missing > 0 {
		r.res.NotConverged += missing
	}
	return &joined, nil
}
