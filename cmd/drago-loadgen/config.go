//go:build linux

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math/bits"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/drago-wg/drago/agent"
)

// Scenarios, numbered as in issue 8 and docs/benchmarks.md.
const (
	scenarioMesh   = 1 // one mesh; one host's key (or routed subnets) changes
	scenarioScoped = 2 // many meshes; a change in one network
	scenarioHub    = 3 // a hub with many spokes; one spoke added
	scenarioBurst  = 4 // many hosts register at once into one mesh
	scenarioIdle   = 5 // many hosts at rest
	scenarioPolicy = 6 // one mesh with an access policy; a rule changes, a host joins
)

var scenarioTitles = map[int]string{
	scenarioMesh:   "one mesh, one host's key changes",
	scenarioScoped: "many meshes, a change in one network",
	scenarioHub:    "hub and spokes, one spoke added",
	scenarioBurst:  "registration burst into one mesh",
	scenarioIdle:   "hosts at rest",
	scenarioPolicy: "one mesh with an access policy, a rule changes, a host joins",
}

// Kinds of change of scenario 1.
const (
	changeRotate = "rotate" // POST /hosts/{id}/rotate-keys: a full key rotation
	changeSubnet = "subnet" // PATCH /interfaces/{id} routed_subnets
)

// Limits of the flags. The address plan puts every network in 10.0.0.0/8.
const (
	maxHosts   = 100_000
	maxChanges = 1000
	maxWait    = 5 * time.Minute // the server's cap on a blocking query
)

// Stores of -store, as "drago server -store" names them.
const (
	storeBolt = "bolt"
	storeEtcd = "etcd"
)

// config is one run of the load tool, from the command line. Zero counts
// take the scenario's default (see withDefaults).
type config struct {
	Scenario         int
	Hosts            int // simulated hosts; scenario 3: spokes, the hub not counted
	MeshSize         int // hosts per mesh (scenarios 2 and 5)
	Changes          int // changes measured one after the other (scenarios 1-3)
	Change           string
	PolicyScope      string        // scenario 6: the rule's destination
	Idle             time.Duration // scenario 5
	BurstWindow      time.Duration // scenario 4: agents start spread over it
	SetupConcurrency int           // registrations in flight during setup

	// Agent settings, the same for every simulated agent.
	Heartbeat time.Duration
	Wait      time.Duration
	Drift     time.Duration
	// ConnIdle closes the agents' idle HTTP connections after this long;
	// 0: Go's default (90s), unless the open-file limit cannot hold two
	// connections per agent, then 5s.
	ConnIdle time.Duration

	ChangeTimeout time.Duration // per change, until every affected agent applied it
	SetupTimeout  time.Duration
	Settle        time.Duration // after a change converged, how long wakes are still counted

	Store         string   // storeBolt or storeEtcd
	EtcdMembers   int      // -store etcd: members of the cluster this tool starts
	EtcdEndpoints []string // -store etcd: an existing cluster instead

	ServerBin string // drago binary; empty: built from the module tree
	PprofDir  string // run the server in a child of this tool with pprof; profiles land here
	AgentDir  string // parent of the agents' data dirs (tmpfs)
	ServerDir string // parent of the server's data dir
	Keep      bool
	JSON      bool
	Verbose   bool
	Scrape    time.Duration // scrape the server's /metrics this often; 0: never
}

