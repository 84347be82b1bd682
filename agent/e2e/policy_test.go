//go:build linux

package e2e

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drago-wg/drago/platform/platformtest"
	"github.com/drago-wg/drago/server/api"
)

// policyLab starts a server, a mesh network with the given default action
// and one host per name, each with the labels given ("role=web").
func policyLab(t *testing.T, prefix, defaultAction string, hosts [][2]string) (*lab, map[string]*host) {
	l := newLab(t, prefix)
	c := l.client()
	if _, err := c.CreateNetwork(ctx, &api.Network{Name: "lab", IPv4Range: "10.42.0.0/24", IPv6Range: "fd42::/64",
		Topology: api.TopologyMesh, DefaultAction: defaultAction}); err != nil {
		t.Fatal(err)
	}
	jt, err := c.CreateJoinToken(ctx, &api.JoinToken{Name: "lab", Networks: []string{"lab"}})
	if err != nil {
		t.Fatal(err)
	}
	hs := map[string]*host{}
	for _, h := range hosts {
		var extra []string
		if h[1] != "" {
			extra = []string{"-label", h[1]}
		}
		hs[h[0]] = l.addHost(h[0], jt.Secret, extra...)
	}
	l.waitRegistered(len(hosts))
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range hs {
				out, _ := exec.Command("ip", "netns", "exec", h.ns, "nft", "list", "ruleset").CombinedOutput()
				t.Logf("%s: nft list ruleset:\n%s", h.name, out)
			}
		}
	})
	return l, hs
}

// waitRegistered waits until network lab has n interfaces, each with a key.
func (l *lab) waitRegistered(n int) {
	l.t.Helper()
	eventually(l.t, 20*time.Second, "every host registered with a key", func() bool {
		list, err := l.client().Interfaces(ctx, api.ListOptions{Network: "lab"})
		if err != nil || list.Total != n {
			return false
		}
		for _, i := range list.Items {
			if i.PublicKey == "" {
				return false
			}
		}
		return true
	})
}

