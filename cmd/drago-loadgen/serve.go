//go:build linux

package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	rpprof "runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/drago-wg/drago/server"
	"github.com/drago-wg/drago/server/store"
)

// serveCommand runs the drago server package as "drago server" does (same
// heartbeat grace and key-rotation period, no dashboard), with
// net/http/pprof on a second loopback listener. -pprof starts it as the
// server under test so that the measured phase can be profiled; it is the
// endpoint the lead may want behind a "drago server -pprof-addr" flag.
func serveCommand(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("drago-loadgen serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	dataDir := fs.String("data-dir", "", "data dir (required)")
	pprofAddr := fs.String("pprof-addr", "127.0.0.1:0", "listen address of the pprof endpoints (loopback only)")
	cfg := server.Config{HeartbeatGrace: 45 * time.Second, KeyRotationInterval: 24 * time.Hour}
	fs.StringVar(&cfg.StoreType, "store", server.StoreBolt, "bolt or etcd, as drago server -store")
	endpoints := fs.String("etcd-endpoints", "", "etcd client URLs, comma-separated (with -store etcd)")
	fs.StringVar(&cfg.Etcd.Prefix, "etcd-prefix", store.DefaultEtcdPrefix, "etcd key prefix")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dataDir == "" {
		fmt.Fprintln(stderr, "drago-loadgen serve: -data-dir: required")
		return 2
	}
	if *endpoints != "" {
		cfg.Etcd.Endpoints = strings.Split(*endpoints, ",")
	}
	cfg.Addr, cfg.DataDir = *addr, *dataDir
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, log, cfg, *pprofAddr); err != nil {
		fmt.Fprintf(stderr, "drago-loadgen serve: %v\n", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, log *slog.Logger, cfg server.Config, pprofAddr string) error {
	srv, _, err := server.New(cfg, log)
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		srv.Close()
		return err
	}
	host, _, _ := net.SplitHostPort(pprofAddr)
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		srv.Close()
		return fmt.Errorf("-pprof-addr: %q is not a loopback address", pprofAddr)
	}
	ln, err := net.Listen("tcp", pprofAddr)
	if err != nil {
		srv.Close()
		return fmt.Errorf("listening for pprof: %w", err)
	}
	ps := &http.Server{Handler: pprofMux(), ReadHeaderTimeout: 10 * time.Second}
	go ps.Serve(ln)
	defer ps.Close()
	// Logged before Serve logs its url=, which the parent waits for.
	log.Info("pprof endpoints", "pprof", "http://"+ln.Addr().String())
	return srv.Serve(ctx)
}

// pprofMux serves net/http/pprof and a CPU profile started and stopped on
// demand (/loadgen/cpu/start, /loadgen/cpu/stop), so that a profile covers
// exactly a measured phase whose length is not known in advance.
func pprofMux() *http.ServeMux {
	mux := server.PprofMux()
	var (
		mu  sync.Mutex
		buf *bytes.Buffer
	)
	mux.HandleFunc("POST /loadgen/cpu/start", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if buf != nil {
			http.Error(w, "a CPU profile is running", http.StatusConflict)
			return
		}
		b := new(bytes.Buffer)
		if err := rpprof.StartCPUProfile(b); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		buf = b
	})
	mux.HandleFunc("POST /loadgen/cpu/stop", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if buf == nil {
			http.Error(w, "no CPU profile is running", http.StatusConflict)
			return
		}
		rpprof.StopCPUProfile()
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(buf.Bytes())
		buf = nil
	})
	return mux
}
