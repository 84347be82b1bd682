package state

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
)

// fakeClock is a settable clock for tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// oneHost opens an in-memory state with a host "h" registered in network "n".
func oneHost(t *testing.T, opts Options) (*State, *api.RegisterResponse) {
	t.Helper()
	s, err := Open(store.NewMem(), slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := s.CreateNetwork(api.Network{Name: "n", IPv4Range: "10.0.0.0/24"})
	jt, _ := s.CreateJoinToken(Trusted, api.JoinToken{Networks: []string{n.ID}})
	_, joinID, _, _ := splitSecret(jt.Secret)
	reg, err := s.Register(joinID, api.RegisterRequest{Name: "h"}, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	return s, reg
}

func TestHostStatusFollowsHeartbeats(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, reg := oneHost(t, Options{HeartbeatGrace: 45 * time.Second, KeyRotationInterval: time.Hour, Now: clock.Now})
	status := func() api.Host {
		h, err := s.Host(Trusted, "h")
		if err != nil {
			t.Fatal(err)
		}
		return *h
	}
	if got := status().Status; got != api.HostPending {
		t.Fatalf("before any report: %s", got)
	}
	ifs, _ := s.Interfaces(Filter{Host: "h"}, false)
	report := api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: ifs.Items[0].ID, PublicKey: "yZOV6dSvjg7Qt3r8v2OnAvcpA/JQiGxGpzjFf3tYFBE="}}}
	index := s.Index()
	for range 3 {
		if err := s.ReportStatus(reg.HostID, report, "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
	}
	if got := status().Status; got != api.HostReady {
		t.Fatalf("after a report: %s", got)
	}
	if s.Index() != index+1 {
		t.Errorf("index moved by %d for one key and two plain heartbeats, want 1", s.Index()-index)
	}
	clock.advance(44 * time.Second)
	if got := status().Status; got != api.HostReady {
		t.Fatalf("within the grace: %s", got)
	}
	clock.advance(2 * time.Second)
	if got := status().Status; got != api.HostDown {
		t.Fatalf("after the grace: %s", got)
	}
	if o := s.Overview(Trusted); o.HostsDown != 1 || o.HostsReady != 0 {
		t.Errorf("overview: %+v", o)
	}
	// Keys older than twice the rotation interval are flagged.
	if status().KeyStale {
		t.Fatal("fresh key flagged stale")
	}
	clock.advance(2 * time.Hour)
	if !status().KeyStale {
		t.Fatal("key older than twice the rotation interval not flagged")
	}
}

// TestStatusReportPeerDeltas checks that a report with peers_since changes
// only the peers it lists in the kept report, and that one the server cannot
// apply is refused with 409 and changes nothing.
func TestStatusReportPeerDeltas(t *testing.T) {
	s, hosts := fleet(t, 1, 1, api.TopologyMesh)
	h := hosts[0][0]
	st, _ := s.HostStatus(Trusted, h)
	ifID, key := st.Interfaces[0].ID, st.Interfaces[0].PublicKey
	peer := func(n byte, rx int64) api.PeerStatus {
		var k [32]byte
		k[0] = n
		return api.PeerStatus{PublicKey: base64.StdEncoding.EncodeToString(k[:]), RxBytes: rx}
	}
	report := func(seq, since uint64, peers []api.PeerStatus, removed ...string) error {
		return s.ReportStatus(h, api.StatusReport{Seq: seq, PeersSince: since, Interfaces: []api.InterfaceStatus{
			{ID: ifID, PublicKey: key, Peers: peers, RemovedPeers: removed}}}, "192.0.2.1")
	}
	kept := func() []api.PeerStatus {
		st, err := s.HostStatus(Trusted, h)
		if err != nil {
			t.Fatal(err)
		}
		return st.Interfaces[0].Peers
	}
	if err := report(1, 0, []api.PeerStatus{peer(1, 10), peer(2, 20), peer(3, 30)}); err != nil {
		t.Fatal(err)
	}
	if err := report(2, 1, []api.PeerStatus{peer(2, 25)}, peer(3, 0).PublicKey); err != nil {
		t.Fatal(err)
	}
	want := []api.PeerStatus{peer(1, 10), peer(2, 25)}
	if got := kept(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a delta: %+v, want %+v", got, want)
	}
	if err := report(3, 2, nil); err != nil { // a heartbeat: nothing changed
		t.Fatal(err)
	}
	for _, bad := range []struct {
		name  string
		err   error
		field string
	}{
		{"delta on a report the server does not hold", report(4, 1, []api.PeerStatus{peer(1, 99)}), "peers_since"},
		{"removed peers in a whole report", report(4, 0, nil, peer(1, 0).PublicKey), "interfaces[0].removed_peers"},
		{"bad removed key", report(4, 3, nil, "nope"), "interfaces[0].removed_peers[0]"},
	} {
		var e *Error
		if !errors.As(bad.err, &e) || e.Field != bad.field {
			t.Errorf("%s: %v, want an error on %s", bad.name, bad.err, bad.field)
		}
	}
	if got := kept(); !reflect.DeepEqual(got, want) {
		t.Fatalf("refused reports changed the kept one: %+v", got)
	}
	if err := report(4, 3, []api.PeerStatus{peer(4, 1)}); err != nil {
		t.Fatalf("delta on the last accepted report: %v", err)
	}
}

