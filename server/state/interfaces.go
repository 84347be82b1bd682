package state

import (
	"cmp"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/ipam"
	"github.com/drago-wg/drago/server/store"
)

// Interfaces lists interfaces (agent-managed and devices) sorted by id.
func (s *State) Interfaces(f Filter, devices bool) (api.List[api.Interface], error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids, err := s.filterIfaces(f)
	if err != nil {
		return api.List[api.Interface]{}, err
	}
	var out []api.Interface
	for _, id := range ids {
		i := s.ifaces[id]
		if (i.DeviceName != "") != devices || !f.inScope(i.NetworkID) {
			continue
		}
		if f.Query != "" && !strings.HasPrefix(i.Name, f.Query) && !strings.HasPrefix(i.DeviceName, f.Query) {
			continue
		}
		if f.FirewallBehind && !s.firewallBehind(i) {
			continue
		}
		out = append(out, s.ifaceView(i))
	}
	slices.SortFunc(out, func(a, b api.Interface) int { return cmp.Compare(a.ID, b.ID) })
	return page(out, f), nil
}

// filterIfaces returns the candidate interface ids for the filter's network
// and host references.
func (s *State) filterIfaces(f Filter) ([]string, error) {
	var cand set
	if f.Network != "" {
		n, err := s.network(f.Network)
		if err != nil {
			return nil, err
		}
		cand = s.netIfaces[n.ID]
	}
	if f.Host != "" {
		h, err := s.host(f.Host)
		if err != nil {
			return nil, err
		}
		if cand == nil {
			cand = s.hostIfaces[h.ID]
		} else {
			both := set{}
			for id := range s.hostIfaces[h.ID] {
				if _, ok := cand[id]; ok {
					both.add(id)
				}
			}
			cand = both
		}
	}
	if cand == nil {
		return slices.Collect(maps.Keys(s.ifaces)), nil
	}
	return slices.Collect(maps.Keys(cand)), nil
}

// Interface returns an interface by id.
func (s *State) Interface(id string) (*api.Interface, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, ok := s.ifaces[id]
	if !ok {
		return nil, notFound("interface", id)
	}
	v := s.ifaceView(i)
	return &v, nil
}

// ifaceView copies i with KeyStale derived from its last rotation.
func (s *State) ifaceView(i *api.Interface) api.Interface {
	v := *clone(i)
	v.KeyStale = s.keyStale(i)
	v.RotationBlocked = s.rotationBlocked(i)
	v.FirewallRevision = revisionOf(s.firewalls[i.ID])
	if fs := s.firewallStatus(i); fs != nil {
		v.Firewall = new(*fs)
	}
	return v
}

// keyStale reports whether an agent interface's key is older than twice the
// rotation interval.
func (s *State) keyStale(i *api.Interface) bool {
	if s.opts.KeyRotationInterval <= 0 || i.DeviceName != "" || i.KeyRotatedAt == nil {
		return false
	}
	return s.opts.Now().Sub(*i.KeyRotatedAt) > 2*s.opts.KeyRotationInterval
}

// CreateInterface adds a host to a network on behalf of p. HostID and
// NetworkID may be names; a zero name, listen port, MTU or missing
// addresses are filled in. Besides write access to the network's
// interfaces, p needs write access to the host in all its networks: a
// token of network A may not pull a host of network B into A.
func (s *State) CreateInterface(p *Principal, i api.Interface) (*api.Interface, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i.PublicKey != "" {
		return nil, invalid("public_key", "is set by the host's agent, not through the API")
	}
	if i.DeviceName != "" {
		return nil, invalid("device_name", "add devices through /devices")
	}
	if i.KeyRotatedAt != nil {
		return nil, invalid("key_rotated_at", "is set by the server")
	}
	h, err := s.hostFor(p, i.HostID, AccessWrite)
	if err != nil {
		var e *Error
		errors.As(err, &e)
		class := e.Class
		if class == ErrNotFound {
			class = ErrInvalid // a reference in the body, not the path
		}
		return nil, &Error{Class: class, Field: "host_id", Message: e.Message}
	}
	if n, err := s.network(i.NetworkID); err == nil && !p.Allowed("interfaces", AccessWrite, n.ID) {
		return nil, forbiddenField("network_id", "token has no write access to interfaces of network %s", n.Name)
	}
	w := s.begin()
	out, err := s.addInterface(w, h, i)
	if err != nil {
		return nil, err
	}
	if err := w.commit(); err != nil {
		return nil, err
	}
	v := s.ifaceView(out)
	return &v, nil
}

