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
		got, skipped, err := parseInterface(good(), nil)
		if err != nil || skipped != nil {
			t.Fatal(err, skipped)
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
		got, skipped, err := parseInterface(d, nil)
		if err != nil || skipped != nil {
			t.Fatal(err, skipped)
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
		got, skipped, err := parseInterface(d, nil)
		if err != nil || skipped != nil {
			t.Fatal(err, skipped)
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
		{"mtu below 1280", func(d *api.DesiredInterface) { d.MTU = 1000 }, "mtu"},
		{"mtu above 9000", func(d *api.DesiredInterface) { d.MTU = 9001 }, "mtu"},
		{"address", func(d *api.DesiredInterface) { d.Addresses = []string{"10.0.0.300/24"} }, "address"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			d := good()
			tt.mutate(&d)
			_, _, err := parseInterface(d, nil)
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
			cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }), cmp.Comparer(func(a, b error) bool { return (a == nil) == (b == nil) && (a == nil || a.Error() == b.Error()) })); d != "" {
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
	edit("another peer changed", func(ps []api.DesiredPeer) []api.DesiredPeer { ps[9].PersistentKeepalive = 5; return ps })
	edit("peer fixed", func(ps []api.DesiredPeer) []api.DesiredPeer { ps[7].AllowedIPs = []string{"10.8.0.0/16"}; return ps })
	edit("key listed twice", func(ps []api.DesiredPeer) []api.DesiredPeer {
		dup := ps[10]
		dup.InterfaceID = "impostor"
		return append(ps, dup)
	})
	edit("key listed twice, a peer changed", func(ps []api.DesiredPeer) []api.DesiredPeer { ps[11].Endpoint = "192.0.2.98:1"; return ps })
	edit("key listed once again", func(ps []api.DesiredPeer) []api.DesiredPeer { return ps[:len(ps)-1] })
	edit("an entry listed twice", func(ps []api.DesiredPeer) []api.DesiredPeer {
		ps = append(ps, ps[12])
		slices.SortFunc(ps, api.ComparePeers)
		return ps
	})
	if got := cache.last["if-a"].src; len(got) != len(ds.Interfaces[0].Peers) {
		t.Errorf("cache holds %d peers, the state %d", len(got), len(ds.Interfaces[0].Peers))
	}
}

// TestPeerCacheRandomEdits parses random successions of states (peers
// removed, added, rekeyed, changed, malformed and listed twice at random
// places) with and without the cache: the results must be the same.
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
				if rng.IntN(20) == 0 {
					p.AllowedIPs = []string{"nope"}
				}
				ps = append(ps, p)
				switch rng.IntN(30) {
				case 0:
					ps = append(ps, p) // the same entry twice
				case 1:
					p.InterfaceID = "impostor"
					ps = append(ps, p)
				}
			}
			slices.SortFunc(ps, api.ComparePeers)
			next.Interfaces[0].Peers = ps
			ds = &next
			want, got := parseState(ds, nil), parseState(ds, &cache)
			if d := cmp.Diff(want, got, opts, cmp.Comparer(func(a, b error) bool { return (a == nil) == (b == nil) && (a == nil || a.Error() == b.Error()) })); d != "" {
				t.Fatalf("seed %d step %d: cached parse (-fresh +cached):\n%s", seed, step, d)
			}
		}
	}
}

// entry is a desired peer: interface id's entry under peerKey(key).
func entry(id string, key byte, allowed ...string) api.DesiredPeer {
	return api.DesiredPeer{InterfaceID: id, PublicKey: peerKey(key).String(), Endpoint: "192.0.2.1:51820", AllowedIPs: allowed}
}

