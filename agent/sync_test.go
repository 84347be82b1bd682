package agent

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/platform/platformtest"
	"github.com/drago-wg/drago/server/api"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// running is an agent started by startAgent.
type running struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // Run's result, once done is closed
	logs   *syncBuffer
}

// stop cancels the agent and returns Run's result; it fails the test if
// Run does not return promptly.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of cancel")
		return nil
	}
}

func testConfig(t *testing.T, s *fakeServer, dataDir string) Config {
	return Config{
		Server:            s.URL,
		JoinToken:         s.joinToken,
		DataDir:           dataDir,
		Name:              "host-a",
		Labels:            map[string]string{"site": "test"},
		AdvertiseAddress:  "198.51.100.10",
		DriftInterval:     time.Hour,
		HeartbeatInterval: time.Hour,
		Wait:              2 * time.Second,
		BackoffBase:       10 * time.Millisecond,
		BackoffMax:        50 * time.Millisecond,
	}
}

// startAgent runs the agent until the test ends or stop is called; tune,
// when not nil, adjusts the agent before it runs.
func startAgent(t *testing.T, cfg Config, b *platformtest.Recorder, tune func(*agent)) *running {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.Firewall == nil {
		cfg.Firewall = platformtest.NewFirewall() // never the host's
	}
	a, err := newAgent(cfg, b, log)
	if err != nil {
		t.Fatal(err)
	}
	if tune != nil {
		tune(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{}), logs: logs}
	go func() {
		r.err = a.run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
		if t.Failed() || testing.Verbose() {
			t.Logf("agent logs:\n%s", logs)
		}
	})
	return r
}

// waitFor polls cond until it holds or 5s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hasDevice reports whether b has the interface with n peers.
func hasDevice(b *platformtest.Recorder, name string, n int) bool {
	d, err := b.Device(name)
	return err == nil && len(d.WireGuard.Peers) == n
}

// reportedKey returns the public key of interface id in the newest status
// report that has it.
func reportedKey(s *fakeServer, id string) string {
	_, reports, _, _ := s.snapshot()
	for i := len(reports) - 1; i >= 0; i-- {
		for _, ifc := range reports[i].Interfaces {
			if ifc.ID == id && ifc.PublicKey != "" {
				return ifc.PublicKey
			}
		}
	}
	return ""
}

func TestAgentRegistersOnceAndReusesIdentity(t *testing.T) {
	s := newFakeServer(t)
	s.setState(testState(3))
	dir := t.TempDir()

	fake := platformtest.NewRecorder()
	a := startAgent(t, testConfig(t, s, dir), fake, nil)
	waitFor(t, "the interface's public key in a report", func() bool { return reportedKey(s, "if-a") != "" })
	if err := a.stop(t); err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
	key1 := reportedKey(s, "if-a")

	registers, _, _, _ := s.snapshot()
	for k := range registers {
		if len(registers[k].RequestID) != 32 {
			t.Errorf("register request id %q, want 32 random hex characters", registers[k].RequestID)
		}
		registers[k].RequestID = "" // random; register_test.go covers it
	}
	want := []api.RegisterRequest{{
		Name: "host-a", Labels: map[string]string{"site": "test"}, AdvertiseAddress: "198.51.100.10",
		OS: runtime.GOOS, Arch: runtime.GOARCH, AgentVersion: api.Version,
	}}
	if d := cmp.Diff(want, registers); d != "" {
		t.Errorf("register calls (-want +got):\n%s", d)
	}

	// Restart, as after a reboot with the userspace backend: the same
	// identity and key, and no second registration even without the token.
	cfg := testConfig(t, s, dir)
	cfg.JoinToken = ""
	fake2 := platformtest.NewRecorder()
	a = startAgent(t, cfg, fake2, nil)
	waitFor(t, "a report from the restarted agent", func() bool {
		_, reports, _, _ := s.snapshot()
		return len(reports) >= 2 && hasDevice(fake2, "drago-a", 3)
	})
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	registers, _, calls, _ := s.snapshot()
	if len(registers) != 1 {
		t.Errorf("register calls = %d, want 1", len(registers))
	}
	if key2 := reportedKey(s, "if-a"); key2 != key1 {
		t.Errorf("public key after restart = %s, want %s", key2, key1)
	}
	for _, c := range calls {
		if c.Auth != "cred-1" {
			t.Errorf("config call with bearer %q, want the host credential", c.Auth)
		}
	}
	d1, _ := fake.Device("drago-a")
	d2, _ := fake2.Device("drago-a")
	if d1 != nil && d2 != nil && d1.WireGuard.PrivateKey != d2.WireGuard.PrivateKey {
		t.Error("private key changed across restarts")
	}
}

