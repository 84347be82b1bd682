package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/platform/platformtest"
	"github.com/drago-wg/drago/server/api"
)

// testLogger logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

// fixture is a reconciler on a fresh data dir and Recorder.
type fixture struct {
	t    *testing.T
	root string
	fake *platformtest.Recorder
	rec  *reconciler
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, root: t.TempDir(), fake: platformtest.NewRecorder()}
	f.restart(f.fake)
	return f
}

// restart builds a new reconciler on the same data dir, as a new agent
// process would, with backend b.
func (f *fixture) restart(b *platformtest.Recorder) {
	f.t.Helper()
	dir, err := openDataDir(f.root)
	if err != nil {
		f.t.Fatal(err)
	}
	f.fake = b
	f.rec, err = newReconciler(b, dir, testLogger(f.t))
	if err != nil {
		f.t.Fatal(err)
	}
	f.rec.lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
		if host == "peer.example.test" {
			return []netip.Addr{netip.MustParseAddr("203.0.113.9")}, nil
		}
		return nil, errors.New("no such host")
	}
}

// apply reconciles ds, fails the test on error, and returns the writes the
// backend saw (Device reads left out).
func (f *fixture) apply(ds *api.DesiredState) []platformtest.Op {
	f.t.Helper()
	f.fake.Reset()
	if _, err := f.rec.reconcile(context.Background(), ds); err != nil {
		f.t.Fatalf("reconcile: %v", err)
	}
	return writes(f.fake)
}

func writes(r *platformtest.Recorder) []platformtest.Op {
	var out []platformtest.Op
	for _, op := range r.Ops() {
		if op.Method != "Device" {
			out = append(out, op)
		}
	}
	return out
}

// testState is one interface with n peers: peer i has address 10.0.0.i+1,
// and peer 2 also routes 192.168.2.0/24.
func testState(n int) *api.DesiredState {
	ifc := api.DesiredInterface{
		ID: "if-a", Name: "drago-a", NetworkID: "net-1", Addresses: []string{"10.0.0.1/24"},
		ListenPort: 51820, MTU: 1420,
	}
	for i := range n {
		p := api.DesiredPeer{
			PublicKey:  peerKey(byte(10 + i)).String(),
			Endpoint:   fmt.Sprintf("192.0.2.%d:51820", 10+i),
			AllowedIPs: []string{fmt.Sprintf("10.0.0.%d/32", i+2)},
		}
		if i == 2 {
			p.AllowedIPs = append(p.AllowedIPs, "192.168.2.0/24")
		}
		ifc.Peers = append(ifc.Peers, p)
	}
	return &api.DesiredState{Index: 7, HostID: "host-1", Interfaces: []api.DesiredInterface{ifc}}
}

func op(method, dev string) platformtest.Op { return platformtest.Op{Method: method, Device: dev} }

func prefixOp(method, dev, p string) platformtest.Op {
	return platformtest.Op{Method: method, Device: dev, Prefix: netip.MustParsePrefix(p)}
}

func TestReconcileCreate(t *testing.T) {
	f := newFixture(t)
	got := f.apply(testState(3))
	want := []platformtest.Op{
		op("CreateDevice", "drago-a"),
		{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 3, ReplacePeers: true, PrivateKey: true},
		{Method: "SetMTU", Device: "drago-a", MTU: 1420},
		prefixOp("AddAddress", "drago-a", "10.0.0.1/24"),
		op("SetUp", "drago-a"),
		prefixOp("AddRoute", "drago-a", "192.168.2.0/24"),
	}
	if d := cmp.Diff(want, got, cmpNetip); d != "" {
		t.Errorf("ops (-want +got):\n%s", d)
	}

	dev, err := f.fake.Device("drago-a")
	if err != nil {
		t.Fatal(err)
	}
	key, err := f.rec.keys.get("if-a")
	if err != nil {
		t.Fatal(err)
	}
	if dev.WireGuard.PrivateKey != key || dev.WireGuard.ListenPort != 51820 || len(dev.WireGuard.Peers) != 3 || !dev.Up {
		t.Errorf("device = %+v, want key from the store, port 51820, 3 peers, up", dev)
	}
	if diff := cmp.Diff(map[string]string{"drago-a": "if-a"}, map[string]string(f.rec.owned)); diff != "" {
		t.Errorf("owned (-want +got):\n%s", diff)
	}
	fi, err := os.Stat(filepath.Join(f.root, "agent", "keys", "if-a.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", fi.Mode().Perm())
	}
}

