package state

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drago-wg/drago/server/api"
)

// eachDevicePeer calls fn for every plain device among i's peers, as
// eachPeer lists them, at the cost of i's connections and its network's
// devices rather than all its peers: lists of interfaces ask it of each.
func (s *State) eachDevicePeer(i *api.Interface, fn func(p *api.Interface)) {
	seen := set{}
	for cid := range s.ifaceConns[i.ID] {
		c := s.conns[cid]
		other := c.B.InterfaceID
		if other == i.ID {
			other = c.A.InterfaceID
		}
		if p, ok := s.ifaces[other]; ok {
			seen.add(other)
			if p.DeviceName != "" {
				fn(p)
			}
		}
	}
	n := s.networks[i.NetworkID]
	if n == nil {
		return
	}
	for id := range s.netDevices[n.ID] {
		if _, dup := seen[id]; !dup && implicitPeer(n, i, s.ifaces[id]) {
			fn(s.ifaces[id])
		}
	}
}

// eachPeer calls fn for every peer of i: its explicit connections, then the
// implicit ones its network's topology gives (an explicit connection
// overrides the implicit one for the same pair). conn is nil for implicit peers.
func (s *State) eachPeer(i *api.Interface, fn func(p *api.Interface, conn *api.Connection)) {
	explicit := s.ifaceConns[i.ID]
	seen := make(set, len(explicit))
	for cid := range explicit {
		c := s.conns[cid]
		other := c.B.InterfaceID
		if other == i.ID {
			other = c.A.InterfaceID
		}
		if p, ok := s.ifaces[other]; ok {
			seen.add(other)
			fn(p, c)
		}
	}
	n := s.networks[i.NetworkID]
	implicit := func(id string) {
		if _, dup := seen[id]; dup {
			return
		}
		if p, ok := s.ifaces[id]; ok && implicitPeer(n, i, p) {
			fn(p, nil)
		}
	}
	switch {
	case n == nil:
	case n.Topology == api.TopologyMesh:
		for id := range s.netIfaces[n.ID] {
			implicit(id)
		}
	case n.Topology == api.TopologyHub && n.HubInterfaceID == i.ID:
		for id := range s.netIfaces[n.ID] {
			implicit(id)
		}
	case n.Topology == api.TopologyHub && n.HubInterfaceID != "":
		implicit(n.HubInterfaceID)
	}
}

// peerOf builds the peer entry that self gets for p.
func (s *State) peerOf(self, p *api.Interface, conn *api.Connection) api.DesiredPeer {
	n := s.networks[self.NetworkID]
	out := api.DesiredPeer{InterfaceID: p.ID, PublicKey: p.PublicKey, PersistentKeepalive: n.PersistentKeepalive, Device: p.DeviceName}
	var side *api.ConnectionSide
	if conn != nil {
		side = &conn.A
		if conn.B.InterfaceID == self.ID {
			side = &conn.B
		}
		if conn.PersistentKeepalive != nil {
			out.PersistentKeepalive = *conn.PersistentKeepalive
		}
	}
	if side != nil && len(side.AllowedIPs) > 0 {
		out.AllowedIPs = slices.Clone(side.AllowedIPs)
	} else if n.Topology == api.TopologyHub && n.HubInterfaceID == p.ID && conn == nil {
		// A spoke reaches the whole network through the hub.
		out.AllowedIPs = append([]string{n.IPv4Range}, p.RoutedSubnets...)
		if n.IPv6Range != "" {
			out.AllowedIPs = slices.Insert(out.AllowedIPs, 1, n.IPv6Range)
		}
	} else {
		out.AllowedIPs = slices.Clone(s.nets(p).allowed)
	}
	if side != nil && side.Endpoint != "" {
		out.Endpoint = side.Endpoint
	} else {
		out.Endpoint = s.endpointOf(p)
	}
	return out
}

// endpointOf returns where peers reach interface p: its host's advertised
// address (with p's listen port unless it names one), else the address the
// server observed the agent at. Devices have none.
func (s *State) endpointOf(p *api.Interface) string {
	h, ok := s.hosts[p.HostID]
	if !ok {
		return ""
	}
	addr := h.AdvertiseAddress
	if addr == "" {
		addr = h.ObservedAddress
	}
	if addr == "" {
		return ""
	}
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), strconv.Itoa(p.ListenPort))
}

// peerEntries returns the entries self gets for peer p, which has a key:
// one, and during p's key rotation a second for its next key, without
// allowed IPs until p switches.
func (s *State) peerEntries(self, p *api.Interface, conn *api.Connection) []api.DesiredPeer {
	peer := s.peerOf(self, p, conn)
	if p.NextPublicKey == "" {
		return []api.DesiredPeer{peer}
	}
	next := peer
	next.PublicKey, next.AllowedIPs = p.NextPublicKey, []string{}
	return []api.DesiredPeer{peer, next}
}

