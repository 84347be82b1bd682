//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drago-wg/drago/server/api"
)

// ifaceOf returns the host's interface in network lab.
func (l *lab) ifaceOf(h *host) api.Interface {
	c := l.client()
	hv, err := c.Host(ctx, h.name)
	if err != nil {
		l.t.Fatal(err)
	}
	list, err := c.Interfaces(ctx, api.ListOptions{Host: hv.ID})
	if err != nil || len(list.Items) != 1 {
		l.t.Fatalf("interfaces of %s: %v %v", h.name, list, err)
	}
	return list.Items[0]
}

func (l *lab) connect(a, b *host) *api.Connection {
	conn, err := l.client().CreateConnection(ctx, &api.Connection{NetworkID: "lab",
		A: api.ConnectionSide{InterfaceID: l.ifaceOf(a).ID}, B: api.ConnectionSide{InterfaceID: l.ifaceOf(b).ID}})
	if err != nil {
		l.t.Fatal(err)
	}
	return conn
}

// TestConnectionDeleteAndRestore: in a "none" network, deleting one
// connection stops that pair only; the others keep their sessions; adding it
// back restores the pair within a second.
func TestConnectionDeleteAndRestore(t *testing.T) {
	l, _, hs := meshLab(t, "dgc", 3, api.TopologyNone)
	h1, h2, h3 := hs[0], hs[1], hs[2]
	c12 := l.connect(h1, h2)
	l.connect(h1, h3)
	l.connect(h2, h3)
	v2, _ := l.overlay(h2)
	v3, _ := l.overlay(h3)
	eventually(t, 10*time.Second, "h1 pings h2", func() bool { return l.ping(h1, v2) })
	eventually(t, 10*time.Second, "h1 pings h3", func() bool { return l.ping(h1, v3) })
	iface1, iface3 := l.ifaceOf(h1), l.ifaceOf(h3)
	_, _, before, err := l.wgDump(h1, iface1.Name)
	if err != nil {
		t.Fatal(err)
	}
	hs13 := before[iface3.PublicKey].LatestHandshake
	if hs13 == 0 {
		t.Fatal("no handshake between h1 and h3 yet")
	}

	if err := l.client().DeleteConnection(ctx, c12.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "h1 stops reaching h2", func() bool { return !l.ping(h1, v2) })
	if !l.ping(h1, v3) {
		t.Fatal("h1 lost h3 when the h1-h2 connection went")
	}
	_, _, after, _ := l.wgDump(h1, iface1.Name)
	if got := after[iface3.PublicKey].LatestHandshake; got != hs13 {
		t.Errorf("h1-h3 handshake changed from %d to %d: the session was reset", hs13, got)
	}
	if _, ok := after[l.ifaceOf(h2).PublicKey]; ok {
		t.Error("h2 is still a peer of h1")
	}

	l.connect(h1, h2)
	took := eventually(t, 5*time.Second, "h1 reaches h2 again", func() bool { return l.ping(h1, v2) })
	t.Logf("h1 reached h2 %v after the connection was added back", took)
	if took > time.Second {
		t.Errorf("restoring the connection took %v, want under a second", took)
	}
}

// TestRoutedSubnet: a LAN behind h3 (192.168.99.0/24) is reachable from h1.
func TestRoutedSubnet(t *testing.T) {
	l, _, hs := meshLab(t, "dgr", 3, api.TopologyMesh)
	h1, h3 := hs[0], hs[2]
	lan := l.addLAN(h3, "192.168.99.1/24", "192.168.99.2/24")
	run(t, "ip", "-n", lan, "route", "add", "default", "via", "192.168.99.1")

	if _, err := l.client().UpdateInterface(ctx, l.ifaceOf(h3).ID, map[string]any{"routed_subnets": []string{"192.168.99.0/24"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "h1 pings 192.168.99.2 behind h3", func() bool { return l.ping(h1, "192.168.99.2") })
	out, _ := l.exec(h1, "ip", "route", "show", "192.168.99.0/24")
	if !strings.Contains(out, l.ifaceOf(h1).Name) {
		t.Errorf("h1 has no route to the LAN through its drago interface: %q", out)
	}
}

// pingStream runs ping at 10 per second from h to addr for d and returns
// the sent and received counts.
func pingStream(h *host, addr string, d time.Duration) (*exec.Cmd, *strings.Builder) {
	var out strings.Builder
	n := int(d / (100 * time.Millisecond))
	cmd := exec.Command("ip", "netns", "exec", h.ns, "ping", "-i", "0.1", "-W", "1", "-c", fmt.Sprint(n), addr)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Start()
	return cmd, &out
}

func lossOf(out string) (sent, received int) {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "packets transmitted") {
			fmt.Sscanf(line, "%d packets transmitted, %d received", &sent, &received)
		}
	}
	return sent, received
}

// TestServerKill9: tunnels keep working while the server is dead; after a
// restart the agents resync and a new change converges.
func TestServerKill9(t *testing.T) {
	l, _, hs := meshLab(t, "dgk", 3, api.TopologyMesh)
	h1, h2, h3 := hs[0], hs[1], hs[2]
	v2, _ := l.overlay(h2)
	eventually(t, 10*time.Second, "h1 pings h2", func() bool { return l.ping(h1, v2) })

	cmd, out := pingStream(h1, v2, 4*time.Second)
	time.Sleep(500 * time.Millisecond)
	l.server.kill(syscall.SIGKILL)
	cmd.Wait()
	if sent, got := lossOf(out.String()); sent == 0 || got != sent {
		t.Fatalf("pings while the server was dead: %d sent, %d received\n%s", sent, got, out)
	}

	l.startServer()
	eventually(t, 15*time.Second, "hosts report ready after the restart", func() bool {
		list, err := l.client().Hosts(ctx, api.ListOptions{Status: api.HostReady})
		return err == nil && list.Total == 3
	})
	// A change after the restart converges: an agent's first successful
	// heartbeat ends the backoff of its failed blocking query.
	i2 := l.ifaceOf(h2)
	if _, err := l.client().UpdateInterface(ctx, i2.ID, map[string]any{"routed_subnets": []string{"192.168.55.0/24"}}); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 10*time.Second, "h3 learns h2's new subnet", func() bool {
		_, _, peers, err := l.wgDump(h3, l.ifaceOf(h3).Name)
		return err == nil && strings.Contains(peers[i2.PublicKey].AllowedIPs, "192.168.55.0/24")
	})
	t.Logf("converged %v after the first change following the restart", took)
}

