package state

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unique"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
)

// Register creates a host for an agent presenting join token joinID, with an
// interface in each of the token's networks, and returns the host credential
// (shown once). observed is the IP the request came from. A retry of a
// registration the server committed but the agent never got the answer of
// (same request_id and join token, host not reported yet) gets the same host
// with a new credential, without using the join token again.
func (s *State) Register(joinID string, r api.RegisterRequest, observed string) (*api.RegisterResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.joins[joinID]
	if !ok {
		return nil, forbidden("join token was revoked")
	}
	if err := checkRequestID("request_id", r.RequestID); err != nil {
		return nil, err
	}
	if out, ok, err := s.reRegister(joinID, r); ok {
		return out, err
	}
	w := s.begin()
	if err := s.joinUsable(j, w.now); err != nil {
		return nil, err
	}
	h := &api.Host{
		Name: r.Name, Labels: maps.Clone(j.Labels), AdvertiseAddress: r.AdvertiseAddress, ObservedAddress: observed,
		OS: r.OS, Arch: r.Arch, AgentVersion: r.AgentVersion, Status: api.HostPending,
	}
	for _, k := range slices.Sorted(maps.Keys(r.Labels)) {
		// The join token's labels are the administrator's word: an agent
		// adds labels but never changes one the token sets.
		if v, ok := j.Labels[k]; ok && v != r.Labels[k] {
			return nil, forbiddenField("labels."+k, "the join token sets this label to %q", v)
		}
		if h.Labels == nil {
			h.Labels = map[string]string{}
		}
		h.Labels[k] = r.Labels[k]
	}
	if err := s.checkHost(h, nil); err != nil {
		return nil, err
	}
	if ok, _ := path.Match(cmp.Or(j.NamePattern, "*"), h.Name); !ok {
		return nil, forbiddenField("name", "the join token only registers host names matching %q", j.NamePattern)
	}
	if err := checkAgentInfo(r.OS, r.Arch, r.AgentVersion, ""); err != nil {
		return nil, err
	}
	w.meta(&h.Meta)
	w.put(store.KindHosts, h.ID, h, "created", h.Name)
	for _, nid := range j.Networks {
		if _, ok := s.networks[nid]; !ok {
			continue // network deleted since the token was made
		}
		if _, err := s.addInterface(w, h, api.Interface{NetworkID: nid}); err != nil {
			return nil, err
		}
	}
	secret, hash := newSecret(prefixHost, h.ID)
	cred := &credRecord{HostID: h.ID, Hash: hash}
	if r.RequestID != "" {
		cred.RequestHash, cred.JoinID = hashOf(r.RequestID), joinID
	}
	w.put(store.KindCredentials, h.ID, cred, "", "")
	j2 := *j
	j2.Uses++
	w.put(store.KindJoinTokens, j.ID, &j2, "updated", j.Name)
	w.hosts.add(h.ID)
	if err := w.commit(); err != nil {
		return nil, err
	}
	return &api.RegisterResponse{HostID: h.ID, Credential: secret}, nil
}

func checkAgentInfo(os, arch, version, backend string) error {
	for _, f := range []struct{ name, v string }{{"os", os}, {"arch", arch}, {"agent_version", version}, {"backend", backend}} {
		if len(f.v) > 64 {
			return invalid(f.name, "is longer than 64 characters")
		}
		if err := checkPrintable(f.name, f.v); err != nil {
			return err
		}
	}
	return nil
}

