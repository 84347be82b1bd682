package platform_test

import (
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/platform"
	"github.com/drago-wg/drago/platform/platformtest"
)

// dev is the WireGuard interface of every helper host; each host has its own
// network namespace and /var/run/wireguard, so the name can repeat.
const dev = "drago0"

var kinds = []string{"userspace", "kernel"}

func TestNewUnknownKind(t *testing.T) {
	for _, kind := range []string{"bogus", "Kernel", "wireguard-go"} {
		t.Run(kind, func(t *testing.T) {
			_, err := platform.New(kind, nil)
			if err == nil || !strings.Contains(err.Error(), strconv.Quote(kind)) {
				t.Errorf("New(%q) = %v, want an error naming %q", kind, err, kind)
			}
		})
	}
}

func TestKinds(t *testing.T) {
	if diff := cmp.Diff([]string{"auto", "kernel", "userspace"}, platform.Kinds()); diff != "" {
		t.Errorf("Kinds() (-want +got):\n%s", diff)
	}
}

func TestConformance(t *testing.T) {
	requirePrivileged(t)
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ns := newNetns(t)
			requireKind(t, kind, ns)
			platformtest.Conformance(t, startHost(t, ns, kind), dev)
		})
	}
}

func TestNewAuto(t *testing.T) {
	requirePrivileged(t)
	t.Parallel()
	ns := newNetns(t)
	want := "userspace"
	if kernelWireGuard(t, ns) {
		want = "kernel"
	}
	h := startHost(t, ns, "auto")
	if got := h.Name(); got != want {
		t.Errorf("New(auto).Name() = %q, want %q", got, want)
	}
	if diff := cmp.Diff([]string{"lo"}, linkNames(h)); diff != "" {
		t.Errorf("links after probing (-want +got):\n%s", diff)
	}
}

// node is one helper host in the tunnel test.
type node struct {
	h        *host
	key      wgtypes.Key
	ip4, ip6 netip.Prefix // tunnel addresses
}

func (n *node) pub() wgtypes.Key { return n.key.PublicKey() }

// TestTunnel builds a hub (A) with two spokes (B, C), each in its own
// namespace, configures them through the Backend, and checks the result
// with ping, wg(8) and ip(8).
func TestTunnel(t *testing.T) {
	requirePrivileged(t)
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			testTunnel(t, kind)
		})
	}
}

