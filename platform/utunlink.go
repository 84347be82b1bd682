package platform

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// This file is the link half of the macOS backend: MTU, state, addresses
// and routes of a utun interface, through macOS's ifconfig(8), route(8) and
// netstat(1). It has no build tag so that it is unit-tested on every OS,
// against hand-written samples of those tools' output (the project has no
// Mac to capture real ones).

// Paths of the macOS tools.
const (
	ifconfigPath = "/sbin/ifconfig"
	routePath    = "/sbin/route"
	netstatPath  = "/usr/sbin/netstat"
)

// runFunc runs a tool and returns its combined output; err is non-nil when
// it fails, and then says which command failed and what it printed.
type runFunc func(name string, args ...string) ([]byte, error)

// utunLink configures one utun interface. The routes drago adds are
// tracked in memory: the interface, and every route through it, lives only
// as long as this process, so the record cannot outlive them, and each read
// checks it against the routing table.
type utunLink struct {
	run    runFunc
	ifname string // utunN
	log    *slog.Logger

	// mu is held by state, setMTU, setUp and the add and delete methods
	// throughout, so that their reads and changes do not interleave.
	mu sync.Mutex
	// routes are the destinations of AddRoute. subnets are the routes to
	// the subnets of addresses, which AddAddress adds because macOS does
	// not for a point-to-point interface; Device does not report them.
	routes  map[netip.Prefix]bool
	subnets map[netip.Prefix]bool
}

func newUTunLink(run runFunc, ifname string, log *slog.Logger) *utunLink {
	return &utunLink{run: run, ifname: ifname, log: log, routes: map[netip.Prefix]bool{}, subnets: map[netip.Prefix]bool{}}
}

// ifconfigState is what ifconfig reports of an interface.
type ifconfigState struct {
	MTU       int
	Up        bool
	Addresses []netip.Prefix // all, link-local ones included, in order
}

// netstatRoute is one row of `netstat -rn`.
type netstatRoute struct {
	Dst   netip.Prefix
	Flags string
	Netif string
}

// state returns the link half of Device: MTU, state, addresses (no
// link-local ones) and drago's routes still in the routing table, sorted.
func (l *utunLink) state() (*Device, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, err := l.ifconfig()
	if err != nil {
		return nil, err
	}
	present, err := l.present()
	if err != nil {
		return nil, err
	}
	d := &Device{MTU: st.MTU, Up: st.Up, Addresses: assignedAddresses(st.Addresses)}
	for p := range l.routes {
		if present[p] {
			d.Routes = append(d.Routes, p)
		}
	}
	slices.SortFunc(d.Routes, ComparePrefixes)
	return d, nil
}

func (l *utunLink) ifconfig() (ifconfigState, error) {
	out, err := l.run(ifconfigPath, l.ifname)
	if err != nil {
		return ifconfigState{}, err
	}
	return parseIfconfig(out)
}

// present returns the destinations of the routes through the interface.
func (l *utunLink) present() (map[netip.Prefix]bool, error) {
	out, err := l.run(netstatPath, "-rnW")
	if err != nil {
		return nil, err
	}
	rs, err := parseNetstat(out)
	if err != nil {
		return nil, err
	}
	m := map[netip.Prefix]bool{}
	for _, r := range rs {
		if r.Netif == l.ifname {
			m[r.Dst] = true
		}
	}
	return m, nil
}

// setMTU sets the MTU.
func (l *utunLink) setMTU(mtu int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := CheckMTU(mtu); err != nil {
		return err
	}
	_, err := l.run(ifconfigPath, l.ifname, "mtu", strconv.Itoa(mtu))
	return err
}

// setUp brings the interface up.
func (l *utunLink) setUp() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.run(ifconfigPath, l.ifname, "up")
	return err
}

// addAddress adds p, IPv4 in wg-quick's way (the address is its own
// point-to-point destination), and a route to p's subnet, which a
// point-to-point interface does not get on its own; Linux and Windows add
// one, and the agent counts on it.
func (l *utunLink) addAddress(p netip.Prefix) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits())
	st, err := l.ifconfig()
	if err != nil {
		return err
	}
	present, err := checkNewAddress(st.Addresses, p)
	if err != nil {
		return err
	}
	if !present {
		args := []string{l.ifname, "inet6", p.String(), "alias"}
		if p.Addr().Is4() {
			args = []string{l.ifname, "inet", p.String(), p.Addr().String(), "alias"}
		}
		if _, err := l.run(ifconfigPath, args...); err != nil {
			return err
		}
	}
	return l.addSubnetRoute(p)
}

