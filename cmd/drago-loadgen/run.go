//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	rpprof "runtime/pprof"
	"strings"
	"time"

	"github.com/drago-wg/drago/agent"
	"github.com/drago-wg/drago/server/api"
)

// runner holds one run: the server, the admin client and the fleet.
type runner struct {
	c    config
	log  *slog.Logger
	tmp  string // server data dir, log and binary
	srv  *serverProc
	etcd *child // -store etcd: the cluster this tool started

	etcdEndpoints []string
	extPrefix     string // -etcd-endpoints: the run's key prefix in that cluster
	api           *api.Client
	fleet         *fleet
	logs          *logCounter
	res           *Result

	loadProfile *os.File // this tool's CPU profile during the measured phase
}

// runScenario runs the configured scenario and returns what it measured.
// A result comes back with an error when the run got far enough to measure
// something, e.g. a change that did not converge.
func runScenario(ctx context.Context, c config, log *slog.Logger) (*Result, error) {
	r := &runner{c: c, log: log, logs: &logCounter{}}
	if c.Verbose {
		r.logs.fwd = log.Handler()
	}
	r.res = &Result{Scenario: c.Scenario, Title: scenarioTitles[c.Scenario], Machine: machine(),
		Agents: fmt.Sprintf("real agent code (agent.Run) with platformtest.Recorder and an in-memory platformtest.Firewall; heartbeat %v, wait %v, drift %v, scheduled key rotation off", c.Heartbeat, c.Wait, c.Drift)}
	defer r.cleanup()
	if err := r.startup(ctx); err != nil {
		return nil, err
	}
	var err error
	switch c.Scenario {
	case scenarioMesh:
		err = r.runMesh(ctx)
	case scenarioScoped:
		err = r.runScoped(ctx)
	case scenarioHub:
		err = r.runHub(ctx)
	case scenarioBurst:
		err = r.runBurst(ctx)
	case scenarioIdle:
		err = r.runIdle(ctx)
	case scenarioPolicy:
		err = r.runPolicy(ctx)
	}
	r.res.AgentLog = r.logs.summary()
	if err == nil && !r.srv.alive() {
		err = fmt.Errorf("the server exited during the run (%v); its log:\n%s", r.srv.exitErr, r.srv.logTail())
	}
	return r.res, err
}

func (r *runner) startup(ctx context.Context) error {
	// Each agent keeps two connections: the blocking query and the status
	// reports. The server and this tool each need an fd per connection.
	agents := r.c.Hosts + r.c.Changes + 1
	need := uint64(agents)*2 + 2048
	limit, err := raiseFileLimit(2 * need)
	if err != nil {
		level := slog.LevelDebug
		if limit < need {
			level = slog.LevelWarn
		}
		r.log.Log(ctx, level, "open-file limit", "want", 2*need, "have", limit, "err", err)
	}
	connIdle := r.c.ConnIdle
	if connIdle == 0 {
		connIdle = 90 * time.Second
		if limit < need {
			connIdle = 5 * time.Second
			r.res.note("the agents' idle connections close after %v instead of Go's 90s: the open-file limit (%d, not raisable here) cannot hold 2 connections per agent (%d); the status-report connection is then redialed at most heartbeats, so the server holds about 1 connection per agent, not 2",
				connIdle, limit, need)
		}
	}
	r.res.Agents += fmt.Sprintf(", idle connections closed after %v", connIdle)
	tmp, err := os.MkdirTemp(r.c.ServerDir, "drago-loadgen-")
	if err != nil {
		return fmt.Errorf("creating the server's temp dir: %w", err)
	}
	r.tmp = tmp
	bin := r.c.ServerBin
	switch {
	case r.c.PprofDir != "":
		r.res.Server = "the server package in a child of this tool with net/http/pprof (-pprof), data dir on " + r.c.ServerDir
	case bin == "":
		if bin, err = buildServer(ctx, tmp); err != nil {
			return err
		}
		r.res.Server = "drago server built from this tree, data dir on " + r.c.ServerDir
	default:
		r.res.Server = bin + " server, data dir on " + r.c.ServerDir
	}
	storeArgs, err := r.startStore(ctx)
	if err != nil {
		return err
	}
	if r.srv, err = startServer(ctx, r.log, bin, tmp, storeArgs); err != nil {
		return err
	}
	// The setup makes up to -setup-concurrency calls at once.
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: r.c.SetupConcurrency, IdleConnTimeout: 30 * time.Second}}
	if r.api, err = api.NewClient(api.ClientConfig{Address: r.srv.url, Token: r.srv.root, HTTPClient: hc}); err != nil {
		return err
	}
	// The server says which store it runs on: a run never measures another.
	cl, err := r.api.Cluster(ctx)
	if err != nil {
		return fmt.Errorf("reading the server's cluster status: %w", err)
	}
	if cl.Store != r.c.Store || !cl.Healthy {
		return fmt.Errorf("the server runs on store %q (healthy %v), want %q", cl.Store, cl.Healthy, r.c.Store)
	}
	base, err := os.MkdirTemp(r.c.AgentDir, "drago-loadgen-agents-")
	if err != nil {
		return fmt.Errorf("creating the agents' data dir: %w", err)
	}
	r.fleet = newFleet(ctx, r.srv.url, base, r.c, connIdle, r.logs)
	if r.c.Scrape > 0 {
		r.res.note("the server's /api/v1/metrics scraped every %v during the whole run (-scrape)", r.c.Scrape)
		go r.scrapeMetrics(ctx, r.c.Scrape)
	}
	return nil
}

