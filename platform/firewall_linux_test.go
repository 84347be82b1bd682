package platform_test

// Privileged tests of the nf_tables Firewall: each test builds network
// namespaces joined by veth links, applies policies to a namespace's
// "dg-*" link and checks them with real traffic, and inspects or changes
// the ruleset with the nft tool as an admin would.

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/drago-wg/drago/platform"
	"github.com/drago-wg/drago/platform/platformtest"
	"github.com/drago-wg/drago/server/api"
)

// requireNft is requirePrivileged plus the nft tool, which the tests use to
// look at and vandalize the ruleset (drago itself never runs it).
func requireNft(t *testing.T) {
	t.Helper()
	requirePrivileged(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatalf("DRAGO_PRIVILEGED_TESTS=1 but %v (Debian package nftables)", err)
	}
}

// newFirewallIn returns a Firewall working in namespace ns.
func newFirewallIn(t *testing.T, ns string) platform.Firewall {
	t.Helper()
	var fw platform.Firewall
	var err error
	if nerr := platformtest.InNetns(ns, func() { fw, err = platform.NewFirewall(nil) }); nerr != nil {
		t.Fatal(nerr)
	}
	if err != nil {
		t.Fatalf("DRAGO_PRIVILEGED_TESTS=1 but nf_tables is unusable: %v", err)
	}
	t.Cleanup(func() { fw.Close() })
	return fw
}

