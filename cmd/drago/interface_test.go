package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/server/api"
)

func TestInterfaceCommands(t *testing.T) {
	ts := newTestServer(t)
	ts.ok(t, "network", "create", "-name", "prod", "-ipv4-range", "10.1.0.0/24", "-topology", "mesh", "-dns", "10.1.0.53")
	web := ts.addHost(t, "web-1", "prod") // joins prod through its join token
	db := ts.addHost(t, "db-1")

	var i api.Interface
	ts.decode(t, &i, "interface", "create", "-network", "prod", "-host", "db-1", "-ip", "10.1.0.50", "-routed-subnet", "192.168.5.0/24", "-mtu", "1400")
	want := api.Interface{HostID: db.id, NetworkID: i.NetworkID, Name: "dg-prod", Addresses: []string{"10.1.0.50/24"},
		ListenPort: 51820, MTU: 1400, RoutedSubnets: []string{"192.168.5.0/24"}}
	if diff := cmp.Diff(want, i, ignoreMeta); diff != "" {
		t.Fatalf("interface create -json (-want +got):\n%s", diff)
	}

	t.Run("list", func(t *testing.T) {
		var all []api.Interface
		ts.decode(t, &all, "interface", "list", "-network", "prod")
		if len(all) != 2 {
			t.Fatalf("interface list -network prod: %+v", all)
		}
		var mine []api.Interface
		ts.decode(t, &mine, "interface", "list", "-host", "db-1")
		if len(mine) != 1 || mine[0].ID != i.ID {
			t.Errorf("interface list -host db-1: %+v", mine)
		}
		out := ts.ok(t, "interface", "list")
		if !strings.Contains(out, "db-1") || !strings.Contains(out, "web-1") || !strings.Contains(out, "10.1.0.50/24") || !strings.Contains(out, "prod") {
			t.Errorf("table without host and network names:\n%s", out)
		}
	})

	t.Run("show", func(t *testing.T) {
		var got api.Interface
		ts.decode(t, &got, "interface", "show", i.ID)
		if diff := cmp.Diff(i, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		out := ts.ok(t, "interface", "show", i.ID)
		for _, s := range []string{"Host:", "db-1", "Network:", "prod", "Routed subnets:", "192.168.5.0/24"} {
			if !strings.Contains(out, s) {
				t.Errorf("interface show lacks %q:\n%s", s, out)
			}
		}
	})

	t.Run("update", func(t *testing.T) {
		var got api.Interface
		ts.decode(t, &got, "interface", "update", "-listen-port", "51900", "-routed-subnet", "", i.ID)
		want := i
		want.ListenPort, want.RoutedSubnets = 51900, nil
		if diff := cmp.Diff(want, got, ignoreMeta); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})

	t.Run("config", func(t *testing.T) {
		out := ts.ok(t, "interface", "config", web.ifaces[0].ID)
		for _, s := range []string{"[Interface]", "PrivateKey = <private key", "Address = " + web.ifaces[0].Addresses[0], "DNS = 10.1.0.53"} {
			if !strings.Contains(out, s) {
				t.Errorf("interface config lacks %q:\n%s", s, out)
			}
		}
		var j map[string]string
		ts.decode(t, &j, "interface", "config", web.ifaces[0].ID)
		if j["id"] != web.ifaces[0].ID || j["config"] != out {
			t.Errorf("interface config -json: %v", j)
		}
	})

	t.Run("hub", func(t *testing.T) {
		var n api.Network
		ts.decode(t, &n, "network", "update", "-topology", "hub", "-hub", web.ifaces[0].ID, "prod")
		if n.Topology != "hub" || n.HubInterfaceID != web.ifaces[0].ID {
			t.Errorf("network update -topology hub -hub: %+v", n)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if out := ts.ok(t, "interface", "delete", i.ID); out != "Deleted interface "+i.ID+".\n" {
			t.Errorf("interface delete printed %q", out)
		}
		r := ts.run(t, "interface", "show", i.ID)
		if r.code != exitError || r.stderr != `drago: interface "`+i.ID+`" not found`+"\n" {
			t.Errorf("interface show after delete: %+v", r)
		}
	})
}
