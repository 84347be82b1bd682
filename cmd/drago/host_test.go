package main

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/server/api"
)

func TestHostCommands(t *testing.T) {
	ts := newTestServer(t)
	web := ts.addHost(t, "web-1")
	ts.addHost(t, "db-1")

	t.Run("list", func(t *testing.T) {
		var hosts []api.Host
		ts.decode(t, &hosts, "host", "list")
		if len(hosts) != 2 || hosts[0].Name != "db-1" || hosts[1].Name != "web-1" || hosts[1].ID != web.id {
			t.Fatalf("host list -json: %+v", hosts)
		}
		if hosts[1].Status != api.HostReady || hosts[1].LastSeen == nil || hosts[1].OS != "linux" {
			t.Errorf("host after a report: %+v", hosts[1])
		}
		var some []api.Host
		ts.decode(t, &some, "host", "list", "-prefix", "web")
		if len(some) != 1 || some[0].Name != "web-1" {
			t.Errorf("host list -prefix web: %+v", some)
		}
		var down []api.Host
		ts.decode(t, &down, "host", "list", "-status", "down")
		if len(down) != 0 {
			t.Errorf("host list -status down: %+v", down)
		}
		out := ts.ok(t, "host", "list")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[2], "web-1") ||
			!strings.Contains(lines[2], "ready") || !strings.Contains(lines[2], "192.0.2.10") || !strings.Contains(lines[2], "linux/amd64") ||
			!strings.Contains(lines[0], "KEYS") || !strings.Contains(lines[2], " ok ") {
			t.Errorf("table:\n%s", out)
		}
	})

	t.Run("show", func(t *testing.T) {
		var h api.Host
		ts.decode(t, &h, "host", "show", "web-1")
		if h.ID != web.id || h.AdvertiseAddress != "192.0.2.10" {
			t.Errorf("host show -json: %+v", h)
		}
		out := ts.ok(t, "host", "show", web.id)
		for _, s := range []string{"Name:", "web-1", "Status:", "ready", "Advertise address:", "192.0.2.10", "Keys:"} {
			if !strings.Contains(out, s) {
				t.Errorf("host show lacks %q:\n%s", s, out)
			}
		}
	})

	t.Run("update", func(t *testing.T) {
		var h api.Host
		ts.decode(t, &h, "host", "update", "-label", "role=web", "-label", "zone=a", "web-1")
		if diff := cmp.Diff(map[string]string{"role": "web", "zone": "a"}, h.Labels); diff != "" {
			t.Errorf("labels (-want +got):\n%s", diff)
		}
		h = api.Host{}
		ts.decode(t, &h, "host", "update", "-label", "zone=b", "-advertise-address", "198.51.100.7:51999", "web-1")
		if diff := cmp.Diff(map[string]string{"role": "web", "zone": "b"}, h.Labels); diff != "" {
			t.Errorf("labels after a second update (-want +got):\n%s", diff)
		}
		if h.AdvertiseAddress != "198.51.100.7:51999" || h.Name != "web-1" {
			t.Errorf("host update: %+v", h)
		}
		var hosts []api.Host
		ts.decode(t, &hosts, "host", "list", "-label", "role=web")
		if len(hosts) != 1 || hosts[0].ID != web.id {
			t.Errorf("host list -label role=web: %+v", hosts)
		}
		h = api.Host{}
		ts.decode(t, &h, "host", "update", "-name", "web-2", "web-1")
		if h.Name != "web-2" || h.ID != web.id {
			t.Errorf("rename: %+v", h)
		}
	})

	t.Run("rotate-keys", func(t *testing.T) {
		if out := ts.ok(t, "host", "rotate-keys", "web-2"); !strings.Contains(out, "Key rotation requested for host web-2") {
			t.Errorf("rotate-keys printed %q", out)
		}
		var h api.Host
		ts.decode(t, &h, "host", "rotate-keys", "web-2")
		if !h.RotateKeys {
			t.Errorf("host after rotate-keys: %+v", h)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if out := ts.ok(t, "host", "delete", "web-2"); out != "Deleted host web-2.\n" {
			t.Errorf("host delete printed %q", out)
		}
		r := ts.run(t, "host", "show", "web-2")
		if r.code != exitError || r.stderr != "drago: host \"web-2\" not found\n" {
			t.Errorf("host show after delete: %+v", r)
		}
	})
}

// TestHostRotateKeysBlockedByDevice: a rotation that would cut off plain
// devices is refused with the reason, and a partial one says which
// interface keeps its key.
func TestHostRotateKeysBlockedByDevice(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	for _, n := range []api.Network{{Name: "phones", IPv4Range: "10.7.0.0/24", Topology: api.TopologyMesh}, {Name: "lan", IPv4Range: "10.8.0.0/24", Topology: api.TopologyMesh}} {
		if _, err := ts.client.CreateNetwork(ctx, &n); err != nil {
			t.Fatal(err)
		}
	}
	ts.addHost(t, "gw", "phones")
	if _, err := ts.client.CreateDevice(ctx, &api.DeviceRequest{Network: "phones", Name: "phone", PublicKey: testPublicKey(t)}); err != nil {
		t.Fatal(err)
	}
	r := ts.run(t, "host", "rotate-keys", "gw")
	if r.code != exitError || !strings.Contains(r.stderr, "phone") || !strings.Contains(r.stderr, "(field host)") {
		t.Fatalf("rotate-keys of a host peered with a device: %+v", r)
	}
	if out := ts.ok(t, "interface", "list", "-host", "gw", "-json"); !strings.Contains(out, `"rotation_blocked"`) {
		t.Errorf("interface list lacks rotation_blocked:\n%s", out)
	}
	if _, err := ts.client.CreateInterface(ctx, &api.Interface{HostID: "gw", NetworkID: "lan"}); err != nil {
		t.Fatal(err)
	}
	out := ts.ok(t, "host", "rotate-keys", "gw")
	if !strings.Contains(out, "Key rotation requested") || !strings.Contains(out, "keeps its key") || !strings.Contains(out, "phone") {
		t.Errorf("partial rotation printed %q", out)
	}
}

func testPublicKey(t *testing.T) string {
	t.Helper()
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey().String()
}
