package state

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/ipam"
)

// Selectors name the sources and destinations of access rules (see
// api.Rule). A selector is kept as written and resolved when the policy is
// compiled: a host that joins with a label is in that label's selector at
// once. Selectors that name one object (host:, device:, interface:,
// subnets:) must name an object of the rule's network when the rule is
// written, so that a typo is refused rather than silently matching
// nothing; one whose object is deleted later matches nothing.

// Selector bounds.
const (
	maxSelectors   = 32  // per side of a rule
	maxSelectorLen = 256 // bytes
)

type selKind int

const (
	selAny selKind = iota
	selHost
	selDevice
	selInterface
	selSubnets
	selLabel
	selCIDR
)

// selector is a parsed selector.
type selector struct {
	kind   selKind
	name   string // host, device or interface reference; label key
	value  string // label value
	prefix netip.Prefix
}

var selPrefixes = []struct {
	prefix string
	kind   selKind
}{{"host:", selHost}, {"device:", selDevice}, {"interface:", selInterface}, {"subnets:", selSubnets}}

const selectorForms = "*, host:NAME, device:NAME, interface:ID, subnets:HOST, KEY=VALUE or a CIDR"

// parseSelector parses one selector; the error names no field.
func parseSelector(s string) (selector, string) {
	if s == "*" {
		return selector{kind: selAny}, ""
	}
	if len(s) > maxSelectorLen {
		return selector{}, "is longer than " + strconv.Itoa(maxSelectorLen) + " bytes"
	}
	for _, sp := range selPrefixes {
		if v, ok := strings.CutPrefix(s, sp.prefix); ok {
			if err := api.CheckName(v); err != nil {
				return selector{}, err.Error()
			}
			return selector{kind: sp.kind, name: v}, ""
		}
	}
	if k, v, ok := strings.Cut(s, "="); ok {
		if _, err := api.CheckLabels(map[string]string{k: v}); err != nil {
			return selector{}, err.Error()
		}
		return selector{kind: selLabel, name: k, value: v}, ""
	}
	if p, ok := parseAddrOrPrefix(s); ok {
		if p != p.Masked() {
			return selector{}, strconv.Quote(s) + " has host bits set; did you mean " + p.Masked().String() + "?"
		}
		return selector{kind: selCIDR, prefix: p}, ""
	}
	return selector{}, strconv.Quote(s) + " is not a selector (" + selectorForms + ")"
}

// parseAddrOrPrefix parses an IP address (as a host prefix) or a CIDR
// prefix, without zone.
func parseAddrOrPrefix(s string) (netip.Prefix, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), a.Zone() == ""
	}
	p, err := netip.ParsePrefix(s)
	return p, err == nil
}

// parseSelectors parses one side of a rule, naming the bad element.
func parseSelectors(field string, list []string) ([]selector, error) {
	switch {
	case len(list) == 0:
		return nil, invalid(field, "is required (\"*\" selects everything)")
	case len(list) > maxSelectors:
		return nil, invalid(field, "lists more than %d selectors", maxSelectors)
	}
	out := make([]selector, len(list))
	for k, s := range list {
		sel, msg := parseSelector(s)
		if msg != "" {
			return nil, invalid(field+"["+strconv.Itoa(k)+"]", "%s", msg)
		}
		out[k] = sel
	}
	return out, nil
}

// checkSelector refuses a selector that names an object outside network
// n, or a prefix outside its ranges and its interfaces' routed subnets.
// The message is the same for an object that does not exist and one of
// another network, which the caller may not see.
func (s *State) checkSelector(field string, n *api.Network, sel selector) error {
	switch sel.kind {
	case selHost, selSubnets:
		if s.selectorIface(n, sel) == nil {
			return invalid(field, "no host %q has an interface in network %s", sel.name, n.Name)
		}
	case selDevice:
		if s.selectorIface(n, sel) == nil {
			return invalid(field, "network %s has no device %q", n.Name, sel.name)
		}
	case selInterface:
		if s.selectorIface(n, sel) == nil {
			return invalid(field, "network %s has no interface %q", n.Name, sel.name)
		}
	case selCIDR:
		if !s.inNetwork(n, sel.prefix) {
			return invalid(field, "%s is outside the network's ranges and its interfaces' routed subnets", sel.prefix)
		}
	}
	return nil
}