// addSubnetRoute adds the route to the subnet of the address p unless the
// interface has one. A route to it through another interface is left
// alone, with a warning: the address stays, as it would on Linux.
func (l *utunLink) addSubnetRoute(p netip.Prefix) error {
	sub := p.Masked()
	if p.Bits() == p.Addr().BitLen() {
		return nil
	}
	present, err := l.present()
	if err != nil {
		return err
	}
	if present[sub] {
		return nil
	}
	if err := l.routeCmd("add", sub); err != nil {
		if netif, taken := l.routeTo(sub); taken {
			l.log.Warn("the subnet of an address is routed through another interface; leaving that route",
				"utun", l.ifname, "address", p, "interface", netif)
			return nil
		}
		return fmt.Errorf("adding route to the subnet %s: %w", sub, err)
	}
	l.subnets[sub] = true
	return nil
}

// deleteAddress deletes p if the interface has it, with the prefix length
// given, and the subnet route addAddress added for it once no address
// needs it.
func (l *utunLink) deleteAddress(p netip.Prefix) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !p.IsValid() {
		return errors.New("invalid prefix")
	}
	p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits())
	st, err := l.ifconfig()
	if err != nil {
		return err
	}
	if !slices.Contains(st.Addresses, p) {
		return nil
	}
	family := "inet6"
	if p.Addr().Is4() {
		family = "inet"
	}
	if _, err := l.run(ifconfigPath, l.ifname, family, p.Addr().String(), "-alias"); err != nil {
		return err
	}
	sub := p.Masked()
	if !l.subnets[sub] {
		return nil
	}
	for _, a := range st.Addresses {
		if a != p && a.Masked() == sub {
			return nil // another address of the subnet
		}
	}
	delete(l.subnets, sub)
	present, err := l.present()
	if err != nil || !present[sub] {
		return err
	}
	if err := l.routeCmd("delete", sub); err != nil {
		return fmt.Errorf("deleting route to the subnet %s: %w", sub, err)
	}
	return nil
}

// addRoute adds a route to p through the interface, which must be up.
// Adding a route drago already has succeeds; a route to p that AddRoute did
// not add (through any interface, as macOS keeps one route per destination,
// or the subnet route of an address) is left alone and reported as
// os.ErrExist, as on Linux.
func (l *utunLink) addRoute(p netip.Prefix) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := CheckRoutePrefix(p); err != nil {
		return err
	}
	st, err := l.ifconfig()
	if err != nil {
		return err
	}
	if !st.Up {
		return errLinkDown
	}
	present, err := l.present()
	if err != nil {
		return err
	}
	if present[p] {
		if l.routes[p] {
			return nil
		}
		return errNotOwned
	}
	if err := l.routeCmd("add", p); err != nil {
		if _, taken := l.routeTo(p); taken {
			return errNotOwned
		}
		return err
	}
	l.routes[p] = true
	return nil
}

// routeTo reports whether the routing table has a route to p, and through
// which interface. Errors count as no route.
func (l *utunLink) routeTo(p netip.Prefix) (netif string, ok bool) {
	out, err := l.run(netstatPath, "-rnW")
	if err != nil {
		return "", false
	}
	rs, err := parseNetstat(out)
	if err != nil {
		return "", false
	}
	for _, r := range rs {
		if r.Dst == p {
			return r.Netif, true
		}
	}
	return "", false
}

// deleteRoute deletes drago's route to p and never another, nor the subnet
// route of an address. Deleting an absent route succeeds.
func (l *utunLink) deleteRoute(p netip.Prefix) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := CheckRoutePrefix(p); err != nil {
		return err
	}
	if !l.routes[p] {
		return nil
	}
	present, err := l.present()
	if err != nil {
		return err
	}
	if present[p] {
		if err := l.routeCmd("delete", p); err != nil {
			return err
		}
	}
	delete(l.routes, p)
	return nil
}

// routeCmd runs `route -n add|delete -inet[6] p -interface utunN`.
func (l *utunLink) routeCmd(verb string, p netip.Prefix) error {
	family := "-inet6"
	if p.Addr().Is4() {
		family = "-inet"
	}
	_, err := l.run(routePath, "-n", verb, family, p.String(), "-interface", l.ifname)
	return err
}

