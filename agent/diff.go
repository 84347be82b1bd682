package agent

import (
	"net"
	"net/netip"
	"slices"
	"sort"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/platform"
	"github.com/drago-wg/drago/server/api"
)

// plan lists the backend calls that bring one interface from its observed
// state to the desired one. Apply runs them in field order. A zero plan
// (see empty) means the interface already matches.
type plan struct {
	Create    bool            // CreateDevice first
	WireGuard *wgtypes.Config // ConfigureWireGuard; nil when nothing changes
	MTU       int             // SetMTU; 0 leaves it
	DelAddrs  []netip.Prefix  // DeleteAddress
	AddAddrs  []netip.Prefix  // AddAddress
	Up        bool            // SetUp
	DelRoutes []netip.Prefix  // DeleteRoute
	AddRoutes []netip.Prefix  // AddRoute
	// Kicks are the peers WireGuard adds in place of a removed one (see
	// kick); the reconciler starts their handshakes at once.
	Kicks []kick
}

// kick is a peer added in place of one removed in the same plan with the
// same allowed IPs: a peer host's new key after its rotation. That host
// switched its private key and holds its packets until a handshake under
// the new key completes; the one it started when it switched went
// unanswered, as this side does not install a peer without allowed IPs
// (see installed). So this side starts one, kickDelay after learning of the
// switch (see reconciler.configure): adding a peer with a persistent
// keepalive sends a keepalive, which starts the handshake. Reset says the
// keepalive was set to 1 s only for that and goes back to 0. An added peer
// without an endpoint takes the replaced one's.
type kick struct {
	Key, Replaces wgtypes.Key
	Reset         bool
}

// empty reports whether the plan changes nothing.
func (p plan) empty() bool {
	return !p.Create && p.WireGuard == nil && p.MTU == 0 && !p.Up &&
		len(p.DelAddrs)+len(p.AddAddrs)+len(p.DelRoutes)+len(p.AddRoutes) == 0
}

// diff computes the plan for want, whose private key is key, given the
// device as observed (nil when it does not exist). It is pure: the same
// inputs give the same plan, and a device that matches gives an empty one.
//
// Peers are diffed one by one: new peers are added, changed ones updated in
// the fields that differ, gone ones removed. ReplacePeers is used only when
// the device is created, since it resets every session.
func diff(want wantInterface, key wgtypes.Key, have *platform.Device) plan {
	routes := wantRoutes(want)
	if have == nil {
		p := plan{Create: true, MTU: want.MTU, AddAddrs: want.Addresses, Up: true, AddRoutes: routes}
		cfg := &wgtypes.Config{PrivateKey: &key, ReplacePeers: true}
		if want.ListenPort != 0 {
			cfg.ListenPort = ptr(want.ListenPort)
		}
		for _, wp := range want.Peers {
			if installed(&wp) {
				cfg.Peers = append(cfg.Peers, newPeerConfig(wp))
			}
		}
		p.WireGuard = cfg
		return p
	}

	var p plan
	cfg := &wgtypes.Config{}
	changed := false
	if have.WireGuard.PrivateKey != key {
		cfg.PrivateKey = &key
		changed = true
	}
	if want.ListenPort != 0 && have.WireGuard.ListenPort != want.ListenPort {
		cfg.ListenPort = ptr(want.ListenPort)
		changed = true
	}
	if peers, kicks := diffPeers(want.Peers, have.WireGuard.Peers); len(peers) > 0 {
		cfg.Peers, p.Kicks = peers, kicks
		changed = true
	}
	if changed {
		p.WireGuard = cfg
	}
	if want.MTU != 0 && have.MTU != want.MTU {
		p.MTU = want.MTU
	}
	haveAddrs := sortPrefixes(slices.Clone(have.Addresses))
	p.AddAddrs = missing(want.Addresses, haveAddrs)
	for _, a := range missing(haveAddrs, want.Addresses) {
		// The OS may give a link an IPv6 link-local address; it is not ours.
		if !a.Addr().IsLinkLocalUnicast() {
			p.DelAddrs = append(p.DelAddrs, a)
		}
	}
	p.Up = !have.Up
	haveRoutes := sortPrefixes(slices.Clone(have.Routes))
	p.DelRoutes = missing(haveRoutes, routes)
	p.AddRoutes = missing(routes, haveRoutes)
	return p
}

