package agent

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/platform"
	"github.com/drago-wg/drago/platform/platformtest"
)

// cmpNetip compares netip values, whose fields are unexported.
var cmpNetip = cmp.Options{
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }),
}

// testWant is an interface with three peers: one on the interface's subnet,
// one with a routed subnet and no endpoint, one with keepalive.
func testWant(t *testing.T) wantInterface {
	t.Helper()
	return wantInterface{
		ID: "if-1", Name: "drago0", Addresses: mustPrefixes(t, "10.0.0.1/24"), ListenPort: 51820, MTU: 1420,
		Peers: sortedPeers([]wantPeer{
			{PublicKey: peerKey(2), Endpoint: "192.0.2.2:51820", Addr: netip.MustParseAddrPort("192.0.2.2:51820"),
				AllowedIPs: mustPrefixes(t, "10.0.0.2/32")},
			{PublicKey: peerKey(3), AllowedIPs: mustPrefixes(t, "10.0.0.3/32", "192.168.3.0/24")},
			{PublicKey: peerKey(4), Endpoint: "192.0.2.4:51820", Addr: netip.MustParseAddrPort("192.0.2.4:51820"),
				AllowedIPs: mustPrefixes(t, "10.0.0.4/32"), Keepalive: 25 * time.Second},
		}),
	}
}

func sortedPeers(ps []wantPeer) []wantPeer {
	w, _, _ := parseInterface(toDesired(wantInterface{ID: "x", Name: "x", Peers: ps}), nil)
	for i := range w.Peers {
		for _, p := range ps {
			if p.PublicKey == w.Peers[i].PublicKey {
				w.Peers[i] = p
			}
		}
	}
	return w.Peers
}

// matchingDevice is the device a successful apply of w leaves behind.
func matchingDevice(w wantInterface, key wgtypes.Key) *platform.Device {
	d := &platform.Device{
		WireGuard: wgtypes.Device{Name: w.Name, PrivateKey: key, PublicKey: key.PublicKey(), ListenPort: w.ListenPort},
		MTU:       w.MTU, Up: true, Addresses: append([]netip.Prefix(nil), w.Addresses...),
		Routes: wantRoutes(w),
	}
	for _, p := range w.Peers {
		hp := wgtypes.Peer{PublicKey: p.PublicKey, PersistentKeepaliveInterval: p.Keepalive, AllowedIPs: ipNets(p.AllowedIPs)}
		if p.Addr.IsValid() {
			hp.Endpoint = net.UDPAddrFromAddrPort(p.Addr)
		}
		d.WireGuard.Peers = append(d.WireGuard.Peers, hp)
	}
	return d
}

// findPeer returns the peer whose key is peerKey(n).
func findPeer(w *wantInterface, n byte) *wantPeer {
	for i := range w.Peers {
		if w.Peers[i].PublicKey == peerKey(n) {
			return &w.Peers[i]
		}
	}
	panic("no such peer")
}

func udp(s string) *net.UDPAddr { return net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s)) }

