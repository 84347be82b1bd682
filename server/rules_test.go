package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/drago-wg/drago/server/api"
)

// TestRulesAPI drives access rules through the HTTP API: create, list,
// move, check, delete, with the events they emit, and an agent that gets
// the compiled firewall through its blocking query.
func TestRulesAPI(t *testing.T) {
	ts := startServer(t, "")
	c, ctx := ts.rootClient(), context.Background()
	must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "prod", IPv4Range: "10.4.0.0/24", Topology: api.TopologyMesh}))
	web, _ := ts.agentHost("web-1", "prod")
	db, _ := ts.agentHost("db-1", "prod")
	must[*api.Host](t)(c.UpdateHost(ctx, "web-1", map[string]any{"labels": map[string]string{"role": "web"}}))
	must[*api.Host](t)(c.UpdateHost(ctx, "db-1", map[string]any{"labels": map[string]string{"role": "db"}}))
	state := must[*api.DesiredState](t)(db.DesiredState(ctx, 0, 0))
	if state.Interfaces[0].Firewall != nil {
		t.Fatalf("firewall without a policy: %+v", state.Interfaces[0].Firewall)
	}
	events := must[*api.Events](t)(c.Events(ctx, 0, 0))

	// The agent of db-1 waits; a rule to role=db wakes it with a firewall.
	got := make(chan *api.DesiredState, 1)
	go func() {
		ds, err := db.DesiredDelta(ctx, state.Index, 10*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- ds
	}()
	time.Sleep(50 * time.Millisecond)
	pg := must[*api.Rule](t)(c.CreateRule(ctx, &api.RuleRequest{Rule: api.Rule{NetworkID: "prod", Action: "accept",
		From: []string{"role=web"}, To: []string{"role=db"}, Protocol: "tcp", Ports: []string{"5432"}, Description: "postgres"}}))
	ds := <-got
	if !ds.IsDelta() || len(ds.Patches) != 1 || ds.Patches[0].Firewall == nil {
		t.Fatalf("db-1 woken with %+v, want a firewall patch", ds)
	}
	patched, err := ds.Patched(state)
	if err != nil {
		t.Fatal(err)
	}
	fw := patched.Interfaces[0].Firewall
	if fw.DefaultAction != "accept" || len(fw.Rules) != 1 || fw.Rules[0].Ports[0] != (api.PortRange{First: 5432, Last: 5432}) {
		t.Fatalf("db-1's firewall: %+v", fw)
	}
	if ws := must[*api.DesiredState](t)(web.DesiredState(ctx, 0, 0)); ws.Interfaces[0].Firewall != nil {
		t.Errorf("web-1, no rule's destination, got a firewall: %+v", ws.Interfaces[0].Firewall)
	}

	zero := 0
	first := must[*api.Rule](t)(c.CreateRule(ctx, &api.RuleRequest{Rule: api.Rule{NetworkID: "prod", Action: "drop",
		From: []string{"*"}, To: []string{"role=db"}, Protocol: "tcp", Ports: []string{"5432"}}, Position: &zero}))
	v := must[*api.RuleVerdict](t)(c.CheckRule(ctx, &api.RuleCheck{NetworkID: "prod", From: "web-1", To: "db-1", Port: "5432/tcp"}))
	if v.Action != "drop" || v.RuleID != first.ID || v.Position != 0 {
		t.Fatalf("check with the drop rule first: %+v", v)
	}
	must[*api.Rule](t)(c.UpdateRule(ctx, first.ID, map[string]any{"position": 1}))
	v = must[*api.RuleVerdict](t)(c.CheckRule(ctx, &api.RuleCheck{NetworkID: "prod", From: "web-1", To: "db-1", Port: "5432/tcp"}))
	if v.Action != "accept" || v.RuleID != pg.ID || v.Position != 0 {
		t.Fatalf("check with the accept rule first: %+v", v)
	}
	list := must[*api.List[api.Rule]](t)(c.Rules(ctx, api.ListOptions{Network: "prod"}))
	if len(list.Items) != 2 || list.Items[0].ID != pg.ID || list.Items[1].ID != first.ID {
		t.Fatalf("rules in order: %+v", list.Items)
	}
	if err := c.DeleteRule(ctx, pg.ID); err != nil {
		t.Fatal(err)
	}
	if r := must[*api.Rule](t)(c.Rule(ctx, first.ID)); r.Position != 0 {
		t.Fatalf("the rule after a deleted one: position %d", r.Position)
	}
	kinds := map[string]int{}
	for _, e := range must[*api.Events](t)(c.Events(ctx, events.Index, 0)).Events {
		if e.Kind == "rule" {
			kinds[e.Action]++
			if len(e.Networks) != 1 {
				t.Errorf("rule event without its network: %+v", e)
			}
		}
	}
	if kinds["created"] != 2 || kinds["updated"] != 1 || kinds["deleted"] != 1 {
		t.Errorf("rule events: %v", kinds)
	}
}

