package platformtest

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/platform"
	"github.com/drago-wg/drago/server/api"
)

// Conformance checks the behaviour every platform.Backend shares, on the
// interface dev, which must not exist. It adds addresses and routes in
// 10.10.0.0/16, 10.20.0.0/16, fd10::/16 and fd20::/16 through dev (so run it
// in a scratch network namespace) and deletes dev at the end.
func Conformance(t *testing.T, b platform.Backend, dev string) {
	t.Helper()
	c := &conformance{b: b, dev: dev}
	for _, step := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"Absent", c.absent},
		{"Create", c.create},
		{"Configure", c.configure},
		{"UpdatePeers", c.updatePeers},
		{"MTUAndUp", c.mtuAndUp},
		{"Addresses", c.addresses},
		{"Routes", c.routes},
		{"Delete", c.delete},
	} {
		if !t.Run(step.name, step.run) {
			b.DeleteDevice(dev)
			return
		}
	}
}

type conformance struct {
	b   platform.Backend
	dev string
}

// Keys shared by the steps; fixed so that failures reproduce.
var (
	privKey = key(1)
	peer1   = key(11).PublicKey()
	peer2   = key(12).PublicKey()
	peer3   = key(13).PublicKey()
	peer4   = key(14).PublicKey()
	psk     = key(20)
)

func (c *conformance) absent(t *testing.T) {
	if _, err := c.b.Device(c.dev); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Device(%q) = %v, want an error matching os.ErrNotExist", c.dev, err)
	}
	p4 := netip.MustParsePrefix("10.10.0.1/24")
	for name, call := range map[string]func() error{
		"DeleteDevice":       func() error { return c.b.DeleteDevice(c.dev) },
		"ConfigureWireGuard": func() error { return c.b.ConfigureWireGuard(c.dev, wgtypes.Config{}) },
		"SetMTU":             func() error { return c.b.SetMTU(c.dev, 1400) },
		"SetUp":              func() error { return c.b.SetUp(c.dev) },
		"AddAddress":         func() error { return c.b.AddAddress(c.dev, p4) },
		"DeleteAddress":      func() error { return c.b.DeleteAddress(c.dev, p4) },
		"AddRoute":           func() error { return c.b.AddRoute(c.dev, p4.Masked()) },
		"DeleteRoute":        func() error { return c.b.DeleteRoute(c.dev, p4.Masked()) },
	} {
		if err := call(); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s on an absent interface = %v, want an error matching os.ErrNotExist", name, err)
		}
	}
}

func (c *conformance) create(t *testing.T) {
	for _, bad := range []string{"", "bad/name", "wg%d", "a-name-too-long-for-linux"} {
		if err := c.b.CreateDevice(bad); err == nil {
			c.b.DeleteDevice(bad)
			t.Errorf("CreateDevice(%q) succeeded, want an error", bad)
		}
	}
	if err := c.b.CreateDevice(c.dev); err != nil {
		t.Fatal(err)
	}
	if err := c.b.CreateDevice(c.dev); !errors.Is(err, os.ErrExist) {
		t.Errorf("second CreateDevice = %v, want an error matching os.ErrExist", err)
	}
	if err := c.b.AddRoute(c.dev, netip.MustParsePrefix("10.20.0.0/16")); err == nil {
		t.Errorf("AddRoute through a down link succeeded, want an error")
	}
	// No ListenPort: wireguard-go may already listen on a random port.
	c.check(t, view{Name: c.dev, MTU: 1420}, cmpopts.IgnoreFields(view{}, "ListenPort"))
}

func (c *conformance) configure(t *testing.T) {
	port, mark, keepalive := 51820, 0x1d, 25*time.Second
	cfg := wgtypes.Config{
		PrivateKey:   &privKey,
		ListenPort:   &port,
		FirewallMark: &mark,
		ReplacePeers: true,
		Peers: []wgtypes.PeerConfig{
			{
				PublicKey:                   peer1,
				Endpoint:                    &net.UDPAddr{IP: net.ParseIP("192.0.2.10"), Port: 51820},
				PersistentKeepaliveInterval: &keepalive,
				AllowedIPs:                  nets("10.10.1.0/24", "fd10:1::/64"),
			},
			{
				PublicKey:  peer2,
				Endpoint:   &net.UDPAddr{IP: net.ParseIP("2001:db8::2"), Port: 51821},
				AllowedIPs: nets("10.10.2.5/32", "10.10.3.7/24"), // host bits are dropped
			},
			{PublicKey: peer3, PresharedKey: &psk},
		},
	}
	if err := c.b.ConfigureWireGuard(c.dev, cfg); err != nil {
		t.Fatal(err)
	}
	c.check(t, view{
		Name: c.dev, PublicKey: privKey.PublicKey().String(), ListenPort: port, FirewallMark: mark, MTU: 1420,
		Peers: []peerView{
			{PublicKey: peer1.String(), Endpoint: "192.0.2.10:51820", Keepalive: keepalive, AllowedIPs: []string{"10.10.1.0/24", "fd10:1::/64"}},
			{PublicKey: peer2.String(), Endpoint: "[2001:db8::2]:51821", AllowedIPs: []string{"10.10.2.5/32", "10.10.3.0/24"}},
			{PublicKey: peer3.String(), PresharedKey: true},
		},
	})
}

