package state

import (
	"slices"
	"sort"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
)

// Delta desired states. The server does not keep what it sent each host:
// it keeps a log of what each recent commit changed, and answers an agent
// that holds the state of index N with the peers of the interfaces changed
// since N. A change to a host's own interfaces, its networks or its
// connections sends the whole state again, as does a base older than the log.

const (
	// maxChangeLog is how many commits the log keeps: enough for the
	// joining of 20,000 hosts (a registration and a key report each).
	maxChangeLog  = 1 << 16
	maxChangedIDs = 1 << 19 // peer entries kept across the log's commits
	maxDeltaPeers = 1024    // changed peers above which a whole state is cheaper
)

// changeLog lists recent commits' changes, oldest first. It covers every
// commit with an index above start, and keeps at most limit commits
// (maxChangeLog; tests lower it).
type changeLog struct {
	start   uint64
	entries []changeEntry
	ids     int // peers held by entries
	limit   int
}

// changeEntry is what one commit changed: the hosts that need their whole
// state again, and the interfaces whose peer entries may have changed, each
// with the network it was in.
type changeEntry struct {
	index uint64
	whole set
	peers []ifaceNet
}

type ifaceNet struct{ id, network string }

// record notes what w changes; called by commit before (old) and after
// (new) the changes are applied, so both sides of a move or delete count.
func (s *State) record(e *changeEntry, w *write) {
	hostOf := func(ifaceID string) {
		if i, ok := s.ifaces[ifaceID]; ok {
			e.peers = append(e.peers, ifaceNet{i.ID, i.NetworkID})
			if i.HostID != "" {
				e.whole.add(i.HostID)
			}
		}
	}
	wholeNet := func(netID string) {
		for id := range s.netIfaces[netID] {
			if h := s.ifaces[id].HostID; h != "" {
				e.whole.add(h)
			}
		}
	}
	for h := range w.hosts {
		e.whole.add(h)
	}
	for h := range w.wake {
		e.whole.add(h)
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
			e.whole.add(c.id)
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

// add appends the entry of a commit, dropping the oldest quarter of the
// log when it outgrows its bounds.
func (l *changeLog) add(e changeEntry) {
	l.entries = append(l.entries, e)
	l.ids += len(e.peers)
	if len(l.entries) <= l.limit && l.ids <= maxChangedIDs {
		return
	}
	n := 0
	for n < len(l.entries) && (len(l.entries)-n > l.limit-l.limit/4 || l.ids > maxChangedIDs) {
		l.ids -= len(l.entries[n].peers)
		n++
	}
	l.start = l.entries[n-1].index
	l.entries = slices.Delete(l.entries, 0, n)
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
	case base < s.changes.start:
		return nil // changes older than the log
	}
	changed := map[string]set{} // network id -> interface ids, the host's networks only
	for id := range s.hostIfaces[h.ID] {
		changed[s.ifaces[id].NetworkID] = set{}
	}
	entries := s.changes.entries
	k := sort.Search(len(entries), func(k int) bool { return entries[k].index > base })
	n := 0
	for _, e := range entries[k:] {
		if _, ok := e.whole[h.ID]; ok {
			return nil
		}
		for _, p := range e.peers {
			if ids, ok := changed[p.network]; ok {
				ids.add(p.id)
				if n++; n > maxDeltaPeers {
					return nil
				}
			}
		}
	}
	for _, id := range s.hostIfaces[h.ID].sorted() {
		i := s.ifaces[id]
		ids := changed[i.NetworkID]
		if len(ids) == 0 {
			continue
		}
		patch := api.PeerPatch{InterfaceID: i.ID}
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