// TestRulesScopedByNetwork checks that a token of network b neither sees
// nor writes the rules of network a, nor names a's objects in b's rules.
func TestRulesScopedByNetwork(t *testing.T) {
	ts := startServer(t, "")
	twoNetworks(t, ts)
	ctx := context.Background()
	ts.agentHost("ha", "a")
	ts.agentHost("hb", "b")
	ra := must[*api.Rule](t)(ts.rootClient().CreateRule(ctx, &api.RuleRequest{Rule: api.Rule{NetworkID: "a", Action: "drop", From: []string{"*"}, To: []string{"host:ha"}}}))
	other, _ := ts.token("other", api.Policy{Resource: "*", Access: "write", Networks: []string{"b"}})
	rulesOnly, _ := ts.token("rules-b", api.Policy{Resource: "rules", Access: "write", Networks: []string{"b"}})
	netsOnly, _ := ts.token("nets", api.Policy{Resource: "networks", Access: "write"})
	before := ts.srv.State().Index()
	for name, err := range map[string]error{
		"read a's rule":   func() error { _, err := other.Rule(ctx, ra.ID); return err }(),
		"move a's rule":   func() error { _, err := other.UpdateRule(ctx, ra.ID, map[string]any{"position": 0}); return err }(),
		"delete a's rule": other.DeleteRule(ctx, ra.ID),
		"rule in a": func() error {
			_, err := other.CreateRule(ctx, &api.RuleRequest{Rule: api.Rule{NetworkID: "a", Action: "drop", From: []string{"*"}, To: []string{"*"}}})
			return err
		}(),
		"check in a": func() error {
			_, err := other.CheckRule(ctx, &api.RuleCheck{NetworkID: "a", From: "ha", To: "ha"})
			return err
		}(),
		"networks grant": func() error {
			_, err := netsOnly.CreateRule(ctx, &api.RuleRequest{Rule: api.Rule{NetworkID: "b", Action: "drop", From: []string{"*"}, To: []string{"*"}}})
			return err
		}(),
		"rules of a listed": func() error { _, err := netsOnly.Rules(ctx, api.ListOptions{}); return err }(),
	} {
		if s := api.StatusOf(err); s != http.StatusForbidden {
			t.Errorf("%s: %v, want 403", name, err)
		}
	}
	// Objects of a named in a rule of b are refused as if they did not exist.
	for _, sel := range []string{"host:ha", "subnets:ha", "10.1.0.0/24"} {
		_, err := rulesOnly.CreateRule(ctx, &api.RuleRequest{Rule: api.Rule{NetworkID: "b", Action: "drop", From: []string{sel}, To: []string{"*"}}})
		if re, ok := err.(*api.ResponseError); !ok || re.Status != http.StatusBadRequest || re.Field != "from[0]" || strings.Contains(re.Message, ra.ID) {
			t.Errorf("selector %s of network a in a rule of b: %v", sel, err)
		}
	}
	if ts.srv.State().Index() != before {
		t.Fatal("a refused rule call changed the state")
	}
	if l := must[*api.List[api.Rule]](t)(other.Rules(ctx, api.ListOptions{})); l.Total != 0 {
		t.Errorf("a token of b lists a's rules: %+v", l.Items)
	}
	must[*api.Rule](t)(rulesOnly.CreateRule(ctx, &api.RuleRequest{Rule: api.Rule{NetworkID: "b", Action: "drop", From: []string{"host:hb"}, To: []string{"*"}}}))
}

