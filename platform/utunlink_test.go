package platform

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The samples in this file are hand-written after macOS's ifconfig(8) and
// netstat(1) output formats (Ventura to Sequoia, and an older netstat with
// Refs and Use columns); no Mac was at hand to capture real ones.

const sampleIfconfigUp = `utun4: flags=8051<UP,POINTOPOINT,RUNNING,MULTICAST> mtu 1380
	inet 10.10.0.1 --> 10.10.0.1 netmask 0xffffff00
	inet 10.10.5.9 --> 10.10.5.9 netmask 0xffffffff
	inet6 fe80::1c2f:3aff:fe4b:8d2e%utun4 prefixlen 64 scopeid 0x11
	inet6 fd10::1 prefixlen 64
	inet6 fd10::2 prefixlen 128 tentative
	nd6 options=201<PERFORMNUD,DAD>
`

const sampleIfconfigDown = `utun7: flags=8050<POINTOPOINT,RUNNING,MULTICAST> mtu 1420
	options=6460<TSO4,TSO6,CHANNEL_IO,PARTIAL_CSUM,ZEROINVERT_CSUM>
`

const sampleIfconfigEther = `en0: flags=8863<UP,BROADCAST,SMART,RUNNING,SIMPLEX,MULTICAST> mtu 1500
	options=6460<TSO4,TSO6,CHANNEL_IO,PARTIAL_CSUM,ZEROINVERT_CSUM>
	ether 3c:22:fb:12:34:56
	inet6 fe80::14c9:1f0b:8a3e:2c71%en0 prefixlen 64 secured scopeid 0xe
	inet 192.168.1.23 netmask 0xffffff00 broadcast 192.168.1.255
	inet6 2001:db8:1:2:1c8b:77ff:fe00:1 prefixlen 64 autoconf secured
	nd6 options=201<PERFORMNUD,DAD>
	media: autoselect
	status: active
lo0: flags=8049<UP,LOOPBACK,RUNNING,MULTICAST> mtu 16384
	inet 127.0.0.1 netmask 0xff000000
`

func TestParseIfconfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		out  string
		want ifconfigState
	}{
		{"Up", sampleIfconfigUp, ifconfigState{MTU: 1380, Up: true, Addresses: prefixes(
			"10.10.0.1/24", "10.10.5.9/32", "fe80::1c2f:3aff:fe4b:8d2e/64", "fd10::1/64", "fd10::2/128")}},
		{"Down", sampleIfconfigDown, ifconfigState{MTU: 1420}},
		{"EtherStopsAtNextInterface", sampleIfconfigEther, ifconfigState{MTU: 1500, Up: true, Addresses: prefixes(
			"fe80::14c9:1f0b:8a3e:2c71/64", "192.168.1.23/24", "2001:db8:1:2:1c8b:77ff:fe00:1/64")}},
		{"FlagsWithoutNames", "utun9: flags=8051 mtu 1280\n", ifconfigState{MTU: 1280, Up: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseIfconfig([]byte(tt.out))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("parseIfconfig (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []string{
		"",
		"ifconfig: interface utun9 does not exist\n",
		"utun4: flags=8051<UP> mtu x\n",
		"utun4: flags=8051<UP> mtu 1380\n\tinet 10.0.0.1 --> 10.0.0.1 netmask 0xff00ff00\n",
		"utun4: flags=8051<UP> mtu 1380\n\tinet6 fd10::1 prefixlen 129\n",
	} {
		if st, err := parseIfconfig([]byte(bad)); err == nil {
			t.Errorf("parseIfconfig(%q) = %+v, want an error", bad, st)
		}
	}
}

const sampleNetstat = `Routing tables

Internet:
Destination        Gateway            Flags               Netif Expire
default            192.168.1.1        UGScg                 en0       
10.10.0.1          10.10.0.1          UH                  utun4       
10.10/24           utun4              USc                 utun4       
10.20/16           utun4              USc                 utun4       
10.20.0.9/32       utun4              USc                 utun4       
10.30.0.8          utun4              UHS                 utun4       
127                127.0.0.1          UCS                   lo0       
127.0.0.1          127.0.0.1          UH                    lo0       
169.254            link#14            UCS                   en0      !
172.16.32/20       utun4              USc                 utun4       
192.168.1          link#14            UCS                   en0      !
192.168.1.1/32     link#14            UCS                   en0      !
192.168.1.1        3c:22:fb:aa:bb:cc  UHLWIir               en0   1177
192.168.1.23/32    link#14            UCS                   en0      !
224.0.0/4          link#14            UmCS                  en0      !
224.0.0.251        1:0:5e:0:0:fb      UHmLWI                en0       
255.255.255.255/32 link#14            UCS                   en0      !

Internet6:
Destination                             Gateway                                 Flags               Netif Expire
default                                 fe80::%utun0                            UGcIg               utun0       
::1                                     ::1                                     UHL                   lo0       
2001:db8:1:2::/64                       link#14                                 UC                    en0       
fd10::/64                               fe80::1c2f:3aff:fe4b:8d2e%utun4         Uc                  utun4       
fd10::2                                 link#20                                 UHL                   lo0       
fd20::/48                               utun4                                   USc                 utun4       
fe80::%lo0/64                           fe80::1%lo0                             UcI                   lo0       
fe80::%utun4/64                         fe80::1c2f:3aff:fe4b:8d2e%utun4         UcI                 utun4       
ff00::/8                                ::1                                     UmCI                  lo0       
`

const sampleNetstatOld = `Routing tables

Internet:
Destination        Gateway            Flags        Refs      Use   Netif Expire
default            10.0.1.1           UGSc           12        0     en0
10.0.1/24          link#4             UCS             2        0     en0
10.99/16           utun2              USc             0        0   utun2

Internet6:
Destination                             Gateway                         Flags         Netif Expire
fd99::/64                               utun2                           USc           utun2
`

func TestParseNetstat(t *testing.T) {
	type row struct{ Dst, Netif string }
	rows := func(rs []netstatRoute) []row {
		var out []row
		for _, r := range rs {
			out = append(out, row{r.Dst.String(), r.Netif})
		}
		return out
	}
	for _, tt := range []struct {
		name string
		out  string
		want []row
	}{
		{"Current", sampleNetstat, []row{
			{"0.0.0.0/0", "en0"},
			{"10.10.0.1/32", "utun4"},
			{"10.10.0.0/24", "utun4"},
			{"10.20.0.0/16", "utun4"},
			{"10.20.0.9/32", "utun4"},
			{"10.30.0.8/32", "utun4"},
			{"127.0.0.0/8", "lo0"},
			{"127.0.0.1/32", "lo0"},
			{"169.254.0.0/16", "en0"},
			{"172.16.32.0/20", "utun4"},
			{"192.168.1.0/24", "en0"},
			{"192.168.1.1/32", "en0"},
			{"192.168.1.1/32", "en0"},
			{"192.168.1.23/32", "en0"},
			{"224.0.0.0/4", "en0"},
			{"224.0.0.251/32", "en0"},
			{"255.255.255.255/32", "en0"},
			{"::/0", "utun0"},
			{"::1/128", "lo0"},
			{"2001:db8:1:2::/64", "en0"},
			{"fd10::/64", "utun4"},
			{"fd10::2/128", "lo0"},
			{"fd20::/48", "utun4"},
			{"fe80::/64", "lo0"},
			{"fe80::/64", "utun4"},
			{"ff00::/8", "lo0"},
		}},
		{"RefsAndUseColumns", sampleNetstatOld, []row{
			{"0.0.0.0/0", "en0"},
			{"10.0.1.0/24", "en0"},
			{"10.99.0.0/16", "utun2"},
			{"fd99::/64", "utun2"},
		}},
		{"UnreadableRowsSkipped", "Internet:\nDestination Gateway Flags Netif\n10.1/x utun1 US utun1\nshort\n10.2/16 utun1 US utun1\n",
			[]row{{"10.2.0.0/16", "utun1"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseNetstat([]byte(tt.out))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, rows(got)); diff != "" {
				t.Errorf("parseNetstat (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := parseNetstat([]byte("Internet:\nDestination Gateway Flags\n")); err == nil {
		t.Errorf("parseNetstat without a Netif column succeeded, want an error")
	}
}

// fakeMac answers ifconfig, route and netstat like macOS, for one host whose
// interfaces and routing table it keeps. It renders netstat's destinations
// in netstat's abbreviated forms. As a model of the kernel, an IPv4 address
// gets a host route to itself (its point-to-point destination), the first
// IPv6 address a link-local address, and an IPv6 address shorter than /128
// a prefix route; the backend must cope with routes it did not add.
type fakeMac struct {
	ifaces map[string]*fakeIf
	routes []netstatRoute
	calls  []string
}

type fakeIf struct {
	mtu   int
	up    bool
	addrs []netip.Prefix
}

func newFakeMac() *fakeMac {
	return &fakeMac{
		ifaces: map[string]*fakeIf{
			"en0":   {mtu: 1500, up: true, addrs: prefixes("192.168.1.23/24")},
			"utun7": {mtu: 1420},
		},
		routes: []netstatRoute{
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), Flags: "UGScg", Netif: "en0"},
			{Dst: netip.MustParsePrefix("192.168.1.0/24"), Flags: "UCS", Netif: "en0"},
			{Dst: netip.MustParsePrefix("10.30.0.0/16"), Flags: "UGSc", Netif: "en0"},
		},
	}
}

func (m *fakeMac) run(name string, args ...string) ([]byte, error) {
	m.calls = append(m.calls, strings.Join(append([]string{name}, args...), " "))
	fail := func(format string, a ...any) ([]byte, error) {
		out := fmt.Sprintf(format, a...)
		return []byte(out), fmt.Errorf("%s: exit status 1: %s", name, out)
	}
	switch name {
	case netstatPath:
		if !slices.Equal(args, []string{"-rnW"}) {
			return fail("netstat: unexpected arguments %q", args)
		}
		return m.netstat(), nil
	case ifconfigPath:
		if len(args) == 0 {
			return fail("usage: ifconfig")
		}
		ifc, ok := m.ifaces[args[0]]
		if !ok {
			return fail("ifconfig: interface %s does not exist", args[0])
		}
		return m.ifconfig(args[0], ifc, args[1:], fail)
	case routePath:
		if len(args) != 6 || args[0] != "-n" || args[4] != "-interface" {
			return fail("route: unexpected arguments %q", args)
		}
		p, err := netip.ParsePrefix(args[3])
		if err != nil || (args[2] == "-inet") != p.Addr().Is4() {
			return fail("route: bad address: %s", args[3])
		}
		return m.route(args[1], p, args[5], fail)
	}
	return fail("%s: command not found", name)
}

func (m *fakeMac) ifconfig(ifname string, ifc *fakeIf, args []string, fail func(string, ...any) ([]byte, error)) ([]byte, error) {
	switch {
	case len(args) == 0:
		return m.renderIfconfig(ifname, ifc), nil
	case len(args) == 2 && args[0] == "mtu":
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 576 || n > 16384 {
			return fail("ifconfig: ioctl (set mtu): Invalid argument")
		}
		ifc.mtu = n
		return nil, nil
	case len(args) == 1 && args[0] == "up":
		ifc.up = true
		return nil, nil
	case len(args) == 4 && args[0] == "inet" && args[3] == "alias":
		p := netip.MustParsePrefix(args[1])
		if args[2] != p.Addr().String() {
			return fail("ifconfig: want the address as its own destination")
		}
		ifc.addrs = append(ifc.addrs, p)
		m.routes = append(m.routes, netstatRoute{Dst: netip.PrefixFrom(p.Addr(), 32), Flags: "UH", Netif: ifname})
		return nil, nil
	case len(args) == 3 && args[0] == "inet6" && args[2] == "alias":
		p := netip.MustParsePrefix(args[1])
		if !slices.ContainsFunc(ifc.addrs, func(a netip.Prefix) bool { return a.Addr().Is6() }) {
			ifc.addrs = append(ifc.addrs, netip.MustParsePrefix("fe80::1c2f:3aff:fe4b:8d2e/64"))
			m.routes = append(m.routes, netstatRoute{Dst: netip.MustParsePrefix("fe80::/64"), Flags: "UcI", Netif: ifname})
		}
		ifc.addrs = append(ifc.addrs, p)
		if p.Bits() < 128 {
			m.routes = append(m.routes, netstatRoute{Dst: p.Masked(), Flags: "Uc", Netif: ifname})
		}
		return nil, nil
	case len(args) == 3 && (args[0] == "inet" || args[0] == "inet6") && args[2] == "-alias":
		a := netip.MustParseAddr(args[1])
		i := slices.IndexFunc(ifc.addrs, func(p netip.Prefix) bool { return p.Addr() == a })
		if i < 0 {
			return fail("ifconfig: ioctl (SIOCDIFADDR): Can't assign requested address")
		}
		p := ifc.addrs[i]
		ifc.addrs = slices.Delete(ifc.addrs, i, i+1)
		m.routes = slices.DeleteFunc(m.routes, func(r netstatRoute) bool {
			return r.Netif == ifname && !strings.Contains(r.Flags, "S") &&
				(r.Dst == netip.PrefixFrom(a, a.BitLen()) || a.Is6() && r.Dst == p.Masked())
		})
		return nil, nil
	}
	return fail("ifconfig: unexpected arguments %q", args)
}

func (m *fakeMac) route(verb string, p netip.Prefix, ifname string, fail func(string, ...any) ([]byte, error)) ([]byte, error) {
	if _, ok := m.ifaces[ifname]; !ok {
		return fail("route: bad interface name %s", ifname)
	}
	switch verb {
	case "add":
		if slices.ContainsFunc(m.routes, func(r netstatRoute) bool { return r.Dst == p }) {
			return fail("route: writing to routing socket: File exists\nadd net %s: gateway %s: File exists", p, ifname)
		}
		flags := "USc"
		if p.Bits() == p.Addr().BitLen() {
			flags = "UHS"
		}
		m.routes = append(m.routes, netstatRoute{Dst: p, Flags: flags, Netif: ifname})
		return []byte(fmt.Sprintf("add net %s: gateway %s\n", p, ifname)), nil
	case "delete":
		i := slices.IndexFunc(m.routes, func(r netstatRoute) bool { return r.Dst == p && r.Netif == ifname })
		if i < 0 {
			return fail("route: writing to routing socket: not in table\ndelete net %s: gateway %s: not in table", p, ifname)
		}
		m.routes = slices.Delete(m.routes, i, i+1)
		return []byte(fmt.Sprintf("delete net %s: gateway %s\n", p, ifname)), nil
	}
	return fail("route: unknown command %s", verb)
}

func (m *fakeMac) renderIfconfig(ifname string, ifc *fakeIf) []byte {
	var b strings.Builder
	flags, names := 0x8050, "POINTOPOINT,RUNNING,MULTICAST"
	if ifc.up {
		flags, names = 0x8051, "UP,"+names
	}
	fmt.Fprintf(&b, "%s: flags=%x<%s> mtu %d\n", ifname, flags, names, ifc.mtu)
	for _, p := range ifc.addrs {
		if p.Addr().Is4() {
			mask := ^uint32(0) << (32 - p.Bits())
			fmt.Fprintf(&b, "\tinet %s --> %s netmask 0x%08x\n", p.Addr(), p.Addr(), mask)
			continue
		}
		zone := ""
		if p.Addr().IsLinkLocalUnicast() {
			zone = "%" + ifname
		}
		fmt.Fprintf(&b, "\tinet6 %s%s prefixlen %d\n", p.Addr(), zone, p.Bits())
	}
	b.WriteString("\tnd6 options=201<PERFORMNUD,DAD>\n")
	return []byte(b.String())
}

func (m *fakeMac) netstat() []byte {
	var b strings.Builder
	b.WriteString("Routing tables\n\nInternet:\nDestination        Gateway            Flags               Netif Expire\n")
	for _, r := range m.routes {
		if r.Dst.Addr().Is4() {
			fmt.Fprintf(&b, "%-18s %-18s %-19s %5s\n", netstatName(r), "link#20", r.Flags, r.Netif)
		}
	}
	b.WriteString("\nInternet6:\nDestination                             Gateway                                 Flags               Netif Expire\n")
	for _, r := range m.routes {
		if r.Dst.Addr().Is6() {
			fmt.Fprintf(&b, "%-39s %-39s %-19s %5s\n", netstatName(r), "link#20", r.Flags, r.Netif)
		}
	}
	return []byte(b.String())
}

// netstatName prints a destination as macOS's netstat does.
func netstatName(r netstatRoute) string {
	p := r.Dst
	switch {
	case p.Bits() == 0:
		return "default"
	case strings.Contains(r.Flags, "H"):
		return p.Addr().String()
	case p.Addr().Is6():
		if p.Addr().IsLinkLocalUnicast() {
			return fmt.Sprintf("%s%%%s/%d", p.Addr(), r.Netif, p.Bits())
		}
		return p.String()
	}
	a := p.Addr().As4()
	n := 4
	for n > 1 && a[n-1] == 0 {
		n--
	}
	var parts []string
	for _, x := range a[:n] {
		parts = append(parts, strconv.Itoa(int(x)))
	}
	s := strings.Join(parts, ".")
	if p.Bits() != classfulBits(p.Addr()) {
		s += "/" + strconv.Itoa(p.Bits())
	}
	return s
}

// utunRoutes returns the fake's routes through utun7, as strings, sorted.
func (m *fakeMac) utunRoutes() []string {
	var out []string
	for _, r := range m.routes {
		if r.Netif == "utun7" {
			out = append(out, r.Dst.String())
		}
	}
	slices.Sort(out)
	return out
}

// TestUTunLink runs the steps of platformtest.Conformance that concern the
// link against a fake macOS.
func TestUTunLink(t *testing.T) {
	mac := newFakeMac()
	l := newUTunLink(mac.run, "utun7", slog.New(slog.DiscardHandler))
	state := func(t *testing.T) *Device {
		t.Helper()
		d, err := l.state()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	t.Run("Create", func(t *testing.T) {
		if diff := cmp.Diff(&Device{MTU: 1420}, state(t)); diff != "" {
			t.Errorf("state (-want +got):\n%s", diff)
		}
		if err := l.addRoute(netip.MustParsePrefix("10.20.0.0/16")); !errors.Is(err, errLinkDown) {
			t.Errorf("addRoute through a down link = %v, want %v", err, errLinkDown)
		}
	})

	t.Run("MTUAndUp", func(t *testing.T) {
		if err := l.setMTU(10); err == nil {
			t.Errorf("setMTU(10) succeeded, want an error")
		}
		for range 2 {
			if err := l.setMTU(1380); err != nil {
				t.Fatal(err)
			}
			if err := l.setUp(); err != nil {
				t.Fatal(err)
			}
		}
		if d := state(t); d.MTU != 1380 || !d.Up {
			t.Errorf("after setMTU(1380) and setUp: MTU %d, Up %v", d.MTU, d.Up)
		}
	})

	t.Run("Addresses", func(t *testing.T) {
		for _, step := range []struct {
			name   string
			add    bool
			prefix string
			want   []string
			routes []string // the fake's routes through utun7 afterwards
		}{
			{"AddIPv4", true, "10.10.0.1/24", []string{"10.10.0.1/24"},
				[]string{"10.10.0.0/24", "10.10.0.1/32"}},
			{"AddIPv4Again", true, "10.10.0.1/24", []string{"10.10.0.1/24"},
				[]string{"10.10.0.0/24", "10.10.0.1/32"}},
			{"AddIPv6", true, "fd10::1/64", []string{"10.10.0.1/24", "fd10::1/64"},
				[]string{"10.10.0.0/24", "10.10.0.1/32", "fd10::/64", "fe80::/64"}},
			{"AddIPv6Again", true, "fd10::1/64", []string{"10.10.0.1/24", "fd10::1/64"},
				[]string{"10.10.0.0/24", "10.10.0.1/32", "fd10::/64", "fe80::/64"}},
			{"AddSecondIPv6", true, "fd10::2/128", []string{"10.10.0.1/24", "fd10::1/64", "fd10::2/128"},
				[]string{"10.10.0.0/24", "10.10.0.1/32", "fd10::/64", "fe80::/64"}},
			{"DeleteIPv6", false, "fd10::1/64", []string{"10.10.0.1/24", "fd10::2/128"},
				[]string{"10.10.0.0/24", "10.10.0.1/32", "fe80::/64"}},
			{"DeleteIPv6Again", false, "fd10::1/64", []string{"10.10.0.1/24", "fd10::2/128"},
				[]string{"10.10.0.0/24", "10.10.0.1/32", "fe80::/64"}},
			{"AddSecondIPv4InSubnet", true, "10.10.0.2/24", []string{"10.10.0.1/24", "10.10.0.2/24", "fd10::2/128"},
				[]string{"10.10.0.0/24", "10.10.0.1/32", "10.10.0.2/32", "fe80::/64"}},
			{"DeleteFirstIPv4KeepsSubnetRoute", false, "10.10.0.1/24", []string{"10.10.0.2/24", "fd10::2/128"},
				[]string{"10.10.0.0/24", "10.10.0.2/32", "fe80::/64"}},
		} {
			t.Run(step.name, func(t *testing.T) {
				p := netip.MustParsePrefix(step.prefix)
				call := l.deleteAddress
				if step.add {
					call = l.addAddress
				}
				if err := call(p); err != nil {
					t.Fatal(err)
				}
				d := state(t)
				if diff := cmp.Diff(step.want, prefixStrings(d.Addresses)); diff != "" {
					t.Errorf("addresses (-want +got):\n%s", diff)
				}
				if len(d.Routes) != 0 {
					t.Errorf("routes %v: subnet routes are not drago's routes", d.Routes)
				}
				if diff := cmp.Diff(step.routes, mac.utunRoutes()); diff != "" {
					t.Errorf("routes through utun7 (-want +got):\n%s", diff)
				}
			})
		}
		if err := l.addAddress(netip.Prefix{}); err == nil {
			t.Errorf("addAddress(invalid prefix) succeeded, want an error")
		}
		if err := l.addAddress(netip.MustParsePrefix("fd10::2/64")); !errors.Is(err, os.ErrExist) {
			t.Errorf("addAddress(fd10::2/64) with fd10::2/128 present = %v, want an error matching os.ErrExist", err)
		}
	})

	t.Run("Routes", func(t *testing.T) {
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
				call := l.deleteRoute
				if step.add {
					call = l.addRoute
				}
				if err := call(p); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(step.want, prefixStrings(state(t).Routes)); diff != "" {
					t.Errorf("routes (-want +got):\n%s", diff)
				}
			})
		}
		for _, bad := range []netip.Prefix{{}, netip.MustParsePrefix("10.20.0.1/16")} {
			if err := l.addRoute(bad); err == nil {
				t.Errorf("addRoute(%s) succeeded, want an error", bad)
			}
			if err := l.deleteRoute(bad); err == nil {
				t.Errorf("deleteRoute(%s) succeeded, want an error", bad)
			}
		}
	})

	t.Run("ForeignRoutes", func(t *testing.T) {
		// Through another interface, and through utun7 but added by hand.
		if _, err := mac.run(routePath, "-n", "add", "-inet", "10.40.0.0/16", "-interface", "utun7"); err != nil {
			t.Fatal(err)
		}
		for _, p := range prefixes("10.30.0.0/16", "10.40.0.0/16", "10.10.0.0/24") {
			if err := l.addRoute(p); !errors.Is(err, os.ErrExist) {
				t.Errorf("addRoute(%s) over a route drago did not add = %v, want an error matching os.ErrExist", p, err)
			}
			if err := l.deleteRoute(p); err != nil {
				t.Errorf("deleteRoute(%s): %v", p, err)
			}
		}
		if diff := cmp.Diff([]string{"10.10.0.0/24", "10.10.0.2/32", "10.20.0.9/32", "10.40.0.0/16", "fe80::/64"}, mac.utunRoutes()); diff != "" {
			t.Errorf("routes through utun7 (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"10.20.0.9/32"}, prefixStrings(state(t).Routes)); diff != "" {
			t.Errorf("drago's routes (-want +got):\n%s", diff)
		}
	})

	t.Run("RouteRemovedBehindDragosBack", func(t *testing.T) {
		if _, err := mac.run(routePath, "-n", "delete", "-inet", "10.20.0.9/32", "-interface", "utun7"); err != nil {
			t.Fatal(err)
		}
		if routes := state(t).Routes; len(routes) != 0 {
			t.Errorf("routes %v, want none", routes)
		}
		if err := l.addRoute(netip.MustParsePrefix("10.20.0.9/32")); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"10.20.0.9/32"}, prefixStrings(state(t).Routes)); diff != "" {
			t.Errorf("routes (-want +got):\n%s", diff)
		}
	})

	t.Run("SubnetRoutedElsewhere", func(t *testing.T) {
		before := mac.utunRoutes()
		p := netip.MustParsePrefix("192.168.1.77/24") // en0 has 192.168.1.0/24
		if err := l.addAddress(p); err != nil {
			t.Fatal(err)
		}
		want := append(slices.Clone(before), "192.168.1.77/32") // its point-to-point route
		slices.Sort(want)
		if diff := cmp.Diff(want, mac.utunRoutes()); diff != "" {
			t.Errorf("routes through utun7 (-want +got):\n%s", diff)
		}
		if err := l.deleteAddress(p); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before, mac.utunRoutes()); diff != "" {
			t.Errorf("routes through utun7 (-want +got):\n%s", diff)
		}
		if !slices.ContainsFunc(mac.routes, func(r netstatRoute) bool { return r.Dst.String() == "192.168.1.0/24" && r.Netif == "en0" }) {
			t.Errorf("en0's route to 192.168.1.0/24 is gone")
		}
	})

	t.Run("Commands", func(t *testing.T) {
		mac.calls = nil
		for _, call := range []func() error{
			func() error { return l.addAddress(netip.MustParsePrefix("10.50.0.1/24")) },
			func() error { return l.addAddress(netip.MustParsePrefix("fd50::1/64")) },
			func() error { return l.addRoute(netip.MustParsePrefix("fd60::/48")) },
			func() error { return l.deleteRoute(netip.MustParsePrefix("fd60::/48")) },
			func() error { return l.deleteAddress(netip.MustParsePrefix("10.50.0.1/24")) },
			func() error { return l.deleteAddress(netip.MustParsePrefix("fd50::1/64")) },
		} {
			if err := call(); err != nil {
				t.Fatal(err)
			}
		}
		var changes []string // the calls that change something
		for _, c := range mac.calls {
			if strings.Contains(c, "alias") || strings.HasPrefix(c, routePath) {
				changes = append(changes, c)
			}
		}
		want := []string{
			"/sbin/ifconfig utun7 inet 10.50.0.1/24 10.50.0.1 alias",
			"/sbin/route -n add -inet 10.50.0.0/24 -interface utun7",
			"/sbin/ifconfig utun7 inet6 fd50::1/64 alias",
			"/sbin/route -n add -inet6 fd60::/48 -interface utun7",
			"/sbin/route -n delete -inet6 fd60::/48 -interface utun7",
			"/sbin/ifconfig utun7 inet 10.50.0.1 -alias",
			"/sbin/route -n delete -inet 10.50.0.0/24 -interface utun7",
			"/sbin/ifconfig utun7 inet6 fd50::1 -alias",
		}
		if diff := cmp.Diff(want, changes); diff != "" {
			t.Errorf("commands (-want +got):\n%s", diff)
		}
	})
}
