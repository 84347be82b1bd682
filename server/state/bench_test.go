package state

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"testing"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
)

// fleet builds a state on a bbolt file with nets networks of size hosts each,
// every host registered through a join token and its key published.
func fleet(tb testing.TB, nets, size int, topology string) (*State, [][]string) {
	tb.Helper()
	st, err := store.OpenBolt(filepath.Join(tb.TempDir(), "state.db"), store.BoltOptions{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	s := openState(tb, st)
	return s, addFleet(tb, s, nets, size, topology)
}

// openState opens a state on st, closed at the end of the test.
func openState(tb testing.TB, st store.Store) *State {
	tb.Helper()
	s, err := Open(st, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// addFleet adds nets networks of size registered hosts with published keys
// to s and returns the hosts' ids by network.
func addFleet(tb testing.TB, s *State, nets, size int, topology string) [][]string {
	tb.Helper()
	hosts := make([][]string, nets)
	for n := range nets {
		net, err := s.CreateNetwork(api.Network{Name: fmt.Sprintf("n%d", n), IPv4Range: fmt.Sprintf("10.%d.0.0/16", n), Topology: topology})
		if err != nil {
			tb.Fatal(err)
		}
		jt, err := s.CreateJoinToken(Trusted, api.JoinToken{Networks: []string{net.ID}})
		if err != nil {
			tb.Fatal(err)
		}
		_, joinID, _, _ := splitSecret(jt.Secret)
		for h := range size {
			reg, err := s.Register(joinID, api.RegisterRequest{Name: fmt.Sprintf("h%d-%d", n, h)}, "192.0.2.1")
			if err != nil {
				tb.Fatal(err)
			}
			hosts[n] = append(hosts[n], reg.HostID)
			ds, _ := s.DesiredState(context.Background(), reg.HostID, 0, 0, false)
			var key [32]byte
			copy(key[:], fmt.Sprintf("%d-%d", n, h))
			rep := api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: ds.Interfaces[0].ID, PublicKey: base64.StdEncoding.EncodeToString(key[:])}}}
			if err := s.ReportStatus(reg.HostID, rep, "192.0.2.1"); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return hosts
}

// BenchmarkDesiredState1000Mesh builds one host's desired state in a
// 1,000-host mesh (999 peers).
func BenchmarkDesiredState1000Mesh(b *testing.B) {
	s, hosts := fleet(b, 1, 1000, api.TopologyMesh)
	b.ResetTimer()
	for b.Loop() {
		ds, err := s.DesiredState(context.Background(), hosts[0][0], 0, 0, false)
		if err != nil || len(ds.Interfaces[0].Peers) != 999 {
			b.Fatalf("peers %d, err %v", len(ds.Interfaces[0].Peers), err)
		}
	}
}

// BenchmarkWriteAffecting100Of10000 changes one interface in one of 100
// meshes of 100 hosts: a persisted write that wakes exactly 100 hosts.
func BenchmarkWriteAffecting100Of10000(b *testing.B) {
	s, hosts := fleet(b, 100, 100, api.TopologyMesh)
	ds, _ := s.DesiredState(context.Background(), hosts[42][0], 0, 0, false)
	id := ds.Interfaces[0].ID
	b.ResetTimer()
	k := 0
	for b.Loop() {
		k++
		subnet := fmt.Sprintf("172.%d.%d.0/24", 16+k/256%16, k%256)
		if _, err := s.UpdateInterface(id, func(i *api.Interface) error { i.RoutedSubnets = []string{subnet}; return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWriteWakesOnlyAffectedHosts checks that a change in one network moves
// the index of exactly that network's hosts.
func TestWriteWakesOnlyAffectedHosts(t *testing.T) {
	s, hosts := fleet(t, 10, 20, api.TopologyMesh)
	before := map[string]uint64{}
	for h, i := range s.hostIndex {
		before[h] = i
	}
	ds, _ := s.DesiredState(context.Background(), hosts[3][5], 0, 0, false)
	if _, err := s.UpdateInterface(ds.Interfaces[0].ID, func(i *api.Interface) error {
		i.RoutedSubnets = []string{"192.168.7.0/24"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	woken := map[string]bool{}
	for h, i := range s.hostIndex {
		if i != before[h] {
			woken[h] = true
		}
	}
	if len(woken) != 20 {
		t.Fatalf("%d hosts woken, want 20", len(woken))
	}
	for _, h := range hosts[3] {
		if !woken[h] {
			t.Errorf("host %s of the changed network not woken", h)
		}
	}
}

// TestKeyRotationRequestWakesOnlyTheHost checks that asking a host to rotate
// wakes that host alone: its peers learn of the rotation when it announces
// the next key.
func TestKeyRotationRequestWakesOnlyTheHost(t *testing.T) {
	s, hosts := fleet(t, 1, 20, api.TopologyMesh)
	before := maps.Clone(s.hostIndex)
	if _, err := s.RequestKeyRotation(Trusted, hosts[0][3]); err != nil {
		t.Fatal(err)
	}
	for h, i := range s.hostIndex {
		if woken := i != before[h]; woken != (h == hosts[0][3]) {
			t.Errorf("host %s woken: %v", h, woken)
		}
	}
}