func TestAgentDataDirModesAndSecrets(t *testing.T) {
	s := newFakeServer(t)
	s.setState(testState(2))
	dir := t.TempDir()
	fake := platformtest.NewRecorder()
	a := startAgent(t, testConfig(t, s, dir), fake, nil)
	waitFor(t, "a report with the key", func() bool { return reportedKey(s, "if-a") != "" })
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}

	if runtime.GOOS != "windows" {
		for path, want := range map[string]os.FileMode{
			"agent":                0o700 | os.ModeDir,
			"agent/keys":           0o700 | os.ModeDir,
			"agent/identity.json":  0o600,
			"agent/desired.json":   0o600,
			"agent/owned.json":     0o600,
			"agent/keys/if-a.json": 0o600,
		} {
			fi, err := os.Stat(filepath.Join(dir, path))
			if err != nil {
				t.Error(err)
				continue
			}
			if got := fi.Mode() & (os.ModeDir | os.ModePerm); got != want {
				t.Errorf("%s mode = %v, want %v", path, got, want)
			}
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "agent", "*", ".*"))
	if len(leftovers) > 0 {
		t.Errorf("temp files left: %v", leftovers)
	}

	// No request carries the private key in any form, and the credential
	// only ever travels in the Authorization header.
	dev, err := fake.Device("drago-a")
	if err != nil {
		t.Fatal(err)
	}
	priv := dev.WireGuard.PrivateKey
	secrets := []string{priv.String(), hex.EncodeToString(priv[:]), string(priv[:])}
	_, _, _, reqs := s.snapshot()
	for _, r := range reqs {
		dump := r.Method + " " + r.Path + "?" + r.Query + "\n" + string(r.Body)
		for k, v := range r.Header {
			dump += "\n" + k + ": " + strings.Join(v, ",")
		}
		for _, sec := range secrets {
			if strings.Contains(dump, sec) {
				t.Errorf("request %s %s carries the private key", r.Method, r.Path)
			}
		}
		if strings.Contains(string(r.Body), "cred-1") || strings.Contains(r.Query, "cred-1") {
			t.Errorf("request %s %s carries the credential outside the header", r.Method, r.Path)
		}
	}
	if strings.Contains(a.logs.String(), priv.String()) || strings.Contains(a.logs.String(), "cred-1") {
		t.Error("a secret reached the logs")
	}
	if !strings.Contains(a.logs.String(), "subsystem=agent") {
		t.Error("logs lack subsystem=agent")
	}
}

func TestAgentAppliesSavedStateWhenServerIsDown(t *testing.T) {
	s := newFakeServer(t)
	s.setState(testState(3))
	dir := t.TempDir()
	a := startAgent(t, testConfig(t, s, dir), platformtest.NewRecorder(), nil)
	waitFor(t, "the first report", func() bool { return reportedKey(s, "if-a") != "" })
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// The host reboots while the server is down.
	fake := platformtest.NewRecorder()
	a = startAgent(t, testConfig(t, s, dir), fake, nil)
	waitFor(t, "the saved state applied", func() bool { return hasDevice(fake, "drago-a", 3) })
	time.Sleep(100 * time.Millisecond) // several failed polls
	for _, op := range fake.Ops() {
		if op.Method == "DeleteDevice" {
			t.Errorf("interface deleted while the server is down: %+v", op)
		}
	}
	if !strings.Contains(a.logs.String(), "call=\"fetch desired state\"") {
		t.Error("no log of the failed fetch")
	}
}

func TestAgentKeepsTunnelsWhenServerErrors(t *testing.T) {
	s := newFakeServer(t)
	s.setState(testState(3))
	fake := platformtest.NewRecorder()
	a := startAgent(t, testConfig(t, s, t.TempDir()), fake, func(a *agent) { a.cfg.DriftInterval = 20 * time.Millisecond })
	waitFor(t, "the interface", func() bool { return hasDevice(fake, "drago-a", 3) })
	s.breakConfig()
	waitFor(t, "failures logged", func() bool { return strings.Count(a.logs.String(), "status=500") >= 3 })
	if !hasDevice(fake, "drago-a", 3) {
		t.Error("interface lost while the server answers 500")
	}
}