// inNetwork reports whether p lies inside n's ranges or a routed subnet of
// one of its interfaces.
func (s *State) inNetwork(n *api.Network, p netip.Prefix) bool {
	if ps := s.pools[n.ID]; ps != nil {
		for _, pool := range []*ipam.Pool{ps.v4, ps.v6} {
			if pool != nil && within(p, pool.Prefix()) {
				return true
			}
		}
	}
	for id := range s.netIfaces[n.ID] {
		for _, r := range s.nets(s.ifaces[id]).routed() {
			if within(p, r) {
				return true
			}
		}
	}
	return false
}

// within reports whether p lies inside r.
func within(p, r netip.Prefix) bool { return r.Bits() <= p.Bits() && r.Contains(p.Addr()) }

// selectorIface returns the one interface of n a host:, device:,
// interface: or subnets: selector names, or nil.
func (s *State) selectorIface(n *api.Network, sel selector) *api.Interface {
	switch sel.kind {
	case selHost, selSubnets:
		h, err := s.host(sel.name)
		if err != nil {
			return nil
		}
		return s.hostIface(h.ID, n.ID)
	case selDevice:
		for id := range s.netDevices[n.ID] {
			if i := s.ifaces[id]; i.DeviceName == sel.name || i.ID == sel.name {
				return i
			}
		}
	case selInterface:
		if i, ok := s.ifaces[sel.name]; ok && i.NetworkID == n.ID {
			return i
		}
	}
	return nil
}

// hostIface returns the host's interface in network netID, or nil.
func (s *State) hostIface(hostID, netID string) *api.Interface {
	for id := range s.hostIfaces[hostID] {
		if i := s.ifaces[id]; i.NetworkID == netID {
			return i
		}
	}
	return nil
}

// resolved is what a selector names: single addresses, and prefixes.
type resolved struct {
	addrs map[netip.Addr]struct{}
	nets  []netip.Prefix
}

// resolve returns the addresses and prefixes of network n that sel names;
// selAny is the caller's to handle.
func (s *State) resolve(n *api.Network, sel selector) resolved {
	out := resolved{addrs: map[netip.Addr]struct{}{}}
	addIface := func(i *api.Interface) {
		for _, a := range s.nets(i).addrs {
			out.addrs[a] = struct{}{}
		}
	}
	switch sel.kind {
	case selHost, selDevice, selInterface:
		if i := s.selectorIface(n, sel); i != nil {
			addIface(i)
		}
	case selSubnets:
		if i := s.selectorIface(n, sel); i != nil {
			out.nets = append(out.nets, s.nets(i).routed()...)
		}
	case selLabel:
		for id := range s.netIfaces[n.ID] {
			i := s.ifaces[id]
			if h, ok := s.hosts[i.HostID]; ok {
				if v, ok := h.Labels[sel.name]; ok && v == sel.value {
					addIface(i)
				}
			}
		}
	case selCIDR:
		if sel.prefix.IsSingleIP() {
			out.addrs[sel.prefix.Addr()] = struct{}{}
		} else {
			out.nets = append(out.nets, sel.prefix)
		}
	}
	return out
}

// prefixes lists what r names.
func (r resolved) prefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(r.addrs)+len(r.nets))
	for a := range r.addrs {
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return append(out, r.nets...)
}

// within returns the part of what r names that lies in own: the addresses
// inside own, and the overlaps of r's prefixes with own's.
func (r resolved) within(own []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, o := range own {
		if o.IsSingleIP() {
			if _, ok := r.addrs[o.Addr()]; ok {
				out = append(out, o)
			}
		} else {
			for a := range r.addrs {
				if o.Contains(a) {
					out = append(out, netip.PrefixFrom(a, a.BitLen()))
				}
			}
		}
		for _, p := range r.nets {
			if p.Overlaps(o) {
				out = append(out, narrower(p, o))
			}
		}
	}
	return out
}

// narrower returns the longer of two overlapping prefixes: their overlap.
func narrower(a, b netip.Prefix) netip.Prefix {
	if a.Bits() >= b.Bits() {
		return a
	}
	return b
}

// canonical sorts prefixes, drops duplicates and those inside another,
// and writes them as strings.
func canonical(ps []netip.Prefix) []string {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
	})
	out := make([]string, 0, len(ps))
	var last netip.Prefix
	for _, p := range ps {
		if last.IsValid() && within(p, last) {
			continue // sorted: a prefix inside another follows it
		}
		out = append(out, p.String())
		last = p
	}
	return out
}
