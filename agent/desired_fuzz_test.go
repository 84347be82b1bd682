package agent

import (
	"bytes"
	"encoding/json"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/server/api"
)

// fuzzKeys are the public keys fuzzStates draws from: six keys, an alias
// of the first (the same bytes in base64 with non-zero padding bits) and
// one that is no key.
var fuzzKeys = func() []string {
	var out []string
	for n := range byte(6) {
		out = append(out, peerKey(n).String())
	}
	alias := []byte(out[0])
	alias[42]++ // the last character before '=' carries two padding bits
	return append(out, string(alias), "not a key")
}()

// fuzzVariants are the other fields of a desired peer, valid and not.
var fuzzVariants = []api.DesiredPeer{
	{Endpoint: "192.0.2.1:51820", AllowedIPs: []string{"10.0.0.1/32"}},
	{Endpoint: "192.0.2.1:1", PersistentKeepalive: 25, AllowedIPs: []string{}}, // a next key
	{AllowedIPs: []string{"10.0.0.0/8", "10.0.0.5/8", "::/0", "10.1.0.0/16"}, PersistentKeepalive: 25},
	{AllowedIPs: []string{"nope"}},
	{Endpoint: "host.example:0", AllowedIPs: []string{"10.0.0.2/32"}},
	{Endpoint: "[fe80::1%eth0]:51820", AllowedIPs: []string{"fd00::1/128", "fd00::1/128"}},
	{PersistentKeepalive: 70000, AllowedIPs: []string{"10.0.0.3/32"}},
	{Endpoint: "example.com:443", AllowedIPs: []string{"192.168.0.0/16"}, PersistentKeepalive: 1},
}

// fuzzStates turns data into a succession of desired states of two
// interfaces. Bytes go in pairs: (0xff, h) starts the next state, h
// choosing if-b's name, port, MTU and addresses; (k, v) adds a peer to
// if-a or if-b (bit 7 of k), of interface id k>>3&3, key fuzzKeys[k&7],
// fields fuzzVariants[v&7], in the server's order (api.ComparePeers)
// unless bit 6 of k is set.
func fuzzStates(data []byte) []*api.DesiredState {
	names := []string{"wg1", "wg0", "bad name", ""}
	ports := []int{51821, 0, -1, 65536}
	mtus := []int{0, 1420, 100, 70000}
	addrs := [][]string{{"10.0.0.9/24"}, {"fd00::9/64", "10.0.0.9/24", "10.0.0.9/24"}, {}, {"10.0.0.9"}}
	newState := func(h byte) *api.DesiredState {
		return &api.DesiredState{Index: 1, HostID: "h", Interfaces: []api.DesiredInterface{
			{ID: "if-a", Name: "wg0", ListenPort: 51820, Addresses: []string{"10.0.0.8/24"}},
			{ID: "if-b", Name: names[h&3], ListenPort: ports[h>>2&3], MTU: mtus[h>>4&3], Addresses: addrs[h>>6]},
		}}
	}
	var out []*api.DesiredState
	ds, sorted := newState(0), true
	flush := func() {
		if sorted {
			for k := range ds.Interfaces {
				slices.SortFunc(ds.Interfaces[k].Peers, api.ComparePeers)
			}
		}
		out = append(out, ds)
	}
	for len(data) >= 2 && len(out) < 8 {
		k, v := data[0], data[1]
		data = data[2:]
		if k == 0xff {
			flush()
			ds, sorted = newState(v), true
			continue
		}
		p := fuzzVariants[v&7]
		p.AllowedIPs = slices.Clone(p.AllowedIPs)
		p.InterfaceID = []string{"a", "b", "c", "z"}[k>>3&3]
		p.PublicKey = fuzzKeys[k&7]
		sorted = sorted && k&0x40 == 0
		i := &ds.Interfaces[k>>7]
		i.Peers = append(i.Peers, p)
	}
	flush()
	return out
}