// scrapeMetrics reads the server's metrics every d, as Prometheus would,
// until ctx ends or the server exits.
func (r *runner) scrapeMetrics(ctx context.Context, d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !r.srv.alive() {
			return
		}
		req, err := http.NewRequestWithContext(ctx, "GET", r.srv.url+"/api/v1/metrics", nil)
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+r.srv.root)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			r.log.Debug("scrape", "err", err)
			continue
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		r.log.Debug("scrape", "status", resp.StatusCode, "bytes", n)
	}
}

func (r *runner) cleanup() {
	if r.loadProfile != nil {
		rpprof.StopCPUProfile()
		r.loadProfile.Close()
	}
	if r.fleet != nil {
		r.fleet.stop(30 * time.Second)
	}
	if r.srv != nil {
		r.srv.stop()
	}
	r.stopStore()
	if r.c.Keep {
		if r.fleet != nil {
			r.log.Info("kept the data dirs", "server", r.tmp, "agents", r.fleet.base)
		}
		return
	}
	if r.fleet != nil {
		if err := r.fleet.removeData(); err != nil {
			r.log.Warn("removing the agents' data dirs", "err", err)
		}
	}
	if r.tmp != "" {
		os.RemoveAll(r.tmp)
	}
}

// meter samples the server, this tool and the machine at the start of a
// phase.
type meter struct {
	srv, etcd, self procSample
	machine         time.Duration
}

func (r *runner) meter() meter {
	self, _ := readProc(os.Getpid())
	machine, _ := readMachineCPU()
	return meter{srv: r.srv.sample(), etcd: r.etcd.sample(), self: self, machine: machine}
}

// phase returns the resource use since m. The server's peak RSS covers
// the phase only when resetPeakRSS was called at its start.
func (r *runner) phase(m meter) Phase {
	now := r.meter()
	return Phase{
		Duration:      now.srv.At.Sub(m.srv.At),
		ServerCPU:     now.srv.CPU - m.srv.CPU,
		ServerRSS:     now.srv.RSS,
		ServerPeakRSS: now.srv.PeakRSS,
		ServerThreads: now.srv.Threads,
		ServerFDs:     now.srv.FDs,
		EtcdCPU:       now.etcd.CPU - m.etcd.CPU,
		EtcdRSS:       now.etcd.RSS,
		LoadCPU:       now.self.CPU - m.self.CPU,
		LoadRSS:       now.self.PeakRSS,
		OtherCPU:      max(0, (now.machine-m.machine)-(now.srv.CPU-m.srv.CPU)-(now.etcd.CPU-m.etcd.CPU)-(now.self.CPU-m.self.CPU)),
	}
}

// beginMeasured resets the server's peak RSS and starts the profiles.
func (r *runner) beginMeasured() meter {
	if err := resetPeakRSS(r.srv.pid); err != nil {
		r.log.Warn("cannot reset the server's peak RSS; the measured peak includes setup", "err", err)
	}
	if r.c.PprofDir != "" {
		if err := r.srv.startCPUProfile(); err != nil {
			r.log.Warn("server CPU profile", "err", err)
		}
		f, err := os.Create(r.profilePath("loadgen-cpu"))
		if err == nil {
			err = rpprof.StartCPUProfile(f)
		}
		if err != nil {
			r.log.Warn("load tool CPU profile", "err", err)
		} else {
			r.loadProfile = f
		}
	}
	return r.meter()
}

