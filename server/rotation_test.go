package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/server/api"
)

// TestKeyRotationProtocol walks one rotation through the API: the agent
// announces its next key, peers get it without allowed IPs, the switch is
// allowed once every peer applied it, and the new key then replaces the old.
func TestKeyRotationProtocol(t *testing.T) {
	ts := startServer(t, "")
	c, ctx := ts.rootClient(), context.Background()
	must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "m", IPv4Range: "10.1.0.0/24", Topology: "mesh"}))
	a, aID := ts.agentHost("a", "m")
	b, _ := ts.agentHost("b", "m")
	ia := ifaceOf(t, c, aID)
	oldKey, nextKey := ia.PublicKey, testKey("a-next")

	host := must[*api.Host](t)(c.RotateKeys(ctx, "a"))
	if !host.RotateKeys {
		t.Fatal("rotation request not recorded")
	}
	dsA := must[*api.DesiredState](t)(a.DesiredState(ctx, 0, 0))
	if !dsA.RotateKeys {
		t.Fatal("agent a is not told to rotate")
	}
	// a announces its next key.
	report := func(hc *api.Client, ds *api.DesiredState, pub, next string) {
		t.Helper()
		err := hc.ReportStatus(ctx, &api.StatusReport{AppliedIndex: ds.Index, Interfaces: []api.InterfaceStatus{{ID: ds.Interfaces[0].ID, PublicKey: pub, NextPublicKey: next}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	report(a, dsA, oldKey, nextKey)
	if h := must[*api.Host](t)(c.Host(ctx, "a")); h.RotateKeys {
		t.Error("rotation flag not cleared once the agent started")
	}
	dsB := must[*api.DesiredState](t)(b.DesiredState(ctx, 0, 0))
	var got [][2]any
	for _, p := range dsB.Interfaces[0].Peers {
		got = append(got, [2]any{p.PublicKey, p.AllowedIPs})
	}
	want := [][2]any{{oldKey, []string{ia.Addresses[0][:len(ia.Addresses[0])-3] + "/32"}}, {nextKey, []string{}}}
	if nextKey < oldKey {
		want[0], want[1] = want[1], want[0]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("b's peers during the overlap (-want +got):\n%s", diff)
	}
	dsA = must[*api.DesiredState](t)(a.DesiredState(ctx, 0, 0))
	if dsA.Interfaces[0].NextPublicKey != nextKey || dsA.Interfaces[0].SwitchKey {
		t.Fatalf("a before b applied: %+v", dsA.Interfaces[0])
	}

	// b applies the overlap: a's blocking query wakes with the switch.
	woke := make(chan *api.DesiredState, 1)
	go func() { ds, _ := a.DesiredState(ctx, dsA.Index, 5*time.Second); woke <- ds }()
	time.Sleep(50 * time.Millisecond)
	report(b, dsB, dsB.Interfaces[0].PublicKey, "")
	select {
	case ds := <-woke:
		if ds == nil || !ds.Interfaces[0].SwitchKey {
			t.Fatalf("a after b applied: %+v", ds)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a was not woken when its peers were ready")
	}

	// a switches: b keeps one entry, under the new key.
	report(a, dsA, nextKey, "")
	dsB = must[*api.DesiredState](t)(b.DesiredState(ctx, 0, 0))
	if len(dsB.Interfaces[0].Peers) != 1 || dsB.Interfaces[0].Peers[0].PublicKey != nextKey {
		t.Fatalf("b's peers after the switch: %+v", dsB.Interfaces[0].Peers)
	}
	after := ifaceOf(t, c, aID)
	if after.PublicKey != nextKey || after.NextPublicKey != "" || !after.KeyRotatedAt.After(*ia.KeyRotatedAt) {
		t.Fatalf("interface after rotation: %+v", after)
	}
}

func TestRotationEdgeCases(t *testing.T) {
	ts := startServer(t, "")
	c, ctx := ts.rootClient(), context.Background()
	must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "solo", IPv4Range: "10.1.0.0/24", Topology: "mesh"}))
	must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "phones", IPv4Range: "10.2.0.0/24", Topology: "mesh"}))
	announce := func(hc *api.Client) *api.DesiredState {
		t.Helper()
		ds := must[*api.DesiredState](t)(hc.DesiredState(ctx, 0, 0))
		i := ds.Interfaces[0]
		if err := hc.ReportStatus(ctx, &api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: i.ID, PublicKey: i.PublicKey, NextPublicKey: testKey("next" + i.ID)}}}); err != nil {
			t.Fatal(err)
		}
		return must[*api.DesiredState](t)(hc.DesiredState(ctx, 0, 0))
	}
	t.Run("no peers: switch at once", func(t *testing.T) {
		hc, _ := ts.agentHost("alone", "solo")
		i := announce(hc).Interfaces[0]
		if i.NextPublicKey == "" || !i.SwitchKey {
			t.Fatalf("a host without peers waits to switch: %+v", i)
		}
	})
	t.Run("device peer: no rotation", func(t *testing.T) {
		hc, _ := ts.agentHost("gw", "phones")
		must[*api.Interface](t)(c.CreateDevice(ctx, &api.DeviceRequest{Network: "phones", Name: "phone", PublicKey: testKey("phone")}))
		i := announce(hc).Interfaces[0]
		if i.NextPublicKey != "" || i.SwitchKey {
			t.Fatalf("a host peered with a device took a next key: %+v", i)
		}
	})
}