func TestReconcileIdempotent(t *testing.T) {
	f := newFixture(t)
	ds := testState(5)
	f.apply(ds)
	for i := range 3 {
		if got := f.apply(ds); len(got) != 0 {
			t.Fatalf("reconcile %d with the same state made writes: %+v", i+2, got)
		}
	}
}

// TestReconcileChanges checks the writes of each kind of change, made by
// a full reconcile and by reconcileChanges: the same, and without a device
// read in the second case when only peers changed.
func TestReconcileChanges(t *testing.T) {
	const many = 20
	tests := []struct {
		name   string
		change func(ds *api.DesiredState)
		want   []platformtest.Op
		link   bool // the change is not to peers only
	}{
		{
			name:   "one peer's endpoint among many",
			change: func(ds *api.DesiredState) { ds.Interfaces[0].Peers[7].Endpoint = "198.51.100.1:4000" },
			want:   []platformtest.Op{{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 1}},
		},
		{
			name: "one peer's allowed ips among many",
			change: func(ds *api.DesiredState) {
				ds.Interfaces[0].Peers[4].AllowedIPs = []string{"10.0.0.6/32", "10.0.0.106/32"}
			},
			want: []platformtest.Op{{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 1}},
		},
		{
			name:   "one peer's keepalive among many",
			change: func(ds *api.DesiredState) { ds.Interfaces[0].Peers[11].PersistentKeepalive = 25 },
			want:   []platformtest.Op{{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 1}},
		},
		{
			name: "peer added",
			change: func(ds *api.DesiredState) {
				ds.Interfaces[0].Peers = append(ds.Interfaces[0].Peers, api.DesiredPeer{
					PublicKey: peerKey(200).String(), AllowedIPs: []string{"10.0.0.200/32"},
				})
			},
			want: []platformtest.Op{{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 1}},
		},
		{
			name: "peer removed",
			change: func(ds *api.DesiredState) {
				ps := ds.Interfaces[0].Peers
				ds.Interfaces[0].Peers = append(ps[:5:5], ps[6:]...)
			},
			want: []platformtest.Op{{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 1, RemovedPeers: 1}},
		},
		{
			name: "peer with a routed subnet removed",
			change: func(ds *api.DesiredState) {
				ps := ds.Interfaces[0].Peers
				ds.Interfaces[0].Peers = append(ps[:2:2], ps[3:]...)
			},
			want: []platformtest.Op{
				{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 1, RemovedPeers: 1},
				prefixOp("DeleteRoute", "drago-a", "192.168.2.0/24"),
			},
		},
		{
			name:   "address changed",
			change: func(ds *api.DesiredState) { ds.Interfaces[0].Addresses = []string{"10.0.0.99/24"} },
			want: []platformtest.Op{
				prefixOp("DeleteAddress", "drago-a", "10.0.0.1/24"),
				prefixOp("AddAddress", "drago-a", "10.0.0.99/24"),
			},
			link: true,
		},
		{
			name: "address added",
			change: func(ds *api.DesiredState) {
				ds.Interfaces[0].Addresses = append(ds.Interfaces[0].Addresses, "fd00::1/64")
			},
			want: []platformtest.Op{prefixOp("AddAddress", "drago-a", "fd00::1/64")},
			link: true,
		},
		{
			name:   "mtu changed",
			change: func(ds *api.DesiredState) { ds.Interfaces[0].MTU = 1380 },
			want:   []platformtest.Op{{Method: "SetMTU", Device: "drago-a", MTU: 1380}},
			link:   true,
		},
		{
			name:   "listen port changed",
			change: func(ds *api.DesiredState) { ds.Interfaces[0].ListenPort = 51999 },
			want:   []platformtest.Op{{Method: "ConfigureWireGuard", Device: "drago-a"}},
			link:   true,
		},
		{
			name: "routed subnet added to a peer",
			change: func(ds *api.DesiredState) {
				p := &ds.Interfaces[0].Peers[9]
				p.AllowedIPs = append(p.AllowedIPs, "172.20.0.0/16")
			},
			want: []platformtest.Op{
				{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 1},
				prefixOp("AddRoute", "drago-a", "172.20.0.0/16"),
			},
		},
		{
			name: "routed subnet moved to another peer",
			change: func(ds *api.DesiredState) {
				ps := ds.Interfaces[0].Peers
				ps[2].AllowedIPs = ps[2].AllowedIPs[:1]
				ps[3].AllowedIPs = append(ps[3].AllowedIPs, "192.168.2.0/24")
			},
			want: []platformtest.Op{{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 2}},
		},
		{
			name: "subnet widened to cover routed peers",
			change: func(ds *api.DesiredState) {
				ds.Interfaces[0].Addresses = []string{"10.0.0.1/24", "192.168.9.1/16"}
			},
			want: []platformtest.Op{
				prefixOp("AddAddress", "drago-a", "192.168.9.1/16"),
				prefixOp("DeleteRoute", "drago-a", "192.168.2.0/24"),
			},
			link: true,
		},
	}
	for _, tt := range tests {
		for _, changes := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/changes=%v", tt.name, changes), func(t *testing.T) {
				f := newFixture(t)
				f.apply(testState(many))
				ds := testState(many)
				ds.Index++
				tt.change(ds)
				reconcile := f.rec.reconcile
				if changes {
					reconcile = f.rec.reconcileChanges
				}
				f.fake.Reset()
				if _, err := reconcile(context.Background(), ds); err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(tt.want, writes(f.fake), cmpNetip); d != "" {
					t.Errorf("ops (-want +got):\n%s", d)
				}
				if reads := len(f.fake.Ops()) - len(writes(f.fake)); changes && !tt.link && reads != 0 {
					t.Errorf("%d device reads for a change to peers only", reads)
				}
				if again := f.apply(ds); len(again) != 0 {
					t.Errorf("a full reconcile after it made writes: %+v", again)
				}
			})
		}
	}
}

