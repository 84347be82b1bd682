package server

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/server/api"
)

// Nothing in Drago parses wg-quick files: the server renders them
// (GET /interfaces/{id}/config) and the CLI only swaps the private key
// placeholder in. So the fuzz targets check the renderer instead: after any
// request, every interface's config must parse as wg-quick reads it, with
// no key beyond those Drago writes (a newline smuggled into a name or an
// address would add one, e.g. PostUp, which wg-quick runs as root), and say
// what the state says.

// wgQuickSection is one [Interface] or [Peer] section: each key's value.
type wgQuickSection map[string]string

// wgQuickKeys are the keys Drago writes, per section.
var wgQuickKeys = map[string][]string{
	"Interface": {"PrivateKey", "Address", "ListenPort", "MTU", "DNS"},
	"Peer":      {"PublicKey", "AllowedIPs", "Endpoint", "PersistentKeepalive"},
}

// parseWGQuick parses a config as wg-quick(8) does (a '#' starts a comment
// anywhere on a line; "Key = Value"; sections [Interface] then [Peer]), and
// refuses keys Drago does not write and repeated keys.
func parseWGQuick(text string) (iface wgQuickSection, peers []wgQuickSection, err error) {
	var cur wgQuickSection
	for n, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			continue
		case strings.EqualFold(line, "[Interface]"):
			if iface != nil || peers != nil {
				return nil, nil, fmt.Errorf("line %d: a second or late [Interface]", n+1)
			}
			iface = wgQuickSection{}
			cur = iface
			continue
		case strings.EqualFold(line, "[Peer]"):
			if iface == nil {
				return nil, nil, fmt.Errorf("line %d: [Peer] before [Interface]", n+1)
			}
			cur = wgQuickSection{}
			peers = append(peers, cur)
			continue
		case cur == nil:
			return nil, nil, fmt.Errorf("line %d: %q outside a section", n+1, line)
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, nil, fmt.Errorf("line %d: %q is not key = value", n+1, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		section := "Peer"
		if len(peers) == 0 {
			section = "Interface"
		}
		if !slices.Contains(wgQuickKeys[section], k) {
			return nil, nil, fmt.Errorf("line %d: key %q in [%s]", n+1, k, section)
		}
		if _, dup := cur[k]; dup {
			return nil, nil, fmt.Errorf("line %d: %s repeated", n+1, k)
		}
		cur[k] = v
	}
	if iface == nil {
		return nil, nil, errors.New("no [Interface]")
	}
	return iface, peers, nil
}

// splitList splits a wg-quick list value ("a, b").
func splitList(v string) []string {
	if v == "" {
		return nil
	}
	out := strings.Split(v, ",")
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	return out
}

// wantPeer is a peer as the wg-quick config and the desired state both say.
type wantPeer struct {
	Key, AllowedIPs, Endpoint string
	Keepalive                 int
}

func comparePeers(a, b wantPeer) int {
	return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.AllowedIPs, b.AllowedIPs), strings.Compare(a.Endpoint, b.Endpoint), a.Keepalive-b.Keepalive)
}

// checkEndpoint reports whether s is a host:port WireGuard can dial.
func checkEndpoint(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || host == "" {
		return fmt.Errorf("endpoint %q: want host:port", s)
	}
	return nil
}

