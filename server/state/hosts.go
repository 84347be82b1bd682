package state

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
)

// Hosts lists the hosts p may see, sorted by name, with their derived status.
func (s *State) Hosts(p *Principal, f Filter) api.List[api.Host] {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []api.Host
	for _, h := range s.hosts {
		if !f.nameMatches(h.Name) || !p.AllowedSome("hosts", AccessRead, s.hostNets(h.ID)) {
			continue
		}
		if f.LabelKey != "" {
			if v, ok := h.Labels[f.LabelKey]; !ok || v != f.LabelValue {
				continue
			}
		}
		hv := s.hostView(h)
		if f.Status != "" && hv.Status != f.Status {
			continue
		}
		out = append(out, hv)
	}
	slices.SortFunc(out, func(a, b api.Host) int { return cmp.Compare(a.Name, b.Name) })
	return page(out, f)
}

// Host returns a host by name or id.
func (s *State) Host(p *Principal, ref string) (*api.Host, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h, err := s.hostFor(p, ref, AccessRead)
	if err != nil {
		return nil, err
	}
	hv := s.hostView(h)
	return &hv, nil
}

// hostFor resolves a host for p. A host is in the networks of its
// interfaces: p sees it with read access to hosts in one of them, and
// changes it (which touches all its interfaces) with write access in all
// of them; a host in no network takes an unscoped grant. A host p may not
// see is not found.
func (s *State) hostFor(p *Principal, ref, access string) (*api.Host, error) {
	h, err := s.host(ref)
	if err != nil {
		return nil, err
	}
	nets := s.hostNets(h.ID)
	if !p.AllowedSome("hosts", AccessRead, nets) {
		return nil, notFound("host", ref)
	}
	if access == AccessWrite && !p.AllowedAll("hosts", AccessWrite, nets) {
		return nil, forbidden("token has no write access to hosts in every network of host %s", h.Name)
	}
	return h, nil
}

// hostNets returns the ids of the networks the host has interfaces in.
func (s *State) hostNets(id string) []string {
	var out []string
	for i := range s.hostIfaces[id] {
		if n := s.ifaces[i].NetworkID; !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func (s *State) host(ref string) (*api.Host, error) {
	if h, ok := s.hosts[ref]; ok {
		return h, nil
	}
	if id, ok := s.hostByName[ref]; ok {
		return s.hosts[id], nil
	}
	return nil, notFound("host", ref)
}

// hostView copies h with its status derived from the last sign of life:
// a status report, or once the agent has reported, a blocking query.
func (s *State) hostView(h *api.Host) api.Host {
	v := *h
	v.Labels = maps.Clone(h.Labels)
	now := s.opts.Now()
	v.LastSeen = s.lastSeen(h, now)
	switch {
	case v.LastSeen == nil:
		v.Status = api.HostPending
	case now.Sub(*v.LastSeen) > s.opts.HeartbeatGrace:
		v.Status = api.HostDown
	default:
		v.Status = api.HostReady
	}
	for id := range s.hostIfaces[h.ID] {
		v.KeyStale = v.KeyStale || s.keyStale(s.ifaces[id])
	}
	return v
}

// UpdateHost applies edit (name, labels, advertise address) to a copy of the host.
func (s *State) UpdateHost(p *Principal, ref string, edit func(*api.Host) error) (*api.Host, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.hostFor(p, ref, AccessWrite)
	if err != nil {
		return nil, err
	}
	h := clone(old)
	if err := edit(h); err != nil {
		return nil, err
	}
	switch {
	case h.ObservedAddress != old.ObservedAddress:
		return nil, invalid("observed_address", "is set by the server")
	case h.OS != old.OS || h.Arch != old.Arch || h.AgentVersion != old.AgentVersion || h.Backend != old.Backend:
		return nil, invalid("os", "os, arch, agent_version and backend are reported by the agent")
	case h.RotateKeys != old.RotateKeys:
		return nil, invalid("rotate_keys", "use POST /hosts/{host}/rotate-keys")
	}
	h.KeyStale = false
	h.Meta, h.LastSeen, h.Status = old.Meta, old.LastSeen, old.Status
	for k, v := range h.Labels {
		if v == "" {
			delete(h.Labels, k) // {"labels": {"k": null}} removes k (merge-patch style)
		}
	}
	if err := s.checkHost(h, old); err != nil {
		return nil, err
	}
	// Peers reach the host at its advertised address; its name and labels
	// are in no other host's state but through policies (recompiled).
	return s.putHost(h, h.AdvertiseAddress != old.AdvertiseAddress)
}

func (s *State) checkHost(h, old *api.Host) error {
	if err := checkObjectName("name", h.Name, "a host name (letters, digits, '.', '_', '-', at most 63)"); err != nil {
		return err
	}
	if id, ok := s.hostByName[h.Name]; ok && (old == nil || id != old.ID) {
		return conflict("name", "host name %q is taken", h.Name)
	}
	if err := checkLabels("labels", h.Labels); err != nil {
		return err
	}
	return checkAddress("advertise_address", h.AdvertiseAddress)
}

// DeleteHost removes a host with its interfaces, connections and credential.
func (s *State) DeleteHost(p *Principal, ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := s.hostFor(p, ref, AccessWrite)
	if err != nil {
		return err
	}
	w := s.begin()
	for _, id := range s.hostIfaces[h.ID].sorted() {
		s.deleteInterface(w, s.ifaces[id])
	}
	w.del(store.KindCredentials, h.ID, "")
	w.del(store.KindHosts, h.ID, h.Name)
	if err := w.commit(); err != nil {
		return err
	}
	s.wakeMu.Lock()
	if ch, ok := s.hostWake[h.ID]; ok { // end the deleted host's blocking query
		close(ch)
		delete(s.hostWake, h.ID)
	}
	s.wakeMu.Unlock()
	return nil
}

// HostStatus returns the host's last status report.
func (s *State) HostStatus(p *Principal, ref string) (*api.StatusReport, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h, err := s.hostFor(p, ref, AccessRead)
	if err != nil {
		return nil, err
	}
	r, ok := s.reports[h.ID]
	if !ok {
		return &api.StatusReport{Interfaces: []api.InterfaceStatus{}}, nil
	}
	return clone(r), nil
}

// RequestKeyRotation flags the host so its agent rotates its keys.
func (s *State) RequestKeyRotation(p *Principal, ref string) (*api.Host, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.hostFor(p, ref, AccessWrite)
	if err != nil {
		return nil, err
	}
	var blocked []string
	n := 0
	for _, id := range s.hostIfaces[old.ID].sorted() {
		n++
		if why := s.rotationBlocked(s.ifaces[id]); why != "" {
			blocked = append(blocked, s.ifaces[id].Name+": "+why)
		}
	}
	if n > 0 && len(blocked) == n {
		return nil, conflict("host", "no interface of host %s can rotate its key: %s. To rotate anyway, delete those devices, rotate, and add them again with new configs", old.Name, strings.Join(blocked, "; "))
	}
	h := clone(old)
	h.RotateKeys = true
	return s.putHost(h, false)
}

// putHost stores a changed host, wakes it and, when the change shows in
// their states (peers: its addresses), its peers, and returns its view.
func (s *State) putHost(h *api.Host, peers bool) (*api.Host, error) {
	w := s.begin()
	w.meta(&h.Meta)
	w.put(store.KindHosts, h.ID, h, "updated", h.Name)
	if peers {
		w.hosts.add(h.ID)
	} else {
		w.wake.add(h.ID)
	}
	if err := w.commit(); err != nil {
		return nil, err
	}
	hv := s.hostView(h)
	return &hv, nil
}
