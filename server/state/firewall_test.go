package state

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden.json")

// policyNet is a network "prod" (10.0.0.0/24, fd00::/64, mesh) with hosts
// web-1, web-2 (role=web), db-1 (role=db), gw-1 (routing 192.168.1.0/24),
// a device "phone", each with a key, and a network "other" with host x-1.
type policyNet struct {
	t      *testing.T
	s      *State
	net    *api.Network
	hosts  map[string]string // name -> id
	ifaces map[string]string // host or device name -> interface id
	join   string            // join token id of prod
}

func newPolicyNet(t *testing.T) *policyNet {
	t.Helper()
	s, err := Open(store.NewMem(), slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := &policyNet{t: t, s: s, hosts: map[string]string{}, ifaces: map[string]string{}}
	p.net = p.must(s.CreateNetwork(api.Network{Name: "prod", IPv4Range: "10.0.0.0/24", IPv6Range: "fd00::/64", Topology: api.TopologyMesh})).(*api.Network)
	other := p.must(s.CreateNetwork(api.Network{Name: "other", IPv4Range: "10.9.0.0/24", Topology: api.TopologyMesh})).(*api.Network)
	p.join = p.joinToken(p.net.ID)
	for _, h := range []struct{ name, role string }{{"web-1", "web"}, {"web-2", "web"}, {"db-1", "db"}, {"gw-1", ""}} {
		p.addHost(h.name, p.join, map[string]string{"role": h.role})
	}
	p.must(s.UpdateInterface(p.ifaces["gw-1"], func(i *api.Interface) error {
		i.RoutedSubnets = []string{"192.168.1.0/24"}
		return nil
	}))
	dev := p.must(s.CreateDevice(api.DeviceRequest{Network: "prod", Name: "phone", PublicKey: testKeyOf("phone")})).(*api.Interface)
	p.ifaces["phone"] = dev.ID
	p.addHost("x-1", p.joinToken(other.ID), nil)
	return p
}

func (p *policyNet) must(v any, err error) any {
	p.t.Helper()
	if err != nil {
		p.t.Fatal(err)
	}
	return v
}

func (p *policyNet) joinToken(netID string) string {
	jt := p.must(p.s.CreateJoinToken(Trusted, api.JoinToken{Networks: []string{netID}})).(*api.JoinToken)
	_, id, _, _ := splitSecret(jt.Secret)
	return id
}

// addHost registers a host with labels and reports its key.
func (p *policyNet) addHost(name, join string, labels map[string]string) {
	p.t.Helper()
	maps.DeleteFunc(labels, func(_, v string) bool { return v == "" })
	reg := p.must(p.s.Register(join, api.RegisterRequest{Name: name, Labels: labels}, "192.0.2.1")).(*api.RegisterResponse)
	p.hosts[name] = reg.HostID
	ds := p.must(p.s.DesiredState(context.Background(), reg.HostID, 0, 0, false)).(*api.DesiredState)
	p.ifaces[name] = ds.Interfaces[0].ID
	rep := api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: ds.Interfaces[0].ID, PublicKey: testKeyOf(name)}}}
	if err := p.s.ReportStatus(reg.HostID, rep, "192.0.2.1"); err != nil {
		p.t.Fatal(err)
	}
}

// rule adds a rule at the end of prod's policy.
func (p *policyNet) rule(action, from, to, proto string, ports ...string) *api.Rule {
	p.t.Helper()
	return p.must(p.s.CreateRule(api.RuleRequest{Rule: api.Rule{NetworkID: "prod", Action: action,
		From: strings.Split(from, ","), To: strings.Split(to, ","), Protocol: proto, Ports: ports}})).(*api.Rule)
}

// firewall returns the compiled firewall the host's agent gets.
func (p *policyNet) firewall(host string) *api.DesiredFirewall {
	p.t.Helper()
	ds := p.must(p.s.DesiredState(context.Background(), p.hosts[host], 0, 0, false)).(*api.DesiredState)
	return ds.Interfaces[0].Firewall
}

func testKeyOf(name string) string {
	var k [32]byte
	copy(k[:], name)
	return base64.StdEncoding.EncodeToString(k[:])
}

