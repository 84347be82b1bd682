package agent

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/platform/platformtest"
	"github.com/drago-wg/drago/server/api"
)

// benchState is one interface with n peers whose keys come in no
// particular order; peer i has address 10.0.x.y, the (i+2)th of 10.0.0.0/16.
func benchState(n int) *api.DesiredState {
	ifc := api.DesiredInterface{
		ID: "if-a", Name: "drago-a", NetworkID: "net-1", Addresses: []string{"10.0.0.1/16"},
		ListenPort: 51820, MTU: 1420,
	}
	for i := range n {
		a := i + 2
		ifc.Peers = append(ifc.Peers, api.DesiredPeer{
			PublicKey:  wgtypes.Key(sha256.Sum256(fmt.Append(nil, i))).String(),
			Endpoint:   fmt.Sprintf("192.0.%d.%d:51820", a/256, a%256),
			AllowedIPs: []string{fmt.Sprintf("10.0.%d.%d/32", a/256, a%256)},
		})
	}
	slices.SortFunc(ifc.Peers, api.ComparePeers) // as the server sends them
	return &api.DesiredState{Index: 1, HostID: "host-1", Interfaces: []api.DesiredInterface{ifc}}
}

func BenchmarkParseState1000Peers(b *testing.B) {
	ds := benchState(1000)
	b.ReportAllocs()
	for b.Loop() {
		if set := parseState(ds, nil); len(set.Errors) != 0 {
			b.Fatal(set.Errors)
		}
	}
}

// BenchmarkParseState1000PeersOneChanged parses, with the peer cache, a
// state in which one peer of 1,000 changed since the last parse.
func BenchmarkParseState1000PeersOneChanged(b *testing.B) {
	states := [2]*api.DesiredState{benchState(1000), benchState(1000)}
	states[1].Interfaces[0].Peers[500].AllowedIPs = []string{"10.9.0.0/16"}
	var cache peerCache
	b.ReportAllocs()
	for n := 0; b.Loop(); n++ {
		if set := parseState(states[n%2], &cache); len(set.Errors) != 0 {
			b.Fatal(set.Errors)
		}
	}
}

// BenchmarkParseState1000PeersOneRekeyed parses, with the peer cache, a
// state in which one peer of 1,000 has a new key (the last step of its key
// rotation): the keys differ, so the parse merges rather than replaces.
func BenchmarkParseState1000PeersOneRekeyed(b *testing.B) {
	states := [2]*api.DesiredState{benchState(1000), benchState(1000)}
	ps := states[1].Interfaces[0].Peers
	ps[500].PublicKey = wgtypes.Key(sha256.Sum256(fmt.Append(nil, 1000))).String()
	slices.SortFunc(ps, api.ComparePeers)
	var cache peerCache
	b.ReportAllocs()
	for n := 0; b.Loop(); n++ {
		if set := parseState(states[n%2], &cache); len(set.Errors) != 0 {
			b.Fatal(set.Errors)
		}
	}
}

// benchReconciler returns a reconciler on a Recorder that already applied
// ds, with the Recorder's counters reset.
func benchReconciler(b *testing.B, ds *api.DesiredState) (*reconciler, *platformtest.Recorder) {
	b.Helper()
	dir, err := openDataDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	fake := &platformtest.Recorder{DiscardOps: true}
	r, err := newReconciler(fake, dir, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.reconcile(context.Background(), ds); err != nil {
		b.Fatal(err)
	}
	fake.Reset()
	return r, fake
}

// BenchmarkReconcile1000PeersOneChanged applies new states that each move
// one peer's endpoint: one parse and one peer update per state, after a
// read and diff of the device (full) or from the last state (changes, as
// the agent applies new states).
func BenchmarkReconcile1000PeersOneChanged(b *testing.B) {
	states := [2]*api.DesiredState{benchState(1000), benchState(1000)}
	states[1].Index++
	states[1].Interfaces[0].Peers[500].Endpoint = "198.51.100.1:4000"
	for _, full := range []bool{true, false} {
		b.Run(map[bool]string{true: "full", false: "changes"}[full], func(b *testing.B) {
			r, fake := benchReconciler(b, states[0])
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				before := fake.PeerOps()
				if _, err := r.run(context.Background(), states[i%2], full); err != nil {
					b.Fatal(err)
				}
				if n := fake.PeerOps() - before; n != 1 {
					b.Fatalf("reconcile made %d peer changes, want 1", n)
				}
			}
		})
	}
}

// BenchmarkReconcile1000PeersInSync is the drift check: the same state
// again on a host that matches it.
func BenchmarkReconcile1000PeersInSync(b *testing.B) {
	ds := benchState(1000)
	r, fake := benchReconciler(b, ds)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.reconcile(context.Background(), ds); err != nil {
			b.Fatal(err)
		}
	}
	if n := fake.Writes(); n != 0 {
		b.Fatalf("reconciles of a matching host made %d backend writes", n)
	}
}