// TestRotationBlockedByDevices: a host whose interfaces peer with plain
// devices cannot rotate, and every view says why instead of stalling.
func TestRotationBlockedByDevices(t *testing.T) {
	ts := startServer(t, "")
	c, ctx := ts.rootClient(), context.Background()
	must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "phones", IPv4Range: "10.2.0.0/24", Topology: "mesh"}))
	must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "servers", IPv4Range: "10.3.0.0/24", Topology: "mesh"}))
	hc, hid := ts.agentHost("gw", "phones")
	ds := must[*api.DesiredState](t)(hc.DesiredState(ctx, 0, 0))
	own := ds.Interfaces[0]
	// A rotation announced before the device came is dropped when the agent
	// drops its next key.
	if err := hc.ReportStatus(ctx, &api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: own.ID, PublicKey: own.PublicKey, NextPublicKey: testKey("next")}}}); err != nil {
		t.Fatal(err)
	}
	must[*api.Interface](t)(c.CreateDevice(ctx, &api.DeviceRequest{Network: "phones", Name: "phone", PublicKey: testKey("phone")}))

	ds = must[*api.DesiredState](t)(hc.DesiredState(ctx, 0, 0))
	if p := ds.Interfaces[0].Peers; len(p) != 1 || p[0].Device != "phone" {
		t.Fatalf("the device peer does not say it is a device: %+v", p)
	}
	i := must[*api.Interface](t)(c.Interface(ctx, own.ID))
	if !strings.Contains(i.RotationBlocked, "phone") {
		t.Fatalf("rotation_blocked %q does not name the device", i.RotationBlocked)
	}
	before := ts.srv.State().Index()
	_, err := c.RotateKeys(ctx, hid)
	if api.StatusOf(err) != http.StatusConflict || !strings.Contains(err.Error(), "phone") || !strings.Contains(err.Error(), "delete those devices") {
		t.Fatalf("rotation of a host whose only interface peers with a device: %v, want 409 naming the device and the way out", err)
	}
	if ts.srv.State().Index() != before {
		t.Fatal("a refused rotation changed the state")
	}
	if err := hc.ReportStatus(ctx, &api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: own.ID, PublicKey: own.PublicKey}}}); err != nil {
		t.Fatal(err)
	}
	if i := must[*api.Interface](t)(c.Interface(ctx, own.ID)); i.NextPublicKey != "" {
		t.Fatalf("the dropped next key stays announced: %+v", i)
	}
	// With an interface that can rotate, the request goes through; the
	// blocked one says why.
	must[*api.Interface](t)(c.CreateInterface(ctx, &api.Interface{HostID: hid, NetworkID: "servers"}))
	if h, err := c.RotateKeys(ctx, hid); err != nil || !h.RotateKeys {
		t.Fatalf("rotation with one free interface: %+v %v", h, err)
	}
}
