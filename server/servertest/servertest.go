// Package servertest runs a real Drago server on loopback for the tests of
// other packages.
package servertest

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/drago-wg/drago/server"
)

// Start starts a server with cfg, whose Addr and DataDir default to a free
// loopback port and a temporary directory, and stops it when the test ends.
// It returns the server's URL and root token.
func Start(t testing.TB, cfg server.Config) (url, root string) {
	t.Helper()
	url, root, _ = Run(t, cfg)
	return url, root
}

// Run is Start that also returns a function stopping the server before the
// test ends (it is then stopped once).
func Run(t testing.TB, cfg server.Config) (url, root string, stop func()) {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	srv, root, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		srv.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("server: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return "http://" + srv.Addr(), root, stop
}
