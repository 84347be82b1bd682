package agent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/platform"
	"github.com/drago-wg/drago/server/api"
)

// wantInterface is one desired interface, checked and parsed: what the
// pure diff compares with the device.
type wantInterface struct {
	ID         string
	Name       string
	Addresses  []netip.Prefix // host bits kept, sorted, unique
	ListenPort int            // 0: any port
	MTU        int            // 0: leave the link's MTU alone
	Peers      []wantPeer     // sorted by public key (api.CompareKeyBytes), unique

	// FirewallSrc is the interface's access policy as received, nil for
	// none; Firewall is it parsed, or FirewallErr why it does not parse.
	FirewallSrc *api.DesiredFirewall
	Firewall    *platform.FirewallPolicy
	FirewallErr error
}

// wantPeer is one desired peer.
type wantPeer struct {
	PublicKey wgtypes.Key
	// Endpoint is the host:port the server gave; empty leaves the peer's
	// current (possibly roamed) endpoint alone.
	Endpoint string
	// Addr is Endpoint resolved; the zero value leaves the endpoint alone.
	Addr       netip.AddrPort
	AllowedIPs []netip.Prefix // masked, sorted, unique
	Keepalive  time.Duration
}

// parseInterface checks one desired interface from the server, taking the
// peers that did not change from cache when it is not nil. A malformed
// interface fails whole; a bad peer is only left out, and skipped says why
// (see parsedPeers.usable): one bad peer never blocks the others, nor the
// interface's addresses and routes. A malformed access policy is kept in
// w.FirewallErr: the rules in force stay, and the host reports why.
func parseInterface(d api.DesiredInterface, cache *peerCache) (w wantInterface, skipped []error, err error) {
	w = wantInterface{ID: d.ID, Name: d.Name, ListenPort: d.ListenPort, MTU: d.MTU}
	if !validID.MatchString(d.ID) {
		return w, nil, fmt.Errorf("interface id %q: want letters, digits, '_', '.', '-'", d.ID)
	}
	if err := api.CheckInterfaceName(d.Name); err != nil {
		return w, nil, err
	}
	if d.ListenPort < 0 || d.ListenPort > 65535 {
		return w, nil, fmt.Errorf("listen port %d: want 0-65535", d.ListenPort)
	}
	if d.MTU != 0 {
		if err := api.CheckMTU(d.MTU); err != nil {
			return w, nil, fmt.Errorf("mtu: %w", err)
		}
	}
	for _, a := range d.Addresses {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return w, nil, fmt.Errorf("address %q: %w", a, err)
		}
		w.Addresses = append(w.Addresses, p)
	}
	w.Addresses = sortPrefixes(w.Addresses)
	w.FirewallSrc = d.Firewall
	w.Firewall, w.FirewallErr = platform.ParseFirewall(d.Firewall)
	w.Peers, skipped = cache.parsePeers(d).usable()
	return w, skipped, nil
}