func TestAgentBacksOffOnErrors(t *testing.T) {
	s := newFakeServer(t)
	s.setState(testState(1))
	s.failConfig = 4
	fake := platformtest.NewRecorder()
	cfg := testConfig(t, s, t.TempDir())
	cfg.BackoffBase, cfg.BackoffMax = 20*time.Millisecond, 80*time.Millisecond
	// No jitter: every delay is its upper bound.
	startAgent(t, cfg, fake, func(a *agent) { a.jitter = func(d time.Duration) time.Duration { return d } })
	waitFor(t, "the state applied after the errors", func() bool { return hasDevice(fake, "drago-a", 1) })

	_, _, calls, _ := s.snapshot()
	if len(calls) < 5 {
		t.Fatalf("config calls = %d, want at least 5", len(calls))
	}
	wantGaps := []time.Duration{20, 40, 80, 80}
	for i, want := range wantGaps {
		want *= time.Millisecond
		if gap := calls[i+1].At.Sub(calls[i].At); gap < want-5*time.Millisecond {
			t.Errorf("gap after failure %d = %v, want >= %v", i+1, gap, want)
		}
	}
}

func TestBackoff(t *testing.T) {
	b := &backoff{base: time.Second, max: 30 * time.Second, jitter: func(d time.Duration) time.Duration { return d }}
	var got []time.Duration
	for range 8 {
		got = append(got, b.next())
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30}
	for i := range want {
		want[i] *= time.Second
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("delays (-want +got):\n%s", d)
	}
	b.reset()
	if d := b.next(); d != time.Second {
		t.Errorf("after reset: %v, want 1s", d)
	}
	for range 1000 {
		if d := fullJitter(3 * time.Second); d < 0 || d > 3*time.Second {
			t.Fatalf("fullJitter(3s) = %v, want within [0, 3s]", d)
		}
	}
}

func TestAgentFollowsChangesAndReports(t *testing.T) {
	s := newFakeServer(t)
	s.setState(testState(2))
	fake := platformtest.NewRecorder()
	cfg := testConfig(t, s, t.TempDir())
	cfg.HeartbeatInterval = 50 * time.Millisecond
	startAgent(t, cfg, fake, nil)
	// withPeers finds a report of the applied index listing n peers.
	withPeers := func(index uint64, n int) *api.StatusReport {
		_, reports, _, _ := s.snapshot()
		for _, r := range reports {
			if r.AppliedIndex == index && len(r.Interfaces) == 1 && len(r.Interfaces[0].Peers) == n {
				return &r
			}
		}
		return nil
	}
	waitFor(t, "a heartbeat with the peers of index 7", func() bool { return withPeers(7, 2) != nil })

	next := testState(4)
	next.Index = 12
	s.setState(next)
	// The report on change carries no counters; the next heartbeat lists
	// the peers that changed since the last report the server took: the
	// two new ones.
	waitFor(t, "a heartbeat with the new peers", func() bool { return withPeers(12, 2) != nil })
	if !hasDevice(fake, "drago-a", 4) {
		t.Error("new peers not applied")
	}
	_, reports, _, _ := s.snapshot()
	first, r := reports[0], withPeers(12, 2)
	if first.PeersSince != 0 || r.PeersSince == 0 || r.PeersSince >= r.Seq {
		t.Errorf("first report peers_since %d, last report seq %d peers_since %d", first.PeersSince, r.Seq, r.PeersSince)
	}
	if r.Backend != "fake" || r.OS != runtime.GOOS || r.Arch != runtime.GOARCH || r.AgentVersion != api.Version ||
		r.AdvertiseAddress != "198.51.100.10" || len(r.Interfaces[0].RemovedPeers) != 0 || r.Interfaces[0].ListenPort != 51820 {
		t.Errorf("report = %+v", r)
	}
	_, _, calls, _ := s.snapshot()
	var indexes []uint64
	for _, c := range calls {
		indexes = append(indexes, c.Index)
	}
	if len(indexes) < 3 || indexes[0] != 0 || indexes[1] != 7 || indexes[2] != 12 {
		t.Errorf("queried indexes = %v, want 0, 7, 12, ...", indexes)
	}
}

