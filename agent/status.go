package agent

import (
	"runtime"
	"sync"

	"github.com/drago-wg/drago/platform"
	"github.com/drago-wg/drago/server/api"
)

// statusReport describes the host as it is now: the interfaces of the last
// desired state with their public keys and, read from the devices when
// counters is set, the peers' counters; otherwise the peers of the last
// report that read them (reports on change leave counters to heartbeats,
// so that a change in a large mesh does not read every peer of every
// host). It carries no secret.
func (a *agent) statusReport(counters bool) *api.StatusReport {
	return a.statusReportFrom(a.rec.reader(counters))
}

// deviceReader gives status the device of an interface that has a key, to
// take the peers from: read is false to leave the interface's peers to an
// earlier read; dev is nil when there is none to take (not drago's device,
// or a failed read).
type deviceReader func(w wantInterface) (dev *platform.Device, read bool)

// statusReportFrom is statusReport with the peers of the interfaces that
// read reads; the others carry the peers of the last report that read them.
func (a *agent) statusReportFrom(read deviceReader) *api.StatusReport {
	r := &api.StatusReport{
		Backend:          a.b.Name(),
		AdvertiseAddress: a.cfg.AdvertiseAddress,
		AgentVersion:     api.Version,
		OS:               runtime.GOOS,
		Arch:             runtime.GOARCH,
		AppliedIndex:     a.applied,
		Interfaces:       []api.InterfaceStatus{},
	}
	if a.state == nil {
		return r
	}
	fresh := map[string]bool{}
	r.Interfaces = a.rec.statusFrom(a.state, func(w wantInterface) (*platform.Device, bool) {
		dev, ok := read(w)
		fresh[w.ID] = ok
		return dev, ok
	})
	if a.peers == nil {
		a.peers = map[string][]api.PeerStatus{}
	}
	for k, is := range r.Interfaces {
		if fresh[is.ID] {
			a.peers[is.ID] = is.Peers
		} else {
			r.Interfaces[k].Peers = a.peers[is.ID]
		}
	}
	for id := range a.peers {
		if _, ok := fresh[id]; !ok {
			delete(a.peers, id) // no longer desired, or no key yet
		}
	}
	return r
}

// reader returns the deviceReader that reads every device drago owns when
// counters is set, and none otherwise.
func (r *reconciler) reader(counters bool) deviceReader {
	return func(w wantInterface) (*platform.Device, bool) {
		if !counters {
			return nil, false
		}
		if r.owned[w.Name] != w.ID {
			return nil, true
		}
		dev, err := r.b.Device(w.Name)
		if err != nil {
			return nil, true
		}
		return dev, true
	}
}

// statusFrom reports each desired interface that has a key: its public key,
// whether its access policy is in force and, from the device read gives (drago's own), the observed listen port
// and its peers.
func (r *reconciler) statusFrom(ds *api.DesiredState, read deviceReader) []api.InterfaceStatus {
	out := []api.InterfaceStatus{}
	for _, w := range r.parse(ds).Interfaces {
		k, err := r.keys.load(w.ID)
		if err != nil {
			continue // not created yet
		}
		st := api.InterfaceStatus{ID: w.ID, PublicKey: k.CurrentPublic.String(), ListenPort: w.ListenPort,
			Firewall: r.firewallStatus(w)}
		if k.staged() {
			st.NextPublicKey = k.NextPublic.String()
		}
		if dev, _ := read(w); dev != nil {
			st.ListenPort = dev.WireGuard.ListenPort
			for _, p := range dev.WireGuard.Peers {
				ps := api.PeerStatus{
					PublicKey: p.PublicKey.String(),
					RxBytes:   p.ReceiveBytes,
					TxBytes:   p.TransmitBytes,
				}
				if p.Endpoint != nil {
					ps.Endpoint = p.Endpoint.String()
				}
				if !p.LastHandshakeTime.IsZero() {
					t := p.LastHandshakeTime.UTC()
					ps.LastHandshake = &t
				}
				st.Peers = append(st.Peers, ps)
			}
		}
		out = append(out, st)
	}
	return out
}

// mailbox holds the newest status report not yet sent; a newer report
// replaces an unsent older one.
type mailbox struct {
	mu    sync.Mutex
	r     *api.StatusReport
	ready chan struct{} // capacity 1: a report is waiting
}

func newMailbox() *mailbox { return &mailbox{ready: make(chan struct{}, 1)} }

// put stores r, replacing any unsent report.
func (m *mailbox) put(r *api.StatusReport) {
	m.mu.Lock()
	m.r = r
	m.mu.Unlock()
	m.signal()
}

// putBack stores r again after a failed send unless a newer one arrived.
func (m *mailbox) putBack(r *api.StatusReport) {
	m.mu.Lock()
	if m.r == nil {
		m.r = r
	}
	m.mu.Unlock()
	m.signal()
}

// take removes and returns the waiting report, or nil.
func (m *mailbox) take() *api.StatusReport {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.r
	m.r = nil
	return r
}

func (m *mailbox) signal() {
	select {
	case m.ready <- struct{}{}:
	default:
	}
}
