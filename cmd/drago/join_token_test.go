package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/server/api"
)

func TestJoinTokenCommands(t *testing.T) {
	ts := newTestServer(t)
	var n api.Network
	ts.decode(t, &n, "network", "create", "-name", "prod", "-ipv4-range", "10.1.0.0/24")

	t.Run("create prints the secret and the agent command", func(t *testing.T) {
		out := ts.ok(t, "join-token", "create", "-name", "rack-3", "-expires", "2h", "-max-uses", "3", "-network", "prod", "-label", "rack=3")
		var secret string
		for _, l := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(l, "Secret:"); ok {
				secret = strings.TrimSpace(v)
			}
		}
		if !strings.HasPrefix(secret, "dgj_") {
			t.Fatalf("no secret in:\n%s", out)
		}
		if want := "\n  drago agent -server " + ts.addr + " -join " + secret + "\n"; !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
		// The secret registers a host with the token's labels and networks.
		reg, err := ts.clientWith(t, secret).Register(context.Background(), &api.RegisterRequest{Name: "h1"})
		if err != nil {
			t.Fatalf("registering with the printed secret: %v", err)
		}
		h, err := ts.client.Host(context.Background(), reg.HostID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]string{"rack": "3"}, h.Labels); diff != "" {
			t.Errorf("host labels (-want +got):\n%s", diff)
		}
	})

	var j struct {
		api.JoinToken
		AgentCommand string `json:"agent_command"`
	}
	ts.decode(t, &j, "join-token", "create", "-name", "ci", "-expires", "0", "-network", n.ID)
	want := api.JoinToken{Name: "ci", Networks: []string{n.ID}, NeverExpires: true}
	if diff := cmp.Diff(want, j.JoinToken, ignoreMeta, cmpIgnoreSecret); diff != "" {
		t.Errorf("join-token create -json (-want +got):\n%s", diff)
	}
	if j.Secret == "" || j.AgentCommand != "drago agent -server "+ts.addr+" -join "+j.Secret {
		t.Errorf("join-token create -json: secret %q, agent_command %q", j.Secret, j.AgentCommand)
	}

	t.Run("list and show hide the secret", func(t *testing.T) {
		out := ts.ok(t, "join-token", "list", "-json")
		if strings.Contains(out, "dgj_") {
			t.Errorf("join-token list shows a secret:\n%s", out)
		}
		var toks []api.JoinToken
		mustUnmarshal(t, out, &toks)
		if len(toks) != 2 || toks[0].Name != "ci" || toks[1].Name != "rack-3" {
			t.Fatalf("join-token list: %+v", toks)
		}
		rack := toks[1]
		if rack.Uses != 1 || rack.MaxUses != 3 || rack.ExpiresAt == nil {
			t.Errorf("rack-3: %+v", rack)
		} else if d := time.Until(*rack.ExpiresAt); d < 119*time.Minute || d > 121*time.Minute {
			t.Errorf("rack-3 expires in %s, want 2h", d)
		}
		table := ts.ok(t, "join-token", "list")
		if !strings.Contains(table, "1/3") || !strings.Contains(table, "0/unlimited") || !strings.Contains(table, "never") || !strings.Contains(table, "prod") {
			t.Errorf("table:\n%s", table)
		}
		var got api.JoinToken
		ts.decode(t, &got, "join-token", "show", j.ID)
		want := j.JoinToken
		want.Secret = ""
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("join-token show (-want +got):\n%s", diff)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if out := ts.ok(t, "join-token", "delete", j.ID); out != "Deleted join token "+j.ID+".\n" {
			t.Errorf("join-token delete printed %q", out)
		}
		if _, err := ts.clientWith(t, j.Secret).Register(context.Background(), &api.RegisterRequest{Name: "h2"}); api.StatusOf(err) != 401 {
			t.Errorf("registering with a revoked token: %v, want 401", err)
		}
	})
}
