package server

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/server/api"
)

// peersOf returns, for each interface of the host's desired state, its
// peers' allowed IPs keyed by the peer's interface id.
func peersOf(t *testing.T, hc *api.Client) map[string][]string {
	t.Helper()
	ds := must[*api.DesiredState](t)(hc.DesiredState(context.Background(), 0, 0))
	out := map[string][]string{}
	for _, i := range ds.Interfaces {
		for _, p := range i.Peers {
			out[p.InterfaceID] = p.AllowedIPs
		}
	}
	return out
}

func ifaceOf(t *testing.T, c *api.Client, hostID string) api.Interface {
	t.Helper()
	l := must[*api.List[api.Interface]](t)(c.Interfaces(context.Background(), api.ListOptions{Host: hostID}))
	if len(l.Items) != 1 {
		t.Fatalf("host %s has %d interfaces", hostID, len(l.Items))
	}
	return l.Items[0]
}

func TestDesiredStateTopologies(t *testing.T) {
	ts := startServer(t, "")
	c, ctx := ts.rootClient(), context.Background()
	must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "mesh", IPv4Range: "10.1.0.0/24", IPv6Range: "fd01::/64", Topology: "mesh", PersistentKeepalive: 25}))
	a, aID := ts.agentHost("a", "mesh")
	b, bID := ts.agentHost("b", "mesh")
	_, cID := ts.agentHost("c", "mesh")
	ia, ib, ic := ifaceOf(t, c, aID), ifaceOf(t, c, bID), ifaceOf(t, c, cID)

	t.Run("mesh", func(t *testing.T) {
		got := peersOf(t, a)
		want := map[string][]string{ib.ID: {"10.1.0.2/32", "fd01::2/128"}, ic.ID: {"10.1.0.3/32", "fd01::3/128"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("peers of a (-want +got):\n%s", diff)
		}
		ds := must[*api.DesiredState](t)(a.DesiredState(ctx, 0, 0))
		p := ds.Interfaces[0].Peers[0]
		if p.Endpoint != "127.0.0.1:51820" || p.PersistentKeepalive != 25 || p.PublicKey == "" {
			t.Errorf("peer fields: %+v", p)
		}
		if ds.Interfaces[0].Name != "dg-mesh" || ds.Interfaces[0].MTU != 1420 {
			t.Errorf("interface: %+v", ds.Interfaces[0])
		}
	})

	t.Run("routed subnets and explicit override", func(t *testing.T) {
		must[*api.Interface](t)(c.UpdateInterface(ctx, ib.ID, map[string]any{"routed_subnets": []string{"192.168.50.0/24"}}))
		conn := must[*api.Connection](t)(c.CreateConnection(ctx, &api.Connection{NetworkID: "mesh",
			A: api.ConnectionSide{InterfaceID: ia.ID, AllowedIPs: []string{"10.1.0.3/32"}, Endpoint: "198.51.100.7:4000"},
			B: api.ConnectionSide{InterfaceID: ic.ID}}))
		got := peersOf(t, a)
		want := map[string][]string{ib.ID: {"10.1.0.2/32", "fd01::2/128", "192.168.50.0/24"}, ic.ID: {"10.1.0.3/32"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("peers of a (-want +got):\n%s", diff)
		}
		if err := c.DeleteConnection(ctx, conn.ID); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("none keeps only explicit connections", func(t *testing.T) {
		must[*api.Network](t)(c.UpdateNetwork(ctx, "mesh", map[string]any{"topology": "none"}))
		if got := peersOf(t, a); len(got) != 0 {
			t.Fatalf("peers in topology none: %v", got)
		}
		must[*api.Connection](t)(c.CreateConnection(ctx, &api.Connection{NetworkID: "mesh", A: api.ConnectionSide{InterfaceID: ia.ID}, B: api.ConnectionSide{InterfaceID: ib.ID}}))
		if got := peersOf(t, b); !slices.Equal(keys(got), []string{ia.ID}) {
			t.Fatalf("peers of b: %v", got)
		}
	})

	t.Run("hub", func(t *testing.T) {
		must[*api.Network](t)(c.UpdateNetwork(ctx, "mesh", map[string]any{"topology": "hub", "hub_interface_id": ic.ID}))
		got := peersOf(t, a)
		// a keeps its explicit connection to b and reaches the rest through the hub.
		want := map[string][]string{ib.ID: {"10.1.0.2/32", "fd01::2/128", "192.168.50.0/24"}, ic.ID: {"10.1.0.0/24", "fd01::/64"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("spoke a (-want +got):\n%s", diff)
		}
	})
}

func keys(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestPeersWithoutKeyAreLeftOut(t *testing.T) {
	ts := startServer(t, "")
	c, ctx := ts.rootClient(), context.Background()
	must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "m", IPv4Range: "10.1.0.0/24", Topology: "mesh"}))
	a, _ := ts.agentHost("a", "m")
	jt := must[*api.JoinToken](t)(c.CreateJoinToken(ctx, &api.JoinToken{Networks: []string{"m"}}))
	must[*api.RegisterResponse](t)(ts.client(jt.Secret).Register(ctx, &api.RegisterRequest{Name: "nokey"}))
	if got := peersOf(t, a); len(got) != 0 {
		t.Fatalf("a peer without public key was sent: %v", got)
	}
}

// TestBlockingQuery checks that a relevant change wakes the agent's blocking
// query at once and an unrelated change does not.
func TestBlockingQuery(t *testing.T) {
	ts := startServer(t, "")
	c, ctx := ts.rootClient(), context.Background()
	must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "one", IPv4Range: "10.1.0.0/24", Topology: "mesh"}))
	must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "two", IPv4Range: "10.2.0.0/24", Topology: "mesh"}))
	a, _ := ts.agentHost("a", "one")
	ts.agentHost("b", "one")
	ts.agentHost("x", "two")
	ds := must[*api.DesiredState](t)(a.DesiredState(ctx, 0, 0))

	type result struct {
		ds  *api.DesiredState
		err error
		at  time.Time
	}
	wait := func() chan result {
		ch := make(chan result, 1)
		go func() {
			d, err := a.DesiredState(ctx, ds.Index, 3*time.Second)
			ch <- result{d, err, time.Now()}
		}()
		time.Sleep(100 * time.Millisecond) // let the query block
		return ch
	}

	// Unrelated: a host joining network two does not wake a.
	ch := wait()
	ts.agentHost("y", "two")
	select {
	case r := <-ch:
		if r.err != nil || r.ds.Index != ds.Index {
			t.Fatalf("woken by an unrelated change: %+v %v", r.ds, r.err)
		}
		t.Fatal("answered before the wait ended")
	case <-time.After(500 * time.Millisecond):
	}
	r := <-ch // the wait ends with the unchanged state
	if r.err != nil || r.ds.Index != ds.Index {
		t.Fatalf("timeout answer: %+v %v", r.ds, r.err)
	}

	// Relevant: a third host in network one wakes a at once.
	ch = wait()
	start := time.Now()
	ts.agentHost("c", "one")
	r = <-ch
	if r.err != nil || r.ds.Index <= ds.Index || len(r.ds.Interfaces[0].Peers) < 2 {
		t.Fatalf("after a relevant change: %+v %v", r.ds, r.err)
	}
	t.Logf("woken %v after the change began", r.at.Sub(start))
	if r.at.Sub(start) > 2*time.Second {
		t.Fatalf("woken only after %v: the wait ran out instead", r.at.Sub(start))
	}
}

func TestDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir)
	c, ctx := ts.rootClient(), context.Background()
	n := must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "keep", IPv4Range: "10.1.0.0/24", Topology: "mesh"}))
	_, hid := ts.agentHost("h", "keep")
	iface := ifaceOf(t, c, hid)
	root := ts.root
	if fi, err := os.Stat(filepath.Join(dir, RootTokenFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("root token file: %v %v", fi, err)
	}
	ts.stop()

	ts2 := startServer(t, dir)
	if ts2.root != "" {
		t.Fatal("a second root token was created")
	}
	ts2.root = root
	c2 := ts2.rootClient()
	got := must[*api.Network](t)(c2.Network(ctx, "keep"))
	if diff := cmp.Diff(n, got); diff != "" {
		t.Errorf("network after restart (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(iface, ifaceOf(t, c2, hid)); diff != "" {
		t.Errorf("interface after restart (-want +got):\n%s", diff)
	}
	// The allocator remembers assigned addresses.
	_, h2 := ts2.agentHost("h2", "keep")
	if a := ifaceOf(t, c2, h2).Addresses[0]; a == iface.Addresses[0] {
		t.Fatalf("address %s assigned twice", a)
	}
}

func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	startServer(t, dir)
	start := time.Now()
	_, _, err := New(Config{Addr: "127.0.0.1:0", DataDir: dir}, discardLogger())
	if err == nil || !contains(err.Error(), "is another drago using this data_dir?") {
		t.Fatalf("second server on the same data dir: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v to fail", d)
	}
}

// TestDesiredDeltas checks ?delta=true end to end: a change answers with a
// patch that, applied, gives the whole state; an expired wait answers
// "unchanged" without peers; a bad value is refused naming the field.
func TestDesiredDeltas(t *testing.T) {
	ts := startServer(t, "")
	c, ctx := ts.rootClient(), context.Background()
	must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "one", IPv4Range: "10.1.0.0/24", Topology: "mesh"}))
	a, _ := ts.agentHost("a", "one")
	_, bID := ts.agentHost("b", "one")
	ds := must[*api.DesiredState](t)(a.DesiredDelta(ctx, 0, 0))
	if ds.IsDelta() || len(ds.Interfaces[0].Peers) != 1 {
		t.Fatalf("first answer: %+v", ds)
	}

	start := time.Now()
	same := must[*api.DesiredState](t)(a.DesiredDelta(ctx, ds.Index, 200*time.Millisecond))
	if !same.IsDelta() || same.Index != ds.Index || len(same.Patches) != 0 || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("expired wait: %+v after %v", same, time.Since(start))
	}

	ib := ifaceOf(t, c, bID)
	must[*api.Interface](t)(c.UpdateInterface(ctx, ib.ID, map[string]any{"routed_subnets": []string{"192.168.5.0/24"}}))
	ts.agentHost("c", "one")
	d := must[*api.DesiredState](t)(a.DesiredDelta(ctx, ds.Index, time.Second))
	if !d.IsDelta() || len(d.Patches) != 1 || len(d.Patches[0].Peers) != 2 || len(d.Interfaces) != 0 {
		t.Fatalf("delta after two peer changes: %+v", d)
	}
	got := must[*api.DesiredState](t)(d.Patched(ds))
	want := must[*api.DesiredState](t)(a.DesiredState(ctx, 0, 0))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("patched state (-whole +patched):\n%s", diff)
	}

	jt := must[*api.JoinToken](t)(c.CreateJoinToken(ctx, &api.JoinToken{Networks: []string{"one"}}))
	reg := must[*api.RegisterResponse](t)(ts.client(jt.Secret).Register(ctx, &api.RegisterRequest{Name: "z"}))
	status, body := ts.raw("GET", "/agent/config?index=1&delta=maybe", reg.Credential, "", "")
	var e api.Error
	if err := json.Unmarshal([]byte(body), &e); status != 400 || err != nil || e.Err.Field != "delta" {
		t.Fatalf("bad delta: %d %s", status, body)
	}
}