func TestAgentSendsHeartbeats(t *testing.T) {
	s := newFakeServer(t)
	s.setState(testState(1))
	fake := platformtest.NewRecorder()
	cfg := testConfig(t, s, t.TempDir())
	cfg.HeartbeatInterval = 30 * time.Millisecond
	startAgent(t, cfg, fake, nil)
	waitFor(t, "five reports", func() bool {
		_, reports, _, _ := s.snapshot()
		return len(reports) >= 5 && reports[len(reports)-1].AppliedIndex == 7
	})
}

func TestAgentRepairsDrift(t *testing.T) {
	s := newFakeServer(t)
	s.setState(testState(3))
	fake := platformtest.NewRecorder()
	cfg := testConfig(t, s, t.TempDir())
	cfg.DriftInterval = 20 * time.Millisecond
	a := startAgent(t, cfg, fake, nil)
	waitFor(t, "the interface", func() bool { return hasDevice(fake, "drago-a", 3) })

	// wg set drago-a peer K remove
	must(t, fake.ConfigureWireGuard("drago-a", wgtypes.Config{Peers: []wgtypes.PeerConfig{{PublicKey: peerKey(11), Remove: true}}}))
	must(t, fake.DeleteAddress("drago-a", netip.MustParsePrefix("10.0.0.1/24")))
	waitFor(t, "the peer restored", func() bool {
		d, err := fake.Device("drago-a")
		return err == nil && len(d.WireGuard.Peers) == 3 && len(d.Addresses) == 1
	})
	waitFor(t, "a drift log", func() bool { return strings.Contains(a.logs.String(), "repaired drift") })
}

// TestAgentAppliesChangesPastABadPeer runs the agent against states in
// which the server keeps sending bad peers: a key another interface uses
// too, and a malformed peer. The agent leaves out those and applies every
// later change to the interface, reporting each state applied.
func TestAgentAppliesChangesPastABadPeer(t *testing.T) {
	state := func(index uint64, extra ...api.DesiredPeer) *api.DesiredState {
		ds := testState(3)
		ds.Index = index
		ps := ds.Interfaces[0].Peers
		for i := range ps {
			ps[i].InterfaceID = fmt.Sprintf("if-p%d", i)
		}
		ps = append(ps, extra...)
		slices.SortFunc(ps, api.ComparePeers)
		ds.Interfaces[0].Peers = ps
		return ds
	}
	impostor := api.DesiredPeer{InterfaceID: "if-x", PublicKey: peerKey(12).String(), AllowedIPs: []string{"10.0.0.9/32", "192.168.9.0/24"}}
	malformed := api.DesiredPeer{InterfaceID: "if-y", PublicKey: peerKey(13).String(), AllowedIPs: []string{"nope"}}
	newPeer := api.DesiredPeer{InterfaceID: "if-z", PublicKey: peerKey(14).String(), AllowedIPs: []string{"10.0.0.14/32", "192.168.14.0/24"}}
	steps := []struct {
		name   string
		state  *api.DesiredState
		peers  []wgtypes.Key // on the device
		routes []string
		logs   []string // in the agent's log
	}{
		{
			name:   "good state",
			state:  state(7),
			peers:  []wgtypes.Key{peerKey(10), peerKey(11), peerKey(12)},
			routes: []string{"192.168.2.0/24"},
		},
		{
			name:   "an impostor of if-p2 and a malformed peer",
			state:  state(8, impostor, malformed),
			peers:  []wgtypes.Key{peerKey(10), peerKey(11)},
			routes: []string{},
			logs: []string{
				`skipping bad peer from the server`,
				fmt.Sprintf(`peer %s: public key listed by 2 peers (interface_id [\"if-p2\" \"if-x\"])`, peerKey(12)),
				`(interface_id \"if-y\"): allowed ip \"nope\"`,
				`skipped_peers=2`,
			},
		},
		{
			name:   "a new peer while the bad ones stay",
			state:  state(9, impostor, malformed, newPeer),
			peers:  []wgtypes.Key{peerKey(10), peerKey(11), peerKey(14)},
			routes: []string{"192.168.14.0/24"},
		},
	}
	s := newFakeServer(t)
	fake := platformtest.NewRecorder()
	s.setState(steps[0].state)
	a := startAgent(t, testConfig(t, s, t.TempDir()), fake, nil)
	for _, st := range steps {
		s.setState(st.state)
		waitFor(t, st.name+": a report of the state applied", func() bool {
			r := s.lastReport()
			return r != nil && r.AppliedIndex == st.state.Index
		})
		dev, err := fake.Device("drago-a")
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		var peers []wgtypes.Key
		for _, p := range dev.WireGuard.Peers {
			peers = append(peers, p.PublicKey)
		}
		sortKeys(peers)
		sortKeys(st.peers)
		if d := cmp.Diff(st.peers, peers); d != "" {
			t.Errorf("%s: device peers (-want +got):\n%s", st.name, d)
		}
		routes := []string{}
		for _, r := range dev.Routes {
			routes = append(routes, r.String())
		}
		if d := cmp.Diff(st.routes, routes); d != "" {
			t.Errorf("%s: device routes (-want +got):\n%s", st.name, d)
		}
		for _, l := range st.logs {
			if !strings.Contains(a.logs.String(), l) {
				t.Errorf("%s: no %q in the agent's log", st.name, l)
			}
		}
	}
}

