package main

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/server/api"
)

func TestRuleCommands(t *testing.T) {
	ts := newTestServer(t)
	var n api.Network
	ts.decode(t, &n, "network", "create", "-name", "prod", "-ipv4-range", "10.1.0.0/24", "-topology", "mesh", "-default-action", "drop")
	web := ts.addHost(t, "web-1", "prod")
	ts.addHost(t, "db-1", "prod")
	ts.ok(t, "host", "update", "-label", "role=web", "web-1")
	ts.ok(t, "host", "update", "-label", "role=db", "db-1")

	var pg api.Rule
	ts.decode(t, &pg, "rule", "add", "-network", "prod", "-from", "role=web", "-to", "role=db", "-protocol", "tcp", "-port", "5432,6432", "-description", "postgres")
	want := api.Rule{NetworkID: n.ID, Action: "accept", From: []string{"role=web"}, To: []string{"role=db"}, Protocol: "tcp", Ports: []string{"5432", "6432"}, Description: "postgres"}
	if diff := cmp.Diff(want, pg, ignoreMeta); diff != "" {
		t.Fatalf("rule add -json (-want +got):\n%s", diff)
	}
	var ssh api.Rule
	ts.decode(t, &ssh, "rule", "add", "-network", "prod", "-action", "drop", "-from", "*", "-to", "host:db-1", "-protocol", "tcp", "-port", "22", "-position", "0")
	if ssh.Position != 0 {
		t.Fatalf("rule added at position 0: %+v", ssh)
	}

	t.Run("list", func(t *testing.T) {
		var l []api.Rule
		ts.decode(t, &l, "rule", "list", "-network", "prod")
		if len(l) != 2 || l[0].ID != ssh.ID || l[1].ID != pg.ID || l[1].Position != 1 {
			t.Fatalf("rule list: %+v", l)
		}
		out := ts.ok(t, "rule", "list", "-network", "prod")
		for _, s := range []string{"POS", pg.ID, "role=web", "5432,6432", "postgres", "Traffic no rule matches: drop"} {
			if !strings.Contains(out, s) {
				t.Errorf("rule list lacks %q:\n%s", s, out)
			}
		}
	})

	t.Run("check", func(t *testing.T) {
		r := ts.run(t, "rule", "check", "-network", "prod", "-from", "web-1", "-to", "db-1", "-port", "5432/tcp")
		if r.code != exitOK || !strings.Contains(r.stdout, "accept") || !strings.Contains(r.stdout, pg.ID) {
			t.Errorf("accepted flow: %+v", r)
		}
		r = ts.run(t, "rule", "check", "-network", "prod", "-from", "web-1", "-to", "db-1", "-port", "22/tcp")
		if r.code != exitDrop || !strings.Contains(r.stdout, "drop") || !strings.Contains(r.stdout, ssh.ID) {
			t.Errorf("dropped flow: %+v", r)
		}
		r = ts.run(t, "rule", "check", "-json", "-network", "prod", "-from", "db-1", "-to", web.ifaces[0].Addresses[0][:strings.Index(web.ifaces[0].Addresses[0], "/")], "-port", "443/tcp")
		var v api.RuleVerdict
		mustUnmarshal(t, r.stdout, &v)
		if r.code != exitDrop || v.Action != "drop" || v.RuleID != "" {
			t.Errorf("default drop: %+v %+v", r, v)
		}
		r = ts.run(t, "rule", "check", "-network", "prod", "-from", "web-1", "-to", "db-1", "-port", "5432")
		if r.code != exitError || !strings.Contains(r.stderr, "(field port)") {
			t.Errorf("bad port: %+v", r)
		}
	})

	t.Run("move and update", func(t *testing.T) {
		var r api.Rule
		ts.decode(t, &r, "rule", "move", "-position", "0", pg.ID)
		if r.Position != 0 {
			t.Fatalf("moved rule: %+v", r)
		}
		var other api.Rule
		ts.decode(t, &other, "rule", "show", ssh.ID)
		if other.Position != 1 {
			t.Fatalf("the rule moved past: %+v", other)
		}
		r = api.Rule{}
		ts.decode(t, &r, "rule", "update", "-port", "5433", "-description", "", pg.ID)
		if !cmp.Equal(r.Ports, []string{"5433"}) || r.Description != "" || r.Position != 0 {
			t.Fatalf("updated rule: %+v", r)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			code int
			msg  string
		}{
			{[]string{"rule", "add", "-network", "prod", "-from", "pod:x", "-to", "*"}, exitError, "(field from[0])"},
			{[]string{"rule", "add", "-network", "prod", "-from", "host:nope", "-to", "*"}, exitError, "(field from[0])"},
			{[]string{"rule", "add", "-network", "prod", "-from", "*", "-to", "*", "-port", "22"}, exitError, "(field ports)"},
			{[]string{"rule", "add", "-network", "prod", "-from", "*", "-to", "*", "-protocol", "tcp", "-port", "20-30,25"}, exitError, "(field ports[1])"},
			{[]string{"rule", "add", "-network", "prod", "-from", "*"}, exitUsage, "-network, -from and -to are required"},
			{[]string{"rule", "move", pg.ID}, exitUsage, "-position is required"},
			{[]string{"rule", "move", "-position", "7", pg.ID}, exitError, "(field position)"},
			{[]string{"rule", "update", pg.ID}, exitUsage, "nothing to change"},
			{[]string{"rule", "check", "-network", "prod", "-from", "web-1"}, exitUsage, "-network, -from and -to are required"},
		} {
			r := ts.run(t, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
				t.Errorf("%v: code %d, stderr %q; want %d and %q", tc.args, r.code, r.stderr, tc.code, tc.msg)
			}
		}
	})

	t.Run("remove", func(t *testing.T) {
		if out := ts.ok(t, "rule", "remove", pg.ID); out != "Deleted rule "+pg.ID+".\n" {
			t.Errorf("rule remove printed %q", out)
		}
		var l []api.Rule
		ts.decode(t, &l, "rule", "list")
		if len(l) != 1 || l[0].ID != ssh.ID || l[0].Position != 0 {
			t.Fatalf("rules after remove: %+v", l)
		}
	})
}

