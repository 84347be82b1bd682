package state

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
)

// TestDeltaMatchesWholeState drives random changes through a state (keys,
// rotations, routed subnets, hosts and devices coming and going,
// connections, topology changes) while simulated agents poll at random
// with ?delta: after every poll, the agent's state patched from deltas must
// equal the whole state the server would send.
func TestDeltaMatchesWholeState(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { checkDeltas(t, seed) })
	}
}

func checkDeltas(t *testing.T, seed uint64) {
	rnd := rand.New(rand.NewPCG(seed, 1))
	s, err := Open(store.NewMem(), slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var nets []string
	joins := map[string]string{} // network id -> join token id
	for k, topo := range []string{api.TopologyMesh, api.TopologyHub, api.TopologyNone} {
		n, err := s.CreateNetwork(api.Network{Name: fmt.Sprintf("n%d", k), IPv4Range: fmt.Sprintf("10.%d.0.0/16", k), Topology: topo})
		if err != nil {
			t.Fatal(err)
		}
		jt, err := s.CreateJoinToken(Trusted, api.JoinToken{Networks: []string{n.ID}})
		if err != nil {
			t.Fatal(err)
		}
		_, joins[n.ID], _, _ = splitSecret(jt.Secret)
		nets = append(nets, n.ID)
	}
	keys, conns := 0, 0
	newKey := func() string {
		keys++
		var k [32]byte
		copy(k[:], fmt.Sprint("key", keys))
		return base64.StdEncoding.EncodeToString(k[:])
	}
	held := map[string]*api.DesiredState{} // host -> the agent's state
	hosts := func() []string {
		return slices.Sorted(func(yield func(string) bool) {
			s.mu.RLock()
			defer s.mu.RUnlock()
			for id := range s.hosts {
				if !yield(id) {
					return
				}
			}
		})
	}
	ifaces := func(device bool) []*api.Interface {
		l, _ := s.Interfaces(Filter{}, device)
		return slices.Collect(func(yield func(*api.Interface) bool) {
			for k := range l.Items {
				if !yield(&l.Items[k]) {
					return
				}
			}
		})
	}
	report := func(h string, next bool) {
		ds, err := s.DesiredState(ctx, h, 0, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		var rep api.StatusReport
		for _, di := range ds.Interfaces {
			is := api.InterfaceStatus{ID: di.ID, PublicKey: di.PublicKey}
			switch {
			case is.PublicKey == "":
				is.PublicKey = newKey()
			case di.NextPublicKey != "" && di.SwitchKey:
				is.PublicKey = di.NextPublicKey
			case next && di.NextPublicKey == "":
				is.NextPublicKey = newKey()
			default:
				is.NextPublicKey = di.NextPublicKey
			}
			rep.Interfaces = append(rep.Interfaces, is)
		}
		rep.AppliedIndex = ds.Index
		if err := s.ReportStatus(h, rep, fmt.Sprintf("192.0.2.%d", 1+rnd.IntN(3))); err != nil {
			t.Fatal(err)
		}
	}
	steps := []func(){
		func() { // a host joins a random network
			n := nets[rnd.IntN(len(nets))]
			reg, err := s.Register(joins[n], api.RegisterRequest{Name: fmt.Sprintf("h%d", rnd.Int())}, "192.0.2.9")
			if err == nil {
				report(reg.HostID, false)
			}
		},
		func() { // a host reports: keys, rotations, a moved address
			if hs := hosts(); len(hs) > 0 {
				report(hs[rnd.IntN(len(hs))], rnd.IntN(3) == 0)
			}
		},
		func() { // a routed subnet changes
			if is := ifaces(false); len(is) > 0 {
				i := is[rnd.IntN(len(is))]
				_, _ = s.UpdateInterface(i.ID, func(i *api.Interface) error {
					i.RoutedSubnets = []string{fmt.Sprintf("192.168.%d.0/24", rnd.IntN(200))}
					i.Masquerade = rnd.IntN(3) == 0
					return nil
				})
			}
		},
		func() { // a host leaves
			if hs := hosts(); len(hs) > 3 && rnd.IntN(3) == 0 {
				h := hs[rnd.IntN(len(hs))]
				if err := s.DeleteHost(Trusted, h); err != nil {
					t.Fatal(err)
				}
				delete(held, h)
			}
		},
		func() { // a device comes or goes
			if d := ifaces(true); len(d) > 0 && rnd.IntN(2) == 0 {
				_ = s.DeleteInterface(d[rnd.IntN(len(d))].ID, true)
				return
			}
			_, _ = s.CreateDevice(api.DeviceRequest{Network: nets[rnd.IntN(len(nets))], Name: fmt.Sprintf("d%d", rnd.Int()), PublicKey: newKey()})
		},
		func() { // a connection comes, changes or goes
			if l, _ := s.Connections(Filter{}); len(l.Items) > 0 && rnd.IntN(2) == 0 {
				c := l.Items[rnd.IntN(len(l.Items))]
				if rnd.IntN(2) == 0 {
					_ = s.DeleteConnection(c.ID)
				} else {
					ka := rnd.IntN(60)
					_, _ = s.UpdateConnection(c.ID, func(c *api.Connection) error { c.PersistentKeepalive = &ka; return nil })
				}
				return
			}
			is := append(ifaces(false), ifaces(true)...)
			if len(is) < 2 {
				return
			}
			a := is[rnd.IntN(len(is))]
			is = slices.DeleteFunc(is, func(b *api.Interface) bool { return b.NetworkID != a.NetworkID || b.ID == a.ID })
			if len(is) > 0 {
				b := is[rnd.IntN(len(is))]
				side := api.ConnectionSide{InterfaceID: b.ID}
				if rnd.IntN(2) == 0 {
					side.AllowedIPs = []string{"172.16.0.0/12"}
				}
				if _, err := s.CreateConnection(api.Connection{NetworkID: a.NetworkID, A: api.ConnectionSide{InterfaceID: a.ID}, B: side}); err == nil {
					conns++
				}
			}
		},
		func() { // a network changes topology or hub
			n := nets[rnd.IntN(len(nets))]
			topo, hub := []string{api.TopologyMesh, api.TopologyHub, api.TopologyNone}[rnd.IntN(3)], ""
			for _, i := range ifaces(false) {
				if i.NetworkID == n && rnd.IntN(2) == 0 {
					hub = i.ID
				}
			}
			if topo == api.TopologyHub && hub == "" {
				topo = api.TopologyMesh
			}
			_, _ = s.UpdateNetwork(n, func(n *api.Network) error {
				n.Topology, n.HubInterfaceID = topo, ""
				if topo == api.TopologyHub {
					n.HubInterfaceID = hub
				}
				return nil
			})
		},
	}
	policy := []func(){
		func() { // a network's policy changes: a rule comes, changes or goes, or the default flips
			k := rnd.IntN(len(nets))
			sels := []string{"*", "role=a", "role=b", fmt.Sprintf("10.%d.0.0/17", k), "subnets:" + fmt.Sprint(rnd.Int())}
			if hs := hosts(); len(hs) > 0 {
				sels[4] = "subnets:" + hs[rnd.IntN(len(hs))]
			}
			l, _ := s.Rules(Filter{Network: nets[k]})
			switch op := rnd.IntN(5); {
			case op < 2 || len(l.Items) == 0:
				_, _ = s.CreateRule(api.RuleRequest{Rule: api.Rule{NetworkID: nets[k], Action: []string{"accept", "drop"}[rnd.IntN(2)],
					From: []string{sels[rnd.IntN(len(sels))]}, To: []string{sels[rnd.IntN(len(sels))]}, Protocol: "tcp", Ports: []string{fmt.Sprint(1 + rnd.IntN(1000))}}})
			case op == 2:
				r := l.Items[rnd.IntN(len(l.Items))]
				_, _ = s.UpdateRule(r.ID, func(r *api.Rule) error {
					r.Position, r.Ports = rnd.IntN(len(l.Items)), []string{fmt.Sprint(1 + rnd.IntN(1000))}
					return nil
				})
			case op == 3:
				_ = s.DeleteRule(l.Items[rnd.IntN(len(l.Items))].ID)
			default:
				_, _ = s.UpdateNetwork(nets[k], func(n *api.Network) error {
					n.DefaultAction = []string{"accept", "drop"}[rnd.IntN(2)]
					return nil
				})
			}
		},
		func() { // a host's labels change
			if hs := hosts(); len(hs) > 0 {
				_, _ = s.UpdateHost(Trusted, hs[rnd.IntN(len(hs))], func(h *api.Host) error {
					h.Labels = map[string]string{"role": []string{"a", "b", ""}[rnd.IntN(3)]}
					return nil
				})
			}
		},
	}
	steps = append(steps, policy...)
	deltas, fwPatches := 0, 0
	for range 600 {
		weights := []int{4, 6, 3, 1, 2, 2, 1, 3, 2}
		r := rnd.IntN(24)
		for k, w := range weights {
			if r < w {
				steps[k]()
				break
			}
			r -= w
		}
		checkDevicePeers(t, s)
		for _, h := range hosts() {
			if rnd.IntN(3) != 0 {
				continue // this agent lags behind
			}
			want, err := s.DesiredState(ctx, h, 0, 0, false)
			if err != nil {
				t.Fatal(err)
			}
			base := held[h]
			index := uint64(0)
			if base != nil {
				index = base.Index
			}
			got, err := s.DesiredState(ctx, h, index, 0, true)
			if err != nil {
				t.Fatal(err)
			}
			if got.IsDelta() {
				deltas++
				for _, p := range got.Patches {
					if p.Firewall != nil {
						fwPatches++
					}
				}
				if got, err = got.Patched(base); err != nil {
					t.Fatal(err)
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("host %s from index %d: patched state\n%+v\nwant\n%+v", h, index, got, want)
			}
			held[h] = got
		}
	}
	if deltas < 100 || conns < 5 || fwPatches < 10 {
		t.Fatalf("only %d deltas answered (%d firewall patches) and %d connections made; the test does not exercise them", deltas, fwPatches, conns)
	}
}

// TestDeltaAfterLogTrim checks the answers once the change log dropped the
// commits after an agent's index: a host nothing changed for still gets
// "unchanged", and a changed one its whole state.
func TestDeltaAfterLogTrim(t *testing.T) {
	s, hosts := fleet(t, 2, 2, api.TopologyMesh)
	ctx := context.Background()
	quiet, changed := hosts[0][0], hosts[1][0]
	base := func(h string) uint64 {
		ds, err := s.DesiredState(ctx, h, 0, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		return ds.Index
	}
	quietIndex, changedIndex := base(quiet), base(changed)
	peer, _ := s.Interfaces(Filter{Host: hosts[1][1]}, false)
	s.changes.limit = 64
	for n := range 100 {
		if _, err := s.UpdateInterface(peer.Items[0].ID, func(i *api.Interface) error {
			i.RoutedSubnets = []string{fmt.Sprintf("192.168.%d.0/24", n%200)}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if s.changes.start <= changedIndex {
		t.Fatalf("log not trimmed: starts at %d", s.changes.start)
	}
	ds, err := s.DesiredState(ctx, quiet, quietIndex, 0, true)
	if err != nil || !ds.IsDelta() || ds.Index != quietIndex || len(ds.Patches) != 0 {
		t.Fatalf("unchanged host: %+v %v", ds, err)
	}
	ds, err = s.DesiredState(ctx, changed, changedIndex, 0, true)
	if err != nil || ds.IsDelta() || ds.Index <= changedIndex || len(ds.Interfaces) != 1 {
		t.Fatalf("changed host behind the log: %+v %v", ds, err)
	}
}

// TestDeltaIgnoresOtherNetworks checks that many changes in other networks
// do not push a host to its whole state: only its networks' changes count
// against the delta's bound.
func TestDeltaIgnoresOtherNetworks(t *testing.T) {
	s, hosts := fleet(t, 2, 3, api.TopologyMesh)
	ctx := context.Background()
	ds, _ := s.DesiredState(ctx, hosts[0][0], 0, 0, false)
	update := func(h string, n int) {
		t.Helper()
		l, _ := s.Interfaces(Filter{Host: h}, false)
		if _, err := s.UpdateInterface(l.Items[0].ID, func(i *api.Interface) error {
			i.RoutedSubnets = []string{fmt.Sprintf("192.168.%d.0/24", n%200)}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for n := range maxDeltaPeers + 10 {
		update(hosts[1][n%3], n)
	}
	update(hosts[0][1], 7)
	got, err := s.DesiredState(ctx, hosts[0][0], ds.Index, 0, true)
	if err != nil || !got.IsDelta() || len(got.Patches) != 1 || len(got.Patches[0].Peers) != 1 {
		t.Fatalf("after one change in its network and %d elsewhere: %+v %v", maxDeltaPeers+10, got, err)
	}
}

// checkDevicePeers: eachDevicePeer finds exactly the devices eachPeer lists.
func checkDevicePeers(t *testing.T, s *State) {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, i := range s.ifaces {
		var want, got []string
		s.eachPeer(i, func(p *api.Interface, _ *api.Connection) {
			if p.DeviceName != "" {
				want = append(want, p.ID)
			}
		})
		s.eachDevicePeer(i, func(p *api.Interface) { got = append(got, p.ID) })
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(want, got) {
			t.Fatalf("device peers of %s: eachDevicePeer %v, eachPeer %v", i.ID, got, want)
		}
	}
}
