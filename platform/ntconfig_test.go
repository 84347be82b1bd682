package platform

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

func TestNTConfig(t *testing.T) {
	priv, pub1, pub2, psk := testKey(1), testKey(2), testKey(3), testKey(4)
	port, zero, keepalive, noKeepalive := 51820, 0, 25*time.Second, time.Duration(0)
	for _, tt := range []struct {
		name string
		cfg  wgtypes.Config
		want ntInterface
	}{
		{"Empty", wgtypes.Config{}, ntInterface{}},
		{
			"Interface",
			wgtypes.Config{PrivateKey: &priv, ListenPort: &port, FirewallMark: &zero, ReplacePeers: true},
			ntInterface{
				Flags:      ntInterfaceHasPrivateKey | ntInterfaceHasListenPort | ntInterfaceReplacePeers,
				ListenPort: 51820, PrivateKey: priv,
			},
		},
		{
			"NewPeer",
			wgtypes.Config{Peers: []wgtypes.PeerConfig{{
				PublicKey:                   pub1,
				PresharedKey:                &psk,
				Endpoint:                    &net.UDPAddr{IP: net.ParseIP("192.0.2.1"), Port: 51820}, // 16-byte form
				PersistentKeepaliveInterval: &keepalive,
				AllowedIPs:                  nets("10.0.0.0/24", "10.1.2.3/16", "fd00::1/64"),
			}}},
			ntInterface{Peers: []ntPeer{{
				Flags:               ntPeerHasPublicKey | ntPeerHasPresharedKey | ntPeerHasEndpoint | ntPeerHasPersistentKeepalive,
				PublicKey:           pub1,
				PresharedKey:        psk,
				PersistentKeepalive: 25,
				Endpoint:            netip.MustParseAddrPort("192.0.2.1:51820"),
				AllowedIPs:          prefixes("10.0.0.0/24", "10.1.0.0/16", "fd00::/64"),
			}}},
		},
		{
			"UpdatePeer",
			wgtypes.Config{Peers: []wgtypes.PeerConfig{{
				PublicKey:                   pub1,
				UpdateOnly:                  true,
				Endpoint:                    &net.UDPAddr{IP: net.ParseIP("2001:db8::1"), Port: 1},
				PersistentKeepaliveInterval: &noKeepalive,
				ReplaceAllowedIPs:           true,
			}}},
			ntInterface{Peers: []ntPeer{{
				Flags:     ntPeerHasPublicKey | ntPeerUpdateOnly | ntPeerHasEndpoint | ntPeerHasPersistentKeepalive | ntPeerReplaceAllowedIPs,
				PublicKey: pub1,
				Endpoint:  netip.MustParseAddrPort("[2001:db8::1]:1"),
			}}},
		},
		{
			"RemovePeerIgnoresTheRest",
			wgtypes.Config{Peers: []wgtypes.PeerConfig{
				{PublicKey: pub1, Remove: true, UpdateOnly: true, PresharedKey: &psk, AllowedIPs: nets("10.0.0.0/24")},
				{PublicKey: pub2, UpdateOnly: true},
			}},
			ntInterface{Peers: []ntPeer{
				{Flags: ntPeerHasPublicKey | ntPeerRemove, PublicKey: pub1},
				{Flags: ntPeerHasPublicKey | ntPeerUpdateOnly, PublicKey: pub2},
			}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ntConfig(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
				cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("ntConfig (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNTConfigErrors(t *testing.T) {
	mark, badPort, long := 0x1d, 65536, 65536*time.Second
	for _, tt := range []struct {
		name string
		cfg  wgtypes.Config
		want string
	}{
		{"FirewallMark", wgtypes.Config{FirewallMark: &mark}, "firewall mark"},
		{"ListenPort", wgtypes.Config{ListenPort: &badPort}, "listen port 65536"},
		{"Keepalive", wgtypes.Config{Peers: []wgtypes.PeerConfig{{PersistentKeepaliveInterval: &long}}}, "keepalive"},
		{"Endpoint", wgtypes.Config{Peers: []wgtypes.PeerConfig{{Endpoint: &net.UDPAddr{Port: 1}}}}, "invalid endpoint"},
		{"AllowedIP", wgtypes.Config{Peers: []wgtypes.PeerConfig{{AllowedIPs: []net.IPNet{{IP: net.IPv4(10, 0, 0, 0)}}}}}, "invalid allowed ip"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ntConfig(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ntConfig = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestNTWireGuard(t *testing.T) {
	priv, pub1, pub2, psk := testKey(1), testKey(2), testKey(3), testKey(4)
	when := time.Date(2026, 5, 1, 12, 0, 0, 500, time.UTC)
	in := ntInterface{
		Flags:      ntInterfaceHasPrivateKey | ntInterfaceHasListenPort,
		ListenPort: 51820,
		PrivateKey: priv,
		PublicKey:  testKey(9), // no ntInterfaceHasPublicKey: derived instead
		Peers: []ntPeer{
			{
				Flags:     ntPeerHasPublicKey | ntPeerHasEndpoint,
				PublicKey: pub2,
				Endpoint:  netip.MustParseAddrPort("[2001:db8::2]:51821"),
				TxBytes:   1, RxBytes: 2,
			},
			{
				Flags:               ntPeerHasPublicKey | ntPeerHasPresharedKey | ntPeerHasPersistentKeepalive | ntPeerHasEndpoint,
				PublicKey:           pub1,
				PresharedKey:        psk,
				PersistentKeepalive: 25,
				Endpoint:            netip.MustParseAddrPort("[::ffff:192.0.2.1]:51820"),
				TxBytes:             100, RxBytes: 200,
				LastHandshake: uint64(when.UnixNano()/100 + filetimeEpoch),
				AllowedIPs:    prefixes("10.0.0.0/24", "fd00::/64"),
			},
		},
	}
	want := &wgtypes.Device{
		Name: "dg-office", Type: wgtypes.WindowsKernel,
		PrivateKey: priv, PublicKey: priv.PublicKey(), ListenPort: 51820,
		Peers: []wgtypes.Peer{
			{
				PublicKey: pub1, PresharedKey: psk,
				Endpoint:                    &net.UDPAddr{IP: net.IP{192, 0, 2, 1}, Port: 51820},
				PersistentKeepaliveInterval: 25 * time.Second,
				LastHandshakeTime:           when,
				ReceiveBytes:                200, TransmitBytes: 100,
				AllowedIPs:      nets("10.0.0.0/24", "fd00::/64"),
				ProtocolVersion: 1,
			},
			{
				PublicKey:    pub2,
				Endpoint:     &net.UDPAddr{IP: net.ParseIP("2001:db8::2"), Port: 51821},
				ReceiveBytes: 2, TransmitBytes: 1,
				ProtocolVersion: 1,
			},
		},
	}
	got := ntWireGuard("dg-office", in)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ntWireGuard (-want +got):\n%s", diff)
	}
}

// TestNTRoundTrip checks that what ntConfig produces, read back as
// wireguard-nt would report it, gives the peers configured.
func TestNTRoundTrip(t *testing.T) {
	priv, pub := testKey(1), testKey(2)
	port, keepalive := 51820, 25*time.Second
	cfg := wgtypes.Config{PrivateKey: &priv, ListenPort: &port, ReplacePeers: true, Peers: []wgtypes.PeerConfig{{
		PublicKey:                   pub,
		Endpoint:                    &net.UDPAddr{IP: net.IPv4(198, 51, 100, 7).To4(), Port: 4500},
		PersistentKeepaliveInterval: &keepalive,
		AllowedIPs:                  nets("10.9.0.0/16", "fd09::/48"),
	}}}
	c, err := ntConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Flags |= ntInterfaceHasPublicKey
	c.PublicKey = priv.PublicKey()
	got := ntWireGuard("x", c)
	want := &wgtypes.Device{
		Name: "x", Type: wgtypes.WindowsKernel, PrivateKey: priv, PublicKey: priv.PublicKey(), ListenPort: port,
		Peers: []wgtypes.Peer{{
			PublicKey: pub, Endpoint: cfg.Peers[0].Endpoint, PersistentKeepaliveInterval: keepalive,
			AllowedIPs: cfg.Peers[0].AllowedIPs, ProtocolVersion: 1,
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestFiletimeToTime(t *testing.T) {
	for _, tt := range []struct {
		ft   uint64
		want time.Time
	}{
		{0, time.Time{}},
		{filetimeEpoch, time.Unix(0, 0)},
		{filetimeEpoch + 10_000_000, time.Unix(1, 0)},
		{133_000_000_000_000_000, time.Date(2022, 6, 18, 4, 26, 40, 0, time.UTC)},
	} {
		if got := filetimeToTime(tt.ft); !got.Equal(tt.want) {
			t.Errorf("filetimeToTime(%d) = %v, want %v", tt.ft, got, tt.want)
		}
	}
}

func TestNTAdapterGUID(t *testing.T) {
	str := func(g [16]byte) string {
		return fmt.Sprintf("%x-%x-%x-%x-%x", g[0:4], g[4:6], g[6:8], g[8:10], g[10:16])
	}
	a, b := ntAdapterGUID("dg-office"), ntAdapterGUID("dg-home")
	if a != ntAdapterGUID("dg-office") {
		t.Errorf("ntAdapterGUID differs between calls")
	}
	if a == b {
		t.Errorf("ntAdapterGUID(dg-office) == ntAdapterGUID(dg-home) = %s", str(a))
	}
	for _, g := range [][16]byte{a, b} {
		if g[6]>>4 != 5 || g[8]>>6 != 2 {
			t.Errorf("GUID %s: want version 5, RFC 9562 variant", str(g))
		}
	}
	// A changed GUID would give every Windows host a new network profile:
	// keep this value. Python agrees: uuid.uuid5(uuid.UUID(
	// "6c0e9a7d-2b51-4f3e-9d11-58d4802a61c5"), "dg-office").
	if got, want := str(a), "4c099720-64aa-50ed-8131-105f799d7060"; got != want {
		t.Errorf("ntAdapterGUID(dg-office) = %s, want %s", got, want)
	}
}

func TestNTRoutes(t *testing.T) {
	const luid, other = 0x1234, 0x9999
	r := func(luid uint64, dst string, metric, proto uint32, hop string) ntRoute {
		rt := ntRoute{LUID: luid, Dst: netip.MustParsePrefix(dst), Metric: metric, Protocol: proto}
		if hop != "" {
			rt.NextHop = netip.MustParseAddr(hop)
		}
		return rt
	}
	rows := []ntRoute{
		r(luid, "fd20::/48", ntRouteMetric, ntRouteProtocol, "::"),
		r(luid, "10.20.0.0/16", ntRouteMetric, ntRouteProtocol, "0.0.0.0"),
		r(luid, "10.20.0.9/32", ntRouteMetric, ntRouteProtocol, ""),
		r(luid, "10.10.0.0/24", 256, 2, "0.0.0.0"),                           // on-link route of an address
		r(luid, "10.30.0.0/16", 0, ntRouteProtocol, "0.0.0.0"),               // added by hand
		r(luid, "10.40.0.0/16", ntRouteMetric, ntRouteProtocol, "10.10.0.9"), // via a gateway
		r(other, "10.50.0.0/16", ntRouteMetric, ntRouteProtocol, "0.0.0.0"),  // another adapter
	}
	if diff := cmp.Diff([]string{"10.20.0.0/16", "10.20.0.9/32", "fd20::/48"}, prefixStrings(ntOwnedRoutes(rows, luid))); diff != "" {
		t.Errorf("ntOwnedRoutes (-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		dst            string
		owned, foreign bool
	}{
		{"10.20.0.0/16", true, false},
		{"10.10.0.0/24", false, true},
		{"10.30.0.0/16", false, true},
		{"10.40.0.0/16", false, false}, // a gateway route has another key
		{"10.50.0.0/16", false, false},
		{"10.60.0.0/16", false, false},
	} {
		owned, foreign := ntRouteTo(rows, luid, netip.MustParsePrefix(tt.dst))
		if owned != tt.owned || foreign != tt.foreign {
			t.Errorf("ntRouteTo(%s) = owned %v, foreign %v; want %v, %v", tt.dst, owned, foreign, tt.owned, tt.foreign)
		}
	}
}

func prefixes(ss ...string) []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

func prefixStrings(ps []netip.Prefix) []string {
	var ss []string
	for _, p := range ps {
		ss = append(ss, p.String())
	}
	return ss
}
