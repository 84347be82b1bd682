package state

import (
	"net/netip"

	"github.com/drago-wg/drago/server/api"
)

// ifaceNets is an interface's addresses and routed subnets, parsed once
// when the interface enters memory rather than on every desired state,
// policy compile and pool update that reads them.
type ifaceNets struct {
	of      *api.Interface // the version parsed
	addrs   []netip.Addr   // its addresses
	own     []netip.Prefix // what arrives at it: its addresses as single-address prefixes, then its routed subnets
	allowed []string       // own as text: its peers' allowed IPs for it
}

// parseNets parses i's addresses and routed subnets, validated before they
// were stored.
func parseNets(i *api.Interface) *ifaceNets {
	n := &ifaceNets{of: i, own: make([]netip.Prefix, 0, len(i.Addresses)+len(i.RoutedSubnets))}
	for _, a := range i.Addresses {
		addr := netip.MustParsePrefix(a).Addr()
		n.addrs = append(n.addrs, addr)
		n.own = append(n.own, netip.PrefixFrom(addr, addr.BitLen()))
	}
	for _, r := range i.RoutedSubnets {
		n.own = append(n.own, netip.MustParsePrefix(r))
	}
	n.allowed = make([]string, 0, len(n.own))
	for _, p := range n.own[:len(n.addrs)] {
		n.allowed = append(n.allowed, p.String())
	}
	n.allowed = append(n.allowed, i.RoutedSubnets...)
	return n
}

// routed returns the interface's routed subnets.
func (n *ifaceNets) routed() []netip.Prefix { return n.own[len(n.addrs):] }

// nets returns i's parsed addresses: kept since i entered memory, or parsed
// now for an interface a write has not applied yet.
func (s *State) nets(i *api.Interface) *ifaceNets {
	if n := s.ifaceNets[i.ID]; n != nil && n.of == i {
		return n
	}
	return parseNets(i)
}