// TestReconcileDeltaDropsOnlyBadPeers applies a succession of deltas, as
// the agent patches them onto its last state, by a full reconcile and by
// reconcileChanges: a delta that brings a duplicate key or a malformed
// peer leaves out only the peers concerned, and the other changes to the
// interface, before and after, are applied.
func TestReconcileDeltaDropsOnlyBadPeers(t *testing.T) {
	peer := func(id string, key byte, allowed ...string) api.DesiredPeer {
		return api.DesiredPeer{InterfaceID: id, PublicKey: peerKey(key).String(), Endpoint: "192.0.2.50:51820", AllowedIPs: allowed}
	}
	steps := []struct {
		name    string
		patch   api.PeerPatch
		want    []platformtest.Op
		skipped int // peers left out of the state
	}{
		{
			name:  "a new interface claims the key of if-p2",
			patch: api.PeerPatch{Peers: []api.DesiredPeer{peer("if-x", 12, "10.0.0.9/32", "192.168.9.0/24")}},
			want: []platformtest.Op{ // neither is trusted: if-p2 goes
				{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 1, RemovedPeers: 1},
				prefixOp("DeleteRoute", "drago-a", "192.168.2.0/24"),
			},
			skipped: 1,
		},
		{
			name:  "another peer gains a routed subnet",
			patch: api.PeerPatch{Peers: []api.DesiredPeer{peer("if-p1", 11, "10.0.0.3/32", "192.168.1.0/24")}},
			want: []platformtest.Op{
				{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 1},
				prefixOp("AddRoute", "drago-a", "192.168.1.0/24"),
			},
			skipped: 1,
		},
		{
			name:    "a malformed peer comes with a good one",
			patch:   api.PeerPatch{Peers: []api.DesiredPeer{peer("if-y", 13, "nope"), peer("if-z", 14, "10.0.0.14/32")}},
			want:    []platformtest.Op{{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 1}},
			skipped: 2,
		},
		{
			name:  "the impostor goes: if-p2 is back",
			patch: api.PeerPatch{Remove: []string{"if-x"}},
			want: []platformtest.Op{
				{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 1},
				prefixOp("AddRoute", "drago-a", "192.168.2.0/24"),
			},
			skipped: 1,
		},
		{
			name:  "the malformed peer is fixed",
			patch: api.PeerPatch{Peers: []api.DesiredPeer{peer("if-y", 13, "10.0.0.13/32")}},
			want:  []platformtest.Op{{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 1}},
		},
		{
			name: "a peer rotates: listed under its current and next keys",
			patch: api.PeerPatch{Peers: []api.DesiredPeer{
				{InterfaceID: "if-p0", PublicKey: peerKey(10).String(), Endpoint: "192.0.2.10:51820", AllowedIPs: []string{"10.0.0.2/32"}},
				peer("if-p0", 15),
			}},
			want: nil, // the next key is not installed
		},
	}
	for _, changes := range []bool{false, true} {
		t.Run(fmt.Sprintf("changes=%v", changes), func(t *testing.T) {
			f := newFixture(t)
			ds := testState(3)
			for i := range ds.Interfaces[0].Peers {
				ds.Interfaces[0].Peers[i].InterfaceID = fmt.Sprintf("if-p%d", i)
			}
			f.apply(ds)
			reconcile := f.rec.reconcile
			if changes {
				reconcile = f.rec.reconcileChanges
			}
			for _, st := range steps {
				st.patch.InterfaceID = "if-a"
				delta := &api.DesiredState{Index: ds.Index + 1, BaseIndex: ds.Index, HostID: ds.HostID, Patches: []api.PeerPatch{st.patch}}
				next, err := delta.Patched(ds)
				if err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
				ds = next
				f.fake.Reset()
				res, err := reconcile(context.Background(), ds)
				if err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
				if d := cmp.Diff(st.want, writes(f.fake), cmpNetip); d != "" {
					t.Errorf("%s: ops (-want +got):\n%s", st.name, d)
				}
				if res.SkippedPeers != st.skipped || res.Skipped != 0 {
					t.Errorf("%s: skipped %d peers and %d interfaces, want %d and 0", st.name, res.SkippedPeers, res.Skipped, st.skipped)
				}
				if reads := len(f.fake.Ops()) - len(writes(f.fake)); changes && reads != 0 {
					t.Errorf("%s: %d device reads for a change to peers only", st.name, reads)
				}
			}
			if again := f.apply(ds); len(again) != 0 {
				t.Errorf("a full reconcile after the deltas made writes: %+v", again)
			}
			dev, err := f.fake.Device("drago-a")
			if err != nil {
				t.Fatal(err)
			}
			var got []wgtypes.Key
			for _, p := range dev.WireGuard.Peers {
				got = append(got, p.PublicKey)
			}
			sortKeys(got)
			want := []wgtypes.Key{peerKey(10), peerKey(11), peerKey(12), peerKey(13), peerKey(14)} // not 15, a next key
			sortKeys(want)
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("device peers at the end (-want +got):\n%s", d)
			}
		})
	}
}

