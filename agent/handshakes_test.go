package agent

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/platform/platformtest"
	"github.com/drago-wg/drago/server/api"
)

// watchPeer is a desired peer of key n, with an allowed IP unless bare.
func watchPeer(t *testing.T, n byte, bare bool) wantPeer {
	p := wantPeer{PublicKey: peerKey(n)}
	if !bare {
		p.AllowedIPs = mustPrefixes(t, fmt.Sprintf("10.0.0.%d/32", n))
	}
	return p
}

// watchIface is interface if-a with the peers given, sorted as parsed.
func watchIface(peers ...wantPeer) []wantInterface {
	slices.SortFunc(peers, func(a, b wantPeer) int { return api.CompareKeyBytes(a.PublicKey, b.PublicKey) })
	return []wantInterface{{ID: "if-a", Name: "drago-a", Peers: peers}}
}

// keyReport is a report of if-a with the host key pub and the peers given
// as key -> handshake (zero: none).
func keyReport(pub string, peers map[byte]time.Time) *api.StatusReport {
	is := api.InterfaceStatus{ID: "if-a", PublicKey: pub}
	for n, hs := range peers {
		ps := api.PeerStatus{PublicKey: peerKey(n).String()}
		if !hs.IsZero() {
			ps.LastHandshake = &hs
		}
		is.Peers = append(is.Peers, ps)
	}
	return &api.StatusReport{Interfaces: []api.InterfaceStatus{is}}
}

// pendingKeys lists the peers n of if-a the watch waits for.
func pendingKeys(h *handshakeWatch) []string {
	var out []string
	if wi := h.ifaces["if-a"]; wi != nil {
		for k := range wi.pending {
			out = append(out, k.String())
		}
	}
	slices.Sort(out)
	return out
}

func keyNames(ns ...byte) []string {
	var out []string
	for _, n := range ns {
		out = append(out, peerKey(n).String())
	}
	slices.Sort(out)
	return out
}

func all(string) bool { return true }

// TestHandshakeWatch follows the watch through adds, removals, a peer's
// next key getting its allowed IPs, handshakes, a switch of the host's key
// and the schedule of reads.
func TestHandshakeWatch(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	h := newHandshakeWatch()
	p1, p2, p3 := watchPeer(t, 1, false), watchPeer(t, 2, true), watchPeer(t, 3, false)

	// The first state: every peer with allowed IPs is new; a bare next key
	// cannot handshake yet.
	h.note(watchIface(p1, p2), keyReport("", nil), t0)
	if d := cmp.Diff(keyNames(1), pendingKeys(h)); d != "" {
		t.Fatalf("pending after the first state (-want +got):\n%s", d)
	}
	if !h.next.Equal(t0.Add(time.Second)) {
		t.Errorf("next read %v, want a second after the add", h.next)
	}

	// A read without a handshake keeps watching, every second.
	t1 := t0.Add(time.Second)
	if h.observe(keyReport("pub-1", map[byte]time.Time{1: {}, 2: {}}), all) {
		t.Error("observe found a handshake in a report without one")
	}
	h.schedule(t1)
	if !h.next.Equal(t1.Add(time.Second)) {
		t.Errorf("next read %v, want %v", h.next, t1.Add(time.Second))
	}

	// The handshake ends the watch: no more reads.
	if !h.observe(keyReport("pub-1", map[byte]time.Time{1: t1}), all) {
		t.Error("observe missed the first handshake")
	}
	h.schedule(t1)
	if len(pendingKeys(h)) != 0 || !h.next.IsZero() {
		t.Errorf("after the handshake: pending %v, next %v; want none", pendingKeys(h), h.next)
	}

	// p2 (a next key) gets its allowed IPs and p3 is added: both watched.
	// A read of an interface the predicate excludes says nothing.
	t2 := t0.Add(10 * time.Second)
	p2ips := watchPeer(t, 2, false)
	h.note(watchIface(p1, p2ips, p3), keyReport("pub-1", nil), t2)
	if d := cmp.Diff(keyNames(2, 3), pendingKeys(h)); d != "" {
		t.Fatalf("pending after adds (-want +got):\n%s", d)
	}
	if h.observe(keyReport("pub-1", map[byte]time.Time{2: t2}), func(string) bool { return false }) {
		t.Error("observe used an interface that was not read")
	}

	// p3 removed: no longer watched.
	h.note(watchIface(p1, p2ips), keyReport("pub-1", nil), t2)
	if d := cmp.Diff(keyNames(2), pendingKeys(h)); d != "" {
		t.Errorf("pending after a removal (-want +got):\n%s", d)
	}

	// The host switches its key: every peer with allowed IPs waits for a
	// handshake under the new key; the old handshakes do not count.
	t3 := t0.Add(20 * time.Second)
	h.note(watchIface(p1, p2ips), keyReport("pub-2", nil), t3)
	if d := cmp.Diff(keyNames(1, 2), pendingKeys(h)); d != "" {
		t.Fatalf("pending after the key switch (-want +got):\n%s", d)
	}
	if h.observe(keyReport("pub-2", map[byte]time.Time{1: t1, 2: t2}), all) {
		t.Error("a handshake from before the key switch counted")
	}
	if !h.observe(keyReport("pub-2", map[byte]time.Time{1: t3.Add(time.Second)}), all) {
		t.Error("a handshake under the new key was missed")
	}
	if d := cmp.Diff(keyNames(2), pendingKeys(h)); d != "" {
		t.Errorf("pending after a handshake under the new key (-want +got):\n%s", d)
	}

	// Reads slow down after fastFor and stop at watchFor.
	h.schedule(t3.Add(h.fastFor))
	if want := t3.Add(h.fastFor + h.slowEvery); !h.next.Equal(want) {
		t.Errorf("next read %v, want %v", h.next, want)
	}
	h.schedule(t3.Add(h.watchFor - time.Second))
	if want := t3.Add(h.watchFor); !h.next.Equal(want) {
		t.Errorf("next read %v, want the expiry %v", h.next, want)
	}
	h.expire(t3.Add(h.watchFor))
	h.schedule(t3.Add(h.watchFor))
	if len(pendingKeys(h)) != 0 || !h.next.IsZero() || h.pending() {
		t.Errorf("after watchFor: pending %v, next %v; want none", pendingKeys(h), h.next)
	}

	// The interface gone: forgotten.
	h.note(nil, keyReport("", nil), t3)
	if len(h.ifaces) != 0 {
		t.Errorf("interfaces kept after they left the state: %v", h.ifaces)
	}
}