// ReportStatus records an agent's status report: the heartbeat, the host's
// facts and its interfaces' public keys. A changed key or address is a write
// that wakes the host's peers; a plain heartbeat is not.
func (s *State) ReportStatus(hostID string, r api.StatusReport, observed string) error {
	if err := checkReport(&r); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.hosts[hostID]
	if !ok {
		return notFound("host", hostID)
	}
	kept := s.reports[hostID]
	if r.PeersSince != 0 && (kept == nil || kept.Seq != r.PeersSince) {
		return conflict("peers_since", "the server holds no report %d of this host; send a whole report", r.PeersSince)
	}
	w := s.begin()
	var keyed []*api.Interface
	for k, is := range r.Interfaces {
		i, ok := s.ifaces[is.ID]
		if !ok || i.HostID != hostID {
			return invalid("interfaces["+strconv.Itoa(k)+"].id", "%q is not an interface of this host", is.ID)
		}
		// Counting the peers walks them: only a report above the floor of
		// maxReportPeers needs it (heartbeats list a few changed peers).
		if len(is.Peers) > maxReportPeers(0) {
			if max := maxReportPeers(s.peerCount(i)); len(is.Peers) > max {
				return invalid("interfaces["+strconv.Itoa(k)+"].peers", "lists %d peers; the interface has room for %d", len(is.Peers), max)
			}
		}
		i2 := rotate(i, is, w)
		if i2 != nil && i2.NextPublicKey != "" && i2.NextPublicKey != i.NextPublicKey && s.hasDevicePeer(i) {
			// A plain device holds this key in its config and would lose the
			// tunnel: the next key is not taken, so the agent never switches.
			i2 = nil
		}
		if i2 == nil {
			continue
		}
		field := "interfaces[" + strconv.Itoa(k) + "]"
		if err := s.checkKeyFree(field+".public_key", i.NetworkID, i2.PublicKey, i.ID); err != nil {
			return err
		}
		if err := s.checkKeyFree(field+".next_public_key", i.NetworkID, i2.NextPublicKey, i.ID); err != nil {
			return err
		}
		keyed = append(keyed, i2)
	}
	h := *old
	for _, i := range keyed {
		if i.NextPublicKey != "" {
			h.RotateKeys = false // the agent has started the asked rotation
		}
	}
	h.OS, h.Arch, h.AgentVersion, h.Backend = r.OS, r.Arch, r.AgentVersion, r.Backend
	if r.AdvertiseAddress != "" {
		h.AdvertiseAddress = r.AdvertiseAddress
	}
	if observed != "" {
		h.ObservedAddress = observed
	}
	now := w.now
	if !hostFactsEqual(&h, old) || h.RotateKeys != old.RotateKeys {
		h2 := clone(&h) // h shares the old host's maps
		h2.LastSeen = &now
		w.meta(&h2.Meta)
		w.put(store.KindHosts, h2.ID, h2, "updated", h2.Name)
		w.hosts.add(h2.ID)
	}
	for _, i := range keyed {
		w.meta(&i.Meta)
		if i.NextPublicKey != "" && i.NextKeyIndex == 0 {
			i.NextKeyIndex = w.index
			i.NextKeyReady = !s.hasAgentPeer(i) // nobody to wait for
		}
		w.put(store.KindInterfaces, i.ID, i, "updated", i.Name)
		w.ifaces.add(i.ID)
	}
	if r.AppliedIndex > s.appliedIndex(hostID) {
		s.markKeysReady(w, hostID, r.AppliedIndex)
	}
	if c := s.creds[hostID]; c != nil && c.RequestHash != "" {
		// The agent got its credential: no retry of its registration is due.
		c2 := *c
		c2.RequestHash, c2.JoinID = "", ""
		w.put(store.KindCredentials, hostID, &c2, "", "")
	}
	if err := w.commit(); err != nil {
		return err
	}
	s.hosts[hostID].LastSeen = &now // a heartbeat alone is kept in memory only
	s.live.saw(hostID, now)
	s.reports[hostID] = merge(kept, r)
	s.recordHistory(hostID, s.reports[hostID], now)
	return nil
}