// usageError is a bad command line; main exits 2 on it.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// parseFlags parses and validates the command line. Errors name the flag at
// fault and are *usageError; -h gives flag.ErrHelp.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("drago-loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.Scenario, "scenario", 0, "scenario to run, 1-6 (required):\n"+scenarioHelp())
	fs.IntVar(&c.Hosts, "hosts", 0, "simulated hosts (scenario 3: spokes); default per scenario: 1000, 10000, 10000, 1000, 10000, 1000")
	fs.IntVar(&c.MeshSize, "mesh-size", 0, "hosts per mesh, scenarios 2 and 5 (default 100)")
	fs.IntVar(&c.Changes, "changes", 0, "changes measured one after the other, scenarios 1-3 and 6 (default 10, 20, 5, 10)")
	fs.StringVar(&c.PolicyScope, "policy-scope", policyScopeDB, "scenario 6: the rule's destination, db (role=db, every tenth host) or all (*, every host)")
	fs.StringVar(&c.Change, "change", changeRotate, "scenario 1: what changes, rotate (key rotation through the API) or subnet (routed_subnets of one interface)")
	fs.DurationVar(&c.Idle, "idle", time.Minute, "scenario 5: how long the hosts stay idle while measured")
	fs.DurationVar(&c.BurstWindow, "burst-window", 2*time.Second, "scenario 4: the agents start spread over this window")
	fs.IntVar(&c.SetupConcurrency, "setup-concurrency", 256, "registrations in flight while setting up")
	fs.DurationVar(&c.Heartbeat, "heartbeat", agent.DefaultHeartbeatInterval, "agent heartbeat (status report) interval (the agent default)")
	fs.DurationVar(&c.Wait, "wait", agent.DefaultWait, "agent blocking-query wait (the agent default)")
	fs.DurationVar(&c.Drift, "drift", time.Hour, "agent drift-repair interval (it reads the in-memory backend only)")
	fs.DurationVar(&c.ConnIdle, "conn-idle", 0, "close the agents' idle HTTP connections after this long (default: Go's 90s, or 5s when the open-file limit cannot hold 2 connections per agent)")
	fs.DurationVar(&c.ChangeTimeout, "timeout", 5*time.Minute, "how long one change may take to reach every affected agent")
	fs.DurationVar(&c.SetupTimeout, "setup-timeout", 30*time.Minute, "how long setting up may take")
	fs.DurationVar(&c.Settle, "settle", 500*time.Millisecond, "after a change converged, how long wakes are still counted")
	fs.StringVar(&c.Store, "store", storeBolt, "the server's store: bolt (a file in its data dir) or etcd (a cluster this tool starts, or -etcd-endpoints)")
	fs.IntVar(&c.EtcdMembers, "etcd-members", 3, fmt.Sprintf("-store etcd: members of the etcd cluster this tool starts for the run, 1-%d (real members, fsync on, etcd's default limits; a child process of this tool, data under -server-dir)", maxEtcdMembers))
	endpoints := fs.String("etcd-endpoints", "", "-store etcd: comma-separated client URLs (http://host:port) of an existing etcd cluster to use instead; the run writes under its own key prefix and deletes it at the end unless -keep")
	fs.StringVar(&c.ServerBin, "server-bin", "", "drago binary to run as the server (default: go build ./cmd/drago from this module)")
	fs.StringVar(&c.PprofDir, "pprof", "", "write CPU profiles of the measured phase here; the server then runs as a child of this tool (the server package plus net/http/pprof) instead of the drago binary")
	fs.StringVar(&c.AgentDir, "agent-dir", "/dev/shm", "parent folder of the agents' data dirs (tmpfs keeps their fsyncs cheap)")
	fs.StringVar(&c.ServerDir, "server-dir", os.TempDir(), "parent folder of the server's data dir")
	fs.BoolVar(&c.Keep, "keep", false, "keep the data dirs and the server log")
	fs.BoolVar(&c.JSON, "json", false, "print the results as JSON on stdout")
	fs.BoolVar(&c.Verbose, "v", false, "log the agents' warnings and debug progress")
	fs.DurationVar(&c.Scrape, "scrape", 0, "scrape the server's /api/v1/metrics this often during the whole run, as Prometheus would (0: never), to measure what metrics cost")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, &usageError{msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return c, usagef("unexpected arguments %q", fs.Args())
	}
	if *endpoints != "" {
		c.EtcdEndpoints = strings.Split(*endpoints, ",")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	// Zero means "the scenario's default" only when the flag is not given.
	for _, f := range []struct {
		name string
		v    int
	}{{"hosts", c.Hosts}, {"mesh-size", c.MeshSize}, {"changes", c.Changes}} {
		if set[f.name] && f.v <= 0 {
			return c, usagef("-%s: %d is not a positive count", f.name, f.v)
		}
	}
	c = c.withDefaults()
	return c, c.validate(set)
}

