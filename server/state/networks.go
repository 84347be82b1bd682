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
	if _, err := s.checkNetwork(&n, nil); err != nil {
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

// netRanges is a network's address ranges, parsed; v6 is the zero
// prefix when the network has no IPv6 range.
type netRanges struct{ v4, v6 netip.Prefix }

// of returns the range of a's family.
func (r netRanges) of(a netip.Addr) netip.Prefix {
	if a.Is4() {
		return r.v4
	}
	return r.v6
}

// ranges returns the network's parsed ranges, as its pools hold them.
func (p *netPools) ranges() netRanges {
	r := netRanges{v4: p.v4.Prefix()}
	if p.v6 != nil {
		r.v6 = p.v6.Prefix()
	}
	return r
}

// checkNetwork validates n and returns its parsed ranges; old is the
// stored version on update.
func (s *State) checkNetwork(n *api.Network, old *api.Network) (netRanges, error) {
	if err := checkName("name", n.Name, dnsLabel, "a DNS label (lowercase letters, digits and '-', at most 63)"); err != nil {
		return netRanges{}, err
	}
	if id, ok := s.netByName[n.Name]; ok && (old == nil || id != old.ID) {
		return netRanges{}, conflict("name", "network name %q is taken", n.Name)
	}
	if n.IPv4Range == "" {
		return netRanges{}, invalid("ipv4_range", "is required")
	}
	var r netRanges
	v4, err := parsePrefix("ipv4_range", n.IPv4Range)
	if err != nil {
		return netRanges{}, err
	}
	r.v4 = v4
	if !v4.Addr().Is4() {
		return netRanges{}, invalid("ipv4_range", "%q is not an IPv4 prefix", n.IPv4Range)
	}
	if err := ipam.CheckPrefix(v4); err != nil {
		return netRanges{}, invalid("ipv4_range", "%v", err)
	}
	if err := s.checkRangeFree("ipv4_range", v4, n.ID); err != nil {
		return netRanges{}, err
	}
	if n.IPv6Range != "" {
		v6, err := parsePrefix("ipv6_range", n.IPv6Range)
		if err != nil {
			return netRanges{}, err
		}
		if !v6.Addr().Is6() || v6.Addr().Is4In6() {
			return netRanges{}, invalid("ipv6_range", "%q is not an IPv6 prefix", n.IPv6Range)
		}
		if err := ipam.CheckPrefix(v6); err != nil {
			return netRanges{}, invalid("ipv6_range", "%v", err)
		}
		if err := s.checkRangeFree("ipv6_range", v6, n.ID); err != nil {
			return netRanges{}, err
		}
		r.v6 = v6
	}
	if err := checkPort("listen_port", n.ListenPort); err != nil {
		return netRanges{}, err
	}
	if err := checkMTU("mtu", n.MTU); err != nil {
		return netRanges{}, err
	}
	if err := checkKeepalive("persistent_keepalive", n.PersistentKeepalive); err != nil {
		return netRanges{}, err
	}
	for i, d := range n.DNS {
		if a, err := netip.ParseAddr(d); err != nil || a.Zone() != "" {
			return netRanges{}, invalid("dns["+strconv.Itoa(i)+"]", "%q is not an IP address (without zone)", d)
		}
	}
	switch n.Topology {
	case api.TopologyNone, api.TopologyMesh, api.TopologyHub:
	default:
		return netRanges{}, invalid("topology", "%q is not one of none, mesh, hub", n.Topology)
	}
	switch n.DefaultAction {
	case api.ActionAccept, api.ActionDrop:
	default:
		return netRanges{}, invalid("default_action", "%q is not accept or drop", n.DefaultAction)
	}
	if n.HubInterfaceID != "" {
		if n.Topology != api.TopologyHub {
			return netRanges{}, invalid("hub_interface_id", "only applies to topology hub")
		}
		if i, ok := s.ifaces[n.HubInterfaceID]; !ok || i.NetworkID != n.ID {
			return netRanges{}, invalid("hub_interface_id", "%q is not an interface of this network", n.HubInterfaceID)
		}
	}
	if old == nil {
		return r, nil
	}
	// A range change must keep every assigned address inside it.
	for _, id := range s.netIfaces[n.ID].sorted() {
		for _, a := range s.nets(s.ifaces[id]).addrs {
			field := "ipv4_range"
			if a.Is6() {
				field = "ipv6_range"
			}
			if !r.of(a).IsValid() {
				return netRanges{}, conflict(field, "interface %s has address %s; remove it before removing the range", id, a)
			}
			if err := ipam.Fits(r.of(a), []netip.Addr{a}); err != nil {
				return netRanges{}, conflict(field, "interface %s has address %s outside the new range %s", id, a, r.of(a))
			}
		}
	}
	return r, nil
}

// checkRangeFree refuses a range that is reserved or overlaps a range of
// another network than self: a host in both could not route either.
func (s *State) checkRangeFree(field string, p netip.Prefix, self string) error {
	if err := checkNetworkRange(field, p); err != nil {
		return err
	}
	for id, o := range s.pools {
		if id == self {
			continue
		}
		for _, r := range []*ipam.Pool{o.v4, o.v6} {
			if r != nil && r.Prefix().Overlaps(p) {
				return conflict(field, "%s overlaps network %s's range %s", p, s.networks[id].Name, r.Prefix())
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
	r, err := s.checkNetwork(n, old)
	if err != nil {
		return nil, err
	}
	w := s.begin()
	w.meta(&n.Meta)
	w.put(store.KindNetworks, n.ID, n, "updated", n.Name)
	w.nets.add(n.ID)
	// Interfaces follow the ranges: their addresses take a changed range's
	// prefix length, and a new IPv6 range gives each an address.
	was := s.pools[n.ID].ranges()
	var next6, last6 netip.Addr // a new IPv6 range: its addresses in order
	if r.v6.IsValid() && !was.v6.IsValid() {
		next6, last6 = ipam.Usable(r.v6)
	}
	for _, id := range s.netIfaces[n.ID].sorted() {
		i := clone(s.ifaces[id])
		changed := rebit(i.Addresses, s.nets(s.ifaces[id]).addrs, was, r)
		if r.v6.IsValid() && !was.v6.IsValid() {
			if !next6.IsValid() {
				return nil, conflict("ipv6_range", "range %s is too small for the network's interfaces", r.v6)
			}
			i.Addresses = append(i.Addresses, netip.PrefixFrom(next6, r.v6.Bits()).String())
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

// rebit gives each address (addrs as text, parsed the address of each) the
// prefix length of its family's range in now where it differs from the
// range it had, was, and reports whether one changed.
func rebit(addrs []string, parsed []netip.Addr, was, now netRanges) bool {
	changed := false
	for k, a := range parsed {
		if bits := now.of(a).Bits(); bits != was.of(a).Bits() {
			addrs[k] = netip.PrefixFrom(a, bits).String()
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
