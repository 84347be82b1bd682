// Package server is Drago's control plane: the REST API over the desired
// state, the agents' blocking queries, and the embedded dashboard.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/state"
	"github.com/drago-wg/drago/server/store"
)

// Config configures a Server.
type Config struct {
	// Addr is the listen address, host:port.
	Addr string
	// DataDir holds the state database and the root token file.
	DataDir string
	// TLSCertFile and TLSKeyFile enable HTTPS when both are set.
	TLSCertFile, TLSKeyFile string
	// HeartbeatGrace is how long after its last report a host counts as down.
	HeartbeatGrace time.Duration
	// KeyRotationInterval is the agents' key rotation period, for flagging
	// stale keys; 0 flags nothing.
	KeyRotationInterval time.Duration
	// UI serves the dashboard under /ui/; nil leaves it out.
	UI http.Handler
	// MetricsAddr, when set, serves /metrics without authentication on a
	// listener of its own (for scrapers on a private network).
	MetricsAddr string
	// AuditRetention and AuditMaxEntries bound the audit trail: entries
	// older than AuditRetention or beyond the newest AuditMaxEntries are
	// dropped; zero means state.DefaultAuditMaxAge and
	// state.DefaultAuditMaxEntries.
	AuditRetention  time.Duration
	AuditMaxEntries int
	// StoreType selects the store: StoreBolt (the default: a file under
	// DataDir) or StoreEtcd (an etcd cluster several servers share).
	StoreType string
	// Etcd configures the etcd store.
	Etcd EtcdConfig
	// Store replaces the store StoreType selects (tests).
	Store store.Store
}

// Store types of Config.StoreType.
const (
	StoreBolt = "bolt"
	StoreEtcd = "etcd"
)

// EtcdConfig locates the etcd cluster of an etcd store.
type EtcdConfig struct {
	// Endpoints are the client URLs of the etcd members.
	Endpoints []string
	// CACertFile verifies the members' certificates (PEM); empty uses the
	// system's roots.
	CACertFile string
	// CertFile and KeyFile are the client certificate and key (PEM), for
	// etcd clusters that authenticate clients.
	CertFile, KeyFile string
	// Prefix is prepended to every key drago writes.
	Prefix string
}

// Defaults.
const (
	DefaultAddr    = "127.0.0.1:8080"
	DefaultDataDir = "/var/lib/drago/server"
	RootTokenFile  = "root-token"
	dbFile         = "state.db"
)

// Server is a running control plane.
type Server struct {
	cfg   Config
	log   *slog.Logger
	store store.Store
	state *state.State
	http  *http.Server
	ln    net.Listener
	// metrics are served at /api/v1/metrics and on MetricsAddr.
	metrics *metrics
	mhttp   *http.Server
	mln     net.Listener

	polls     pollLimiter // blocking queries per credential
	authFails authLimiter // failed authentications per client address
	// auditKinds are the object kinds the audited routes name.
	auditKinds []string
}

// New opens the state under cfg.DataDir and prepares the HTTP server. On the
// first start it creates the root management token, writes it to
// DataDir/root-token (0600) and returns its secret; later starts return "".
func New(cfg Config, log *slog.Logger) (*Server, string, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return nil, "", errors.New("tls: cert_file and key_file go together")
	}
	log = log.With("subsystem", "server")
	st := cfg.Store
	if st == nil {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, "", fmt.Errorf("creating data dir: %w", err)
		}
		// The directory holds the database and the root token: owner only,
		// also when it existed before (e.g. made 0755 by hand).
		if err := os.Chmod(cfg.DataDir, 0o700); err != nil {
			return nil, "", fmt.Errorf("restricting data dir: %w", err)
		}
		var err error
		switch cfg.StoreType {
		case "", StoreBolt:
			st, err = store.OpenBolt(filepath.Join(cfg.DataDir, dbFile), store.BoltOptions{Timeout: 2 * time.Second})
		case StoreEtcd:
			st, err = openEtcd(cfg.Etcd)
		default:
			err = fmt.Errorf("unknown store type %q", cfg.StoreType)
		}
		if err != nil {
			return nil, "", err
		}
	}
	s := &Server{cfg: cfg, log: log, store: st, authFails: authLimiter{now: time.Now}, metrics: newMetrics()}
	var err error
	s.state, err = state.Open(st, log, state.Options{HeartbeatGrace: cfg.HeartbeatGrace, KeyRotationInterval: cfg.KeyRotationInterval, OnCommit: s.metrics.onCommit, ServerAddr: cfg.Addr,
		AuditMaxAge: cfg.AuditRetention, AuditMaxEntries: cfg.AuditMaxEntries})
	if err != nil {
		st.Close()
		return nil, "", err
	}
	s.metrics.reg.MustRegister(&stateCollector{state: s.state, store: st})
	s.loadHistory()
	s.auditKinds = auditKindsOf(s.routes())
	root, err := s.state.EnsureRootToken()
	if err == nil && root != "" && cfg.Store == nil {
		err = writeSecret(filepath.Join(cfg.DataDir, RootTokenFile), root)
	}
	if err != nil {
		s.state.Close()
		st.Close()
		return nil, "", fmt.Errorf("creating root token: %w", err)
	}
	s.http = &http.Server{
		Handler:           logRequests(log, s.Handler()),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			s.state.Close()
			st.Close()
			return nil, "", fmt.Errorf("loading TLS key pair: %w", err)
		}
		s.http.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return s, root, nil
}

