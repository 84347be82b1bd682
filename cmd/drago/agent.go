package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/drago-wg/drago/agent"
	"github.com/drago-wg/drago/platform"
)

// labelsFlag collects repeatable -label key=value flags.
type labelsFlag map[string]string

func (l labelsFlag) String() string {
	var parts []string
	for k, v := range l {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

func (l labelsFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not key=value", s)
	}
	l[k] = v
	return nil
}

// agentGCPercent is the agent's default GC target (GOGC). The embedded
// wireguard-go keeps about 24 MiB of packet buffers per interface in the Go
// heap (three batches of 128 buffers of 64 KiB: one per UDP socket, IPv4 and
// IPv6, and one for the TUN), allocated when the device starts and mostly
// never written while the tunnel is idle, so they cost address space, not
// resident memory. With Go's default of 100 the heap grows by as much again
// between collections, and that garbage is memory the process does write
// (46 MiB RSS idle with 100 peers, issue 16). At 10 the headroom is a few
// MiB and still grows with the heap, so a large mesh does not collect all
// the time: measured in docs/benchmarks.md, "Agent memory".
const agentGCPercent = 10

// setGCPercent sets the GC target unless GOGC is set in the environment,
// which then wins as in any Go program.
func setGCPercent(percent int, log *slog.Logger) {
	if v, ok := os.LookupEnv("GOGC"); ok {
		log.Debug("GOGC is set; ignoring -gc-percent", "GOGC", v)
		return
	}
	debug.SetGCPercent(percent)
}

func agentCommand(e *env) *ffcli.Command {
	fs := newFlagSet("agent", e)
	var (
		cfg       agent.Config
		joinFile  string
		pprofAddr string
		gcPercent int

		metricsAddr   string
		metricsRemote bool
		labels        = labelsFlag{}
	)
	fs.String("config", "", "HCL config file, e.g. /etc/drago/drago.hcl")
	fs.Var(serversFlag{&cfg.Server}, "server", "control plane `URL`, http(s)://host:port; several servers of one cluster repeated or comma-separated")
	fs.StringVar(&cfg.JoinToken, "join", "", "join token for the first registration")
	fs.StringVar(&joinFile, "join-file", "", "file holding the join token")
	fs.StringVar(&cfg.CACert, "ca-cert", "", "PEM CA certificate that signs the server's certificate")
	fs.StringVar(&cfg.DataDir, "data-dir", agent.DefaultDataDir, "directory for the host identity, keys and last desired state")
	fs.StringVar(&cfg.Name, "name", "", "host name to register (default: the system host name)")
	fs.Var(labels, "label", "host label key=value (repeatable)")
	fs.StringVar(&cfg.AdvertiseAddress, "advertise-address", "", "host or host:port that peers dial (default: the address the server sees)")
	fs.StringVar(&cfg.Backend, "backend", "auto", "WireGuard backend: "+strings.Join(platform.Kinds(), ", "))
	fs.DurationVar(&cfg.DriftInterval, "drift-interval", 30*time.Second, "full reconcile period that repairs hand-made changes")
	fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", agent.DefaultHeartbeatInterval, "period of the status report with the peers' counters")
	fs.DurationVar(&cfg.KeyRotationInterval, "key-rotation-interval", agent.DefaultKeyRotationInterval,
		"how long each interface keeps its WireGuard key pair before the agent rotates it (jittered over the last tenth); 0 disables scheduled rotation")
	logs := addLogFlags(fs)
	fs.StringVar(&pprofAddr, "pprof-addr", "", "serve net/http/pprof on this loopback host:port, e.g. 127.0.0.1:6061 (default off)")
	fs.StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus /metrics (peers' handshakes and traffic, reconciles, server contact) without authentication on this loopback host:port, e.g. 127.0.0.1:9109 (default off)")
	fs.BoolVar(&metricsRemote, "metrics-allow-remote", false, "allow -metrics-addr off loopback (a private network's scraper)")
	fs.IntVar(&gcPercent, "gc-percent", agentGCPercent,
		"Go GC target: the heap may grow by this `percent` of the live heap between collections; GOGC in the environment wins (GOMEMLIMIT works as in any Go program)")
	return &ffcli.Command{
		Name:       "agent",
		ShortUsage: "drago agent -server URL [-join TOKEN] [-config FILE] [flags]",
		ShortHelp:  "Run the host agent that keeps WireGuard equal to the desired state",
		LongHelp: `Run the host agent. It registers once with the join token, keeps its identity
and private keys in the data dir (0700, secrets 0600), follows its desired state
and reconciles WireGuard, addresses and routes. Settings come from flags, then
DRAGO_AGENT_* environment variables (DRAGO_AGENT_SERVER, DRAGO_AGENT_JOIN, ...),
then the config file's top-level keys and its agent {} block.

Example:
  drago agent -server http://10.0.0.1:8080 -join dgj_...`,
		FlagSet: fs,
		Options: []ff.Option{
			ff.WithEnvVarPrefix("DRAGO_AGENT"),
			ff.WithConfigFileFlag("config"),
			ff.WithConfigFileParser(hclParser(fs, "agent")),
		},
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usagef("agent takes no arguments, got %q", args)
			}
			log, err := logs.logger(e.stderr)
			if err != nil {
				return err
			}
			if joinFile != "" {
				if cfg.JoinToken != "" {
					return usagef("-join and -join-file go alone, not together")
				}
				b, err := os.ReadFile(joinFile)
				if err != nil {
					return fmt.Errorf("reading -join-file: %w", err)
				}
				cfg.JoinToken = strings.TrimSpace(string(b))
			}
			if len(labels) > 0 {
				cfg.Labels = labels
			}
			switch {
			case cfg.KeyRotationInterval < 0:
				return usagef("-key-rotation-interval %v: want a positive duration, or 0 to disable", cfg.KeyRotationInterval)
			case cfg.KeyRotationInterval == 0:
				cfg.KeyRotationInterval = agent.KeyRotationDisabled
			}
			if err := cfg.Validate(); err != nil {
				return usagef("%v", err)
			}
			if gcPercent <= 0 {
				return usagef("-gc-percent %d: want a positive percent", gcPercent)
			}
			if err := checkPprofAddr(pprofAddr); err != nil {
				return err
			}
			if err := checkMetricsAddr(metricsAddr, metricsRemote); err != nil {
				return err
			}
			setGCPercent(gcPercent, log)
			if pprofAddr != "" {
				stop, err := servePprof(pprofAddr, log.With("subsystem", "pprof"))
				if err != nil {
					return err
				}
				defer stop()
			}
			b, err := platform.New(cfg.Backend, log)
			if err != nil {
				return err
			}
			defer b.Close()
			if metricsAddr != "" {
				reg := newAgentRegistry()
				cfg.Metrics = reg
				stop, err := serveMetrics(metricsAddr, reg, log.With("subsystem", "metrics"))
				if err != nil {
					return err
				}
				defer stop()
			}
			return agent.Run(ctx, cfg, b, log)
		},
	}
}

// serversFlag collects server addresses from repeated flags and
// comma-separated values into one comma-separated setting.
type serversFlag struct{ s *string }

func (f serversFlag) String() string {
	if f.s == nil {
		return ""
	}
	return *f.s
}

func (f serversFlag) Set(v string) error {
	if *f.s != "" && v != "" {
		v = *f.s + "," + v
	}
	*f.s = v
	return nil
}