func TestDiff(t *testing.T) {
	key := testKey(1)
	tests := []struct {
		name   string
		want   func(w *wantInterface)
		have   func(d *platform.Device) // nil device when have is nil and create is set
		create bool
		plan   func(w wantInterface) plan
	}{
		{
			name:   "create",
			create: true,
			plan: func(w wantInterface) plan {
				return plan{
					Create: true,
					WireGuard: &wgtypes.Config{PrivateKey: &key, ListenPort: ptr(51820), ReplacePeers: true, Peers: []wgtypes.PeerConfig{
						newPeerConfig(w.Peers[0]), newPeerConfig(w.Peers[1]), newPeerConfig(w.Peers[2]),
					}},
					MTU: 1420, AddAddrs: mustPrefixes(t, "10.0.0.1/24"), Up: true,
					AddRoutes: mustPrefixes(t, "192.168.3.0/24"),
				}
			},
		},
		{
			name:   "create with any port and default mtu",
			want:   func(w *wantInterface) { w.ListenPort, w.MTU = 0, 0; w.Peers = nil },
			create: true,
			plan: func(w wantInterface) plan {
				return plan{Create: true, WireGuard: &wgtypes.Config{PrivateKey: &key, ReplacePeers: true},
					AddAddrs: mustPrefixes(t, "10.0.0.1/24"), Up: true}
			},
		},
		{
			name: "in sync",
			have: func(d *platform.Device) {},
			plan: func(wantInterface) plan { return plan{} },
		},
		{
			name: "peer order and allowed ip order do not matter",
			have: func(d *platform.Device) {
				ps := d.WireGuard.Peers
				ps[0], ps[2] = ps[2], ps[0]
				for i := range ps {
					a := ps[i].AllowedIPs
					for l, r := 0, len(a)-1; l < r; l, r = l+1, r-1 {
						a[l], a[r] = a[r], a[l]
					}
				}
			},
			plan: func(wantInterface) plan { return plan{} },
		},
		{
			name: "one peer's endpoint changed",
			want: func(w *wantInterface) {
				w.Peers[1].Endpoint, w.Peers[1].Addr = "192.0.2.99:51820", netip.MustParseAddrPort("192.0.2.99:51820")
			},
			have: func(d *platform.Device) {},
			plan: func(w wantInterface) plan {
				return plan{WireGuard: &wgtypes.Config{Peers: []wgtypes.PeerConfig{
					{PublicKey: w.Peers[1].PublicKey, UpdateOnly: true, Endpoint: udp("192.0.2.99:51820")},
				}}}
			},
		},
		{
			name: "roamed endpoint kept when desired has none",
			have: func(d *platform.Device) {
				for i := range d.WireGuard.Peers {
					if d.WireGuard.Peers[i].PublicKey == peerKey(3) {
						d.WireGuard.Peers[i].Endpoint = udp("198.51.100.7:40000")
					}
				}
			},
			plan: func(wantInterface) plan { return plan{} },
		},
		{
			name: "allowed ips changed",
			want: func(w *wantInterface) { findPeer(w, 2).AllowedIPs = mustPrefixes(t, "10.0.0.2/32", "10.9.0.0/16") },
			have: func(d *platform.Device) {},
			plan: func(w wantInterface) plan {
				return plan{
					WireGuard: &wgtypes.Config{Peers: []wgtypes.PeerConfig{{
						PublicKey: peerKey(2), UpdateOnly: true, ReplaceAllowedIPs: true,
						AllowedIPs: ipNets(mustPrefixes(t, "10.0.0.2/32", "10.9.0.0/16")),
					}}},
					AddRoutes: mustPrefixes(t, "10.9.0.0/16"),
				}
			},
		},
		{
			name: "keepalive turned off",
			want: func(w *wantInterface) {
				for i := range w.Peers {
					w.Peers[i].Keepalive = 0
				}
			},
			have: func(d *platform.Device) {},
			plan: func(wantInterface) plan {
				return plan{WireGuard: &wgtypes.Config{Peers: []wgtypes.PeerConfig{
					{PublicKey: peerKey(4), UpdateOnly: true, PersistentKeepaliveInterval: ptr(time.Duration(0))},
				}}}
			},
		},
		{
			name: "peer removed, its routes too",
			want: func(w *wantInterface) { w.Peers = w.Peers[:0:0] },
			have: func(d *platform.Device) {},
			plan: func(wantInterface) plan {
				rm := func(n byte) wgtypes.PeerConfig { return wgtypes.PeerConfig{PublicKey: peerKey(n), Remove: true} }
				return plan{
					WireGuard: &wgtypes.Config{Peers: sortPeerConfigs(rm(2), rm(3), rm(4))},
					DelRoutes: mustPrefixes(t, "192.168.3.0/24"),
				}
			},
		},
		{
			name: "peer added",
			have: func(d *platform.Device) { d.WireGuard.Peers = d.WireGuard.Peers[:2] },
			plan: func(w wantInterface) plan {
				return plan{WireGuard: &wgtypes.Config{Peers: []wgtypes.PeerConfig{newPeerConfig(w.Peers[2])}}}
			},
		},
		{
			name: "private key and listen port restored",
			have: func(d *platform.Device) { d.WireGuard.PrivateKey = testKey(9); d.WireGuard.ListenPort = 1234 },
			plan: func(wantInterface) plan {
				return plan{WireGuard: &wgtypes.Config{PrivateKey: &key, ListenPort: ptr(51820)}}
			},
		},
		{
			name: "any listen port accepted",
			want: func(w *wantInterface) { w.ListenPort = 0 },
			have: func(d *platform.Device) { d.WireGuard.ListenPort = 40404 },
			plan: func(wantInterface) plan { return plan{} },
		},
		{
			name: "address changed",
			want: func(w *wantInterface) { w.Addresses = mustPrefixes(t, "10.0.0.1/24", "fd00::1/64") },
			have: func(d *platform.Device) {
				d.Addresses = mustPrefixes(t, "10.0.0.1/24", "10.7.7.7/32", "fe80::1/64")
			},
			plan: func(wantInterface) plan {
				return plan{AddAddrs: mustPrefixes(t, "fd00::1/64"), DelAddrs: mustPrefixes(t, "10.7.7.7/32")}
			},
		},
		{
			name: "mtu changed",
			have: func(d *platform.Device) { d.MTU = 1500 },
			plan: func(wantInterface) plan { return plan{MTU: 1420} },
		},
		{
			name: "default mtu leaves the link alone",
			want: func(w *wantInterface) { w.MTU = 0 },
			have: func(d *platform.Device) { d.MTU = 1500 },
			plan: func(wantInterface) plan { return plan{} },
		},
		{
			name: "link down",
			have: func(d *platform.Device) { d.Up = false },
			plan: func(wantInterface) plan { return plan{Up: true} },
		},
		{
			name: "routes: missing added, stale deleted",
			have: func(d *platform.Device) { d.Routes = mustPrefixes(t, "172.16.0.0/12") },
			plan: func(wantInterface) plan {
				return plan{AddRoutes: mustPrefixes(t, "192.168.3.0/24"), DelRoutes: mustPrefixes(t, "172.16.0.0/12")}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := testWant(t)
			var have *platform.Device
			if !tt.create {
				have = matchingDevice(w, key)
				tt.have(have)
			}
			if tt.want != nil {
				tt.want(&w)
			}
			got := diff(w, key, have)
			if d := cmp.Diff(tt.plan(w), got, cmpNetip); d != "" {
				t.Errorf("diff (-want +got):\n%s", d)
			}
			if got.empty() != cmp.Equal(tt.plan(w), plan{}, cmpNetip) {
				t.Errorf("empty() = %v, want %v", got.empty(), !got.empty())
			}
		})
	}
}