func TestParseSelector(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind selKind
		bad  string // part of the error
	}{
		{in: "*", kind: selAny},
		{in: "host:web-1", kind: selHost},
		{in: "device:phone", kind: selDevice},
		{in: "interface:0123456789abcdef", kind: selInterface},
		{in: "subnets:gw-1", kind: selSubnets},
		{in: "role=db", kind: selLabel},
		{in: "app.kubernetes.io/name=web", kind: selLabel},
		{in: "10.0.0.0/24", kind: selCIDR},
		{in: "10.0.0.5", kind: selCIDR},
		{in: "fd00::/64", kind: selCIDR},
		{in: "host:", bad: "is not a name"},
		{in: "host:a b", bad: "is not a name"},
		{in: "pod:x", bad: "is not a selector"},
		{in: "web-1", bad: "is not a selector"},
		{in: "=db", bad: "label key"},
		{in: "role=\x1b[2J", bad: "non-printable"},
		{in: "10.0.0.1/24", bad: "host bits"},
		{in: "fe80::1%eth0", bad: "is not a selector"},
		{in: strings.Repeat("a", 300) + "=b", bad: "longer than 256"},
	} {
		sel, msg := parseSelector(tc.in)
		switch {
		case tc.bad != "" && !strings.Contains(msg, tc.bad):
			t.Errorf("%q: error %q, want one with %q", tc.in, msg, tc.bad)
		case tc.bad == "" && (msg != "" || sel.kind != tc.kind):
			t.Errorf("%q: kind %d, error %q; want kind %d", tc.in, sel.kind, msg, tc.kind)
		}
	}
}