// TestAgentRestartKeepsIdentity: a restarted agent keeps its host, key and
// address, and its tunnels come back.
func TestAgentRestartKeepsIdentity(t *testing.T) {
	l, _, hs := meshLab(t, "dga", 2, api.TopologyMesh)
	h1, h2 := hs[0], hs[1]
	v2, _ := l.overlay(h2)
	eventually(t, 10*time.Second, "h1 pings h2", func() bool { return l.ping(h1, v2) })
	before := l.ifaceOf(h2)

	h2.agent.kill(syscall.SIGTERM)
	eventually(t, 5*time.Second, "h2 is unreachable while its agent is stopped", func() bool { return !l.ping(h1, v2) })
	l.startAgent(h2, "") // no join token: the stored credential is used
	eventually(t, 10*time.Second, "h1 pings h2 after the restart", func() bool { return l.ping(h1, v2) })

	after := l.ifaceOf(h2)
	if after.PublicKey != before.PublicKey || strings.Join(after.Addresses, ",") != strings.Join(before.Addresses, ",") {
		t.Fatalf("identity changed: key %s -> %s, addresses %v -> %v", before.PublicKey, after.PublicKey, before.Addresses, after.Addresses)
	}
	list, _ := l.client().Hosts(ctx, api.ListOptions{})
	if list.Total != 2 {
		t.Fatalf("%d hosts after the restart, want 2", list.Total)
	}
	// Secrets on disk are private.
	filepath.Walk(filepath.Join(h2.dataDir, "agent"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v", p, fi.Mode().Perm())
		}
		if err == nil && fi.IsDir() && fi.Mode().Perm() != 0o700 {
			t.Errorf("folder %s has mode %v", p, fi.Mode().Perm())
		}
		return nil
	})
}

// TestDriftRepair: a peer removed by hand with wg set comes back within one
// drift period (2s here).
func TestDriftRepair(t *testing.T) {
	l, _, hs := meshLab(t, "dgd", 2, api.TopologyMesh)
	h1, h2 := hs[0], hs[1]
	i1, i2 := l.ifaceOf(h1), l.ifaceOf(h2)
	eventually(t, 10*time.Second, "h1 has h2 as peer", func() bool {
		_, _, peers, err := l.wgDump(h1, i1.Name)
		return err == nil && peers[i2.PublicKey].PublicKey != ""
	})
	if out, err := l.exec(h1, "wg", "set", i1.Name, "peer", i2.PublicKey, "remove"); err != nil {
		t.Fatalf("wg set: %v %s", err, out)
	}
	_, _, peers, _ := l.wgDump(h1, i1.Name)
	if _, ok := peers[i2.PublicKey]; ok {
		t.Fatal("wg set did not remove the peer")
	}
	took := eventually(t, 6*time.Second, "the peer is restored", func() bool {
		_, _, peers, err := l.wgDump(h1, i1.Name)
		return err == nil && peers[i2.PublicKey].PublicKey != ""
	})
	t.Logf("restored after %v (drift period 2s)", took)
}

// TestRefusedCredentials: a bad or expired join token creates nothing, and a
// host credential cannot act for another host.
func TestRefusedCredentials(t *testing.T) {
	l, _, hs := meshLab(t, "dgx", 2, api.TopologyMesh)
	c := l.client()
	past := time.Now().Add(1500 * time.Millisecond)
	expiring, err := c.CreateJoinToken(ctx, &api.JoinToken{Name: "expiring", ExpiresAt: &past, Networks: []string{"lab"}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(past) + 100*time.Millisecond)
	bad := l.addHost("bad", "dgj_0123456789abcdef_notavalidsecret")
	expired := l.addHost("expired", expiring.Secret)
	eventually(t, 10*time.Second, "both agents log the refusal", func() bool {
		return strings.Contains(bad.agent.output(), "rejected") && strings.Contains(expired.agent.output(), "rejected")
	})
	list, _ := c.Hosts(ctx, api.ListOptions{})
	if list.Total != 2 {
		t.Fatalf("%d hosts, want the 2 good ones", list.Total)
	}
	// h1's credential, taken from its data dir, cannot report for h2.
	var id struct {
		Credential string `json:"credential"`
	}
	b, err := os.ReadFile(filepath.Join(hs[0].dataDir, "agent", "identity.json"))
	if err != nil || json.Unmarshal(b, &id) != nil {
		t.Fatalf("identity of h1: %v", err)
	}
	hc, _ := api.NewClient(api.ClientConfig{Address: l.url, Token: id.Credential})
	i2 := l.ifaceOf(hs[1])
	err = hc.ReportStatus(ctx, &api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: i2.ID, PublicKey: i2.PublicKey}}})
	if api.StatusOf(err) != 400 {
		t.Fatalf("h1 reporting for h2: %v", err)
	}
	if _, err := hc.Hosts(ctx, api.ListOptions{}); api.StatusOf(err) != 403 {
		t.Fatalf("h1's credential listing hosts: %v", err)
	}
}