// deviceReads counts the Device calls f recorded.
func deviceReads(f *platformtest.Recorder) int {
	n := 0
	for _, op := range f.Ops() {
		if op.Method == "Device" {
			n++
		}
	}
	return n
}

// handshakeOf returns the last handshake of peer n the server got from the
// reports, which may be deltas, or nil.
func handshakeOf(s *fakeServer, n byte) *time.Time {
	_, reports, _, _ := s.snapshot()
	key := peerKey(n).String()
	var hs *time.Time
	for _, r := range reports {
		for _, is := range r.Interfaces {
			for _, p := range is.Peers {
				if p.PublicKey == key && p.LastHandshake != nil {
					hs = p.LastHandshake
				}
			}
		}
	}
	return hs
}

// TestAgentReportsFirstHandshakeAtOnce: with an hour between heartbeats, a
// peer's first handshake reaches the server about a second after it
// happens, and once every peer has one the agent reads its device no more.
func TestAgentReportsFirstHandshakeAtOnce(t *testing.T) {
	s := newFakeServer(t)
	s.setState(testState(2))
	fake := platformtest.NewRecorder()
	cfg := testConfig(t, s, t.TempDir()) // heartbeats every hour
	startAgent(t, cfg, fake, nil)
	waitFor(t, "a report of index 7", func() bool {
		r := s.lastReport()
		return r != nil && r.AppliedIndex == 7 && hasDevice(fake, "drago-a", 2)
	})

	for _, n := range []byte{10, 11} {
		hs := time.Now().UTC()
		if err := fake.SetPeerStats("drago-a", peerKey(n), hs, 148, 92); err != nil {
			t.Fatal(err)
		}
		took := waitForLong(t, 3*time.Second, fmt.Sprintf("peer %d's handshake on the server", n), func() bool {
			got := handshakeOf(s, n)
			return got != nil && got.Equal(hs)
		})
		t.Logf("peer %d: handshake reported %v after it happened", n, took.Round(time.Millisecond))
	}
	if r := s.lastReport(); r.PeersSince == 0 {
		t.Errorf("the handshake went in a whole report, want a delta: %+v", r)
	}

	// Every peer has its handshake: no more reads, no more reports.
	time.Sleep(100 * time.Millisecond) // a tick that was under way
	fake.Reset()
	_, before, _, _ := s.snapshot()
	time.Sleep(2500 * time.Millisecond)
	_, after, _, _ := s.snapshot()
	if n := deviceReads(fake); n != 0 {
		t.Errorf("%d device reads in 2.5s after every peer had a handshake, want 0", n)
	}
	if n := len(after) - len(before); n != 0 {
		t.Errorf("%d reports in 2.5s after every peer had a handshake, want 0", n)
	}
}

