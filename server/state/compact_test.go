package state

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
	"github.com/drago-wg/drago/server/store/etcdtest"
)

// pausableEtcd is an etcd store whose watch a test can hold back, as a
// server whose watch fell behind.
type pausableEtcd struct {
	*store.EtcdStore
	mu      sync.Mutex
	resume  chan struct{}      // non-nil while paused
	stop    context.CancelFunc // ends the running watch
	stopped chan struct{}      // closed when a paused watch returned
}

// pause ends the running watch and holds the next one until unpause.
func (p *pausableEtcd) pause(t *testing.T) {
	p.mu.Lock()
	p.resume, p.stopped = make(chan struct{}), make(chan struct{})
	stopped := p.stopped
	if p.stop != nil {
		p.stop()
	}
	p.mu.Unlock()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not stop within 10s")
	}
}

func (p *pausableEtcd) unpause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.resume)
	p.resume = nil
}

func (p *pausableEtcd) Watch(ctx context.Context, after int64, commit func(store.Commit), progress func(int64)) error {
	p.mu.Lock()
	resume, stopped := p.resume, p.stopped
	p.mu.Unlock()
	if resume != nil {
		close(stopped)
		select {
		case <-resume:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.mu.Lock()
	if p.resume != nil { // paused meanwhile
		p.mu.Unlock()
		return fmt.Errorf("watch paused: %w", store.ErrUnavailable)
	}
	p.stop = cancel
	p.mu.Unlock()
	err := p.EtcdStore.Watch(wctx, after, commit, progress)
	if ctx.Err() == nil && wctx.Err() != nil {
		return fmt.Errorf("watch paused: %w", store.ErrUnavailable)
	}
	return err
}

// TestWatchCompactedReload: server B's watch falls behind while A writes,
// and etcd compacts its history past what B has. B is cut off meanwhile
// (its agents' blocking queries end, so they move), then reloads at a
// current revision: it ends identical to A, answers an agent that comes
// back with its whole state (its delta log cannot cover indexes it never
// saw), records the changes as events, is healthy again and can write.
func TestWatchCompactedReload(t *testing.T) {
	c := etcdtest.Start(t, 3)
	stA := openEtcd(t, c)
	a := openOn(t, stA, Options{})
	pb := &pausableEtcd{EtcdStore: openEtcd(t, c)}
	b := openOn(t, pb, Options{})
	hosts := addFleet(t, a, 2, 3, api.TopologyMesh)
	if _, err := a.CreateRule(api.RuleRequest{Rule: api.Rule{NetworkID: "n0", Action: "drop", From: []string{"*"}, To: []string{"*"},
		Protocol: "tcp", Ports: []string{"22"}}}); err != nil {
		t.Fatal(err)
	}
	catchUp(t, b)
	sameState(t, a, b, "before the pause", 0)

	// Agents of every host wait on B from its current index.
	behind := b.Index()
	ended := make(chan error, 8)
	all := append(hosts[0], hosts[1]...)
	for _, h := range all {
		go func() {
			_, err := b.DesiredState(t.Context(), h, behind, time.Minute, true)
			ended <- err
		}()
	}

	pb.pause(t)
	// A changes an interface of n1, deletes a host of n0, drops the rule,
	// creates a network, and creates and deletes another one B never sees.
	ds, _ := a.DesiredState(t.Context(), hosts[1][0], 0, 0, false)
	if _, err := a.UpdateInterface(ds.Interfaces[0].ID, func(i *api.Interface) error {
		i.RoutedSubnets = []string{"192.168.9.0/24"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteHost(Trusted, hosts[0][2]); err != nil {
		t.Fatal(err)
	}
	rules, err := a.Rules(Filter{})
	if err != nil || len(rules.Items) != 1 {
		t.Fatalf("A's rules: %v, %v; want one", rules, err)
	}
	if err := a.DeleteRule(rules.Items[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateNetwork(api.Network{Name: "late", IPv4Range: "10.50.0.0/16"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateNetwork(api.Network{Name: "brief", IPv4Range: "10.51.0.0/16"}); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteNetwork("brief"); err != nil {
		t.Fatal(err)
	}
	rev, err := stA.Revision(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stA.Client().Compact(t.Context(), rev); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, b, false)
	// Cut off, B ends its agents' blocking queries so that they move.
	for range all {
		select {
		case err := <-ended:
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("a blocking query on B ended with %v, want ErrUnavailable", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a blocking query on B still waits 10s after it was cut off")
		}
	}
	if _, err := b.CreateNetwork(api.Network{Name: "stale", IPv4Range: "10.52.0.0/16"}); err == nil {
		t.Fatal("B wrote while behind a compaction")
	}

	pb.unpause()
	waitHealth(t, b, true)
	catchUp(t, b)
	reloaded := a.Index()
	sameState(t, a, b, "after the reload", reloaded)
	// An agent that comes back from where it was gets its whole state:
	// B's delta log cannot cover indexes it never saw.
	for _, h := range all {
		ds, err := b.DesiredState(t.Context(), h, behind, time.Minute, true)
		if h == hosts[0][2] {
			if err == nil {
				t.Errorf("B answered the deleted host %s", h)
			}
			continue
		}
		if err != nil {
			t.Fatalf("B's desired state of %s after the reload: %v", h, err)
		}
		if ds.Index != reloaded || ds.IsDelta() {
			t.Errorf("B answered %s with index %d (delta %v); want the whole state at %d", h, ds.Index, ds.IsDelta(), reloaded)
		}
	}
	evs, err := b.Events(t.Context(), Trusted, behind, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range evs.Events {
		names = append(names, e.Action+" "+e.Kind+" "+e.Name)
	}
	// The changes B missed, each once; the network created and deleted
	// meanwhile never existed for B.
	want := []string{"created network late", "deleted host h0-2", "deleted interface dg-n0", "deleted rule ", "updated interface dg-n1"}
	slices.Sort(names)
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("B's events after the reload (-want +got):\n%s", diff)
	}
	if _, err := b.CreateNetwork(api.Network{Name: "from-b", IPv4Range: "10.53.0.0/16"}); err != nil {
		t.Fatalf("B's write after the reload: %v", err)
	}
	catchUp(t, a)
	sameState(t, a, b, "after B's write", reloaded)
}

// waitHealth waits up to 10 s for s to be healthy (or cut off).
func waitHealth(t *testing.T, s *State, healthy bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); (s.Healthy() == nil) != healthy; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("healthy %v not within 10s: %v", healthy, s.Healthy())
		}
	}
}
