package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/drago-wg/drago/server/api"
)

var ignoreMeta = cmpopts.IgnoreFields(api.Meta{}, "ID", "CreatedAt", "UpdatedAt", "ModifyIndex")

func TestNetworkCommands(t *testing.T) {
	ts := newTestServer(t)

	var created api.Network
	ts.decode(t, &created, "network", "create", "-name", "prod", "-ipv4-range", "10.1.0.0/24", "-ipv6-range", "fd00:1::/64",
		"-topology", "mesh", "-listen-port", "51821", "-mtu", "1380", "-keepalive", "25", "-dns", "10.1.0.53", "-dns", "1.1.1.1,9.9.9.9", "-default-action", "drop")
	want := api.Network{Name: "prod", IPv4Range: "10.1.0.0/24", IPv6Range: "fd00:1::/64", Topology: "mesh", ListenPort: 51821,
		MTU: 1380, PersistentKeepalive: 25, DNS: []string{"10.1.0.53", "1.1.1.1", "9.9.9.9"}, DefaultAction: "drop"}
	if diff := cmp.Diff(want, created, ignoreMeta); diff != "" {
		t.Fatalf("network create -json (-want +got):\n%s", diff)
	}
	if created.ID == "" {
		t.Fatal("created network has no id")
	}

	t.Run("defaults", func(t *testing.T) {
		var n api.Network
		ts.decode(t, &n, "network", "create", "-name", "lab", "-ipv4-range", "10.2.0.0/24")
		want := api.Network{Name: "lab", IPv4Range: "10.2.0.0/24", Topology: "none", ListenPort: 51820, MTU: 1420, DefaultAction: "accept"}
		if diff := cmp.Diff(want, n, ignoreMeta); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})

	t.Run("list", func(t *testing.T) {
		for _, flag := range []string{"-json", "--json"} {
			var list []api.Network
			out := ts.ok(t, "network", "list", flag)
			mustUnmarshal(t, out, &list)
			if diff := cmp.Diff([]string{"lab", "prod"}, networkNames(list)); diff != "" {
				t.Errorf("network list %s (-want +got):\n%s", flag, diff)
			}
		}
		var some []api.Network
		ts.decode(t, &some, "network", "list", "-prefix", "pr")
		if diff := cmp.Diff([]string{"prod"}, networkNames(some)); diff != "" {
			t.Errorf("network list -prefix pr (-want +got):\n%s", diff)
		}
		var none []api.Network
		if out := ts.ok(t, "network", "list", "-json", "-prefix", "zz"); strings.TrimSpace(out) != "[]" {
			t.Errorf("empty list printed %q, want []", out)
		} else {
			mustUnmarshal(t, out, &none)
		}
		table := ts.ok(t, "network", "list")
		lines := strings.Split(strings.TrimSpace(table), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[2], "prod ") ||
			!strings.Contains(lines[2], created.ID) || !strings.Contains(lines[2], "fd00:1::/64") {
			t.Errorf("table:\n%s", table)
		}
	})

	t.Run("show", func(t *testing.T) {
		for _, ref := range []string{"prod", created.ID} {
			var n api.Network
			ts.decode(t, &n, "network", "show", ref)
			if diff := cmp.Diff(created, n); diff != "" {
				t.Errorf("network show %s (-want +got):\n%s", ref, diff)
			}
		}
		out := ts.ok(t, "network", "show", "prod")
		for _, s := range []string{"Name:", "prod", "Topology:", "mesh", "DNS:", "10.1.0.53,1.1.1.1,9.9.9.9", "Keepalive:", "25s", "Default action:", "drop"} {
			if !strings.Contains(out, s) {
				t.Errorf("network show does not print %q:\n%s", s, out)
			}
		}
	})

	t.Run("update sends only the flags given", func(t *testing.T) {
		var n api.Network
		ts.decode(t, &n, "network", "update", "-mtu", "1400", "-keepalive", "0", "-default-action", "accept", "prod")
		want := created
		want.MTU, want.PersistentKeepalive, want.DefaultAction = 1400, 0, "accept"
		if diff := cmp.Diff(want, n, ignoreMeta); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		n = api.Network{}
		ts.decode(t, &n, "network", "update", "-ipv6-range", "", "-dns", "", "prod")
		want.IPv6Range, want.DNS = "", nil
		if diff := cmp.Diff(want, n, ignoreMeta); diff != "" {
			t.Errorf("clearing (-want +got):\n%s", diff)
		}
		n = api.Network{}
		ts.decode(t, &n, "network", "update", "-name", "production", created.ID)
		want.Name = "production"
		if diff := cmp.Diff(want, n, ignoreMeta); diff != "" {
			t.Errorf("rename (-want +got):\n%s", diff)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if out := ts.ok(t, "network", "delete", "production"); out != "Deleted network production.\n" {
			t.Errorf("network delete printed %q", out)
		}
		var got map[string]string
		ts.decode(t, &got, "network", "delete", "lab")
		if diff := cmp.Diff(map[string]string{"deleted": "lab"}, got); diff != "" {
			t.Errorf("network delete -json (-want +got):\n%s", diff)
		}
		r := ts.run(t, "network", "show", "lab")
		if diff := cmp.Diff(result{stderr: "drago: network \"lab\" not found\n", code: exitError}, r, cmp.AllowUnexported(result{})); diff != "" {
			t.Errorf("show after delete (-want +got):\n%s", diff)
		}
	})
}

func TestNetworkTopology(t *testing.T) {
	ts := newTestServer(t)
	ts.ok(t, "network", "create", "-name", "prod", "-ipv4-range", "10.1.0.0/24", "-topology", "mesh")
	a := ts.addHost(t, "a", "prod")
	b := ts.addHost(t, "b", "prod")
	var top api.Topology
	ts.decode(t, &top, "network", "topology", "prod")
	if len(top.Nodes) != 2 || len(top.Edges) != 1 || !top.Edges[0].Implicit {
		t.Fatalf("topology: %+v", top)
	}
	out := ts.ok(t, "network", "topology", "prod")
	for _, s := range []string{a.ifaces[0].ID, b.ifaces[0].ID, "a/dg-prod", "implicit (mesh)", "never"} {
		if !strings.Contains(out, s) {
			t.Errorf("topology table lacks %q:\n%s", s, out)
		}
	}
}

func networkNames(l []api.Network) []string {
	out := []string{}
	for _, n := range l {
		out = append(out, n.Name)
	}
	return out
}