// diffPeers returns the peer changes from have to want (sorted by key),
// in peerOrder: removals of gone peers, full
// configs of new ones, and for changed ones an UpdateOnly config carrying
// only the fields that differ; and the kicks among the new ones. Devices
// list peers in the order they were added; each is looked up in want by
// binary search.
func diffPeers(want []wantPeer, have []wgtypes.Peer) ([]wgtypes.PeerConfig, []kick) {
	matched := make([]bool, len(want))
	var out []wgtypes.PeerConfig
	var gone replaced
	for j := range have {
		hp := &have[j]
		i := sort.Search(len(want), func(i int) bool { return api.CompareKeyBytes(want[i].PublicKey, hp.PublicKey) >= 0 })
		if i == len(want) || want[i].PublicKey != hp.PublicKey || !installed(&want[i]) {
			out = append(out, wgtypes.PeerConfig{PublicKey: hp.PublicKey, Remove: true})
			gone.add(hp.PublicKey, peerPrefixes(hp.AllowedIPs))
			continue
		}
		matched[i] = true
		if pc, changed := updatePeer(want[i], hp); changed {
			out = append(out, pc)
		}
	}
	for i := range want {
		if !matched[i] && installed(&want[i]) {
			out = append(out, newPeerConfig(want[i]))
		}
	}
	slices.SortFunc(out, peerOrder)
	return out, gone.kicks(out)
}

// peerOrder orders peer changes by key (api.CompareKeyBytes), removals
// last: a peer's new key takes the allowed IPs over from the old one before
// that one goes, so that no packet meets a moment when no peer has them.
func peerOrder(a, b wgtypes.PeerConfig) int {
	switch {
	case a.Remove == b.Remove:
		return api.CompareKeyBytes(a.PublicKey, b.PublicKey)
	case a.Remove:
		return 1
	}
	return -1
}

// installed reports whether wp goes on the device. A peer without allowed
// IPs carries no traffic: it is a peer host's next key, sent during that
// host's rotation. Installed, it would answer the host's handshake right
// after its switch, and the host's packets, sent at once under the new
// session, would be dropped for want of allowed IPs until the server moves
// them; left out, the host holds its packets until this side kicks the
// new key (see kick), and none is lost.
func installed(wp *wantPeer) bool { return len(wp.AllowedIPs) > 0 }

// replaced maps the allowed IPs of the peers a plan removes to their keys.
type replaced map[netip.Prefix]wgtypes.Key

func (r *replaced) add(key wgtypes.Key, ips []netip.Prefix) {
	if len(ips) > 0 && *r == nil {
		*r = replaced{}
	}
	for _, p := range ips {
		(*r)[p] = key
	}
}

// kicks returns a kick for each peer that cfgs add with an allowed IP of a
// removed peer, and sets a 1 s keepalive on those that have none.
func (r replaced) kicks(cfgs []wgtypes.PeerConfig) []kick {
	var out []kick
	for i := range cfgs {
		pc := &cfgs[i]
		if len(r) == 0 || pc.Remove || pc.UpdateOnly || len(pc.AllowedIPs) == 0 {
			continue
		}
		old, ok := r[peerPrefixes(pc.AllowedIPs[:1])[0]]
		if !ok {
			continue
		}
		k := kick{Key: pc.PublicKey, Replaces: old}
		if pc.PersistentKeepaliveInterval == nil {
			pc.PersistentKeepaliveInterval, k.Reset = ptr(time.Second), true
		}
		out = append(out, k)
	}
	return out
}

// sameLink reports whether a and b differ at most in their peers.
func sameLink(a, b wantInterface) bool {
	return a.ID == b.ID && a.Name == b.Name && a.ListenPort == b.ListenPort && a.MTU == b.MTU &&
		slices.Equal(a.Addresses, b.Addresses)
}

