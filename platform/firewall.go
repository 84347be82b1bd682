package platform

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/drago-wg/drago/server/api"
)

// Firewall enforces access policies on traffic arriving through drago's
// interfaces, each interface's rules apart from the others' and from every
// rule drago did not install. In the style of the WireGuard backends, Apply
// is declarative and idempotent: it compares the policy with what the host
// holds, and changes only what differs, in one atomic step.
//
// A Firewall is not safe for concurrent use; the agent calls it from one
// goroutine.
type Firewall interface {
	// Apply makes the rules filtering traffic that arrives through
	// interface iface match p, repairing whatever was changed by hand, and
	// returns the changes it made: none when the host already matches.
	// Live connections the policy still accepts are not interrupted.
	Apply(iface string, p *FirewallPolicy) (FirewallOps, error)
	// Remove deletes everything drago installed for iface; no-op if none.
	Remove(iface string) (FirewallOps, error)
	// RemoveAll deletes every rule drago installed, for every interface.
	RemoveAll() error
	// Close releases the firewall; the rules stay in force.
	Close() error
}

// ErrFirewallUnsupported is matched (errors.Is) by the error of NewFirewall
// on a host where drago cannot enforce policies; its text says why.
var ErrFirewallUnsupported = errors.New("firewall not supported")

// FirewallOps counts the changes one Apply or Remove made, by kind of
// object; all zero when the host already matched.
type FirewallOps struct {
	Tables   int // tables added or deleted
	Chains   int // chains added, deleted or flushed
	Rules    int // rules added or deleted
	Sets     int // sets added, deleted or flushed
	Elements int // set elements (address ranges) added or deleted
}

// Total reports the number of changes.
func (o FirewallOps) Total() int { return o.Tables + o.Chains + o.Rules + o.Sets + o.Elements }

// Add returns the sum of o and p.
func (o FirewallOps) Add(p FirewallOps) FirewallOps {
	return FirewallOps{o.Tables + p.Tables, o.Chains + p.Chains, o.Rules + p.Rules, o.Sets + p.Sets, o.Elements + p.Elements}
}

// FirewallPolicy is one interface's policy, checked by ParseFirewall: the
// rules, evaluated in order after established and related traffic is
// accepted, then the default action.
type FirewallPolicy struct {
	DefaultAccept bool
	// Sets maps each set name to its prefixes, masked, sorted and unique.
	Sets       map[string][]netip.Prefix
	Rules      []FirewallRule
	Masquerade []netip.Prefix // masked, sorted, unique
}

// FirewallRule is one checked rule. From and To name sets of the policy;
// empty means any address.
type FirewallRule struct {
	Accept   bool
	From, To string
	Protocol string          // api.ProtocolAny, TCP, UDP or ICMP
	Ports    []api.PortRange // TCP and UDP only; none means every port
}

// Bounds of a policy an agent accepts. The server's limits are lower; these
// only keep a bad state from exhausting the host.
const (
	maxFirewallRules    = 10000
	maxFirewallSets     = 10000
	maxFirewallPrefixes = 1 << 20
)

// ParseFirewall checks a compiled policy from the server. Errors name the
// field at fault; a nil d gives nil (no policy).
func ParseFirewall(d *api.DesiredFirewall) (*FirewallPolicy, error) {
	if d == nil {
		return nil, nil
	}
	accept, err := parseAction(d.DefaultAction)
	if err != nil {
		return nil, fmt.Errorf("firewall default_action %w", err)
	}
	p := &FirewallPolicy{DefaultAccept: accept, Sets: make(map[string][]netip.Prefix, len(d.Sets))}
	if len(d.Sets) > maxFirewallSets {
		return nil, fmt.Errorf("firewall sets: %d sets, at most %d", len(d.Sets), maxFirewallSets)
	}
	if len(d.Rules) > maxFirewallRules {
		return nil, fmt.Errorf("firewall rules: %d rules, at most %d", len(d.Rules), maxFirewallRules)
	}
	total := 0
	for i, s := range d.Sets {
		if s.Name == "" {
			return nil, fmt.Errorf("firewall sets[%d].name: empty", i)
		}
		if _, dup := p.Sets[s.Name]; dup {
			return nil, fmt.Errorf("firewall sets[%d].name %q: listed twice", i, s.Name)
		}
		total += len(s.Addresses)
		if total > maxFirewallPrefixes {
			return nil, fmt.Errorf("firewall sets: more than %d addresses", maxFirewallPrefixes)
		}
		ps, err := parsePrefixes(s.Addresses)
		if err != nil {
			return nil, fmt.Errorf("firewall sets[%d] (%s).addresses: %w", i, s.Name, err)
		}
		p.Sets[s.Name] = ps
	}
	for i, r := range d.Rules {
		fr, err := parseFirewallRule(r, p.Sets)
		if err != nil {
			return nil, fmt.Errorf("firewall rules[%d].%w", i, err)
		}
		p.Rules = append(p.Rules, fr)
	}
	p.Masquerade, err = parsePrefixes(d.Masquerade)
	if err != nil {
		return nil, fmt.Errorf("firewall masquerade: %w", err)
	}
	return p, nil
}

func parseFirewallRule(r api.FirewallRule, sets map[string][]netip.Prefix) (FirewallRule, error) {
	accept, err := parseAction(r.Action)
	if err != nil {
		return FirewallRule{}, fmt.Errorf("action %w", err)
	}
	fr := FirewallRule{Accept: accept, From: r.From, To: r.To, Protocol: r.Protocol}
	for _, ref := range []struct{ field, name string }{{"from", r.From}, {"to", r.To}} {
		if _, ok := sets[ref.name]; ref.name != "" && !ok {
			return fr, fmt.Errorf("%s %q: no such set", ref.field, ref.name)
		}
	}
	switch r.Protocol {
	case api.ProtocolTCP, api.ProtocolUDP:
	case api.ProtocolAny, api.ProtocolICMP:
		if len(r.Ports) > 0 {
			return fr, fmt.Errorf("ports: only tcp and udp rules have ports, not %s", r.Protocol)
		}
	default:
		return fr, fmt.Errorf("protocol %q: want tcp, udp, icmp or any", r.Protocol)
	}
	for k, pr := range r.Ports {
		if pr.First == 0 || pr.First > pr.Last {
			return fr, fmt.Errorf("ports[%d] %d-%d: want 1 <= first <= last", k, pr.First, pr.Last)
		}
	}
	fr.Ports = slices.Clone(r.Ports)
	return fr, nil
}

// parseAction reports whether action is accept (else drop).
func parseAction(action string) (bool, error) {
	switch action {
	case api.ActionAccept:
		return true, nil
	case api.ActionDrop:
		return false, nil
	}
	return false, fmt.Errorf("%q: want %q or %q", action, api.ActionAccept, api.ActionDrop)
}

// parsePrefixes parses CIDRs (or bare addresses, as single-address
// prefixes) into masked, sorted, unique prefixes.
func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q: not a CIDR or address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() {
			return nil, fmt.Errorf("%q: an IPv4-mapped IPv6 prefix; write it as IPv4", s)
		}
		out = append(out, p.Masked())
	}
	slices.SortFunc(out, ComparePrefixes)
	return slices.Compact(out), nil
}
