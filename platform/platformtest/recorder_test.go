package platformtest

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

func TestRecorderConformance(t *testing.T) {
	Conformance(t, NewRecorder(), "drago0")
}

func TestRecorderOps(t *testing.T) {
	r := NewRecorder()
	p := netip.MustParsePrefix("10.0.0.0/24")
	calls := []struct {
		call func() error
		want Op
	}{
		{func() error { return r.CreateDevice("wg0") }, Op{Method: "CreateDevice", Device: "wg0"}},
		{func() error {
			return r.ConfigureWireGuard("wg0", wgtypes.Config{PrivateKey: &privKey, ReplacePeers: true, Peers: []wgtypes.PeerConfig{
				{PublicKey: peer1}, {PublicKey: peer2}, {PublicKey: peer3, Remove: true},
			}})
		}, Op{Method: "ConfigureWireGuard", Device: "wg0", Peers: 3, RemovedPeers: 1, ReplacePeers: true, PrivateKey: true}},
		{func() error { return r.SetMTU("wg0", 1380) }, Op{Method: "SetMTU", Device: "wg0", MTU: 1380}},
		{func() error { return r.SetUp("wg0") }, Op{Method: "SetUp", Device: "wg0"}},
		{func() error { return r.AddAddress("wg0", p) }, Op{Method: "AddAddress", Device: "wg0", Prefix: p}},
		{func() error { return r.AddRoute("wg0", p) }, Op{Method: "AddRoute", Device: "wg0", Prefix: p}},
		{func() error { _, err := r.Device("wg0"); return err }, Op{Method: "Device", Device: "wg0"}},
		{func() error { return r.DeleteRoute("wg0", p) }, Op{Method: "DeleteRoute", Device: "wg0", Prefix: p}},
		{func() error { return r.DeleteAddress("wg0", p) }, Op{Method: "DeleteAddress", Device: "wg0", Prefix: p}},
		{func() error { return r.DeleteDevice("wg0") }, Op{Method: "DeleteDevice", Device: "wg0"}},
		{func() error { return r.Close() }, Op{Method: "Close"}},
	}
	var want []Op
	for _, c := range calls {
		if err := c.call(); err != nil {
			t.Fatalf("%s: %v", c.want.Method, err)
		}
		want = append(want, c.want)
	}
	if diff := cmp.Diff(want, r.Ops(), cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
		t.Errorf("Ops() (-want +got):\n%s", diff)
	}
	if got, want := r.Writes(), len(calls)-1; got != want {
		t.Errorf("Writes() = %d, want %d", got, want)
	}
	if got := r.PeerOps(); got != 3 {
		t.Errorf("PeerOps() = %d, want 3", got)
	}
	if err := r.CreateDevice("wg1"); err == nil {
		t.Errorf("CreateDevice after Close succeeded, want an error")
	}
	r.Reset()
	if len(r.Ops()) != 0 || r.Writes() != 0 || r.PeerOps() != 0 {
		t.Errorf("after Reset: %d ops, %d writes, %d peer ops, want none", len(r.Ops()), r.Writes(), r.PeerOps())
	}
}

func TestRecorderDiscardOps(t *testing.T) {
	r := &Recorder{DiscardOps: true}
	r.CreateDevice("wg0")
	r.ConfigureWireGuard("wg0", wgtypes.Config{Peers: []wgtypes.PeerConfig{{PublicKey: peer1}}})
	if got := r.Ops(); len(got) != 0 {
		t.Errorf("Ops() = %v, want none", got)
	}
	if r.Writes() != 2 || r.PeerOps() != 1 {
		t.Errorf("Writes() = %d, PeerOps() = %d, want 2, 1", r.Writes(), r.PeerOps())
	}
}

func TestRecorderFailOn(t *testing.T) {
	r := NewRecorder()
	boom := errors.New("boom")
	r.FailOn("CreateDevice", boom)
	if err := r.CreateDevice("wg0"); !errors.Is(err, boom) {
		t.Fatalf("CreateDevice = %v, want boom", err)
	}
	if _, err := r.Device("wg0"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed CreateDevice created the device: Device = %v", err)
	}
	r.FailOn("CreateDevice", nil)
	if err := r.CreateDevice("wg0"); err != nil {
		t.Fatal(err)
	}
	if got := len(r.Ops()); got != 3 {
		t.Errorf("recorded %d ops, want 3 (failed calls are recorded too)", got)
	}
}

