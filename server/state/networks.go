package state

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/ipam"
	"github.com/drago-wg/drago/server/store"
)

// Network defaults.
const (
	DefaultListenPort = 51820
	DefaultMTU        = 1420
)

// Networks lists networks sorted by name.
func (s *State) Networks(f Filter) api.List[api.Network] {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []api.Network
	for _, n := range s.networks {
		if f.inScope(n.ID) && f.nameMatches(n.Name) {
			out = append(out, *n)
		}
	}
	slices.SortFunc(out, func(a, b api.Network) int { return cmp.Compare(a.Name, b.Name) })
	return page(out, f)
}

// Network returns a network by name or id.
func (s *State) Network(ref string) (*api.Network, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, err := s.network(ref)
	if err != nil {
		return nil, err
	}
	return clone(n), nil
}

func (s *State) network(ref string) (*api.Network, error) {
	if n, ok := s.networks[ref]; ok {
		return n, nil
	}
	if id, ok := s.netByName[ref]; ok {
		return s.networks[id], nil
	}
	return nil, notFound("network", ref)
}

// CreateNetwork validates n, fills defaults and stores it.
func (s *State) CreateNetwork(n api.Network) (*api.Network, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := checkNewMeta(&n.Meta); err != nil {
		return nil, err
	}
	if n.Topology == "" {
		n.Topology = api.TopologyNone
	}
	if n.ListenPort == 0 {
		n.ListenPort = DefaultListenPort
	}
	if n.MTU == 0 {
		n.MTU = DefaultMTU
	}
	if n.DefaultAction == "" {
		n.DefaultAction = api.ActionAccept
	}
	if n.HubInterfaceID != "" {
		return nil, invalid("hub_interface_id", "set it once the network has interfaces")
	}
	if err := s.checkNetwork(&n, nil); err != nil {
		return nil, err
	}
	w := s.begin()
	w.meta(&n.Meta)
	w.put(store.KindNetworks, n.ID, &n, "created", n.Name)
	if err := w.commit(); err != nil {
		return nil, err
	}
	return clone(&n), nil
}

// checkNetwork validates n; old is the stored version on update.
func (s *State) checkNetwork(n *api.Network, old *api.Network) error {
	if err := checkName("name", n.Name, dnsLabel, "a DNS label (lowercase letters, digits and '-', at most 63)"); err != nil {
		return err
	}
	if id, ok := s.netByName[n.Name]; ok && (old == nil || id != old.ID) {
		return conflict("name", "network name %q is taken", n.Name)
	}
	if n.IPv4Range == "" {
		return invalid("ipv4_range", "is required")
	}
	v4, err := parsePrefix("ipv4_range", n.IPv4Range)
	if err != nil {
		return err
	}
	if !v4.Addr().Is4() {
		return invalid("ipv4_range", "%q is not an IPv4 prefix", n.IPv4Range)
	}
	if err := ipam.CheckPrefix(v4); err != nil {
		return invalid("ipv4_range", "%v", err)
	}
	if err := s.checkRangeFree("ipv4_range", v4, n.ID); err != nil {
		return err
	}
	if n.IPv6Range != "" {
		v6, err := parsePrefix("ipv6_range", n.IPv6Range)
		if err != nil {
			return err
		}
		if !v6.Addr().Is6() || v6.Addr().Is4In6() {
			return invalid("ipv6_range", "%q is not an IPv6 prefix", n.IPv6Range)
		}
		if err := ipam.CheckPrefix(v6); err != nil {
			return invalid("ipv6_range", "%v", err)
		}
		if err := s.checkRangeFree("ipv6_range", v6, n.ID); err != nil {
			return err
		}
	}
	if err := checkPort("listen_port", n.ListenPort); err != nil {
		return err
	}
	if err := checkMTU("mtu", n.MTU); err != nil {
		return err
	}
	if err := checkKeepalive("persistent_keepalive", n.PersistentKeepalive); err != nil {
		return err
	}
	for i, d := range n.DNS {
		if a, err := netip.ParseAddr(d); err != nil || a.Zone() != "" {
			return invalid("dns["+strconv.Itoa(i)+"]", "%q is not an IP address (without zone)", d)
		}
	}
	switch n.Topology {
	case api.TopologyNone, api.TopologyMesh, api.TopologyHub:
	default:
		return invalid("topology", "%q is not one of none, mesh, hub", n.Topology)
	}
	switch n.DefaultAction {
	case api.ActionAccept, api.ActionDrop:
	default:
		return invalid("default_action", "%q is not accept or drop", n.DefaultAction)
	}
	if n.HubInterfaceID != "" {
		if n.Topology != api.TopologyHub {
			return invalid("hub_interface_id", "only applies to topology hub")
		}
		if i, ok := s.ifaces[n.HubInterfaceID]; !ok || i.NetworkID != n.ID {
			return invalid("hub_interface_id", "%q is not an interface of this network", n.HubInterfaceID)
		}
	}
	if old == nil {
		return nil
	}
	// A range change must keep every assigned address inside it.
	for _, id := range s.netIfaces[n.ID].sorted() {
		for _, a := range s.ifaces[id].Addresses {
			p := netip.MustParsePrefix(a)
			r := n.IPv4Range
			field := "ipv4_range"
			if p.Addr().Is6() {
				r, field = n.IPv6Range, "ipv6_range"
			}
			if r == "" {
				return conflict(field, "interface %s has address %s; remove it before removing the range", id, a)
			}
			if err := ipam.Fits(netip.MustParsePrefix(r), []netip.Addr{p.Addr()}); err != nil {
				return conflict(field, "interface %s has address %s outside the new range %s", id, p.Addr(), r)
			}
		}
	}
	return nil
}