// checkWGQuick checks the config of interface i of network n; peers are
// the peers the desired state gives i (nil for a device: not checked).
func checkWGQuick(text string, i api.Interface, n api.Network, peers []api.DesiredPeer) error {
	iface, got, err := parseWGQuick(text)
	if err != nil {
		return err
	}
	if iface["PrivateKey"] == "" {
		return errors.New("no PrivateKey")
	}
	if a := splitList(iface["Address"]); !slices.Equal(a, i.Addresses) {
		return fmt.Errorf("Address %q, want %q", a, i.Addresses)
	}
	if i.DeviceName == "" && iface["ListenPort"] != strconv.Itoa(i.ListenPort) {
		return fmt.Errorf("ListenPort %q, want %d", iface["ListenPort"], i.ListenPort)
	}
	if iface["MTU"] != strconv.Itoa(i.MTU) {
		return fmt.Errorf("MTU %q, want %d", iface["MTU"], i.MTU)
	}
	if d := splitList(iface["DNS"]); !slices.Equal(d, n.DNS) {
		return fmt.Errorf("DNS %q, want %q", d, n.DNS)
	}
	var have []wantPeer
	for _, p := range got {
		if _, err := wgtypes.ParseKey(p["PublicKey"]); err != nil {
			return fmt.Errorf("peer PublicKey %q: %v", p["PublicKey"], err)
		}
		for _, a := range splitList(p["AllowedIPs"]) {
			if _, err := netip.ParsePrefix(a); err != nil {
				return fmt.Errorf("peer %s: AllowedIPs: %v", p["PublicKey"], err)
			}
		}
		if e := p["Endpoint"]; e != "" {
			if err := checkEndpoint(e); err != nil {
				return fmt.Errorf("peer %s: %v", p["PublicKey"], err)
			}
		}
		ka := 0
		if s, ok := p["PersistentKeepalive"]; ok {
			if ka, err = strconv.Atoi(s); err != nil || ka < 1 || ka > 65535 {
				return fmt.Errorf("peer %s: PersistentKeepalive %q", p["PublicKey"], s)
			}
		}
		have = append(have, wantPeer{p["PublicKey"], p["AllowedIPs"], p["Endpoint"], ka})
	}
	if peers == nil {
		return nil
	}
	var want []wantPeer
	for _, p := range peers {
		if len(p.AllowedIPs) > 0 { // not the next key of a rotating peer
			want = append(want, wantPeer{p.PublicKey, strings.Join(p.AllowedIPs, ", "), p.Endpoint, p.PersistentKeepalive})
		}
	}
	slices.SortFunc(have, comparePeers)
	slices.SortFunc(want, comparePeers)
	if !slices.Equal(have, want) {
		return fmt.Errorf("peers %+v, the desired state says %+v", have, want)
	}
	return nil
}

// agentIfaceName is what the agent accepts as an interface name.
var agentIfaceName = regexp.MustCompile(`^[A-Za-z0-9_.=-]{1,15}$`)

// checkDesired checks a host's desired state as the agent will read it:
// every interface and peer valid, each interface's peers in the server's
// order (api.ComparePeers, which deltas rely on) with no key twice.
func checkDesired(ds *api.DesiredState) error {
	for _, d := range ds.Interfaces {
		if !agentIfaceName.MatchString(d.Name) {
			return fmt.Errorf("interface %s: name %q", d.ID, d.Name)
		}
		if d.ListenPort < 0 || d.ListenPort > 65535 || (d.MTU != 0 && (d.MTU < 576 || d.MTU > 65535)) {
			return fmt.Errorf("interface %s: port %d, mtu %d", d.ID, d.ListenPort, d.MTU)
		}
		for _, a := range d.Addresses {
			if _, err := netip.ParsePrefix(a); err != nil {
				return fmt.Errorf("interface %s: %v", d.ID, err)
			}
		}
		if !slices.IsSortedFunc(d.Peers, api.ComparePeers) {
			return fmt.Errorf("interface %s: peers not in order", d.ID)
		}
		keys := map[wgtypes.Key]string{}
		for _, p := range d.Peers {
			k, err := wgtypes.ParseKey(p.PublicKey)
			if err != nil {
				return fmt.Errorf("interface %s: peer %s: key %q", d.ID, p.InterfaceID, p.PublicKey)
			}
			if k.String() != p.PublicKey {
				return fmt.Errorf("interface %s: peer %s: key %q is not in canonical base64 (%s)", d.ID, p.InterfaceID, p.PublicKey, k)
			}
			if o, dup := keys[k]; dup {
				return fmt.Errorf("interface %s: peer key %s listed twice (%s, %s): the agent leaves both out", d.ID, k, o, p.PublicKey)
			}
			keys[k] = p.PublicKey
			if p.Endpoint != "" {
				if err := checkEndpoint(p.Endpoint); err != nil {
					return fmt.Errorf("interface %s: peer %s: %v", d.ID, p.InterfaceID, err)
				}
			}
			for _, a := range p.AllowedIPs {
				if _, err := netip.ParsePrefix(a); err != nil {
					return fmt.Errorf("interface %s: peer %s: %v", d.ID, p.InterfaceID, err)
				}
			}
			if p.PersistentKeepalive < 0 || p.PersistentKeepalive > 65535 {
				return fmt.Errorf("interface %s: peer %s: keepalive %d", d.ID, p.InterfaceID, p.PersistentKeepalive)
			}
		}
	}
	return nil
}

// checkPrefix reports whether s is a valid prefix with no host bits.
func checkPrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, err
	}
	if p != p.Masked() {
		return p, fmt.Errorf("%s has host bits set", s)
	}
	return p, nil
}