// endMeasured records the measured phase and stops and saves the profiles.
func (r *runner) endMeasured(m meter) {
	r.res.Measured = r.phase(m)
	if r.c.PprofDir == "" {
		return
	}
	save := func(name string, f func(string) error) {
		p := r.profilePath(name)
		if err := f(p); err != nil {
			r.log.Warn("saving a profile", "profile", name, "err", err)
			return
		}
		r.res.Profiles = append(r.res.Profiles, p)
	}
	save("server-cpu", r.srv.stopCPUProfile)
	save("server-heap", r.srv.writeHeapProfile)
	if r.loadProfile != nil {
		rpprof.StopCPUProfile()
		r.loadProfile.Close()
		r.res.Profiles = append(r.res.Profiles, r.loadProfile.Name())
		r.loadProfile = nil
	}
}

func (r *runner) profilePath(name string) string {
	return filepath.Join(r.c.PprofDir, fmt.Sprintf("%s-s%d-%d.pprof", name, r.c.Scenario, r.c.Hosts))
}

// startAgents starts agents in order, spread evenly over spread and with
// at most -setup-concurrency registrations in flight, and returns once the
// last one has started. Spreading the starts over one heartbeat interval
// spreads the heartbeats as in a fleet that started over time: the agent
// does not jitter its heartbeat ticker.
func (r *runner) startAgents(ctx context.Context, agents []*simAgent, spread time.Duration, token func(*simAgent) string) error {
	sem := make(chan struct{}, r.c.SetupConcurrency)
	start := time.Now()
	lastLog := start
	for i, a := range agents {
		if err := sleep(ctx, time.Until(start.Add(spread*time.Duration(i)/time.Duration(len(agents))))); err != nil {
			return err
		}
		if time.Since(lastLog) >= 10*time.Second {
			conv := 0
			for _, b := range agents[:i] {
				if b.converged() {
					conv++
				}
			}
			s := r.srv.sample()
			r.log.Info("starting agents", "started", i, "of", len(agents), "converged", conv,
				"server_cpu", s.CPU.Round(time.Second), "server_rss_mib", s.RSS>>20)
			lastLog = time.Now()
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		r.fleet.start(a, token(a))
		go func() {
			select {
			case <-a.registered:
			case <-a.done:
			case <-ctx.Done():
			}
			<-sem
		}()
	}
	return nil
}

// waitFor polls cond until it holds, logging its progress every 5 seconds.
// It fails when timeout passes, the server dies, or one of agents stops or
// loses its registration (pass no agents to check them in cond instead).
func (r *runner) waitFor(ctx context.Context, what string, timeout time.Duration, agents []*simAgent, cond func() (bool, string)) error {
	start := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	lastLog := start
	for {
		ok, progress := cond()
		if ok {
			r.log.Debug("done waiting", "for", what, "took", time.Since(start).Round(time.Millisecond))
			return nil
		}
		if time.Since(lastLog) >= 5*time.Second {
			s := r.srv.sample()
			r.log.Info("waiting", "for", what, "progress", progress, "elapsed", time.Since(start).Round(time.Second),
				"server_cpu", s.CPU.Round(time.Second), "server_rss_mib", s.RSS>>20)
			lastLog = time.Now()
		}
		if time.Since(start) > timeout {
			return fmt.Errorf("%s: not done after %v (%s)", what, timeout, progress)
		}
		if !r.srv.alive() {
			return fmt.Errorf("%s: the server exited (%v); its log:\n%s", what, r.srv.exitErr, r.srv.logTail())
		}
		if err := r.fleet.failed(agents); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// waitConverged waits until every agent is registered and has all its peers.
func (r *runner) waitConverged(ctx context.Context, agents []*simAgent, timeout time.Duration) error {
	return r.waitFor(ctx, "agents to converge", timeout, agents, func() (bool, string) {
		reg, conv := 0, 0
		for _, a := range agents {
			if a.registeredAt.Load() != 0 {
				reg++
			}
			if a.converged() {
				conv++
			}
		}
		return conv == len(agents), fmt.Sprintf("%d/%d registered, %d/%d converged", reg, len(agents), conv, len(agents))
	})
}

// waitQuiet waits until no agent fetched a new desired state or wrote to
// its backend for quiet: the fleet is at rest.
func (r *runner) waitQuiet(ctx context.Context, quiet time.Duration) error {
	activity := func() int64 {
		var n int64
		for _, a := range r.fleet.agents {
			n += int64(a.b.Writes()) + a.answers[reqConfig].Load()
		}
		return n
	}
	last, since := activity(), time.Now()
	return r.waitFor(ctx, "the fleet to be quiet", 5*time.Minute, r.fleet.agents, func() (bool, string) {
		if n := activity(); n != last {
			last, since = n, time.Now()
		}
		return time.Since(since) >= quiet, fmt.Sprintf("last activity %v ago", time.Since(since).Round(time.Millisecond))
	})
}

// sleep waits d unless ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// createNetwork creates a network and a join token that joins it.
func (r *runner) createNetwork(ctx context.Context, name, ipv4Range, topology string) (netID, token string, err error) {
	n, err := r.api.CreateNetwork(ctx, &api.Network{Name: name, IPv4Range: ipv4Range, Topology: topology})
	if err != nil {
		return "", "", fmt.Errorf("creating network %s: %w", name, err)
	}
	jt, err := r.api.CreateJoinToken(ctx, &api.JoinToken{Name: "lg-" + name, Networks: []string{n.ID}})
	if err != nil {
		return "", "", fmt.Errorf("creating the join token of %s: %w", name, err)
	}
	return n.ID, jt.Secret, nil
}

// ifaceOf returns the agent's only interface, as the API shows it.
func (r *runner) ifaceOf(ctx context.Context, a *simAgent) (*api.Interface, error) {
	l, err := r.api.Interfaces(ctx, api.ListOptions{Host: a.name})
	if err != nil {
		return nil, fmt.Errorf("reading the interface of %s: %w", a.name, err)
	}
	if len(l.Items) != 1 {
		return nil, fmt.Errorf("host %s has %d interfaces, want 1", a.name, len(l.Items))
	}
	return &l.Items[0], nil
}

// change is one write measured by measureChange.
type change struct {
	do    func(ctx context.Context) error // the write, through the API or by starting an agent
	goals []*goal
	scope map[int]bool // agents allowed to wake
}

// outcome is what measureChange saw.
type outcome struct {
	w       *watch
	delta   []counters // per agent, over the change and the settle time
	server  procSample // at the end
	before  procSample
	etcd    [2]procSample // -store etcd: the cluster this tool started, before and at the end
	timeout bool
}

// measureChange runs one change: it arms a watch, performs the write and
// waits until every required goal is reached (or -timeout), then keeps
// counting for -settle so that agents woken late are seen. It returns once
// the change's aftermath is over too: each agent saves a new state
// agent.StateSaveDelay after taking it, off the change's path, and a
// change measured while the last one's saves run would carry their CPU.
//
// It collects the tool's garbage before the change: this one heap holds
// the states of all the agents (about 1 GiB live for 1,000 agents of 999
// peers), and a collection of it that happened to overlap a change would
// slow every agent at once, which no fleet sees (each agent collects its
// own heap of a few MiB as it goes). The collection's CPU still counts in
// the tool's.
func (r *runner) measureChange(ctx context.Context, ch change) (*outcome, error) {
	runtime.GC()
	before := r.fleet.snapshot()
	o := &outcome{before: r.srv.sample()}
	o.etcd[0] = r.etcd.sample()
	o.w = newWatch(time.Now(), ch.goals...)
	r.fleet.watch.Store(o.w)
	defer r.fleet.watch.Store(nil)
	if err := ch.do(ctx); err != nil {
		return nil, err
	}
	select {
	case <-o.w.done:
	case <-time.After(r.c.ChangeTimeout):
		o.timeout = true
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := sleep(ctx, r.c.Settle); err != nil {
		return nil, err
	}
	after := r.fleet.snapshot()
	o.server, o.etcd[1] = r.srv.sample(), r.etcd.sample()
	o.delta = make([]counters, len(after))
	for i := range after {
		if i < len(before) {
			o.delta[i] = after[i].sub(before[i])
		} else {
			o.delta[i] = after[i]
		}
	}
	if err := sleep(ctx, agent.StateSaveDelay+time.Second-r.c.Settle); err != nil {
		return nil, err
	}
	return o, nil
}

// changeStats accumulates the outcomes of a scenario's changes.
type changeStats struct {
	lat           map[string][]time.Duration
	missing       int
	wokenMin      int
	wokenMax      int
	wokenOutside  int
	peerOpsMin    int64
	peerOpsMax    int64
	bytesDesired  int64 // desired states answered because of the change
	bytesReports  int64 // status reports of the woken agents
	bytesOther    int64 // everything else: heartbeats, expired waits, requests
	wokenTotal    int
	wchar         int64
	cpu           time.Duration
	etcdCPU       time.Duration
	wall          time.Duration
	n             int
	outsideSample []string
}

func newChangeStats() *changeStats {
	return &changeStats{lat: map[string][]time.Duration{}, wokenMin: -1, peerOpsMin: -1}
}

// add folds in one outcome. primary names the goal whose agents count for
// the peer operations; affected lists them.
func (s *changeStats) add(r *runner, o *outcome, ch change, primary string) {
	s.n++
	for _, g := range ch.goals {
		lat, missing := o.w.latencies(g.name)
		s.lat[g.name] = append(s.lat[g.name], lat...)
		if g.name == primary {
			s.missing += missing
			for idx := range g.agents {
				ops := o.delta[idx].PeerOps
				if s.peerOpsMin < 0 || ops < s.peerOpsMin {
					s.peerOpsMin = ops
				}
				s.peerOpsMax = max(s.peerOpsMax, ops)
			}
		}
	}
	woken := 0
	for idx, d := range o.delta {
		s.bytesDesired += d.BytesIn[reqConfig]
		s.bytesOther += d.in() + d.out() - d.BytesIn[reqConfig]
		if !d.woken() {
			continue
		}
		woken++
		s.bytesReports += d.BytesOut[reqStatus]
		s.bytesOther -= d.BytesOut[reqStatus]
		if !ch.scope[idx] {
			s.wokenOutside++
			if len(s.outsideSample) < 5 {
				s.outsideSample = append(s.outsideSample, fmt.Sprintf("%s (net %d: %d new versions, %d writes)",
					r.fleet.agents[idx].name, r.fleet.agents[idx].netIdx, d.Answers[reqConfig], d.Writes))
			}
		}
	}
	s.wokenTotal += woken
	if s.wokenMin < 0 || woken < s.wokenMin {
		s.wokenMin = woken
	}
	s.wokenMax = max(s.wokenMax, woken)
	s.wchar += o.server.WChar - o.before.WChar
	s.cpu += o.server.CPU - o.before.CPU
	s.etcdCPU += o.etcd[1].CPU - o.etcd[0].CPU
	s.wall += o.server.At.Sub(o.before.At)
}

// fill writes the accumulated statistics into the result. idle is the CPU
// use at rest, subtracted from the changes'.
func (s *changeStats) fill(res *Result, primary string, idle idleRates) {
	res.Changes = s.n
	res.Convergence = summarize(s.lat[primary])
	res.NotConverged = s.missing
	res.WokenMin, res.WokenMax, res.WokenOutside = s.wokenMin, s.wokenMax, s.wokenOutside
	res.PeerOpsMin, res.PeerOpsMax = max(s.peerOpsMin, 0), s.peerOpsMax
	n := float64(max(s.n, 1))
	res.BytesToAgents = float64(s.bytesDesired) / n
	res.BytesFromAgents = float64(s.bytesReports) / n
	res.BytesOther = float64(s.bytesOther) / n
	res.BytesPerWoken = float64(s.bytesDesired) / float64(max(s.wokenTotal, 1))
	res.ServerWChar = float64(s.wchar) / n
	res.ServerCPUGross = time.Duration(float64(s.cpu) / n)
	perChange := func(cpu time.Duration, idleRate float64) time.Duration {
		net := cpu.Seconds() - idleRate*s.wall.Seconds()
		return time.Duration(max(net, 0) / n * float64(time.Second))
	}
	res.ServerCPUPerChange = perChange(s.cpu, idle.server)
	res.IdleCPUPercent = idle.server * 100
	res.EtcdCPUPerChange = perChange(s.etcdCPU, idle.etcd)
	res.EtcdIdleCPUPercent = idle.etcd * 100
	if len(s.outsideSample) > 0 {
		res.note("woken outside the change's scope, e.g. %s", strings.Join(s.outsideSample, "; "))
	}
}

// idleRates are the CPU seconds per second of the server and of the etcd
// cluster this tool started, at rest.
type idleRates struct{ server, etcd float64 }

// idleRate measures the CPU use at rest over d and checks that no agent
// woke meanwhile.
func (r *runner) idleRate(ctx context.Context, d time.Duration) (idleRates, error) {
	before, s0, e0 := r.fleet.snapshot(), r.srv.sample(), r.etcd.sample()
	if err := sleep(ctx, d); err != nil {
		return idleRates{}, err
	}
	after, s1, e1 := r.fleet.snapshot(), r.srv.sample(), r.etcd.sample()
	woken := 0
	for i := range after {
		if after[i].sub(before[i]).woken() {
			woken++
		}
	}
	if woken > 0 {
		r.res.note("%d agents woke during the %v idle baseline", woken, d)
	}
	return idleRates{
		server: (s1.CPU - s0.CPU).Seconds() / s1.At.Sub(s0.At).Seconds(),
		etcd:   (e1.CPU - e0.CPU).Seconds() / e1.At.Sub(e0.At).Seconds(),
	}, nil
}

var errNotConverged = errors.New("a change did not reach every affected agent in time")