// diffFrom computes the plan for want on a device that matches was, which
// differs from want in peers only (sameLink): the peers that differ, and
// the routes that their allowed IPs gain or lose. Walking the two sorted
// peer lists compares values; no device is read and nothing is allocated
// for peers that did not change. diff(want, key, device) is empty after the
// plan is applied to a device that matched was.
func diffFrom(was, want wantInterface) plan {
	var peers []wgtypes.PeerConfig
	var lost, gained []netip.Prefix // routes of the changed peers, before and after
	var gone replaced
	remove := func(wp *wantPeer) {
		if installed(wp) {
			peers = append(peers, wgtypes.PeerConfig{PublicKey: wp.PublicKey, Remove: true})
			gone.add(wp.PublicKey, wp.AllowedIPs)
		}
	}
	add := func(wp *wantPeer) {
		if installed(wp) {
			peers = append(peers, newPeerConfig(*wp))
		}
	}
	i, j := 0, 0
	for i < len(was.Peers) || j < len(want.Peers) {
		c := 0
		switch {
		case i == len(was.Peers):
			c = 1
		case j == len(want.Peers):
			c = -1
		default:
			c = api.CompareKeyBytes(was.Peers[i].PublicKey, want.Peers[j].PublicKey)
		}
		switch {
		case c < 0:
			remove(&was.Peers[i])
			lost = appendRoutes(lost, was, &was.Peers[i])
			i++
		case c > 0:
			add(&want.Peers[j])
			gained = appendRoutes(gained, want, &want.Peers[j])
			j++
		default:
			old, wp := &was.Peers[i], &want.Peers[j]
			if !samePeer(old, wp) {
				switch {
				case !installed(old):
					add(wp)
				case !installed(wp):
					remove(old)
				default:
					hp := devicePeer(old)
					if pc, changed := updatePeer(*wp, &hp); changed {
						peers = append(peers, pc)
					}
				}
				lost, gained = appendRoutes(lost, was, old), appendRoutes(gained, want, wp)
			}
			i++
			j++
		}
	}
	var p plan
	if len(peers) > 0 {
		slices.SortFunc(peers, peerOrder)
		p.WireGuard, p.Kicks = &wgtypes.Config{Peers: peers}, gone.kicks(peers)
	}
	// A route one changed peer lost may still be another peer's, which
	// then had it before and keeps it; likewise for one gained.
	lost, gained = sortPrefixes(lost), sortPrefixes(gained)
	for _, rt := range missing(lost, gained) {
		if !routedBy(want, rt) {
			p.DelRoutes = append(p.DelRoutes, rt)
		}
	}
	for _, rt := range missing(gained, lost) {
		if !routedBy(was, rt) {
			p.AddRoutes = append(p.AddRoutes, rt)
		}
	}
	return p
}

// samePeer reports whether a and b are the same desired peer.
func samePeer(a, b *wantPeer) bool {
	return a.PublicKey == b.PublicKey && a.Endpoint == b.Endpoint && a.Addr == b.Addr &&
		a.Keepalive == b.Keepalive && slices.Equal(a.AllowedIPs, b.AllowedIPs)
}

// devicePeer is the device peer that applying wp leaves (an endpoint left
// alone is unknown: none).
func devicePeer(wp *wantPeer) wgtypes.Peer {
	hp := wgtypes.Peer{PublicKey: wp.PublicKey, PersistentKeepaliveInterval: wp.Keepalive, AllowedIPs: ipNets(wp.AllowedIPs)}
	if wp.Addr.IsValid() {
		hp.Endpoint = net.UDPAddrFromAddrPort(wp.Addr)
	}
	return hp
}

// appendRoutes appends the routes peer wp of w needs (see wantRoutes).
func appendRoutes(out []netip.Prefix, w wantInterface, wp *wantPeer) []netip.Prefix {
	for _, p := range wp.AllowedIPs {
		if p.Bits() != 0 && !covered(p, w.Addresses) {
			out = append(out, p)
		}
	}
	return out
}

// routedBy reports whether a peer of w needs route rt.
func routedBy(w wantInterface, rt netip.Prefix) bool {
	for i := range w.Peers {
		if slices.Contains(w.Peers[i].AllowedIPs, rt) {
			return true
		}
	}
	return false
}