// parseIfconfig parses the output of `ifconfig utunN` (macOS):
//
//	utun4: flags=8051<UP,POINTOPOINT,RUNNING,MULTICAST> mtu 1380
//		inet 10.10.0.1 --> 10.10.0.1 netmask 0xffffff00
//		inet6 fe80::1c2f:3aff:fe4b:8d2e%utun4 prefixlen 64 scopeid 0x11
//		inet6 fd10::1 prefixlen 64
//		nd6 options=201<PERFORMNUD,DAD>
func parseIfconfig(out []byte) (ifconfigState, error) {
	var st ifconfigState
	sc := bufio.NewScanner(bytes.NewReader(out))
	first := true
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		if first {
			first = false
			if err := parseIfconfigHeader(&st, f); err != nil {
				return st, fmt.Errorf("parsing ifconfig line %q: %w", line, err)
			}
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			break // the next interface
		}
		var p netip.Prefix
		var err error
		switch f[0] {
		case "inet":
			p, err = parseIfconfigInet(f)
		case "inet6":
			p, err = parseIfconfigInet6(f)
		default:
			continue
		}
		if err != nil {
			return st, fmt.Errorf("parsing ifconfig line %q: %w", line, err)
		}
		st.Addresses = append(st.Addresses, p)
	}
	if first {
		return st, errors.New("parsing ifconfig: no output")
	}
	return st, nil
}

// parseIfconfigHeader parses "utun4: flags=8051<UP,...> mtu 1380".
func parseIfconfigHeader(st *ifconfigState, f []string) error {
	if len(f) < 2 || !strings.HasSuffix(f[0], ":") || !strings.HasPrefix(f[1], "flags=") {
		return errors.New("not an interface line")
	}
	flags := strings.TrimPrefix(f[1], "flags=")
	hex, names, _ := strings.Cut(flags, "<")
	n, err := strconv.ParseUint(hex, 16, 32)
	if err != nil {
		return fmt.Errorf("flags: %w", err)
	}
	st.Up = n&1 != 0 // IFF_UP
	if names != "" {
		st.Up = slices.Contains(strings.Split(strings.TrimSuffix(names, ">"), ","), "UP")
	}
	for i := 2; i+1 < len(f); i++ {
		if f[i] == "mtu" {
			if st.MTU, err = strconv.Atoi(f[i+1]); err != nil {
				return fmt.Errorf("mtu: %w", err)
			}
		}
	}
	if st.MTU == 0 {
		return errors.New("no mtu")
	}
	return nil
}

// parseIfconfigInet parses "inet 10.10.0.1 --> 10.10.0.1 netmask 0xffffff00".
func parseIfconfigInet(f []string) (netip.Prefix, error) {
	if len(f) < 2 {
		return netip.Prefix{}, errors.New("no address")
	}
	a, err := netip.ParseAddr(f[1])
	if err != nil || !a.Is4() {
		return netip.Prefix{}, fmt.Errorf("bad address %q", f[1])
	}
	bits := 32
	for i := 2; i+1 < len(f); i++ {
		if f[i] != "netmask" {
			continue
		}
		m, err := strconv.ParseUint(strings.TrimPrefix(f[i+1], "0x"), 16, 32)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("netmask: %w", err)
		}
		if bits, err = maskBits(uint32(m)); err != nil {
			return netip.Prefix{}, err
		}
	}
	return netip.PrefixFrom(a, bits), nil
}

// maskBits returns the length of a contiguous IPv4 netmask.
func maskBits(m uint32) (int, error) {
	bits := 0
	for m&(1<<31) != 0 {
		bits++
		m <<= 1
	}
	if m != 0 {
		return 0, fmt.Errorf("non-contiguous netmask")
	}
	return bits, nil
}