func sortPeerConfigs(pcs ...wgtypes.PeerConfig) []wgtypes.PeerConfig {
	peers := make([]wantPeer, len(pcs))
	for i, pc := range pcs {
		peers[i] = wantPeer{PublicKey: pc.PublicKey}
	}
	var out []wgtypes.PeerConfig
	for _, p := range sortedPeers(peers) {
		for _, pc := range pcs {
			if pc.PublicKey == p.PublicKey {
				out = append(out, pc)
			}
		}
	}
	return out
}

func TestWantRoutes(t *testing.T) {
	tests := []struct {
		name  string
		addrs []string
		ips   []string
		want  []netip.Prefix
	}{
		{"on the interface subnet", []string{"10.0.0.1/24"}, []string{"10.0.0.2/32", "10.0.0.0/25"}, nil},
		{"host address only", []string{"10.0.0.1/32"}, []string{"10.0.0.2/32"}, mustPrefixes(t, "10.0.0.2/32")},
		{"routed subnet", []string{"10.0.0.1/24"}, []string{"192.168.1.0/24", "10.0.0.0/16"}, mustPrefixes(t, "10.0.0.0/16", "192.168.1.0/24")},
		{"ipv6", []string{"fd00::1/64"}, []string{"fd00::2/128", "fd01::/64"}, mustPrefixes(t, "fd01::/64")},
		{"default routes left out", []string{"10.0.0.1/24"}, []string{"0.0.0.0/0", "::/0"}, nil},
		{"family mismatch is not coverage", []string{"::/0"}, []string{"10.1.0.0/16"}, mustPrefixes(t, "10.1.0.0/16")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := wantInterface{
				Addresses: mustPrefixes(t, tt.addrs...),
				Peers: []wantPeer{
					{PublicKey: peerKey(2), AllowedIPs: sortPrefixes(mustPrefixes(t, tt.ips...))},
					{PublicKey: peerKey(3), AllowedIPs: sortPrefixes(mustPrefixes(t, tt.ips...))}, // duplicates collapse
				},
			}
			if d := cmp.Diff(tt.want, wantRoutes(w), cmpNetip); d != "" {
				t.Errorf("wantRoutes (-want +got):\n%s", d)
			}
		})
	}
}

func TestPeerPrefixes(t *testing.T) {
	_, v4, _ := net.ParseCIDR("10.1.2.3/24")
	mapped := net.IPNet{IP: net.ParseIP("10.9.9.9"), Mask: net.CIDRMask(120, 128)}
	got := peerPrefixes([]net.IPNet{*v4, mapped})
	if d := cmp.Diff(mustPrefixes(t, "10.1.2.0/24", "10.9.9.0/24"), got, cmpNetip); d != "" {
		t.Errorf("peerPrefixes (-want +got):\n%s", d)
	}
}

