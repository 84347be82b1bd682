package agent

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/server/api"
)

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"wg0", true},
		{"drago-a1b2c3d4e", true},
		{"a_b.c=d-e", true},
		{"drago-a1b2c3d4e5", false}, // 16 bytes
		{"", false},
		{".", false},
		{"..", false},
		{"wg 0", false},
		{"wg/0", false},
		{"wg0\n", false},
		{"wgé", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkName(tt.name) == nil; got != tt.ok {
				t.Errorf("checkName(%q) ok = %v, want %v", tt.name, got, tt.ok)
			}
		})
	}
}

func TestParseInterface(t *testing.T) {
	good := func() api.DesiredInterface {
		return api.DesiredInterface{
			ID: "if-1", Name: "drago0", Addresses: []string{"10.0.0.2/24"}, ListenPort: 51820, MTU: 1420,
			Peers: []api.DesiredPeer{{
				PublicKey: peerKey(2).String(), Endpoint: "192.0.2.1:51820",
				AllowedIPs: []string{"10.0.0.3/32", "192.168.7.9/24"}, PersistentKeepalive: 25,
			}},
		}
	}
	t.Run("valid", func(t *testing.T) {
		got, err := parseInterface(good(), nil)
		if err != nil {
			t.Fatal(err)
		}
		want := wantInterface{
			ID: "if-1", Name: "drago0", Addresses: mustPrefixes(t, "10.0.0.2/24"), ListenPort: 51820, MTU: 1420,
			Peers: []wantPeer{{
				PublicKey: peerKey(2), Endpoint: "192.0.2.1:51820", Addr: netip.MustParseAddrPort("192.0.2.1:51820"),
				AllowedIPs: mustPrefixes(t, "10.0.0.3/32", "192.168.7.0/24"), Keepalive: 25 * time.Second,
			}},
		}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
			cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
			t.Errorf("parseInterface (-want +got):\n%s", diff)
		}
	})
	t.Run("host name endpoint is kept unresolved", func(t *testing.T) {
		d := good()
		d.Peers[0].Endpoint = "peer.example.com:51820"
		got, err := parseInterface(d, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p := got.Peers[0]; p.Endpoint != "peer.example.com:51820" || p.Addr.IsValid() {
			t.Errorf("peer = %+v, want endpoint kept and no address", p)
		}
	})
	t.Run("peers sorted by key bytes", func(t *testing.T) {
		d := good()
		d.Peers = nil
		for n := range byte(40) {
			d.Peers = append(d.Peers, api.DesiredPeer{PublicKey: peerKey(n).String()})
		}
		got, err := parseInterface(d, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.IsSortedFunc(got.Peers, func(a, b wantPeer) int { return bytes.Compare(a.PublicKey[:], b.PublicKey[:]) }) {
			t.Error("peers not sorted by the bytes of their keys, the order of platform.Device peers")
		}
	})
	bad := []struct {
		name   string
		mutate func(*api.DesiredInterface)
		errHas string
	}{
		{"empty id", func(d *api.DesiredInterface) { d.ID = "" }, "interface id"},
		{"id with slash", func(d *api.DesiredInterface) { d.ID = "../etc" }, "interface id"},
		{"long name", func(d *api.DesiredInterface) { d.Name = strings.Repeat("a", 16) }, "interface name"},
		{"name with space", func(d *api.DesiredInterface) { d.Name = "wg 0" }, "interface name"},
		{"port", func(d *api.DesiredInterface) { d.ListenPort = 70000 }, "listen port"},
		{"mtu", func(d *api.DesiredInterface) { d.MTU = 100 }, "mtu"},
		{"address", func(d *api.DesiredInterface) { d.Addresses = []string{"10.0.0.300/24"} }, "address"},
		{"peer key", func(d *api.DesiredInterface) { d.Peers[0].PublicKey = "nope" }, "public key"},
		{"endpoint without port", func(d *api.DesiredInterface) { d.Peers[0].Endpoint = "192.0.2.1" }, "endpoint"},
		{"endpoint port", func(d *api.DesiredInterface) { d.Peers[0].Endpoint = "192.0.2.1:0" }, "endpoint"},
		{"allowed ip", func(d *api.DesiredInterface) { d.Peers[0].AllowedIPs = []string{"x"} }, "allowed ip"},
		{"keepalive", func(d *api.DesiredInterface) { d.Peers[0].PersistentKeepalive = -1 }, "keepalive"},
		{"duplicate peer", func(d *api.DesiredInterface) { d.Peers = append(d.Peers, d.Peers[0]) }, "twice"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			d := good()
			tt.mutate(&d)
			_, err := parseInterface(d, nil)
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("parseInterface error = %v, want one mentioning %q", err, tt.errHas)
			}
		})
	}
}