// TestReconcileChangesLeavesDriftToTheFullReconcile: reconcileChanges
// trusts its last apply, so a hand-made change waits for reconcile, and an
// interface whose apply failed is read again.
func TestReconcileChangesLeavesDriftToTheFullReconcile(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.apply(testState(3))
	must(t, f.fake.ConfigureWireGuard("drago-a", wgtypes.Config{Peers: []wgtypes.PeerConfig{{PublicKey: peerKey(10), Remove: true}}}))
	f.fake.Reset()
	if _, err := f.rec.reconcileChanges(ctx, testState(3)); err != nil || len(f.fake.Ops()) != 0 {
		t.Fatalf("reconcileChanges of the same state: %v, ops %+v; want none", err, f.fake.Ops())
	}
	if got := f.apply(testState(3)); len(got) != 1 || got[0].Peers != 1 {
		t.Fatalf("full reconcile after the hand-made removal: %+v, want the peer added back", got)
	}

	ds := testState(3)
	ds.Interfaces[0].Peers[1].Endpoint = "198.51.100.1:4000"
	f.fake.FailOn("ConfigureWireGuard", errors.New("boom"))
	if _, err := f.rec.reconcileChanges(ctx, ds); err == nil {
		t.Fatal("reconcileChanges with a failing backend: want error")
	}
	f.fake.FailOn("ConfigureWireGuard", nil)
	f.fake.Reset()
	if _, err := f.rec.reconcileChanges(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if ops := f.fake.Ops(); len(ops) != 2 || ops[0].Method != "Device" || ops[1].Peers != 1 {
		t.Errorf("after a failure: %+v, want the device read and the peer updated", ops)
	}
}

func TestReconcileRemovesOnlyOwnedInterfaces(t *testing.T) {
	f := newFixture(t)
	if err := f.fake.CreateDevice("wg-user"); err != nil {
		t.Fatal(err)
	}
	two := testState(2)
	b := two.Interfaces[0]
	b.ID, b.Name, b.Addresses, b.Peers = "if-b", "drago-b", []string{"10.1.0.1/24"}, nil
	two.Interfaces = append(two.Interfaces, b)
	f.apply(two)

	got := f.apply(testState(2)) // drago-b no longer desired
	if d := cmp.Diff([]platformtest.Op{op("DeleteDevice", "drago-b")}, got, cmpNetip); d != "" {
		t.Errorf("ops (-want +got):\n%s", d)
	}
	if _, err := f.rec.keys.get("if-b"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("key of the removed interface: err = %v, want not exist", err)
	}
	got = f.apply(&api.DesiredState{Index: 9, HostID: "host-1"}) // nothing desired
	if d := cmp.Diff([]platformtest.Op{op("DeleteDevice", "drago-a")}, got, cmpNetip); d != "" {
		t.Errorf("ops (-want +got):\n%s", d)
	}
	if _, err := f.fake.Device("wg-user"); err != nil {
		t.Errorf("wg-user, not drago's, was touched: %v", err)
	}
	owned, err := f.rec.dir.loadOwned()
	if err != nil {
		t.Fatal(err)
	}
	if len(owned) != 0 {
		t.Errorf("owned after removing all = %v, want empty", owned)
	}
}

func TestReconcileLeavesForeignInterfaceWithDesiredName(t *testing.T) {
	f := newFixture(t)
	if err := f.fake.CreateDevice("drago-a"); err != nil { // made by someone else
		t.Fatal(err)
	}
	f.fake.Reset()
	res, err := f.rec.reconcile(context.Background(), testState(2))
	if err != nil {
		t.Fatal(err)
	}
	if got := writes(f.fake); len(got) != 0 {
		t.Errorf("writes to a foreign interface: %+v", got)
	}
	if res.Skipped != 1 {
		t.Errorf("skipped = %d, want 1", res.Skipped)
	}
	// And it is not removed either once no longer desired.
	if got := f.apply(&api.DesiredState{Index: 8}); len(got) != 0 {
		t.Errorf("writes: %+v", got)
	}
}

func TestReconcileSkipsMalformedInterface(t *testing.T) {
	f := newFixture(t)
	ds := testState(2)
	b := ds.Interfaces[0]
	b.ID, b.Name, b.Addresses, b.Peers = "if-b", "drago-b", []string{"10.1.0.1/24"}, nil
	ds.Interfaces = append(ds.Interfaces, b)
	f.apply(ds)

	// The server now sends drago-b with a bad address and a new interface
	// with a bad name: drago-b is left as it is, drago-a still applied.
	ds = testState(3)
	b.Addresses = []string{"10.1.0.300/24"}
	ds.Interfaces = append(ds.Interfaces, b, api.DesiredInterface{ID: "if-c", Name: "this name is far too long"})
	f.fake.Reset()
	res, err := f.rec.reconcile(context.Background(), ds)
	if err != nil {
		t.Fatal(err)
	}
	want := []platformtest.Op{
		{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 1},
		prefixOp("AddRoute", "drago-a", "192.168.2.0/24"), // the new peer's routed subnet
	}
	if d := cmp.Diff(want, writes(f.fake), cmpNetip); d != "" {
		t.Errorf("ops (-want +got):\n%s", d)
	}
	if res.Skipped != 2 {
		t.Errorf("skipped = %d, want 2", res.Skipped)
	}
	if _, err := f.rec.keys.get("if-b"); err != nil {
		t.Errorf("key of the skipped interface: %v", err)
	}
}

func TestReconcileRepairsDrift(t *testing.T) {
	tests := []struct {
		name  string
		drift func(t *testing.T, r *platformtest.Recorder)
		want  []platformtest.Op
	}{
		{
			name: "peer removed by hand",
			drift: func(t *testing.T, r *platformtest.Recorder) {
				must(t, r.ConfigureWireGuard("drago-a", wgtypes.Config{Peers: []wgtypes.PeerConfig{{PublicKey: peerKey(13), Remove: true}}}))
			},
			want: []platformtest.Op{{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 1}},
		},
		{
			name: "stray peer added by hand",
			drift: func(t *testing.T, r *platformtest.Recorder) {
				must(t, r.ConfigureWireGuard("drago-a", wgtypes.Config{Peers: []wgtypes.PeerConfig{{PublicKey: peerKey(99)}}}))
			},
			want: []platformtest.Op{{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 1, RemovedPeers: 1}},
		},
		{
			name: "private key replaced by hand",
			drift: func(t *testing.T, r *platformtest.Recorder) {
				k := testKey(77)
				must(t, r.ConfigureWireGuard("drago-a", wgtypes.Config{PrivateKey: &k}))
			},
			want: []platformtest.Op{{Method: "ConfigureWireGuard", Device: "drago-a", PrivateKey: true}},
		},
		{
			name: "address and route deleted, link down",
			drift: func(t *testing.T, r *platformtest.Recorder) {
				must(t, r.DeleteAddress("drago-a", netip.MustParsePrefix("10.0.0.1/24")))
				must(t, r.DeleteRoute("drago-a", netip.MustParsePrefix("192.168.2.0/24")))
				must(t, r.SetMTU("drago-a", 1500))
			},
			want: []platformtest.Op{
				{Method: "SetMTU", Device: "drago-a", MTU: 1420},
				prefixOp("AddAddress", "drago-a", "10.0.0.1/24"),
				prefixOp("AddRoute", "drago-a", "192.168.2.0/24"),
			},
		},
		{
			name: "interface deleted",
			drift: func(t *testing.T, r *platformtest.Recorder) {
				must(t, r.DeleteDevice("drago-a"))
			},
			want: []platformtest.Op{
				op("CreateDevice", "drago-a"),
				{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 5, ReplacePeers: true, PrivateKey: true},
				{Method: "SetMTU", Device: "drago-a", MTU: 1420},
				prefixOp("AddAddress", "drago-a", "10.0.0.1/24"),
				op("SetUp", "drago-a"),
				prefixOp("AddRoute", "drago-a", "192.168.2.0/24"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ds := testState(5)
			f.apply(ds)
			tt.drift(t, f.fake)
			if d := cmp.Diff(tt.want, f.apply(ds), cmpNetip); d != "" {
				t.Errorf("ops (-want +got):\n%s", d)
			}
			if again := f.apply(ds); len(again) != 0 {
				t.Errorf("after repair, reconcile made writes: %+v", again)
			}
		})
	}
}

func TestReconcileResumesAfterBackendFailure(t *testing.T) {
	f := newFixture(t)
	f.fake.FailOn("AddAddress", errors.New("boom"))
	if _, err := f.rec.reconcile(context.Background(), testState(2)); err == nil {
		t.Fatal("reconcile with a failing backend: want error")
	}
	f.fake.FailOn("AddAddress", nil)
	want := []platformtest.Op{
		prefixOp("AddAddress", "drago-a", "10.0.0.1/24"),
		op("SetUp", "drago-a"),
	}
	if d := cmp.Diff(want, f.apply(testState(2)), cmpNetip); d != "" {
		t.Errorf("ops (-want +got):\n%s", d)
	}
}

func TestReconcileRename(t *testing.T) {
	f := newFixture(t)
	f.apply(testState(1))
	key, _ := f.rec.keys.get("if-a")
	ds := testState(1)
	ds.Interfaces[0].Name = "drago-z"
	got := f.apply(ds)
	if got[0].Method != "CreateDevice" || got[len(got)-1] != op("DeleteDevice", "drago-a") {
		t.Errorf("ops = %+v, want drago-z created and drago-a deleted", got)
	}
	dev, err := f.fake.Device("drago-z")
	if err != nil {
		t.Fatal(err)
	}
	if dev.WireGuard.PrivateKey != key {
		t.Error("renamed interface got a new key")
	}
}

func TestReconcileKeepsKeysAcrossRestarts(t *testing.T) {
	f := newFixture(t)
	f.apply(testState(2))
	before, _ := f.fake.Device("drago-a")

	// A userspace backend loses its devices with the process.
	f.restart(platformtest.NewRecorder())
	f.apply(testState(2))
	after, err := f.fake.Device("drago-a")
	if err != nil {
		t.Fatal(err)
	}
	if after.WireGuard.PublicKey != before.WireGuard.PublicKey {
		t.Error("public key changed across a restart")
	}
}

func TestReconcileResolvesEndpointNames(t *testing.T) {
	f := newFixture(t)
	ds := testState(2)
	ds.Interfaces[0].Peers[0].Endpoint = "peer.example.test:51820"
	ds.Interfaces[0].Peers[1].Endpoint = "unknown.example.test:51820"
	f.apply(ds)
	dev, _ := f.fake.Device("drago-a")
	got := map[string]string{}
	for _, p := range dev.WireGuard.Peers {
		got[p.PublicKey.String()] = fmt.Sprint(p.Endpoint)
	}
	want := map[string]string{peerKey(10).String(): "203.0.113.9:51820", peerKey(11).String(): "<nil>"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("endpoints (-want +got):\n%s", d)
	}
	if again := f.apply(ds); len(again) != 0 {
		t.Errorf("second reconcile made writes: %+v", again)
	}
}

// TestReconcileResolvesEndpointNamesAgain: a reconcile of the same state,
// whose parse is kept, resolves the names again and follows a new address.
func TestReconcileResolvesEndpointNamesAgain(t *testing.T) {
	f := newFixture(t)
	ds := testState(2)
	ds.Interfaces[0].Peers[0].Endpoint = "peer.example.test:51820"
	f.apply(ds)
	f.rec.lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("203.0.113.10")}, nil
	}
	want := []platformtest.Op{{Method: "ConfigureWireGuard", Device: "drago-a", Peers: 1}}
	if d := cmp.Diff(want, f.apply(ds), cmpNetip); d != "" {
		t.Errorf("ops (-want +got):\n%s", d)
	}
	dev, _ := f.fake.Device("drago-a")
	for _, p := range dev.WireGuard.Peers {
		if p.PublicKey == peerKey(10) && p.Endpoint.String() != "203.0.113.10:51820" {
			t.Errorf("endpoint = %v, want the new address 203.0.113.10:51820", p.Endpoint)
		}
	}
}

