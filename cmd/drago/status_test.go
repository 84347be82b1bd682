package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/drago-wg/drago/server/api"
)

func TestStatusCommand(t *testing.T) {
	ts := newTestServer(t)
	ts.ok(t, "network", "create", "-name", "prod", "-ipv4-range", "10.1.0.0/24", "-topology", "mesh")
	ts.addHost(t, "a", "prod") // reports: ready
	ts.ok(t, "device", "add", "-network", "prod", "-name", "phone")

	var st serverStatus
	ts.decode(t, &st, "status")
	want := serverStatus{
		Address:  ts.addr,
		Health:   api.Health{Status: "ok", Version: api.Version},
		Overview: api.Overview{Version: api.Version, Networks: 1, Hosts: 1, HostsReady: 1, Interfaces: 1, Devices: 1},
	}
	if diff := cmp.Diff(want, st, cmpopts.IgnoreFields(api.Overview{}, "Index"), cmpopts.IgnoreFields(serverStatus{}, "Cluster")); diff != "" {
		t.Errorf("status -json (-want +got):\n%s", diff)
	}
	if c := st.Cluster; c == nil || c.Store != "bolt" || !c.Healthy || len(c.Servers) != 1 || c.Leader != c.Server {
		t.Errorf("status -json cluster = %+v; want bolt, healthy, one leading server", c)
	}
	out := ts.ok(t, "status")
	for _, s := range []string{"Server:", ts.addr + " (ok, version " + api.Version + ")", "Hosts:", "1 (1 up, 0 down, 0 pending)", "Devices:",
		"Cluster:", "bolt store, 1 servers, jobs run by " + st.Cluster.Server} {
		if !strings.Contains(out, s) {
			t.Errorf("status lacks %q:\n%s", s, out)
		}
	}

	r := runDrago(t, map[string]string{"DRAGO_ADDR": ts.addr}, "status")
	if r.code != exitError || !strings.HasPrefix(r.stderr, "drago: missing or invalid token\n") {
		t.Errorf("status without a token: %+v", r)
	}
}