// TestDiffPeersRandom applies diffPeers between random devices, whose peers
// and allowed IPs come in any order, and random desired peers: the device
// must then hold exactly the desired peers that have allowed IPs (see
// installed), the plan must name each key once in peerOrder, and a second
// diff must find nothing.
func TestDiffPeersRandom(t *testing.T) {
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 7))
		randomPeer := func(n byte) wantPeer {
			wp := wantPeer{PublicKey: peerKey(n), Keepalive: time.Duration(rng.IntN(2)*25) * time.Second}
			if rng.IntN(2) == 0 {
				wp.Addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(rng.IntN(4))}), 51820)
			}
			// Allowed IPs unique to the peer: 10.<n>.<i>.0/24.
			for i := range rng.IntN(4) {
				wp.AllowedIPs = append(wp.AllowedIPs, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, n, byte(i + rng.IntN(2)*10), 0}), 24))
			}
			return wp
		}
		r := platformtest.NewRecorder()
		must(t, r.CreateDevice("wg0"))
		var start []wgtypes.PeerConfig
		for _, n := range rng.Perm(40)[:rng.IntN(40)] {
			pc := newPeerConfig(randomPeer(byte(n + 1)))
			rng.Shuffle(len(pc.AllowedIPs), func(i, j int) { pc.AllowedIPs[i], pc.AllowedIPs[j] = pc.AllowedIPs[j], pc.AllowedIPs[i] })
			start = append(start, pc)
		}
		must(t, r.ConfigureWireGuard("wg0", wgtypes.Config{Peers: start}))
		var want []wantPeer
		for n := range byte(40) {
			if rng.IntN(2) == 0 {
				wp := randomPeer(n + 1)
				wp.AllowedIPs = sortPrefixes(wp.AllowedIPs)
				want = append(want, wp)
			}
		}
		want = sortedPeers(want)

		have, err := r.Device("wg0")
		must(t, err)
		plan, _ := diffPeers(want, have.WireGuard.Peers)
		if !slices.IsSortedFunc(plan, peerOrder) ||
			len(slices.CompactFunc(slices.Clone(plan), func(a, b wgtypes.PeerConfig) bool { return a.PublicKey == b.PublicKey })) != len(plan) {
			t.Fatalf("seed %d: plan not in peerOrder or a key twice", seed)
		}
		must(t, r.ConfigureWireGuard("wg0", wgtypes.Config{Peers: plan}))
		got, err := r.Device("wg0")
		must(t, err)
		var gotPeers []wantPeer
		for _, p := range got.WireGuard.Peers {
			gp := wantPeer{PublicKey: p.PublicKey, AllowedIPs: peerPrefixes(p.AllowedIPs), Keepalive: p.PersistentKeepaliveInterval}
			if len(gp.AllowedIPs) == 0 {
				gp.AllowedIPs = nil
			}
			gp.Addr = udpAddrPort(p.Endpoint)
			gotPeers = append(gotPeers, gp)
		}
		gotPeers = sortedPeers(gotPeers)
		onDevice := slices.DeleteFunc(slices.Clone(want), func(wp wantPeer) bool { return !installed(&wp) })
		// An endpoint the desired state leaves alone keeps the device's.
		for i := range onDevice {
			if !onDevice[i].Addr.IsValid() && i < len(gotPeers) {
				onDevice[i].Addr = gotPeers[i].Addr
			}
		}
		if d := cmp.Diff(onDevice, gotPeers, cmpNetip); d != "" {
			t.Fatalf("seed %d: device after the plan (-want +got):\n%s", seed, d)
		}
		if again, _ := diffPeers(want, got.WireGuard.Peers); len(again) != 0 {
			t.Fatalf("seed %d: second diff = %d changes, want none", seed, len(again))
		}
	}
}

