package state

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
)

// TestCounterHistory: status reports feed a point a minute per host (sums,
// newest handshake) and per peering, a later report of the same minute
// replaces its point, points older than an hour are not answered, a
// connection answers each side's series, and a deleted host's go.
func TestCounterHistory(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)}
	s, err := Open(store.NewMem(), slog.New(slog.NewTextHandler(io.Discard, nil)), Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	n := must(s.CreateNetwork(api.Network{Name: "n", IPv4Range: "10.0.0.0/24"}))
	jt := must(s.CreateJoinToken(Trusted, api.JoinToken{Networks: []string{n.ID}}))
	_, joinID, _, _ := splitSecret(jt.Secret)
	ifaceOf := map[string]string{}
	hostOf := map[string]string{}
	for _, name := range []string{"a", "b"} {
		reg := must(s.Register(joinID, api.RegisterRequest{Name: name}, ""))
		hostOf[name] = reg.HostID
		ifs := must(s.Interfaces(Filter{Host: reg.HostID}, false))
		ifaceOf[name] = ifs.Items[0].ID
		if err := s.ReportStatus(reg.HostID, api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: ifaceOf[name], PublicKey: testKeyOf(name)}}}, ""); err != nil {
			t.Fatal(err)
		}
	}
	conn := must(s.CreateConnection(api.Connection{NetworkID: n.ID, A: api.ConnectionSide{InterfaceID: ifaceOf["a"]}, B: api.ConnectionSide{InterfaceID: ifaceOf["b"]}}))
	report := func(rx, tx int64, hs time.Time) {
		t.Helper()
		r := api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: ifaceOf["a"], PublicKey: testKeyOf("a"), Peers: []api.PeerStatus{
			{PublicKey: testKeyOf("b"), LastHandshake: &hs, RxBytes: rx, TxBytes: tx},
			{PublicKey: testKeyOf("stranger"), RxBytes: 1, TxBytes: 1}, // not a known interface: in the sums only
		}}}}
		if err := s.ReportStatus(hostOf["a"], r, ""); err != nil {
			t.Fatal(err)
		}
	}
	t0 := clock.Now().Truncate(time.Minute)
	report(100, 10, t0)
	clock.advance(30 * time.Second)
	report(150, 20, t0.Add(20*time.Second)) // same minute: replaces
	clock.advance(time.Minute)
	report(400, 40, t0.Add(70*time.Second))
	pt := func(m int, hs time.Time, rx, tx int64) api.CounterPoint {
		return api.CounterPoint{Time: t0.Add(time.Duration(m) * time.Minute), LastHandshake: &hs, RxBytes: rx, TxBytes: tx}
	}
	hist := must(s.HostHistory(Trusted, "a"))
	want := &api.HostHistory{HostID: hostOf["a"],
		Points: []api.CounterPoint{pt(0, t0.Add(20*time.Second), 151, 21), pt(1, t0.Add(70*time.Second), 401, 41)},
		Peers:  []api.PeerHistory{{InterfaceID: ifaceOf["a"], PeerInterfaceID: ifaceOf["b"], PeerPublicKey: testKeyOf("b"), Points: []api.CounterPoint{pt(0, t0.Add(20*time.Second), 150, 20), pt(1, t0.Add(70*time.Second), 400, 40)}}},
	}
	if diff := cmp.Diff(want, hist); diff != "" {
		t.Errorf("host history (-want +got):\n%s", diff)
	}
	ch := must(s.ConnectionHistory(conn.ID))
	if diff := cmp.Diff(&api.ConnectionHistory{ConnectionID: conn.ID, A: want.Peers[0].Points, B: []api.CounterPoint{}}, ch); diff != "" {
		t.Errorf("connection history (-want +got):\n%s", diff)
	}

	// An hour later the first point is gone; a report adds one.
	clock.advance(59 * time.Minute)
	report(500, 50, t0.Add(60*time.Minute))
	if got := must(s.HostHistory(Trusted, "a")).Points; len(got) != 2 || got[0].RxBytes != 401 || got[1].RxBytes != 501 {
		t.Errorf("after an hour: %+v", got)
	}
	// A ring never holds more than an hour.
	for range 2 * HistoryPoints {
		clock.advance(time.Minute)
		report(600, 60, clock.Now())
	}
	if got := must(s.HostHistory(Trusted, "a")).Points; len(got) != HistoryPoints {
		t.Errorf("%d points, want %d", len(got), HistoryPoints)
	}

	if err := s.DeleteHost(Trusted, "a"); err != nil {
		t.Fatal(err)
	}
	if s.history.peers != 0 || len(s.history.hosts) != 1 {
		t.Errorf("after deleting a: %d peer series, %d hosts", s.history.peers, len(s.history.hosts))
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestSeriesLoad: a saved series loads back with its handshake times, and
// points the compact form cannot hold (a handshake after 2106) or that are
// not counters are refused.
func TestSeriesLoad(t *testing.T) {
	now := int32(time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC).Unix() / 60)
	hs := int64(now)*60 - 30
	for _, tc := range []struct {
		name    string
		pts     []savedPoint
		wantErr bool
	}{
		{"kept", []savedPoint{{int64(now) - 1, hs, 10, 20}, {int64(now), 0, 30, 40}}, false},
		{"handshake after 2106", []savedPoint{{int64(now), 1 << 32, 1, 1}}, true},
		{"negative counter", []savedPoint{{int64(now), hs, -1, 1}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r series
			err := r.load(tc.pts, now)
			if (err != nil) != tc.wantErr {
				t.Fatalf("load: %v, want an error: %v", err, tc.wantErr)
			}
			if err == nil {
				if diff := cmp.Diff(tc.pts, r.saved()); diff != "" {
					t.Errorf("saved after load (-want +got):\n%s", diff)
				}
			}
		})
	}
}