// nft runs the nft tool in ns.
func nft(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns, "nft"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// listen serves echo on addr in ns for the test's duration.
func listen(t *testing.T, ns, addr string) {
	t.Helper()
	l, err := platformtest.ListenEcho(ns, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
}

// dial connects from ns (from the source address src, if set) to addr.
func dial(t *testing.T, ns, src, addr string) (net.Conn, error) {
	t.Helper()
	return platformtest.Dial(ns, src, addr, 300*time.Millisecond)
}

// reaches reports whether a TCP connection from ns (source src) to addr
// opens and echoes.
func reaches(t *testing.T, ns, src, addr string) bool {
	t.Helper()
	return platformtest.Reaches(ns, src, addr, 300*time.Millisecond)
}

// echoes reports whether c, a connection to listen's server, still works.
func echoes(c net.Conn) bool { return platformtest.Echoes(c, time.Second) }

// pings reports whether ns answers a ping from src to addr.
func pings(ns, src, addr string) bool {
	return exec.Command("ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", "-I", src, addr).Run() == nil
}

// fwLab is a host namespace whose link dg-fw0 leads to a client namespace
// holding two addresses of each family: .2 is in set "web", .3 is not.
type fwLab struct {
	host, client string
	fw           platform.Firewall
}

const fwIface = "dg-fw0"

func newFwLab(t *testing.T) *fwLab {
	t.Helper()
	requireNft(t)
	l := &fwLab{host: newNetns(t), client: newNetns(t)}
	veth(t, l.host, fwIface, "10.77.0.1/24", l.client, "peer0", "10.77.0.2/24")
	ipCmd(t, "-n", l.client, "addr", "add", "10.77.0.3/24", "dev", "peer0")
	ipCmd(t, "-n", l.host, "addr", "add", "fd77::1/64", "dev", fwIface, "nodad")
	ipCmd(t, "-n", l.client, "addr", "add", "fd77::2/64", "dev", "peer0", "nodad")
	ipCmd(t, "-n", l.client, "addr", "add", "fd77::3/64", "dev", "peer0", "nodad")
	listen(t, l.host, ":5432")
	listen(t, l.host, ":22")
	l.fw = newFirewallIn(t, l.host)
	return l
}

// webToDB is default drop, and "web" reaches "db" on tcp/5432 and by ICMP.
func webToDB() *api.DesiredFirewall {
	return &api.DesiredFirewall{
		Revision:      1,
		DefaultAction: api.ActionDrop,
		Sets: []api.FirewallSet{
			{Name: "role=web", Addresses: []string{"10.77.0.2/32", "fd77::2/128"}},
			{Name: "role=db", Addresses: []string{"10.77.0.1/32", "fd77::1/128"}},
		},
		Rules: []api.FirewallRule{
			{Action: api.ActionAccept, From: "role=web", To: "role=db", Protocol: api.ProtocolTCP, Ports: []api.PortRange{{First: 5432, Last: 5432}}},
			{Action: api.ActionAccept, From: "role=web", Protocol: api.ProtocolICMP},
		},
	}
}

func (l *fwLab) apply(t *testing.T, d *api.DesiredFirewall) platform.FirewallOps {
	t.Helper()
	p, err := platform.ParseFirewall(d)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := l.fw.Apply(fwIface, p)
	if err != nil {
		t.Fatal(err)
	}
	return ops
}

// checkEnforced checks webToDB with traffic.
func (l *fwLab) checkEnforced(t *testing.T) {
	t.Helper()
	for _, c := range []struct {
		src, dst string
		want     bool
	}{
		{"10.77.0.2", "10.77.0.1:5432", true},
		{"10.77.0.2", "10.77.0.1:22", false},
		{"10.77.0.3", "10.77.0.1:5432", false},
		{"fd77::2", "[fd77::1]:5432", true},
		{"fd77::2", "[fd77::1]:22", false},
		{"fd77::3", "[fd77::1]:5432", false},
	} {
		if got := reaches(t, l.client, c.src, c.dst); got != c.want {
			t.Errorf("from %s to %s: connects = %v, want %v\n%s", c.src, c.dst, got, c.want, nft(t, l.host, "list", "ruleset"))
		}
	}
	for _, c := range []struct {
		src, dst string
		want     bool
	}{
		{"10.77.0.2", "10.77.0.1", true},
		{"fd77::2", "fd77::1", true},
		{"10.77.0.3", "10.77.0.1", false},
		{"fd77::3", "fd77::1", false},
	} {
		if got := pings(l.client, c.src, c.dst); got != c.want {
			t.Errorf("ping from %s to %s: answered = %v, want %v", c.src, c.dst, got, c.want)
		}
	}
}

func TestFirewallEnforcesWithTraffic(t *testing.T) {
	l := newFwLab(t)
	if !reaches(t, l.client, "10.77.0.3", "10.77.0.1:22") {
		t.Fatal("no traffic before any policy: the lab is broken")
	}
	l.apply(t, webToDB())
	l.checkEnforced(t)

	// Default accept with a drop rule: the reverse policy.
	l.apply(t, &api.DesiredFirewall{Revision: 2, DefaultAction: api.ActionAccept,
		Sets:  []api.FirewallSet{{Name: "web", Addresses: []string{"10.77.0.2"}}},
		Rules: []api.FirewallRule{{Action: api.ActionDrop, From: "web", Protocol: api.ProtocolTCP, Ports: []api.PortRange{{First: 20, Last: 25}}}}})
	for _, c := range []struct {
		src, dst string
		want     bool
	}{
		{"10.77.0.2", "10.77.0.1:22", false},
		{"10.77.0.2", "10.77.0.1:5432", true},
		{"10.77.0.3", "10.77.0.1:22", true},
		{"fd77::2", "[fd77::1]:22", true},
	} {
		if got := reaches(t, l.client, c.src, c.dst); got != c.want {
			t.Errorf("from %s to %s: connects = %v, want %v", c.src, c.dst, got, c.want)
		}
	}

	// No policy: everything passes, and drago's table is gone.
	if _, err := l.fw.Apply(fwIface, nil); err != nil {
		t.Fatal(err)
	}
	if !reaches(t, l.client, "10.77.0.2", "10.77.0.1:22") {
		t.Error("traffic refused after the policy was removed")
	}
	if out := nft(t, l.host, "list", "tables"); strings.Contains(out, "drago") {
		t.Errorf("table left after removing the last interface's policy:\n%s", out)
	}
}

func TestFirewallApplyIsIdempotentAndMinimal(t *testing.T) {
	l := newFwLab(t)
	first := l.apply(t, webToDB())
	if first.Tables != 1 || first.Rules == 0 || first.Sets != 4 {
		t.Errorf("first apply: %+v, want the table, rules and 4 sets", first)
	}
	before := nft(t, l.host, "-a", "list", "ruleset")
	if ops := l.apply(t, webToDB()); ops.Total() != 0 {
		t.Errorf("unchanged apply made changes: %+v", ops)
	}

	// A host joins: elements change, no rule is rewritten (handles stay).
	joined := webToDB()
	joined.Sets[0].Addresses = append(joined.Sets[0].Addresses, "10.77.0.3/32")
	ops := l.apply(t, joined)
	if want := (platform.FirewallOps{Elements: 2}); ops != want {
		// 10.77.0.2 and .3 merge into one range: one range out, one in.
		t.Errorf("host joining: ops %+v, want %+v", ops, want)
	}
	after := nft(t, l.host, "-a", "list", "ruleset")
	if rulesOf(before) != rulesOf(after) {
		t.Errorf("rules changed when only set elements did:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if !reaches(t, l.client, "10.77.0.3", "10.77.0.1:5432") {
		t.Error("the joined host cannot connect")
	}

	// A rule added in the middle: one rule inserted, the others kept.
	moved := webToDB()
	moved.Rules = append(moved.Rules[:1:1], api.FirewallRule{Action: api.ActionAccept, Protocol: api.ProtocolUDP, Ports: []api.PortRange{{First: 53, Last: 53}}}, moved.Rules[1])
	if ops := l.apply(t, moved); ops != (platform.FirewallOps{Rules: 1, Elements: 2}) {
		t.Errorf("inserting one rule: ops %+v, want 1 rule (and the set back: 2 elements)", ops)
	}
	got := nft(t, l.host, "list", "chain", "inet", "drago", fwIface+"-policy")
	udp, icmp := strings.Index(got, "udp dport 53"), strings.Index(got, "icmp")
	if udp < 0 || icmp < 0 || udp > icmp {
		t.Errorf("the inserted rule is not before the icmp rule:\n%s", got)
	}
}

// rulesOf returns the rule lines of an `nft -a list ruleset`, with their
// handles, leaving set elements out.
func rulesOf(ruleset string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(ruleset, "\n") {
		if strings.Contains(line, "# handle") && !strings.Contains(line, "chain ") && !strings.Contains(line, "set ") && !strings.Contains(line, "table ") {
			b.WriteString(strings.TrimSpace(line) + "\n")
		}
	}
	return b.String()
}

func TestFirewallRepairsDrift(t *testing.T) {
	l := newFwLab(t)
	l.apply(t, webToDB())
	set := ""
	for line := range strings.SplitSeq(nft(t, l.host, "list", "sets", "inet"), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "set" && strings.HasSuffix(f[1], "-4") {
			out := nft(t, l.host, "list", "set", "inet", "drago", f[1])
			if strings.Contains(out, "10.77.0.2") {
				set = f[1]
			}
		}
	}
	if set == "" {
		t.Fatalf("no IPv4 set holds the web address:\n%s", nft(t, l.host, "list", "ruleset"))
	}

	steps := []struct {
		name   string
		vandal []string
		want   platform.FirewallOps
	}{
		{"flushed table", []string{"flush", "table", "inet", "drago"}, platform.FirewallOps{}},
		{"deleted element", []string{"delete", "element", "inet", "drago", set, "{ 10.77.0.2 }"}, platform.FirewallOps{Elements: 1}},
		{"added element", []string{"add", "element", "inet", "drago", set, "{ 10.77.0.3 }"}, platform.FirewallOps{Elements: 1}},
		{"added rule", []string{"insert", "rule", "inet", "drago", fwIface + "-policy", "accept"}, platform.FirewallOps{Rules: 1}},
		{"deleted chain", []string{"delete", "chain", "inet", "drago", fwIface + "-forward"}, platform.FirewallOps{Chains: 1, Rules: 1}},
		{"deleted table", []string{"delete", "table", "inet", "drago"}, platform.FirewallOps{}},
		{"added chain", []string{"add", "chain", "inet", "drago", "sneaky", "{ type filter hook input priority -10; policy drop; }"}, platform.FirewallOps{Chains: 1}},
		{"added set", []string{"add", "set", "inet", "drago", "extra", "{ type ipv4_addr; }"}, platform.FirewallOps{Sets: 1}},
	}
	for _, s := range steps {
		if s.vandal[0] == "delete" && s.vandal[1] == "chain" {
			// A base chain holding rules cannot be deleted: flush it first.
			nft(t, l.host, "flush", "chain", "inet", "drago", fwIface+"-forward")
		}
		nft(t, l.host, s.vandal...)
		ops := l.apply(t, webToDB())
		if s.want != (platform.FirewallOps{}) && ops != s.want {
			t.Errorf("%s: repair ops %+v, want %+v", s.name, ops, s.want)
		}
		if ops.Total() == 0 {
			t.Errorf("%s: nothing repaired", s.name)
		}
		if ops := l.apply(t, webToDB()); ops.Total() != 0 {
			t.Errorf("%s: apply after the repair still changes %+v", s.name, ops)
		}
		l.checkEnforced(t)
	}
}

func TestFirewallLeavesForeignTablesAlone(t *testing.T) {
	l := newFwLab(t)
	// What Docker (iptables-nft) and a distribution firewall leave.
	foreign := `table ip nat {
	chain POSTROUTING {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "docker0" ip saddr 172.17.0.0/16 masquerade
	}
}
table inet filter {
	chain input {
		type filter hook input priority filter; policy accept;
		tcp dport 9999 drop
	}
}
`
	path := t.TempDir() + "/foreign.nft"
	if err := os.WriteFile(path, []byte(foreign), 0o600); err != nil {
		t.Fatal(err)
	}
	nft(t, l.host, "-f", path)
	snapshot := func() string {
		return nft(t, l.host, "list", "table", "ip", "nat") + nft(t, l.host, "list", "table", "inet", "filter")
	}
	before := snapshot()

	l.apply(t, webToDB())
	nft(t, l.host, "flush", "table", "inet", "drago")
	l.apply(t, webToDB())
	if _, err := l.fw.Remove(fwIface); err != nil {
		t.Fatal(err)
	}
	if err := l.fw.RemoveAll(); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(); after != before {
		t.Errorf("foreign tables changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestFirewallKeepsLiveConnections(t *testing.T) {
	l := newFwLab(t)
	l.apply(t, webToDB())
	c, err := dial(t, l.client, "10.77.0.2", "10.77.0.1:5432")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// The rule goes: new connections are refused, the open one goes on.
	closed := webToDB()
	closed.Rules = closed.Rules[1:]
	l.apply(t, closed)
	if reaches(t, l.client, "10.77.0.2", "10.77.0.1:5432") {
		t.Error("a new connection passes a removed rule")
	}
	if !echoes(c) {
		t.Error("the established connection broke on a policy change")
	}
}

func TestFirewallRemove(t *testing.T) {
	l := newFwLab(t)
	l.apply(t, webToDB())
	p, _ := platform.ParseFirewall(webToDB())
	if _, err := l.fw.Apply("dg-other", p); err != nil {
		t.Fatal(err)
	}
	ops, err := l.fw.Remove(fwIface)
	if err != nil {
		t.Fatal(err)
	}
	if ops.Tables != 0 || ops.Chains != 3 || ops.Sets != 4 {
		t.Errorf("Remove of one of two interfaces: %+v, want 3 chains and 4 sets", ops)
	}
	out := nft(t, l.host, "list", "table", "inet", "drago")
	if strings.Contains(out, fwIface) || !strings.Contains(out, "dg-other-policy") {
		t.Errorf("after Remove(%s):\n%s", fwIface, out)
	}
	if !reaches(t, l.client, "10.77.0.3", "10.77.0.1:22") {
		t.Error("traffic still filtered after Remove")
	}
	if ops, err := l.fw.Remove(fwIface); err != nil || ops.Total() != 0 {
		t.Errorf("second Remove: %+v, %v", ops, err)
	}
	if ops, err := l.fw.Remove("dg-other"); err != nil || ops != (platform.FirewallOps{Tables: 1}) {
		t.Errorf("Remove of the last interface: %+v, %v; want the table deleted", ops, err)
	}
}

// TestFirewallMasquerade: a gateway masquerades traffic from its dg link
// to a LAN whose hosts have no route back to the network.
func TestFirewallMasquerade(t *testing.T) {
	l := newFwLab(t)
	lan := newNetns(t)
	veth(t, l.host, "lan0", "192.168.77.1/24", lan, "eth0", "192.168.77.10/24")
	ipCmd(t, "-n", l.client, "route", "add", "192.168.77.0/24", "via", "10.77.0.1")
	if out, err := exec.Command("ip", "netns", "exec", l.host, "sysctl", "-qw", "net.ipv4.ip_forward=1").CombinedOutput(); err != nil {
		t.Fatalf("sysctl: %v: %s", err, out)
	}
	listen(t, lan, ":8080")

	gw := &api.DesiredFirewall{Revision: 1, DefaultAction: api.ActionDrop,
		Sets:  []api.FirewallSet{{Name: "web", Addresses: []string{"10.77.0.2"}}, {Name: "lan", Addresses: []string{"192.168.77.0/24"}}},
		Rules: []api.FirewallRule{{Action: api.ActionAccept, From: "web", To: "lan", Protocol: api.ProtocolTCP, Ports: []api.PortRange{{First: 8000, Last: 8100}}}}}
	l.apply(t, gw)
	if reaches(t, l.client, "10.77.0.2", "192.168.77.10:8080") {
		t.Fatal("the LAN host answers without a route back: the lab is broken")
	}
	gw.Masquerade = []string{"192.168.77.0/24"}
	if ops := l.apply(t, gw); ops.Chains != 1 || ops.Sets != 2 || ops.Rules != 2 {
		t.Errorf("turning masquerade on: %+v, want the nat chain, its 2 rules and 2 sets", ops)
	}
	if !reaches(t, l.client, "10.77.0.2", "192.168.77.10:8080") {
		t.Errorf("masqueraded connection fails\n%s", nft(t, l.host, "list", "ruleset"))
	}
	if reaches(t, l.client, "10.77.0.3", "192.168.77.10:8080") {
		t.Error("masquerade lets through what the policy drops")
	}
	gw.Masquerade = nil
	if ops := l.apply(t, gw); ops.Chains != 1 || ops.Sets != 2 {
		t.Errorf("turning masquerade off: %+v, want the nat chain and its 2 sets deleted", ops)
	}
	if out := nft(t, l.host, "list", "table", "inet", "drago"); strings.Contains(out, "masquerade") {
		t.Errorf("masquerade left after turning it off:\n%s", out)
	}
}

func TestFirewallRefusesBadInterfaceNames(t *testing.T) {
	l := newFwLab(t)
	p, _ := platform.ParseFirewall(webToDB())
	for _, name := range []string{"", "a/b", strings.Repeat("x", 16)} {
		if _, err := l.fw.Apply(name, p); err == nil {
			t.Errorf("Apply(%q) accepted", name)
		}
	}
}

// BenchmarkFirewallApply measures Apply on a 1,000-host policy (two sets
// of 1,000 addresses, 20 rules) in a network namespace: "unchanged" is the
// drift pass (read the kernel, change nothing), "host-joins" one host
// joining and leaving the sets (elements only).
func BenchmarkFirewallApply(b *testing.B) {
	if os.Getenv("DRAGO_PRIVILEGED_TESTS") != "1" {
		b.Skip("privileged benchmark: set DRAGO_PRIVILEGED_TESTS=1 (root, nf_tables)")
	}
	ns := fmt.Sprintf("dgpb-%08x", rand.Uint32())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		b.Fatalf("ip netns add: %v: %s", err, out)
	}
	b.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	var fw platform.Firewall
	var err error
	if nerr := platformtest.InNetns(ns, func() { fw, err = platform.NewFirewall(nil) }); nerr != nil || err != nil {
		b.Fatal(nerr, err)
	}
	defer fw.Close()

	policy := func(extra bool) *platform.FirewallPolicy {
		d := &api.DesiredFirewall{DefaultAction: api.ActionDrop}
		for _, name := range []string{"role=web", "role=db"} {
			s := api.FirewallSet{Name: name}
			for i := range 1000 {
				s.Addresses = append(s.Addresses, fmt.Sprintf("10.%d.%d.%d/32", len(name), i/250, 1+2*(i%125)))
			}
			d.Sets = append(d.Sets, s)
		}
		if extra {
			d.Sets[0].Addresses = append(d.Sets[0].Addresses, "10.200.0.1/32")
		}
		for i := range 20 {
			d.Rules = append(d.Rules, api.FirewallRule{Action: api.ActionAccept, From: "role=web", To: "role=db",
				Protocol: api.ProtocolTCP, Ports: []api.PortRange{{First: uint16(5000 + i), Last: uint16(5000 + i)}}})
		}
		p, err := platform.ParseFirewall(d)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	base, joined := policy(false), policy(true)
	if _, err := fw.Apply("dg-bench", base); err != nil {
		b.Fatal(err)
	}
	b.Run("unchanged", func(b *testing.B) {
		for b.Loop() {
			if ops, err := fw.Apply("dg-bench", base); err != nil || ops.Total() != 0 {
				b.Fatal(ops, err)
			}
		}
	})
	b.Run("host-joins", func(b *testing.B) {
		var total platform.FirewallOps
		n := 0
		for b.Loop() {
			p := joined
			if n%2 == 1 {
				p = base
			}
			ops, err := fw.Apply("dg-bench", p)
			if err != nil {
				b.Fatal(err)
			}
			total, n = total.Add(ops), n+1
		}
		if total.Rules != 0 || total.Sets != 0 {
			b.Errorf("a host joining rewrote rules or sets: %+v", total)
		}
		b.ReportMetric(float64(total.Elements)/float64(n), "elements/op")
		b.ReportMetric(float64(total.Rules)/float64(n), "rules/op")
	})
}

// TestFirewallReadsBackWhatItWrites: for every kind of rule drago writes
// (port ranges, ICMP of both families, any protocol, sets or none, both
// defaults, masquerade), a second Apply finds the kernel matching and
// changes nothing: the drift pass never rewrites a rule that is in place.
func TestFirewallReadsBackWhatItWrites(t *testing.T) {
	requireNft(t)
	fw := newFirewallIn(t, newNetns(t))
	sets := []api.FirewallSet{{Name: "a", Addresses: []string{"10.0.0.0/30", "10.0.0.9", "fd00::/64", "fd00:0:0:1::/64"}},
		{Name: "b", Addresses: []string{"0.0.0.0/0", "::/0"}}, {Name: "empty"}}
	policies := map[string]*api.DesiredFirewall{
		"ranges": {DefaultAction: api.ActionDrop, Sets: sets, Rules: []api.FirewallRule{
			{Action: api.ActionAccept, From: "a", To: "b", Protocol: api.ProtocolTCP, Ports: []api.PortRange{{First: 1, Last: 1024}, {First: 8080, Last: 8080}}},
			{Action: api.ActionDrop, To: "empty", Protocol: api.ProtocolUDP, Ports: []api.PortRange{{First: 53, Last: 53}}}}},
		"icmp-any": {DefaultAction: api.ActionAccept, Sets: sets, Rules: []api.FirewallRule{
			{Action: api.ActionAccept, Protocol: api.ProtocolICMP},
			{Action: api.ActionDrop, From: "a", Protocol: api.ProtocolICMP},
			{Action: api.ActionDrop, From: "b", To: "a", Protocol: api.ProtocolAny},
			{Action: api.ActionAccept, Protocol: api.ProtocolAny}}},
		"masquerade": {DefaultAction: api.ActionAccept, Masquerade: []string{"192.168.0.0/16", "fd10::/48"}},
	}
	for name, d := range policies {
		t.Run(name, func(t *testing.T) {
			p, err := platform.ParseFirewall(d)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fw.Apply("dg-rb", p); err != nil {
				t.Fatal(err)
			}
			if ops, err := fw.Apply("dg-rb", p); err != nil || ops.Total() != 0 {
				t.Errorf("second Apply: %+v, %v; want no change", ops, err)
			}
		})
	}
}

// TestFirewallRepairsForeignExpressions: rules an admin adds to drago's
// chains, with expressions drago never writes, are removed at the next
// Apply.
func TestFirewallRepairsForeignExpressions(t *testing.T) {
	l := newFwLab(t)
	l.apply(t, webToDB())
	want := nft(t, l.host, "list", "chain", "inet", "drago", fwIface+"-policy")
	for _, rule := range []string{
		`counter accept`,
		`log prefix "hello" accept`,
		`limit rate 10/second accept`,
		`meta mark set 0x1 accept`,
		`ip saddr { 10.77.0.3, 10.77.0.9 } tcp dport { 22, 5432 } accept`,
	} {
		nft(t, l.host, "insert", "rule", "inet", "drago", fwIface+"-policy", rule)
		ops := l.apply(t, webToDB())
		if ops.Rules == 0 {
			t.Errorf("rule %q not removed: %+v", rule, ops)
		}
		if out := nft(t, l.host, "list", "chain", "inet", "drago", fwIface+"-policy"); out != want {
			t.Errorf("after repairing %q:\n%s\nwant:\n%s", rule, out, want)
		}
	}
	l.checkEnforced(t)
}
