package state

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/drago-wg/drago/server/api"
)

// Counter history: the server keeps, in memory, a point a minute for the
// last hour of each host's peer counters (summed) and of each peering (an
// interface and a peer interface), fed by the status reports it takes
// anyway. Nothing is written to the store: the server saves it to a file of
// its own (SaveHistory) and loads it at start (LoadHistory), so the last
// hour survives a restart.

// Counter history bounds.
const (
	// HistoryPoints is how many one-minute points a series keeps.
	HistoryPoints = 60
	// MaxPeerSeries bounds the peerings with a history (1.5 KB each):
	// beyond it, new peerings get none (hosts always have theirs).
	MaxPeerSeries = 10000
)

// point is one minute of counters: compact (24 bytes; a series of 60 is
// 1.5 KB), as a fleet holds many.
type point struct {
	minute int32  // Unix minutes
	hs     uint32 // last handshake, Unix seconds (until 2106); 0: none
	rx, tx int64
}

// series is a ring of the last HistoryPoints minutes.
type series struct {
	pts  [HistoryPoints]point
	n    int // points held
	next int // where the next point goes
}

// add records the counters of the minute of now, replacing the point of
// the same minute.
func (r *series) add(now time.Time, hs *time.Time, rx, tx int64) {
	m := int32(now.Unix() / 60)
	p := point{minute: m, rx: rx, tx: tx}
	if hs != nil && hs.Unix() > 0 && hs.Unix() <= math.MaxUint32 {
		p.hs = uint32(hs.Unix())
	}
	if r.n > 0 {
		last := (r.next + HistoryPoints - 1) % HistoryPoints
		if r.pts[last].minute == m {
			r.pts[last] = p
			return
		}
	}
	r.push(p)
}

// push appends p as the newest point, over the oldest when the ring is full.
func (r *series) push(p point) {
	r.pts[r.next] = p
	r.next = (r.next + 1) % HistoryPoints
	r.n = min(r.n+1, HistoryPoints)
}

// at returns the k-th oldest point held.
func (r *series) at(k int) point { return r.pts[(r.next+HistoryPoints-r.n+k)%HistoryPoints] }

// points returns the points of the last HistoryPoints minutes before now,
// oldest first.
func (r *series) points(now time.Time) []api.CounterPoint {
	from := int32(now.Unix()/60) - HistoryPoints
	out := make([]api.CounterPoint, 0, r.n)
	for k := range r.n {
		p := r.at(k)
		if p.minute <= from {
			continue
		}
		cp := api.CounterPoint{Time: time.Unix(int64(p.minute)*60, 0).UTC(), RxBytes: p.rx, TxBytes: p.tx}
		if p.hs != 0 {
			hs := time.Unix(int64(p.hs), 0).UTC()
			cp.LastHandshake = &hs
		}
		out = append(out, cp)
	}
	return out
}

// peering is one side of a peering: an interface and the peer interface
// its agent reports on.
type peering struct{ iface, peer string }

// hostHistory is the counter history of one host.
type hostHistory struct {
	total series
	peers map[peering]*series
}

// history is the counter history of every host.
type history struct {
	hosts map[string]*hostHistory
	peers int // series in all hosts' peers
}

// recordHistory adds a point for the host and each of its peerings from the
// host's merged report; a peering the report no longer lists loses its
// series. The caller holds s.mu for writing.
func (s *State) recordHistory(hostID string, r *api.StatusReport, now time.Time) {
	h := &s.history
	if h.hosts == nil {
		h.hosts = map[string]*hostHistory{}
	}
	hh := h.hosts[hostID]
	if hh == nil {
		hh = &hostHistory{peers: map[peering]*series{}}
		h.hosts[hostID] = hh
	}
	var rx, tx int64
	var newest *time.Time
	seen := make(map[peering]bool, len(hh.peers))
	for _, is := range r.Interfaces {
		i, ok := s.ifaces[is.ID]
		if !ok {
			continue
		}
		for _, p := range is.Peers {
			rx, tx = rx+p.RxBytes, tx+p.TxBytes
			if p.LastHandshake != nil && (newest == nil || p.LastHandshake.After(*newest)) {
				newest = p.LastHandshake
			}
			owner, ok := s.keyOwner[netKey{i.NetworkID, p.PublicKey}]
			if !ok {
				continue
			}
			k := peering{is.ID, owner}
			seen[k] = true
			sr := hh.peers[k]
			if sr == nil {
				if h.peers >= MaxPeerSeries {
					continue
				}
				sr = &series{}
				hh.peers[k] = sr
				h.peers++
			}
			sr.add(now, p.LastHandshake, p.RxBytes, p.TxBytes)
		}
	}
	for k := range hh.peers {
		if !seen[k] {
			delete(hh.peers, k)
			h.peers--
		}
	}
	hh.total.add(now, newest, rx, tx)
}

// forgetHistory drops a deleted host's history.
func (s *State) forgetHistory(hostID string) {
	if hh, ok := s.history.hosts[hostID]; ok {
		s.history.peers -= len(hh.peers)
		delete(s.history.hosts, hostID)
	}
}

// HostHistory returns the last hour of a host's counters: its totals and
// each peering its agent reports, for p with read access to the host.
func (s *State) HostHistory(p *Principal, ref string) (*api.HostHistory, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h, err := s.hostFor(p, ref, AccessRead)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	out := &api.HostHistory{HostID: h.ID, Points: []api.CounterPoint{}, Peers: []api.PeerHistory{}}
	hh := s.history.hosts[h.ID]
	if hh == nil {
		return out, nil
	}
	out.Points = hh.total.points(now)
	for k, sr := range hh.peers {
		ph := api.PeerHistory{InterfaceID: k.iface, PeerInterfaceID: k.peer, Points: sr.points(now)}
		if p, ok := s.ifaces[k.peer]; ok {
			ph.PeerPublicKey = p.PublicKey
		}
		out.Peers = append(out.Peers, ph)
	}
	slices.SortFunc(out.Peers, func(a, b api.PeerHistory) int {
		return cmp.Or(strings.Compare(a.InterfaceID, b.InterfaceID), strings.Compare(a.PeerInterfaceID, b.PeerInterfaceID))
	})
	return out, nil
}

// ConnectionHistory returns the last hour of a connection's counters as
// each side's agent reports them.
func (s *State) ConnectionHistory(id string) (*api.ConnectionHistory, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.conns[id]
	if !ok {
		return nil, notFound("connection", id)
	}
	out := s.peeringHistory(c.A.InterfaceID, c.B.InterfaceID)
	out.ConnectionID = c.ID
	return out, nil
}

// PeeringHistory returns the last hour of the counters between interface a
// and interface b of its network, stored connection or not (a mesh or hub
// topology's implicit ones have no id): A is a's agent's points about b,
// B the reverse.
func (s *State) PeeringHistory(a, b string) (*api.ConnectionHistory, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ia, ok := s.ifaces[a]
	if !ok {
		return nil, notFound("interface", a)
	}
	if ib, ok := s.ifaces[b]; !ok || ib.NetworkID != ia.NetworkID || b == a {
		return nil, invalid("peer", "%q is not another interface of the network of %s", b, a)
	}
	return s.peeringHistory(a, b), nil
}

// peeringHistory returns each side's series of the peering a-b. The caller
// holds s.mu.
func (s *State) peeringHistory(a, b string) *api.ConnectionHistory {
	now := s.opts.Now()
	side := func(from, to string) []api.CounterPoint {
		i, ok := s.ifaces[from]
		if !ok || i.HostID == "" {
			return []api.CounterPoint{}
		}
		if hh := s.history.hosts[i.HostID]; hh != nil {
			if sr := hh.peers[peering{from, to}]; sr != nil {
				return sr.points(now)
			}
		}
		return []api.CounterPoint{}
	}
	return &api.ConnectionHistory{A: side(a, b), B: side(b, a)}
}

// savedHistory is the file format of SaveHistory: each host's total series
// and its peerings' series, each point [Unix minute, last handshake in Unix
// seconds or 0, rx bytes, tx bytes], oldest first.
type savedHistory struct {
	Version int                  `json:"version"`
	Hosts   map[string]savedHost `json:"hosts"`
}

