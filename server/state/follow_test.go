package state

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
	"github.com/drago-wg/drago/server/store/etcdtest"
)

// twoServers opens two states on one etcd prefix, as two drago servers
// sharing an etcd cluster.
func twoServers(t *testing.T) (a, b *State) {
	t.Helper()
	return twoServersWith(t, Options{}, Options{})
}

func twoServersWith(t *testing.T, optsA, optsB Options) (a, b *State) {
	t.Helper()
	c := etcdtest.Start(t, 3)
	return openOn(t, openEtcd(t, c), optsA), openOn(t, openEtcd(t, c), optsB)
}

// openEtcd opens a store on c, closed when the test ends.
func openEtcd(t *testing.T, c *etcdtest.Cluster) *store.EtcdStore {
	t.Helper()
	st, err := store.OpenEtcd(store.EtcdOptions{Endpoints: c.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// openOn opens a state on st, closed when the test ends.
func openOn(t *testing.T, st store.Store, opts Options) *State {
	t.Helper()
	s, err := Open(st, slog.New(slog.DiscardHandler), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// waitFor polls cond under s's read lock for up to 10 s.
func waitFor(t *testing.T, s *State, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		s.mu.RLock()
		ok := cond()
		s.mu.RUnlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
	}
}

func catchUp(t *testing.T, s *State) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.CatchUp(ctx); err != nil {
		t.Fatalf("CatchUp: %v", err)
	}
}

// TestFollowerMatchesWriter builds a fleet through server A while server B
// follows: B's memory ends equal to A's (index, per-host index, whole and
// delta desired states), a write through A wakes on B exactly the hosts
// whose desired state changed, and B can write in turn.
func TestFollowerMatchesWriter(t *testing.T) {
	a, b := twoServers(t)
	hosts := addFleet(t, a, 2, 4, api.TopologyMesh)
	catchUp(t, b)
	same := func(when string) {
		t.Helper()
		sameState(t, a, b, when, 0)
	}
	same("after the fleet joined")

	// Every host blocks on B; A changes one interface of network 1.
	type woken struct {
		host  string
		index uint64
	}
	got := make(chan woken, 8)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, h := range append(hosts[0], hosts[1]...) {
		idx := b.Index()
		wg.Go(func() {
			ds, err := b.DesiredState(ctx, h, idx, time.Minute, true)
			if err == nil {
				got <- woken{h, ds.Index}
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // the queries are waiting
	ds, _ := a.DesiredState(t.Context(), hosts[1][2], 0, 0, false)
	if _, err := a.UpdateInterface(ds.Interfaces[0].ID, func(i *api.Interface) error {
		i.RoutedSubnets = []string{"192.168.9.0/24"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, h := range hosts[1] {
		want[h] = true
	}
	for range hosts[1] {
		select {
		case w := <-got:
			if !want[w.host] || w.index != a.Index() {
				t.Errorf("B woke host %s at index %d; want the hosts of network 1 at %d", w.host, w.index, a.Index())
			}
			delete(want, w.host)
		case <-time.After(10 * time.Second):
			t.Fatalf("hosts %v not woken on B", want)
		}
	}
	catchUp(t, b)
	select {
	case w := <-got:
		t.Errorf("B woke host %s of the unchanged network", w.host)
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	wg.Wait()
	same("after a change through A")

	// A policy rule through A: B compiles the same firewalls.
	if _, err := a.CreateRule(api.RuleRequest{Rule: api.Rule{NetworkID: "n0", Action: "drop", From: []string{"*"}, To: []string{"*"},
		Protocol: "tcp", Ports: []string{"22"}}}); err != nil {
		t.Fatal(err)
	}
	catchUp(t, b)
	same("after a rule through A")

	// B writes, A follows.
	if _, err := b.CreateNetwork(api.Network{Name: "from-b", IPv4Range: "10.99.0.0/16"}); err != nil {
		t.Fatal(err)
	}
	catchUp(t, a)
	if _, err := a.Network("from-b"); err != nil {
		t.Errorf("A after B's write: %v", err)
	}
	same("after a change through B")
}

// sameState fails unless a and b hold the same index and answer every
// host's desired state alike. Unless b reloaded at index reloadedAt (its
// per-host indexes and delta log then start there), they must also hold
// the same per-host index and answer alike a delta from a recent index.
func sameState(t *testing.T, a, b *State, when string, reloadedAt uint64) {
	t.Helper()
	if a.Index() != b.Index() {
		t.Fatalf("%s: index A %d, B %d", when, a.Index(), b.Index())
	}
	a.mu.RLock()
	b.mu.RLock()
	diff := cmp.Diff(a.hostIndex, b.hostIndex)
	hosts := slices.Sorted(maps.Keys(a.hosts))
	b.mu.RUnlock()
	a.mu.RUnlock()
	if diff != "" && reloadedAt == 0 {
		t.Fatalf("%s: per-host index (-A +B):\n%s", when, diff)
	}
	bases := []uint64{0}
	if reloadedAt == 0 {
		bases = append(bases, a.Index()-3)
	}
	for _, h := range hosts {
		for _, base := range bases {
			da, err1 := a.DesiredState(t.Context(), h, base, 0, true)
			db, err2 := b.DesiredState(t.Context(), h, base, 0, true)
			if err1 != nil || err2 != nil {
				t.Fatalf("%s: DesiredState: %v, %v", when, err1, err2)
			}
			if reloadedAt != 0 { // every host's state changed at the reload
				if db.Index != reloadedAt {
					t.Fatalf("%s: B's desired state of %s at index %d, want %d", when, h, db.Index, reloadedAt)
				}
				da.Index = db.Index
			}
			if diff := cmp.Diff(da, db); diff != "" {
				t.Fatalf("%s: desired state of %s from base %d (-A +B):\n%s", when, h, base, diff)
			}
		}
	}
}

// TestStaleWriteRefused: a server whose memory missed another server's
// write cannot overwrite it: its write fails with ErrStale (the HTTP layer
// then catches up and retries).
func TestStaleWriteRefused(t *testing.T) {
	a, b := twoServers(t)
	b.follow.cancel() // B stops seeing A's writes
	b.follow.done.Wait()
	if _, err := a.CreateNetwork(api.Network{Name: "net", IPv4Range: "10.1.0.0/16"}); err != nil {
		t.Fatal(err)
	}
	_, err := b.CreateNetwork(api.Network{Name: "net", IPv4Range: "10.1.0.0/16"})
	if !errors.Is(err, ErrStale) {
		t.Fatalf("write on the stale server = %v, want ErrStale", err)
	}
	if n := len(a.Networks(Filter{}).Items); n != 1 {
		t.Errorf("A has %d networks, want 1", n)
	}
}

// TestLivenessAcrossServers: hosts served by server A are up on server B
// through A's records, without any heartbeat written to etcd; a host that
// goes quiet on A, and every host of A when A stops, turn down on B one
// grace later.
func TestLivenessAcrossServers(t *testing.T) {
	start := time.Now()
	ca, cb := &fakeClock{now: start}, &fakeClock{now: start}
	const grace = 10 * time.Second
	a, b := twoServersWith(t, Options{Now: ca.Now, HeartbeatGrace: grace}, Options{Now: cb.Now, HeartbeatGrace: grace})
	hosts := addFleet(t, a, 1, 2, api.TopologyMesh)
	h1, h2 := hosts[0][0], hosts[0][1]
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go a.DesiredState(ctx, h1, a.Index(), time.Hour, true) // h1 keeps a query open on A
	waitFor(t, b, "B holds A's records of both hosts", func() bool {
		return b.remote[h1].Server == a.opts.ServerID && b.remote[h2].Server == a.opts.ServerID
	})
	status := func(h string) string {
		t.Helper()
		v, err := b.Host(Trusted, h)
		if err != nil {
			t.Fatal(err)
		}
		return v.Status
	}
	ca.advance(2 * grace) // h2 is quiet on A now; h1's query is still open
	cb.advance(2 * grace)
	if status(h1) != api.HostReady || status(h2) != api.HostReady {
		t.Errorf("on B after 2 graces: h1 %s, h2 %s; want both ready (A's records)", status(h1), status(h2))
	}
	waitFor(t, b, "A withdraws its record of the quiet h2", func() bool { return !b.remote[h2].gone.IsZero() })
	cb.advance(grace + time.Second)
	if status(h1) != api.HostReady || status(h2) != api.HostDown {
		t.Errorf("on B a grace after h2 went quiet: h1 %s, h2 %s; want ready, down", status(h1), status(h2))
	}
	a.Close() // A stops: its lease and records go
	waitFor(t, b, "A's record of h1 goes with A", func() bool { return !b.remote[h1].gone.IsZero() })
	if status(h1) != api.HostReady {
		t.Errorf("on B right after A stopped: h1 %s, want ready for a grace (time to move)", status(h1))
	}
	cb.advance(grace + time.Second)
	if status(h1) != api.HostDown {
		t.Errorf("on B a grace after A stopped: h1 %s, want down", status(h1))
	}
}

// TestRotationReadyAcrossServers: a host rotating its key through server A
// is told its next key is ready once every peer applied the announcing
// state, although two of its three peers report to server B: their applied
// indexes cross through B's liveness records, not through A's own reports.
func TestRotationReadyAcrossServers(t *testing.T) {
	a, b := twoServers(t)
	hosts := addFleet(t, a, 1, 4, api.TopologyMesh)
	rotating, onA, onB := hosts[0][0], hosts[0][1], hosts[0][2:]
	ds, _ := a.DesiredState(t.Context(), rotating, 0, 0, false)
	i := ds.Interfaces[0]
	next := base64.StdEncoding.EncodeToString(make([]byte, 32))
	if err := a.ReportStatus(rotating, api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: i.ID, PublicKey: i.PublicKey, NextPublicKey: next}}}, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	catchUp(t, b)
	apply := func(s *State, h string) {
		t.Helper()
		ds, err := s.DesiredState(t.Context(), h, 0, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.ReportStatus(h, api.StatusReport{AppliedIndex: ds.Index, Interfaces: []api.InterfaceStatus{{ID: ds.Interfaces[0].ID, PublicKey: ds.Interfaces[0].PublicKey}}}, "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
	}
	ready := func(s *State) bool { return s.ifaces[i.ID].NextKeyReady }
	apply(a, onA)
	apply(b, onB[0])
	// Three publish rounds: B's record of onB[0] reaches A, A's of onA B.
	time.Sleep(3 * probeInterval)
	for _, s := range []*State{a, b} {
		s.mu.RLock()
		early := ready(s)
		s.mu.RUnlock()
		if early {
			t.Fatal("ready while a peer on B had not applied")
		}
	}
	apply(b, onB[1])
	waitFor(t, a, "A sees the next key ready", func() bool { return ready(a) })
	waitFor(t, b, "B sees the next key ready", func() bool { return ready(b) })
}

// TestOneLeader: of two servers exactly one runs the cluster's jobs, and
// the other takes over when it stops.
func TestOneLeader(t *testing.T) {
	a, b := twoServers(t)
	deadline := time.Now().Add(10 * time.Second)
	for a.IsLeader() == b.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatalf("leaders after 10s: A %v, B %v; want exactly one", a.IsLeader(), b.IsLeader())
		}
		time.Sleep(20 * time.Millisecond)
	}
	lead, other := a, b
	if b.IsLeader() {
		lead, other = b, a
	}
	lead.Close()
	for !other.IsLeader() {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatal("the other server did not take over within 10s of the leader stopping")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBlockingQueriesEndWhenCutOff: an agent's blocking query and an events
// query waiting on a server end with ErrUnavailable once the server is cut
// off from etcd, rather than wait out their time and answer from memory
// that no longer follows the store: the agent then goes to another server.
func TestBlockingQueriesEndWhenCutOff(t *testing.T) {
	c := etcdtest.Start(t, 3)
	st, err := store.OpenEtcd(store.EtcdOptions{Endpoints: c.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := Open(st, slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	host := addFleet(t, s, 1, 2, api.TopologyMesh)[0][0]
	index := s.Index()
	errs := make(chan error, 2)
	go func() {
		_, err := s.DesiredState(t.Context(), host, index, time.Minute, true)
		errs <- err
	}()
	go func() {
		all := &Principal{Token: &api.Token{Policies: []api.Policy{{Resource: "*", Access: AccessRead}}}}
		_, err := s.Events(t.Context(), all, index, time.Minute)
		errs <- err
	}()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-errs:
		t.Fatalf("a blocking query returned before any change or cut: %v", err)
	default:
	}
	c.Close()
	for range 2 {
		select {
		case err := <-errs:
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("blocking query ended with %v, want ErrUnavailable", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a blocking query still waits 30s after etcd went away")
		}
	}
}

// TestCatchUpWhileLocked: a commit memory already holds (as a write's own
// commit is once its writer applied it; a commit still in flight is waited
// for through s.inflight, not s.mu) reaches the watch while writers hold
// s.mu; catching up must not wait for the lock, or a busy server's
// health probe times out and it refuses requests (seen with the load tool:
// 256 writes in flight made a server on etcd answer 503).
func TestCatchUpWhileLocked(t *testing.T) {
	a, _ := twoServers(t)
	if _, err := a.CreateNetwork(api.Network{Name: "net", IPv4Range: "10.1.0.0/16"}); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	err := a.store.Update(func(tx store.Tx) error { return tx.SetIndex(tx.Index()) })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if err := a.CatchUp(ctx); err != nil {
		t.Fatalf("CatchUp with s.mu held: %v", err)
	}
}
