//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/server/api"
)

var ctx = context.Background()

// meshLab starts a server and n hosts joined to one dual-stack mesh network.
func meshLab(t testing.TB, prefix string, n int, topology string) (*lab, *api.Network, []*host) {
	l := newLab(t, prefix)
	c := l.client()
	nw, err := c.CreateNetwork(ctx, &api.Network{Name: "lab", IPv4Range: "10.42.0.0/24", IPv6Range: "fd42::/64", Topology: topology})
	if err != nil {
		t.Fatal(err)
	}
	jt, err := c.CreateJoinToken(ctx, &api.JoinToken{Name: "lab", Networks: []string{"lab"}})
	if err != nil {
		t.Fatal(err)
	}
	var hosts []*host
	for i := 1; i <= n; i++ {
		hosts = append(hosts, l.addHost(fmt.Sprintf("h%d", i), jt.Secret))
	}
	l.waitRegistered(n)
	return l, nw, hosts
}

// overlay returns the host's overlay addresses (IPv4, IPv6) in network lab.
func (l *lab) overlay(h *host) (v4, v6 string) {
	hv, err := l.client().Host(ctx, h.name)
	if err != nil {
		l.t.Fatal(err)
	}
	list, err := l.client().Interfaces(ctx, api.ListOptions{Host: hv.ID})
	if err != nil || len(list.Items) == 0 {
		l.t.Fatalf("interfaces of %s: %v", h.name, err)
	}
	for _, a := range list.Items[0].Addresses {
		p := netip.MustParsePrefix(a)
		if p.Addr().Is4() {
			v4 = p.Addr().String()
		} else {
			v6 = p.Addr().String()
		}
	}
	return v4, v6
}

// TestMeshPingsAndMatchesDesiredState: 4 hosts in a mesh ping each other
// over IPv4 and IPv6, and wg show reports exactly the desired peers.
func TestMeshPingsAndMatchesDesiredState(t *testing.T) {
	l, _, hosts := meshLab(t, "dgm", 4, api.TopologyMesh)
	for _, a := range hosts {
		for _, b := range hosts {
			if a == b {
				continue
			}
			v4, v6 := l.overlay(b)
			for _, addr := range []string{v4, v6} {
				eventually(t, 10*time.Second, fmt.Sprintf("%s pings %s at %s", a.name, b.name, addr), func() bool { return l.ping(a, addr) })
			}
		}
	}
	// wg show (wireguard-tools) against the server's desired state.
	c := l.client()
	for _, h := range hosts {
		hv, _ := c.Host(ctx, h.name)
		list, _ := c.Interfaces(ctx, api.ListOptions{Host: hv.ID})
		mine := list.Items[0]
		peersWant := map[string]string{}
		all, _ := c.Interfaces(ctx, api.ListOptions{Network: "lab"})
		for _, o := range all.Items {
			if o.ID == mine.ID {
				continue
			}
			var allowed []string
			for _, a := range o.Addresses {
				p := netip.MustParsePrefix(a)
				allowed = append(allowed, netip.PrefixFrom(p.Addr(), p.Addr().BitLen()).String())
			}
			sort.Strings(allowed)
			peersWant[o.PublicKey] = strings.Join(allowed, ",")
		}
		pub, port, peers, err := l.wgDump(h, mine.Name)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: wg show %s: %d peers, pub %s", h.name, mine.Name, len(peers), pub)
		if port != fmt.Sprint(mine.ListenPort) {
			t.Errorf("%s: listen port %s, want %d", h.name, port, mine.ListenPort)
		}
		peersGot := map[string]string{}
		for k, p := range peers {
			ips := strings.Split(p.AllowedIPs, ",")
			sort.Strings(ips)
			peersGot[k] = strings.Join(ips, ",")
		}
		if diff := cmp.Diff(peersWant, peersGot); diff != "" {
			t.Errorf("%s: wg show peers vs desired state (-want +got):\n%s", h.name, diff)
		}
		// The private key stays on the host: its public half is what the server knows.
		out, err := l.exec(h, "wg", "show", mine.Name, "public-key")
		if err != nil || strings.TrimSpace(out) != mine.PublicKey {
			t.Errorf("%s: public key %q, server has %q (%v)", h.name, strings.TrimSpace(out), mine.PublicKey, err)
		}
		// Addresses on the link match.
		out, _ = l.exec(h, "ip", "-brief", "addr", "show", mine.Name)
		for _, a := range mine.Addresses {
			if !strings.Contains(out, a) {
				t.Errorf("%s: address %s missing from %q", h.name, a, out)
			}
		}
	}
	_ = slices.Contains[[]string]
}