// writeSecret writes a secret file readable by its owner only.
func writeSecret(path, secret string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(secret+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// State returns the server's desired state (for in-process tools and tests).
func (s *Server) State() *state.State { return s.state }

// Handler returns the HTTP handler: the API under /api/v1, the dashboard
// under /ui/ and a redirect from / to it.
func (s *Server) Handler() http.Handler {
	r := mux.NewRouter()
	r.StrictSlash(false)
	for _, rt := range s.routes() {
		r.Handle("/api/v1"+rt.path, s.metrics.instrument(rt, s.handler(rt))).Methods(rt.method)
	}
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &apiError{status: http.StatusNotFound, message: "no such endpoint: " + r.URL.Path})
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &apiError{status: http.StatusMethodNotAllowed, message: r.Method + " is not allowed on " + r.URL.Path})
	})
	if s.cfg.UI != nil {
		r.PathPrefix("/ui/").Handler(s.cfg.UI)
		r.Path("/ui").Handler(http.RedirectHandler("/ui/", http.StatusMovedPermanently))
		r.Path("/").Handler(http.RedirectHandler("/ui/", http.StatusFound))
	}
	return r
}

// Listen binds the listen address (and the metrics address, when set); Addr
// then reports it.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.cfg.Addr, err)
	}
	if s.cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", s.cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("metrics: listening on %s: %w", s.cfg.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", s.metrics.handler())
		s.mln, s.mhttp = mln, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	}
	s.ln = ln
	return nil
}

// MetricsAddr reports the bound metrics address, after Listen; "" when off.
func (s *Server) MetricsAddr() string {
	if s.mln == nil {
		return ""
	}
	return s.mln.Addr().String()
}

// Addr reports the bound address, after Listen.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve answers requests until ctx ends, then shuts down gracefully and
// closes the store.
func (s *Server) Serve(ctx context.Context) error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	scheme := "http" // decided before serving, which sets up TLSConfig for HTTP/2
	if s.http.TLSConfig != nil {
		scheme = "https"
	}
	errc := make(chan error, 1)
	go func() {
		if scheme == "https" {
			errc <- s.http.ServeTLS(s.ln, "", "")
		} else {
			errc <- s.http.Serve(s.ln)
		}
	}()
	s.log.Info("serving", "url", scheme+"://"+s.Addr(), "data_dir", s.cfg.DataDir)
	stop := make(chan struct{})
	var jobs sync.WaitGroup
	jobs.Go(func() { s.pruneAudit(stop, auditPruneInterval) })
	jobs.Go(func() { s.keepHistory(stop, historySaveInterval) })
	stopJobs := func() { close(stop); jobs.Wait() }
	if s.mhttp != nil {
		go s.mhttp.Serve(s.mln)
		defer s.mhttp.Close()
		s.log.Info("serving metrics without authentication", "url", "http://"+s.MetricsAddr()+"/metrics")
	}
	if scheme == "http" && !api.IsLoopback(s.Addr()) {
		s.log.Warn("serving plain HTTP on a non-loopback address: tokens and host credentials cross the network in clear; set tls cert_file and key_file", "addr", s.Addr())
	}
	var err error
	select {
	case err = <-errc:
		stopJobs()
	case <-ctx.Done():
		// The history is saved first: waiting for the requests in flight
		// (agents' blocking queries) may outlast a service manager's patience.
		stopJobs()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = s.http.Shutdown(sctx)
		if errors.Is(err, context.DeadlineExceeded) {
			err = s.http.Close()
		}
	}
	s.state.Close()
	if cerr := s.store.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Close releases the store without serving (for callers that never served).
func (s *Server) Close() error {
	if s.mln != nil {
		s.mln.Close()
	}
	s.state.Close()
	return s.store.Close()
}