func TestAgentCredentialRejected(t *testing.T) {
	s := newFakeServer(t)
	s.setState(testState(2))
	fake := platformtest.NewRecorder()
	cfg := testConfig(t, s, t.TempDir())
	cfg.DriftInterval = 20 * time.Millisecond
	a := startAgent(t, cfg, fake, nil)
	waitFor(t, "the interface", func() bool { return hasDevice(fake, "drago-a", 2) })

	s.forgetHosts() // the host was deleted on the server
	waitFor(t, "the rejection logged", func() bool {
		return strings.Contains(a.logs.String(), "rejected this host's credential")
	})
	time.Sleep(100 * time.Millisecond)
	registers, _, _, _ := s.snapshot()
	if len(registers) != 1 {
		t.Errorf("register calls = %d, want 1 (no silent re-registration)", len(registers))
	}
	if !hasDevice(fake, "drago-a", 2) {
		t.Error("tunnels not kept after the credential was rejected")
	}
}

func TestAgentIgnoresStateOfAnotherHost(t *testing.T) {
	s := newFakeServer(t)
	fake := platformtest.NewRecorder()
	a := startAgent(t, testConfig(t, s, t.TempDir()), fake, nil)
	waitFor(t, "registration", func() bool { r, _, _, _ := s.snapshot(); return len(r) == 1 })
	// One step: the agent must never see this state under its own host ID.
	s.mu.Lock()
	s.state = *testState(1)
	s.state.HostID = "someone-else"
	s.wake()
	s.mu.Unlock()
	waitFor(t, "the refusal logged", func() bool { return strings.Contains(a.logs.String(), "another host") })
	if _, err := fake.Device("drago-a"); err == nil {
		t.Error("applied another host's state")
	}
}

func TestAgentStopsLongPollOnCancel(t *testing.T) {
	s := newFakeServer(t)
	s.setState(testState(1))
	fake := platformtest.NewRecorder()
	cfg := testConfig(t, s, t.TempDir())
	cfg.Wait = time.Minute
	a := startAgent(t, cfg, fake, nil)
	waitFor(t, "a blocking query in flight", func() bool {
		_, _, calls, _ := s.snapshot()
		return len(calls) >= 2
	})
	start := time.Now()
	if err := a.stop(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("stop took %v", took)
	}
	waitFor(t, "the server to see the poll cancelled", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.cancelled == 1
	})
	if _, err := fake.Device("drago-a"); err != nil {
		t.Errorf("interface removed on stop: %v", err)
	}
	// No goroutine of the agent, nor an idle HTTP connection, outlives Run.
	deadline := time.Now().Add(5 * time.Second)
	for {
		leaked := leakedGoroutines()
		if leaked == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines left after Run returned:\n%s", leaked)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// leakedGoroutines returns the stacks of goroutines of the agent or of
// client-side HTTP connections.
func leakedGoroutines() string {
	var buf bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&buf, 2)
	var leaked string
	for _, g := range strings.Split(buf.String(), "\n\n") {
		if strings.Contains(g, "drago/agent.(*agent)") || strings.Contains(g, "net/http.(*persistConn)") {
			leaked += g + "\n\n"
		}
	}
	return leaked
}