// TestBlockingQueryIsASignOfLife checks that a host whose agent has a
// blocking query in flight stays ready without heartbeats, and turns down
// one grace after the query ends.
func TestBlockingQueryIsASignOfLife(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, reg := oneHost(t, Options{HeartbeatGrace: 45 * time.Second, Now: clock.Now})
	status := func() string {
		h, err := s.Host(Trusted, "h")
		if err != nil {
			t.Fatal(err)
		}
		return h.Status
	}
	ctx, cancel := context.WithCancel(context.Background())
	// poll starts a blocking query that lasts until ctx is done or the
	// host's state changes.
	poll := func() chan struct{} {
		ds, _ := s.DesiredState(ctx, reg.HostID, 0, 0, false)
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.DesiredState(ctx, reg.HostID, ds.Index, time.Hour, true)
		}()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			s.live.mu.Lock()
			n := s.live.polls[reg.HostID]
			s.live.mu.Unlock()
			if n > 0 {
				return done
			}
			if time.Now().After(deadline) {
				t.Fatal("the query did not start")
			}
		}
	}
	done := poll()
	if got := status(); got != api.HostPending {
		t.Fatalf("a query before any report: %s, want pending", got)
	}
	ifs, _ := s.Interfaces(Filter{Host: "h"}, false)
	rep := api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: ifs.Items[0].ID, PublicKey: "yZOV6dSvjg7Qt3r8v2OnAvcpA/JQiGxGpzjFf3tYFBE="}}}
	if err := s.ReportStatus(reg.HostID, rep, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	<-done // the new key woke it
	done = poll()
	clock.advance(10 * time.Minute)
	if got := status(); got != api.HostReady {
		t.Fatalf("query in flight, no heartbeat for 10 min: %s, want ready", got)
	}
	cancel()
	<-done
	clock.advance(44 * time.Second)
	if got := status(); got != api.HostReady {
		t.Fatalf("44 s after the query ended: %s, want ready", got)
	}
	clock.advance(2 * time.Second)
	if got := status(); got != api.HostDown {
		t.Fatalf("46 s after the query ended: %s, want down", got)
	}
}

// TestRotationReadyWhenEveryPeerApplied checks that a rotation is marked
// ready only once every agent peer has applied the state announcing the next
// key, that a peer deleted meanwhile is not waited for, and that a peer
// joining meanwhile is.
func TestRotationReadyWhenEveryPeerApplied(t *testing.T) {
	s, hosts := fleet(t, 1, 6, api.TopologyMesh)
	rotating, peers := hosts[0][0], hosts[0][1:]
	ds, _ := s.DesiredState(context.Background(), rotating, 0, 0, false)
	i := ds.Interfaces[0]
	next := base64.StdEncoding.EncodeToString(make([]byte, 32))
	if err := s.ReportStatus(rotating, api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: i.ID, PublicKey: i.PublicKey, NextPublicKey: next}}}, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	ready := func() bool {
		got, err := s.Interface(i.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.NextKeyReady
	}
	apply := func(h string) {
		t.Helper()
		ds, _ := s.DesiredState(context.Background(), h, 0, 0, false)
		if err := s.ReportStatus(h, api.StatusReport{AppliedIndex: ds.Index, Interfaces: []api.InterfaceStatus{{ID: ds.Interfaces[0].ID, PublicKey: ds.Interfaces[0].PublicKey}}}, "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
	}
	apply(peers[0])
	apply(peers[1])
	if err := s.DeleteHost(Trusted, peers[2]); err != nil {
		t.Fatal(err)
	}
	apply(peers[3])
	if ready() {
		t.Fatal("ready before every peer applied")
	}
	// A host joining now must apply too.
	jt, _ := s.CreateJoinToken(Trusted, api.JoinToken{Networks: []string{ds.Interfaces[0].NetworkID}})
	_, joinID, _, _ := splitSecret(jt.Secret)
	reg, err := s.Register(joinID, api.RegisterRequest{Name: "late"}, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	late, _ := s.DesiredState(context.Background(), reg.HostID, 0, 0, false)
	var key [32]byte
	key[0] = 7
	if err := s.ReportStatus(reg.HostID, api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: late.Interfaces[0].ID, PublicKey: base64.StdEncoding.EncodeToString(key[:])}}}, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	apply(peers[4])
	if ready() {
		t.Fatal("ready before the peer that joined applied")
	}
	apply(reg.HostID)
	if !ready() {
		t.Fatal("not ready after every remaining peer applied")
	}
}