// addLAN joins a new namespace, the LAN, to h through a veth link: h gets
// gwAddr, the LAN host lanAddr (CIDRs). It returns the LAN's namespace.
func (l *lab) addLAN(h *host, gwAddr, lanAddr string) string {
	lan := l.prefix + "-lan"
	run(l.t, "ip", "netns", "add", lan)
	run(l.t, "ip", "-n", lan, "link", "set", "lo", "up")
	run(l.t, "ip", "link", "add", "eth1", "netns", h.ns, "type", "veth", "peer", "name", "eth0", "netns", lan)
	run(l.t, "ip", "-n", h.ns, "addr", "add", gwAddr, "dev", "eth1")
	run(l.t, "ip", "-n", h.ns, "link", "set", "eth1", "up")
	run(l.t, "ip", "-n", lan, "addr", "add", lanAddr, "dev", "eth0")
	run(l.t, "ip", "-n", lan, "link", "set", "eth0", "up")
	run(l.t, "ip", "netns", "exec", h.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	return lan
}

// serve runs an echo server on each port of h's namespace.
func (l *lab) serve(h *host, ports ...int) {
	for _, p := range ports {
		ln, err := platformtest.ListenEcho(h.ns, fmt.Sprintf(":%d", p))
		if err != nil {
			l.t.Fatal(err)
		}
		l.t.Cleanup(func() { ln.Close() })
	}
}

// reaches reports whether a TCP connection from h to addr:port opens
// within timeout and echoes.
func (l *lab) reaches(h *host, addr string, port int, timeout time.Duration) bool {
	return platformtest.Reaches(h.ns, "", net.JoinHostPort(addr, fmt.Sprint(port)), timeout)
}

// nft runs the nft tool in h's namespace, as an admin would.
func (l *lab) nft(h *host, args ...string) string {
	return run(l.t, "ip", append([]string{"netns", "exec", h.ns, "nft"}, args...)...)
}

// enforced waits until h reports its interface's policy in force at the
// revision the server compiled.
func (l *lab) enforced(h *host) {
	l.t.Helper()
	var seen string
	defer func() {
		if l.t.Failed() {
			l.t.Logf("%s: last seen %s", h.name, seen)
		}
	}()
	eventually(l.t, 10*time.Second, h.name+" reports its policy in force", func() bool {
		i, err := l.client().Interface(ctx, l.ifaceOf(h).ID)
		if err != nil {
			seen = err.Error()
			return false
		}
		seen = fmt.Sprintf("revision %d, status %+v", i.FirewallRevision, i.Firewall)
		return i.FirewallRevision != 0 && i.Firewall != nil && i.Firewall.Enforced &&
			i.Firewall.Revision == i.FirewallRevision
	})
}

// TestPolicyEnforcedOnHosts: with default drop and the rule role=web ->
// role=db tcp/5432, web reaches db:5432 but not db:22, and web does not
// reach web; a rule change opens and closes a port within a second while
// an open connection goes on; a hand-flushed table comes back at the next
// drift pass; a foreign table is left as it is; the rules stay in force
// while the server is down and the agent stopped, and go with the policy.
func TestPolicyEnforcedOnHosts(t *testing.T) {
	l, hs := policyLab(t, "dgp", api.ActionDrop, [][2]string{{"web1", "role=web"}, {"web2", "role=web"}, {"db1", "role=db"}})
	web1, web2, db1 := hs["web1"], hs["web2"], hs["db1"]
	foreign := "table ip nat { chain POSTROUTING { type nat hook postrouting priority srcnat; policy accept; oifname \"docker0\" masquerade; }; }"
	l.nft(db1, foreign)
	foreignBefore := l.nft(db1, "list", "table", "ip", "nat")
	c := l.client()
	if _, err := c.CreateRule(ctx, &api.RuleRequest{Rule: api.Rule{NetworkID: "lab", Action: api.ActionAccept,
		From: []string{"role=web"}, To: []string{"role=db"}, Protocol: api.ProtocolTCP, Ports: []string{"5432"}}}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []*host{web1, web2, db1} {
		l.serve(h, 5432, 22)
		l.enforced(h)
	}
	db, _ := l.overlay(db1)
	web2v4, web2v6 := l.overlay(web2)
	_, db6 := l.overlay(db1)
	eventually(t, 10*time.Second, "web1 reaches db1:5432", func() bool { return l.reaches(web1, db, 5432, time.Second) })
	for _, c := range []struct {
		from      *host
		addr      string
		port      int
		want      bool
		rationale string
	}{
		{web1, db6, 5432, true, "web -> db tcp/5432 over IPv6"},
		{web1, db, 22, false, "db:22 is not in the rule"},
		{web1, web2v4, 5432, false, "web -> web is not in the rule"},
		{web1, web2v6, 22, false, "web -> web is not in the rule"},
		{db1, web2v4, 5432, false, "db -> web is not in the rule"},
	} {
		if got := l.reaches(c.from, c.addr, c.port, time.Second); got != c.want {
			t.Errorf("%s -> %s:%d connects = %v, want %v (%s)", c.from.name, c.addr, c.port, got, c.want, c.rationale)
		}
	}
	// WireGuard itself is not filtered: the tunnels carry the allowed traffic.
	if l.ping(web1, db) {
		t.Error("web1 pings db1, which no rule allows")
	}

	// A long connection that stays allowed while rules change.
	long, err := platformtest.Dial(web1.ns, "", net.JoinHostPort(db, "5432"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Close()

	ssh, err := c.CreateRule(ctx, &api.RuleRequest{Rule: api.Rule{NetworkID: "lab", Action: api.ActionAccept,
		From: []string{"role=web"}, To: []string{"host:db1"}, Protocol: api.ProtocolTCP, Ports: []string{"22"}}})
	if err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 5*time.Second, "web1 reaches db1:22 once the rule is added", func() bool { return l.reaches(web1, db, 22, 200*time.Millisecond) })
	t.Logf("db1:22 opened %v after the rule was added", took)
	if took > time.Second {
		t.Errorf("opening took %v, want under a second", took)
	}
	if err := c.DeleteRule(ctx, ssh.ID); err != nil {
		t.Fatal(err)
	}
	took = eventually(t, 5*time.Second, "web1 refused db1:22 once the rule is gone", func() bool { return !l.reaches(web1, db, 22, 200*time.Millisecond) })
	t.Logf("db1:22 closed %v after the rule was deleted", took)
	if took > time.Second {
		t.Errorf("closing took %v, want under a second", took)
	}
	if !platformtest.Echoes(long, time.Second) {
		t.Error("the long connection to db1:5432 broke while rules changed")
	}

	// An admin flushes drago's table: everything passes until the next
	// drift pass (2s here) puts it back.
	l.nft(db1, "flush", "table", "inet", "drago")
	if !l.reaches(web1, db, 22, time.Second) {
		t.Error("db1:22 refused after the table was flushed: the flush did not take")
	}
	took = eventually(t, 6*time.Second, "the drift pass restores db1's rules", func() bool { return !l.reaches(web1, db, 22, 200*time.Millisecond) })
	t.Logf("restored %v after the flush", took)
	if !l.reaches(web1, db, 5432, time.Second) || !platformtest.Echoes(long, time.Second) {
		t.Error("allowed traffic broken after the repair")
	}
	if !strings.Contains(db1.agent.output(), "repaired drift") {
		t.Error("db1's agent did not log the repair")
	}
	if after := l.nft(db1, "list", "table", "ip", "nat"); after != foreignBefore {
		t.Errorf("the foreign table changed:\nbefore:\n%s\nafter:\n%s", foreignBefore, after)
	}

	// The server dies: the policy stays in force. db1's agent stops: its
	// rules stay (its userspace WireGuard goes with it, so they are read
	// with nft rather than tried).
	l.server.kill(syscall.SIGKILL)
	if l.reaches(web1, db, 22, time.Second) || !l.reaches(web1, db, 5432, time.Second) {
		t.Error("the policy is not in force with the server down")
	}
	db1.agent.kill(syscall.SIGTERM)
	if out := l.nft(db1, "list", "chain", "inet", "drago", "dg-lab-policy"); !strings.Contains(out, "tcp dport 5432 accept") {
		t.Errorf("db1's rules after its agent stopped:\n%s", out)
	}
	l.startServer()
	l.startAgent(db1, "")

	// Default accept and no rule: no policy left, drago's table goes.
	if _, err := c.UpdateNetwork(ctx, "lab", map[string]any{"default_action": api.ActionAccept}); err != nil {
		t.Fatal(err)
	}
	rules, err := c.Rules(ctx, api.ListOptions{Network: "lab"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules.Items {
		if err := c.DeleteRule(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "web1 reaches web2 with no policy", func() bool { return l.reaches(web1, web2v4, 22, 200*time.Millisecond) })
	eventually(t, 5*time.Second, "drago's table removed from db1", func() bool {
		return !strings.Contains(l.nft(db1, "list", "tables"), "drago")
	})
}

// TestPolicyMasquerade: a LAN host behind a gateway, with no route back to
// the network, answers a remote host once the gateway masquerades.
func TestPolicyMasquerade(t *testing.T) {
	l, hs := policyLab(t, "dgq", api.ActionAccept, [][2]string{{"gw", "role=gw"}, {"remote", ""}})
	gw, remote := hs["gw"], hs["remote"]
	lan := l.addLAN(gw, "192.168.98.1/24", "192.168.98.2/24") // no route back to the network
	ln, err := platformtest.ListenEcho(lan, ":8080")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	c := l.client()
	gwIface := l.ifaceOf(gw)
	if _, err := c.UpdateInterface(ctx, gwIface.ID, map[string]any{"routed_subnets": []string{"192.168.98.0/24"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "remote routes the LAN through its interface", func() bool {
		out, _ := l.exec(remote, "ip", "route", "show", "192.168.98.0/24")
		return strings.Contains(out, l.ifaceOf(remote).Name)
	})
	if l.reaches(remote, "192.168.98.2", 8080, time.Second) {
		t.Fatal("the LAN host answers without masquerade: it must have no route back")
	}
	if _, err := c.UpdateInterface(ctx, gwIface.ID, map[string]any{"masquerade": true}); err != nil {
		t.Fatal(err)
	}
	l.enforced(gw)
	eventually(t, 5*time.Second, "remote reaches the LAN host through the masquerading gateway", func() bool {
		return l.reaches(remote, "192.168.98.2", 8080, 500*time.Millisecond)
	})
	if !l.ping(remote, "192.168.98.2") {
		t.Error("the LAN host does not answer pings through the gateway")
	}
	if out := l.nft(gw, "list", "table", "inet", "drago"); !strings.Contains(out, "masquerade") {
		t.Errorf("no masquerade rule on the gateway:\n%s", out)
	}
}

// TestPolicyThroughHub: in a hub network with default drop, the hub relays
// between spokes what the destination's policy accepts (the destination
// enforces it, the hub does not filter what it relays), and the
// destination refuses the rest.
func TestPolicyThroughHub(t *testing.T) {
	l, hs := policyLab(t, "dgh", api.ActionDrop, [][2]string{{"hub", ""}, {"web1", "role=web"}, {"db1", "role=db"}})
	hub, web1, db1 := hs["hub"], hs["web1"], hs["db1"]
	c := l.client()
	if _, err := c.UpdateNetwork(ctx, "lab", map[string]any{"topology": api.TopologyHub, "hub_interface_id": l.ifaceOf(hub).ID}); err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "netns", "exec", hub.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	if _, err := c.CreateRule(ctx, &api.RuleRequest{Rule: api.Rule{NetworkID: "lab", Action: api.ActionAccept,
		From: []string{"role=web"}, To: []string{"role=db"}, Protocol: api.ProtocolTCP, Ports: []string{"5432"}}}); err != nil {
		t.Fatal(err)
	}
	l.serve(db1, 5432, 22)
	for _, h := range []*host{hub, web1, db1} {
		l.enforced(h)
	}
	eventually(t, 10*time.Second, "web1 has no direct peer db1", func() bool {
		_, _, peers, err := l.wgDump(web1, l.ifaceOf(web1).Name)
		_, direct := peers[l.ifaceOf(db1).PublicKey]
		return err == nil && len(peers) == 1 && !direct
	})
	db, _ := l.overlay(db1)
	eventually(t, 10*time.Second, "web1 reaches db1:5432 through the hub", func() bool { return l.reaches(web1, db, 5432, time.Second) })
	if l.reaches(web1, db, 22, time.Second) {
		t.Error("web1 reaches db1:22 through the hub")
	}
	if out := l.nft(hub, "list", "chain", "inet", "drago", l.ifaceOf(hub).Name+"-forward"); !strings.Contains(out, "oifname !=") {
		t.Errorf("the hub's forward chain filters what it relays:\n%s", out)
	}
}