func (c *conformance) updatePeers(t *testing.T) {
	cfg := wgtypes.Config{Peers: []wgtypes.PeerConfig{
		{PublicKey: peer1, UpdateOnly: true, ReplaceAllowedIPs: true, AllowedIPs: nets("10.10.1.0/24", "10.10.9.0/24")},
		{PublicKey: peer2, UpdateOnly: true, AllowedIPs: nets("10.10.9.0/24")}, // moves from peer1
		{PublicKey: peer3, Remove: true},
		{PublicKey: peer4, UpdateOnly: true, AllowedIPs: nets("10.10.4.0/24")}, // absent: ignored
		{PublicKey: key(15).PublicKey(), Remove: true},                         // absent: ignored
	}}
	if err := c.b.ConfigureWireGuard(c.dev, cfg); err != nil {
		t.Fatal(err)
	}
	c.check(t, view{
		Name: c.dev, PublicKey: privKey.PublicKey().String(), ListenPort: 51820, FirewallMark: 0x1d, MTU: 1420,
		Peers: []peerView{
			{PublicKey: peer1.String(), Endpoint: "192.0.2.10:51820", Keepalive: 25 * time.Second, AllowedIPs: []string{"10.10.1.0/24"}},
			{PublicKey: peer2.String(), Endpoint: "[2001:db8::2]:51821", AllowedIPs: []string{"10.10.2.5/32", "10.10.3.0/24", "10.10.9.0/24"}},
		},
	})
}

func (c *conformance) mtuAndUp(t *testing.T) {
	if err := c.b.SetMTU(c.dev, 10); err == nil {
		t.Errorf("SetMTU(10) succeeded, want an error")
	}
	for range 2 {
		if err := c.b.SetMTU(c.dev, 1380); err != nil {
			t.Fatal(err)
		}
		if err := c.b.SetUp(c.dev); err != nil {
			t.Fatal(err)
		}
	}
	d, err := c.b.Device(c.dev)
	if err != nil {
		t.Fatal(err)
	}
	if d.MTU != 1380 || !d.Up {
		t.Errorf("after SetMTU(1380) and SetUp: MTU %d, Up %v", d.MTU, d.Up)
	}
}

func (c *conformance) addresses(t *testing.T) {
	for _, step := range []struct {
		name   string
		add    bool
		prefix string
		want   []string
	}{
		{"AddIPv4", true, "10.10.0.1/24", []string{"10.10.0.1/24"}},
		{"AddIPv4Again", true, "10.10.0.1/24", []string{"10.10.0.1/24"}},
		{"AddIPv6", true, "fd10::1/64", []string{"10.10.0.1/24", "fd10::1/64"}},
		{"AddIPv6Again", true, "fd10::1/64", []string{"10.10.0.1/24", "fd10::1/64"}},
		{"AddSecondIPv6", true, "fd10::2/128", []string{"10.10.0.1/24", "fd10::1/64", "fd10::2/128"}},
		{"DeleteIPv6", false, "fd10::1/64", []string{"10.10.0.1/24", "fd10::2/128"}},
		{"DeleteIPv6Again", false, "fd10::1/64", []string{"10.10.0.1/24", "fd10::2/128"}},
	} {
		t.Run(step.name, func(t *testing.T) {
			p := netip.MustParsePrefix(step.prefix)
			call := c.b.DeleteAddress
			if step.add {
				call = c.b.AddAddress
			}
			if err := call(c.dev, p); err != nil {
				t.Fatal(err)
			}
			d, err := c.b.Device(c.dev)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(step.want, strs(d.Addresses)); diff != "" {
				t.Errorf("addresses (-want +got):\n%s", diff)
			}
		})
	}
	if err := c.b.AddAddress(c.dev, netip.Prefix{}); err == nil {
		t.Errorf("AddAddress(invalid prefix) succeeded, want an error")
	}
	if err := c.b.AddAddress(c.dev, netip.MustParsePrefix("fd10::2/64")); !errors.Is(err, os.ErrExist) {
		t.Errorf("AddAddress(fd10::2/64) with fd10::2/128 present = %v, want an error matching os.ErrExist", err)
	}
}

