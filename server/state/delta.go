package state

import (
	"slices"
	"sort"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
)

// Delta desired states. The server does not keep what it sent each host:
// it keeps a log of what recent commits changed, per network, and answers
// an agent that holds the state of index N with the peers of its networks'
// interfaces changed since N, at a cost of O(log + those changes). A change
// to a host's own interfaces, its networks or its connections sends the
// whole state again, as does a base older than the log. A changed firewall
// (the compiled access policy) is sent as a patch of its interface.

const (
	// maxChangeLog is how many changes the log keeps: enough for 20,000
	// hosts joining (a registration and a key report each).
	maxChangeLog  = 1 << 16
	maxDeltaPeers = 1024 // changed peers above which a whole state is cheaper
)

// changeLog is what recent commits changed. It covers every commit with an
// index above start.
type changeLog struct {
	start   uint64
	limit   int                          // changes kept: maxChangeLog; tests lower it
	wholeAt map[string]uint64            // host id -> last commit that needs its whole state sent
	fwAt    map[string]uint64            // interface id -> last commit that changed its firewall
	setAt   map[string]map[string]uint64 // interface id -> set name -> last commit that changed it there
	nets    map[string][]netChange       // network id -> changed interfaces, oldest first
	order   []netChange                  // every change, oldest first, for trimming
}

// netChange is an interface of a network whose peer entries a commit may
// have changed.
type netChange struct {
	index          uint64
	network, iface string
}

func newChangeLog(start uint64) changeLog {
	return changeLog{start: start, limit: maxChangeLog, wholeAt: map[string]uint64{}, fwAt: map[string]uint64{}, setAt: map[string]map[string]uint64{}, nets: map[string][]netChange{}}
}

// reset forgets every change: a delta from an index before start is then
// a whole state.
func (l *changeLog) reset(start uint64) {
	limit := l.limit
	*l = newChangeLog(start)
	l.limit = limit
}

// firewall notes that commit index changed the firewall of interface iface
// from old (nil: none) to fw, and which of its sets changed or came.
func (l *changeLog) firewall(iface string, old, fw *api.DesiredFirewall, index uint64) {
	l.fwAt[iface] = index
	had := map[string][]string{}
	if old != nil {
		for _, s := range old.Sets {
			had[s.Name] = s.Addresses
		}
	}
	at := map[string]uint64{}
	for _, s := range fw.Sets {
		if prev, ok := had[s.Name]; ok && slices.Equal(prev, s.Addresses) {
			at[s.Name] = l.setAt[iface][s.Name]
		} else {
			at[s.Name] = index
		}
	}
	l.setAt[iface] = at
}

// firewallSince returns fw with only the sets that changed at iface since
// commit base (a delta's firewall: api.PeerPatch).
func (l *changeLog) firewallSince(iface string, fw *api.DesiredFirewall, base uint64) *api.DesiredFirewall {
	out := *fw
	out.Sets = nil
	for _, s := range fw.Sets {
		if l.setAt[iface][s.Name] > base {
			out.Sets = append(out.Sets, s)
		}
	}
	return &out
}

// forgetIface drops a deleted interface.
func (l *changeLog) forgetIface(iface string) {
	delete(l.fwAt, iface)
	delete(l.setAt, iface)
}

// whole notes that commit index needs the host's whole state sent.
func (l *changeLog) whole(host string, index uint64) { l.wholeAt[host] = index }

// peer notes that commit index may have changed the peer entries of iface,
// an interface of network.
func (l *changeLog) peer(network, iface string, index uint64) {
	c := netChange{index, network, iface}
	if list := l.nets[network]; len(list) > 0 && list[len(list)-1] == c {
		return // noted before the commit applied
	}
	l.nets[network] = append(l.nets[network], c)
	l.order = append(l.order, c)
	if len(l.order) <= l.limit {
		return
	}
	// Drop the oldest quarter at once.
	drop := l.order[:len(l.order)-l.limit*3/4]
	for _, c := range drop {
		if list := l.nets[c.network][1:]; len(list) > 0 {
			l.nets[c.network] = list
		} else {
			delete(l.nets, c.network)
		}
	}
	l.start = drop[len(drop)-1].index
	l.order = slices.Delete(l.order, 0, len(drop))
}

// forget drops a deleted host.
func (l *changeLog) forget(host string) { delete(l.wholeAt, host) }

