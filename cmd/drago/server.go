package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/drago-wg/drago/server"
	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/state"
	"github.com/drago-wg/drago/server/store"
)

func serverCommand(e *env) *ffcli.Command {
	fs := newFlagSet("server", e)
	var (
		cfg       server.Config
		dev       bool
		pprofAddr string
	)
	fs.String("config", "", "HCL config file, e.g. /etc/drago/drago.hcl")
	fs.BoolVar(&dev, "dev", false, "development mode: root token printed; a temporary data dir unless -data-dir is given")
	fs.StringVar(&cfg.Addr, "addr", server.DefaultAddr, "listen address, host:port")
	fs.StringVar(&cfg.DataDir, "data-dir", server.DefaultDataDir, "directory for the state database and root token")
	fs.StringVar(&cfg.TLSCertFile, "tls-cert-file", "", "TLS certificate (PEM); enables HTTPS with -tls-key-file")
	fs.StringVar(&cfg.TLSKeyFile, "tls-key-file", "", "TLS private key (PEM)")
	fs.StringVar(&cfg.StoreType, "store", server.StoreBolt, "where the state is kept: bolt (a file in -data-dir, one server) or etcd (a cluster several servers share)")
	etcdEndpoints := (*listFlag)(&cfg.Etcd.Endpoints)
	fs.Var(etcdEndpoints, "etcd-endpoints", "etcd client `URL`s, http(s)://host:port, comma-separated or repeated (with -store etcd)")
	fs.StringVar(&cfg.Etcd.CACertFile, "etcd-ca-cert", "", "PEM CA certificate that signs the etcd members' certificates (default: the system's roots)")
	fs.StringVar(&cfg.Etcd.CertFile, "etcd-cert", "", "PEM client certificate for etcd, with -etcd-key")
	fs.StringVar(&cfg.Etcd.KeyFile, "etcd-key", "", "PEM client key for etcd")
	fs.StringVar(&cfg.Etcd.Prefix, "etcd-prefix", store.DefaultEtcdPrefix, "prefix of every etcd key drago writes; servers sharing a prefix are one cluster")
	fs.DurationVar(&cfg.HeartbeatGrace, "heartbeat-grace", 45*time.Second, "a host with no status report and no blocking query for this long is down")
	fs.DurationVar(&cfg.KeyRotationInterval, "key-rotation-interval", 24*time.Hour, "the agents' key rotation period; keys older than twice this are flagged (0: never)")
	fs.DurationVar(&cfg.AuditRetention, "audit-retention", state.DefaultAuditMaxAge, "keep audit entries this long")
	fs.IntVar(&cfg.AuditMaxEntries, "audit-max-entries", state.DefaultAuditMaxEntries, "keep at most this many audit entries, the newest")
	logs := addLogFlags(fs)
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "also serve Prometheus /metrics WITHOUT authentication on this host:port, for scrapers on a private network (default off; the API serves /api/v1/metrics to tokens with a metrics policy)")
	fs.StringVar(&pprofAddr, "pprof-addr", "", "serve net/http/pprof on this loopback host:port, apart from the API, e.g. 127.0.0.1:6060 (default off)")
	return &ffcli.Command{
		Name:       "server",
		ShortUsage: "drago server [-config FILE] [-dev] [-addr HOST:PORT] [-data-dir DIR]",
		ShortHelp:  "Run the control plane: REST API, agent endpoints and dashboard",
		LongHelp: `Run the control plane. Settings come from flags, then DRAGO_SERVER_* environment
variables (DRAGO_SERVER_ADDR, DRAGO_SERVER_DATA_DIR, ...), then the config file's
top-level keys and its server {} block, then the defaults.

Example:
  drago server -dev
  drago server -config /etc/drago/drago.hcl`,
		FlagSet: fs,
		Options: []ff.Option{
			ff.WithEnvVarPrefix("DRAGO_SERVER"),
			ff.WithConfigFileFlag("config"),
			ff.WithConfigFileParser(hclParser(fs, "server")),
		},
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usagef("server takes no arguments, got %q", args)
			}
			log, err := logs.logger(e.stderr)
			if err != nil {
				return err
			}
			if cfg.HeartbeatGrace <= 0 {
				return usagef("-heartbeat-grace: must be positive")
			}
			if cfg.AuditRetention <= 0 {
				return usagef("-audit-retention: must be positive")
			}
			if cfg.AuditMaxEntries < 1 || cfg.AuditMaxEntries > state.MaxAuditEntries {
				return usagef("-audit-max-entries: must be from 1 to %d", state.MaxAuditEntries)
			}
			if err := checkPprofAddr(pprofAddr); err != nil {
				return err
			}
			if err := checkStoreFlags(cfg.StoreType, cfg.Etcd); err != nil {
				return err
			}
			dataDirSet := false
			fs.Visit(func(f *flag.Flag) { dataDirSet = dataDirSet || f.Name == "data-dir" })
			if dev && !dataDirSet {
				dir, err := os.MkdirTemp("", "drago-dev-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				cfg.DataDir = dir
			}
			cfg.UI = dashboard()
			srv, root, err := server.New(cfg, log)
			if err != nil {
				return err
			}
			if err := srv.Listen(); err != nil {
				srv.Close()
				return err
			}
			if pprofAddr != "" {
				stop, err := servePprof(pprofAddr, log.With("subsystem", "pprof"))
				if err != nil {
					srv.Close()
					return err
				}
				defer stop()
			}
			scheme := "http"
			if cfg.TLSCertFile != "" {
				scheme = "https"
			}
			if dev {
				kept := "deleted on exit"
				if dataDirSet {
					kept = "kept"
				}
				fmt.Fprintf(e.stdout, "Drago dev server at %s://%s (data dir %s, %s)\nRoot token: %s\nDashboard: %s://%s/ui/\n",
					scheme, srv.Addr(), cfg.DataDir, kept, root, scheme, srv.Addr())
			} else if root != "" {
				fmt.Fprintf(e.stdout, "Created the root token in %s/%s (readable by this user only).\n", cfg.DataDir, server.RootTokenFile)
			}
			return srv.Serve(ctx)
		},
	}
}