func (c *conformance) routes(t *testing.T) {
	for _, step := range []struct {
		name   string
		add    bool
		prefix string
		want   []string
	}{
		{"AddIPv4", true, "10.20.0.0/16", []string{"10.20.0.0/16"}},
		{"AddIPv4Again", true, "10.20.0.0/16", []string{"10.20.0.0/16"}},
		{"AddHost", true, "10.20.0.9/32", []string{"10.20.0.0/16", "10.20.0.9/32"}},
		{"AddIPv6", true, "fd20::/48", []string{"10.20.0.0/16", "10.20.0.9/32", "fd20::/48"}},
		{"DeleteIPv4", false, "10.20.0.0/16", []string{"10.20.0.9/32", "fd20::/48"}},
		{"DeleteIPv4Again", false, "10.20.0.0/16", []string{"10.20.0.9/32", "fd20::/48"}},
		{"DeleteIPv6", false, "fd20::/48", []string{"10.20.0.9/32"}},
	} {
		t.Run(step.name, func(t *testing.T) {
			p := netip.MustParsePrefix(step.prefix)
			call := c.b.DeleteRoute
			if step.add {
				call = c.b.AddRoute
			}
			if err := call(c.dev, p); err != nil {
				t.Fatal(err)
			}
			d, err := c.b.Device(c.dev)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(step.want, strs(d.Routes)); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []netip.Prefix{{}, netip.MustParsePrefix("10.20.0.1/16")} {
		if err := c.b.AddRoute(c.dev, bad); err == nil {
			t.Errorf("AddRoute(%s) succeeded, want an error", bad)
		}
		if err := c.b.DeleteRoute(c.dev, bad); err == nil {
			t.Errorf("DeleteRoute(%s) succeeded, want an error", bad)
		}
	}
}

func (c *conformance) delete(t *testing.T) {
	if err := c.b.DeleteDevice(c.dev); err != nil {
		t.Fatal(err)
	}
	if _, err := c.b.Device(c.dev); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Device after DeleteDevice = %v, want an error matching os.ErrNotExist", err)
	}
	if err := c.b.DeleteDevice(c.dev); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("second DeleteDevice = %v, want an error matching os.ErrNotExist", err)
	}
}

// view is the comparable part of a platform.Device for the conformance steps:
// no counters, and peers and allowed IPs in a fixed order.
type view struct {
	Name         string
	PublicKey    string
	ListenPort   int
	FirewallMark int
	Peers        []peerView
	MTU          int
	Up           bool
	Addresses    []string
	Routes       []string
}

type peerView struct {
	PublicKey    string
	PresharedKey bool
	Endpoint     string
	Keepalive    time.Duration
	AllowedIPs   []string
}

// check compares c.dev's Device with want.
func (c *conformance) check(t *testing.T, want view, opts ...cmp.Option) {
	t.Helper()
	d, err := c.b.Device(c.dev)
	if err != nil {
		t.Fatal(err)
	}
	sortPeers(want.Peers)
	if diff := cmp.Diff(want, viewOf(d), opts...); diff != "" {
		t.Errorf("Device(%q) (-want +got):\n%s", c.dev, diff)
	}
}

func viewOf(d *platform.Device) view {
	v := view{
		Name:         d.WireGuard.Name,
		ListenPort:   d.WireGuard.ListenPort,
		FirewallMark: d.WireGuard.FirewallMark,
		MTU:          d.MTU,
		Up:           d.Up,
		Addresses:    strs(d.Addresses),
		Routes:       strs(d.Routes),
	}
	if d.WireGuard.PublicKey != (wgtypes.Key{}) {
		v.PublicKey = d.WireGuard.PublicKey.String()
	}
	for _, p := range d.WireGuard.Peers {
		pv := peerView{
			PublicKey:    p.PublicKey.String(),
			PresharedKey: p.PresharedKey != (wgtypes.Key{}),
			Keepalive:    p.PersistentKeepaliveInterval,
		}
		if p.Endpoint != nil {
			pv.Endpoint = p.Endpoint.String()
		}
		for _, n := range p.AllowedIPs {
			pfx, _ := toPrefix(n)
			pv.AllowedIPs = append(pv.AllowedIPs, pfx.String())
		}
		slices.Sort(pv.AllowedIPs)
		v.Peers = append(v.Peers, pv)
	}
	sortPeers(v.Peers)
	return v
}

func sortPeers(ps []peerView) {
	slices.SortFunc(ps, func(a, b peerView) int { return api.CompareKeys(a.PublicKey, b.PublicKey) })
}

func strs(ps []netip.Prefix) []string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return s
}

func nets(prefixes ...string) []net.IPNet {
	var ns []net.IPNet
	for _, s := range prefixes {
		ns = append(ns, platform.IPNet(netip.MustParsePrefix(s)))
	}
	return ns
}

// key returns a fixed private key derived from seed.
func key(seed byte) wgtypes.Key {
	var k wgtypes.Key
	for i := range k {
		k[i] = seed + byte(i)
	}
	k[0] &= 248
	k[31] = k[31]&127 | 64
	return k
}
