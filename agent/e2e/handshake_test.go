//go:build linux

package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/drago-wg/drago/server/api"
)

// TestFirstHandshakeReportedAtOnce: with a minute between heartbeats, the
// server's status of each host of a fresh mesh shows the handshake with a
// peer within a few seconds of the first ping between them, not at the
// next heartbeat.
func TestFirstHandshakeReportedAtOnce(t *testing.T) {
	const heartbeat = time.Minute
	l := newLab(t, "dgh")
	c := l.client()
	if _, err := c.CreateNetwork(ctx, &api.Network{Name: "lab", IPv4Range: "10.42.0.0/24", IPv6Range: "fd42::/64", Topology: api.TopologyMesh}); err != nil {
		t.Fatal(err)
	}
	jt, err := c.CreateJoinToken(ctx, &api.JoinToken{Name: "lab", Networks: []string{"lab"}})
	if err != nil {
		t.Fatal(err)
	}
	var hosts []*host
	for i := 1; i <= 3; i++ {
		hosts = append(hosts, l.addHost(fmt.Sprintf("h%d", i), jt.Secret, "-heartbeat-interval", heartbeat.String()))
	}
	l.waitRegistered(len(hosts))

	// reported returns when the server's status of h first shows a
	// handshake with peer's key, polling for up to 10s.
	reported := func(h, peer *host) time.Time {
		key := l.ifaceOf(peer).PublicKey
		eventually(t, 10*time.Second, fmt.Sprintf("%s's status shows a handshake with %s", h.name, peer.name), func() bool {
			st, err := c.HostStatus(ctx, h.name)
			if err != nil {
				return false
			}
			for _, is := range st.Interfaces {
				for _, p := range is.Peers {
					if p.PublicKey == key && p.LastHandshake != nil {
						return true
					}
				}
			}
			return false
		})
		return time.Now()
	}

	for _, pair := range [][2]*host{{hosts[0], hosts[1]}, {hosts[1], hosts[2]}} {
		a, b := pair[0], pair[1]
		v4, _ := l.overlay(b)
		eventually(t, 10*time.Second, fmt.Sprintf("%s pings %s", a.name, b.name), func() bool { return l.ping(a, v4) })
		pinged := time.Now()
		for _, h := range []*host{a, b} {
			peer := b
			if h == b {
				peer = a
			}
			took := reported(h, peer).Sub(pinged)
			t.Logf("%s: handshake with %s on the server %v after the first ping (heartbeat %v)", h.name, peer.name, took.Round(10*time.Millisecond), heartbeat)
			if took > 5*time.Second {
				t.Errorf("%s: handshake with %s reported %v after the first ping, want within 5s", h.name, peer.name, took)
			}
		}
		// wireguard-tools agrees there is one.
		_, _, peers, err := l.wgDump(a, l.ifaceOf(a).Name)
		if err != nil {
			t.Fatal(err)
		}
		if peers[l.ifaceOf(b).PublicKey].LatestHandshake == 0 {
			t.Errorf("wg show: %s has no handshake with %s", a.name, b.name)
		}
	}
}
