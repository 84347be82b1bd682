package state

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/fnv"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
)

// Compilation of a network's access policy into the firewall each of its
// agent interfaces enforces (api.DesiredFirewall). Compiled firewalls are
// kept per interface and recompiled, network by network, by the writes
// that change a policy's inputs: the network's rules and default action,
// its interfaces' addresses, routed subnets and masquerade, and the names
// and labels of its hosts. A write wakes the hosts whose firewall changed
// (its revision), and only them.
//
// Each rule's From becomes a set named after its selectors, holding every
// address they resolve to; its To becomes a set of the same kind holding
// only what arrives at this interface (its addresses and routed subnets),
// and a rule whose To holds nothing here is left out. "*" is no set (any
// address). So a host that joins changes the elements of other hosts'
// sets, never their rules.

// firewall is an interface's compiled policy: what its agent gets, and the
// rule each compiled rule comes from (for rule checks).
type firewall struct {
	desired *api.DesiredFirewall
	ruleIDs []string
}

// netPolicy is what the compilation of one network's interfaces shares:
// its rules, parsed, and the From sets resolved.
type netPolicy struct {
	s       *State
	n       *api.Network
	rules   []*api.Rule
	parsed  []*parsedRule           // per rule
	sets    map[string]*compiledSet // From sets by name
	targets map[string]resolved     // selector text -> what it names
}

// parsedRule is a rule's selectors and ports, parsed once when the rule
// enters memory rather than at every compile of its network's policy.
type parsedRule struct {
	from, to []selector // nil for "*"
	ports    []api.PortRange
}

// parseRule parses rule r, validated before it was stored.
func parseRule(r *api.Rule) *parsedRule {
	side := func(list []string) []selector {
		var out []selector
		for _, str := range list {
			sel, msg := parseSelector(str)
			if msg != "" {
				continue
			}
			if sel.kind == selAny {
				return nil
			}
			out = append(out, sel)
		}
		return out
	}
	p := &parsedRule{from: side(r.From), to: side(r.To)}
	p.ports, _ = parsePorts("ports", r.Protocol, r.Ports)
	return p
}

// compiledSet is a From set with the hash of its elements.
type compiledSet struct {
	set api.FirewallSet
	sum uint64
}

// newNetPolicy starts the compilation of network n's policy.
func (s *State) newNetPolicy(n *api.Network) *netPolicy {
	np := &netPolicy{s: s, n: n, rules: s.netRules[n.ID], sets: map[string]*compiledSet{}, targets: map[string]resolved{}}
	for _, r := range np.rules {
		np.parsed = append(np.parsed, s.parsedRules[r.ID])
	}
	return np
}

// target returns what one selector names, resolved once per network.
func (np *netPolicy) target(text string, sel selector) resolved {
	r, ok := np.targets[text]
	if !ok {
		r = np.s.resolve(np.n, sel)
		np.targets[text] = r
	}
	return r
}

// fromSet returns the From set of rule k.
func (np *netPolicy) fromSet(k int) *compiledSet {
	name := setName("f", np.rules[k].From)
	if cs, ok := np.sets[name]; ok {
		return cs
	}
	var ps []netip.Prefix
	for j, sel := range np.parsed[k].from {
		ps = append(ps, np.target(np.rules[k].From[j], sel).prefixes()...)
	}
	cs := &compiledSet{set: api.FirewallSet{Name: name, Addresses: canonical(ps)}}
	h := fnv.New64a()
	writeStrings(h, cs.set.Addresses)
	cs.sum = h.Sum64()
	np.sets[name] = cs
	return cs
}

// setName names the set of a list of selectors: prefix and 12 hex digits
// of a hash of the sorted list, the same on every server and for every
// interface.
func setName(prefix string, selectors []string) string {
	h := fnv.New64a()
	writeStrings(h, slices.Sorted(slices.Values(selectors)))
	return fmt.Sprintf("%s%012x", prefix, h.Sum64()>>16)
}