// checkStoreFlags checks -store and the -etcd-* flags: etcd needs
// http(s)://host:port endpoints of one scheme, TLS files need https, a
// client certificate needs its key, and the prefix ends with "/" so that
// one prefix never holds another.
func checkStoreFlags(kind string, etcd server.EtcdConfig) error {
	switch kind {
	case server.StoreBolt:
		if len(etcd.Endpoints) > 0 {
			return usagef("-etcd-endpoints: only used with -store etcd")
		}
		return nil
	case server.StoreEtcd:
	default:
		return usagef("-store: %q is not bolt or etcd", kind)
	}
	if len(etcd.Endpoints) == 0 {
		return usagef("-etcd-endpoints: required with -store etcd")
	}
	schemes := map[string]bool{}
	for _, e := range etcd.Endpoints {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return usagef("-etcd-endpoints: %q is not http(s)://host:port", e)
		}
		if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
			return usagef("-etcd-endpoints: %q has no port (etcd clients use 2379)", e)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return usagef("-etcd-endpoints: %q has no valid port", e)
		}
		schemes[u.Scheme] = true
	}
	if len(schemes) > 1 {
		return usagef("-etcd-endpoints: mixes http:// and https://")
	}
	if (etcd.CertFile == "") != (etcd.KeyFile == "") {
		return usagef("-etcd-cert and -etcd-key go together")
	}
	if schemes["http"] && (etcd.CACertFile != "" || etcd.CertFile != "") {
		return usagef("-etcd-endpoints: TLS files are given but the endpoints are http://; use https://")
	}
	if !strings.HasPrefix(etcd.Prefix, "/") || !strings.HasSuffix(etcd.Prefix, "/") || strings.ContainsFunc(etcd.Prefix, unicode.IsControl) {
		return usagef("-etcd-prefix: %q must start and end with \"/\"", etcd.Prefix)
	}
	return nil
}

// checkPprofAddr accepts "" (off) or a loopback host:port: profiles show the
// server's internals and are served without authentication.
func checkPprofAddr(addr string) error {
	return checkSideAddr("-pprof-addr", addr, false, " (127.0.0.0/8, ::1 or localhost); pprof is served on loopback only")
}

// checkSideAddr checks the address of a listener beside the API: "" (off)
// or host:port, on loopback unless remoteOK; refusal ends the error for an
// address off loopback.
func checkSideAddr(flag, addr string, remoteOK bool, refusal string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usagef("%s: %q is not host:port", flag, addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return usagef("%s: %q has no valid port", flag, addr)
	}
	if !remoteOK && !api.IsLoopback(addr) {
		return usagef("%s: %q is not a loopback address%s", flag, addr, refusal)
	}
	return nil
}

// servePprof serves net/http/pprof at addr on a listener and mux of its own,
// so the profiles are never reachable through the API's address, until stop
// is called.
func servePprof(addr string, log *slog.Logger) (stop func(), err error) {
	return serveSide("-pprof-addr", addr, server.PprofMux(), "/debug/pprof/", "serving pprof", log)
}

// serveSide serves h on a listener of its own at addr, logging msg with the
// URL of path, until stop is called.
func serveSide(flag, addr string, h http.Handler, path, msg string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listening on %s: %w", flag, addr, err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	log.Info(msg, "url", "http://"+ln.Addr().String()+path)
	return func() { hs.Close() }, nil
}
