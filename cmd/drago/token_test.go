package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/server/api"
)

func TestTokenCommands(t *testing.T) {
	ts := newTestServer(t)
	var n api.Network
	ts.decode(t, &n, "network", "create", "-name", "prod", "-ipv4-range", "10.1.0.0/24")

	var tok api.Token
	ts.decode(t, &tok, "token", "create", "-name", "ci", "-policy", "networks:read", "-policy", "interfaces:write:prod")
	want := api.Token{Name: "ci", Policies: []api.Policy{
		{Resource: "networks", Access: "read"},
		{Resource: "interfaces", Access: "write", Networks: []string{n.ID}},
	}}
	if diff := cmp.Diff(want, tok, ignoreMeta, cmpIgnoreSecret); diff != "" {
		t.Fatalf("token create -json (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(tok.Secret, "dgm_") {
		t.Fatalf("token create -json: secret %q", tok.Secret)
	}

	t.Run("the secret is printed once", func(t *testing.T) {
		out := ts.ok(t, "token", "create", "-name", "people", "-policy", "*:read")
		if !strings.Contains(out, "Secret:") || !strings.Contains(out, "dgm_") || !strings.Contains(out, "shown only now") {
			t.Errorf("token create printed:\n%s", out)
		}
		list := ts.ok(t, "token", "list", "-json")
		if strings.Contains(list, "dgm_") || strings.Contains(list, `"secret"`) {
			t.Errorf("token list shows a secret:\n%s", list)
		}
		var toks []api.Token
		mustUnmarshal(t, list, &toks)
		var names []string
		for _, x := range toks {
			names = append(names, x.Name)
		}
		if diff := cmp.Diff([]string{"ci", "people", "root"}, names); diff != "" {
			t.Errorf("token list (-want +got):\n%s", diff)
		}
		if table := ts.ok(t, "token", "list"); !strings.Contains(table, "root (everything)") || !strings.Contains(table, "interfaces:write:"+n.ID) {
			t.Errorf("table:\n%s", table)
		}
	})

	t.Run("show", func(t *testing.T) {
		var self api.Token
		ts.decode(t, &self, "token", "show", "self")
		if !self.Root || self.Name != "root" || self.Secret != "" {
			t.Errorf("token show self: %+v", self)
		}
		var got api.Token
		ts.decode(t, &got, "token", "show", tok.ID)
		want := tok
		want.Secret = ""
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("token show (-want +got):\n%s", diff)
		}
	})

	t.Run("the new token's policies hold", func(t *testing.T) {
		env := ts.env(tok.Secret)
		if r := runDrago(t, env, "network", "list"); r.code != exitOK {
			t.Errorf("network list with read access: %+v", r)
		}
		r := runDrago(t, env, "network", "create", "-name", "x", "-ipv4-range", "10.9.0.0/24")
		if diff := cmp.Diff(result{stderr: "drago: token has no write access to networks\n", code: exitError}, r, cmp.AllowUnexported(result{})); diff != "" {
			t.Errorf("network create without write access (-want +got):\n%s", diff)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if out := ts.ok(t, "token", "delete", tok.ID); out != "Deleted token "+tok.ID+".\n" {
			t.Errorf("token delete printed %q", out)
		}
		r := runDrago(t, ts.env(tok.Secret), "network", "list")
		want := result{stderr: "drago: missing or invalid token\nthe token from DRAGO_TOKEN was refused\n", code: exitError}
		if diff := cmp.Diff(want, r, cmp.AllowUnexported(result{})); diff != "" {
			t.Errorf("revoked token (-want +got):\n%s", diff)
		}
	})
}

var cmpIgnoreSecret = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Secret" }, cmp.Ignore())