func testTunnel(t *testing.T, kind string) {
	nsA, nsB, nsC := newNetns(t), newNetns(t), newNetns(t)
	requireKind(t, kind, nsA)
	veth(t, nsA, "ulb", "192.0.2.1/30", nsB, "ula", "192.0.2.2/30")
	veth(t, nsA, "ulc", "192.0.2.5/30", nsC, "ula", "192.0.2.6/30")
	newNode := func(ns string, i int) *node {
		k, err := wgtypes.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		return &node{
			h:   startHost(t, ns, kind),
			key: k,
			ip4: netip.MustParsePrefix("10.77.0." + strconv.Itoa(i) + "/32"),
			ip6: netip.MustParsePrefix("fd77::" + strconv.Itoa(i) + "/128"),
		}
	}
	a, b, c := newNode(nsA, 1), newNode(nsB, 2), newNode(nsC, 3)
	keepalive := 25 * time.Second
	spoke := func(n *node, endpoint string) wgtypes.PeerConfig {
		return wgtypes.PeerConfig{PublicKey: n.pub(), Endpoint: udpAddr(endpoint), AllowedIPs: ipNets(n.ip4, n.ip6)}
	}
	hub := func(endpoint string) wgtypes.PeerConfig {
		return wgtypes.PeerConfig{
			PublicKey: a.pub(), Endpoint: udpAddr(endpoint), PersistentKeepaliveInterval: &keepalive,
			AllowedIPs: ipNets(netip.MustParsePrefix("10.77.0.0/24"), netip.MustParsePrefix("fd77::/64")),
		}
	}
	start := time.Now()
	bringUp(t, a, spoke(b, "192.0.2.2:51820"), spoke(c, "192.0.2.6:51820"))
	bringUp(t, b, hub("192.0.2.1:51820"))
	bringUp(t, c, hub("192.0.2.5:51820"))
	t.Logf("three %s devices up in %v", kind, time.Since(start))

	for _, n := range []*node{b, c} {
		ping(t, n.h, a.ip4.Addr())
		ping(t, n.h, a.ip6.Addr())
	}
	ping(t, a.h, b.ip6.Addr())
	ping(t, a.h, c.ip4.Addr())

	wantRoutes := []string{"10.77.0.0/24", "fd77::/64"}
	t.Run("State", func(t *testing.T) {
		checkState(t, a, []peerState{
			{PublicKey: b.pub().String(), Endpoint: "192.0.2.2:51820", AllowedIPs: []string{"10.77.0.2/32", "fd77::2/128"}},
			{PublicKey: c.pub().String(), Endpoint: "192.0.2.6:51820", AllowedIPs: []string{"10.77.0.3/32", "fd77::3/128"}},
		}, wantRoutes)
		checkState(t, b, []peerState{
			{PublicKey: a.pub().String(), Endpoint: "192.0.2.1:51820", AllowedIPs: []string{"10.77.0.0/24", "fd77::/64"}, Keepalive: 25},
		}, wantRoutes)
	})

	t.Run("UpdateKeepsSessions", func(t *testing.T) {
		before := mustDevice(t, a.h)
		err := a.h.ConfigureWireGuard(dev, wgtypes.Config{Peers: []wgtypes.PeerConfig{{
			PublicKey: b.pub(), UpdateOnly: true, ReplaceAllowedIPs: true,
			AllowedIPs: ipNets(b.ip4, b.ip6, netip.MustParsePrefix("10.88.0.0/24")),
		}}})
		if err != nil {
			t.Fatal(err)
		}
		ping(t, b.h, a.ip4.Addr())
		ping(t, c.h, a.ip6.Addr())
		after := mustDevice(t, a.h)
		for i, p := range before.WireGuard.Peers {
			q := after.WireGuard.Peers[i]
			if p.LastHandshakeTime.IsZero() || !q.LastHandshakeTime.Equal(p.LastHandshakeTime) {
				t.Errorf("peer %s: handshake %v, then %v after updating peer B: want one, unchanged", p.PublicKey, p.LastHandshakeTime, q.LastHandshakeTime)
			}
			if q.ReceiveBytes < p.ReceiveBytes || q.TransmitBytes < p.TransmitBytes {
				t.Errorf("peer %s: counters went from rx %d tx %d to rx %d tx %d", p.PublicKey, p.ReceiveBytes, p.TransmitBytes, q.ReceiveBytes, q.TransmitBytes)
			}
		}
		_, peers := wgDump(t, a.h)
		if got := peers[b.pub().String()].AllowedIPs; !slices.Contains(got, "10.88.0.0/24") {
			t.Errorf("wg show: peer B allowed IPs %v, want 10.88.0.0/24 among them", got)
		}
	})

	t.Run("RouteOwnership", func(t *testing.T) {
		h := a.h
		// Routes drago does not own: one beside drago's, two with drago's
		// prefixes at another metric.
		h.run("ip", "route", "add", "10.66.0.0/24", "dev", dev)
		h.run("ip", "route", "add", "10.77.0.0/24", "dev", dev, "metric", "50")
		h.run("ip", "-6", "route", "add", "fd77::/64", "dev", dev, "metric", "50")
		if got := strs(mustDevice(t, h).Routes); !cmp.Equal(wantRoutes, got) {
			t.Errorf("Device().Routes = %v, want only drago's %v", got, wantRoutes)
		}
		if err := h.AddRoute(dev, netip.MustParsePrefix("10.66.0.0/24")); !errors.Is(err, os.ErrExist) {
			t.Errorf("AddRoute over a foreign route = %v, want an error matching os.ErrExist", err)
		}
		for _, p := range []string{"10.66.0.0/24", "10.77.0.0/24", "fd77::/64", "10.77.0.0/24"} {
			h.must(h.DeleteRoute(dev, netip.MustParsePrefix(p)))
		}
		if got := mustDevice(t, h).Routes; len(got) != 0 {
			t.Errorf("Device().Routes = %v after deleting drago's, want none", got)
		}
		want := []string{"10.66.0.0/24 boot", "10.77.0.0/24 boot", "fd77::/64 boot"}
		if diff := cmp.Diff(want, ipRoutes(h, "")); diff != "" {
			t.Errorf("ip route: non-kernel routes (-want +got):\n%s", diff)
		}
	})

	t.Run("DeleteDevice", func(t *testing.T) {
		b.h.must(b.h.DeleteDevice(dev))
		checkGone(t, b.h)
	})

	t.Run("Close", func(t *testing.T) {
		c.h.must(c.h.Close())
		if kind == "kernel" { // kernel interfaces outlive the process
			if !slices.Contains(linkNames(c.h), dev) {
				t.Errorf("kernel interface %s gone after Close", dev)
			}
			return
		}
		checkGone(t, c.h)
	})

	t.Run("ProcessExit", func(t *testing.T) {
		if kind == "kernel" {
			t.Skip("kernel interfaces outlive the process")
		}
		a.h.stop()
		if out, err := execIP("-n", nsA, "link", "show", dev); err == nil {
			t.Errorf("%s still present after the process exited:\n%s", dev, out)
		}
	})
}