// compile returns interface i's firewall, or nil when it has nothing to
// enforce: the network accepts by default, no rule's To holds anything on
// i, and i does not masquerade. Devices run no agent: nil.
func (np *netPolicy) compile(i *api.Interface) *firewall {
	def := cmp.Or(np.n.DefaultAction, api.ActionAccept)
	if i.HostID == "" || (def == api.ActionAccept && len(np.rules) == 0 && !i.Masquerade) {
		return nil
	}
	own := np.s.nets(i).own
	fw := &firewall{desired: &api.DesiredFirewall{DefaultAction: def}}
	d := fw.desired
	sets := map[string]api.FirewallSet{}
	sums := map[string]uint64{}
	for k, r := range np.rules {
		pr := np.parsed[k]
		cr := api.FirewallRule{Action: r.Action, Protocol: r.Protocol, Ports: pr.ports}
		if pr.to != nil {
			var ps []netip.Prefix
			for j, sel := range pr.to {
				ps = append(ps, np.target(r.To[j], sel).within(own)...)
			}
			if len(ps) == 0 {
				continue // nothing arriving here is a destination of r
			}
			ts := api.FirewallSet{Name: setName("t", r.To), Addresses: canonical(ps)}
			cr.To, sets[ts.Name] = ts.Name, ts
		}
		if pr.from != nil {
			fs := np.fromSet(k)
			cr.From, sets[fs.set.Name], sums[fs.set.Name] = fs.set.Name, fs.set, fs.sum
		}
		d.Rules = append(d.Rules, cr)
		fw.ruleIDs = append(fw.ruleIDs, r.ID)
	}
	if i.Masquerade {
		d.Masquerade = slices.Sorted(slices.Values(i.RoutedSubnets))
	}
	if def == api.ActionAccept && len(d.Rules) == 0 && len(d.Masquerade) == 0 {
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(sets)) {
		d.Sets = append(d.Sets, sets[name])
	}
	d.Revision = revision(d, sums)
	return fw
}

// revision hashes a compiled firewall (FNV-64a), the same on every server;
// sums holds the precomputed hashes of shared sets' elements. It keeps 53
// bits, which a JavaScript number holds exactly (the dashboard compares
// revisions), and is never 0.
func revision(d *api.DesiredFirewall, sums map[string]uint64) uint64 {
	h := fnv.New64a()
	writeStrings(h, []string{d.DefaultAction})
	for _, s := range d.Sets {
		writeStrings(h, []string{s.Name})
		if sum, ok := sums[s.Name]; ok {
			binary.Write(h, binary.BigEndian, sum)
		} else {
			writeStrings(h, s.Addresses)
		}
	}
	for _, r := range d.Rules {
		writeStrings(h, []string{r.Action, r.From, r.To, r.Protocol})
		for _, p := range r.Ports {
			binary.Write(h, binary.BigEndian, [2]uint16{p.First, p.Last})
		}
		h.Write([]byte{0xff})
	}
	writeStrings(h, d.Masquerade)
	return max(h.Sum64()>>11, 1)
}