func scenarioHelp() string {
	var b strings.Builder
	for n := 1; n <= scenarioPolicy; n++ {
		fmt.Fprintf(&b, "  %d  %s\n", n, scenarioTitles[n])
	}
	return b.String()
}

// withDefaults fills the scenario's default counts into zero fields.
func (c config) withDefaults() config {
	if c.Hosts == 0 {
		switch c.Scenario {
		case scenarioMesh, scenarioBurst, scenarioPolicy:
			c.Hosts = 1000
		case scenarioScoped, scenarioHub, scenarioIdle:
			c.Hosts = 10_000
		}
	}
	switch c.Scenario {
	case scenarioScoped, scenarioIdle:
		if c.MeshSize == 0 {
			c.MeshSize = 100
		}
	case scenarioMesh, scenarioBurst, scenarioPolicy:
		if c.MeshSize == 0 {
			c.MeshSize = c.Hosts
		}
	}
	if c.Changes == 0 {
		switch c.Scenario {
		case scenarioMesh, scenarioPolicy:
			c.Changes = 10
		case scenarioScoped:
			c.Changes = 20
		case scenarioHub:
			c.Changes = 5
		}
	}
	return c
}

// validate checks the configuration; set holds the flags given on the
// command line, so that a flag that does not apply to the scenario is an
// error rather than silently ignored.
func (c config) validate(set map[string]bool) error {
	if !set["scenario"] {
		return usagef("-scenario: required, one of 1-%d", scenarioPolicy)
	}
	if c.Scenario < 1 || c.Scenario > scenarioPolicy {
		return usagef("-scenario: %d is not one of 1-%d", c.Scenario, scenarioPolicy)
	}
	only := map[string][]int{
		"mesh-size":    {scenarioScoped, scenarioIdle},
		"changes":      {scenarioMesh, scenarioScoped, scenarioHub, scenarioPolicy},
		"policy-scope": {scenarioPolicy},
		"change":       {scenarioMesh},
		"idle":         {scenarioIdle},
		"burst-window": {scenarioBurst},
	}
	for name, scenarios := range only {
		if set[name] && !contains(scenarios, c.Scenario) {
			return usagef("-%s: does not apply to scenario %d", name, c.Scenario)
		}
	}
	minHosts := 2
	if c.Scenario == scenarioHub {
		minHosts = 1
	}
	if c.Hosts < minHosts || c.Hosts > maxHosts {
		return usagef("-hosts: %d is not from %d to %d", c.Hosts, minHosts, maxHosts)
	}
	if c.Scenario == scenarioScoped || c.Scenario == scenarioIdle {
		if c.MeshSize < 2 || c.MeshSize > c.Hosts {
			return usagef("-mesh-size: %d is not from 2 to -hosts (%d)", c.MeshSize, c.Hosts)
		}
		if c.Hosts%c.MeshSize != 0 {
			return usagef("-mesh-size: -hosts %d is not a multiple of %d", c.Hosts, c.MeshSize)
		}
	}
	plan := func() error { _, _, err := addressPlan(c.Hosts/c.MeshSize, c.MeshSize); return err }
	if c.Scenario == scenarioHub {
		plan = func() error { _, _, err := addressPlan(1, c.Hosts+c.Changes+1); return err }
	}
	if err := plan(); err != nil {
		return usagef("-hosts: %v", err)
	}
	if (c.Scenario <= scenarioHub || c.Scenario == scenarioPolicy) && (c.Changes < 1 || c.Changes > maxChanges) {
		return usagef("-changes: %d is not from 1 to %d", c.Changes, maxChanges)
	}
	if c.PolicyScope != policyScopeDB && c.PolicyScope != policyScopeAll {
		return usagef("-policy-scope: %q is not %s or %s", c.PolicyScope, policyScopeDB, policyScopeAll)
	}
	if c.Change != changeRotate && c.Change != changeSubnet {
		return usagef("-change: %q is not %s or %s", c.Change, changeRotate, changeSubnet)
	}
	if c.Scenario == scenarioMesh && c.Change == changeRotate && c.Changes > c.Hosts {
		return usagef("-changes: %d rotations need as many hosts, -hosts is %d", c.Changes, c.Hosts)
	}
	durations := []struct {
		name   string
		v, min time.Duration
		max    time.Duration // 0: none
	}{
		{"idle", c.Idle, time.Second, 0},
		{"burst-window", c.BurstWindow, time.Millisecond, time.Hour},
		{"heartbeat", c.Heartbeat, time.Second, 0},
		{"wait", c.Wait, time.Second, maxWait},
		{"drift", c.Drift, time.Second, 0},
		{"conn-idle", c.ConnIdle, 0, time.Hour},
		{"timeout", c.ChangeTimeout, time.Second, 0},
		{"setup-timeout", c.SetupTimeout, time.Second, 0},
		{"settle", c.Settle, 0, time.Minute},
	}
	for _, d := range durations {
		if d.v < d.min || (d.max > 0 && d.v > d.max) {
			if d.max > 0 {
				return usagef("-%s: %v is not from %v to %v", d.name, d.v, d.min, d.max)
			}
			return usagef("-%s: %v is below %v", d.name, d.v, d.min)
		}
	}
	if c.SetupConcurrency < 1 || c.SetupConcurrency > 10_000 {
		return usagef("-setup-concurrency: %d is not from 1 to 10000", c.SetupConcurrency)
	}
	if err := c.validateStore(set); err != nil {
		return err
	}
	if c.ServerBin != "" && c.PprofDir != "" {
		return usagef("-server-bin: cannot be used with -pprof, which runs the server as a child of this tool")
	}
	if c.ServerBin != "" {
		if fi, err := os.Stat(c.ServerBin); err != nil {
			return usagef("-server-bin: %v", err)
		} else if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return usagef("-server-bin: %s is not an executable file", c.ServerBin)
		}
	}
	for _, d := range []struct{ name, path string }{{"agent-dir", c.AgentDir}, {"server-dir", c.ServerDir}, {"pprof", c.PprofDir}} {
		if d.path == "" && d.name == "pprof" {
			continue
		}
		if fi, err := os.Stat(d.path); err != nil {
			return usagef("-%s: %v", d.name, err)
		} else if !fi.IsDir() {
			return usagef("-%s: %s is not a folder", d.name, d.path)
		}
	}
	return nil
}