type savedHost struct {
	Total []savedPoint  `json:"total"`
	Peers []savedSeries `json:"peers,omitempty"`
}

type savedSeries struct {
	Interface string       `json:"interface_id"`
	Peer      string       `json:"peer_interface_id"`
	Points    []savedPoint `json:"points"`
}

type savedPoint [4]int64

// historyVersion is the version of the saved history's format.
const historyVersion = 1

// saved returns the series' points, oldest first.
func (r *series) saved() []savedPoint {
	out := make([]savedPoint, r.n)
	for k := range r.n {
		p := r.at(k)
		out[k] = savedPoint{int64(p.minute), int64(p.hs), p.rx, p.tx}
	}
	return out
}

// SaveHistory writes the counter history as JSON.
func (s *State) SaveHistory(w io.Writer) error {
	s.mu.RLock()
	out := savedHistory{Version: historyVersion, Hosts: make(map[string]savedHost, len(s.history.hosts))}
	for id, hh := range s.history.hosts {
		sh := savedHost{Total: hh.total.saved()}
		for k, sr := range hh.peers {
			sh.Peers = append(sh.Peers, savedSeries{Interface: k.iface, Peer: k.peer, Points: sr.saved()})
		}
		out.Hosts[id] = sh
	}
	s.mu.RUnlock()
	return json.NewEncoder(w).Encode(out)
}

// LoadHistory replaces the counter history with one SaveHistory wrote. It
// checks everything first and changes nothing when a part is wrong (the
// error names it); the hosts and interfaces deleted since are left out,
// and so are points older than an hour.
func (s *State) LoadHistory(r io.Reader) error {
	var in savedHistory
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return fmt.Errorf("decoding the counter history: %w", err)
	}
	if in.Version != historyVersion {
		return fmt.Errorf("counter history: version %d, want %d", in.Version, historyVersion)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := int32(s.opts.Now().Unix() / 60)
	h := history{hosts: map[string]*hostHistory{}}
	for _, id := range slices.Sorted(maps.Keys(in.Hosts)) {
		sh := in.Hosts[id]
		where := "hosts." + id
		_, known := s.hosts[id]
		hh := &hostHistory{peers: map[peering]*series{}}
		if err := hh.total.load(sh.Total, now); err != nil {
			return fmt.Errorf("counter history: %s.total: %w", where, err)
		}
		for k, ps := range sh.Peers {
			key := peering{ps.Interface, ps.Peer}
			if _, dup := hh.peers[key]; dup {
				return fmt.Errorf("counter history: %s.peers[%d]: a second series of the peering", where, k)
			}
			sr := &series{}
			if err := sr.load(ps.Points, now); err != nil {
				return fmt.Errorf("counter history: %s.peers[%d]: %w", where, k, err)
			}
			if i, ok := s.ifaces[ps.Interface]; ok && known && i.HostID == id && s.ifaces[ps.Peer] != nil && h.peers < MaxPeerSeries {
				hh.peers[key] = sr
				h.peers++
			}
		}
		if known {
			h.hosts[id] = hh
		}
	}
	s.history = h
	return nil
}

// load sets the series to saved points: at most HistoryPoints, in order of
// their minutes, none after now, counters not negative. Points of minutes
// an hour before now or older are left out.
func (r *series) load(pts []savedPoint, now int32) error {
	if len(pts) > HistoryPoints {
		return fmt.Errorf("%d points, at most %d", len(pts), HistoryPoints)
	}
	*r = series{}
	prev := int64(0)
	for k, p := range pts {
		switch {
		case p[0] <= prev || p[0] > int64(now):
			return fmt.Errorf("points[%d]: minute %d is not after the last point's and before now", k, p[0])
		case p[1] < 0 || p[2] < 0 || p[3] < 0:
			return fmt.Errorf("points[%d]: a negative handshake time or counter", k)
		case p[1] > math.MaxUint32:
			return fmt.Errorf("points[%d]: handshake time %d is after 2106", k, p[1])
		}
		prev = p[0]
		if p[0] <= int64(now)-HistoryPoints {
			continue
		}
		r.push(point{minute: int32(p[0]), hs: uint32(p[1]), rx: p[2], tx: p[3]})
	}
	return nil
}
