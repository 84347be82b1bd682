package platform

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// This file translates between wgtypes and the configuration of
// wireguard-nt, the Windows kernel driver. It has no build tag so that it is
// unit-tested on every OS; nt_windows.go copies ntInterface field by field
// into the driver's structures (golang.zx2c4.com/wireguard/windows/driver),
// whose flag values the ntXxx constants repeat (checked there at compile
// time).

// ntInterface is a configuration in the shape wireguard-nt takes and
// returns: the interface, then each peer, then each peer's allowed IPs.
type ntInterface struct {
	Flags      uint32 // ntInterfaceXxx
	ListenPort uint16
	PrivateKey wgtypes.Key
	PublicKey  wgtypes.Key
	Peers      []ntPeer
}

// ntPeer is one peer of an ntInterface.
type ntPeer struct {
	Flags               uint32 // ntPeerXxx
	PublicKey           wgtypes.Key
	PresharedKey        wgtypes.Key
	PersistentKeepalive uint16 // seconds
	Endpoint            netip.AddrPort
	TxBytes             uint64
	RxBytes             uint64
	LastHandshake       uint64 // a Windows FILETIME; 0 is never
	AllowedIPs          []netip.Prefix
}

// Flags of wireguard-nt's WIREGUARD_INTERFACE and WIREGUARD_PEER.
const (
	ntInterfaceHasPublicKey  = 1 << 0
	ntInterfaceHasPrivateKey = 1 << 1
	ntInterfaceHasListenPort = 1 << 2
	ntInterfaceReplacePeers  = 1 << 3

	ntPeerHasPublicKey           = 1 << 0
	ntPeerHasPresharedKey        = 1 << 1
	ntPeerHasPersistentKeepalive = 1 << 2
	ntPeerHasEndpoint            = 1 << 3
	ntPeerReplaceAllowedIPs      = 1 << 5
	ntPeerRemove                 = 1 << 6
	ntPeerUpdateOnly             = 1 << 7
)

// ntConfig translates cfg into wireguard-nt's form. wireguard-nt has no
// firewall mark: a non-zero FirewallMark is an error, zero is ignored. Host
// bits of allowed IPs are cleared, as WireGuard does.
func ntConfig(cfg wgtypes.Config) (ntInterface, error) {
	var c ntInterface
	if m := cfg.FirewallMark; m != nil && *m != 0 {
		return c, errors.New("wireguard-nt has no firewall mark")
	}
	if cfg.PrivateKey != nil {
		c.Flags |= ntInterfaceHasPrivateKey
		c.PrivateKey = *cfg.PrivateKey
	}
	if p := cfg.ListenPort; p != nil {
		if *p < 0 || *p > 65535 {
			return c, fmt.Errorf("listen port %d out of range", *p)
		}
		c.Flags |= ntInterfaceHasListenPort
		c.ListenPort = uint16(*p)
	}
	if cfg.ReplacePeers {
		c.Flags |= ntInterfaceReplacePeers
	}
	for _, pc := range cfg.Peers {
		p, err := ntPeerConfig(pc)
		if err != nil {
			return c, fmt.Errorf("peer %s: %w", pc.PublicKey, err)
		}
		c.Peers = append(c.Peers, p)
	}
	return c, nil
}

func ntPeerConfig(pc wgtypes.PeerConfig) (ntPeer, error) {
	p := ntPeer{Flags: ntPeerHasPublicKey, PublicKey: pc.PublicKey}
	if pc.Remove {
		p.Flags |= ntPeerRemove
		return p, nil
	}
	if pc.UpdateOnly {
		p.Flags |= ntPeerUpdateOnly
	}
	if pc.PresharedKey != nil {
		p.Flags |= ntPeerHasPresharedKey
		p.PresharedKey = *pc.PresharedKey
	}
	if pc.Endpoint != nil {
		ap := pc.Endpoint.AddrPort()
		if !ap.Addr().IsValid() {
			return p, fmt.Errorf("invalid endpoint %s", pc.Endpoint)
		}
		p.Flags |= ntPeerHasEndpoint
		p.Endpoint = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if k := pc.PersistentKeepaliveInterval; k != nil {
		secs := int64(k.Seconds())
		if secs < 0 || secs > 65535 {
			return p, fmt.Errorf("persistent keepalive %v out of range", *k)
		}
		p.Flags |= ntPeerHasPersistentKeepalive
		p.PersistentKeepalive = uint16(secs)
	}
	if pc.ReplaceAllowedIPs {
		p.Flags |= ntPeerReplaceAllowedIPs
	}
	for _, n := range pc.AllowedIPs {
		pfx, ok := Prefix(n)
		if !ok {
			return p, fmt.Errorf("invalid allowed ip %s", n.String())
		}
		p.AllowedIPs = append(p.AllowedIPs, pfx.Masked())
	}
	return p, nil
}

// ntWireGuard translates a configuration read back from wireguard-nt into
// a wgtypes.Device named name, peers sorted by public key.
func ntWireGuard(name string, c ntInterface) *wgtypes.Device {
	d := &wgtypes.Device{Name: name, Type: wgtypes.WindowsKernel}
	if c.Flags&ntInterfaceHasPrivateKey != 0 {
		d.PrivateKey = c.PrivateKey
	}
	switch {
	case c.Flags&ntInterfaceHasPublicKey != 0:
		d.PublicKey = c.PublicKey
	case d.PrivateKey != (wgtypes.Key{}):
		d.PublicKey = d.PrivateKey.PublicKey()
	}
	if c.Flags&ntInterfaceHasListenPort != 0 {
		d.ListenPort = int(c.ListenPort)
	}
	for _, p := range c.Peers {
		wp := wgtypes.Peer{
			PublicKey:         p.PublicKey,
			LastHandshakeTime: filetimeToTime(p.LastHandshake),
			ReceiveBytes:      int64(p.RxBytes),
			TransmitBytes:     int64(p.TxBytes),
			ProtocolVersion:   1,
		}
		if p.Flags&ntPeerHasPresharedKey != 0 {
			wp.PresharedKey = p.PresharedKey
		}
		if p.Flags&ntPeerHasEndpoint != 0 && p.Endpoint.Addr().IsValid() {
			wp.Endpoint = net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.Endpoint.Addr().Unmap(), p.Endpoint.Port()))
		}
		if p.Flags&ntPeerHasPersistentKeepalive != 0 {
			wp.PersistentKeepaliveInterval = time.Duration(p.PersistentKeepalive) * time.Second
		}
		for _, a := range p.AllowedIPs {
			wp.AllowedIPs = append(wp.AllowedIPs, IPNet(a))
		}
		d.Peers = append(d.Peers, wp)
	}
	sortPeers(d.Peers)
	return d
}

