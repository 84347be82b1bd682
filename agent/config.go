package agent

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/drago-wg/drago/platform"
	"github.com/drago-wg/drago/server/api"
)

// Defaults applied by Run to zero Config fields.
const (
	DefaultDataDir           = "/var/lib/drago"
	DefaultDriftInterval     = 30 * time.Second
	DefaultHeartbeatInterval = time.Minute
	DefaultWait              = 5 * time.Minute
	DefaultBackoffBase       = time.Second
	DefaultBackoffMax        = 30 * time.Second
	// DefaultKeyRotationInterval is how long an interface keeps a key pair.
	DefaultKeyRotationInterval = 24 * time.Hour
)

// KeyRotationDisabled as Config.KeyRotationInterval turns scheduled key
// rotation off; rotations the server asks for still happen.
const KeyRotationDisabled time.Duration = -1

// Config configures the agent. Zero fields take the defaults documented on
// each field; Run fills them in before it calls Validate.
type Config struct {
	// Server is the control plane's address, http(s)://host:port, or the
	// addresses of several servers of one cluster separated by commas.
	// Required.
	Server string
	// JoinToken is the secret the agent registers with on its first start.
	// Once the host credential is stored in DataDir it is no longer used, so
	// it may be empty on later starts.
	JoinToken string
	// CACert is an optional PEM file with the CA that signs the server's
	// certificate, for https servers that the system roots do not trust.
	CACert string
	// DataDir holds the agent's identity, keys and last desired state in
	// the subfolder "agent". Default /var/lib/drago.
	DataDir string
	// Name is the host's name sent at registration. Default os.Hostname().
	Name string
	// Labels are sent at registration, e.g. {"site": "par1"}.
	Labels map[string]string
	// AdvertiseAddress is the host or host:port that peers dial to reach
	// this host; empty lets the server use the address it sees.
	AdvertiseAddress string
	// Backend is the platform backend kind asked for, one of
	// platform.Kinds() (on Linux: auto, kernel, userspace); empty means
	// auto. Run uses the Backend it is given: this field is checked here so
	// that a typo is rejected before anything starts.
	Backend string
	// DriftInterval is how often the agent reconciles the host against the
	// last desired state even when nothing changed on the server, repairing
	// changes made by hand. Default 30s.
	DriftInterval time.Duration
	// HeartbeatInterval is how often a status report with the peers'
	// counters is sent. Default 1m: the server takes the blocking query in
	// flight as the sign of life between heartbeats.
	HeartbeatInterval time.Duration
	// Wait is how long one desired-state blocking query may wait on the
	// server; the HTTP request's timeout is a little longer. Default 5m.
	Wait time.Duration
	// BackoffBase and BackoffMax bound the exponential backoff, with full
	// jitter, between failed calls to the server. Defaults 1s and 30s.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// KeyRotationInterval is how long each interface keeps its WireGuard
	// key pair before the agent rotates it. Each key's rotation falls at a
	// random point in the last tenth of the interval (fixed per key), so a
	// fleet started together does not rotate at once. Zero means the
	// default, 24h; any negative value (KeyRotationDisabled) disables the
	// schedule. The drago agent command maps its flag's 0 to disabled.
	KeyRotationInterval time.Duration
	// Firewall enforces the interfaces' access policies; nil means the
	// host's, platform.NewFirewall (nf_tables on Linux). Where the host has
	// none, the agent reports policies as not enforced, and why.
	Firewall platform.Firewall
	// Metrics, when set, receives the agent's Prometheus collectors
	// (agent/metrics.go); the caller serves them.
	Metrics prometheus.Registerer
}

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if cfg.Name == "" {
		if h, err := os.Hostname(); err == nil {
			cfg.Name = h
		}
	}
	if cfg.Backend == "" {
		cfg.Backend = "auto"
	}
	if cfg.DriftInterval == 0 {
		cfg.DriftInterval = DefaultDriftInterval
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.Wait == 0 {
		cfg.Wait = DefaultWait
	}
	if cfg.BackoffBase == 0 {
		cfg.BackoffBase = DefaultBackoffBase
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	if cfg.KeyRotationInterval == 0 {
		cfg.KeyRotationInterval = DefaultKeyRotationInterval
	}
	return cfg
}

// Validate reports the first invalid field, named as in Config. Zero fields
// that have a default are valid.
func (cfg Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("agent config: %s: %s", field, fmt.Sprintf(format, args...))
	}
	servers := splitServers(cfg.Server)
	if len(servers) == 0 {
		return bad("Server", "required")
	}
	for _, s := range servers {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return bad("Server", "%q is not an http(s)://host:port address", s)
		}
	}
	if cfg.CACert != "" {
		if _, err := os.Stat(cfg.CACert); err != nil {
			return bad("CACert", "%v", err)
		}
	}
	// The server's rules, so that a config the agent takes registers.
	if cfg.Name != "" {
		if err := api.CheckName(cfg.Name); err != nil {
			return bad("Name", "%v", err)
		}
	}
	if k, err := api.CheckLabels(cfg.Labels); err != nil {
		if k != "" {
			return bad("Labels", "%s: %v", k, err)
		}
		return bad("Labels", "%v", err)
	}
	if cfg.AdvertiseAddress != "" {
		if err := api.CheckAddress(cfg.AdvertiseAddress); err != nil {
			return bad("AdvertiseAddress", "%v", err)
		}
	}
	if cfg.Backend != "" && cfg.Backend != "auto" && !slices.Contains(platform.Kinds(), cfg.Backend) {
		return bad("Backend", "%q: want one of %s", cfg.Backend, strings.Join(append([]string{"auto"}, platform.Kinds()...), ", "))
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"DriftInterval", cfg.DriftInterval},
		{"HeartbeatInterval", cfg.HeartbeatInterval},
		{"Wait", cfg.Wait},
		{"BackoffBase", cfg.BackoffBase},
		{"BackoffMax", cfg.BackoffMax},
	} {
		if d.v < 0 {
			return bad(d.field, "negative duration %v", d.v)
		}
	}
	if cfg.BackoffBase > 0 && cfg.BackoffMax > 0 && cfg.BackoffBase > cfg.BackoffMax {
		return bad("BackoffBase", "%v is above BackoffMax %v", cfg.BackoffBase, cfg.BackoffMax)
	}
	return nil
}
