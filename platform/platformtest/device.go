package platformtest

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/platform"
)

// device is one in-memory interface. Peers keep their insertion order.
// Snapshots share wg.Peers until the next peer change copies it (shared),
// and AllowedIPs slices are never modified in place once handed out.
type device struct {
	wg     wgtypes.Device
	shared bool                         // a snapshot holds wg.Peers: copy before changing a peer
	index  map[wgtypes.Key]int          // peer public key -> position in wg.Peers
	owners map[netip.Prefix]wgtypes.Key // allowed IP -> peer
	mtu    int
	up     bool
	addrs  []netip.Prefix // sorted
	routes []netip.Prefix // sorted
}

// snapshot returns the device as a platform.Device, sharing its peers
// until the next change (see own): reading a device with many peers costs
// no copy of them.
func (d *device) snapshot() *platform.Device {
	wg := d.wg
	wg.Peers = d.wg.Peers[:len(d.wg.Peers):len(d.wg.Peers)]
	d.shared = true
	return &platform.Device{
		WireGuard: wg,
		MTU:       d.mtu,
		Up:        d.up,
		Addresses: slices.Clone(d.addrs),
		Routes:    slices.Clone(d.routes),
	}
}

// own copies the peers before a change if a snapshot shares them.
func (d *device) own() {
	if d.shared {
		d.wg.Peers, d.shared = slices.Clone(d.wg.Peers), false
	}
}

// configure applies cfg as WireGuard does. It validates first, so a failed
// call changes nothing.
func (d *device) configure(cfg wgtypes.Config) error {
	if p := cfg.ListenPort; p != nil && (*p < 0 || *p > 65535) {
		return fmt.Errorf("listen port %d out of range", *p)
	}
	for _, pc := range cfg.Peers {
		for _, n := range pc.AllowedIPs {
			if _, ok := toPrefix(n); !ok {
				return fmt.Errorf("peer %s: invalid allowed ip %s", pc.PublicKey, n.String())
			}
		}
	}
	if cfg.PrivateKey != nil {
		d.wg.PrivateKey, d.wg.PublicKey = *cfg.PrivateKey, wgtypes.Key{}
		if *cfg.PrivateKey != (wgtypes.Key{}) {
			d.wg.PublicKey = cfg.PrivateKey.PublicKey()
		}
	}
	if cfg.ListenPort != nil {
		d.wg.ListenPort = *cfg.ListenPort
	}
	if cfg.FirewallMark != nil {
		d.wg.FirewallMark = *cfg.FirewallMark
	}
	d.own()
	if cfg.ReplacePeers || d.index == nil {
		d.wg.Peers = nil
		d.index = make(map[wgtypes.Key]int)
		d.owners = make(map[netip.Prefix]wgtypes.Key)
	}
	for _, pc := range cfg.Peers {
		d.configurePeer(pc)
	}
	return nil
}

func (d *device) configurePeer(pc wgtypes.PeerConfig) {
	i, ok := d.index[pc.PublicKey]
	if pc.Remove {
		if ok {
			d.removePeer(i)
		}
		return
	}
	if !ok {
		if pc.UpdateOnly {
			return
		}
		i = len(d.wg.Peers)
		d.wg.Peers = append(d.wg.Peers, wgtypes.Peer{PublicKey: pc.PublicKey, ProtocolVersion: 1})
		d.index[pc.PublicKey] = i
	}
	p := &d.wg.Peers[i]
	if pc.PresharedKey != nil {
		p.PresharedKey = *pc.PresharedKey
	}
	if pc.Endpoint != nil {
		e := *pc.Endpoint
		e.IP = slices.Clone(e.IP)
		if ip4 := e.IP.To4(); ip4 != nil {
			e.IP = ip4
		}
		p.Endpoint = &e
	}
	if pc.PersistentKeepaliveInterval != nil {
		p.PersistentKeepaliveInterval = *pc.PersistentKeepaliveInterval
	}
	if pc.ReplaceAllowedIPs {
		for _, n := range p.AllowedIPs {
			pfx, _ := toPrefix(n)
			delete(d.owners, pfx)
		}
		p.AllowedIPs = nil
	}
	for _, n := range pc.AllowedIPs {
		pfx, _ := toPrefix(n)
		owner, owned := d.owners[pfx]
		if owned && owner == pc.PublicKey {
			continue
		}
		if owned {
			d.dropAllowedIP(owner, pfx)
		}
		d.owners[pfx] = pc.PublicKey
		p.AllowedIPs = append(p.AllowedIPs, platform.IPNet(pfx))
	}
}

// removePeer removes the peer at i and its allowed IPs.
func (d *device) removePeer(i int) {
	for _, n := range d.wg.Peers[i].AllowedIPs {
		pfx, _ := toPrefix(n)
		delete(d.owners, pfx)
	}
	delete(d.index, d.wg.Peers[i].PublicKey)
	d.wg.Peers = slices.Delete(d.wg.Peers, i, i+1)
	for j := i; j < len(d.wg.Peers); j++ {
		d.index[d.wg.Peers[j].PublicKey] = j
	}
}

// dropAllowedIP removes pfx from the allowed IPs of the peer owning it,
// copying the slice since snapshots may share it.
func (d *device) dropAllowedIP(owner wgtypes.Key, pfx netip.Prefix) {
	p := &d.wg.Peers[d.index[owner]]
	p.AllowedIPs = slices.DeleteFunc(slices.Clone(p.AllowedIPs), func(n net.IPNet) bool {
		q, _ := toPrefix(n)
		return q == pfx
	})
	delete(d.owners, pfx)
}

// toPrefix converts n to a masked netip.Prefix, IPv4 unmapped.
func toPrefix(n net.IPNet) (netip.Prefix, bool) {
	p, ok := platform.Prefix(n)
	return p.Masked(), ok
}

func insertSorted(s []netip.Prefix, p netip.Prefix) []netip.Prefix {
	i, found := slices.BinarySearchFunc(s, p, platform.ComparePrefixes)
	if found {
		return s
	}
	return slices.Insert(s, i, p)
}

func deleteSorted(s []netip.Prefix, p netip.Prefix) []netip.Prefix {
	if i, found := slices.BinarySearchFunc(s, p, platform.ComparePrefixes); found {
		return slices.Delete(s, i, i+1)
	}
	return s
}