// addInterface validates i for host h (nil for a device), fills defaults
// and adds it to w.
func (s *State) addInterface(w *write, h *api.Host, i api.Interface) (*api.Interface, error) {
	n, err := s.network(i.NetworkID)
	if err != nil {
		return nil, &Error{Class: ErrInvalid, Field: "network_id", Message: err.Error()}
	}
	if err := checkNewMeta(&i.Meta); err != nil {
		return nil, err
	}
	i.NetworkID, i.Firewall, i.FirewallRevision = n.ID, nil, 0
	if h != nil {
		i.HostID = h.ID
		for id := range s.hostIfaces[h.ID] {
			if s.ifaces[id].NetworkID == n.ID {
				return nil, conflict("network_id", "host %s already has interface %s in network %s", h.Name, id, n.Name)
			}
		}
		for _, c := range w.changes { // interfaces added earlier in this write
			if o, ok := c.val.(*api.Interface); ok && o.HostID == h.ID && o.NetworkID == n.ID {
				return nil, conflict("network_id", "host %s joins network %s twice", h.Name, n.Name)
			}
		}
	}
	if i.MTU == 0 {
		i.MTU = n.MTU
	}
	if i.Name == "" {
		i.Name = s.freeIfaceName(w, i.HostID, n.Name)
	}
	if i.ListenPort == 0 {
		i.ListenPort = s.freePort(w, i.HostID, n.ListenPort)
	}
	if err := s.checkInterface(w, &i, nil, n); err != nil {
		return nil, err
	}
	addrs, err := s.assignAddresses(w, n, i.Addresses, nil)
	if err != nil {
		return nil, err
	}
	i.Addresses = addrs
	w.meta(&i.Meta)
	name := i.Name
	if i.DeviceName != "" {
		name = i.DeviceName
	}
	w.put(store.KindInterfaces, i.ID, &i, "created", name)
	w.ifaces.add(i.ID)
	return &i, nil
}

// pendingIfaces lists the interfaces added to w that are not applied yet.
func pendingIfaces(w *write) []*api.Interface {
	var out []*api.Interface
	for _, c := range w.changes {
		if i, ok := c.val.(*api.Interface); ok {
			out = append(out, i)
		}
	}
	return out
}

// hostIfaceList returns the host's interfaces, including those pending in w.
func (s *State) hostIfaceList(w *write, hostID string) []*api.Interface {
	var out []*api.Interface
	for id := range s.hostIfaces[hostID] {
		out = append(out, s.ifaces[id])
	}
	for _, i := range pendingIfaces(w) {
		if i.HostID == hostID && hostID != "" {
			out = append(out, i)
		}
	}
	return out
}

// freeIfaceName derives "dg-<network>" (at most api.MaxInterfaceNameLen
// characters) unique on the host. Network names are DNS labels, so the
// result is a valid interface name.
func (s *State) freeIfaceName(w *write, hostID, network string) string {
	base := "dg-" + network
	taken := func(name string) bool {
		for _, o := range s.hostIfaceList(w, hostID) {
			if o.Name == name {
				return true
			}
		}
		return false
	}
	name := base[:min(len(base), api.MaxInterfaceNameLen)]
	for k := 1; taken(name); k++ {
		suf := strconv.Itoa(k)
		name = base[:min(len(base), api.MaxInterfaceNameLen-len(suf))] + suf
	}
	return name
}

// freePort returns port, or the next one no other interface of the host uses.
func (s *State) freePort(w *write, hostID string, port int) int {
	used := map[int]bool{}
	for _, o := range s.hostIfaceList(w, hostID) {
		used[o.ListenPort] = true
	}
	for used[port] && port < 65535 {
		port++
	}
	return port
}

// checkInterface validates the fields of i that a caller may set.
func (s *State) checkInterface(w *write, i, old *api.Interface, n *api.Network) error {
	if err := checkIfaceName("name", i.Name); err != nil {
		return err
	}
	if err := checkPort("listen_port", i.ListenPort); err != nil {
		return err
	}
	if err := checkMTU("mtu", i.MTU); err != nil {
		return err
	}
	if err := checkRoutedSubnets("routed_subnets", i.RoutedSubnets); err != nil {
		return err
	}
	if i.Masquerade && (i.DeviceName != "" || len(i.RoutedSubnets) == 0) {
		return invalid("masquerade", "needs routed subnets on a host's interface: the agent translates traffic to them")
	}
	if i.HostID == "" {
		return nil
	}
	for _, o := range s.hostIfaceList(w, i.HostID) {
		if old != nil && o.ID == old.ID {
			continue
		}
		if o.Name == i.Name {
			return conflict("name", "host already has an interface named %q", i.Name)
		}
		if o.ListenPort == i.ListenPort {
			return conflict("listen_port", "port %d is used by the host's interface %s", i.ListenPort, o.Name)
		}
	}
	return nil
}