// parseIfconfigInet6 parses "inet6 fd10::1 prefixlen 64 [flags] [scopeid
// 0x11]", dropping a zone (%utun4).
func parseIfconfigInet6(f []string) (netip.Prefix, error) {
	if len(f) < 2 {
		return netip.Prefix{}, errors.New("no address")
	}
	addr, _, _ := strings.Cut(f[1], "%")
	a, err := netip.ParseAddr(addr)
	if err != nil || !a.Is6() {
		return netip.Prefix{}, fmt.Errorf("bad address %q", f[1])
	}
	bits := 128
	for i := 2; i+1 < len(f); i++ {
		if f[i] == "prefixlen" {
			if bits, err = strconv.Atoi(f[i+1]); err != nil || bits < 0 || bits > 128 {
				return netip.Prefix{}, fmt.Errorf("bad prefixlen %q", f[i+1])
			}
		}
	}
	return netip.PrefixFrom(a, bits), nil
}

// parseNetstat parses the output of `netstat -rn` or `netstat -rnW` (macOS):
// sections "Internet:" and "Internet6:", each with a header line naming the
// columns ("Destination Gateway Flags [Refs Use] [Mtu] Netif Expire").
// Destinations are abbreviated as netstat prints them: "default", "10.20/16"
// (10.20.0.0/16), "127" (a classful net, 127.0.0.0/8), "10.20.0.9" with
// flag H (a host), "fe80::%utun4/64" (zone dropped). Rows it cannot read
// are skipped: a route of drago's that netstat printed in an unforeseen form
// would look absent, and adding it again then fails with os.ErrExist, which
// points here.
func parseNetstat(out []byte) ([]netstatRoute, error) {
	var routes []netstatRoute
	ipv6 := false
	var cols map[string]int
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
			continue
		case line == "Internet:":
			ipv6, cols = false, nil
			continue
		case line == "Internet6:":
			ipv6, cols = true, nil
			continue
		case f[0] == "Destination":
			cols = map[string]int{}
			for i, name := range f {
				cols[name] = i
			}
			_, okNetif := cols["Netif"]
			_, okFlags := cols["Flags"]
			if !okNetif || !okFlags {
				return nil, fmt.Errorf("parsing netstat header %q: no Netif or Flags column", line)
			}
			continue
		case cols == nil:
			continue // "Routing tables", other sections
		}
		ni, fi := cols["Netif"], cols["Flags"]
		if len(f) <= ni || len(f) <= fi {
			continue
		}
		dst, err := parseNetstatDst(f[0], f[fi], ipv6)
		if err != nil {
			continue
		}
		routes = append(routes, netstatRoute{Dst: dst, Flags: f[fi], Netif: f[ni]})
	}
	return routes, sc.Err()
}

// parseNetstatDst parses a netstat destination; flags are the route's.
func parseNetstatDst(s, flags string, ipv6 bool) (netip.Prefix, error) {
	if s == "default" {
		if ipv6 {
			return netip.PrefixFrom(netip.IPv6Unspecified(), 0), nil
		}
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0), nil
	}
	addr, bitsText, hasBits := strings.Cut(s, "/")
	addr, _, _ = strings.Cut(addr, "%")
	var a netip.Addr
	var err error
	if ipv6 {
		a, err = netip.ParseAddr(addr)
		if err == nil && !a.Is6() {
			err = errors.New("not IPv6")
		}
	} else {
		a, err = parseShortIPv4(addr)
	}
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("destination %q: %w", s, err)
	}
	bits := a.BitLen()
	switch {
	case hasBits:
		if bits, err = strconv.Atoi(bitsText); err != nil || bits < 0 || bits > a.BitLen() {
			return netip.Prefix{}, fmt.Errorf("destination %q: bad prefix length", s)
		}
	case strings.Contains(flags, "H") || ipv6:
		// A host.
	default:
		bits = classfulBits(a)
	}
	return netip.PrefixFrom(a, bits).Masked(), nil
}

// parseShortIPv4 parses an IPv4 address netstat may have cut short of its
// trailing zero bytes: "10.20" is 10.20.0.0.
func parseShortIPv4(s string) (netip.Addr, error) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, errors.New("not IPv4")
	}
	var b [4]byte
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 8)
		if err != nil {
			return netip.Addr{}, errors.New("not IPv4")
		}
		b[i] = byte(n)
	}
	return netip.AddrFrom4(b), nil
}

// classfulBits returns the prefix length of a's address class, which
// netstat leaves out when the netmask is that one.
func classfulBits(a netip.Addr) int {
	switch b := a.As4()[0]; {
	case b < 128:
		return 8
	case b < 192:
		return 16
	case b < 224:
		return 24
	}
	return 4 // class D (multicast) and beyond
}