// validateStore checks -store and the -etcd-* flags.
func (c config) validateStore(set map[string]bool) error {
	switch c.Store {
	case storeBolt:
		for _, name := range []string{"etcd-members", "etcd-endpoints"} {
			if set[name] {
				return usagef("-%s: only used with -store etcd", name)
			}
		}
		return nil
	case storeEtcd:
	default:
		return usagef("-store: %q is not %s or %s", c.Store, storeBolt, storeEtcd)
	}
	if set["etcd-members"] && set["etcd-endpoints"] {
		return usagef("-etcd-members: not with -etcd-endpoints (this tool starts a cluster only without them)")
	}
	if c.EtcdMembers < 1 || c.EtcdMembers > maxEtcdMembers {
		return usagef("-etcd-members: %d is not from 1 to %d", c.EtcdMembers, maxEtcdMembers)
	}
	for _, e := range c.EtcdEndpoints {
		u, err := url.Parse(e)
		if err != nil || u.Scheme != "http" || u.Port() == "" || u.Hostname() == "" || (u.Path != "" && u.Path != "/") {
			return usagef("-etcd-endpoints: %q is not http://host:port", e)
		}
	}
	return nil
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// addressPlan gives each of networks networks of size hosts an aligned
// block of 10.0.0.0/8: it returns the prefix length of each network's range
// and the block size. A range holds size hosts plus the network and
// broadcast addresses and one spare.
func addressPlan(networks, size int) (prefixLen, block int, err error) {
	hostBits := max(bits.Len(uint(size+2)), 2)
	if hostBits > 24 || networks<<hostBits > 1<<24 {
		return 0, 0, fmt.Errorf("%d networks of %d hosts do not fit in 10.0.0.0/8", networks, size)
	}
	return 32 - hostBits, 1 << hostBits, nil
}

// networkRange returns the IPv4 range of network k of the plan.
func networkRange(k, prefixLen, block int) string {
	base := k * block
	return fmt.Sprintf("10.%d.%d.%d/%d", base>>16&255, base>>8&255, base&255, prefixLen)
}
