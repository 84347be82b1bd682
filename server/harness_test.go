package server

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/drago-wg/drago/server/api"
)

// testServer is a real server on a loopback port with a bbolt file in a temp dir.
type testServer struct {
	t       testing.TB
	srv     *Server
	dir     string
	url     string
	root    string
	cancel  context.CancelFunc
	stopped chan struct{}
}

func startServer(t *testing.T, dir string) *testServer {
	t.Helper()
	return startServerWith(t, Config{DataDir: dir})
}

// startServerWith starts a server with cfg; the address, data dir and
// heartbeat grace default to a free loopback port, a temp dir and 2s.
func startServerWith(t testing.TB, cfg Config) *testServer {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.Addr = "127.0.0.1:0"
	if cfg.HeartbeatGrace == 0 {
		cfg.HeartbeatGrace = 2 * time.Second
	}
	dir := cfg.DataDir
	srv, root, err := New(cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{t: t, srv: srv, dir: dir, url: "http://" + srv.Addr(), root: root, cancel: cancel, stopped: make(chan struct{})}
	go func() {
		defer close(ts.stopped)
		if err := srv.Serve(ctx); err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) stop() {
	ts.cancel()
	<-ts.stopped
}

// client returns a typed client with the given secret ("" for none).
func (ts *testServer) client(secret string) *api.Client {
	c, err := api.NewClient(api.ClientConfig{Address: ts.url, Token: secret})
	if err != nil {
		ts.t.Fatal(err)
	}
	return c
}

func (ts *testServer) rootClient() *api.Client { return ts.client(ts.root) }

// raw sends a request with a raw body and returns the status and body.
func (ts *testServer) raw(method, path, secret, contentType, body string) (int, string) {
	ts.t.Helper()
	req, err := http.NewRequest(method, ts.url+"/api/v1"+path, strings.NewReader(body))
	if err != nil {
		ts.t.Fatal(err)
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func must[T any](t testing.TB) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// agentHost registers a host with a fresh join token for networks and
// publishes a public key for each of its interfaces.
func (ts *testServer) agentHost(name string, networks ...string) (*api.Client, string) {
	ts.t.Helper()
	ctx := context.Background()
	jt := must[*api.JoinToken](ts.t)(ts.rootClient().CreateJoinToken(ctx, &api.JoinToken{Name: "j-" + name, Networks: networks}))
	reg := must[*api.RegisterResponse](ts.t)(ts.client(jt.Secret).Register(ctx, &api.RegisterRequest{Name: name, OS: "linux", Arch: "amd64"}))
	hc := ts.client(reg.Credential)
	ds := must[*api.DesiredState](ts.t)(hc.DesiredState(ctx, 0, 0))
	rep := &api.StatusReport{Backend: "fake"}
	for _, i := range ds.Interfaces {
		rep.Interfaces = append(rep.Interfaces, api.InterfaceStatus{ID: i.ID, PublicKey: testKey(name + i.ID), ListenPort: i.ListenPort})
	}
	if err := hc.ReportStatus(ctx, rep); err != nil {
		ts.t.Fatal(err)
	}
	return hc, reg.HostID
}

// testKey derives a valid, distinct WireGuard public key from seed.
func testKey(seed string) string {
	var b [32]byte
	copy(b[:], seed)
	for i := len(seed); i < 32; i++ {
		b[i] = byte(i)
	}
	return base64.StdEncoding.EncodeToString(b[:])
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }
