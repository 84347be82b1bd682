package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/drago-wg/drago/server"
)

func serverCommand(e *env) *ffcli.Command {
	fs := newFlagSet("server", e)
	var (
		cfg      server.Config
		dev      bool
		logLevel string
	)
	fs.String("config", "", "HCL config file, e.g. /etc/drago/drago.hcl")
	fs.BoolVar(&dev, "dev", false, "development mode: root token printed; a temporary data dir unless -data-dir is given")
	fs.StringVar(&cfg.Addr, "addr", server.DefaultAddr, "listen address, host:port")
	fs.StringVar(&cfg.DataDir, "data-dir", server.DefaultDataDir, "directory for the state database and root token")
	fs.StringVar(&cfg.TLSCertFile, "tls-cert-file", "", "TLS certificate (PEM); enables HTTPS with -tls-key-file")
	fs.StringVar(&cfg.TLSKeyFile, "tls-key-file", "", "TLS private key (PEM)")
	fs.DurationVar(&cfg.HeartbeatGrace, "heartbeat-grace", 45*time.Second, "a host without a report for this long is down")
	fs.DurationVar(&cfg.KeyRotationInterval, "key-rotation-interval", 24*time.Hour, "the agents' key rotation period; keys older than twice this are flagged (0: never)")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
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
			log, err := newLogger(e.stderr, logLevel)
			if err != nil {
				return err
			}
			if cfg.HeartbeatGrace <= 0 {
				return usagef("-heartbeat-grace: must be positive")
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
