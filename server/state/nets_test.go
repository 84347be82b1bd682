package state

import (
	"context"
	"slices"
	"testing"

	"github.com/drago-wg/drago/server/api"
)

// TestParsedNetsFollowWrites: the parsed addresses kept per interface follow
// every write to it, so peers never see a stale address or subnet.
func TestParsedNetsFollowWrites(t *testing.T) {
	s, hosts := fleet(t, 1, 3, api.TopologyMesh)
	iface := func(h string) *api.DesiredInterface {
		ds, err := s.DesiredState(context.Background(), h, 0, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		return &ds.Interfaces[0]
	}
	allowed := func(from, to string) []string {
		for _, p := range iface(from).Peers {
			if p.PublicKey == iface(to).PublicKey {
				return p.AllowedIPs
			}
		}
		t.Fatalf("%s has no peer %s", from, to)
		return nil
	}
	id := iface(hosts[0][0]).ID
	if _, err := s.UpdateInterface(id, func(i *api.Interface) error {
		i.Addresses = []string{"10.0.0.77"}
		i.RoutedSubnets = []string{"192.168.7.0/24"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, want := allowed(hosts[0][1], hosts[0][0]), []string{"10.0.0.77/32", "192.168.7.0/24"}; !slices.Equal(got, want) {
		t.Errorf("peer's allowed IPs after the update = %v, want %v", got, want)
	}
	// The new address is taken.
	if _, err := s.UpdateInterface(iface(hosts[0][1]).ID, func(i *api.Interface) error {
		i.Addresses = []string{"10.0.0.77"}
		return nil
	}); err == nil {
		t.Error("10.0.0.77 given twice")
	}
	if err := s.DeleteHost(Trusted, hosts[0][0]); err != nil {
		t.Fatal(err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.ifaceNets) != len(s.ifaces) {
		t.Errorf("%d parsed entries for %d interfaces", len(s.ifaceNets), len(s.ifaces))
	}
	for id, i := range s.ifaces {
		if n := s.ifaceNets[id]; n == nil || n.of != i {
			t.Errorf("interface %s: parsed entry is not of its stored version", id)
		}
	}
}