func TestParseStateSkipsBadInterfaces(t *testing.T) {
	ds := &api.DesiredState{Interfaces: []api.DesiredInterface{
		{ID: "a", Name: "drago-a"},
		{ID: "b", Name: "bad name"},
		{ID: "c", Name: "drago-a"}, // name taken by a
		{ID: "a", Name: "drago-x"}, // id taken by a
		{ID: "d", Name: "drago-d"},
	}}
	set := parseState(ds, nil)
	var names []string
	for _, w := range set.Interfaces {
		names = append(names, w.Name)
	}
	if diff := cmp.Diff([]string{"drago-a", "drago-d"}, names); diff != "" {
		t.Errorf("kept interfaces (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]bool{"a": true, "b": true, "c": true}, set.Skipped); diff != "" {
		t.Errorf("skipped ids (-want +got):\n%s", diff)
	}
	if len(set.Errors) != 3 {
		t.Errorf("got %d errors, want 3: %v", len(set.Errors), set.Errors)
	}
}

// TestPeerCacheParsesLikeWithout checks that parsing through the peer cache
// gives what a fresh parse gives, across changed, added, removed and
// rotating peers, and a peer that turns malformed.
func TestPeerCacheParsesLikeWithout(t *testing.T) {
	var cache peerCache
	ds := benchState(50)
	check := func(what string) {
		t.Helper()
		want, got := parseState(ds, nil), parseState(ds, &cache)
		if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
			cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }), cmp.Comparer(func(a, b error) bool { return a.Error() == b.Error() })); d != "" {
			t.Fatalf("%s: cached parse (-fresh +cached):\n%s", what, d)
		}
	}
	check("first parse")
	check("same state again")
	edit := func(what string, f func(ps []api.DesiredPeer) []api.DesiredPeer) {
		t.Helper()
		next := *ds
		next.Interfaces = slices.Clone(ds.Interfaces)
		next.Interfaces[0].Peers = f(slices.Clone(ds.Interfaces[0].Peers))
		ds = &next
		check(what)
	}
	edit("allowed IPs changed", func(ps []api.DesiredPeer) []api.DesiredPeer {
		ps[3].AllowedIPs = []string{"10.9.0.0/16"}
		return ps
	})
	edit("endpoint changed", func(ps []api.DesiredPeer) []api.DesiredPeer { ps[4].Endpoint = "192.0.2.99:1"; return ps })
	edit("keepalive changed", func(ps []api.DesiredPeer) []api.DesiredPeer { ps[5].PersistentKeepalive = 25; return ps })
	edit("peer removed", func(ps []api.DesiredPeer) []api.DesiredPeer { return slices.Delete(ps, 0, 1) })
	edit("next key added", func(ps []api.DesiredPeer) []api.DesiredPeer {
		next := ps[6]
		next.PublicKey, next.AllowedIPs = benchState(60).Interfaces[0].Peers[55].PublicKey, []string{}
		return append(ps, next)
	})
	edit("peer malformed", func(ps []api.DesiredPeer) []api.DesiredPeer { ps[7].AllowedIPs = []string{"nope"}; return ps })
	edit("peer fixed", func(ps []api.DesiredPeer) []api.DesiredPeer { ps[7].AllowedIPs = []string{"10.8.0.0/16"}; return ps })
	if got := cache.last["if-a"].sorted; len(got) != len(ds.Interfaces[0].Peers) {
		t.Errorf("cache holds %d peers, the state %d", len(got), len(ds.Interfaces[0].Peers))
	}
}

// TestPeerCacheRandomEdits parses random successions of states (peers
// removed, added, rekeyed and changed at random places) with and without
// the cache: the results must be the same.
func TestPeerCacheRandomEdits(t *testing.T) {
	opts := cmp.Options{cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
		cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })}
	pool := benchState(60).Interfaces[0].Peers
	for seed := range uint64(10) {
		rng := rand.New(rand.NewPCG(seed, 3))
		var cache peerCache
		ds := benchState(0)
		for step := range 20 {
			next := *ds
			next.Interfaces = slices.Clone(ds.Interfaces)
			var ps []api.DesiredPeer
			for _, p := range pool {
				if rng.IntN(3) == 0 {
					continue
				}
				if rng.IntN(10) == 0 {
					p.Endpoint = fmt.Sprintf("192.0.2.%d:1", rng.IntN(60))
				}
				ps = append(ps, p)
			}
			slices.SortFunc(ps, api.ComparePeers)
			next.Interfaces[0].Peers = ps
			ds = &next
			want, got := parseState(ds, nil), parseState(ds, &cache)
			if d := cmp.Diff(want, got, opts); d != "" {
				t.Fatalf("seed %d step %d: cached parse (-fresh +cached):\n%s", seed, step, d)
			}
		}
	}
}