// TestDiffFromMatchesFull applies diffFrom between random interfaces that
// differ in peers (added, removed, rekeyed, allowed IPs, endpoints,
// keepalives changed) to a device that matched the first: the full diff
// must then find nothing, the routes must be wantRoutes, and only the
// peers that differ may be named.
func TestDiffFromMatchesFull(t *testing.T) {
	key := testKey(99)
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 11))
		randomPeer := func(n byte) wantPeer {
			wp := wantPeer{PublicKey: peerKey(n), Keepalive: time.Duration(rng.IntN(2)*25) * time.Second}
			if rng.IntN(3) > 0 {
				wp.Addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(rng.IntN(3))}), 51820)
			}
			// Allowed IPs unique to the peer: its address on the interface's
			// subnet (no route) and up to two routed subnets.
			wp.AllowedIPs = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, n}), 32)}
			for i := range rng.IntN(3) {
				wp.AllowedIPs = append(wp.AllowedIPs, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, n, byte(i*10 + rng.IntN(3)), 0}), 24))
			}
			wp.AllowedIPs = sortPrefixes(wp.AllowedIPs)
			return wp
		}
		link := wantInterface{ID: "if-1", Name: "drago0", Addresses: mustPrefixes(t, "10.0.0.1/24"), ListenPort: 51820}
		was, want := link, link
		for n := range byte(30) {
			var wp wantPeer
			inWas := rng.IntN(2) == 0
			if inWas {
				wp = randomPeer(n + 2)
				was.Peers = append(was.Peers, wp)
			}
			switch {
			case inWas && rng.IntN(6) == 0: // removed
			case inWas && rng.IntN(5) == 0: // changed
				want.Peers = append(want.Peers, randomPeer(n+2))
			case inWas:
				want.Peers = append(want.Peers, wp)
			case rng.IntN(8) == 0: // added
				want.Peers = append(want.Peers, randomPeer(n+2))
			}
		}
		was.Peers, want.Peers = sortedPeers(was.Peers), sortedPeers(want.Peers)

		r := &reconciler{b: platformtest.NewRecorder()}
		if _, err := r.apply(link.Name, diff(was, key, nil)); err != nil {
			t.Fatal(err)
		}
		p := diffFrom(was, want)
		if p.WireGuard != nil {
			for _, pc := range p.WireGuard.Peers {
				i := slices.IndexFunc(was.Peers, func(wp wantPeer) bool { return wp.PublicKey == pc.PublicKey })
				j := slices.IndexFunc(want.Peers, func(wp wantPeer) bool { return wp.PublicKey == pc.PublicKey })
				if i >= 0 && j >= 0 && samePeer(&was.Peers[i], &want.Peers[j]) {
					t.Fatalf("seed %d: plan names unchanged peer %s", seed, pc.PublicKey)
				}
			}
		}
		if _, err := r.apply(link.Name, p); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		dev, err := r.b.Device(link.Name)
		must(t, err)
		if left := diff(want, key, dev); !left.empty() {
			t.Fatalf("seed %d: full diff after diffFrom: %+v", seed, left)
		}
		if d := cmp.Diff(wantRoutes(want), dev.Routes, cmpNetip); d != "" {
			t.Fatalf("seed %d: routes (-want +got):\n%s", seed, d)
		}
	}
}

// TestDiffFromSharedRoute: a route one changed peer drops stays while
// another peer still needs it, and is not added again for a peer that
// gains a route another peer already had.
func TestDiffFromSharedRoute(t *testing.T) {
	link := wantInterface{ID: "if-1", Name: "drago0", Addresses: mustPrefixes(t, "10.0.0.1/24")}
	shared := mustPrefixes(t, "192.168.9.0/24")
	peer := func(n byte, ips []netip.Prefix) wantPeer { return wantPeer{PublicKey: peerKey(n), AllowedIPs: ips} }
	for _, tt := range []struct {
		name      string
		was, want []wantPeer
		updated   int
	}{
		{"one drops it", []wantPeer{peer(2, shared), peer(3, shared)}, []wantPeer{peer(2, nil), peer(3, shared)}, 1},
		{"one gains it", []wantPeer{peer(2, nil), peer(3, shared)}, []wantPeer{peer(2, shared), peer(3, shared)}, 1},
		{"it moves", []wantPeer{peer(2, shared), peer(3, shared), peer(4, nil)}, []wantPeer{peer(2, nil), peer(3, shared), peer(4, shared)}, 2},
	} {
		was, want := link, link
		was.Peers, want.Peers = sortedPeers(tt.was), sortedPeers(tt.want)
		p := diffFrom(was, want)
		if len(p.DelRoutes)+len(p.AddRoutes) != 0 {
			t.Errorf("%s: route changes %v %v, want none: peer 3 keeps needing the route", tt.name, p.DelRoutes, p.AddRoutes)
		}
		if p.WireGuard == nil || len(p.WireGuard.Peers) != tt.updated {
			t.Errorf("%s: plan %+v, want %d peers updated", tt.name, p.WireGuard, tt.updated)
		}
	}
}