// keptPeers names the peers of w as "interface id/key": the entries of in
// whose key they have.
func keptPeers(w wantInterface, in []api.DesiredPeer) []string {
	out := []string{}
	for _, p := range w.Peers {
		for _, dp := range in {
			if dp.PublicKey == p.PublicKey.String() {
				out = append(out, fmt.Sprintf("%s/%s", dp.InterfaceID, dp.PublicKey[:4]))
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestParseStateSkipsBadPeers checks that a bad peer is left out of its
// interface, with an error naming both, and nothing else: a malformed one,
// and every entry of a public key listed twice, except for a rotating
// peer's two entries, which have two keys.
func TestParseStateSkipsBadPeers(t *testing.T) {
	k := func(id string, key byte) string { return fmt.Sprintf("%s/%s", id, peerKey(key).String()[:4]) }
	good := []api.DesiredPeer{entry("if-g", 20, "10.0.0.20/32"), entry("if-h", 21, "10.0.0.21/32")}
	bothGood := []string{k("if-g", 20), k("if-h", 21)}
	tests := []struct {
		name  string
		peers []api.DesiredPeer // besides good
		kept  []string          // every peer applied
		errs  []string          // what each error says after the interface and peer
	}{
		{
			name:  "rotation: one interface under its current and next keys",
			peers: []api.DesiredPeer{entry("if-b", 2, "10.0.0.2/32"), entry("if-b", 3)},
			kept:  slices.Concat(bothGood, []string{k("if-b", 2), k("if-b", 3)}),
		},
		{
			name:  "key of another interface",
			peers: []api.DesiredPeer{entry("if-b", 2, "10.0.0.2/32"), entry("if-c", 2, "10.0.0.3/32")},
			errs:  []string{fmt.Sprintf(`peer %s: public key listed by 2 peers (interface_id ["if-b" "if-c"]): none is applied`, peerKey(2))},
		},
		{
			name:  "key of a rotating interface's next key",
			peers: []api.DesiredPeer{entry("if-b", 2, "10.0.0.2/32"), entry("if-b", 3), entry("if-c", 3, "10.0.0.3/32")},
			kept:  slices.Concat(bothGood, []string{k("if-b", 2)}),
			errs:  []string{fmt.Sprintf(`peer %s: public key listed by 2 peers (interface_id ["if-b" "if-c"]): none is applied`, peerKey(3))},
		},
		{
			name:  "key of a good peer, three times",
			peers: []api.DesiredPeer{entry("if-b", 20, "10.0.0.2/32"), entry("if-c", 20, "10.0.0.3/32")},
			kept:  []string{k("if-h", 21)},
			errs:  []string{fmt.Sprintf(`peer %s: public key listed by 3 peers (interface_id ["if-b" "if-c" "if-g"]): none is applied`, peerKey(20))},
		},
		{
			name:  "the same entry twice",
			peers: []api.DesiredPeer{entry("if-b", 2, "10.0.0.2/32"), entry("if-b", 2, "10.0.0.2/32")},
			errs:  []string{fmt.Sprintf(`peer %s: public key listed by 2 peers (interface_id ["if-b" "if-b"]): none is applied`, peerKey(2))},
		},
		{
			name:  "malformed key",
			peers: []api.DesiredPeer{{InterfaceID: "if-b", PublicKey: "nope"}},
			errs:  []string{`peer "nope" (interface_id "if-b"): invalid public key`},
		},
		{
			name:  "endpoint without port",
			peers: []api.DesiredPeer{{InterfaceID: "if-b", PublicKey: peerKey(2).String(), Endpoint: "192.0.2.1"}},
			errs:  []string{fmt.Sprintf(`peer %q (interface_id "if-b"): endpoint "192.0.2.1": address 192.0.2.1: missing port in address`, peerKey(2))},
		},
		{
			name:  "endpoint port",
			peers: []api.DesiredPeer{{InterfaceID: "if-b", PublicKey: peerKey(2).String(), Endpoint: "192.0.2.1:0"}},
			errs:  []string{fmt.Sprintf(`peer %q (interface_id "if-b"): endpoint "192.0.2.1:0": want host:port`, peerKey(2))},
		},
		{
			name:  "allowed ip",
			peers: []api.DesiredPeer{entry("if-b", 2, "10.0.0.2/32", "x"), entry("if-c", 3, "10.0.0.3/32")},
			kept:  slices.Concat(bothGood, []string{k("if-c", 3)}),
			errs:  []string{fmt.Sprintf(`peer %q (interface_id "if-b"): allowed ip "x": netip.ParsePrefix("x"): no '/'`, peerKey(2))},
		},
		{
			name:  "keepalive",
			peers: []api.DesiredPeer{{InterfaceID: "if-b", PublicKey: peerKey(2).String(), PersistentKeepalive: -1}},
			errs:  []string{fmt.Sprintf(`peer %q (interface_id "if-b"): persistent keepalive -1: want 0-65535`, peerKey(2))},
		},
		{
			// A malformed entry still claims its key: either may be the impostor.
			name:  "malformed entry with a good peer's key",
			peers: []api.DesiredPeer{entry("if-b", 21, "x")},
			kept:  []string{k("if-g", 20)},
			errs: []string{
				fmt.Sprintf(`peer %q (interface_id "if-b"): allowed ip "x": netip.ParsePrefix("x"): no '/'`, peerKey(21)),
				fmt.Sprintf(`peer %s: public key listed by 2 peers (interface_id ["if-b" "if-h"]): none is applied`, peerKey(21)),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Concat(good, tt.peers)
			slices.SortFunc(in, api.ComparePeers)
			ds := &api.DesiredState{Interfaces: []api.DesiredInterface{
				{ID: "if-a", Name: "drago-a", Addresses: []string{"10.0.0.1/24"}, Peers: in},
			}}
			wantKept := tt.kept
			if wantKept == nil {
				wantKept = bothGood
			}
			wantKept = slices.Sorted(slices.Values(wantKept))
			var wantErrs []string
			for _, e := range tt.errs {
				wantErrs = append(wantErrs, `interface "if-a" (drago-a): `+e)
			}
			var cache peerCache
			for _, with := range []struct {
				name  string
				cache *peerCache
			}{{"fresh", nil}, {"cached, first", &cache}, {"cached, again", &cache}} {
				set := parseState(ds, with.cache)
				if len(set.Interfaces) != 1 || len(set.Errors) != 0 {
					t.Fatalf("%s: interfaces %+v, errors %v; want drago-a kept", with.name, set.Interfaces, set.Errors)
				}
				w := set.Interfaces[0]
				if d := cmp.Diff(wantKept, keptPeers(w, in)); d != "" {
					t.Errorf("%s: peers kept (-want +got):\n%s", with.name, d)
				}
				if d := cmp.Diff(mustPrefixes(t, "10.0.0.1/24"), w.Addresses, cmpNetip); d != "" {
					t.Errorf("%s: addresses (-want +got):\n%s", with.name, d)
				}
				var gotErrs []string
				for _, err := range set.SkippedPeers {
					gotErrs = append(gotErrs, err.Error())
				}
				if d := cmp.Diff(wantErrs, gotErrs); d != "" {
					t.Errorf("%s: skipped peers (-want +got):\n%s", with.name, d)
				}
			}
		})
	}
}