func TestParseKeepsTheLastState(t *testing.T) {
	f := newFixture(t)
	ds := testState(2)
	first := f.rec.parse(ds)
	if again := f.rec.parse(ds); &again.Interfaces[0] != &first.Interfaces[0] {
		t.Error("the same state was parsed again")
	}
	other := testState(2)
	other.Interfaces[0].MTU = 1380
	if got := f.rec.parse(other); &got.Interfaces[0] == &first.Interfaces[0] || got.Interfaces[0].MTU != 1380 {
		t.Errorf("a new state got the result of the last one: %+v", got.Interfaces)
	}
}

func TestStatusReportsPublicKeysAndPeers(t *testing.T) {
	f := newFixture(t)
	ds := testState(2)
	f.apply(ds)
	hs := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	must(t, f.fake.SetPeerStats("drago-a", peerKey(10), hs, 100, 200))
	key, _ := f.rec.keys.get("if-a")
	want := []api.InterfaceStatus{{
		ID: "if-a", PublicKey: key.PublicKey().String(), ListenPort: 51820,
		// In the device's order: the Recorder's is the order the peers
		// were added in, by key bytes, which puts peerKey(11) first.
		Peers: []api.PeerStatus{
			{PublicKey: peerKey(11).String(), Endpoint: "192.0.2.11:51820"},
			{PublicKey: peerKey(10).String(), Endpoint: "192.0.2.10:51820", LastHandshake: &hs, RxBytes: 100, TxBytes: 200},
		},
	}}
	got := f.rec.statusFrom(ds, f.rec.reader(true))
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("status (-want +got):\n%s", d)
	}
	// Without counters, the device's peers are not read.
	want[0].Peers = nil
	if d := cmp.Diff(want, f.rec.statusFrom(ds, f.rec.reader(false))); d != "" {
		t.Errorf("status without counters (-want +got):\n%s", d)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
