package state

import (
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/drago-wg/drago/server/api"
)

// Topology answers a summary of a network's graph that costs O(nodes +
// asked edges), never O(pairs): a mesh of 10,000 interfaces has 50 million
// links, which no client draws. Node counts come from each agent's report
// (indexed once per report, see reportIndex); the links of a mesh or hub
// are counted, not listed; edges are listed only as asked and paged.

// Topology query bounds.
const (
	DefaultTopologyNodes = DefaultLimit // as list calls page
	MaxTopologyNodes     = MaxLimit
	DefaultTopologyEdges = 1000
	MaxTopologyEdges     = 10000
)

// TopologyQuery selects what Topology answers.
type TopologyQuery struct {
	Limit, Offset         int    // nodes; Limit 0: DefaultTopologyNodes
	Edges                 string // api.TopologyEdges*; empty for all
	Node                  string // only this interface, and only its links
	EdgeLimit, EdgeOffset int
}

// Topology returns a network's summary, a page of its nodes and the edges q
// asks for, with the freshest handshake either side reported.
func (s *State) Topology(ref string, q TopologyQuery) (*api.Topology, error) {
	switch q.Edges {
	case "":
		q.Edges = api.EdgesAll
	case api.EdgesAll, api.EdgesProblems, api.EdgesNone:
	default:
		return nil, invalid("edges", "%q is not all, problems or none", q.Edges)
	}
	if q.Limit == 0 {
		q.Limit = DefaultTopologyNodes
	}
	if q.Limit < 0 || q.Limit > MaxTopologyNodes {
		return nil, invalid("limit", "%d is not from 0 to %d", q.Limit, MaxTopologyNodes)
	}
	if q.EdgeLimit <= 0 || q.EdgeLimit > MaxTopologyEdges {
		return nil, invalid("edge_limit", "%d is not from 1 to %d", q.EdgeLimit, MaxTopologyEdges)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, err := s.network(ref)
	if err != nil {
		return nil, err
	}
	var node *api.Interface
	if q.Node != "" {
		if node = s.ifaces[q.Node]; node == nil || node.NetworkID != n.ID {
			return nil, invalid("node", "%q is not an interface of network %s", q.Node, n.Name)
		}
	}
	g := s.graph(n)
	t := &api.Topology{Network: *clone(n), Index: s.index, Nodes: []api.TopologyNode{}, Offset: q.Offset, Edges: []api.TopologyEdge{}}
	t.Summary.Nodes = len(g.ids)
	problem := make(map[string]bool)
	page := q.Offset + q.Limit
	for k, id := range g.ids {
		i := s.ifaces[id]
		v := s.nodeCounts(g, i) // the whole node only for the page, below
		switch {
		case i.DeviceName != "":
			t.Summary.Devices++
		case v.Status == api.HostReady:
			t.Summary.Ready++
		case v.Status == api.HostDown:
			t.Summary.Down++
		default:
			t.Summary.Pending++
		}
		t.Summary.Links += v.Peers
		t.Summary.Fresh += v.Fresh
		t.Summary.Stale += v.Stale
		if v.Status == api.HostDown || (i.DeviceName == "" && v.Stale+v.Never > 0) {
			t.Summary.Problems++
			problem[id] = true
		}
		if node == nil && k >= q.Offset && k < page || node != nil && id == node.ID {
			v.InterfaceID, v.HostID, v.Name, v.Device, v.Addresses = i.ID, i.HostID, displayName(s, i), i.DeviceName != "", slices.Clone(i.Addresses)
			t.Nodes = append(t.Nodes, v)
		}
	}
	t.Summary.Links /= 2
	if q.Edges == api.EdgesNone {
		return t, nil
	}
	e := edgeWalk{s: s, g: g, onlyProblems: q.Edges == api.EdgesProblems, skip: q.EdgeOffset, left: q.EdgeLimit, out: &t.Edges}
	switch {
	case node != nil:
		e.links(node, func(*api.Interface) bool { return true })
	case e.onlyProblems:
		// A problem edge has a problem node at one end at least: walk
		// those, each pair once.
		for _, id := range g.ids {
			if problem[id] && !e.links(s.ifaces[id], func(p *api.Interface) bool { return !problem[p.ID] || p.ID > id }) {
				break
			}
		}
	default:
		for _, id := range g.ids {
			if !e.links(s.ifaces[id], func(p *api.Interface) bool { return p.ID > id }) {
				break
			}
		}
	}
	t.EdgesMore = e.more
	slices.SortFunc(t.Edges, func(a, b api.TopologyEdge) int {
		return cmpPair(a.A, a.B, b.A, b.B)
	})
	return t, nil
}

func cmpPair(a1, b1, a2, b2 string) int {
	if c := strings.Compare(a1, a2); c != 0 {
		return c
	}
	return strings.Compare(b1, b2)
}

// graph is what one Topology call needs about a network; the caller holds s.mu.
type graph struct {
	net     *api.Network
	ids     []string // interface ids, sorted
	devices int
	now     time.Time
}

func (s *State) graph(n *api.Network) *graph {
	g := &graph{net: n, ids: s.netIfaces[n.ID].sorted(), now: s.opts.Now()}
	for _, id := range g.ids {
		if s.ifaces[id].DeviceName != "" {
			g.devices++
		}
	}
	return g
}

// nodeCounts answers interface i's status and peer counts, in O(its
// explicit connections + log of its reported peers).
func (s *State) nodeCounts(g *graph, i *api.Interface) api.TopologyNode {
	v := api.TopologyNode{Status: "device"}
	v.Peers = s.countPeers(g, i)
	if h, ok := s.hosts[i.HostID]; ok {
		v.Status = s.hostView(h).Status
		if ix := s.reportIndex(h.ID); ix != nil {
			v.Fresh, v.Stale = ix.counts(i.ID, g.now)
		}
	}
	if i.DeviceName == "" {
		v.Never = max(0, v.Peers-v.Fresh-v.Stale)
	}
	return v
}

// countPeers counts i's peers as eachPeer would list them, in O(i's
// explicit connections): the topology's peers are counted, not walked.
func (s *State) countPeers(g *graph, i *api.Interface) int {
	n, total := g.net, len(g.ids)
	implicit := 0
	switch {
	case n.Topology == api.TopologyMesh && i.DeviceName == "":
		implicit = total - 1
	case n.Topology == api.TopologyMesh:
		implicit = total - g.devices
	case n.Topology == api.TopologyHub && n.HubInterfaceID == i.ID:
		implicit = total - 1
		if i.DeviceName != "" {
			implicit = total - g.devices
		}
	case n.Topology == api.TopologyHub && n.HubInterfaceID != "":
		if hub, ok := s.ifaces[n.HubInterfaceID]; ok && hub.NetworkID == n.ID && implicitPeer(n, i, hub) {
			implicit = 1
		}
	}
	for cid := range s.ifaceConns[i.ID] {
		c := s.conns[cid]
		other := c.B.InterfaceID
		if other == i.ID {
			other = c.A.InterfaceID
		}
		if p, ok := s.ifaces[other]; ok && !implicitPeer(n, i, p) {
			implicit++
		}
	}
	return implicit
}

// edgeWalk collects a page of edges.
type edgeWalk struct {
	s            *State
	g            *graph
	onlyProblems bool
	skip, left   int
	more         bool
	out          *[]api.TopologyEdge
}

// links adds i's links to the peers that keep accepts, and reports whether
// the page has room for more.
func (e *edgeWalk) links(i *api.Interface, keep func(p *api.Interface) bool) bool {
	var found []api.TopologyEdge
	e.s.eachPeer(i, func(p *api.Interface, c *api.Connection) {
		if e.more || !keep(p) {
			return
		}
		hs := e.s.handshake(i, p)
		if e.onlyProblems && !hs.IsZero() && e.g.now.Sub(hs) < api.FreshHandshake {
			return
		}
		a, b := i.ID, p.ID
		if b < a {
			a, b = b, a
		}
		edge := api.TopologyEdge{A: a, B: b, Implicit: c == nil}
		if c != nil {
			edge.ConnectionID = c.ID
		}
		if !hs.IsZero() {
			edge.LastHandshake = &hs
		}
		found = append(found, edge)
	})
	// eachPeer walks a map: sort so that pages are stable.
	slices.SortFunc(found, func(a, b api.TopologyEdge) int { return cmpPair(a.A, a.B, b.A, b.B) })
	for _, edge := range found {
		switch {
		case e.skip > 0:
			e.skip--
		case e.left == 0:
			e.more = true
			return false
		default:
			*e.out = append(*e.out, edge)
			e.left--
		}
	}
	return true
}

// handshake returns the freshest handshake i and p reported of each other.
func (s *State) handshake(i, p *api.Interface) time.Time {
	var hs time.Time
	if ix := s.reportIndex(i.HostID); ix != nil {
		hs = ix.peers[i.ID][p.PublicKey]
	}
	if ix := s.reportIndex(p.HostID); ix != nil {
		if o := ix.peers[p.ID][i.PublicKey]; o.After(hs) {
			hs = o
		}
	}
	return hs
}

// reportIndex is a status report's handshakes, indexed for lookups by peer
// key and counts by age. A report is replaced, never changed, once stored
// (see merge), so its index is built once, on first use.
type reportIndex struct {
	peers map[string]map[string]time.Time // interface id -> peer key -> handshake
	times map[string][]int64              // interface id -> handshakes, unix ns, ascending
}

// reportIndexes maps a report to its index; an entry goes with its report.
var reportIndexes sync.Map // weak.Pointer[api.StatusReport] -> *reportIndex

// reportIndex returns the index of the host's last report, or nil; the
// caller holds s.mu (read or write).
func (s *State) reportIndex(hostID string) *reportIndex {
	r := s.reports[hostID]
	if r == nil {
		return nil
	}
	key := weak.Make(r)
	if v, ok := reportIndexes.Load(key); ok {
		return v.(*reportIndex)
	}
	ix := &reportIndex{peers: map[string]map[string]time.Time{}, times: map[string][]int64{}}
	for _, is := range r.Interfaces {
		m := make(map[string]time.Time, len(is.Peers))
		var ts []int64
		for _, ps := range is.Peers {
			if ps.LastHandshake != nil && !ps.LastHandshake.IsZero() {
				if old, ok := m[ps.PublicKey]; !ok || ps.LastHandshake.After(old) {
					m[ps.PublicKey] = *ps.LastHandshake
				}
			}
		}
		for _, t := range m {
			ts = append(ts, t.UnixNano())
		}
		slices.Sort(ts)
		ix.peers[is.ID], ix.times[is.ID] = m, ts
	}
	if v, loaded := reportIndexes.LoadOrStore(key, ix); loaded {
		return v.(*reportIndex)
	}
	runtime.AddCleanup(r, func(k weak.Pointer[api.StatusReport]) { reportIndexes.Delete(k) }, key)
	return ix
}

// counts returns how many of the interface's reported handshakes are fresh
// and how many stale at now, in O(log peers).
func (ix *reportIndex) counts(iface string, now time.Time) (fresh, stale int) {
	ts := ix.times[iface]
	cut := now.Add(-api.FreshHandshake).UnixNano()
	k := sort.Search(len(ts), func(j int) bool { return ts[j] > cut })
	return len(ts) - k, k
}