// updatePeer returns the UpdateOnly config that brings device peer hp to
// wp, and whether anything differs.
func updatePeer(wp wantPeer, hp *wgtypes.Peer) (wgtypes.PeerConfig, bool) {
	pc := wgtypes.PeerConfig{PublicKey: wp.PublicKey, UpdateOnly: true}
	changed := false
	if wp.Addr.IsValid() && udpAddrPort(hp.Endpoint) != wp.Addr {
		pc.Endpoint = net.UDPAddrFromAddrPort(wp.Addr)
		changed = true
	}
	if !sameAllowedIPs(wp.AllowedIPs, hp.AllowedIPs) {
		pc.ReplaceAllowedIPs = true
		pc.AllowedIPs = ipNets(wp.AllowedIPs)
		changed = true
	}
	if hp.PersistentKeepaliveInterval != wp.Keepalive {
		pc.PersistentKeepaliveInterval = ptr(wp.Keepalive)
		changed = true
	}
	return pc, changed
}

// newPeerConfig is the full configuration of a peer being added.
func newPeerConfig(wp wantPeer) wgtypes.PeerConfig {
	pc := wgtypes.PeerConfig{
		PublicKey:         wp.PublicKey,
		ReplaceAllowedIPs: true,
		AllowedIPs:        ipNets(wp.AllowedIPs),
	}
	if wp.Addr.IsValid() {
		pc.Endpoint = net.UDPAddrFromAddrPort(wp.Addr)
	}
	if wp.Keepalive != 0 {
		pc.PersistentKeepaliveInterval = ptr(wp.Keepalive)
	}
	return pc
}

// wantRoutes lists the routes the interface needs: every peer allowed IP
// that the interface's own address prefixes do not already cover (the OS
// adds those). Default routes (/0) are left out: sending all traffic into
// the tunnel needs policy routing so the tunnel's own packets escape it.
func wantRoutes(w wantInterface) []netip.Prefix {
	var out []netip.Prefix
	for i := range w.Peers {
		out = appendRoutes(out, w, &w.Peers[i])
	}
	return sortPrefixes(out)
}

// covered reports whether p lies inside the subnet of one of addrs.
func covered(p netip.Prefix, addrs []netip.Prefix) bool {
	for _, a := range addrs {
		if a.Addr().Is4() == p.Addr().Is4() && a.Bits() <= p.Bits() && a.Masked().Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// missing returns the elements of a (sorted) that b (sorted) lacks.
func missing(a, b []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range a {
		if _, found := slices.BinarySearchFunc(b, p, platform.ComparePrefixes); !found {
			out = append(out, p)
		}
	}
	return out
}

// udpAddrPort converts an endpoint; nil gives the zero AddrPort.
func udpAddrPort(a *net.UDPAddr) netip.AddrPort {
	if a == nil {
		return netip.AddrPort{}
	}
	ap := a.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// sameAllowedIPs reports whether a device peer's allowed IPs are want
// (sorted, masked). Devices keep the order drago gave them, so the common
// case compares in place, without converting the list.
func sameAllowedIPs(want []netip.Prefix, have []net.IPNet) bool {
	inOrder := len(want) == len(have)
	for k := 0; inOrder && k < len(have); k++ {
		p, ok := platform.Prefix(have[k])
		inOrder = ok && p.Masked() == want[k]
	}
	return inOrder || slices.Equal(want, peerPrefixes(have))
}

// peerPrefixes converts a peer's allowed IPs to sorted, masked prefixes.
func peerPrefixes(nets []net.IPNet) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(nets))
	for _, n := range nets {
		if p, ok := platform.Prefix(n); ok {
			out = append(out, p.Masked())
		}
	}
	return sortPrefixes(out)
}

func ipNets(ps []netip.Prefix) []net.IPNet {
	out := make([]net.IPNet, 0, len(ps))
	for _, p := range ps {
		out = append(out, platform.IPNet(p))
	}
	return out
}

func ptr[T any](v T) *T { return &v }
