package agent

import (
	"slices"

	"github.com/drago-wg/drago/server/api"
)

// peerDelta returns r as the server needs it when it holds base, the last
// report it accepted: each interface lists only the peers whose status
// changed since base and the keys of those gone. A peer rarely changes
// between heartbeats (handshakes come every two minutes, counters move
// only with traffic), so most reports carry few or no peers.
func peerDelta(base, r *api.StatusReport) *api.StatusReport {
	out := *r
	out.PeersSince = base.Seq
	out.Interfaces = slices.Clone(r.Interfaces)
	for k := range out.Interfaces {
		is := &out.Interfaces[k]
		j := slices.IndexFunc(base.Interfaces, func(o api.InterfaceStatus) bool { return o.ID == is.ID })
		if j < 0 {
			continue // new interface: all its peers
		}
		if was := base.Interfaces[j].Peers; len(was) == len(is.Peers) && (len(was) == 0 || &was[0] == &is.Peers[0]) {
			is.Peers = nil // the same peers, not read again
			continue
		}
		had := make(map[string]api.PeerStatus, len(base.Interfaces[j].Peers))
		for _, p := range base.Interfaces[j].Peers {
			had[p.PublicKey] = p
		}
		var changed []api.PeerStatus
		for _, p := range is.Peers {
			if old, ok := had[p.PublicKey]; !ok || !samePeerStatus(old, p) {
				changed = append(changed, p)
			}
			delete(had, p.PublicKey)
		}
		var removed []string
		for key := range had {
			removed = append(removed, key)
		}
		slices.SortFunc(removed, api.CompareKeys)
		is.Peers, is.RemovedPeers = changed, removed
	}
	return &out
}

func samePeerStatus(a, b api.PeerStatus) bool {
	return a.Endpoint == b.Endpoint && a.RxBytes == b.RxBytes && a.TxBytes == b.TxBytes &&
		(a.LastHandshake == nil) == (b.LastHandshake == nil) &&
		(a.LastHandshake == nil || a.LastHandshake.Equal(*b.LastHandshake))
}

// saysNothingNew reports whether delta report d, built on base, changes
// nothing the server holds: the same facts, keys and applied index, and no
// peer changed.
func saysNothingNew(base, d *api.StatusReport) bool {
	if d.AppliedIndex != base.AppliedIndex || d.Backend != base.Backend || d.AdvertiseAddress != base.AdvertiseAddress ||
		d.AgentVersion != base.AgentVersion || d.OS != base.OS || d.Arch != base.Arch || len(d.Interfaces) != len(base.Interfaces) {
		return false
	}
	for k, is := range d.Interfaces {
		b := base.Interfaces[k]
		if is.ID != b.ID || is.PublicKey != b.PublicKey || is.NextPublicKey != b.NextPublicKey ||
			is.ListenPort != b.ListenPort || len(is.Peers) > 0 || len(is.RemovedPeers) > 0 ||
			(is.Firewall == nil) != (b.Firewall == nil) || (is.Firewall != nil && *is.Firewall != *b.Firewall) {
			return false
		}
	}
	return true
}
