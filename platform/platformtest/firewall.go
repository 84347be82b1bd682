package platformtest

import (
	"net/netip"
	"reflect"
	"sync"

	"github.com/drago-wg/drago/platform"
)

// Firewall is an in-memory platform.Firewall for tests of the agent's
// logic and for the load tool: it keeps the policy applied to each
// interface, counts the Apply and Remove calls that changed something and,
// roughly as the real one would, the operations each made, and can be made
// to fail. The real one is tested in the platform package, with traffic.
type Firewall struct {
	mu       sync.Mutex
	policies map[string]*platform.FirewallPolicy
	changes  int
	fail     error
	closed   bool
}

var _ platform.Firewall = (*Firewall)(nil)

// NewFirewall returns a Firewall with no policy.
func NewFirewall() *Firewall {
	return &Firewall{policies: map[string]*platform.FirewallPolicy{}}
}

// Apply stores p for iface; a policy equal to the one held changes nothing.
func (f *Firewall) Apply(iface string, p *platform.FirewallPolicy) (platform.FirewallOps, error) {
	if p == nil {
		return f.Remove(iface)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return platform.FirewallOps{}, f.fail
	}
	if reflect.DeepEqual(f.policies[iface], p) {
		return platform.FirewallOps{}, nil
	}
	ops := diffPolicies(f.policies[iface], p)
	f.policies[iface] = p
	f.changes++
	return ops, nil
}

// diffPolicies counts the changes from was (nil: nothing installed) to p
// in the units of the real firewall, roughly: rules that differ, sets
// added or deleted, prefixes added or deleted. A changed set's elements
// count apart from its rules, as on the kernel: one host joining changes
// elements only.
func diffPolicies(was, p *platform.FirewallPolicy) platform.FirewallOps {
	var ops platform.FirewallOps
	if was == nil {
		was = &platform.FirewallPolicy{}
		ops.Tables, ops.Chains = 1, 3
		ops.Rules = 2 // established, default
	} else if was.DefaultAccept != p.DefaultAccept {
		ops.Rules += 2 // the default rule out, the new one in
	}
	for name, ps := range p.Sets {
		old, ok := was.Sets[name]
		if !ok {
			ops.Sets++
		}
		ops.Elements += prefixDiff(old, ps)
	}
	for name, ps := range was.Sets {
		if _, ok := p.Sets[name]; !ok {
			ops.Sets++
			ops.Elements += len(ps)
		}
	}
	ops.Elements += prefixDiff(was.Masquerade, p.Masquerade)
	n := min(len(was.Rules), len(p.Rules))
	for i := range n {
		if !reflect.DeepEqual(was.Rules[i], p.Rules[i]) {
			ops.Rules += 2
		}
	}
	ops.Rules += len(was.Rules) + len(p.Rules) - 2*n
	return ops
}

// prefixDiff counts the prefixes in one of a and b but not the other.
func prefixDiff(a, b []netip.Prefix) int {
	in := map[netip.Prefix]int{}
	for _, p := range a {
		in[p]++
	}
	for _, p := range b {
		in[p]--
	}
	n := 0
	for _, c := range in {
		n += max(c, -c)
	}
	return n
}

// Remove forgets iface's policy.
func (f *Firewall) Remove(iface string) (platform.FirewallOps, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return platform.FirewallOps{}, f.fail
	}
	if _, ok := f.policies[iface]; !ok {
		return platform.FirewallOps{}, nil
	}
	delete(f.policies, iface)
	f.changes++
	return platform.FirewallOps{Chains: 1}, nil
}

// RemoveAll forgets every policy.
func (f *Firewall) RemoveAll() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.policies)
	return nil
}

// Close marks the firewall closed; the policies stay.
func (f *Firewall) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// Policy returns the policy applied to iface, or nil.
func (f *Firewall) Policy(iface string) *platform.FirewallPolicy {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.policies[iface]
}

// Changes reports the Apply and Remove calls that changed something.
func (f *Firewall) Changes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changes
}

// Drop forgets iface's policy without counting it, as an admin flushing
// the rules by hand would.
func (f *Firewall) Drop(iface string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.policies, iface)
}

// Fail makes every later call fail with err (nil: succeed again).
func (f *Firewall) Fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}
