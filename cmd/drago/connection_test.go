package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/server/api"
)

func TestConnectionCommands(t *testing.T) {
	ts := newTestServer(t)
	var n api.Network
	ts.decode(t, &n, "network", "create", "-name", "prod", "-ipv4-range", "10.1.0.0/24")
	a := ts.addHost(t, "a", "prod").ifaces[0].ID
	b := ts.addHost(t, "b", "prod").ifaces[0].ID

	var c api.Connection
	ts.decode(t, &c, "connection", "create", "-network", "prod", "-a", a, "-b", b,
		"-a-allowed-ips", "10.1.0.0/24,192.168.9.0/24", "-b-endpoint", "198.51.100.1:51820", "-keepalive", "25")
	k := 25
	want := api.Connection{NetworkID: n.ID,
		A: api.ConnectionSide{InterfaceID: a, AllowedIPs: []string{"10.1.0.0/24", "192.168.9.0/24"}},
		B: api.ConnectionSide{InterfaceID: b, Endpoint: "198.51.100.1:51820"}, PersistentKeepalive: &k}
	if diff := cmp.Diff(want, c, ignoreMeta); diff != "" {
		t.Fatalf("connection create -json (-want +got):\n%s", diff)
	}

	t.Run("list", func(t *testing.T) {
		for _, args := range [][]string{{"-network", "prod"}, {"-interface", b}, nil} {
			var l []api.Connection
			ts.decode(t, &l, append([]string{"connection", "list"}, args...)...)
			if len(l) != 1 || l[0].ID != c.ID {
				t.Errorf("connection list %v: %+v", args, l)
			}
		}
		out := ts.ok(t, "connection", "list")
		if !strings.Contains(out, c.ID) || !strings.Contains(out, "prod") || !strings.Contains(out, "25s") {
			t.Errorf("table:\n%s", out)
		}
	})

	t.Run("show", func(t *testing.T) {
		var got api.Connection
		ts.decode(t, &got, "connection", "show", c.ID)
		if diff := cmp.Diff(c, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		out := ts.ok(t, "connection", "show", c.ID)
		for _, s := range []string{"A allowed IPs:", "192.168.9.0/24", "B endpoint:", "198.51.100.1:51820", "A endpoint:", "(the peer's host address)"} {
			if !strings.Contains(out, s) {
				t.Errorf("connection show lacks %q:\n%s", s, out)
			}
		}
	})

	t.Run("update", func(t *testing.T) {
		var got api.Connection
		ts.decode(t, &got, "connection", "update", "-keepalive", "-1", "-b-endpoint", "", "-a-endpoint", "203.0.113.9:51820", c.ID)
		want := c
		want.PersistentKeepalive = nil
		want.A.Endpoint, want.B.Endpoint = "203.0.113.9:51820", ""
		if diff := cmp.Diff(want, got, ignoreMeta); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		got = api.Connection{}
		ts.decode(t, &got, "connection", "update", "-keepalive", "0", "-a-allowed-ips", "", c.ID)
		zero := 0
		want.PersistentKeepalive, want.A.AllowedIPs = &zero, nil
		if diff := cmp.Diff(want, got, ignoreMeta); diff != "" {
			t.Errorf("second update (-want +got):\n%s", diff)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if out := ts.ok(t, "connection", "delete", c.ID); out != "Deleted connection "+c.ID+".\n" {
			t.Errorf("connection delete printed %q", out)
		}
		var l []api.Connection
		ts.decode(t, &l, "connection", "list")
		if len(l) != 0 {
			t.Errorf("connections left: %+v", l)
		}
	})
}