func parsePeer(d api.DesiredPeer) (wantPeer, error) {
	var p wantPeer
	k, err := wgtypes.ParseKey(d.PublicKey)
	if err != nil {
		return p, errors.New("invalid public key")
	}
	p.PublicKey = k
	if d.Endpoint != "" {
		host, port, err := net.SplitHostPort(d.Endpoint)
		if err != nil {
			return p, fmt.Errorf("endpoint %q: %w", d.Endpoint, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || host == "" {
			return p, fmt.Errorf("endpoint %q: want host:port", d.Endpoint)
		}
		p.Endpoint = d.Endpoint
		if ap, err := netip.ParseAddrPort(d.Endpoint); err == nil {
			p.Addr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
	}
	for _, a := range d.AllowedIPs {
		pr, err := netip.ParsePrefix(a)
		if err != nil {
			return p, fmt.Errorf("allowed ip %q: %w", a, err)
		}
		p.AllowedIPs = append(p.AllowedIPs, pr.Masked())
	}
	p.AllowedIPs = sortPrefixes(p.AllowedIPs)
	if d.PersistentKeepalive < 0 || d.PersistentKeepalive > 65535 {
		return p, fmt.Errorf("persistent keepalive %d: want 0-65535", d.PersistentKeepalive)
	}
	p.Keepalive = time.Duration(d.PersistentKeepalive) * time.Second
	return p, nil
}

// desiredSet is a desired state split into the interfaces to configure and
// the ids of those skipped because the server sent them malformed; skipped
// interfaces are left exactly as they are. The interfaces to configure
// lack the peers listed in SkippedPeers.
type desiredSet struct {
	Interfaces   []wantInterface
	Skipped      map[string]bool // interface id -> true
	Errors       []error         // why each interface was skipped
	SkippedPeers []error         // why each peer left out was
}

// parseState checks a desired state. A malformed interface, or one whose id
// or name repeats an earlier one, is skipped with an error; a bad peer is
// left out of its interface with an error. Neither fails the whole state.
func parseState(ds *api.DesiredState, cache *peerCache) desiredSet {
	set := desiredSet{Skipped: map[string]bool{}}
	ids, names := map[string]bool{}, map[string]bool{}
	cache.begin()
	defer cache.end()
	for _, d := range ds.Interfaces {
		w, skipped, err := parseInterface(d, cache)
		switch {
		case err != nil:
		case ids[w.ID]:
			err = errors.New("interface id listed twice")
		case names[w.Name]:
			err = fmt.Errorf("interface name %q used twice", w.Name)
		}
		if err != nil {
			set.Skipped[d.ID] = true
			set.Errors = append(set.Errors, fmt.Errorf("interface %q (%s): %w", d.ID, d.Name, err))
			continue
		}
		for _, err := range skipped {
			set.SkippedPeers = append(set.SkippedPeers, fmt.Errorf("interface %q (%s): %w", d.ID, d.Name, err))
		}
		ids[w.ID], names[w.Name] = true, true
		set.Interfaces = append(set.Interfaces, w)
	}
	return set
}

// peerCache keeps each interface's peers of the last parse, as received
// and as parsed, so that a new state that changed a few peers of a large
// interface parses only those. A nil *peerCache parses everything.
type peerCache struct {
	last, next map[string]parsedPeers // interface id -> its peers
}

// parsedPeers are an interface's peers as received (src) and, those that
// parse, parsed and sorted by key (sorted, with pos[i] the place of src[i]
// in it, or -1 when src[i] is malformed); bad lists the malformed ones in
// the order of src.
type parsedPeers struct {
	src    []api.DesiredPeer
	sorted []wantPeer
	pos    []int32
	bad    []badPeer
}

// badPeer is a malformed peer: why, and the key it claims, if it has one.
type badPeer struct {
	key    wgtypes.Key
	hasKey bool
	err    error
}

// newBadPeer records dp, which parsePeer refused with err.
func newBadPeer(dp api.DesiredPeer, err error) badPeer {
	k, kerr := wgtypes.ParseKey(dp.PublicKey)
	return badPeer{key: k, hasKey: kerr == nil,
		err: fmt.Errorf("peer %q (interface_id %q): %w", dp.PublicKey, dp.InterfaceID, err)}
}

func (c *peerCache) begin() {
	if c != nil {
		c.next = make(map[string]parsedPeers, len(c.last))
	}
}

// end keeps the peers of this parse, dropping the others.
func (c *peerCache) end() {
	if c != nil {
		c.last, c.next = c.next, nil
	}
}

// parsePeers parses the peers of d; the result is shared with the cache
// and must not be modified. The server sends peers ordered by
// api.ComparePeers, so a walk in step with the last parse finds the
// unchanged ones; when the keys are the same as last time (only allowed
// IPs, endpoints or keepalives changed), so is the order, and the changed
// peers are put in place of their old versions.
func (c *peerCache) parsePeers(d api.DesiredInterface) parsedPeers {
	var prev parsedPeers
	if c != nil {
		prev = c.last[d.ID]
	}
	next, ok := prev.sameKeys(d.Peers)
	if !ok {
		next = prev.reorder(d.Peers)
	}
	if c != nil {
		c.next[d.ID] = next
	}
	return next
}

// sameKeys parses peers, which list the same keys in the same order as
// prev.src, as prev with the changed peers replaced. It reports false when
// the keys differ, or when a changed peer is or was malformed, which
// changes the number of peers kept: reorder places those.
func (prev parsedPeers) sameKeys(peers []api.DesiredPeer) (parsedPeers, bool) {
	if prev.sorted == nil || len(prev.src) != len(peers) {
		return parsedPeers{}, false
	}
	type change struct {
		at int32
		p  wantPeer
	}
	var changed []change
	for k, dp := range peers {
		if prev.src[k].PublicKey != dp.PublicKey {
			return parsedPeers{}, false
		}
		if sameDesiredPeer(prev.src[k], dp) {
			continue
		}
		at := prev.pos[k]
		if at < 0 {
			return parsedPeers{}, false
		}
		p, err := parsePeer(dp)
		if err != nil {
			return parsedPeers{}, false
		}
		changed = append(changed, change{at, p})
	}
	next := parsedPeers{src: peers, sorted: prev.sorted, pos: prev.pos, bad: prev.bad}
	if len(changed) > 0 {
		next.sorted = slices.Clone(prev.sorted)
		for _, ch := range changed {
			next.sorted[ch.at] = ch.p
		}
	}
	return next, true
}

// reorder parses peers, reusing the peers of prev that are unchanged: the
// parsed ones, sorted, are merged into the kept ones, which are in order.
func (prev parsedPeers) reorder(peers []api.DesiredPeer) parsedPeers {
	type fresh struct {
		k int32 // index in peers
		p wantPeer
	}
	const (
		isParsed    = -1
		isMalformed = -2
	)
	var parsed []fresh
	var bad []badPeer
	kept := make([]bool, len(prev.sorted))
	from := make([]int32, len(peers)) // index in prev.sorted, isParsed or isMalformed
	j := 0
	for k, dp := range peers {
		for j < len(prev.src) && api.ComparePeers(prev.src[j], dp) < 0 {
			j++
		}
		if j < len(prev.src) && prev.pos[j] >= 0 && sameDesiredPeer(prev.src[j], dp) {
			from[k], kept[prev.pos[j]] = prev.pos[j], true
			j++ // each old entry is reused once: one listed twice is matched or parsed twice
			continue
		}
		// A peer that was malformed is parsed again: it is rare, and its
		// error is reported at every parse.
		p, err := parsePeer(dp)
		if err != nil {
			from[k] = isMalformed
			bad = append(bad, newBadPeer(dp, err))
			continue
		}
		from[k] = isParsed
		parsed = append(parsed, fresh{int32(k), p})
	}
	order := make([]int32, len(parsed)) // parsed, sorted by key
	for f := range order {
		order[f] = int32(f)
	}
	slices.SortFunc(order, func(a, b int32) int { return api.CompareKeyBytes(parsed[a].p.PublicKey, parsed[b].p.PublicKey) })

	// Kept peers are copied in runs: one copy per run between changes
	// rather than one per peer.
	next := parsedPeers{src: peers, sorted: make([]wantPeer, 0, len(peers)), pos: make([]int32, len(peers)), bad: bad}
	moved := make([]int32, len(prev.sorted)) // index in prev.sorted -> in next.sorted
	i := 0
	for f := 0; f <= len(order); f++ {
		end := len(prev.sorted) // the kept peers before parsed[order[f]]
		if f < len(order) {
			key := parsed[order[f]].p.PublicKey
			end = i + sort.Search(end-i, func(n int) bool { return api.CompareKeyBytes(prev.sorted[i+n].PublicKey, key) >= 0 })
		}
		for i < end {
			run := i
			for i < end && kept[i] {
				moved[i] = int32(len(next.sorted) + i - run)
				i++
			}
			next.sorted = append(next.sorted, prev.sorted[run:i]...)
			for i < end && !kept[i] {
				i++
			}
		}
		if f < len(order) {
			pf := &parsed[order[f]]
			next.pos[pf.k] = int32(len(next.sorted))
			next.sorted = append(next.sorted, pf.p)
		}
	}
	for k, at := range from {
		switch {
		case at >= 0:
			next.pos[k] = moved[at]
		case at == isMalformed:
			next.pos[k] = -1
		}
	}
	return next
}

// usable returns the peers of pp that can be configured, sorted by key,
// and why the others cannot: a malformed peer is left out, and so is every
// peer whose public key is listed more than once, malformed entries
// included. WireGuard holds one peer per key. A peer rotating its key is
// listed twice, but under two keys, its current and next ones (see
// api.DesiredPeer); one key listed twice means that an interface or device
// reported the key of another (the server refuses that, but the agent does
// not count on it). Which one holds the private key cannot be told, so
// none is trusted: keeping one could give an impostor the allowed IPs and
// endpoint of the other. The result shares pp.sorted when nothing is left
// out.
func (pp parsedPeers) usable() ([]wantPeer, []error) {
	var errs []error
	var drop []bool // by index in pp.sorted; nil when none is dropped
	mark := func(i int) {
		if drop == nil {
			drop = make([]bool, len(pp.sorted))
		}
		drop[i] = true
	}
	for i := 1; i < len(pp.sorted); i++ {
		if pp.sorted[i].PublicKey == pp.sorted[i-1].PublicKey {
			mark(i - 1)
			mark(i)
		}
	}
	for _, bp := range pp.bad {
		errs = append(errs, bp.err)
		if !bp.hasKey {
			continue
		}
		i, _ := slices.BinarySearchFunc(pp.sorted, bp.key, func(p wantPeer, k wgtypes.Key) int { return api.CompareKeyBytes(p.PublicKey, k) })
		for ; i < len(pp.sorted) && pp.sorted[i].PublicKey == bp.key; i++ {
			mark(i)
		}
	}
	if drop == nil {
		return pp.sorted, errs
	}

	// Name every entry of each key dropped, in the order of src.
	claims := map[wgtypes.Key][]string{} // key -> interface ids listing it
	nbad := 0
	for k, at := range pp.pos {
		var key wgtypes.Key
		if at >= 0 {
			if !drop[at] {
				continue
			}
			key = pp.sorted[at].PublicKey
		} else {
			bp := pp.bad[nbad]
			nbad++
			if !bp.hasKey {
				continue
			}
			key = bp.key
		}
		claims[key] = append(claims[key], pp.src[k].InterfaceID)
	}
	out := make([]wantPeer, 0, len(pp.sorted))
	for i, p := range pp.sorted {
		if !drop[i] {
			out = append(out, p)
			continue
		}
		if i == 0 || pp.sorted[i-1].PublicKey != p.PublicKey {
			errs = append(errs, fmt.Errorf("peer %s: public key listed by %d peers (interface_id %q): none is applied",
				p.PublicKey, len(claims[p.PublicKey]), claims[p.PublicKey]))
		}
	}
	return out, errs
}

func sameDesiredPeer(a, b api.DesiredPeer) bool {
	return a.InterfaceID == b.InterfaceID && a.PublicKey == b.PublicKey && a.Endpoint == b.Endpoint &&
		a.PersistentKeepalive == b.PersistentKeepalive && slices.Equal(a.AllowedIPs, b.AllowedIPs)
}

// sortPrefixes sorts ps by address then length and drops duplicates.
func sortPrefixes(ps []netip.Prefix) []netip.Prefix {
	slices.SortFunc(ps, platform.ComparePrefixes)
	return slices.Compact(ps)
}