// desired builds the host's desired state; the caller holds s.mu. It costs
// O(the host's peers). Its firewalls are shared with the state: callers
// must not change them.
func (s *State) desired(h *api.Host) *api.DesiredState {
	ds := &api.DesiredState{Index: s.hostIndex[h.ID], HostID: h.ID, RotateKeys: h.RotateKeys, Interfaces: []api.DesiredInterface{}}
	for _, id := range s.hostIfaces[h.ID].sorted() {
		i := s.ifaces[id]
		di := api.DesiredInterface{
			ID: i.ID, Name: i.Name, NetworkID: i.NetworkID, Addresses: slices.Clone(i.Addresses),
			ListenPort: i.ListenPort, MTU: i.MTU, PublicKey: i.PublicKey, Peers: []api.DesiredPeer{},
			NextPublicKey: i.NextPublicKey, SwitchKey: i.NextKeyReady,
		}
		s.eachPeer(i, func(p *api.Interface, c *api.Connection) {
			if p.PublicKey != "" {
				di.Peers = append(di.Peers, s.peerEntries(i, p, c)...)
			}
		})
		slices.SortFunc(di.Peers, api.ComparePeers)
		if fw := s.firewalls[id]; fw != nil {
			di.Firewall = fw.desired // never changed: a new policy is a new one
		}
		ds.Interfaces = append(ds.Interfaces, di)
	}
	return ds
}

// DesiredState returns the host's desired state once its index is above
// index, waiting up to wait for a change (a blocking query). On timeout it
// returns the current state. With delta, it answers with a delta on the
// state of index when it can (see delta). It fails with an error wrapping
// store.ErrUnavailable when the state is cut off from the store it follows
// while it waits.
func (s *State) DesiredState(ctx context.Context, hostID string, index uint64, wait time.Duration, delta bool) (*api.DesiredState, error) {
	s.live.begin(hostID)
	defer func() { s.live.end(hostID, s.opts.Now()) }()
	if s.follow != nil && index > s.Index() {
		// An agent that moved from a server further ahead: catch up rather
		// than answer with an older state.
		if err := s.CatchUp(ctx); err != nil {
			return nil, err
		}
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	cut := s.cutOff()
	for {
		s.mu.RLock()
		h, ok := s.hosts[hostID]
		if !ok {
			s.mu.RUnlock()
			return nil, notFound("host", hostID)
		}
		// An index above the server's is from before a reset: answer at once.
		if s.hostIndex[hostID] > index || wait <= 0 || index > s.index {
			var ds *api.DesiredState
			if delta {
				ds = s.delta(h, index)
			}
			if ds == nil {
				ds = s.desired(h)
			}
			s.mu.RUnlock()
			return ds, nil
		}
		// Taken under the read lock: a commit, which holds the write lock,
		// cannot slip between this check and the wait.
		ch := s.wakeChan(hostID)
		s.mu.RUnlock()
		select {
		case <-ch:
		case <-timer.C:
			wait = 0
		case <-cut:
			return nil, errCutOff // the agent goes to another server
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// wakeChan returns the channel that the next change to the host closes.
func (s *State) wakeChan(hostID string) chan struct{} {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	ch, ok := s.hostWake[hostID]
	if !ok {
		ch = make(chan struct{})
		s.hostWake[hostID] = ch
	}
	return ch
}

// InterfaceConfig renders the wg-quick view of an interface; the private key
// is left as a placeholder, since the server never has it.
func (s *State) InterfaceConfig(id string) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, ok := s.ifaces[id]
	if !ok {
		return "", notFound("interface", id)
	}
	n := s.networks[i.NetworkID]
	var b strings.Builder
	fmt.Fprintf(&b, "# %s in network %s (id %s)\n[Interface]\n", displayName(s, i), n.Name, i.ID)
	fmt.Fprintf(&b, "PrivateKey = <private key of this %s, never sent to the server>\n", kindOf(i))
	fmt.Fprintf(&b, "Address = %s\n", strings.Join(i.Addresses, ", "))
	if i.DeviceName == "" {
		fmt.Fprintf(&b, "ListenPort = %d\n", i.ListenPort)
	}
	fmt.Fprintf(&b, "MTU = %d\n", i.MTU)
	if len(n.DNS) > 0 {
		fmt.Fprintf(&b, "DNS = %s\n", strings.Join(n.DNS, ", "))
	}
	var peers []api.DesiredPeer
	names := map[string]string{}
	s.eachPeer(i, func(p *api.Interface, c *api.Connection) {
		if p.PublicKey != "" {
			peers = append(peers, s.peerOf(i, p, c))
			names[p.ID] = displayName(s, p)
		}
	})
	slices.SortFunc(peers, func(a, b api.DesiredPeer) int { return strings.Compare(a.InterfaceID, b.InterfaceID) })
	for _, p := range peers {
		fmt.Fprintf(&b, "\n# %s\n[Peer]\nPublicKey = %s\nAllowedIPs = %s\n", names[p.InterfaceID], p.PublicKey, strings.Join(p.AllowedIPs, ", "))
		if p.Endpoint != "" {
			fmt.Fprintf(&b, "Endpoint = %s\n", p.Endpoint)
		}
		if p.PersistentKeepalive > 0 {
			fmt.Fprintf(&b, "PersistentKeepalive = %d\n", p.PersistentKeepalive)
		}
	}
	return b.String(), nil
}

func kindOf(i *api.Interface) string {
	if i.DeviceName != "" {
		return "device"
	}
	return "host"
}

func displayName(s *State, i *api.Interface) string {
	if i.DeviceName != "" {
		return i.DeviceName
	}
	if h, ok := s.hosts[i.HostID]; ok {
		return h.Name + "/" + i.Name
	}
	return i.Name
}
