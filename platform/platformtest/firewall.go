package platformtest

import (
	"reflect"
	"sync"

	"github.com/drago-wg/drago/platform"
)

// Firewall is an in-memory platform.Firewall for tests of the agent's
// logic and for the load tool: it keeps the policy applied to each
// interface, counts the Apply and Remove calls that changed something, and
// can be made to fail. The real one is tested in the platform package,
// with traffic.
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
	f.policies[iface] = p
	f.changes++
	return platform.FirewallOps{Rules: 1}, nil // not the kernel's count
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
