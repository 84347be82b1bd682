package api

import (
	"fmt"
	"slices"
	"strings"
)

// IsDelta reports whether ds is a delta on an earlier state.
func (ds *DesiredState) IsDelta() bool { return ds.BaseIndex != 0 }

// Patched returns the whole state that delta ds describes on base, which
// must be the state of index ds.BaseIndex. It changes neither; the result
// shares the unchanged interfaces' peer slices with base. Each interface's
// peers come out ordered as the server orders them: by interface id, then
// public key (ComparePeers).
func (ds *DesiredState) Patched(base *DesiredState) (*DesiredState, error) {
	switch {
	case base == nil || base.Index != ds.BaseIndex:
		have := uint64(0)
		if base != nil {
			have = base.Index
		}
		return nil, fmt.Errorf("delta on the state of index %d, but the state held is of index %d", ds.BaseIndex, have)
	case base.HostID != ds.HostID:
		return nil, fmt.Errorf("delta for host %q on a state of host %q", ds.HostID, base.HostID)
	}
	out := *base
	out.Index, out.BaseIndex, out.Patches = ds.Index, 0, nil
	out.Interfaces = slices.Clone(base.Interfaces)
	for _, p := range ds.Patches {
		k := slices.IndexFunc(out.Interfaces, func(i DesiredInterface) bool { return i.ID == p.InterfaceID })
		if k < 0 {
			return nil, fmt.Errorf("delta patches interface %q, which the state lacks", p.InterfaceID)
		}
		if p.Firewall != nil {
			fw, err := patchedFirewall(p.Firewall, out.Interfaces[k].Firewall)
			if err != nil {
				return nil, fmt.Errorf("delta patches interface %q: %w", p.InterfaceID, err)
			}
			out.Interfaces[k].Firewall = fw
		}
		drop := make(map[string]bool, len(p.Remove)+len(p.Peers))
		for _, id := range p.Remove {
			drop[id] = true
		}
		for _, e := range p.Peers {
			drop[e.InterfaceID] = true
		}
		added := slices.SortedFunc(slices.Values(p.Peers), ComparePeers)
		old := out.Interfaces[k].Peers
		peers := make([]DesiredPeer, 0, len(old)+len(added))
		// Merge, old being in order already; the kept peers are copied in
		// runs, one copy per run between changes.
		run := 0
		for i := range old {
			dropped := drop[old[i].InterfaceID]
			if !dropped && (len(added) == 0 || ComparePeers(added[0], old[i]) >= 0) {
				continue // extends the run
			}
			peers = append(peers, old[run:i]...)
			for len(added) > 0 && ComparePeers(added[0], old[i]) < 0 {
				peers, added = append(peers, added[0]), added[1:]
			}
			run = i
			if dropped {
				run = i + 1
			}
		}
		peers = append(peers, old[run:]...)
		out.Interfaces[k].Peers = append(peers, added...)
	}
	return &out, nil
}

// patchedFirewall returns the firewall a delta's fw makes of base: fw,
// with the sets its rules name but fw leaves out (unchanged) taken from
// base, in name order. It changes neither.
func patchedFirewall(fw, base *DesiredFirewall) (*DesiredFirewall, error) {
	have := make(map[string]bool, len(fw.Sets))
	for _, s := range fw.Sets {
		have[s.Name] = true
	}
	out := *fw
	out.Sets = slices.Clip(fw.Sets) // appends copy
	for _, r := range fw.Rules {
		for _, name := range []string{r.From, r.To} {
			if name == "" || have[name] {
				continue
			}
			k := -1
			if base != nil {
				k = slices.IndexFunc(base.Sets, func(s FirewallSet) bool { return s.Name == name })
			}
			if k < 0 {
				return nil, fmt.Errorf("its firewall names set %q, which neither it nor the base state holds", name)
			}
			out.Sets = append(out.Sets, base.Sets[k])
			have[name] = true
		}
	}
	if len(out.Sets) > len(fw.Sets) {
		slices.SortFunc(out.Sets, func(a, b FirewallSet) int { return strings.Compare(a.Name, b.Name) })
	}
	return &out, nil
}

// ComparePeers orders desired peers by interface id, then public key
// (CompareKeys).
func ComparePeers(a, b DesiredPeer) int {
	if c := strings.Compare(a.InterfaceID, b.InterfaceID); c != 0 {
		return c
	}
	return CompareKeys(a.PublicKey, b.PublicKey)
}