// checkRangeFree refuses a range that is reserved or overlaps a range of
// another network than self: a host in both could not route either.
func (s *State) checkRangeFree(field string, p netip.Prefix, self string) error {
	if err := checkNetworkRange(field, p); err != nil {
		return err
	}
	for _, o := range s.networks {
		if o.ID == self {
			continue
		}
		for _, r := range []string{o.IPv4Range, o.IPv6Range} {
			if r != "" && netip.MustParsePrefix(r).Overlaps(p) {
				return conflict(field, "%s overlaps network %s's range %s", p, o.Name, r)
			}
		}
	}
	return nil
}

// UpdateNetwork applies edit to a copy of the network, validates and stores it.
// Adding an IPv6 range gives every interface an IPv6 address.
func (s *State) UpdateNetwork(ref string, edit func(*api.Network) error) (*api.Network, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.network(ref)
	if err != nil {
		return nil, err
	}
	n := clone(old)
	if err := edit(n); err != nil {
		return nil, err
	}
	n.Meta = old.Meta
	if n.Topology != api.TopologyHub && old.Topology == api.TopologyHub && n.HubInterfaceID == old.HubInterfaceID {
		n.HubInterfaceID = "" // leaving hub mode drops the hub
	}
	if err := s.checkNetwork(n, old); err != nil {
		return nil, err
	}
	w := s.begin()
	w.meta(&n.Meta)
	w.put(store.KindNetworks, n.ID, n, "updated", n.Name)
	w.nets.add(n.ID)
	// Interfaces follow the ranges: their addresses take a changed range's
	// prefix length, and a new IPv6 range gives each an address.
	var range6 netip.Prefix // a new IPv6 range: its addresses in order
	var next6, last6 netip.Addr
	if n.IPv6Range != "" && old.IPv6Range == "" {
		range6 = netip.MustParsePrefix(n.IPv6Range)
		next6, last6 = ipam.Usable(range6)
	}
	for _, id := range s.netIfaces[n.ID].sorted() {
		i := clone(s.ifaces[id])
		changed := rebit(i.Addresses, n)
		if range6.IsValid() {
			if !next6.IsValid() {
				return nil, conflict("ipv6_range", "range %s is too small for the network's interfaces", n.IPv6Range)
			}
			i.Addresses = append(i.Addresses, netip.PrefixFrom(next6, range6.Bits()).String())
			next6 = ipam.After(next6, last6)
			changed = true
		}
		if changed {
			w.meta(&i.Meta)
			w.put(store.KindInterfaces, id, i, "updated", i.Name)
		}
	}
	if err := w.commit(); err != nil {
		return nil, err
	}
	return clone(n), nil
}

// rebit gives each address the prefix length of n's range of its family and
// reports whether one changed.
func rebit(addrs []string, n *api.Network) bool {
	changed := false
	for k, a := range addrs {
		p := netip.MustParsePrefix(a)
		r := n.IPv4Range
		if p.Addr().Is6() {
			r = n.IPv6Range
		}
		if bits := netip.MustParsePrefix(r).Bits(); bits != p.Bits() {
			addrs[k] = netip.PrefixFrom(p.Addr(), bits).String()
			changed = true
		}
	}
	return changed
}

// DeleteNetwork removes a network with its interfaces, connections and rules.
func (s *State) DeleteNetwork(ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.network(ref)
	if err != nil {
		return err
	}
	w := s.begin()
	w.nets.add(n.ID)
	for _, id := range s.netIfaces[n.ID].sorted() {
		s.deleteInterface(w, s.ifaces[id])
	}
	for _, r := range s.netRules[n.ID] {
		w.del(store.KindRules, r.ID, "")
	}
	w.del(store.KindNetworks, n.ID, n.Name)
	return w.commit()
}

// rebuildPools recreates a network's pools from its interfaces' addresses.
func (s *State) rebuildPools(n *api.Network) {
	p := &netPools{}
	p.v4, _ = ipam.New(netip.MustParsePrefix(n.IPv4Range))
	if n.IPv6Range != "" {
		p.v6, _ = ipam.New(netip.MustParsePrefix(n.IPv6Range))
	}
	s.pools[n.ID] = p
	for id := range s.netIfaces[n.ID] {
		s.reserveAddrs(s.ifaces[id])
	}
}

func (p *netPools) pool(a netip.Addr) *ipam.Pool {
	if a.Is4() {
		return p.v4
	}
	return p.v6
}

// reserveAddrs marks the interface's addresses used in its network's pools
// (validated before the write, so it cannot fail).
func (s *State) reserveAddrs(i *api.Interface) {
	s.eachPoolAddr(i, func(pool *ipam.Pool, a netip.Addr) { _ = pool.Reserve(a) })
}

// releaseAddrs frees the interface's addresses.
func (s *State) releaseAddrs(i *api.Interface) {
	s.eachPoolAddr(i, (*ipam.Pool).Release)
}

func (s *State) eachPoolAddr(i *api.Interface, fn func(*ipam.Pool, netip.Addr)) {
	p := s.pools[i.NetworkID]
	if p == nil {
		return
	}
	for _, addr := range s.nets(i).addrs {
		if pool := p.pool(addr); pool != nil {
			fn(pool, addr)
		}
	}
}