func TestRunErrors(t *testing.T) {
	fake := platformtest.NewRecorder()
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"no server", Config{DataDir: t.TempDir(), JoinToken: "x"}, "Server"},
		{"not registered and no token", Config{Server: "http://127.0.0.1:1", DataDir: t.TempDir()}, "JoinToken"},
		{"bad backend kind", Config{Server: "http://127.0.0.1:1", DataDir: t.TempDir(), JoinToken: "x", Backend: "kernal"}, "Backend"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Run(context.Background(), tt.cfg, fake, nil)
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("Run = %v, want an error naming %s", err, tt.field)
			}
		})
	}
	t.Run("cancelled before registering", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := Run(ctx, Config{Server: "http://127.0.0.1:1", DataDir: t.TempDir(), JoinToken: "x"}, fake, nil)
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	})
	t.Run("corrupt identity", func(t *testing.T) {
		dir := t.TempDir()
		must(t, os.MkdirAll(filepath.Join(dir, "agent"), 0o700))
		must(t, os.WriteFile(filepath.Join(dir, "agent", "identity.json"), []byte("{"), 0o600))
		err := Run(context.Background(), Config{Server: "http://127.0.0.1:1", DataDir: dir}, fake, nil)
		if err == nil || !strings.Contains(err.Error(), "identity.json") {
			t.Errorf("Run = %v, want an error naming identity.json", err)
		}
	})
}

func TestFailureLogsAreThrottled(t *testing.T) {
	logs := &syncBuffer{}
	dir, err := openDataDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := &agent{
		log:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: dropTime})),
		dir:   dir,
		ident: &identity{HostID: "h1", Credential: "secret"},
	}
	f := &failures{call: "fetch desired state"}
	down := errors.New("connection refused")
	for range 3 {
		a.failed(f, down)
	}
	a.failed(f, &api.ResponseError{Status: 401, Message: "invalid credential"})
	a.failed(f, &api.ResponseError{Status: 401, Message: "invalid credential"})
	a.succeeded(f)
	a.succeeded(f) // no second recovery line

	var got []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		level, rest, _ := strings.Cut(line, " ")
		msg, _, _ := strings.Cut(strings.TrimPrefix(rest, "msg="), " call=")
		msg, _, _ = strings.Cut(msg, " err=")
		got = append(got, level+" "+msg)
	}
	want := []string{
		`level=WARN "call to the server failed; keeping the tunnels and retrying"`,
		`level=DEBUG "call to the server failed; keeping the tunnels and retrying"`,
		`level=DEBUG "call to the server failed; keeping the tunnels and retrying"`,
		`level=ERROR "the server rejected this host's credential; keeping the tunnels and retrying"`,
		`level=DEBUG "the server rejected this host's credential; keeping the tunnels and retrying"`,
		`level=INFO "the server answers again"`,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("log lines (-want +got):\n%s", d)
	}
	if strings.Contains(logs.String(), "secret") {
		t.Error("the credential reached the logs")
	}
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		return slog.Attr{}
	}
	return a
}

func TestSleepOrWake(t *testing.T) {
	wake := make(chan struct{}, 1)
	signal(wake) // before the wait: dropped
	start := time.Now()
	sleepOrWake(context.Background(), 50*time.Millisecond, wake)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("a stale signal cut the wait to %v", d)
	}
	go func() { time.Sleep(20 * time.Millisecond); signal(wake) }()
	start = time.Now()
	sleepOrWake(context.Background(), 10*time.Second, wake)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a signal during the wait did not end it (%v)", d)
	}
}

// TestWholeReportAfterConflict checks that the agent sends its whole report
// again when the server does not hold the one a delta report builds on (the
// server restarted), without waiting for a retry.
func TestWholeReportAfterConflict(t *testing.T) {
	s := startHeartbeating(t, 3, 50*time.Millisecond)
	waitFor(t, "a delta report", func() bool { r := s.lastReport(); return r != nil && r.PeersSince != 0 })
	s.mu.Lock()
	s.rejectDeltas = true
	s.reports = nil
	s.mu.Unlock()
	waitFor(t, "a whole report", func() bool { r := s.lastReport(); return r != nil && r.PeersSince == 0 })
	if r := s.lastReport(); len(r.Interfaces) != 1 || len(r.Interfaces[0].Peers) != 3 {
		t.Errorf("whole report after 409 = %+v", r)
	}
}