// FuzzParseState parses successions of desired states with the peer cache
// and without, and checks the result: the two parses agree; each interface
// is configured or skipped; a configured one has valid, unique id and name,
// sorted unique addresses, and exactly the peers whose key is listed once
// and that parse, sorted by key, with masked, sorted, unique allowed IPs and
// no endpoint or keepalive when they have none.
func FuzzParseState(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 2, 0, 0x80 | 3, 0, 0xff, 0, 0, 0, 1, 2, 2, 0})
	f.Add([]byte{0, 0, 1, 0, 0xff, 0, 0, 0, 1, 1, 0xff, 0, 0, 0, 1, 1, 8 | 2, 0})
	f.Add([]byte{0, 0, 6, 0, 1, 0, 0xff, 0, 1, 0, 6, 0})                                     // an alias of a key
	f.Add([]byte{0, 0, 7, 0, 8 | 1, 3, 0xff, 0, 0, 0, 8 | 1, 0, 0xff, 1, 0, 0})              // malformed, then fixed
	f.Add([]byte{0, 0, 0, 0, 1, 0, 0xff, 0, 0, 0, 1, 0, 0xff, 0, 1, 0})                      // an entry listed twice
	f.Add([]byte{0x40 | 3, 0, 0, 0, 2, 0, 0xff, 0, 2, 0, 0x40 | 0, 0, 0x40 | 3, 0})          // out of order
	f.Add([]byte{0x80, 4, 0x81, 5, 0x82, 6, 0x83, 7, 0xff, 0x55, 0x80, 4, 0xff, 0xaa, 0, 2}) // bad interface b
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := cmp.Options{cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
			cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }),
			cmp.Comparer(func(a, b error) bool { return (a == nil) == (b == nil) && (a == nil || a.Error() == b.Error()) })}
		var cache peerCache
		for n, ds := range fuzzStates(data) {
			want, got := parseState(ds, nil), parseState(ds, &cache)
			if d := cmp.Diff(want, got, opts); d != "" {
				t.Fatalf("state %d: cached parse (-fresh +cached):\n%s", n, d)
			}
			if err := checkParsed(ds, got); err != "" {
				b, _ := json.Marshal(ds)
				t.Fatalf("state %d: %s\n%s", n, err, b)
			}
		}
	})
}

// checkParsed checks the parse of ds; it returns what is wrong, or "".
func checkParsed(ds *api.DesiredState, set desiredSet) string {
	configured := map[string]wantInterface{}
	names := map[string]bool{}
	for _, w := range set.Interfaces {
		if _, dup := configured[w.ID]; dup || names[w.Name] || api.CheckInterfaceName(w.Name) != nil || set.Skipped[w.ID] {
			return "interface " + w.ID + " (" + w.Name + "): configured twice, skipped too, or a bad name"
		}
		configured[w.ID], names[w.Name] = w, true
		if !slices.IsSortedFunc(w.Addresses, fzComparePrefix) || len(slices.Compact(slices.Clone(w.Addresses))) != len(w.Addresses) {
			return "interface " + w.ID + ": addresses not sorted and unique"
		}
	}
	for _, d := range ds.Interfaces {
		w, ok := configured[d.ID]
		if ok == set.Skipped[d.ID] {
			return "interface " + d.ID + ": configured " + strconv.FormatBool(ok) + ", skipped " + strconv.FormatBool(set.Skipped[d.ID])
		}
		if !ok {
			continue
		}
		// The peers a key listed once gives, as parsePeer reads them.
		byKey := map[wgtypes.Key][]api.DesiredPeer{}
		for _, p := range d.Peers {
			if k, err := wgtypes.ParseKey(p.PublicKey); err == nil {
				byKey[k] = append(byKey[k], p)
			}
		}
		var want []wantPeer
		for _, entries := range byKey {
			if len(entries) != 1 {
				continue
			}
			if p, err := parsePeer(entries[0]); err == nil {
				want = append(want, p)
			}
		}
		slices.SortFunc(want, func(a, b wantPeer) int { return fzCompareKeys(a.PublicKey, b.PublicKey) })
		if diff := cmp.Diff(want, w.Peers, cmpopts.EquateEmpty(), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
			cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
			return "interface " + d.ID + ": peers (-keys listed once that parse +configured):\n" + diff
		}
		for i, p := range w.Peers {
			switch {
			case i > 0 && fzCompareKeys(w.Peers[i-1].PublicKey, p.PublicKey) >= 0:
				return "peers not sorted by key, or a key twice"
			case !slices.IsSortedFunc(p.AllowedIPs, fzComparePrefix) || len(slices.Compact(slices.Clone(p.AllowedIPs))) != len(p.AllowedIPs):
				return "allowed IPs of " + p.PublicKey.String() + " not sorted and unique"
			case slices.ContainsFunc(p.AllowedIPs, func(a netip.Prefix) bool { return !a.IsValid() || a != a.Masked() }):
				return "allowed IPs of " + p.PublicKey.String() + " not masked"
			case p.Keepalive < 0 || p.Keepalive.Seconds() > 65535 || p.Keepalive%1e9 != 0:
				return "keepalive of " + p.PublicKey.String() + " out of range"
			case p.Endpoint != "" && !endpointOK(p.Endpoint):
				return "endpoint " + p.Endpoint
			case p.Addr.IsValid() && (p.Addr.Addr().Is4In6() || p.Addr.Port() == 0):
				return "endpoint address " + p.Addr.String()
			}
		}
	}
	return ""
}

func endpointOK(s string) bool {
	host, port, err := net.SplitHostPort(s)
	n, perr := strconv.Atoi(port)
	return err == nil && host != "" && perr == nil && n >= 1 && n <= 65535
}

// fzCompareKeys and fzComparePrefix are the orders the parse promises:
// keys by their bytes, prefixes by address then length.
func fzCompareKeys(a, b wgtypes.Key) int { return bytes.Compare(a[:], b[:]) }

func fzComparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