// bringUp creates and configures dev on n the way the agent does.
func bringUp(t *testing.T, n *node, peers ...wgtypes.PeerConfig) {
	t.Helper()
	h, port := n.h, 51820
	h.must(h.CreateDevice(dev))
	h.must(h.ConfigureWireGuard(dev, wgtypes.Config{PrivateKey: &n.key, ListenPort: &port, ReplacePeers: true, Peers: peers}))
	h.must(h.SetMTU(dev, 1380))
	h.must(h.AddAddress(dev, n.ip4))
	h.must(h.AddAddress(dev, n.ip6))
	h.must(h.SetUp(dev))
	h.must(h.AddRoute(dev, netip.MustParsePrefix("10.77.0.0/24")))
	h.must(h.AddRoute(dev, netip.MustParsePrefix("fd77::/64")))
}

// checkState compares n's Device with wg(8) and ip(8) and with the wanted
// peers, n's addresses and wantRoutes.
func checkState(t *testing.T, n *node, want []peerState, wantRoutes []string) {
	t.Helper()
	d := mustDevice(t, n.h)
	iface, dumped := wgDump(t, n.h)

	if got := (dumpIface{d.WireGuard.PublicKey.String(), d.WireGuard.ListenPort}); got != iface || iface.ListenPort != 51820 || iface.PublicKey != n.pub().String() {
		t.Errorf("interface: Device %+v, wg show %+v, want key %s port 51820", got, iface, n.pub())
	}
	var fromDevice, fromDump []peerState
	for _, p := range d.WireGuard.Peers {
		fromDevice = append(fromDevice, peerStateOf(p))
		w := dumped[p.PublicKey.String()]
		if p.LastHandshakeTime.IsZero() || p.LastHandshakeTime.Unix() != w.Handshake {
			t.Errorf("peer %s: handshake %v in Device, %d in wg show: want equal, non-zero", p.PublicKey, p.LastHandshakeTime, w.Handshake)
		}
		if p.ReceiveBytes == 0 || p.TransmitBytes == 0 || w.RX == 0 || w.TX == 0 {
			t.Errorf("peer %s: rx/tx %d/%d in Device, %d/%d in wg show: want traffic", p.PublicKey, p.ReceiveBytes, p.TransmitBytes, w.RX, w.TX)
		}
	}
	for _, w := range dumped {
		fromDump = append(fromDump, w.peerState)
	}
	for _, s := range [][]peerState{want, fromDevice, fromDump} {
		slices.SortFunc(s, func(a, b peerState) int { return strings.Compare(a.PublicKey, b.PublicKey) })
	}
	if diff := cmp.Diff(want, fromDevice); diff != "" {
		t.Errorf("Device peers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, fromDump); diff != "" {
		t.Errorf("wg show peers (-want +got):\n%s", diff)
	}

	wantAddrs := []string{n.ip4.String(), n.ip6.String()}
	if diff := cmp.Diff(wantAddrs, strs(d.Addresses)); diff != "" {
		t.Errorf("Device addresses (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantAddrs, ipAddrs(n.h)); diff != "" {
		t.Errorf("ip addr (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantRoutes, strs(d.Routes)); diff != "" {
		t.Errorf("Device routes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantRoutes, ipRoutes(n.h, strconv.Itoa(platform.RouteProtocol))); diff != "" {
		t.Errorf("ip route proto %d (-want +got):\n%s", platform.RouteProtocol, diff)
	}
	mtu, up := ipLink(n.h)
	if d.MTU != 1380 || !d.Up || mtu != 1380 || !up {
		t.Errorf("Device: MTU %d, up %v; ip link: MTU %d, up %v; want 1380, up", d.MTU, d.Up, mtu, up)
	}
}

// checkGone checks that dev and its UAPI socket are gone from h.
func checkGone(t *testing.T, h *host) {
	t.Helper()
	if _, err := h.Device(dev); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Device = %v, want an error matching os.ErrNotExist", err)
	}
	if names := linkNames(h); slices.Contains(names, dev) {
		t.Errorf("ip link still lists %s: %v", dev, names)
	}
	if out := h.run("ls", "-A", "/var/run/wireguard"); out != "" {
		t.Errorf("/var/run/wireguard still holds: %s", out)
	}
}

// peerState is what wg(8) and Device must agree on for a peer.
type peerState struct {
	PublicKey  string
	Endpoint   string
	AllowedIPs []string // sorted
	Keepalive  int      // seconds
}

func peerStateOf(p wgtypes.Peer) peerState {
	s := peerState{PublicKey: p.PublicKey.String(), Keepalive: int(p.PersistentKeepaliveInterval.Seconds())}
	if p.Endpoint != nil {
		s.Endpoint = p.Endpoint.String()
	}
	for _, n := range p.AllowedIPs {
		s.AllowedIPs = append(s.AllowedIPs, n.String())
	}
	slices.Sort(s.AllowedIPs)
	return s
}

type dumpIface struct {
	PublicKey  string
	ListenPort int
}

type dumpPeer struct {
	peerState
	Handshake int64 // Unix seconds, 0 for none
	RX, TX    int64
}

// wgDump parses `wg show dev dump` run on h.
func wgDump(t *testing.T, h *host) (dumpIface, map[string]dumpPeer) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(h.run("wg", "show", dev, "dump")), "\n")
	f := strings.Split(lines[0], "\t")
	if len(f) != 4 {
		t.Fatalf("wg show dump: interface line %q", lines[0])
	}
	port, _ := strconv.Atoi(f[2])
	iface := dumpIface{PublicKey: f[1], ListenPort: port}
	peers := make(map[string]dumpPeer)
	for _, l := range lines[1:] {
		f := strings.Split(l, "\t")
		if len(f) != 8 {
			t.Fatalf("wg show dump: peer line %q", l)
		}
		p := dumpPeer{peerState: peerState{PublicKey: f[0], Endpoint: f[2]}}
		if f[3] != "(none)" {
			p.AllowedIPs = strings.Split(f[3], ",")
			slices.Sort(p.AllowedIPs)
		}
		p.Handshake, _ = strconv.ParseInt(f[4], 10, 64)
		p.RX, _ = strconv.ParseInt(f[5], 10, 64)
		p.TX, _ = strconv.ParseInt(f[6], 10, 64)
		if f[7] != "off" {
			p.Keepalive, _ = strconv.Atoi(f[7])
		}
		peers[p.PublicKey] = p
	}
	return iface, peers
}

// ipAddrs lists dev's addresses as ip(8) shows them, sorted as Device sorts.
func ipAddrs(h *host) []string {
	var links []struct {
		AddrInfo []struct {
			Local     string `json:"local"`
			Prefixlen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	decode(h.t, h.run("ip", "-j", "addr", "show", "dev", dev), &links)
	var ps []netip.Prefix
	for _, l := range links {
		for _, a := range l.AddrInfo {
			ps = append(ps, netip.PrefixFrom(netip.MustParseAddr(a.Local), a.Prefixlen))
		}
	}
	slices.SortFunc(ps, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return strs(ps)
}

// ipRoutes lists the routes through dev in the main table as ip(8) shows
// them: with proto, only those of that protocol, as prefixes; without, all
// but the kernel's, as "prefix protocol".
func ipRoutes(h *host, proto string) []string {
	var out []string
	for _, family := range []string{"-4", "-6"} {
		argv := []string{"ip", "-j", family, "route", "show", "dev", dev}
		if proto != "" {
			argv = append(argv, "proto", proto)
		}
		var routes []struct {
			Dst      string `json:"dst"`
			Protocol string `json:"protocol"`
		}
		decode(h.t, h.run(argv...), &routes)
		for _, r := range routes {
			dst := r.Dst
			switch {
			case dst == "default" && family == "-4":
				dst = "0.0.0.0/0"
			case dst == "default":
				dst = "::/0"
			case !strings.Contains(dst, "/"):
				dst = netip.PrefixFrom(netip.MustParseAddr(dst), map[string]int{"-4": 32, "-6": 128}[family]).String()
			}
			switch {
			case proto != "":
				out = append(out, dst)
			case r.Protocol == "": // ip(8) leaves out the default, boot
				out = append(out, dst+" boot")
			case r.Protocol != "kernel":
				out = append(out, dst+" "+r.Protocol)
			}
		}
	}
	return out
}

// ipLink reports dev's MTU and whether it is administratively up.
func ipLink(h *host) (mtu int, up bool) {
	var links []struct {
		MTU   int      `json:"mtu"`
		Flags []string `json:"flags"`
	}
	decode(h.t, h.run("ip", "-j", "link", "show", "dev", dev), &links)
	if len(links) != 1 {
		h.t.Fatalf("ip link show %s: %d links", dev, len(links))
	}
	return links[0].MTU, slices.Contains(links[0].Flags, "UP")
}

// linkNames lists h's links.
func linkNames(h *host) []string {
	var links []struct {
		Name string `json:"ifname"`
	}
	decode(h.t, h.run("ip", "-j", "link", "show"), &links)
	var names []string
	for _, l := range links {
		names = append(names, l.Name)
	}
	return names
}

func decode(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
}

// ping pings addr from h until it answers, at most ten times.
func ping(t *testing.T, h *host, addr netip.Addr) {
	t.Helper()
	var out string
	var err error
	for range 10 {
		if out, err = h.try("ping", "-c", "1", "-W", "1", addr.String()); err == nil {
			return
		}
	}
	t.Fatalf("ping %s from %s: %v\n%s", addr, h.ns, err, out)
}

func mustDevice(t *testing.T, h *host) *platform.Device {
	t.Helper()
	return mustDeviceNamed(t, h, dev)
}

func execIP(args ...string) (string, error) {
	out, err := exec.Command("ip", args...).CombinedOutput()
	return string(out), err
}

func udpAddr(s string) *net.UDPAddr {
	return net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s))
}

func ipNets(ps ...netip.Prefix) []net.IPNet {
	var ns []net.IPNet
	for _, p := range ps {
		ns = append(ns, platform.IPNet(p))
	}
	return ns
}

func strs(ps []netip.Prefix) []string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return s
}

// TestUserspaceSockets checks the UAPI socket edge cases: a stale socket of
// the same name is replaced, a live one held by someone else is left alone
// while the device still works.
func TestUserspaceSockets(t *testing.T) {
	requirePrivileged(t)
	t.Parallel()
	h := startHost(t, newNetns(t), "userspace")

	h.must(h.do(hostRequest{Method: "staleSocket", Name: socketPath("drago1")}))
	h.must(h.CreateDevice("drago1"))
	if out := h.run("wg", "show", "drago1", "public-key"); strings.TrimSpace(out) != "(none)" {
		t.Errorf("wg show drago1 public-key = %q, want (none)", out)
	}

	h.must(h.do(hostRequest{Method: "busySocket", Name: socketPath("drago2")}))
	h.must(h.CreateDevice("drago2"))
	port := 51900
	h.must(h.ConfigureWireGuard("drago2", wgtypes.Config{ListenPort: &port}))
	if d := mustDeviceNamed(t, h, "drago2"); d.WireGuard.ListenPort != port {
		t.Errorf("drago2 listen port %d, want %d", d.WireGuard.ListenPort, port)
	}
	if !strings.Contains(h.out.String(), "wg(8) will not see this device") {
		t.Errorf("no warning about the busy socket in the log")
	}

	h.must(h.DeleteDevice("drago1"))
	h.must(h.DeleteDevice("drago2"))
	if out := h.run("ls", "-A", "/var/run/wireguard"); out != "drago2.sock\n" {
		t.Errorf("/var/run/wireguard holds %q, want only the busy drago2.sock", out)
	}
}

// TestForeignLink checks that a backend neither reads nor deletes an
// interface it does not manage.
func TestForeignLink(t *testing.T) {
	requirePrivileged(t)
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ns := newNetns(t)
			requireKind(t, kind, ns)
			ipCmd(t, "-n", ns, "link", "add", "other0", "type", "veth", "peer", "name", "other1")
			h := startHost(t, ns, kind)
			if _, err := h.Device("other0"); err == nil || errors.Is(err, os.ErrNotExist) {
				t.Errorf("Device(other0) = %v, want an error other than os.ErrNotExist", err)
			}
			if err := h.CreateDevice("other0"); !errors.Is(err, os.ErrExist) {
				t.Errorf("CreateDevice(other0) = %v, want an error matching os.ErrExist", err)
			}
			if err := h.DeleteDevice("other0"); err == nil {
				t.Errorf("DeleteDevice(other0) succeeded, want an error")
			}
			if err := h.ConfigureWireGuard("other0", wgtypes.Config{}); err == nil {
				t.Errorf("ConfigureWireGuard(other0) succeeded, want an error")
			}
			if !slices.Contains(linkNames(h), "other0") {
				t.Errorf("other0 is gone")
			}
		})
	}
}

func mustDeviceNamed(t *testing.T, h *host, name string) *platform.Device {
	t.Helper()
	d, err := h.Device(name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