// assignAddresses validates the requested addresses (IP or IP/len inside the
// network's ranges, one per family, unused) and picks the lowest free address
// of each missing family; the write holds them until its commit reserves
// them. old is the interface as stored, on update.
func (s *State) assignAddresses(w *write, n *api.Network, req []string, old *api.Interface) ([]string, error) {
	pools := s.pools[n.ID]
	mine := map[netip.Addr]bool{}
	if old != nil {
		for _, a := range s.nets(old).addrs {
			mine[a] = true
		}
	}
	var out []string
	have := map[bool]bool{} // is4 -> given
	for k, a := range req {
		field := "addresses[" + strconv.Itoa(k) + "]"
		addr, err := netip.ParseAddr(a)
		if err != nil {
			p, perr := netip.ParsePrefix(a)
			if perr != nil {
				return nil, invalid(field, "%q is not an IP address", a)
			}
			addr = p.Addr()
		}
		pool := pools.pool(addr)
		if pool == nil {
			return nil, invalid(field, "network %s has no IPv6 range", n.Name)
		}
		if !pool.Prefix().Contains(addr) {
			return nil, invalid(field, "%s is outside the network's range %s", addr, pool.Prefix())
		}
		if have[addr.Is4()] {
			return nil, invalid(field, "only one address per IP family")
		}
		have[addr.Is4()] = true
		if !mine[addr] {
			err := pool.Check(addr)
			switch {
			case w.addrs[addr] || errors.Is(err, ipam.ErrInUse):
				return nil, conflict(field, "address %s is in use", addr)
			case err != nil:
				return nil, invalid(field, "%s is not a usable host address of %s", addr, pool.Prefix())
			}
			w.addrs[addr] = true
		}
		out = append(out, netip.PrefixFrom(addr, pool.Prefix().Bits()).String())
	}
	for _, pool := range []*ipam.Pool{pools.v4, pools.v6} {
		if pool == nil || have[pool.Prefix().Addr().Is4()] {
			continue
		}
		addr, err := pool.Next(func(a netip.Addr) bool { return w.addrs[a] })
		if errors.Is(err, ipam.ErrFull) {
			return nil, conflict("addresses", "address range %s is full", pool.Prefix())
		}
		if err != nil {
			return nil, err
		}
		w.addrs[addr] = true
		out = append(out, netip.PrefixFrom(addr, pool.Prefix().Bits()).String())
	}
	return out, nil
}

// UpdateInterface applies edit to a copy of the interface and stores it.
func (s *State) UpdateInterface(id string, edit func(*api.Interface) error) (*api.Interface, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.ifaces[id]
	if !ok {
		return nil, notFound("interface", id)
	}
	i := clone(old)
	if err := edit(i); err != nil {
		return nil, err
	}
	i.Meta = old.Meta
	switch {
	case i.HostID != old.HostID:
		return nil, invalid("host_id", "cannot change; create a new interface")
	case i.NetworkID != old.NetworkID:
		return nil, invalid("network_id", "cannot change; create a new interface")
	case i.DeviceName == "" && i.PublicKey != old.PublicKey:
		return nil, invalid("public_key", "is set by the host's agent")
	case (i.DeviceName == "") != (old.DeviceName == ""):
		return nil, invalid("device_name", "cannot turn an agent interface into a device or back")
	case !timeEqual(i.KeyRotatedAt, old.KeyRotatedAt):
		return nil, invalid("key_rotated_at", "is set by the server")
	case i.NextPublicKey != old.NextPublicKey || i.NextKeyIndex != old.NextKeyIndex || i.NextKeyReady != old.NextKeyReady:
		return nil, invalid("next_public_key", "is set by the host's agent during a key rotation")
	}
	i.KeyStale, i.Firewall, i.FirewallRevision = false, nil, 0 // derived and observed
	if i.DeviceName != "" {
		if err := checkObjectName("device_name", i.DeviceName, "a device name"); err != nil {
			return nil, err
		}
		if i.PublicKey != old.PublicKey {
			if _, err := checkKey("public_key", i.PublicKey); err != nil {
				return nil, err
			}
			if err := s.checkKeyFree("public_key", i.NetworkID, i.PublicKey, i.ID); err != nil {
				return nil, err
			}
		}
	}
	n := s.networks[i.NetworkID]
	w := s.begin()
	if err := s.checkInterface(w, i, old, n); err != nil {
		return nil, err
	}
	addrs, err := s.assignAddresses(w, n, i.Addresses, old)
	if err != nil {
		return nil, err
	}
	i.Addresses = addrs
	w.meta(&i.Meta)
	w.put(store.KindInterfaces, i.ID, i, "updated", i.Name)
	w.ifaces.add(i.ID)
	if err := w.commit(); err != nil {
		return nil, err
	}
	v := s.ifaceView(i)
	return &v, nil
}

// DeleteInterface removes an interface and its connections.
func (s *State) DeleteInterface(id string, device bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.ifaces[id]
	if !ok || (i.DeviceName != "") != device {
		kind := "interface"
		if device {
			kind = "device"
		}
		return notFound(kind, id)
	}
	w := s.begin()
	s.deleteInterface(w, i)
	return w.commit()
}

// deleteInterface adds the removal of i, its connections and its hub role to w.
func (s *State) deleteInterface(w *write, i *api.Interface) {
	w.ifaces.add(i.ID)
	for _, cid := range s.ifaceConns[i.ID].sorted() {
		w.del(store.KindConnections, cid, "")
	}
	if n := s.networks[i.NetworkID]; n.HubInterfaceID == i.ID {
		n2 := clone(n)
		n2.HubInterfaceID = ""
		w.meta(&n2.Meta)
		w.put(store.KindNetworks, n2.ID, n2, "updated", n2.Name)
		w.nets.add(n2.ID)
	}
	name := i.Name
	if i.DeviceName != "" {
		name = i.DeviceName
	}
	w.del(store.KindInterfaces, i.ID, name)
}

func timeEqual(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}