// TestRuleBadInput sends bad rule bodies over HTTP: each gets a 4xx naming
// the field and changes nothing; the 1,001st rule of a network is refused.
func TestRuleBadInput(t *testing.T) {
	ts := startServer(t, "")
	c, ctx := ts.rootClient(), context.Background()
	must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "net", IPv4Range: "10.0.0.0/24"}))
	ts.agentHost("h1", "net")
	iface := must[*api.List[api.Interface]](t)(c.Interfaces(ctx, api.ListOptions{Host: "h1"})).Items[0].ID
	r := must[*api.Rule](t)(c.CreateRule(ctx, &api.RuleRequest{Rule: api.Rule{NetworkID: "net", Action: "accept", From: []string{"*"}, To: []string{"host:h1"}, Protocol: "tcp", Ports: []string{"22"}}}))
	js := "application/json"
	good := func(extra string) string {
		return `{"network_id":"net","action":"accept","from":["*"],"to":["host:h1"],"protocol":"tcp","ports":["22"]` + extra + `}`
	}
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		field                    string
	}{
		{"unknown field", "POST", "/rules", good(`,"colour":"red"`), 400, "colour"},
		{"id", "POST", "/rules", good(`,"id":"abc"`), 400, "id"},
		{"string position", "POST", "/rules", good(`,"position":"top"`), 400, "position"},
		{"position past the end", "POST", "/rules", good(`,"position":9`), 400, "position"},
		{"bad action", "POST", "/rules", `{"network_id":"net","action":"allow","from":["*"],"to":["*"]}`, 400, "action"},
		{"unknown selector", "POST", "/rules", `{"network_id":"net","action":"drop","from":["pod:x"],"to":["*"]}`, 400, "from[0]"},
		{"unknown host", "POST", "/rules", `{"network_id":"net","action":"drop","from":["*"],"to":["host:h9"]}`, 400, "to[0]"},
		{"ports on icmp", "POST", "/rules", `{"network_id":"net","action":"drop","from":["*"],"to":["*"],"protocol":"icmp","ports":["22"]}`, 400, "ports"},
		{"overlapping ports", "POST", "/rules", `{"network_id":"net","action":"drop","from":["*"],"to":["*"],"protocol":"udp","ports":["20-30","25"]}`, 400, "ports[1]"},
		{"no network", "POST", "/rules", `{"action":"drop","from":["*"],"to":["*"]}`, 400, "network_id"},
		{"move past the end", "PATCH", "/rules/" + r.ID, `{"position":1}`, 400, "position"},
		{"change network", "PATCH", "/rules/" + r.ID, `{"network_id":"other"}`, 400, "network_id"},
		{"missing rule", "GET", "/rules/nope", "", 404, ""},
		{"check without port protocol", "POST", "/rules/check", `{"network_id":"net","from":"h1","to":"h1","port":"22"}`, 400, "port"},
		{"check a label", "POST", "/rules/check", `{"network_id":"net","from":"role=web","to":"h1"}`, 400, "from"},
		{"bad default action", "PATCH", "/networks/net", `{"default_action":"reject"}`, 400, "default_action"},
		{"masquerade without subnets", "PATCH", "/interfaces/" + iface, `{"masquerade":true}`, 400, "masquerade"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.srv.State().Index()
			ctype := js
			if tc.body == "" {
				ctype = ""
			}
			status, body := ts.raw(tc.method, tc.path, ts.root, ctype, tc.body)
			var e api.Error
			json.Unmarshal([]byte(body), &e)
			if status != tc.status || e.Err.Field != tc.field {
				t.Fatalf("%d %s, want %d on field %q", status, body, tc.status, tc.field)
			}
			if ts.srv.State().Index() != before {
				t.Fatal("a rejected request changed the state")
			}
		})
	}
	for k := 1; k < 1000; k++ {
		if _, err := c.CreateRule(ctx, &api.RuleRequest{Rule: api.Rule{NetworkID: "net", Action: "drop", From: []string{"*"}, To: []string{"*"}, Protocol: "udp", Ports: []string{"1000"}}}); err != nil {
			t.Fatalf("rule %d: %v", k+1, err)
		}
	}
	_, err := c.CreateRule(ctx, &api.RuleRequest{Rule: api.Rule{NetworkID: "net", Action: "drop", From: []string{"*"}, To: []string{"*"}}})
	if re, ok := err.(*api.ResponseError); !ok || re.Status != http.StatusConflict || re.Field != "network_id" {
		t.Fatalf("rule 1,001: %v, want 409 on network_id", err)
	}
}