// TestFirewallEnforcementShown checks that drago status, host show and
// interface show name the interfaces whose agent does not enforce the
// policy it must.
func TestFirewallEnforcementShown(t *testing.T) {
	ts := newTestServer(t)
	ts.ok(t, "network", "create", "-name", "prod", "-ipv4-range", "10.1.0.0/24", "-topology", "mesh")
	db := ts.addHost(t, "db-1", "prod")
	ts.addHost(t, "web-1", "prod")
	if out := ts.ok(t, "status"); !strings.Contains(out, "enforced everywhere") {
		t.Errorf("status without a policy:\n%s", out)
	}
	ts.ok(t, "rule", "add", "-network", "prod", "-from", "host:web-1", "-to", "host:db-1", "-protocol", "tcp", "-port", "5432")
	var st serverStatus
	ts.decode(t, &st, "status")
	if st.Overview.FirewallBehind != 1 || len(st.FirewallBehind) != 1 || st.FirewallBehind[0].ID != db.ifaces[0].ID {
		t.Fatalf("status -json with db-1 not reporting: %+v", st)
	}
	out := ts.ok(t, "status")
	for _, s := range []string{"1 interfaces do not enforce it", "db-1", "NOT ENFORCED: revision"} {
		if !strings.Contains(out, s) {
			t.Errorf("status lacks %q:\n%s", s, out)
		}
	}
	// The agent reports it cannot enforce.
	ctx := context.Background()
	i, err := ts.client.Interface(ctx, db.ifaces[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	report := func(fs *api.FirewallStatus) {
		t.Helper()
		hc := ts.clientWith(t, db.cred)
		rep := api.StatusReport{OS: "windows", Interfaces: []api.InterfaceStatus{{ID: i.ID, PublicKey: i.PublicKey, ListenPort: i.ListenPort, Firewall: fs}}}
		if err := hc.ReportStatus(ctx, &rep); err != nil {
			t.Fatal(err)
		}
	}
	report(&api.FirewallStatus{Reason: "not supported on windows"})
	for _, args := range [][]string{{"host", "show", "db-1"}, {"interface", "show", i.ID}, {"status"}} {
		if out := ts.ok(t, args...); !strings.Contains(out, "NOT ENFORCED: not supported on windows") {
			t.Errorf("%v:\n%s", args, out)
		}
	}
	var behind []api.Interface
	ts.decode(t, &behind, "interface", "list", "-firewall", "behind")
	if len(behind) != 1 || behind[0].ID != i.ID {
		t.Errorf("interface list -firewall behind: %+v", behind)
	}
	report(&api.FirewallStatus{Enforced: true, Revision: i.FirewallRevision})
	if out := ts.ok(t, "host", "show", "db-1"); !strings.Contains(out, "enforced (revision") {
		t.Errorf("host show once enforced:\n%s", out)
	}
	if out := ts.ok(t, "status"); !strings.Contains(out, "enforced everywhere") {
		t.Errorf("status once enforced:\n%s", out)
	}
}