// writeStrings hashes a list of strings, each ended by a NUL, the list by
// a 0xfe (no string of a policy holds either byte).
func writeStrings(h hash.Hash64, list []string) {
	for _, s := range list {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write([]byte{0xfe})
}

// policyNets returns the networks whose compiled firewalls w may change,
// comparing w's changes with the objects they replace; the caller calls
// it before w is applied. A key report or a host's new address changes
// no policy.
func (s *State) policyNets(w *write) set {
	out := set{}
	for _, c := range w.changes {
		switch c.kind {
		case store.KindRules:
			if r, ok := s.rules[c.id]; ok {
				out.add(r.NetworkID)
			}
			if r, ok := c.val.(*api.Rule); ok {
				out.add(r.NetworkID)
			}
		case store.KindNetworks:
			out.add(c.id)
		case store.KindInterfaces:
			old, had := s.ifaces[c.id]
			i, ok := c.val.(*api.Interface)
			if had && ok && slices.Equal(old.Addresses, i.Addresses) && slices.Equal(old.RoutedSubnets, i.RoutedSubnets) &&
				old.Masquerade == i.Masquerade {
				continue
			}
			if had {
				out.add(old.NetworkID)
			}
			if ok {
				out.add(i.NetworkID)
			}
		case store.KindHosts:
			old, had := s.hosts[c.id]
			h, ok := c.val.(*api.Host)
			if had && ok && old.Name == h.Name && maps.Equal(old.Labels, h.Labels) {
				continue
			}
			for _, n := range s.hostNets(c.id) {
				out.add(n)
			}
		}
	}
	return out
}

// recompile compiles the firewalls of networks nets anew, after a write of
// index applied, and returns the hosts whose firewall changed. A changed
// firewall goes to the host in a delta; one that went away in a whole
// state. The caller holds s.mu for writing.
func (s *State) recompile(nets set, index uint64) set {
	hosts := set{}
	for netID := range nets {
		n, ok := s.networks[netID]
		if !ok {
			continue // deleted, with its interfaces
		}
		np := s.newNetPolicy(n)
		for id := range s.netIfaces[netID] {
			i := s.ifaces[id]
			fw := np.compile(i)
			old := s.firewalls[id]
			if revisionOf(old) == revisionOf(fw) {
				continue
			}
			if fw == nil {
				delete(s.firewalls, id)
			} else {
				s.firewalls[id] = fw
			}
			if index == 0 {
				continue // loading
			}
			hosts.add(i.HostID)
			if fw == nil {
				s.changes.whole(i.HostID, index)
			} else {
				var was *api.DesiredFirewall
				if old != nil {
					was = old.desired
				}
				s.changes.firewall(id, was, fw.desired, index)
			}
		}
	}
	return hosts
}

func revisionOf(fw *firewall) uint64 {
	if fw == nil {
		return 0
	}
	return fw.desired.Revision
}

// firewallBehind reports whether interface i must enforce a firewall its
// agent does not report enforcing.
func (s *State) firewallBehind(i *api.Interface) bool {
	want := revisionOf(s.firewalls[i.ID])
	return want != 0 && api.FirewallBehind(want, s.firewallStatus(i))
}

// firewallStatus returns what the host's agent last reported of interface
// i's firewall, or nil.
func (s *State) firewallStatus(i *api.Interface) *api.FirewallStatus {
	r, ok := s.reports[i.HostID]
	if !ok {
		return nil
	}
	for k := range r.Interfaces {
		if r.Interfaces[k].ID == i.ID {
			return r.Interfaces[k].Firewall
		}
	}
	return nil
}

// Maximum length of the reason an agent gives for not enforcing.
const maxFirewallReason = 256

// checkFirewallStatus validates the firewall part of an interface's report.
func checkFirewallStatus(field string, fs *api.FirewallStatus) error {
	if fs == nil {
		return nil
	}
	if len(fs.Reason) > maxFirewallReason {
		return invalid(field+".reason", "is longer than %d bytes", maxFirewallReason)
	}
	return checkPrintable(field+".reason", fs.Reason)
}

// CheckRule answers which action network c.NetworkID's policy takes for
// the flow c describes, and which rule decides. It evaluates the firewall
// compiled for the destination's interface, which its agent enforces.
func (s *State) CheckRule(c api.RuleCheck) (*api.RuleVerdict, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c.NetworkID == "" {
		return nil, invalid("network_id", "is required")
	}
	n, err := s.network(c.NetworkID)
	if err != nil {
		return nil, &Error{Class: ErrInvalid, Field: "network_id", Message: err.Error()}
	}
	proto, port, err := parseFlowPort("port", c.Port)
	if err != nil {
		return nil, err
	}
	from, err := s.flowEnd("from", n, c.From)
	if err != nil {
		return nil, err
	}
	to, err := s.flowEnd("to", n, c.To)
	if err != nil {
		return nil, err
	}
	switch {
	case to.iface == nil:
		return nil, invalid("to", "no interface of network %s has or routes %s", n.Name, c.To)
	case from.iface != nil && from.iface.ID == to.iface.ID:
		return &api.RuleVerdict{Action: api.ActionAccept, Reason: "both ends are on one interface: the traffic does not cross the network, no rule applies"}, nil
	case to.iface.HostID == "":
		return &api.RuleVerdict{Action: api.ActionAccept, Reason: "device " + to.iface.DeviceName + " runs no agent: nothing is enforced there"}, nil
	}
	fw := s.firewalls[to.iface.ID]
	if fw == nil {
		return &api.RuleVerdict{Action: cmp.Or(n.DefaultAction, api.ActionAccept),
			Reason: "no rule of network " + n.Name + " applies to " + c.To + "; the network's default action accepts"}, nil
	}
	for _, src := range from.addrs {
		for _, dst := range to.addrs {
			if src.Is4() != dst.Is4() {
				continue
			}
			v := &api.RuleVerdict{Action: fw.desired.DefaultAction, Reason: "no rule matches; the network's default action"}
			if k := evaluate(fw.desired, src, dst, proto, port); k >= 0 {
				r := s.rules[fw.ruleIDs[k]]
				v = &api.RuleVerdict{Action: r.Action, RuleID: r.ID, Position: r.Position, Reason: "rule " + strconv.Itoa(r.Position) + ": " + describeRule(r)}
			}
			if s.firewallBehind(to.iface) {
				v.Reason += "; but " + c.To + " does not enforce the policy yet"
				if fs := s.firewallStatus(to.iface); fs != nil && fs.Reason != "" {
					v.Reason += " (" + fs.Reason + ")"
				}
			}
			return v, nil
		}
	}
	return nil, invalid("to", "%s and %s have no address of one IP family", c.From, c.To)
}

// flowEndpoint is one end of a checked flow: its addresses and the
// interface that has or routes them.
type flowEndpoint struct {
	iface *api.Interface
	addrs []netip.Addr
}

// flowEnd resolves one end of a rule check: a selector naming one host,
// device or interface, or one address, with the same resolution as
// compiled rules. A bare name is a host's, else a device's.
func (s *State) flowEnd(field string, n *api.Network, ref string) (flowEndpoint, error) {
	if ref == "" {
		return flowEndpoint{}, invalid(field, "is required")
	}
	sel, msg := parseSelector(ref)
	if msg != "" && api.CheckName(ref) == nil {
		sel, msg = selector{kind: selHost, name: ref}, ""
		if s.selectorIface(n, sel) == nil {
			if dev := (selector{kind: selDevice, name: ref}); s.selectorIface(n, dev) != nil {
				sel = dev
			}
		}
	}
	if msg != "" {
		return flowEndpoint{}, invalid(field, "%s", msg)
	}
	switch {
	case sel.kind == selHost || sel.kind == selDevice || sel.kind == selInterface:
	case sel.kind == selCIDR && sel.prefix.IsSingleIP():
	default:
		return flowEndpoint{}, invalid(field, "%q does not name one host, device, interface or address", ref)
	}
	if err := s.checkSelector(field, n, sel); err != nil {
		return flowEndpoint{}, err
	}
	var out flowEndpoint
	for _, p := range s.resolve(n, sel).prefixes() {
		out.addrs = append(out.addrs, p.Addr())
	}
	slices.SortFunc(out.addrs, netip.Addr.Compare)
	if sel.kind == selCIDR {
		out.iface = s.ifaceOfAddr(n, sel.prefix.Addr())
	} else {
		out.iface = s.selectorIface(n, sel)
	}
	return out, nil
}

// ifaceOfAddr returns the interface of n that has address a, else the one
// whose routed subnet holds it most narrowly, or nil.
func (s *State) ifaceOfAddr(n *api.Network, a netip.Addr) *api.Interface {
	var best *api.Interface
	bits := -1
	for _, id := range s.netIfaces[n.ID].sorted() {
		i := s.ifaces[id]
		for _, p := range s.nets(i).own {
			if p.Contains(a) && p.Bits() > bits {
				best, bits = i, p.Bits()
			}
		}
	}
	return best
}

// parseFlowPort parses a rule check's port: "5432/tcp", "53/udp", "icmp",
// or "" (a flow of any protocol: only rules of protocol any match it).
func parseFlowPort(field, s string) (proto string, port uint16, err error) {
	switch s {
	case "":
		return "", 0, nil
	case api.ProtocolICMP:
		return api.ProtocolICMP, 0, nil
	}
	num, proto, ok := strings.Cut(s, "/")
	n, perr := strconv.Atoi(num)
	if !ok || perr != nil || n < 1 || n > 65535 || num[0] == '+' || (proto != api.ProtocolTCP && proto != api.ProtocolUDP) {
		return "", 0, invalid(field, "%q is not PORT/tcp, PORT/udp or icmp", s)
	}
	return proto, uint16(n), nil
}

// evaluate returns the index of the first rule of d that matches a packet
// from src to dst of protocol proto ("" for unknown) and port, or -1.
func evaluate(d *api.DesiredFirewall, src, dst netip.Addr, proto string, port uint16) int {
	sets := map[string][]string{}
	for _, s := range d.Sets {
		sets[s.Name] = s.Addresses
	}
	in := func(name string, a netip.Addr) bool {
		if name == "" {
			return true
		}
		for _, p := range sets[name] {
			if netip.MustParsePrefix(p).Contains(a) {
				return true
			}
		}
		return false
	}
	for k, r := range d.Rules {
		if r.Protocol != api.ProtocolAny && r.Protocol != proto {
			continue
		}
		if len(r.Ports) > 0 && !slices.ContainsFunc(r.Ports, func(p api.PortRange) bool { return p.First <= port && port <= p.Last }) {
			continue
		}
		if in(r.From, src) && in(r.To, dst) {
			return k
		}
	}
	return -1
}