// TestAgentHandshakeWatchIsBounded: peers that never handshake are read
// for watchFor after they were added, fast then slower, and then no more;
// a peer added later is watched on its own.
func TestAgentHandshakeWatchIsBounded(t *testing.T) {
	s := newFakeServer(t)
	s.setState(testState(3))
	fake := platformtest.NewRecorder()
	startAgent(t, testConfig(t, s, t.TempDir()), fake, func(a *agent) {
		h := a.handshakes
		h.watchFor, h.fastFor, h.fastEvery, h.slowEvery = 1500*time.Millisecond, 500*time.Millisecond, 100*time.Millisecond, 300*time.Millisecond
	})
	waitFor(t, "a report of index 7", func() bool { r := s.lastReport(); return r != nil && r.AppliedIndex == 7 })
	time.Sleep(2 * time.Second)
	// 1 read to reconcile; 5 in the fast 0.5s, about 3 in the slow second.
	if n := deviceReads(fake); n < 5 || n > 12 {
		t.Errorf("%d device reads while watching 3 silent peers for 1.5s, want about 9", n)
	}
	fake.Reset()
	time.Sleep(time.Second)
	if n := deviceReads(fake); n != 0 {
		t.Errorf("%d device reads after the watch ended, want 0", n)
	}

	// A fourth peer: watched, and reported when it comes up.
	applyAndWait(t, s, 4, 12)
	hs := time.Now().UTC()
	if err := fake.SetPeerStats("drago-a", peerKey(13), hs, 1, 1); err != nil {
		t.Fatal(err)
	}
	waitForLong(t, time.Second, "the new peer's handshake on the server", func() bool {
		got := handshakeOf(s, 13)
		return got != nil && got.Equal(hs)
	})
}

// TestAgentBatchesFirstHandshakes: 20 peers coming up over a second cost
// the server at most one report per second, and it gets every handshake.
func TestAgentBatchesFirstHandshakes(t *testing.T) {
	s := newFakeServer(t)
	s.setState(testState(20))
	fake := platformtest.NewRecorder()
	startAgent(t, testConfig(t, s, t.TempDir()), fake, nil)
	waitFor(t, "a report of index 7", func() bool {
		r := s.lastReport()
		return r != nil && r.AppliedIndex == 7 && hasDevice(fake, "drago-a", 20)
	})
	_, before, _, _ := s.snapshot()
	start := time.Now()
	for i := range 20 {
		if err := fake.SetPeerStats("drago-a", peerKey(byte(10+i)), time.Now(), 1, 1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitForLong(t, 3*time.Second, "every handshake on the server", func() bool {
		for i := range 20 {
			if handshakeOf(s, byte(10+i)) == nil {
				return false
			}
		}
		return true
	})
	_, after, _, _ := s.snapshot()
	if n, secs := len(after)-len(before), time.Since(start).Seconds(); float64(n) > secs+1 {
		t.Errorf("%d reports for 20 handshakes in %.1fs, want at most one a second", n, secs)
	}
}

// waitForLong polls cond until it holds or timeout passes, and returns how
// long it took.
func waitForLong(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// TestObserveDevice: a device read ends the watch of the peers it shows
// with a handshake, and only theirs.
func TestObserveDevice(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	h := newHandshakeWatch()
	h.note(watchIface(watchPeer(t, 1, false), watchPeer(t, 2, false)), keyReport("pub-1", nil), t0)
	peers := []wgtypes.Peer{{PublicKey: peerKey(1)}, {PublicKey: peerKey(2), LastHandshakeTime: t0.Add(time.Second)}, {PublicKey: peerKey(3), LastHandshakeTime: t0}}
	if !h.observeDevice("if-a", peers) || h.observeDevice("if-b", peers) {
		t.Error("observeDevice missed peer 2's handshake, or saw one on an unwatched interface")
	}
	if d := cmp.Diff(keyNames(1), pendingKeys(h)); d != "" {
		t.Errorf("pending (-want +got):\n%s", d)
	}
}

// BenchmarkHandshakeRead is the watch's work per read of a 1,000-peer
// device (the Recorder's read shares the peers) whose peers all wait for
// a first handshake, as on a host that just joined a mesh.
func BenchmarkHandshakeRead(b *testing.B) {
	fake := platformtest.NewRecorder()
	if err := fake.CreateDevice("drago-a"); err != nil {
		b.Fatal(err)
	}
	var cfg wgtypes.Config
	var want []wantPeer
	for i := range 1000 {
		var k wgtypes.Key
		k[0], k[1] = byte(i), byte(i>>8)
		cfg.Peers = append(cfg.Peers, wgtypes.PeerConfig{PublicKey: k})
		want = append(want, wantPeer{PublicKey: k, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}})
	}
	if err := fake.ConfigureWireGuard("drago-a", cfg); err != nil {
		b.Fatal(err)
	}
	h := newHandshakeWatch()
	h.note(watchIface(want...), keyReport("pub-1", nil), time.Now())
	b.ReportAllocs()
	for b.Loop() {
		dev, err := fake.Device("drago-a")
		if err != nil {
			b.Fatal(err)
		}
		if h.observeDevice("if-a", dev.WireGuard.Peers) {
			b.Fatal("a handshake")
		}
	}
}
