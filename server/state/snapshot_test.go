package state

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
	"github.com/drago-wg/drago/server/store/etcdtest"
)

// desiredStates returns every host's whole desired state, indexes zeroed.
func desiredStates(t *testing.T, s *State, hosts [][]string) map[string]*api.DesiredState {
	t.Helper()
	out := map[string]*api.DesiredState{}
	for _, hs := range hosts {
		for _, h := range hs {
			ds, err := s.DesiredState(context.Background(), h, 0, 0, false)
			if err != nil {
				t.Fatal(err)
			}
			ds.Index = 0
			out[h] = ds
		}
	}
	return out
}

// TestSnapshotMoves moves a fleet from bbolt to etcd and back to bbolt with
// Snapshot and Restore: every host's desired state survives each move, the
// index only grows, and objects the target had are gone.
func TestSnapshotMoves(t *testing.T) {
	bolt, err := store.OpenBolt(filepath.Join(t.TempDir(), "state.db"), store.BoltOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	src := openState(t, bolt)
	hosts := addFleet(t, src, 2, 3, api.TopologyMesh)
	want := desiredStates(t, src, hosts)
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(snap.Objects[store.KindHosts]); n != 6 || snap.Index != src.Index() {
		t.Fatalf("snapshot has %d hosts at index %d; want 6 at %d", n, snap.Index, src.Index())
	}

	c := etcdtest.Start(t, 3)
	et, err := store.OpenEtcd(store.EtcdOptions{Endpoints: c.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	defer et.Close()
	dst := openState(t, et)
	if _, err := dst.CreateNetwork(api.Network{Name: "old", IPv4Range: "10.200.0.0/16"}); err != nil {
		t.Fatal(err)
	}
	res, err := dst.Restore(snap)
	if err != nil {
		t.Fatal(err)
	}
	if res.Index <= snap.Index || res.Objects == 0 {
		t.Errorf("restored %+v; want an index above %d", res, snap.Index)
	}
	if diff := cmp.Diff(want, desiredStates(t, dst, hosts)); diff != "" {
		t.Errorf("desired states after the move to etcd (-bolt +etcd):\n%s", diff)
	}
	if _, err := dst.Network("old"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a network the snapshot lacks: %v, want it gone", err)
	}
	// A server that opens the etcd store afterwards loads the same.
	again := openState(t, et)
	if diff := cmp.Diff(want, desiredStates(t, again, hosts)); diff != "" {
		t.Errorf("desired states loaded from etcd (-bolt +etcd):\n%s", diff)
	}

	back, err := dst.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	mem := openState(t, store.NewMem())
	if _, err := mem.Restore(back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, desiredStates(t, mem, hosts)); diff != "" {
		t.Errorf("desired states after the move back (-bolt +mem):\n%s", diff)
	}
}

// TestRestoreRefusesBadSnapshots: a bad snapshot changes nothing.
func TestRestoreRefusesBadSnapshots(t *testing.T) {
	s := openState(t, store.NewMem())
	if _, err := s.CreateNetwork(api.Network{Name: "keep", IPv4Range: "10.1.0.0/16"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		snap    api.Snapshot
		wantErr string
	}{
		{"version", api.Snapshot{Version: store.SchemaVersion + 1}, "version"},
		{"kind", api.Snapshot{Version: store.SchemaVersion, Objects: map[string]map[string]any{"nope": {}}}, `unknown kind "nope"`},
		{"undecodable", api.Snapshot{Version: store.SchemaVersion, Objects: map[string]map[string]any{
			store.KindNetworks: {"x": "a string"}}}, "objects.networks.x"},
		{"null", api.Snapshot{Version: store.SchemaVersion, Objects: map[string]map[string]any{
			store.KindHosts: {"x": nil}}}, "objects.hosts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Restore(&tc.snap)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Restore = %v, want ErrInvalid containing %q", err, tc.wantErr)
			}
			if _, err := s.Network("keep"); err != nil {
				t.Errorf("after a refused restore: %v", err)
			}
		})
	}
}