func TestParsePorts(t *testing.T) {
	for _, tc := range []struct {
		proto string
		in    []string
		want  []api.PortRange
		field string // of the error
	}{
		{proto: "tcp", in: []string{"443", "80", "8000-8100"}, want: []api.PortRange{{First: 80, Last: 80}, {First: 443, Last: 443}, {First: 8000, Last: 8100}}},
		{proto: "udp", in: []string{"1", "65535"}, want: []api.PortRange{{First: 1, Last: 1}, {First: 65535, Last: 65535}}},
		{proto: "tcp", in: []string{"22", "22"}, field: "ports[1]"},
		{proto: "tcp", in: []string{"8000-8100", "8050"}, field: "ports[1]"},
		{proto: "tcp", in: []string{"9000-9100", "80", "8000-9000"}, field: "ports[2]"},
		{proto: "tcp", in: []string{"0"}, field: "ports[0]"},
		{proto: "tcp", in: []string{"65536"}, field: "ports[0]"},
		{proto: "tcp", in: []string{"100-99"}, field: "ports[0]"},
		{proto: "tcp", in: []string{"+22"}, field: "ports[0]"},
		{proto: "tcp", in: []string{"80,443"}, field: "ports[0]"},
		{proto: "tcp", in: []string{"ssh"}, field: "ports[0]"},
		{proto: "icmp", in: []string{"22"}, field: "ports"},
		{proto: "any", in: []string{"22"}, field: "ports"},
		{proto: "tcp", in: slices.Repeat([]string{"1"}, 65), field: "ports"},
	} {
		got, err := parsePorts("ports", tc.proto, tc.in)
		if tc.field != "" {
			if e, ok := err.(*Error); !ok || e.Field != tc.field {
				t.Errorf("%s %v: %v, want an error on %s", tc.proto, tc.in, err, tc.field)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s %v: %v %v, want %v", tc.proto, tc.in, got, err, tc.want)
		}
	}
}

// TestRuleValidation checks that each bad rule is refused naming its
// field and changes nothing.
func TestRuleValidation(t *testing.T) {
	p := newPolicyNet(t)
	ok := api.Rule{NetworkID: "prod", Action: "accept", From: []string{"role=web"}, To: []string{"role=db"}, Protocol: "tcp", Ports: []string{"5432"}}
	pos := func(n int) *int { return &n }
	for _, tc := range []struct {
		name  string
		edit  func(r *api.RuleRequest)
		field string
	}{
		{"no network", func(r *api.RuleRequest) { r.NetworkID = "" }, "network_id"},
		{"unknown network", func(r *api.RuleRequest) { r.NetworkID = "nope" }, "network_id"},
		{"id", func(r *api.RuleRequest) { r.ID = "abc" }, "id"},
		{"action", func(r *api.RuleRequest) { r.Action = "allow" }, "action"},
		{"no from", func(r *api.RuleRequest) { r.From = nil }, "from"},
		{"unknown selector", func(r *api.RuleRequest) { r.To = []string{"role=db", "pod:x"} }, "to[1]"},
		{"unknown host", func(r *api.RuleRequest) { r.From = []string{"host:nope"} }, "from[0]"},
		{"host of another network", func(r *api.RuleRequest) { r.From = []string{"host:x-1"} }, "from[0]"},
		{"subnets of another network", func(r *api.RuleRequest) { r.To = []string{"subnets:x-1"} }, "to[0]"},
		{"unknown device", func(r *api.RuleRequest) { r.From = []string{"device:laptop"} }, "from[0]"},
		{"interface of another network", func(r *api.RuleRequest) { r.From = []string{"interface:" + p.ifaces["x-1"]} }, "from[0]"},
		{"cidr outside", func(r *api.RuleRequest) { r.From = []string{"10.9.0.0/24"} }, "from[0]"},
		{"cidr wider than the network", func(r *api.RuleRequest) { r.From = []string{"10.0.0.0/8"} }, "from[0]"},
		{"too many selectors", func(r *api.RuleRequest) { r.From = slices.Repeat([]string{"role=web"}, 33) }, "from"},
		{"protocol", func(r *api.RuleRequest) { r.Protocol = "sctp" }, "protocol"},
		{"ports on icmp", func(r *api.RuleRequest) { r.Protocol = "icmp" }, "ports"},
		{"overlapping ports", func(r *api.RuleRequest) { r.Ports = []string{"5000-6000", "5432"} }, "ports[1]"},
		{"bad port", func(r *api.RuleRequest) { r.Ports = []string{"70000"} }, "ports[0]"},
		{"long description", func(r *api.RuleRequest) { r.Description = strings.Repeat("x", 257) }, "description"},
		{"escape in description", func(r *api.RuleRequest) { r.Description = "\x1b]0;owned\x07" }, "description"},
		{"position past the end", func(r *api.RuleRequest) { r.Position = pos(1) }, "position"},
		{"negative position", func(r *api.RuleRequest) { r.Position = pos(-1) }, "position"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := p.s.Index()
			req := api.RuleRequest{Rule: ok}
			req.From, req.To, req.Ports = slices.Clone(ok.From), slices.Clone(ok.To), slices.Clone(ok.Ports)
			tc.edit(&req)
			_, err := p.s.CreateRule(req)
			e, isErr := err.(*Error)
			if !isErr || e.Field != tc.field || e.Class != ErrInvalid {
				t.Fatalf("%v, want an invalid %s", err, tc.field)
			}
			if p.s.Index() != before {
				t.Fatal("a refused rule changed the state")
			}
		})
	}
	// The good rule passes, and so do selectors of things that exist.
	r := p.must(p.s.CreateRule(api.RuleRequest{Rule: ok})).(*api.Rule)
	for _, sel := range []string{"*", "host:web-1", "host:" + p.hosts["db-1"], "device:phone", "interface:" + p.ifaces["gw-1"],
		"subnets:gw-1", "nobody=yet", "10.0.0.0/25", "10.0.0.7", "fd00::/64", "192.168.1.128/25"} {
		if _, err := p.s.UpdateRule(r.ID, func(r *api.Rule) error { r.From = []string{sel}; return nil }); err != nil {
			t.Errorf("selector %q: %v", sel, err)
		}
	}
	// A selector whose host left stays valid while the rule moves or changes.
	if _, err := p.s.UpdateRule(r.ID, func(r *api.Rule) error { r.From = []string{"host:web-2"}; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := p.s.DeleteHost(Trusted, "web-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.s.UpdateRule(r.ID, func(r *api.Rule) error { r.Ports = []string{"5433"}; return nil }); err != nil {
		t.Errorf("a rule naming a deleted host, changed: %v", err)
	}
	if _, err := p.s.UpdateRule(r.ID, func(r *api.Rule) error { r.To = []string{"host:web-2"}; return nil }); err == nil {
		t.Error("a deleted host named anew")
	}
	for _, tc := range []struct {
		name, body, field string
	}{
		{"network", `{"network_id":"other"}`, "network_id"},
		{"position", `{"position":1}`, "position"},
		{"ports on any", `{"protocol":"any"}`, "ports"},
	} {
		before := p.s.Index()
		_, err := p.s.UpdateRule(r.ID, func(r *api.Rule) error { return json.Unmarshal([]byte(tc.body), r) })
		if e, ok := err.(*Error); !ok || e.Field != tc.field {
			t.Errorf("update %s: %v, want an error on %s", tc.name, err, tc.field)
		}
		if p.s.Index() != before {
			t.Errorf("update %s: a refused update changed the state", tc.name)
		}
	}
}

// TestRuleLimit fills a network's policy: the rule past MaxRules is refused.
func TestRuleLimit(t *testing.T) {
	p := newPolicyNet(t)
	for k := range MaxRules {
		p.rule("accept", "role=web", "role=db", "tcp", fmt.Sprint(1+k))
	}
	_, err := p.s.CreateRule(api.RuleRequest{Rule: api.Rule{NetworkID: "prod", Action: "drop", From: []string{"*"}, To: []string{"*"}}})
	if e, ok := err.(*Error); !ok || e.Class != ErrConflict || e.Field != "network_id" {
		t.Fatalf("rule %d: %v, want a conflict on network_id", MaxRules+1, err)
	}
}

// TestRulePositions inserts, moves and deletes rules: positions stay
// 0..n-1 in the order asked, in memory and after a reload.
func TestRulePositions(t *testing.T) {
	st := store.NewMem()
	s, err := Open(st, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateNetwork(api.Network{Name: "n", IPv4Range: "10.0.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	add := func(name string, at *int) {
		r, err := s.CreateRule(api.RuleRequest{Rule: api.Rule{NetworkID: "n", Action: "accept", From: []string{"*"}, To: []string{"*"}, Description: name}, Position: at})
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = r.ID
	}
	at := func(n int) *int { return &n }
	order := func(s *State, want ...string) {
		t.Helper()
		l, err := s.Rules(Filter{Network: "n"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for k, r := range l.Items {
			if r.Position != k {
				t.Errorf("rule %s at index %d has position %d", r.Description, k, r.Position)
			}
			got = append(got, r.Description)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
	move := func(name string, to int) {
		t.Helper()
		if _, err := s.UpdateRule(ids[name], func(r *api.Rule) error { r.Position = to; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	add("a", nil)
	add("b", nil)
	add("c", at(0))
	add("d", at(2))
	order(s, "c", "a", "d", "b")
	move("c", 3)
	order(s, "a", "d", "b", "c")
	move("b", 0)
	order(s, "b", "a", "d", "c")
	if err := s.DeleteRule(ids["a"]); err != nil {
		t.Fatal(err)
	}
	order(s, "b", "d", "c")
	s2, err := Open(st, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	order(s2, "b", "d", "c")
	if err := s.DeleteNetwork("n"); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.Rules(Filter{}); l.Total != 0 || len(s.rules) != 0 {
		t.Fatalf("rules left after the network's deletion: %+v", l)
	}
}

// TestCompileGolden compiles a policy for every host of a network and
// compares the firewalls their agents get with testdata (go test -run
// CompileGolden -update rewrites it).
func TestCompileGolden(t *testing.T) {
	p := newPolicyNet(t)
	p.must(p.s.UpdateNetwork("prod", func(n *api.Network) error { n.DefaultAction = api.ActionDrop; return nil }))
	p.rule("accept", "*", "*", "icmp")
	p.rule("accept", "role=web", "role=db", "tcp", "5432")
	p.rule("accept", "device:phone,host:web-1", "host:gw-1,subnets:gw-1", "tcp", "22", "8000-8100")
	p.rule("drop", "10.0.0.0/25", "192.168.1.0/25", "udp", "53")
	p.rule("accept", "role=web", "role=web", "tcp", "80", "443")
	p.must(p.s.UpdateInterface(p.ifaces["gw-1"], func(i *api.Interface) error { i.Masquerade = true; return nil }))
	got := map[string]*api.DesiredFirewall{}
	for _, h := range []string{"web-1", "web-2", "db-1", "gw-1", "x-1"} {
		got[h] = p.firewall(h)
	}
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/firewall.golden.json"
	if *updateGolden {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(b)+"\n"); diff != "" {
		t.Errorf("compiled firewalls differ from %s (-want +got):\n%s", golden, diff)
	}
}

// TestNoPolicyNoFirewall: a network that accepts by default without rules
// sends no firewall, nor does one whose rules target other hosts.
func TestNoPolicyNoFirewall(t *testing.T) {
	p := newPolicyNet(t)
	for _, h := range []string{"web-1", "db-1", "gw-1"} {
		if fw := p.firewall(h); fw != nil {
			t.Fatalf("%s without a policy: %+v", h, fw)
		}
	}
	p.rule("accept", "role=web", "role=db", "tcp", "5432")
	if p.firewall("web-1") != nil || p.firewall("db-1") == nil {
		t.Fatalf("rule to role=db: web-1 %+v, db-1 %+v", p.firewall("web-1"), p.firewall("db-1"))
	}
	p.must(p.s.UpdateNetwork("prod", func(n *api.Network) error { n.DefaultAction = api.ActionDrop; return nil }))
	if fw := p.firewall("web-1"); fw == nil || fw.DefaultAction != api.ActionDrop || len(fw.Rules) != 0 {
		t.Fatalf("default drop: web-1 %+v", fw)
	}
}

// hostIndexes returns every host's desired-state index.
func (p *policyNet) hostIndexes() map[string]uint64 {
	p.s.mu.RLock()
	defer p.s.mu.RUnlock()
	return maps.Clone(p.s.hostIndex)
}

// woken lists the names of the hosts whose index moved since before.
func (p *policyNet) woken(before map[string]uint64) []string {
	var out []string
	after := p.hostIndexes()
	for name, id := range p.hosts {
		if after[id] != before[id] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// TestPolicyChangeWakesOnlyAffectedHosts checks that a policy change wakes
// exactly the hosts whose firewall changed, and that they get it as a
// delta patch.
func TestPolicyChangeWakesOnlyAffectedHosts(t *testing.T) {
	p := newPolicyNet(t)
	ctx := context.Background()
	// step makes a change and checks the hosts it wakes; those in patched
	// get their new firewall as a delta patch.
	step := func(name string, change func(), patched []string, want ...string) {
		t.Helper()
		before := p.hostIndexes()
		change()
		if got := p.woken(before); !slices.Equal(got, want) {
			t.Errorf("%s woke %v, want %v", name, got, want)
		}
		for _, h := range patched {
			ds := p.must(p.s.DesiredState(ctx, p.hosts[h], before[p.hosts[h]], 0, true)).(*api.DesiredState)
			if !ds.IsDelta() || len(ds.Patches) != 1 || ds.Patches[0].Firewall == nil {
				t.Errorf("%s: %s gets no firewall patch: %+v", name, h, ds)
			}
		}
	}
	one := func(h string) []string { return []string{h} }
	var r *api.Rule
	step("a rule to role=db", func() { r = p.rule("accept", "role=web", "role=db", "tcp", "5432") }, one("db-1"), "db-1")
	step("a rule to gw-1's subnets", func() { p.rule("drop", "*", "subnets:gw-1", "any") }, one("gw-1"), "gw-1")
	before := p.hostIndexes()
	step("a port change", func() {
		p.must(p.s.UpdateRule(r.ID, func(r *api.Rule) error { r.Ports = []string{"5433"}; return nil }))
	}, one("db-1"), "db-1")
	// The patch carries the rules, not the sets, which did not change.
	if ds := p.must(p.s.DesiredState(ctx, p.hosts["db-1"], before[p.hosts["db-1"]], 0, true)).(*api.DesiredState); len(ds.Patches[0].Firewall.Sets) != 0 {
		t.Errorf("a port change sends sets: %+v", ds.Patches[0].Firewall.Sets)
	}
	step("a label change of a source", func() {
		p.must(p.s.UpdateHost(Trusted, "web-2", func(h *api.Host) error { h.Labels = map[string]string{"role": "batch"}; return nil }))
	}, one("db-1"), "db-1", "web-2") // web-2's own host changed; db-1's set lost an element
	step("a description", func() {
		p.must(p.s.UpdateRule(r.ID, func(r *api.Rule) error { r.Description = "postgres"; return nil }))
	}, nil)
	step("the default action", func() {
		p.must(p.s.UpdateNetwork("prod", func(n *api.Network) error { n.DefaultAction = api.ActionDrop; return nil }))
	}, nil, "db-1", "gw-1", "web-1", "web-2") // a network change sends whole states
	step("a rule removed", func() {
		if err := p.s.DeleteRule(r.ID); err != nil {
			t.Fatal(err)
		}
	}, one("db-1"), "db-1")
	step("a key report", func() {
		rep := api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: p.ifaces["db-1"], PublicKey: testKeyOf("db-1b")}}}
		if err := p.s.ReportStatus(p.hosts["db-1"], rep, "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
	}, nil, "db-1", "gw-1", "web-1", "web-2") // the mesh learns the key; no firewall changed
}

// TestHostJoiningChangesOnlySetElements checks that a host joining with a
// label changes the elements of the other hosts' sets, not their rules.
func TestHostJoiningChangesOnlySetElements(t *testing.T) {
	p := newPolicyNet(t)
	p.must(p.s.UpdateNetwork("prod", func(n *api.Network) error { n.DefaultAction = api.ActionDrop; return nil }))
	p.rule("accept", "role=web", "role=db", "tcp", "5432")
	p.rule("accept", "*", "role=web", "tcp", "443")
	p.rule("accept", "host:gw-1", "*", "tcp", "22")
	before := map[string]*api.DesiredFirewall{}
	for _, h := range []string{"web-1", "web-2", "db-1", "gw-1"} {
		before[h] = p.firewall(h)
	}
	idx := p.hostIndexes()[p.hosts["db-1"]]
	p.addHost("web-3", p.join, map[string]string{"role": "web"})
	// db-1's delta carries the one set that changed.
	if ds := p.must(p.s.DesiredState(context.Background(), p.hosts["db-1"], idx, 0, true)).(*api.DesiredState); !ds.IsDelta() {
		t.Error("db-1 gets a whole state for a host joining")
	} else {
		var sets []string
		for _, pt := range ds.Patches {
			if pt.Firewall != nil {
				for _, s := range pt.Firewall.Sets {
					sets = append(sets, s.Name)
				}
			}
		}
		if want := setName("f", []string{"role=web"}); !slices.Equal(sets, []string{want}) {
			t.Errorf("db-1's delta carries sets %v, want [%s]", sets, want)
		}
	}
	for h, old := range before {
		fw := p.firewall(h)
		if diff := cmp.Diff(old.Rules, fw.Rules); diff != "" {
			t.Errorf("%s: rules changed (-old +new):\n%s", h, diff)
		}
		names := func(d *api.DesiredFirewall) (out []string) {
			for _, s := range d.Sets {
				out = append(out, s.Name)
			}
			return out
		}
		if !slices.Equal(names(old), names(fw)) {
			t.Errorf("%s: sets %v became %v", h, names(old), names(fw))
		}
		if changed := old.Revision != fw.Revision; changed != (h == "db-1") {
			t.Errorf("%s: revision changed: %v", h, changed)
		}
	}
	fw := p.firewall("db-1")
	web := fw.Sets[slices.IndexFunc(fw.Sets, func(s api.FirewallSet) bool { return s.Name == fw.Rules[0].From })]
	if len(web.Addresses) != 6 { // three web hosts, v4 and v6
		t.Errorf("db-1's role=web set holds %v, want 6 addresses", web.Addresses)
	}
}

// TestRuleCheck evaluates flows against the firewall the destination
// enforces.
func TestRuleCheck(t *testing.T) {
	p := newPolicyNet(t)
	p.must(p.s.UpdateNetwork("prod", func(n *api.Network) error { n.DefaultAction = api.ActionDrop; return nil }))
	pg := p.rule("accept", "role=web", "role=db", "tcp", "5432")
	ssh := p.rule("accept", "device:phone", "*", "tcp", "22")
	block := p.rule("drop", "10.0.0.0/24", "subnets:gw-1", "any")
	ping := p.rule("accept", "*", "*", "icmp")
	dbAddr := strings.Split(p.must(p.s.Interface(p.ifaces["db-1"])).(*api.Interface).Addresses[0], "/")[0]
	for _, tc := range []struct {
		from, to, port string
		action         string
		rule           *api.Rule
	}{
		{"web-1", "db-1", "5432/tcp", "accept", pg},
		{"host:web-2", "host:db-1", "5432/tcp", "accept", pg},
		{"web-1", dbAddr, "5432/tcp", "accept", pg},
		{"web-1", "db-1", "5432/udp", "drop", nil},
		{"web-1", "db-1", "22/tcp", "drop", nil},
		{"db-1", "web-1", "5432/tcp", "drop", nil},
		{"web-1", "web-2", "5432/tcp", "drop", nil},
		{"phone", "db-1", "22/tcp", "accept", ssh},
		{"device:phone", "gw-1", "22/tcp", "accept", ssh},
		{"web-1", "192.168.1.20", "22/tcp", "drop", block},
		{"web-1", "192.168.1.20", "icmp", "drop", block},
		{"web-1", "gw-1", "icmp", "accept", ping},
		{"web-1", "db-1", "", "drop", nil}, // only protocol-any rules match a flow of no protocol
	} {
		v, err := p.s.CheckRule(api.RuleCheck{NetworkID: "prod", From: tc.from, To: tc.to, Port: tc.port})
		if err != nil {
			t.Errorf("%s -> %s %s: %v", tc.from, tc.to, tc.port, err)
			continue
		}
		wantID := ""
		if tc.rule != nil {
			wantID = tc.rule.ID
		}
		if v.Action != tc.action || v.RuleID != wantID || v.Reason == "" {
			t.Errorf("%s -> %s %s: %+v, want %s by rule %q", tc.from, tc.to, tc.port, v, tc.action, wantID)
		}
	}
	for _, tc := range []struct {
		check api.RuleCheck
		field string
	}{
		{api.RuleCheck{From: "web-1", To: "db-1"}, "network_id"},
		{api.RuleCheck{NetworkID: "prod", From: "nobody", To: "db-1"}, "from"},
		{api.RuleCheck{NetworkID: "prod", From: "role=web", To: "db-1"}, "from"},
		{api.RuleCheck{NetworkID: "prod", From: "web-1", To: "x-1"}, "to"},
		{api.RuleCheck{NetworkID: "prod", From: "web-1", To: "10.0.0.0/24"}, "to"},
		{api.RuleCheck{NetworkID: "prod", From: "web-1", To: "10.0.0.200"}, "to"},
		{api.RuleCheck{NetworkID: "prod", From: "web-1", To: "db-1", Port: "5432"}, "port"},
		{api.RuleCheck{NetworkID: "prod", From: "web-1", To: "db-1", Port: "0/tcp"}, "port"},
		{api.RuleCheck{NetworkID: "prod", From: "web-1", To: "db-1", Port: "22/sctp"}, "port"},
	} {
		if _, err := p.s.CheckRule(tc.check); err == nil || err.(*Error).Field != tc.field {
			t.Errorf("%+v: %v, want an error on %s", tc.check, err, tc.field)
		}
	}
	// A device runs no agent, and one interface talks to itself unfiltered.
	for _, c := range []api.RuleCheck{{NetworkID: "prod", From: "web-1", To: "phone", Port: "22/tcp"}, {NetworkID: "prod", From: "db-1", To: dbAddr, Port: "22/tcp"}} {
		if v, err := p.s.CheckRule(c); err != nil || v.Action != api.ActionAccept || v.RuleID != "" {
			t.Errorf("%+v: %+v %v, want accept by no rule", c, v, err)
		}
	}
	_ = ping
}

// TestFirewallStatus checks that agents' firewall reports show on their
// interfaces and count as behind until they enforce the current revision.
func TestFirewallStatus(t *testing.T) {
	p := newPolicyNet(t)
	p.rule("accept", "role=web", "role=db", "tcp", "5432")
	rev := p.firewall("db-1").Revision
	report := func(fs *api.FirewallStatus) error {
		rep := api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: p.ifaces["db-1"], PublicKey: testKeyOf("db-1"), Firewall: fs}}}
		return p.s.ReportStatus(p.hosts["db-1"], rep, "192.0.2.1")
	}
	behind := func() int {
		n := p.s.Overview(Trusted).FirewallBehind
		l, err := p.s.Interfaces(Filter{FirewallBehind: true}, false)
		if err != nil || l.Total != n || (n == 1 && l.Items[0].ID != p.ifaces["db-1"]) {
			t.Fatalf("interfaces behind: %+v %v, the overview counts %d", l, err, n)
		}
		return n
	}
	if n := behind(); n != 1 {
		t.Fatalf("before any report: %d behind, want 1 (db-1)", n)
	}
	if err := report(&api.FirewallStatus{Enforced: true, Revision: rev}); err != nil {
		t.Fatal(err)
	}
	i := p.must(p.s.Interface(p.ifaces["db-1"])).(*api.Interface)
	if i.FirewallRevision != rev || i.Firewall == nil || i.Firewall.Revision != rev || behind() != 0 {
		t.Fatalf("after enforcing: %+v / %+v, %d behind", i.Firewall, i.FirewallRevision, behind())
	}
	if err := report(&api.FirewallStatus{Reason: "nf_tables not available"}); err != nil || behind() != 1 {
		t.Fatalf("not enforced: %v, %d behind", err, behind())
	}
	if v, err := p.s.CheckRule(api.RuleCheck{NetworkID: "prod", From: "web-1", To: "db-1", Port: "5432/tcp"}); err != nil ||
		v.Action != api.ActionAccept || !strings.Contains(v.Reason, "does not enforce the policy yet (nf_tables not available)") {
		t.Errorf("check towards a host that does not enforce: %+v %v", v, err)
	}
	for _, fs := range []*api.FirewallStatus{{Reason: strings.Repeat("x", 257)}, {Reason: "\x1b[31mred"}} {
		err := report(fs)
		if e, ok := err.(*Error); !ok || e.Field != "interfaces[0].firewall.reason" {
			t.Errorf("reason %q: %v", fs.Reason, err)
		}
	}
	if _, err := p.s.UpdateInterface(p.ifaces["db-1"], func(i *api.Interface) error {
		i.Firewall = &api.FirewallStatus{Enforced: true, Revision: rev}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if behind() != 1 {
		t.Fatal("a PATCH set the observed firewall status")
	}
}

// TestMasquerade checks masquerade needs routed subnets and lists them.
func TestMasquerade(t *testing.T) {
	p := newPolicyNet(t)
	set := func(id string, on bool, subnets ...string) error {
		_, err := p.s.UpdateInterface(id, func(i *api.Interface) error {
			i.Masquerade = on
			if subnets != nil {
				i.RoutedSubnets = subnets
			}
			return nil
		})
		return err
	}
	for name, err := range map[string]error{
		"no subnets":   set(p.ifaces["web-1"], true),
		"a device":     set(p.ifaces["phone"], true),
		"subnets gone": set(p.ifaces["gw-1"], true, []string{}...),
	} {
		if e, ok := err.(*Error); !ok || e.Field != "masquerade" {
			t.Errorf("%s: %v, want an error on masquerade", name, err)
		}
	}
	if err := set(p.ifaces["gw-1"], true); err != nil {
		t.Fatal(err)
	}
	fw := p.firewall("gw-1")
	if fw == nil || !slices.Equal(fw.Masquerade, []string{"192.168.1.0/24"}) || fw.DefaultAction != api.ActionAccept || len(fw.Rules) != 0 {
		t.Fatalf("masquerading gateway: %+v", fw)
	}
	if p.firewall("web-1") != nil {
		t.Fatal("other hosts got a firewall")
	}
}

// TestDefaultActionOfOldNetworks: networks stored before policies existed
// read as accept.
func TestDefaultActionOfOldNetworks(t *testing.T) {
	st := store.NewMem()
	if err := st.Update(func(tx store.Tx) error {
		return tx.Put(store.KindNetworks, "n1", map[string]any{"id": "n1", "name": "old", "ipv4_range": "10.0.0.0/24", "listen_port": 51820, "mtu": 1420, "topology": "mesh"})
	}); err != nil {
		t.Fatal(err)
	}
	s, err := Open(st, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Network("old")
	if err != nil || n.DefaultAction != api.ActionAccept {
		t.Fatalf("old network: %+v %v", n, err)
	}
	if _, err := s.UpdateNetwork("old", func(n *api.Network) error { n.DefaultAction = "reject"; return nil }); err == nil || err.(*Error).Field != "default_action" {
		t.Fatalf("default action reject: %v", err)
	}
}

// policyFleet is a 1,000-host mesh "n0" whose every tenth host is
// labelled role=db, the others role=web, with a rule from role=web to
// role=db.
func policyFleet(b *testing.B) (*State, *api.Rule) {
	s, hosts := fleet(b, 1, 1000, api.TopologyMesh)
	for k, h := range hosts[0] {
		role := "web"
		if k%10 == 0 {
			role = "db"
		}
		if _, err := s.UpdateHost(Trusted, h, func(h *api.Host) error { h.Labels = map[string]string{"role": role}; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	r, err := s.CreateRule(api.RuleRequest{Rule: api.Rule{NetworkID: "n0", Action: "accept", From: []string{"role=web"}, To: []string{"role=db"}, Protocol: "tcp", Ports: []string{"1"}}})
	if err != nil {
		b.Fatal(err)
	}
	return s, r
}

// BenchmarkPolicyChange1000Mesh changes the port of the rule of
// policyFleet: a persisted write that recompiles the network's firewalls
// and wakes the 100 db hosts.
func BenchmarkPolicyChange1000Mesh(b *testing.B) {
	s, r := policyFleet(b)
	b.ResetTimer()
	k := 0
	for b.Loop() {
		k++
		if _, err := s.UpdateRule(r.ID, func(r *api.Rule) error { r.Ports = []string{fmt.Sprint(1 + k%60000)}; return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRegisterInto1000MeshWithPolicy registers role=web hosts into the
// mesh of policyFleet: each registration recompiles the network's
// firewalls (the db hosts' role=web sets gain an element).
func BenchmarkRegisterInto1000MeshWithPolicy(b *testing.B) {
	s, _ := policyFleet(b)
	jt, err := s.CreateJoinToken(Trusted, api.JoinToken{Networks: []string{"n0"}, Labels: map[string]string{"role": "web"}})
	if err != nil {
		b.Fatal(err)
	}
	_, joinID, _, _ := splitSecret(jt.Secret)
	b.ResetTimer()
	k := 0
	for b.Loop() {
		k++
		if _, err := s.Register(joinID, api.RegisterRequest{Name: fmt.Sprintf("new-%d", k)}, "192.0.2.1"); err != nil {
			b.Fatal(err)
		}
	}
}
