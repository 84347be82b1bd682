package platform

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// RouteProtocol is the rtnetlink protocol number (rtm_protocol) that marks the
// routes drago owns: Device lists only routes carrying it and DeleteRoute
// removes nothing else. It is unassigned in iproute2's rt_protos;
// `ip route show proto 68` lists drago's routes.
const RouteProtocol = 68

// addrGenModeNone (IN6_ADDR_GEN_MODE_NONE) stops the kernel from adding an
// IPv6 link-local address, so a link carries only the addresses drago adds.
const addrGenModeNone = 1

// links implements the link, address, route and MTU half of Backend over
// rtnetlink. Both Linux backends embed it.
type links struct{}

// link returns the link named name, or an error matching os.ErrNotExist.
func (links) link(name string) (netlink.Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		if _, ok := errors.AsType[netlink.LinkNotFoundError](err); ok {
			return nil, ErrNoDevice
		}
		return nil, err
	}
	return l, nil
}

// exists reports whether a link named name exists.
func (ls links) exists(name string) (bool, error) {
	_, err := ls.link(name)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// prepare readies a new link: no automatic IPv6 link-local address.
func (ls links) prepare(name string) error {
	l, err := ls.link(name)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetIP6AddrGenMode(l, addrGenModeNone); err != nil && !errors.Is(err, unix.EAFNOSUPPORT) {
		return fmt.Errorf("setting ipv6 addrgenmode none: %w", err)
	}
	return nil
}

// state returns the link half of name's Device: MTU, state, addresses and
// drago's routes, both sorted.
func (ls links) state(name string) (*Device, error) {
	l, err := ls.link(name)
	if err != nil {
		return nil, err
	}
	a := l.Attrs()
	d := &Device{MTU: a.MTU, Up: a.Flags&net.FlagUp != 0}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	for _, a := range addrs {
		if p, ok := Prefix(*a.IPNet); ok {
			d.Addresses = append(d.Addresses, p)
		}
	}
	routes, err := ownedRoutes(l, netip.Prefix{})
	if err != nil {
		return nil, err
	}
	for _, r := range routes {
		d.Routes = append(d.Routes, routeDst(r))
	}
	slices.SortFunc(d.Addresses, ComparePrefixes)
	slices.SortFunc(d.Routes, ComparePrefixes)
	return d, nil
}

// SetMTU implements Backend.
func (ls links) SetMTU(name string, mtu int) error {
	l, err := ls.link(name)
	if err == nil {
		err = netlink.LinkSetMTU(l, mtu)
	}
	if err != nil {
		return fmt.Errorf("setting mtu %d on %s: %w", mtu, name, err)
	}
	return nil
}

// SetUp implements Backend.
func (ls links) SetUp(name string) error {
	l, err := ls.link(name)
	if err == nil {
		err = netlink.LinkSetUp(l)
	}
	if err != nil {
		return fmt.Errorf("bringing %s up: %w", name, err)
	}
	return nil
}

// AddAddress implements Backend. IPv6 addresses skip duplicate address
// detection so they are usable at once.
func (ls links) AddAddress(name string, p netip.Prefix) error {
	if err := ls.addAddress(name, p); err != nil {
		return fmt.Errorf("adding address %s to %s: %w", p, name, err)
	}
	return nil
}

func (ls links) addAddress(name string, p netip.Prefix) error {
	if !p.IsValid() {
		return errors.New("invalid prefix")
	}
	l, err := ls.link(name)
	if err != nil {
		return err
	}
	n := IPNet(p)
	a := &netlink.Addr{IPNet: &n}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	err = netlink.AddrAdd(l, a)
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	// Already there, or the same address with another prefix length.
	st, lerr := ls.state(name)
	if lerr == nil && slices.Contains(st.Addresses, p) {
		return nil
	}
	return err
}

// DeleteAddress implements Backend. Deleting an absent address succeeds.
func (ls links) DeleteAddress(name string, p netip.Prefix) error {
	l, err := ls.link(name)
	if err == nil && p.IsValid() {
		n := IPNet(p)
		err = netlink.AddrDel(l, &netlink.Addr{IPNet: &n})
		if errors.Is(err, unix.EADDRNOTAVAIL) {
			err = nil
		}
	} else if err == nil {
		err = errors.New("invalid prefix")
	}
	if err != nil {
		return fmt.Errorf("deleting address %s from %s: %w", p, name, err)
	}
	return nil
}

// AddRoute implements Backend: a route to p through the link, in the main
// table, marked with RouteProtocol. Adding a route drago already has succeeds;
// a route to p that drago does not own is left alone and reported as
// os.ErrExist.
func (ls links) AddRoute(name string, p netip.Prefix) error {
	if err := ls.addRoute(name, p); err != nil {
		return fmt.Errorf("adding route %s via %s: %w", p, name, err)
	}
	return nil
}

func (ls links) addRoute(name string, p netip.Prefix) error {
	if err := CheckRoutePrefix(p); err != nil {
		return err
	}
	l, err := ls.link(name)
	if err != nil {
		return err
	}
	n := IPNet(p)
	r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: &n, Protocol: RouteProtocol}
	if p.Addr().Is4() {
		r.Scope = netlink.SCOPE_LINK
	}
	err = netlink.RouteAdd(r)
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	owned, lerr := ownedRoutes(l, p)
	if lerr == nil && len(owned) > 0 {
		return nil
	}
	return errNotOwned
}

// DeleteRoute implements Backend: it removes drago's route to p through the
// link and never a route drago does not own. Deleting an absent route
// succeeds.
func (ls links) DeleteRoute(name string, p netip.Prefix) error {
	if err := ls.deleteRoute(name, p); err != nil {
		return fmt.Errorf("deleting route %s via %s: %w", p, name, err)
	}
	return nil
}

func (ls links) deleteRoute(name string, p netip.Prefix) error {
	if err := CheckRoutePrefix(p); err != nil {
		return err
	}
	l, err := ls.link(name)
	if err != nil {
		return err
	}
	owned, err := ownedRoutes(l, p)
	if err != nil {
		return err
	}
	for _, r := range owned {
		// The kernel matches the protocol too, so this cannot remove a
		// route that appeared under another owner meanwhile.
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			return err
		}
	}
	return nil
}

// ownedRoutes lists drago's routes through l in the main table, only those to
// dst when dst is valid.
func ownedRoutes(l netlink.Link, dst netip.Prefix) ([]netlink.Route, error) {
	filter := &netlink.Route{LinkIndex: l.Attrs().Index, Protocol: RouteProtocol}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_OIF|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return nil, fmt.Errorf("listing routes: %w", err)
	}
	if dst.IsValid() {
		routes = slices.DeleteFunc(routes, func(r netlink.Route) bool { return routeDst(r) != dst })
	}
	return routes, nil
}

// routeDst returns r's destination; a nil Dst is the default route.
func routeDst(r netlink.Route) netip.Prefix {
	if r.Dst != nil {
		if p, ok := Prefix(*r.Dst); ok {
			return p
		}
	}
	if r.Family == netlink.FAMILY_V6 {
		return netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	return netip.PrefixFrom(netip.IPv4Unspecified(), 0)
}