// checkReport checks what a status report says, apart from which
// interfaces it names: agent facts, address and keys.
func checkReport(r *api.StatusReport) error {
	if err := checkAgentInfo(r.OS, r.Arch, r.AgentVersion, r.Backend); err != nil {
		return err
	}
	if err := checkAddress("advertise_address", r.AdvertiseAddress); err != nil {
		return err
	}
	for k, is := range r.Interfaces {
		field := "interfaces[" + strconv.Itoa(k) + "]"
		var err error
		check := func(name, key string) {
			if err == nil {
				_, err = checkKey(field+name, key)
			}
		}
		if is.PublicKey != "" { // none yet
			check(".public_key", is.PublicKey)
		}
		if is.NextPublicKey != "" { // no rotation
			check(".next_public_key", is.NextPublicKey)
		}
		for p, ps := range is.Peers {
			check(".peers["+strconv.Itoa(p)+"].public_key", ps.PublicKey)
		}
		for p, key := range is.RemovedPeers {
			check(".removed_peers["+strconv.Itoa(p)+"]", key)
		}
		if err != nil {
			return err
		}
		if len(is.RemovedPeers) > 0 && r.PeersSince == 0 {
			return invalid(field+".removed_peers", "needs peers_since: a whole report lists the peers there are")
		}
		if err := checkFirewallStatus(field+".firewall", is.Firewall); err != nil {
			return err
		}
	}
	return nil
}

func hostFactsEqual(a, b *api.Host) bool {
	return a.OS == b.OS && a.Arch == b.Arch && a.AgentVersion == b.AgentVersion && a.Backend == b.Backend &&
		a.AdvertiseAddress == b.AdvertiseAddress && a.ObservedAddress == b.ObservedAddress
}

