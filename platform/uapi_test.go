package platform

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

func testKey(seed byte) wgtypes.Key {
	var k wgtypes.Key
	for i := range k {
		k[i] = seed
	}
	return k
}

func nets(prefixes ...string) []net.IPNet {
	var ns []net.IPNet
	for _, s := range prefixes {
		ns = append(ns, IPNet(netip.MustParsePrefix(s)))
	}
	return ns
}

func TestUAPIConfig(t *testing.T) {
	priv, pub, psk := testKey(1), testKey(2), testKey(3)
	port, mark, keepalive := 51820, 0, 25*time.Second
	for _, tt := range []struct {
		name string
		cfg  wgtypes.Config
		want string
	}{
		{"Empty", wgtypes.Config{}, ""},
		{
			"Device",
			wgtypes.Config{PrivateKey: &priv, ListenPort: &port, FirewallMark: &mark, ReplacePeers: true},
			"private_key=" + hex32("01") + "\nlisten_port=51820\nfwmark=0\nreplace_peers=true\n",
		},
		{
			"Peer",
			wgtypes.Config{Peers: []wgtypes.PeerConfig{{
				PublicKey:                   pub,
				UpdateOnly:                  true,
				PresharedKey:                &psk,
				Endpoint:                    &net.UDPAddr{IP: net.ParseIP("2001:db8::1"), Port: 51820},
				PersistentKeepaliveInterval: &keepalive,
				ReplaceAllowedIPs:           true,
				AllowedIPs:                  nets("10.0.0.0/24", "fd00::/64"),
			}}},
			"public_key=" + hex32("02") + "\nupdate_only=true\npreshared_key=" + hex32("03") +
				"\nendpoint=[2001:db8::1]:51820\npersistent_keepalive_interval=25\nreplace_allowed_ips=true" +
				"\nallowed_ip=10.0.0.0/24\nallowed_ip=fd00::/64\n",
		},
		{
			"Remove",
			wgtypes.Config{Peers: []wgtypes.PeerConfig{{PublicKey: pub, Remove: true, AllowedIPs: nets("10.0.0.0/24")}}},
			"public_key=" + hex32("02") + "\nremove=true\n",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, uapiConfig(tt.cfg)); diff != "" {
				t.Errorf("uapiConfig (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseUAPIDevice(t *testing.T) {
	priv := testKey(1)
	for _, tt := range []struct {
		name    string
		in      string
		want    *wgtypes.Device
		wantErr bool
	}{
		{"Empty", "", &wgtypes.Device{}, false},
		{
			"Full",
			"private_key=" + hex32("01") + "\nlisten_port=51820\nfwmark=7\n" +
				"public_key=" + hex32("02") + "\npreshared_key=" + hex32("00") + "\nprotocol_version=1\n" +
				"endpoint=192.0.2.1:51820\nlast_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\n" +
				"tx_bytes=10\nrx_bytes=20\npersistent_keepalive_interval=25\nallowed_ip=10.0.0.0/24\nallowed_ip=fd00::/64\n" +
				"public_key=" + hex32("03") + "\nendpoint=[2001:db8::1]:1\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\n" +
				"future_key=ignored\nerrno=0\n\n",
			&wgtypes.Device{
				PrivateKey: priv, PublicKey: priv.PublicKey(), ListenPort: 51820, FirewallMark: 7,
				Peers: []wgtypes.Peer{
					{
						PublicKey: testKey(2), ProtocolVersion: 1,
						Endpoint:                    &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1).To4(), Port: 51820},
						LastHandshakeTime:           time.Unix(1700000000, 5),
						TransmitBytes:               10,
						ReceiveBytes:                20,
						PersistentKeepaliveInterval: 25 * time.Second,
						AllowedIPs:                  nets("10.0.0.0/24", "fd00::/64"),
					},
					{PublicKey: testKey(3), Endpoint: &net.UDPAddr{IP: net.ParseIP("2001:db8::1"), Port: 1}},
				},
			},
			false,
		},
		{"BadLine", "listen_port\n", nil, true},
		{"BadKey", "private_key=zz\n", nil, true},
		{"BadNumber", "listen_port=x\n", nil, true},
		{"Errno", "errno=22\n", nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseUAPIDevice(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseUAPIDevice error = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseUAPIDevice (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUAPIRoundTrip(t *testing.T) {
	// What uapiConfig writes for a new peer parses back to that peer.
	keepalive := 10 * time.Second
	pc := wgtypes.PeerConfig{
		PublicKey:                   testKey(9),
		Endpoint:                    &net.UDPAddr{IP: net.IPv4(198, 51, 100, 7).To4(), Port: 4242},
		PersistentKeepaliveInterval: &keepalive,
		AllowedIPs:                  nets("10.9.0.0/16", "::/0"),
	}
	got, err := parseUAPIDevice(uapiConfig(wgtypes.Config{Peers: []wgtypes.PeerConfig{pc}}))
	if err != nil {
		t.Fatal(err)
	}
	want := []wgtypes.Peer{{PublicKey: pc.PublicKey, Endpoint: pc.Endpoint, PersistentKeepaliveInterval: keepalive, AllowedIPs: pc.AllowedIPs}}
	if diff := cmp.Diff(want, got.Peers); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestPrefix(t *testing.T) {
	for _, tt := range []struct {
		name   string
		in     net.IPNet
		want   string
		wantOK bool
	}{
		{"IPv4", net.IPNet{IP: net.IPv4(10, 1, 2, 3), Mask: net.CIDRMask(24, 32)}, "10.1.2.3/24", true},
		{"IPv4With16ByteMask", net.IPNet{IP: net.IPv4(10, 1, 2, 3), Mask: net.CIDRMask(120, 128)}, "10.1.2.3/24", true},
		{"IPv6", net.IPNet{IP: net.ParseIP("fd00::1"), Mask: net.CIDRMask(64, 128)}, "fd00::1/64", true},
		{"NonCanonicalMask", net.IPNet{IP: net.ParseIP("fd00::1"), Mask: net.IPMask{255, 0, 255, 0}}, "invalid Prefix", false},
		{"Zero", net.IPNet{}, "invalid Prefix", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Prefix(tt.in)
			if got.String() != tt.want || ok != tt.wantOK {
				t.Errorf("Prefix(%v) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestIPNet(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		ip   net.IP
		ones int
		bits int
		back string // Prefix of the result
	}{
		{"IPv4", "10.1.2.3/24", net.IP{10, 1, 2, 3}, 24, 32, "10.1.2.3/24"},
		{"IPv4Host", "10.1.2.3/32", net.IP{10, 1, 2, 3}, 32, 32, "10.1.2.3/32"},
		{"IPv4Default", "0.0.0.0/0", net.IP{0, 0, 0, 0}, 0, 32, "0.0.0.0/0"},
		{"IPv6", "fd00::1/64", net.ParseIP("fd00::1"), 64, 128, "fd00::1/64"},
		{"IPv4Mapped", "::ffff:10.1.2.0/120", net.ParseIP("::ffff:10.1.2.0"), 120, 128, "10.1.2.0/24"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := netip.MustParsePrefix(tt.in)
			got := IPNet(p)
			if ones, bits := got.Mask.Size(); !bytes.Equal(got.IP, tt.ip) || ones != tt.ones || bits != tt.bits {
				t.Errorf("IPNet(%s) = %v (IP %d bytes, mask %d/%d), want %v/%d of %d bits", p, got, len(got.IP), ones, bits, tt.ip, tt.ones, tt.bits)
			}
			if back, ok := Prefix(got); !ok || back.String() != tt.back {
				t.Errorf("Prefix(IPNet(%s)) = %v, %v; want %s", p, back, ok, tt.back)
			}
		})
	}
}

// hex32 repeats a two-digit hex byte 32 times: a hex-encoded key.
func hex32(b string) string {
	s := ""
	for range 32 {
		s += b
	}
	return s
}