func TestRecorderSnapshotIsolated(t *testing.T) {
	r := NewRecorder()
	r.CreateDevice("wg0")
	r.ConfigureWireGuard("wg0", wgtypes.Config{Peers: []wgtypes.PeerConfig{{PublicKey: peer1, AllowedIPs: nets("10.0.1.0/24")}}})
	d, err := r.Device("wg0")
	if err != nil {
		t.Fatal(err)
	}
	// Snapshots share the peers: appending to one must not reach the
	// Recorder, and later changes must not reach the snapshot.
	d.WireGuard.Peers = append(d.WireGuard.Peers, wgtypes.Peer{PublicKey: peer2})
	r.ConfigureWireGuard("wg0", wgtypes.Config{Peers: []wgtypes.PeerConfig{{PublicKey: peer2, AllowedIPs: nets("10.0.1.0/24")}}})
	if err := r.SetPeerStats("wg0", peer1, time.Time{}, 99, 0); err != nil {
		t.Fatal(err)
	}

	got, err := r.Device("wg0")
	if err != nil {
		t.Fatal(err)
	}
	want := view{Name: "wg0", MTU: 1420, Peers: []peerView{
		{PublicKey: peer1.String()},
		{PublicKey: peer2.String(), AllowedIPs: []string{"10.0.1.0/24"}},
	}}
	sortPeers(want.Peers)
	if diff := cmp.Diff(want, viewOf(got)); diff != "" {
		t.Errorf("Device (-want +got):\n%s", diff)
	}
	if p := d.WireGuard.Peers[0]; len(p.AllowedIPs) != 1 || p.AllowedIPs[0].String() != "10.0.1.0/24" || p.ReceiveBytes != 0 {
		t.Errorf("earlier snapshot changed: allowed IPs %v, rx %d", p.AllowedIPs, p.ReceiveBytes)
	}
}

func TestRecorderSetPeerStats(t *testing.T) {
	r := NewRecorder()
	r.CreateDevice("wg0")
	r.ConfigureWireGuard("wg0", wgtypes.Config{Peers: []wgtypes.PeerConfig{{PublicKey: peer1}}})
	hs := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	if err := r.SetPeerStats("wg0", peer1, hs, 100, 200); err != nil {
		t.Fatal(err)
	}
	if err := r.SetPeerStats("wg0", peer2, hs, 1, 1); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("SetPeerStats(absent peer) = %v, want os.ErrNotExist", err)
	}
	d, _ := r.Device("wg0")
	p := d.WireGuard.Peers[0]
	if !p.LastHandshakeTime.Equal(hs) || p.ReceiveBytes != 100 || p.TransmitBytes != 200 {
		t.Errorf("peer = %v %d %d, want %v 100 200", p.LastHandshakeTime, p.ReceiveBytes, p.TransmitBytes, hs)
	}
}

func TestRecorderConcurrent(t *testing.T) {
	r := NewRecorder()
	var wg sync.WaitGroup
	for i := range 8 {
		name := fmt.Sprintf("wg%d", i)
		wg.Go(func() {
			if err := r.CreateDevice(name); err != nil {
				t.Error(err)
				return
			}
			for j := range 50 {
				k := key(byte(j)).PublicKey()
				r.ConfigureWireGuard(name, wgtypes.Config{Peers: []wgtypes.PeerConfig{{PublicKey: k, AllowedIPs: nets(fmt.Sprintf("10.%d.%d.0/24", i, j))}}})
				if _, err := r.Device(name); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if got := r.PeerOps(); got != 8*50 {
		t.Errorf("PeerOps() = %d, want %d", got, 8*50)
	}
}

func BenchmarkRecorderReconcile(b *testing.B) {
	r := &Recorder{DiscardOps: true}
	r.CreateDevice("wg0")
	var peers []wgtypes.PeerConfig
	for i := range 200 {
		peers = append(peers, wgtypes.PeerConfig{PublicKey: key(byte(i)).PublicKey(), AllowedIPs: nets(fmt.Sprintf("10.1.%d.0/24", i))})
	}
	r.ConfigureWireGuard("wg0", wgtypes.Config{ReplacePeers: true, Peers: peers})
	for b.Loop() {
		r.Device("wg0")
		r.ConfigureWireGuard("wg0", wgtypes.Config{Peers: peers[:1]})
	}
}
