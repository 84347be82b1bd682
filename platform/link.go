package platform

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/server/api"
)

// This file holds the rules every backend applies the same way, whatever
// the OS: names, MTUs, prefixes, and what Device reports. Those exported
// serve the fakes that behave as the backends do (platformtest) and the
// agent; interface names are drago's rule, api.CheckInterfaceName.

// DefaultMTU is the MTU of a new interface, as wg-quick and wireguard-go pick.
const DefaultMTU = 1420

// minMTU and maxMTU bound the MTUs the Windows and macOS backends accept:
// 576 is the smallest datagram every IPv4 host takes (and the smallest IPv4
// MTU Windows allows). On Linux the kernel decides. These are the OS's
// bounds; drago itself sets MTUs in the narrower range of api.CheckMTU.
const (
	minMTU = 576
	maxMTU = 65535
)

// checkName rejects names that are not interface names under drago's rule
// (api.CheckInterfaceName), which every OS accepts.
func checkName(name string) error {
	if api.CheckInterfaceName(name) != nil {
		return fmt.Errorf("invalid interface name %q", name)
	}
	return nil
}

// CheckMTU rejects MTUs the Windows and macOS backends refuse: outside
// 576-65535.
func CheckMTU(mtu int) error {
	if mtu < minMTU || mtu > maxMTU {
		return fmt.Errorf("mtu %d out of range %d-%d", mtu, minMTU, maxMTU)
	}
	return nil
}

// CheckRoutePrefix rejects invalid prefixes and prefixes with host bits set,
// which the kernel would mask (so Device would never report them back).
func CheckRoutePrefix(p netip.Prefix) error {
	if !p.IsValid() {
		return errors.New("invalid prefix")
	}
	if p != p.Masked() {
		return fmt.Errorf("prefix has host bits set (want %s)", p.Masked())
	}
	return nil
}

// sortPeers orders peers by public key (api.CompareKeyBytes), so Device
// output is stable and in the order the agent keeps its peers.
func sortPeers(peers []wgtypes.Peer) {
	slices.SortFunc(peers, func(a, b wgtypes.Peer) int { return api.CompareKeyBytes(a.PublicKey, b.PublicKey) })
}

// assignedAddresses returns the addresses of have that Device reports,
// sorted: all but the link-local ones (fe80::/10, 169.254.0.0/16), which
// Windows and macOS give an interface on their own and which drago never
// assigns. Linux stops the kernel from adding any instead.
func assignedAddresses(have []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range have {
		if p.IsValid() && !p.Addr().IsLinkLocalUnicast() {
			out = append(out, netip.PrefixFrom(p.Addr().Unmap(), p.Bits()))
		}
	}
	slices.SortFunc(out, ComparePrefixes)
	return slices.CompactFunc(out, func(a, b netip.Prefix) bool { return a == b })
}

// checkNewAddress decides how to add p to a link that has the addresses
// have: present reports that p is there already (adding it again succeeds
// without a call); an error matching os.ErrExist means the address is there
// with another prefix length.
func checkNewAddress(have []netip.Prefix, p netip.Prefix) (present bool, err error) {
	if !p.IsValid() {
		return false, errors.New("invalid prefix")
	}
	for _, h := range have {
		if h.Addr().Unmap() != p.Addr().Unmap() {
			continue
		}
		if h.Bits() == p.Bits() {
			return true, nil
		}
		return false, fmt.Errorf("address present as %s: %w", h, os.ErrExist)
	}
	return false, nil
}

// errLinkDown is returned when adding a route through a link that is down,
// which Linux refuses and the other backends refuse alike.
var errLinkDown = errors.New("link is down")

// errNotOwned reports a route drago does not own in the way of one it adds.
var errNotOwned = fmt.Errorf("a route not owned by drago is in the way: %w", os.ErrExist)