// CreateDevice registers a plain WireGuard device by its public key.
func (s *State) CreateDevice(d api.DeviceRequest) (*api.Interface, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.Network == "" {
		return nil, invalid("network", "is required")
	}
	if err := checkObjectName("name", d.Name, "a device name (letters, digits, '.', '_', '-')"); err != nil {
		return nil, err
	}
	if _, err := checkKey("public_key", d.PublicKey); err != nil {
		return nil, err
	}
	if n, err := s.network(d.Network); err == nil {
		if err := s.checkKeyFree("public_key", n.ID, d.PublicKey, ""); err != nil {
			return nil, err
		}
	}
	i := api.Interface{NetworkID: d.Network, Name: "wg0", DeviceName: d.Name, PublicKey: d.PublicKey, ListenPort: 51820}
	if d.Address != "" {
		i.Addresses = []string{d.Address}
	}
	w := s.begin()
	for _, o := range s.ifaces {
		if o.DeviceName == d.Name && (o.NetworkID == d.Network || s.networks[o.NetworkID].Name == d.Network) {
			return nil, conflict("name", "network already has a device named %q", d.Name)
		}
	}
	out, err := s.addInterface(w, nil, i)
	if e, ok := err.(*Error); ok {
		// The device request names these fields differently.
		for from, to := range map[string]string{"network_id": "network", "addresses[0]": "address"} {
			if e.Field == from {
				e.Field = to
				e.Message = strings.Replace(e.Message, from+":", to+":", 1)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if err := w.commit(); err != nil {
		return nil, err
	}
	v := s.ifaceView(out)
	return &v, nil
}

// Overview counts the objects p may see and their hosts' states.
func (s *State) Overview(p *Principal) api.Overview {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o := api.Overview{Version: api.Version, Index: s.index}
	for id := range s.networks {
		if p.Allowed("networks", AccessRead, id) {
			o.Networks++
		}
	}
	for _, h := range s.hosts {
		if !p.AllowedSome("hosts", AccessRead, s.hostNets(h.ID)) {
			continue
		}
		o.Hosts++
		switch s.hostView(h).Status {
		case api.HostReady:
			o.HostsReady++
		case api.HostDown:
			o.HostsDown++
		default:
			o.Pending++
		}
	}
	for _, i := range s.ifaces {
		if !p.Allowed("interfaces", AccessRead, i.NetworkID) {
			continue
		}
		if i.DeviceName != "" {
			o.Devices++
		} else {
			o.Interfaces++
		}
		if s.firewallBehind(i) {
			o.FirewallBehind++
		}
	}
	return o
}

// Counts are the whole fleet's numbers a metrics scrape reads.
type Counts struct {
	Index                               uint64
	HostsReady, HostsDown, HostsPending int
	// KeysStale counts the interfaces whose key is overdue for rotation.
	KeysStale int
}

// Counts counts hosts by status and overdue keys, under the read lock.
func (s *State) Counts() Counts {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := Counts{Index: s.index}
	now := s.opts.Now()
	for _, h := range s.hosts {
		last := s.lastSeen(h, now)
		switch {
		case last == nil:
			c.HostsPending++
		case now.Sub(*last) > s.opts.HeartbeatGrace:
			c.HostsDown++
		default:
			c.HostsReady++
		}
	}
	for _, i := range s.ifaces {
		if s.keyStale(i) {
			c.KeysStale++
		}
	}
	return c
}

// Events returns the recent changes after index that p may see, waiting up
// to wait for one. It fails with errCutOff when the state is cut off from
// the store it follows while it waits.
func (s *State) Events(ctx context.Context, p *Principal, index uint64, wait time.Duration) (api.Events, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	cut := s.cutOff()
	for {
		s.mu.RLock()
		if index > s.index {
			index, wait = 0, 0 // an index from before a reset: everything kept, at once
		}
		k := sort.Search(len(s.events), func(k int) bool { return s.events[k].Index > index })
		out := api.Events{Index: s.index}
		for _, e := range s.events[k:] {
			if p.AllowedSome(eventResource[e.Kind], AccessRead, e.Networks) {
				out.Events = append(out.Events, e)
			}
		}
		ch := s.eventWake
		s.mu.RUnlock()
		if len(out.Events) > 0 || wait <= 0 {
			if out.Events == nil {
				out.Events = []api.Event{}
			}
			return out, nil
		}
		select {
		case <-ch:
		case <-timer.C:
			wait = 0
		case <-cut:
			return api.Events{}, errCutOff
		case <-ctx.Done():
			wait = 0
		}
	}
}

// eventResource maps an event kind to the resource whose read access shows it.
var eventResource = map[string]string{
	"network": "networks", "host": "hosts", "interface": "interfaces",
	"connection": "connections", "token": "tokens", "join_token": "tokens", "rule": "rules",
}

// eventNets fills in the networks of w's events, those of deletions
// (before is true, before the write applies) or the others (after).
func (s *State) eventNets(w *write, before bool) {
	for k := range w.events {
		e := &w.events[k]
		if (e.Action == "deleted") != before {
			continue
		}
		switch e.Kind {
		case "network":
			e.Networks = []string{e.ID}
		case "host":
			e.Networks = s.hostNets(e.ID)
		case "interface":
			if i, ok := s.ifaces[e.ID]; ok {
				e.Networks = []string{i.NetworkID}
			}
		case "connection":
			if c, ok := s.conns[e.ID]; ok {
				e.Networks = []string{c.NetworkID}
			}
		case "rule":
			if r, ok := s.rules[e.ID]; ok {
				e.Networks = []string{r.NetworkID}
			}
		case "join_token":
			if j, ok := s.joins[e.ID]; ok {
				e.Networks = slices.Clone(j.Networks)
			}
		}
	}
}

// rotate returns the interface changed by the keys in a status report, or
// nil: a first key is taken as is; a next key starts a rotation; reporting
// the next key as current ends it.
func rotate(i *api.Interface, is api.InterfaceStatus, w *write) *api.Interface {
	now := w.now
	switch {
	case is.PublicKey == "":
	case i.PublicKey == "" || is.PublicKey != i.PublicKey:
		// A first key; the announced next key (the rotation ends); or a key
		// the server never saw announced (e.g. the agent lost its data
		// dir): take it, and drop any half-done rotation.
		out := clone(i)
		out.PublicKey, out.NextPublicKey, out.NextKeyIndex, out.NextKeyReady = is.PublicKey, "", 0, false
		out.KeyRotatedAt = &now
		return out
	case is.NextPublicKey != "" && is.NextPublicKey != i.NextPublicKey && is.NextPublicKey != i.PublicKey:
		out := clone(i)
		out.NextPublicKey, out.NextKeyIndex, out.NextKeyReady = is.NextPublicKey, 0, false
		return out
	case is.NextPublicKey == "" && i.NextPublicKey != "":
		// The agent dropped its next key (its rotation became blocked):
		// the peers drop the announced entry.
		out := clone(i)
		out.NextPublicKey, out.NextKeyIndex, out.NextKeyReady = "", 0, false
		return out
	}
	return nil
}

// hasDevicePeer reports whether a plain WireGuard device peers with i.
func (s *State) hasDevicePeer(i *api.Interface) bool { return s.rotationBlocked(i) != "" }

// rotationBlocked says why agent interface i may not rotate its key, or
// "": plain devices peer with it and hold its key in their configs.
func (s *State) rotationBlocked(i *api.Interface) string {
	if i.DeviceName != "" {
		return ""
	}
	var devices []string
	s.eachDevicePeer(i, func(p *api.Interface) { devices = append(devices, p.DeviceName) })
	if len(devices) == 0 {
		return ""
	}
	slices.Sort(devices)
	names := strings.Join(devices[:min(len(devices), 3)], ", ")
	if len(devices) > 3 {
		names += fmt.Sprintf(" and %d more", len(devices)-3)
	}
	return "plain WireGuard devices (" + names + ") hold this interface's public key in their configs; a new key would cut them off until they get new configs"
}

// hasAgentPeer reports whether an agent-managed interface with a key peers with i.
func (s *State) hasAgentPeer(i *api.Interface) bool {
	found := false
	s.eachPeer(i, func(p *api.Interface, _ *api.Connection) { found = found || (p.HostID != "" && p.PublicKey != "") })
	return found
}

// appliedIndex reports the desired-state index the host last said it applied.
func (s *State) appliedIndex(hostID string) uint64 {
	return max(s.reportedIndex(hostID), s.remote[hostID].Applied)
}

// reportedIndex returns the index the host's last report to this server
// applied.
func (s *State) reportedIndex(hostID string) uint64 {
	if r, ok := s.reports[hostID]; ok {
		return r.AppliedIndex
	}
	return 0
}

// markKeysReady adds to w the rotations among the host's peers that became
// ready now that the host applied index: every agent peer of the rotating
// interface has applied the state that announced its next key. Each
// rotation keeps the set of hosts it still waits for, so that a report
// costs O(1) per rotation, not O(peers): a hub of 10,000 spokes would
// otherwise look at 10,000 peers on each of 10,000 reports. The set only
// saves work: a rotation is marked ready after a full check.
func (s *State) markKeysReady(w *write, hostID string, applied uint64) {
	for id := range s.rotating {
		p := s.ifaces[id]
		if p.NextKeyIndex > applied || !s.peersWithHost(p, hostID) {
			continue
		}
		if wait, ok := s.waiting[id]; ok {
			delete(wait, hostID)
			if len(wait) > 0 {
				continue
			}
		}
		// Peers that joined since the set was made count too.
		if wait := s.notApplied(p, hostID); len(wait) > 0 {
			s.waiting[id] = wait
			continue
		}
		p2 := clone(p)
		p2.NextKeyReady = true
		w.meta(&p2.Meta)
		w.put(store.KindInterfaces, p2.ID, p2, "updated", p2.Name)
		w.wake.add(p2.HostID)
	}
}

// notApplied returns the hosts of p's agent peers with a key, other than
// hostID, that have not applied the state announcing p's next key.
func (s *State) notApplied(p *api.Interface, hostID string) set {
	out := set{}
	s.eachPeer(p, func(q *api.Interface, _ *api.Connection) {
		if q.HostID != "" && q.HostID != hostID && q.PublicKey != "" && s.appliedIndex(q.HostID) < p.NextKeyIndex {
			out.add(q.HostID)
		}
	})
	return out
}

// peersWithHost reports whether p is a peer of one of the host's interfaces.
func (s *State) peersWithHost(p *api.Interface, hostID string) bool {
	for id := range s.hostIfaces[hostID] {
		if ok, _ := s.link(s.ifaces[id], p); ok {
			return true
		}
	}
	return false
}

// merge returns the report to keep in memory: r, with its peers merged
// into kept's when r lists only changed peers. Peer keys and endpoints are
// interned: each key appears in the report of every peer, so a 10,000-host
// fleet would otherwise hold the same strings many times over. Kept reports
// are never changed, so unchanged peer lists are shared. Each interface's
// peers come out sorted by key (api.CompareKeys), as the agent lists them.
func merge(kept *api.StatusReport, r api.StatusReport) *api.StatusReport {
	r.Interfaces = slices.Clone(r.Interfaces)
	if r.Interfaces == nil {
		r.Interfaces = []api.InterfaceStatus{} // as HostStatus answers without a report
	}
	for k := range r.Interfaces {
		is := &r.Interfaces[k]
		var base []api.PeerStatus
		if r.PeersSince != 0 {
			if j := slices.IndexFunc(kept.Interfaces, func(o api.InterfaceStatus) bool { return o.ID == is.ID }); j >= 0 {
				base = kept.Interfaces[j].Peers
				is.Firewall = cmp.Or(is.Firewall, kept.Interfaces[j].Firewall)
			}
			if len(is.Peers) == 0 && len(is.RemovedPeers) == 0 {
				is.Peers = base
				continue
			}
		}
		peers := make([]api.PeerStatus, 0, len(base)+len(is.Peers))
		if len(base) > 0 {
			drop := make(map[string]bool, len(is.RemovedPeers)+len(is.Peers))
			for _, key := range is.RemovedPeers {
				drop[key] = true
			}
			for _, p := range is.Peers {
				drop[p.PublicKey] = true
			}
			for _, p := range base {
				if !drop[p.PublicKey] {
					peers = append(peers, p)
				}
			}
		}
		for _, p := range is.Peers {
			p.PublicKey = unique.Make(p.PublicKey).Value()
			p.Endpoint = unique.Make(p.Endpoint).Value()
			peers = append(peers, p)
		}
		slices.SortFunc(peers, func(a, b api.PeerStatus) int { return api.CompareKeys(a.PublicKey, b.PublicKey) })
		is.Peers, is.RemovedPeers = peers, nil
	}
	r.PeersSince = 0
	return &r
}

// peerCount returns how many peer interfaces i has.
func (s *State) peerCount(i *api.Interface) int {
	n := 0
	s.eachPeer(i, func(*api.Interface, *api.Connection) { n++ })
	return n
}

// maxReportPeers bounds the peers a status report may list for an
// interface with n peers: each may show under its current and its next key
// during a rotation, and peers removed since the agent's last state linger.
func maxReportPeers(n int) int { return 2*n + 64 }

// Status report bounds: a report's fixed part, and what one peer's status
// takes at most (key, endpoint, handshake time and counters, about 200
// bytes when written by the agent).
const (
	reportBaseBytes = 64 << 10
	peerReportBytes = 384
)

// ReportLimit returns the largest status report the host may send: its
// size follows the host's peers, so a hub of 10,000 spokes sends megabytes
// and a host with one peer some kilobytes.
func (s *State) ReportLimit(hostID string) int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := int64(reportBaseBytes)
	for id := range s.hostIfaces[hostID] {
		n += int64(maxReportPeers(s.peerCount(s.ifaces[id]))) * peerReportBytes
	}
	return n
}