// checkInvariants checks the whole state as clients read it: ranges and
// prefixes valid and masked, addresses inside their network's range and
// unique, every host's desired state valid, and every wg-quick config
// parseable and equal to the state.
func (fs *fuzzServer) checkInvariants() {
	t := fs.t
	t.Helper()
	var nets api.List[api.Network]
	var ifaces, devs api.List[api.Interface]
	fs.get("/networks?limit=1000", &nets)
	fs.get("/interfaces?limit=1000", &ifaces)
	fs.get("/devices?limit=1000", &devs)
	byID := map[string]api.Network{}
	var ranges []netip.Prefix
	for _, n := range nets.Items {
		byID[n.ID] = n
		for _, r := range []string{n.IPv4Range, n.IPv6Range} {
			if r == "" {
				continue
			}
			p, err := checkPrefix(r)
			if err != nil {
				t.Fatalf("network %s: range: %v", n.Name, err)
			}
			for _, o := range ranges {
				if o.Overlaps(p) {
					t.Fatalf("network %s: range %s overlaps %s", n.Name, p, o)
				}
			}
			ranges = append(ranges, p)
		}
		for _, d := range n.DNS {
			if _, err := netip.ParseAddr(d); err != nil {
				t.Fatalf("network %s: dns: %v", n.Name, err)
			}
		}
	}
	all := append(slices.Clone(ifaces.Items), devs.Items...)
	used := map[netip.Addr]string{}
	for _, i := range all {
		n, ok := byID[i.NetworkID]
		if !ok {
			t.Fatalf("interface %s: network %s not listed", i.ID, i.NetworkID)
		}
		fam := map[bool]bool{}
		for _, a := range i.Addresses {
			p, err := netip.ParsePrefix(a)
			if err != nil {
				t.Fatalf("interface %s: address: %v", i.ID, err)
			}
			r := n.IPv4Range
			if p.Addr().Is6() {
				r = n.IPv6Range
			}
			if r == "" || !netip.MustParsePrefix(r).Contains(p.Addr()) || netip.MustParsePrefix(r).Bits() != p.Bits() {
				t.Fatalf("interface %s: address %s outside network %s's range %q", i.ID, a, n.Name, r)
			}
			if fam[p.Addr().Is4()] {
				t.Fatalf("interface %s: two addresses of one family: %q", i.ID, i.Addresses)
			}
			fam[p.Addr().Is4()] = true
			if o, dup := used[p.Addr()]; dup {
				t.Fatalf("address %s of interface %s is also interface %s's", p.Addr(), i.ID, o)
			}
			used[p.Addr()] = i.ID
		}
		for _, s := range i.RoutedSubnets {
			if _, err := checkPrefix(s); err != nil {
				t.Fatalf("interface %s: routed subnet: %v", i.ID, err)
			}
		}
	}
	// Desired states of the hosts whose credentials the fixture holds.
	desired := map[string][]api.DesiredPeer{} // interface id -> peers
	for _, ph := range []string{"h1", "h2"} {
		resp := fs.do("GET", "/agent/config", "", fs.creds[ph], "")
		if resp.status == http.StatusNotFound {
			continue // deleted
		}
		var ds api.DesiredState
		if resp.status != http.StatusOK || decodeStrict(resp.body, &ds) != nil {
			t.Fatalf("desired state of %s: %d %s", ph, resp.status, resp.body)
		}
		if err := checkDesired(&ds); err != nil {
			t.Fatalf("desired state of %s: %v\n%s", ph, err, resp.body)
		}
		for _, d := range ds.Interfaces {
			desired[d.ID] = d.Peers
		}
	}
	// Peering is mutual.
	for id, peers := range desired {
		for _, p := range peers {
			if back, ok := desired[p.InterfaceID]; ok && len(p.AllowedIPs) > 0 &&
				!slices.ContainsFunc(back, func(q api.DesiredPeer) bool { return q.InterfaceID == id }) {
				t.Fatalf("interface %s peers with %s, but not the other way", id, p.InterfaceID)
			}
		}
	}
	for _, i := range all {
		resp := fs.do("GET", "/interfaces/"+i.ID+"/config", "", fs.root, "")
		if resp.status != http.StatusOK {
			t.Fatalf("config of %s: %d %s", i.ID, resp.status, resp.body)
		}
		peers, ok := desired[i.ID]
		if ok && peers == nil {
			peers = []api.DesiredPeer{}
		}
		if err := checkWGQuick(string(resp.body), i, byID[i.NetworkID], peers); err != nil {
			t.Fatalf("wg-quick config of %s: %v\n%s", i.ID, err, resp.body)
		}
	}
}
