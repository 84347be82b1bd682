package agent

import (
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/server/api"
)

// First handshakes. Reports on change carry the peers' counters of the
// last report that read the devices, and heartbeats read them every
// HeartbeatInterval, so a peer added to an interface would show no
// handshake for up to a heartbeat although WireGuard has one within a
// round trip of the first packet. The agent therefore watches the peers it
// has just added, and the peers of an interface whose own key it has just
// switched, for their first handshake: while one of them has none, it
// reads the devices that hold them every fastEvery, then every slowEvery,
// and gives up on a peer watchFor after it was added. A read that finds a
// first handshake is reported; the report is a delta (peers_since) that
// carries the peers that changed. One read covers every pending peer of a
// device and yields at most one report, so the server gets at most one
// report per fastEvery however many peers come up at once, and a host
// whose peers all have handshakes, or that added none for watchFor, makes
// no extra read.

// Defaults of handshakeWatch's timing.
const (
	handshakeWatchFor  = 2 * time.Minute
	handshakeFastFor   = 30 * time.Second
	handshakeFastEvery = time.Second
	handshakeSlowEvery = 5 * time.Second
)

// handshakeWatch tracks the peers waiting for a first handshake. It is
// owned by the agent's loop goroutine, which reads the devices.
type handshakeWatch struct {
	// Timing: a pending peer is read every fastEvery during the fastFor
	// after it was added, then every slowEvery, until watchFor after it
	// was added. Tests shorten them.
	watchFor, fastFor, fastEvery, slowEvery time.Duration

	ifaces map[string]*watchedInterface // interface id -> what the watch knows of it
	next   time.Time                    // when to read next; zero when no peer is pending
}

// watchedInterface is an interface as the watch last noted it.
type watchedInterface struct {
	peers     []wantPeer                  // sorted by key; shared with the parsed state, never modified
	publicKey string                      // the host's public key on it; empty before it has one
	pending   map[wgtypes.Key]pendingPeer // peer public key -> its watch
}

// pendingPeer is a peer waiting for its first handshake.
type pendingPeer struct {
	since time.Time // when it was added, or the host's key switched
	after time.Time // only a later handshake counts; zero (any) for a new peer
}

func newHandshakeWatch() *handshakeWatch {
	return &handshakeWatch{
		watchFor:  handshakeWatchFor,
		fastFor:   handshakeFastFor,
		fastEvery: handshakeFastEvery,
		slowEvery: handshakeSlowEvery,
		ifaces:    map[string]*watchedInterface{},
	}
}

// note compares the interfaces just applied with those noted last and
// starts watching, from now, the peers they added: a new key, or a key
// that gains allowed IPs (the next key of a peer rotating its own becomes
// usable only then). When r, a report of the same state, shows that the
// host's key on an interface changed, every peer of it with allowed IPs is
// watched for a handshake under the new key. Peers and interfaces gone
// are dropped. Walking the two sorted peer lists costs no allocation for
// peers that did not change.
func (h *handshakeWatch) note(ifaces []wantInterface, r *api.StatusReport, now time.Time) {
	keys := make(map[string]string, len(r.Interfaces))
	for _, is := range r.Interfaces {
		keys[is.ID] = is.PublicKey
	}
	seen := make(map[string]bool, len(ifaces))
	added := false
	for _, w := range ifaces {
		seen[w.ID] = true
		wi := h.ifaces[w.ID]
		if wi == nil {
			wi = &watchedInterface{pending: map[wgtypes.Key]pendingPeer{}}
			h.ifaces[w.ID] = wi
		}
		pub := keys[w.ID]
		if wi.publicKey != "" && pub != "" && pub != wi.publicKey {
			clear(wi.pending)
			for k := range w.Peers {
				if len(w.Peers[k].AllowedIPs) > 0 {
					wi.pending[w.Peers[k].PublicKey] = pendingPeer{since: now, after: now}
					added = true
				}
			}
		} else if wi.addPeers(w.Peers, now) {
			added = true
		}
		if pub != "" {
			wi.publicKey = pub
		}
		wi.peers = w.Peers
	}
	for id := range h.ifaces {
		if !seen[id] {
			delete(h.ifaces, id)
		}
	}
	if added && (h.next.IsZero() || h.next.After(now.Add(h.fastEvery))) {
		h.next = now.Add(h.fastEvery)
	}
}

