package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/server/api"
)

func TestAuditList(t *testing.T) {
	ts := newTestServer(t)
	ts.ok(t, "network", "create", "-name", "prod", "-ipv4-range", "10.1.0.0/24")
	ts.ok(t, "network", "update", "-mtu", "1380", "prod")
	ts.run(t, "network", "create", "-name", "bad", "-ipv4-range", "10.1.0.0/33")

	var all []api.AuditEntry
	ts.decode(t, &all, "audit", "list")
	var got []string
	for _, e := range all {
		got = append(got, e.Method+" "+e.Path+" "+e.ObjectName+" "+itoa(e.Status))
	}
	want := []string{"POST /networks  400", "PATCH /networks/prod prod 200", "POST /networks prod 201"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("audit list -json (-want +got):\n%s", diff)
	}
	if all[0].Actor.Name != "root" || all[0].Actor.Kind != api.ActorToken || all[0].Error == "" {
		t.Errorf("refused entry: %+v", all[0])
	}

	var patched []api.AuditEntry
	ts.decode(t, &patched, "audit", "list", "-method", "PATCH", "-object", "prod", "-by", "root", "-since", "1h", "-kind", "network")
	if len(patched) != 1 || patched[0].Fields["mtu"] != "1380" {
		t.Errorf("filtered list: %+v", patched)
	}
	var none []api.AuditEntry
	ts.decode(t, &none, "audit", "list", "-until", "1h")
	if len(none) != 0 {
		t.Errorf("-until 1h: %d entries", len(none))
	}

	table := ts.ok(t, "audit", "list", "-limit", "1", "-offset", "1")
	for _, s := range []string{"TIME", "PATCH /networks/prod", "network prod", "mtu=1380", "token root"} {
		if !strings.Contains(table, s) {
			t.Errorf("table lacks %q:\n%s", s, table)
		}
	}
	if strings.Contains(table, "POST /networks") {
		t.Errorf("-limit 1 -offset 1 shows another entry:\n%s", table)
	}

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-since", "yesterday"}, exitUsage, "-since"},
		{[]string{"-limit", "0"}, exitUsage, "-limit"},
		{[]string{"-kind", "planet"}, exitError, "kind"},
		{[]string{"-method", "GET"}, exitError, "method"},
	} {
		r := ts.run(t, append([]string{"audit", "list"}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("audit list %v: exit %d, stderr %q; want %d naming %s", tc.args, r.code, r.stderr, tc.code, tc.msg)
		}
	}
}
