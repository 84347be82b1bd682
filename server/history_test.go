package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/state"
)

// TestHistorySurvivesRestart: a server stopped and started again on its
// bolt file serves the counter history points it had before; a corrupt
// history file is logged and ignored.
func TestHistorySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir)
	ctx := context.Background()
	root := ts.rootClient()
	n := must[*api.Network](t)(root.CreateNetwork(ctx, &api.Network{Name: "n", IPv4Range: "10.8.0.0/24"}))
	j := must[*api.JoinToken](t)(root.CreateJoinToken(ctx, &api.JoinToken{Name: "j", Networks: []string{n.ID}}))
	var hosts []*api.Client
	var ifaces []string
	for _, name := range []string{"a", "b"} {
		reg := must[*api.RegisterResponse](t)(ts.client(j.Secret).Register(ctx, &api.RegisterRequest{Name: name}))
		hc := ts.client(reg.Credential)
		ds := must[*api.DesiredState](t)(hc.DesiredState(ctx, 0, 0))
		hosts, ifaces = append(hosts, hc), append(ifaces, ds.Interfaces[0].ID)
		if err := hc.ReportStatus(ctx, &api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: ds.Interfaces[0].ID, PublicKey: testKey(name)}}}); err != nil {
			t.Fatal(err)
		}
	}
	hs := time.Now().Add(-10 * time.Second)
	if err := hosts[0].ReportStatus(ctx, &api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: ifaces[0], PublicKey: testKey("a"),
		Peers: []api.PeerStatus{{PublicKey: testKey("b"), LastHandshake: &hs, RxBytes: 1234, TxBytes: 567}}}}}); err != nil {
		t.Fatal(err)
	}
	before := must[*api.HostHistory](t)(root.HostHistory(ctx, "a"))
	if len(before.Points) != 1 || before.Points[0].RxBytes != 1234 || len(before.Peers) != 1 || len(before.Peers[0].Points) != 1 {
		t.Fatalf("history before the restart: %+v", before)
	}
	ts.stop()

	secret := ts.root
	ts = startServer(t, dir)
	after := must[*api.HostHistory](t)(ts.client(secret).HostHistory(ctx, "a"))
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("history after the restart (-before +after):\n%s", diff)
	}
	// The network's topology peers a and b without a stored connection:
	// their peering's history is asked for by its interfaces.
	c := ts.client(secret)
	ph := must[*api.ConnectionHistory](t)(c.PeeringHistory(ctx, ifaces[0], ifaces[1]))
	if diff := cmp.Diff(before.Peers[0].Points, ph.A); diff != "" || len(ph.B) != 0 {
		t.Errorf("peering history: b's side %v, a's side (-want +got):\n%s", ph.B, diff)
	}
	for _, bad := range []struct{ iface, peer, field string }{
		{ifaces[0], "", "peer"},
		{ifaces[0], "nope", "peer"},
		{ifaces[0], ifaces[0], "peer"},
		{ifaces[0], strings.Repeat("x", maxRef+1), "peer"},
	} {
		_, err := c.PeeringHistory(ctx, bad.iface, bad.peer)
		var re *api.ResponseError
		if !errors.As(err, &re) || re.Status != 400 || re.Field != bad.field {
			t.Errorf("PeeringHistory(%q, %.10q): %v, want a 400 naming %s", bad.iface, bad.peer, err, bad.field)
		}
	}
	var re *api.ResponseError
	if _, err := c.PeeringHistory(ctx, "nope", ifaces[1]); !errors.As(err, &re) || re.Status != 404 {
		t.Errorf("PeeringHistory of an unknown interface: %v, want 404", err)
	}
	ts.stop()

	path := filepath.Join(dir, historyFile)
	for name, content := range map[string]string{
		"not JSON":       "{\"version\":1,\"hosts\":{",
		"minute ahead":   `{"version":1,"hosts":{"` + before.HostID + `":{"total":[[99999999999,0,1,2]]}}}`,
		"other version":  `{"version":7,"hosts":{}}`,
		"negative bytes": `{"version":1,"hosts":{"` + before.HostID + `":{"total":[[1,0,-1,2]]}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			srv, _, err := New(Config{DataDir: dir, Addr: "127.0.0.1:0"}, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatalf("start with a corrupt history file: %v", err)
			}
			defer srv.Close()
			h := must[*api.HostHistory](t)(srv.State().HostHistory(state.Trusted, before.HostID))
			if len(h.Points) != 0 || !bytes.Contains(logs.Bytes(), []byte("counter history not loaded")) {
				t.Errorf("history %+v, log %q: want none and a warning", h, logs.String())
			}
		})
	}
}