// TestQuietHeartbeats checks that heartbeats that would tell the server
// nothing new are skipped for up to quietReports intervals, while a change
// is reported at once.
func TestQuietHeartbeats(t *testing.T) {
	s := startHeartbeating(t, 2, 40*time.Millisecond)
	waitFor(t, "a report of index 7", func() bool { r := s.lastReport(); return r != nil && r.AppliedIndex == 7 })
	time.Sleep(200 * time.Millisecond) // let the first heartbeat with counters go
	_, before, _, _ := s.snapshot()
	time.Sleep(1200 * time.Millisecond) // 30 heartbeats
	_, after, _, _ := s.snapshot()
	// Nothing changed: one report per quietReports heartbeats (200 ms), not 30.
	if n := len(after) - len(before); n < 3 || n > 8 {
		t.Errorf("%d reports in 30 quiet heartbeats, want about 6", n)
	}
	applyAndWait(t, s, 3, 12)
}

// TestDesiredStateSavedOnStop checks that a state taken less than StateSaveDelay
// before the agent stops is saved on the way out, so the next start
// applies it.
func TestDesiredStateSavedOnStop(t *testing.T) {
	s := newFakeServer(t)
	s.setState(testState(2))
	dir := t.TempDir()
	a := startAgent(t, testConfig(t, s, dir), platformtest.NewRecorder(), nil)
	waitFor(t, "a report of index 7", func() bool { r := s.lastReport(); return r != nil && r.AppliedIndex == 7 })
	applyAndWait(t, s, 3, 12)
	d, err := openDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ds, err := d.loadDesired(); err != nil || ds != nil {
		t.Fatalf("saved before StateSaveDelay: %+v %v", ds, err)
	}
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	if ds, err := d.loadDesired(); err != nil || ds == nil || ds.Index != 12 {
		t.Fatalf("after stop: %+v %v, want the state of index 12", ds, err)
	}
}

// applyAndWait sets a state of peers peers and index on s and waits for
// the agent's report of it.
func applyAndWait(t *testing.T, s *fakeServer, peers int, index uint64) {
	t.Helper()
	next := testState(peers)
	next.Index = index
	s.setState(next)
	waitFor(t, fmt.Sprintf("a report of index %d", index), func() bool { r := s.lastReport(); return r != nil && r.AppliedIndex == index })
}

// startHeartbeating starts an agent with the given heartbeat on a fake
// server holding a state of peers peers.
func startHeartbeating(t *testing.T, peers int, heartbeat time.Duration) *fakeServer {
	t.Helper()
	s := newFakeServer(t)
	s.setState(testState(peers))
	cfg := testConfig(t, s, t.TempDir())
	cfg.HeartbeatInterval = heartbeat
	startAgent(t, cfg, platformtest.NewRecorder(), nil)
	return s
}

// TestAgentReportsWholeAfterServerRestart: when the server answers again
// after an outage, the agent sends a whole report with the peers' counters
// at once, not at the next heartbeat (an hour here): a restarted server
// keeps reports in memory only, and the dashboard shows them.
func TestAgentReportsWholeAfterServerRestart(t *testing.T) {
	s := newFakeServer(t)
	s.setState(testState(2))
	fake := platformtest.NewRecorder()
	cfg := testConfig(t, s, t.TempDir())
	cfg.HeartbeatInterval = time.Hour
	cfg.BackoffBase, cfg.BackoffMax = 10*time.Millisecond, 50*time.Millisecond
	startAgent(t, cfg, fake, nil)
	waitFor(t, "the state applied and reported", func() bool {
		r := s.lastReport()
		return r != nil && len(r.Interfaces) == 1
	})
	s.breakConfig()
	waitFor(t, "failed queries", func() bool {
		_, _, calls, _ := s.snapshot()
		return len(calls) >= 4
	})
	_, before, _, _ := s.snapshot()
	s.restart()
	waitFor(t, "a whole report with counters after the restart", func() bool {
		_, reports, _, _ := s.snapshot()
		for _, r := range reports[len(before):] {
			if r.PeersSince == 0 && len(r.Interfaces) == 1 && len(r.Interfaces[0].Peers) == 2 {
				return true
			}
		}
		return false
	}) // within waitFor's seconds, not the hour to the next heartbeat
}