// filetimeEpoch is the Unix epoch as a FILETIME: 100 ns intervals since
// 1601-01-01 UTC.
const filetimeEpoch = 116444736000000000

// filetimeToTime converts a FILETIME; 0 (never) is the zero time.
func filetimeToTime(ft uint64) time.Time {
	if ft == 0 {
		return time.Time{}
	}
	return time.Unix(0, (int64(ft)-filetimeEpoch)*100)
}

// ntGUIDNamespace is the namespace of the name-based UUIDs ntAdapterGUID
// makes, 6c0e9a7d-2b51-4f3e-9d11-58d4802a61c5; it is fixed so that each
// name keeps its GUID across runs and versions.
var ntGUIDNamespace = [16]byte{0x6c, 0x0e, 0x9a, 0x7d, 0x2b, 0x51, 0x4f, 0x3e, 0x9d, 0x11, 0x58, 0xd4, 0x80, 0x2a, 0x61, 0xc5}

// ntAdapterGUID returns the GUID of the adapter named name, in RFC 9562
// byte order: a version 5 (SHA-1, name-based) UUID. Windows keys a
// network's profile (firewall category, "Network 2", ...) by the adapter
// GUID, so a GUID that stays the same for a name keeps one profile per
// interface instead of a new one on every start.
func ntAdapterGUID(name string) [16]byte {
	h := sha1.New()
	h.Write(ntGUIDNamespace[:])
	h.Write([]byte(name))
	var g [16]byte
	copy(g[:], h.Sum(nil))
	g[6] = g[6]&0x0f | 0x50 // version 5
	g[8] = g[8]&0x3f | 0x80 // RFC 9562 variant
	return g
}

// ntRoute is the part of a Windows route (MIB_IPFORWARD_ROW2) that tells
// whether drago owns it.
type ntRoute struct {
	LUID     uint64
	Dst      netip.Prefix
	NextHop  netip.Addr // invalid or unspecified: on-link
	Metric   uint32
	Protocol uint32
}

// Drago marks its Windows routes with this route metric; they are on-link
// (no next hop) and of protocol ntRouteProtocol, as CreateIpForwardEntry2
// makes them. Device lists only such routes on drago's adapter and
// DeleteRoute removes nothing else; `Get-NetRoute -RouteMetric 68` lists
// them. Windows adds the interface metric to it to rank routes.
const (
	ntRouteMetric   = 68
	ntRouteProtocol = 3 // MIB_IPPROTO_NETMGMT, "static"
)

// owned reports whether r is a drago route on the adapter luid.
func (r ntRoute) owned(luid uint64) bool {
	return r.LUID == luid && r.Metric == ntRouteMetric && r.Protocol == ntRouteProtocol &&
		(!r.NextHop.IsValid() || r.NextHop.IsUnspecified())
}

// ntOwnedRoutes returns the destinations of drago's routes on the adapter
// luid, sorted.
func ntOwnedRoutes(rows []ntRoute, luid uint64) []netip.Prefix {
	var out []netip.Prefix
	for _, r := range rows {
		if r.owned(luid) {
			out = append(out, r.Dst)
		}
	}
	slices.SortFunc(out, ComparePrefixes)
	return slices.Compact(out)
}

// ntRouteTo reports what the adapter luid has for the on-link route to dst:
// owned when drago's route is there, foreign when another route with the
// same key (adapter, destination, no next hop) is, which Windows would not
// let drago add beside it.
func ntRouteTo(rows []ntRoute, luid uint64, dst netip.Prefix) (owned, foreign bool) {
	for _, r := range rows {
		if r.LUID != luid || r.Dst != dst || (r.NextHop.IsValid() && !r.NextHop.IsUnspecified()) {
			continue
		}
		if r.owned(luid) {
			owned = true
		} else {
			foreign = true
		}
	}
	return owned, foreign
}