// addPeers walks the peers noted last and peers, both sorted by key,
// watching from now those added or given allowed IPs, and dropping those
// gone or left without allowed IPs. It reports whether it watches a new
// peer.
func (wi *watchedInterface) addPeers(peers []wantPeer, now time.Time) bool {
	was := wi.peers
	if len(was) == len(peers) && (len(peers) == 0 || &was[0] == &peers[0]) {
		return false // the same parsed peers
	}
	added := false
	i, j := 0, 0
	for i < len(was) || j < len(peers) {
		c := 0
		switch {
		case i == len(was):
			c = 1
		case j == len(peers):
			c = -1
		default:
			c = api.CompareKeyBytes(was[i].PublicKey, peers[j].PublicKey)
		}
		switch {
		case c < 0:
			if len(wi.pending) > 0 {
				delete(wi.pending, was[i].PublicKey)
			}
			i++
		case c > 0:
			if len(peers[j].AllowedIPs) > 0 {
				wi.pending[peers[j].PublicKey] = pendingPeer{since: now}
				added = true
			}
			j++
		default:
			switch had, has := len(was[i].AllowedIPs) > 0, len(peers[j].AllowedIPs) > 0; {
			case !had && has:
				wi.pending[peers[j].PublicKey] = pendingPeer{since: now}
				added = true
			case had && !has && len(wi.pending) > 0:
				delete(wi.pending, peers[j].PublicKey)
			}
			i++
			j++
		}
	}
	return added
}

// pending reports whether a peer waits for its first handshake.
func (h *handshakeWatch) pending() bool {
	for _, wi := range h.ifaces {
		if len(wi.pending) > 0 {
			return true
		}
	}
	return false
}

// expire stops watching the peers added watchFor or more before now.
func (h *handshakeWatch) expire(now time.Time) {
	for _, wi := range h.ifaces {
		for k, p := range wi.pending {
			if !now.Before(p.since.Add(h.watchFor)) {
				delete(wi.pending, k)
			}
		}
	}
}

// reads reports whether the device of interface id is to be read: whether
// one of its peers is pending.
func (h *handshakeWatch) reads(id string) bool {
	wi := h.ifaces[id]
	return wi != nil && len(wi.pending) > 0
}

// observe takes the peers of report r that were read from the devices
// (read accepts the interface's id) and stops watching those that now have
// their first handshake. It reports whether it found one.
func (h *handshakeWatch) observe(r *api.StatusReport, read func(id string) bool) bool {
	found := false
	for _, is := range r.Interfaces {
		wi := h.ifaces[is.ID]
		if wi == nil || len(wi.pending) == 0 || !read(is.ID) {
			continue
		}
		for _, ps := range is.Peers {
			if ps.LastHandshake == nil {
				continue
			}
			if k, err := wgtypes.ParseKey(ps.PublicKey); err == nil && wi.handshake(k, *ps.LastHandshake) {
				found = true
			}
		}
	}
	return found
}

// observeDevice is observe for the peers of interface id read from its
// device. It formats no key: a read that finds no first handshake, the
// usual one, allocates nothing.
func (h *handshakeWatch) observeDevice(id string, peers []wgtypes.Peer) bool {
	wi := h.ifaces[id]
	if wi == nil {
		return false
	}
	found := false
	for k := range peers {
		if len(wi.pending) == 0 {
			break
		}
		if wi.handshake(peers[k].PublicKey, peers[k].LastHandshakeTime) {
			found = true
		}
	}
	return found
}

// handshake stops watching peer key when at is its first handshake, and
// reports whether it was.
func (wi *watchedInterface) handshake(key wgtypes.Key, at time.Time) bool {
	p, ok := wi.pending[key]
	if !ok || at.IsZero() || !at.After(p.after) {
		return false
	}
	delete(wi.pending, key)
	return true
}

// schedule sets when to read next after a read at now: fastEvery later
// while a pending peer was added less than fastFor ago, else slowEvery
// later, capped at the last peer's expiry; never when none is pending.
func (h *handshakeWatch) schedule(now time.Time) {
	h.next = time.Time{}
	var last time.Time // the newest pending peer's since
	for _, wi := range h.ifaces {
		for _, p := range wi.pending {
			if p.since.After(last) {
				last = p.since
			}
		}
	}
	if last.IsZero() {
		return
	}
	every := h.slowEvery
	if now.Before(last.Add(h.fastFor)) {
		every = h.fastEvery
	}
	h.next = now.Add(every)
	if end := last.Add(h.watchFor); end.Before(h.next) {
		h.next = end // expires then, without a read
	}
}