// record notes what w changes; called by commit before (old) and after
// (new) the changes are applied, so both sides of a move or delete count.
func (s *State) record(w *write) {
	l := &s.changes
	whole := func(h string) {
		if _, ok := s.hosts[h]; ok {
			l.whole(h, w.index)
		}
	}
	hostOf := func(ifaceID string) {
		if i, ok := s.ifaces[ifaceID]; ok {
			l.peer(i.NetworkID, i.ID, w.index)
			whole(i.HostID)
		}
	}
	wholeNet := func(netID string) {
		for id := range s.netIfaces[netID] {
			whole(s.ifaces[id].HostID)
		}
	}
	for h := range w.hosts {
		whole(h)
	}
	for h := range w.wake {
		whole(h)
	}
	for n := range w.nets {
		wholeNet(n)
	}
	for id := range w.ifaces {
		hostOf(id)
	}
	for _, c := range w.changes {
		switch c.kind {
		case store.KindInterfaces:
			hostOf(c.id)
		case store.KindHosts:
			// Its interfaces' endpoints come from the host's addresses.
			whole(c.id)
			for id := range s.hostIfaces[c.id] {
				hostOf(id)
			}
		case store.KindConnections:
			if cn, ok := s.conns[c.id]; ok {
				hostOf(cn.A.InterfaceID)
				hostOf(cn.B.InterfaceID)
			}
		case store.KindNetworks:
			wholeNet(c.id)
		}
	}
}

// delta returns the host's desired state as a delta on the state of index
// base, or nil when the whole state must be sent; the caller holds s.mu.
func (s *State) delta(h *api.Host, base uint64) *api.DesiredState {
	idx := s.hostIndex[h.ID]
	ds := &api.DesiredState{Index: idx, HostID: h.ID, BaseIndex: base}
	switch {
	case base == 0 || base > s.index || idx < base:
		return nil // no base, or one from before a reset
	case idx == base:
		return ds // nothing changed for this host since base
	case base < s.changes.start || s.changes.wholeAt[h.ID] > base:
		return nil // changes older than the log, or to the host's own state
	}
	changed := map[string]set{} // network id -> interface ids
	n := 0
	for id := range s.hostIfaces[h.ID] {
		netID := s.ifaces[id].NetworkID
		if _, done := changed[netID]; done {
			continue
		}
		ids := set{}
		list := s.changes.nets[netID]
		k := sort.Search(len(list), func(k int) bool { return list[k].index > base })
		for _, c := range list[k:] {
			ids.add(c.iface)
			if n++; n > maxDeltaPeers {
				return nil
			}
		}
		changed[netID] = ids
	}
	for _, id := range s.hostIfaces[h.ID].sorted() {
		i := s.ifaces[id]
		ids := changed[i.NetworkID]
		patch := api.PeerPatch{InterfaceID: i.ID}
		if s.changes.fwAt[id] > base {
			fw := s.firewalls[id]
			if fw == nil {
				return nil // a firewall gone is sent as a whole state
			}
			patch.Firewall = s.changes.firewallSince(id, fw.desired, base)
		} else if len(ids) == 0 {
			continue
		}
		for _, pid := range ids.sorted() {
			p, ok := s.ifaces[pid]
			var conn *api.Connection
			if ok {
				ok, conn = s.link(i, p)
			}
			if !ok || p.PublicKey == "" {
				patch.Remove = append(patch.Remove, pid)
				continue
			}
			patch.Peers = append(patch.Peers, s.peerEntries(i, p, conn)...)
		}
		ds.Patches = append(ds.Patches, patch)
	}
	return ds
}

// link reports whether p is a peer of i, with the explicit connection
// between them if there is one.
func (s *State) link(i, p *api.Interface) (bool, *api.Connection) {
	conns := s.ifaceConns[i.ID]
	if other := s.ifaceConns[p.ID]; len(other) < len(conns) {
		conns = other
	}
	for cid := range conns {
		c := s.conns[cid]
		if (c.A.InterfaceID == i.ID && c.B.InterfaceID == p.ID) || (c.A.InterfaceID == p.ID && c.B.InterfaceID == i.ID) {
			return true, c
		}
	}
	return implicitPeer(s.networks[i.NetworkID], i, p), nil
}

// implicitPeer reports whether network n's topology makes p a peer of i.
// Two plain devices know no endpoint of each other: no implicit link.
func implicitPeer(n *api.Network, i, p *api.Interface) bool {
	if n == nil || p.ID == i.ID || p.NetworkID != n.ID || (p.DeviceName != "" && i.DeviceName != "") {
		return false
	}
	switch n.Topology {
	case api.TopologyMesh:
		return true
	case api.TopologyHub:
		return n.HubInterfaceID != "" && (n.HubInterfaceID == i.ID || n.HubInterfaceID == p.ID)
	}
	return false
}
