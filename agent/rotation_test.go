package agent

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/platform"
	"github.com/drago-wg/drago/platform/platformtest"
	"github.com/drago-wg/drago/server/api"
)

func TestRotationDue(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const interval = 24 * time.Hour
	// Jitter bounds over many keys: every due time lies in
	// [t0+0.9·interval, t0+interval), and the keys spread over the range.
	lo, hi := t0.Add(interval), t0
	for range 2000 {
		var pub wgtypes.Key
		rand.Read(pub[:])
		due, ok := rotationDue(pub, t0, interval)
		if !ok {
			t.Fatal("rotationDue disabled with a positive interval")
		}
		if due.Before(t0.Add(interval*9/10)) || !due.Before(t0.Add(interval)) {
			t.Fatalf("due %v after activation, want in [0.9, 1.0) × %v", due.Sub(t0), interval)
		}
		again, _ := rotationDue(pub, t0, interval)
		if !again.Equal(due) {
			t.Fatalf("due time not stable for one key: %v then %v", due, again)
		}
		lo, hi = minTime(lo, due), maxTime(hi, due)
	}
	if spread := hi.Sub(lo); spread < interval/10*9/10 {
		t.Errorf("2000 keys spread over %v, want most of %v", spread, interval/10)
	}
	// Tiny intervals stay in bounds too.
	for _, iv := range []time.Duration{1, 9, 10, 11, time.Millisecond} {
		due, _ := rotationDue(peerKey(1), t0, iv)
		if d := due.Sub(t0); d < iv-iv/10 || d > iv {
			t.Errorf("interval %v: due after %v", iv, d)
		}
	}
	for _, iv := range []time.Duration{0, KeyRotationDisabled, -time.Hour} {
		if _, ok := rotationDue(peerKey(1), t0, iv); ok {
			t.Errorf("interval %v: schedule enabled, want disabled", iv)
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func TestStartRotation(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	key := testKey(1)
	due, _ := rotationDue(key.PublicKey(), t0, time.Hour)
	fresh := keyPair{Current: key, ActivatedAt: t0, CurrentPublic: key.PublicKey()}
	staged := keyPair{Current: key, ActivatedAt: t0, Next: testKey(2), NextCreated: t0,
		CurrentPublic: key.PublicKey(), NextPublic: testKey(2).PublicKey()}
	for _, tt := range []struct {
		name     string
		now      time.Time
		k        keyPair
		interval time.Duration
		onDemand bool
		want     bool
	}{
		{"new key", t0, fresh, time.Hour, false, false},
		{"just before due", due.Add(-time.Nanosecond), fresh, time.Hour, false, false},
		{"due", due, fresh, time.Hour, false, true},
		{"overdue after a week of downtime", t0.Add(7 * 24 * time.Hour), fresh, time.Hour, false, true},
		{"disabled, overdue", t0.Add(7 * 24 * time.Hour), fresh, KeyRotationDisabled, false, false},
		{"on demand, new key", t0, fresh, time.Hour, true, true},
		{"on demand, disabled schedule", t0, fresh, KeyRotationDisabled, true, true},
		{"in progress, overdue", t0.Add(7 * 24 * time.Hour), staged, time.Hour, false, false},
		{"in progress, on demand", t0, staged, time.Hour, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := startRotation(tt.now, tt.k, tt.interval, tt.onDemand); got != tt.want {
				t.Errorf("startRotation = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSwitchNow(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cur, next := peerKey(1).String(), peerKey(2)
	for _, tt := range []struct {
		name   string
		now    time.Time
		d      api.DesiredInterface
		echoed time.Time
		want   bool
	}{
		{"not announced yet", t0.Add(time.Hour), api.DesiredInterface{PublicKey: cur}, time.Time{}, false},
		{"echoed, peers not ready", t0.Add(time.Second), api.DesiredInterface{PublicKey: cur, NextPublicKey: next.String()}, t0, false},
		{"echoed, peers ready", t0, api.DesiredInterface{PublicKey: cur, NextPublicKey: next.String(), SwitchKey: true}, t0, true},
		{"fallback reached", t0.Add(30 * time.Second), api.DesiredInterface{PublicKey: cur, NextPublicKey: next.String()}, t0, true},
		{"another next key echoed", t0.Add(time.Hour), api.DesiredInterface{PublicKey: cur, NextPublicKey: peerKey(3).String(), SwitchKey: true}, t0, false},
		{"server holds it as current", t0, api.DesiredInterface{PublicKey: next.String()}, time.Time{}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := switchNow(tt.now, next, tt.d, tt.echoed, 30*time.Second); got != tt.want {
				t.Errorf("switchNow = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestKeyStoreRotation(t *testing.T) {
	d, err := openDataDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ks := &keyStore{dir: d.keysDir()}
	if _, err := ks.stage("if-1", time.Now()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stage without a key: %v, want not exist", err)
	}
	before := time.Now()
	cur, _, err := ks.getOrCreate("if-1")
	if err != nil {
		t.Fatal(err)
	}
	k, err := ks.load("if-1")
	if err != nil || k.Current != cur || k.staged() || k.ActivatedAt.Before(before.Add(-time.Second)) {
		t.Fatalf("new key: %+v %v; want current, activated now, nothing staged", k.ActivatedAt, err)
	}

	t1 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	k, err = ks.stage("if-1", t1)
	if err != nil || k.Current != cur || !k.staged() || k.Next == cur || !k.NextCreated.Equal(t1) {
		t.Fatalf("stage: staged %v, err %v", k.staged(), err)
	}
	if k.CurrentPublic != cur.PublicKey() || k.NextPublic != k.Next.PublicKey() {
		t.Error("stage: public keys do not match the private ones")
	}
	next := k.Next
	if k2, _ := ks.stage("if-1", t1.Add(time.Hour)); k2.Next != next {
		t.Error("a second stage replaced the staged key")
	}
	path := filepath.Join(d.keysDir(), "if-1.json")
	var kf keyFile
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &kf); err != nil || kf.PrivateKey != cur.String() || kf.NextPrivateKey != next.String() || kf.ActivatedAt.IsZero() {
		t.Errorf("key file after stage = %s", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	if got, _ := ks.get("if-1"); got != cur {
		t.Error("get returns the staged key before the switch")
	}

	t2 := t1.Add(time.Minute)
	k, err = ks.promote("if-1", t2)
	if err != nil || k.Current != next || k.staged() || !k.ActivatedAt.Equal(t2) {
		t.Fatalf("promote: %+v, %v", k.ActivatedAt, err)
	}
	fromFile := &keyStore{dir: d.keysDir()} // reads the file, not ks's memory
	if k, _ = fromFile.load("if-1"); k.Current != next || k.staged() || !k.ActivatedAt.Equal(t2) {
		t.Errorf("after promote the file holds staged %v, activated %v", k.staged(), k.ActivatedAt)
	}
	if k.CurrentPublic != next.PublicKey() || k.NextPublic != (wgtypes.Key{}) {
		t.Error("public keys not derived from the file's keys")
	}
	if cached, _ := ks.load("if-1"); cached.CurrentPublic != next.PublicKey() || cached.Current != next {
		t.Error("the store's memory differs from its file after promote")
	}
	if _, err := ks.promote("if-1", t2); err == nil {
		t.Error("promote without a staged key succeeded")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v after promote, want 0600", fi.Mode().Perm())
	}

	// A key file from before rotation existed: its age is the file's.
	old := time.Now().Add(-72 * time.Hour).Truncate(time.Second)
	must(t, os.WriteFile(filepath.Join(d.keysDir(), "if-2.json"), []byte(`{"private_key":"`+testKey(9).String()+`"}`), 0o600))
	must(t, os.Chtimes(filepath.Join(d.keysDir(), "if-2.json"), old, old))
	if k, err := ks.load("if-2"); err != nil || !k.ActivatedAt.Equal(old) || k.Current != testKey(9) {
		t.Errorf("legacy key file: activated %v (want %v), %v", k.ActivatedAt, old, err)
	}
	// A bad staged key is an error that does not echo it.
	must(t, os.WriteFile(filepath.Join(d.keysDir(), "if-3.json"), []byte(`{"private_key":"`+testKey(9).String()+`","next_private_key":"secretgarbage"}`), 0o600))
	if _, err := ks.load("if-3"); err == nil || strings.Contains(err.Error(), "secretgarbage") {
		t.Errorf("bad next key: %v", err)
	}
}

// Phases of a peer's rotation in rotatingPeerState.
const (
	peerBefore  = iota // peer 11 under its current key
	peerOverlap        // also under its next key, peerKey(21), without allowed IPs
	peerAfter          // under its next key only, with the allowed IPs
)

// rotatingPeerState is testState(2) where peer 11, which also routes
// 192.168.11.0/24, is at the given phase of its key rotation.
func rotatingPeerState(phase int) *api.DesiredState {
	ds := testState(2)
	ifc := &ds.Interfaces[0]
	ifc.Peers[1].AllowedIPs = append(ifc.Peers[1].AllowedIPs, "192.168.11.0/24")
	next := ifc.Peers[1]
	next.PublicKey, next.AllowedIPs = peerKey(21).String(), []string{}
	switch phase {
	case peerOverlap:
		ifc.Peers = append(ifc.Peers, next)
	case peerAfter:
		next.AllowedIPs = ifc.Peers[1].AllowedIPs
		ifc.Peers[1] = next
	}
	return ds
}

// TestReconcilePeerWithNextKey: a rotating peer's next key, listed without
// allowed IPs, is not installed (see installed); its switch is one
// configuration that adds the new key with the allowed IPs and a 1 s
// keepalive, which starts the handshake (see kick), then one that removes
// the old key and sets the keepalive back to 0. The route stays.
func TestReconcilePeerWithNextKey(t *testing.T) {
	for _, changes := range []bool{false, true} {
		t.Run(fmt.Sprintf("changes=%v", changes), func(t *testing.T) {
			f := newFixture(t)
			reconcile := f.rec.reconcile
			if changes {
				reconcile = f.rec.reconcileChanges
			}
			apply := func(ds *api.DesiredState) []platformtest.Op {
				f.fake.Reset()
				if _, err := reconcile(context.Background(), ds); err != nil {
					t.Fatal(err)
				}
				return writes(f.fake)
			}
			apply(rotatingPeerState(peerBefore))
			before, _ := f.fake.Device("drago-a")
			if ops := apply(rotatingPeerState(peerOverlap)); len(ops) != 0 {
				t.Errorf("ops for the next key: %v, want none", ops)
			}
			overlap, _ := f.fake.Device("drago-a")
			if d := cmp.Diff(peerView(before), peerView(overlap)); d != "" {
				t.Errorf("the next key changed the device (-before +overlap):\n%s", d)
			}

			got := apply(rotatingPeerState(peerAfter))
			want := []platformtest.Op{
				{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 1},                  // the new key
				{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 2, RemovedPeers: 1}, // drainDelay later: the old key goes, the keepalive back to 0
			}
			if d := cmp.Diff(want, got, cmpNetip); d != "" {
				t.Errorf("ops of the peer's switch (-want +got):\n%s", d)
			}
			dev, _ := f.fake.Device("drago-a")
			wantView := peerView(before)
			delete(wantView, peerKey(11).String())
			wantView[peerKey(21).String()] = "192.0.2.11:51820 [10.0.0.3/32 192.168.11.0/24]"
			if d := cmp.Diff(wantView, peerView(dev)); d != "" {
				t.Errorf("peers after the switch (-want +got):\n%s", d)
			}
			for _, p := range dev.WireGuard.Peers {
				if p.PersistentKeepaliveInterval != 0 {
					t.Errorf("peer %s keepalive %v after the switch, want 0", p.PublicKey, p.PersistentKeepaliveInterval)
				}
			}
			if d := cmp.Diff(mustPrefixes(t, "192.168.11.0/24"), dev.Routes, cmpNetip); d != "" {
				t.Errorf("routes after the switch (-want +got):\n%s", d)
			}
		})
	}
}

// TestKicks: the plans of a peer's switch kick its new key, with a 1 s
// keepalive when it has none (Reset) and as it is when it has one, and
// remove the old key after adding the new one (peerOrder); a peer added
// beside others is not kicked.
func TestKicks(t *testing.T) {
	was := wantInterface{Name: "wg0", Peers: sortedPeers([]wantPeer{
		{PublicKey: peerKey(1), AllowedIPs: mustPrefixes(t, "10.0.0.1/32")},
		{PublicKey: peerKey(2), AllowedIPs: mustPrefixes(t, "10.0.0.2/32"), Keepalive: 25 * time.Second},
	})}
	rekey := func(from, to byte, extra ...wantPeer) wantInterface {
		w := wantInterface{Name: "wg0", Peers: append(slices.Clone(extra), was.Peers...)}
		for i := range w.Peers {
			if w.Peers[i].PublicKey == peerKey(from) {
				w.Peers[i].PublicKey = peerKey(to)
			}
		}
		w.Peers = sortedPeers(w.Peers)
		return w
	}
	newPeer := wantPeer{PublicKey: peerKey(9), AllowedIPs: mustPrefixes(t, "10.0.0.9/32")}
	tests := []struct {
		name string
		want wantInterface
		kick []kick
		ka   time.Duration // the kicked peer's keepalive in the configuration
	}{
		{"peer without keepalive rekeyed", rekey(1, 11), []kick{{Key: peerKey(11), Replaces: peerKey(1), Reset: true}}, time.Second},
		{"peer with keepalive rekeyed", rekey(2, 12), []kick{{Key: peerKey(12), Replaces: peerKey(2)}}, 25 * time.Second},
		{"a new peer", rekey(0, 0, newPeer), nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := &platform.Device{Up: true}
			for _, wp := range was.Peers {
				dev.WireGuard.Peers = append(dev.WireGuard.Peers, devicePeer(&wp))
			}
			for name, p := range map[string]plan{"diffFrom": diffFrom(was, tt.want), "diff": diff(tt.want, wgtypes.Key{}, dev)} {
				if d := cmp.Diff(tt.kick, p.Kicks); d != "" {
					t.Errorf("%s kicks (-want +got):\n%s", name, d)
				}
				if peers := p.WireGuard.Peers; tt.kick != nil && !peers[len(peers)-1].Remove {
					t.Errorf("%s: the old key's removal is not last: %+v", name, peers)
				}
				for _, k := range p.Kicks {
					i := slices.IndexFunc(p.WireGuard.Peers, func(pc wgtypes.PeerConfig) bool { return pc.PublicKey == k.Key })
					if ka := p.WireGuard.Peers[i].PersistentKeepaliveInterval; ka == nil || *ka != tt.ka {
						t.Errorf("%s: kicked peer keepalive %v, want %v", name, ka, tt.ka)
					}
				}
			}
		})
	}
}

// TestKickTakesTheOldEndpoint: a peer's new key without an endpoint in the
// desired state (the server knows no address for that host) is kicked
// toward the endpoint the device learned for its old key.
func TestKickTakesTheOldEndpoint(t *testing.T) {
	f := newFixture(t)
	noEndpoint := func(phase int) *api.DesiredState {
		ds := rotatingPeerState(phase)
		for i := range ds.Interfaces[0].Peers {
			ds.Interfaces[0].Peers[i].Endpoint = ""
		}
		return ds
	}
	f.apply(noEndpoint(peerBefore))
	roamed := udp("198.51.100.7:40000")
	must(t, f.fake.ConfigureWireGuard("drago-a", wgtypes.Config{Peers: []wgtypes.PeerConfig{{PublicKey: peerKey(11), UpdateOnly: true, Endpoint: roamed}}}))
	f.apply(noEndpoint(peerOverlap))
	f.apply(noEndpoint(peerAfter))
	dev, _ := f.fake.Device("drago-a")
	i := slices.IndexFunc(dev.WireGuard.Peers, func(p wgtypes.Peer) bool { return p.PublicKey == peerKey(21) })
	if i < 0 || dev.WireGuard.Peers[i].Endpoint.String() != roamed.String() {
		t.Errorf("new key's peer %+v, want endpoint %v", dev.WireGuard.Peers, roamed)
	}
}

// TestApplyKey: switching the key sets the private key and starts a
// handshake with every peer by turning a keepalive on (1 s where there was
// none; off and on again where there was one), then restores the
// keepalives: the peers are as before.
func TestApplyKey(t *testing.T) {
	f := newFixture(t)
	ds := rotatingPeerState(peerBefore)
	ds.Interfaces[0].Peers[0].PersistentKeepalive = 25
	f.apply(ds)
	before, _ := f.fake.Device("drago-a")
	f.fake.Reset()
	must(t, f.rec.applyKey("drago-a", testKey(5)))
	want := []platformtest.Op{
		{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 2, PrivateKey: true},
		{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 2},
	}
	if d := cmp.Diff(want, writes(f.fake), cmpNetip); d != "" {
		t.Errorf("ops (-want +got):\n%s", d)
	}
	after, _ := f.fake.Device("drago-a")
	if after.WireGuard.PrivateKey != testKey(5) {
		t.Error("private key not set")
	}
	keepalives := func(d *platform.Device) map[wgtypes.Key]time.Duration {
		out := map[wgtypes.Key]time.Duration{}
		for _, p := range d.WireGuard.Peers {
			out[p.PublicKey] = p.PersistentKeepaliveInterval
		}
		return out
	}
	if d := cmp.Diff(peerView(before), peerView(after)); d != "" {
		t.Errorf("peers changed (-before +after):\n%s", d)
	}
	if d := cmp.Diff(keepalives(before), keepalives(after)); d != "" {
		t.Errorf("keepalives changed (-before +after):\n%s", d)
	}
	f.fake.Reset()
	must(t, f.rec.applyKey("drago-a", testKey(5)))
	must(t, f.rec.applyKey("drago-none", testKey(5)))
	if w := writes(f.fake); len(w) != 0 {
		t.Errorf("applying the key in use, or to a missing device: %v", w)
	}
}

// peerView renders a device's peers as key -> "endpoint allowed-ips".
func peerView(d *platform.Device) map[string]string {
	out := map[string]string{}
	for _, p := range d.WireGuard.Peers {
		out[p.PublicKey.String()] = fmt.Sprint(p.Endpoint, " ", peerPrefixes(p.AllowedIPs))
	}
	return out
}

// rotationServer plays the control plane's side of key rotation over a
// fakeServer, with the rules of server/state (rotate, markKeysReady): the
// first reported key is taken; an announced next key is published with
// SwitchKey (the simulated peers apply it at once) unless hold is set and
// clears RotateKeys; a reported next key becomes the current one.
type rotationServer struct {
	t *testing.T
	s *fakeServer

	mu        sync.Mutex
	index     uint64
	pub, next string
	rotate    bool     // DesiredState.RotateKeys
	hold      bool     // peers have not applied the next key: no SwitchKey
	device    bool     // the peer is a plain device: rotation is blocked
	announced []string // next keys seen, in order
	switched  []string // keys that became current by a rotation
	processed int      // reports handled
}

func newRotationServer(t *testing.T, s *fakeServer) *rotationServer {
	rs := &rotationServer{t: t, s: s}
	rs.publishLocked()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			rs.step()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return rs
}

// step handles the reports that arrived since the last step.
func (rs *rotationServer) step() {
	_, reports, _, _ := rs.s.snapshot()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	changed := false
	for _, r := range reports[rs.processed:] {
		for _, is := range r.Interfaces {
			if is.ID != "if-a" || is.PublicKey == "" {
				continue
			}
			switch {
			case rs.pub == "" || (is.PublicKey != rs.pub && is.PublicKey != rs.next):
				rs.pub, rs.next, changed = is.PublicKey, "", true
			case is.PublicKey == rs.next:
				rs.switched = append(rs.switched, rs.next)
				rs.pub, rs.next, changed = rs.next, "", true
			case is.NextPublicKey != "" && is.NextPublicKey != rs.next && is.NextPublicKey != rs.pub:
				rs.announced = append(rs.announced, is.NextPublicKey)
				rs.next, rs.rotate, changed = is.NextPublicKey, false, true
			case is.NextPublicKey == "" && rs.next != "":
				rs.next, changed = "", true // the agent dropped its next key
			}
		}
	}
	rs.processed = len(reports)
	if changed {
		rs.publishLocked()
	}
}

func (rs *rotationServer) publishLocked() {
	rs.index++
	ds := testState(2)
	ds.Index, ds.RotateKeys = rs.index, rs.rotate
	ifc := &ds.Interfaces[0]
	ifc.PublicKey, ifc.NextPublicKey, ifc.SwitchKey = rs.pub, rs.next, rs.next != "" && !rs.hold
	if rs.device {
		ifc.Peers[0].Device = "phone"
	}
	rs.s.setState(ds)
}

// update changes the simulated server under its lock and publishes.
func (rs *rotationServer) update(f func(rs *rotationServer)) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	f(rs)
	rs.publishLocked()
}

// view returns the current and next keys the server holds.
func (rs *rotationServer) view() (pub, next string, announced, switched []string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.pub, rs.next, slices.Clone(rs.announced), slices.Clone(rs.switched)
}

// devicePublic returns the public key the fake device drago-a uses.
func devicePublic(b *platformtest.Recorder) string {
	d, err := b.Device("drago-a")
	if err != nil {
		return ""
	}
	return d.WireGuard.PrivateKey.PublicKey().String()
}

// keysOf reads the agent's key file of if-a under root.
func keysOf(t *testing.T, root string) keyPair {
	t.Helper()
	k, err := (&keyStore{dir: filepath.Join(root, agentDirName, keysDirName)}).load("if-a")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// noPrivateKeys fails when a private key of if-a, old or new, is in logs.
func noPrivateKeys(t *testing.T, logs string, keys ...wgtypes.Key) {
	t.Helper()
	for _, k := range keys {
		if k != (wgtypes.Key{}) && strings.Contains(logs, k.String()) {
			t.Error("a private key reached the logs")
		}
	}
}

// TestAgentRotatesOnRequest walks one rotation asked for by the server
// step by step: the next key is stored before it is reported, nothing
// switches until the server says the peers have it, and the switch is one
// ConfigureWireGuard that sets the private key and changes no peer,
// stored before it is applied, then reported at once.
func TestAgentRotatesOnRequest(t *testing.T) {
	s := newFakeServer(t)
	rs := newRotationServer(t, s)
	dir := t.TempDir()
	fake := platformtest.NewRecorder()
	a := startAgent(t, testConfig(t, s, dir), fake, func(a *agent) { a.switchFallback = time.Hour })
	waitFor(t, "the first key on the server", func() bool { pub, _, _, _ := rs.view(); return pub != "" })
	old := keysOf(t, dir)
	pub0, _, _, _ := rs.view()
	if pub0 != old.Current.PublicKey().String() || devicePublic(fake) != pub0 {
		t.Fatal("server, key file and device disagree before the rotation")
	}

	rs.update(func(rs *rotationServer) { rs.rotate, rs.hold = true, true })
	waitFor(t, "the next key announced", func() bool { _, next, _, _ := rs.view(); return next != "" })
	_, next, _, _ := rs.view()
	staged := keysOf(t, dir)
	if !staged.staged() || staged.Next.PublicKey().String() != next || staged.Current != old.Current {
		t.Fatal("the announced key is not the one staged in the key file")
	}
	s.mu.Lock()
	rotate := s.state.RotateKeys
	s.mu.Unlock()
	if rotate {
		t.Error("RotateKeys still set once the next key is announced")
	}
	time.Sleep(100 * time.Millisecond) // echoed without SwitchKey: no switch
	if devicePublic(fake) != pub0 || !keysOf(t, dir).staged() {
		t.Fatal("switched before the server said the peers have the next key")
	}
	if r := s.lastReport(); r == nil || r.Interfaces[0].NextPublicKey != next || r.Interfaces[0].PublicKey != pub0 {
		t.Errorf("report during the overlap: %+v", r)
	}

	before, _ := fake.Device("drago-a")
	fake.Reset()
	rs.update(func(rs *rotationServer) { rs.hold = false })
	waitFor(t, "the new key reported as current", func() bool { pub, _, _, sw := rs.view(); return pub == next && len(sw) == 1 })
	time.Sleep(50 * time.Millisecond) // the state after the switch is applied too
	want := []platformtest.Op{{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 2, PrivateKey: true}, {Method: "ConfigureWireGuard", Device: "drago-a", Peers: 2}}
	if d := cmp.Diff(want, writes(fake), cmpNetip); d != "" {
		t.Errorf("backend writes of the switch (-want +got):\n%s", d)
	}
	after, _ := fake.Device("drago-a")
	if d := cmp.Diff(peerView(before), peerView(after)); d != "" {
		t.Errorf("the switch changed peers (-before +after):\n%s", d)
	}
	k := keysOf(t, dir)
	if k.staged() || k.Current != staged.Next || devicePublic(fake) != next || time.Since(k.ActivatedAt) > 5*time.Second {
		t.Errorf("after the switch: staged %v, activated %v ago, device %s, want %s", k.staged(), time.Since(k.ActivatedAt), devicePublic(fake), next)
	}
	if r := s.lastReport(); r == nil || r.Interfaces[0].PublicKey != next || r.Interfaces[0].NextPublicKey != "" {
		t.Errorf("report after the switch: %+v", r)
	}
	// Settled: no further rotation.
	time.Sleep(100 * time.Millisecond)
	if _, nx, ann, _ := rs.view(); nx != "" || len(ann) != 1 {
		t.Errorf("another rotation started: next %q, announced %d", nx, len(ann))
	}
	a.stop(t)
	noPrivateKeys(t, a.logs.String(), old.Current, staged.Next)
}

// TestAgentRotationFallback: peers that never apply the next key (offline)
// do not block the rotation: the agent switches switchFallback after the
// server first echoed it.
func TestAgentRotationFallback(t *testing.T) {
	s := newFakeServer(t)
	rs := newRotationServer(t, s)
	dir := t.TempDir()
	fake := platformtest.NewRecorder()
	const fallback = 300 * time.Millisecond
	startAgent(t, testConfig(t, s, dir), fake, func(a *agent) { a.switchFallback = fallback })
	waitFor(t, "the first key on the server", func() bool { pub, _, _, _ := rs.view(); return pub != "" })
	rs.update(func(rs *rotationServer) { rs.rotate, rs.hold = true, true })
	waitFor(t, "the next key announced", func() bool { _, next, _, _ := rs.view(); return next != "" })
	echoed := time.Now()
	_, next, _, _ := rs.view()
	waitFor(t, "the switch without SwitchKey", func() bool { pub, _, _, _ := rs.view(); return pub == next })
	if took := time.Since(echoed); took < fallback-50*time.Millisecond {
		t.Errorf("switched %v after the echo, want about %v", took, fallback)
	}
	if devicePublic(fake) != next {
		t.Error("device does not use the new key")
	}
}

// TestAgentRotatesOnSchedule: with a short interval the agent rotates by
// itself, never before 0.9 × the interval after the key became active.
func TestAgentRotatesOnSchedule(t *testing.T) {
	s := newFakeServer(t)
	rs := newRotationServer(t, s)
	dir := t.TempDir()
	cfg := testConfig(t, s, dir)
	cfg.KeyRotationInterval = 400 * time.Millisecond
	fake := platformtest.NewRecorder()
	startAgent(t, cfg, fake, nil)
	waitFor(t, "two scheduled rotations", func() bool { _, _, _, sw := rs.view(); return len(sw) >= 2 })
	_, _, ann, sw := rs.view()
	if ann[0] != sw[0] || ann[1] != sw[1] {
		t.Errorf("announced %v, switched %v", ann[:2], sw[:2])
	}
	k := keysOf(t, dir)
	if due, _ := rotationDue(k.Current.PublicKey(), k.ActivatedAt, cfg.KeyRotationInterval); due.Sub(k.ActivatedAt) < 360*time.Millisecond {
		t.Errorf("next rotation %v after activation", due.Sub(k.ActivatedAt))
	}
}

// TestAgentSkipsScheduleWhenDisabled: KeyRotationDisabled stops the
// schedule, not the rotations the server asks for.
func TestAgentSkipsScheduleWhenDisabled(t *testing.T) {
	s := newFakeServer(t)
	rs := newRotationServer(t, s)
	dir := t.TempDir()
	cfg := testConfig(t, s, dir)
	cfg.KeyRotationInterval = KeyRotationDisabled
	fake := platformtest.NewRecorder()
	a := startAgent(t, cfg, fake, nil)
	waitFor(t, "the first key on the server", func() bool { pub, _, _, _ := rs.view(); return pub != "" })
	// Make the key look a year old (the agent reads its key files when it
	// starts): still no rotation.
	must(t, a.stop(t))
	k := keysOf(t, dir)
	k.ActivatedAt = time.Now().Add(-365 * 24 * time.Hour)
	_, err := (&keyStore{dir: filepath.Join(dir, agentDirName, keysDirName)}).save("if-a", k)
	must(t, err)
	startAgent(t, cfg, fake, nil)
	rs.update(func(*rotationServer) {}) // a new state: the agent looks again
	time.Sleep(200 * time.Millisecond)
	if _, _, ann, _ := rs.view(); len(ann) != 0 {
		t.Fatal("rotated with the schedule disabled")
	}
	rs.update(func(rs *rotationServer) { rs.rotate = true })
	waitFor(t, "the requested rotation", func() bool { _, _, _, sw := rs.view(); return len(sw) == 1 })
}

// Environment of the crash child process (TestRotationCrashChild).
const (
	childServerEnv = "DRAGO_AGENT_TEST_CHILD_SERVER"
	childDirEnv    = "DRAGO_AGENT_TEST_CHILD_DIR"
)

// TestRotationCrashChild is not a test by itself: TestAgentRotationCrash
// runs the test binary again with it to have a real process, which the
// crash hook ends with os.Exit(3).
func TestRotationCrashChild(t *testing.T) {
	server, dir := os.Getenv(childServerEnv), os.Getenv(childDirEnv)
	if server == "" || dir == "" {
		t.Skip("run by TestAgentRotationCrash only")
	}
	cfg := Config{Server: server, JoinToken: "join-secret", DataDir: dir, Name: "host-a",
		DriftInterval: time.Hour, HeartbeatInterval: time.Hour, Wait: 2 * time.Second,
		BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := Run(ctx, cfg, platformtest.NewRecorder(), log); err != nil {
		t.Fatal(err)
	}
	t.Fatal("the crash hook did not fire")
}

// TestAgentRotationCrash kills the agent (a real process, through the
// test-only hook) right after each step of a rotation asked for by the
// server, restarts it without the hook on the same data dir, and checks
// that the rotation completes with one key that the key file, the device
// and the server agree on.
func TestAgentRotationCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	for _, step := range []string{stepGenerated, stepAnnounced, stepSwitched} {
		t.Run(step, func(t *testing.T) {
			s := newFakeServer(t)
			rs := newRotationServer(t, s)
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestRotationCrashChild$", "-test.v")
			cmd.Env = append(os.Environ(), childServerEnv+"="+s.URL, childDirEnv+"="+dir, crashEnv+"="+step)
			var out syncBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			must(t, cmd.Start())
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			waitFor(t, "the child's first key on the server", func() bool { pub, _, _, _ := rs.view(); return pub != "" })
			pub0, _, _, _ := rs.view()
			rs.update(func(rs *rotationServer) { rs.rotate = true })
			select {
			case err := <-exited:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(out.String(), "step="+step) {
					t.Fatalf("child ended with %v, want exit status 3 at %s:\n%s", err, step, out.String())
				}
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("the child did not crash at %s:\n%s", step, out.String())
			}

			// What the crash left behind.
			rs.step() // the reports that arrived before the exit
			k := keysOf(t, dir)
			pub, next, _, _ := rs.view()
			switch step {
			case stepGenerated:
				if !k.staged() || next != "" || pub != pub0 {
					t.Fatalf("after %s: staged %v, server next %q", step, k.staged(), next)
				}
			case stepAnnounced:
				if !k.staged() || next != k.Next.PublicKey().String() {
					t.Fatalf("after %s: staged %v, server next %q", step, k.staged(), next)
				}
			case stepSwitched:
				if k.staged() || k.Current.PublicKey().String() != next || pub != pub0 {
					t.Fatalf("after %s: staged %v, server current %q next %q", step, k.staged(), pub, next)
				}
			}

			fake := platformtest.NewRecorder() // the userspace device died with the process
			a := startAgent(t, Config{Server: s.URL, DataDir: dir, DriftInterval: time.Hour, HeartbeatInterval: time.Hour,
				Wait: 2 * time.Second, BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond}, fake, nil)
			waitFor(t, "one key on every side", func() bool {
				pub, next, _, _ := rs.view()
				k := keysOf(t, dir)
				return next == "" && pub != pub0 && !k.staged() && k.Current.PublicKey().String() == pub && devicePublic(fake) == pub
			})
			if _, _, ann, sw := rs.view(); len(ann) != 1 || len(sw) != 1 {
				t.Errorf("announced %d keys, switched %d; want one rotation", len(ann), len(sw))
			}
			a.stop(t)
			noPrivateKeys(t, a.logs.String()+out.String(), k.Current, k.Next)
		})
	}
}

// TestAgentRotationBlockedByDevice: a plain device among the peers holds
// the key in its config: the schedule does not rotate it, a staged key is
// dropped (and no longer announced), the agent says why once, and the
// schedule resumes when the device goes.
func TestAgentRotationBlockedByDevice(t *testing.T) {
	s := newFakeServer(t)
	rs := newRotationServer(t, s)
	dir := t.TempDir()
	cfg := testConfig(t, s, dir)
	cfg.KeyRotationInterval = time.Hour
	fake := platformtest.NewRecorder()
	a := startAgent(t, cfg, fake, func(a *agent) { a.switchFallback = time.Hour })
	waitFor(t, "the first key on the server", func() bool { pub, _, _, _ := rs.view(); return pub != "" })
	rs.update(func(rs *rotationServer) { rs.rotate, rs.hold = true, true })
	waitFor(t, "the next key announced", func() bool { _, next, _, _ := rs.view(); return next != "" })

	rs.update(func(rs *rotationServer) { rs.device = true })
	waitFor(t, "the next key dropped", func() bool { _, next, _, _ := rs.view(); return next == "" && !keysOf(t, dir).staged() })
	if r := s.lastReport(); r == nil || r.Interfaces[0].NextPublicKey != "" {
		t.Errorf("report after the drop still announces a key: %+v", r)
	}
	// Due by the schedule (a key a year old) and asked by the server: still
	// no rotation while the device is there.
	must(t, a.stop(t))
	k := keysOf(t, dir)
	k.ActivatedAt = time.Now().Add(-365 * 24 * time.Hour)
	_, err := (&keyStore{dir: filepath.Join(dir, agentDirName, keysDirName)}).save("if-a", k)
	must(t, err)
	a = startAgent(t, cfg, fake, nil)
	rs.update(func(rs *rotationServer) { rs.rotate = true })
	time.Sleep(300 * time.Millisecond)
	if _, _, ann, _ := rs.view(); len(ann) != 1 || keysOf(t, dir).staged() {
		t.Fatalf("rotated with a device peer: %d announcements", len(ann))
	}
	if n := strings.Count(a.logs.String(), "key rotation blocked"); n != 1 || !strings.Contains(a.logs.String(), "phone") {
		t.Errorf("the block logged %d times (want once, naming the device):\n%s", n, a.logs.String())
	}

	rs.update(func(rs *rotationServer) { rs.device = false })
	waitFor(t, "a rotation once the device went", func() bool { _, _, ann, _ := rs.view(); return len(ann) == 2 })
}
