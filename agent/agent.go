// Package agent is Drago's host agent. It registers the host with the
// control plane once, keeps the host's identity and WireGuard private keys in
// its data dir, follows the host's desired state with a blocking query, and
// reconciles the host's interfaces with it through a platform.Backend. It
// reports status on change, as a heartbeat, and when a peer it just added
// has its first handshake.
//
// The agent talks to the server only through the typed client of
// server/api. Private keys never leave the host: only public keys are
// published, in status reports.
//
// The agent never tears tunnels down because the server is unreachable: it
// applies the last desired state saved on disk at start and keeps repairing
// drift from it until the server answers again. Likewise, access policies
// stay in force when the agent stops or the server is down.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drago-wg/drago/platform"
	"github.com/drago-wg/drago/server/api"
)

// Timeouts of calls to the server. A desired-state query may wait
// Config.Wait on the server; its HTTP deadline is Wait plus pollSlack.
const (
	pollSlack      = 10 * time.Second
	requestTimeout = 30 * time.Second
)

// Run runs the agent until ctx is done, then stops its goroutines, cancels
// the in-flight long poll and returns nil. Interfaces stay as they are; Run
// does not close b. It returns an error only when it cannot start: an
// invalid Config, an unusable data dir, or a host that has not registered
// and has no join token.
func Run(ctx context.Context, cfg Config, b platform.Backend, log *slog.Logger) error {
	a, err := newAgent(cfg, b, log)
	if err != nil {
		return err
	}
	return a.run(ctx)
}

// agent is one run of the agent. Apart from the fields noted, it is owned
// by the goroutine of run, which alone calls the backend.
type agent struct {
	cfg    Config
	b      platform.Backend
	log    *slog.Logger
	dir    *dataDir
	rec    *reconciler
	http   *http.Client                      // under every API client
	jitter func(time.Duration) time.Duration // fullJitter; tests replace it

	ident      *identity                   // nil until registered
	state      *api.DesiredState           // last desired state, from disk or server
	fromServer bool                        // state came from the server in this run
	applied    uint64                      // index of the last state applied without error
	unsaved    *api.DesiredState           // taken from the server, not saved yet
	peers      map[string][]api.PeerStatus // interface id -> peers of the last report with counters
	reports    *mailbox                    // shared with the status sender
	handshakes *handshakeWatch             // peers waiting for a first handshake (handshakes.go)
	metrics    *metrics                    // safe for every goroutine (metrics.go)
	// pollUp and reportUp cut a retry wait short when the other loop has
	// just reached the server, so both resync at once after an outage.
	pollUp, reportUp chan struct{}
	// serverBack tells the loop, and resendWhole the status sender, that
	// the server answers again after an outage or a reset: it may have
	// restarted without the reports it keeps in memory.
	serverBack  chan struct{}
	resendWhole atomic.Bool

	// Key rotation (rotation.go).
	echoes         map[string]echo   // interface id -> first echo of its staged key
	blocked        map[string]string // interface id -> the devices its rotation was last logged blocked by
	rotateAt       time.Time         // when rotateKeys must run again; zero: never
	switchFallback time.Duration     // switchFallback; tests shorten it
	crashAt        string            // TEST-ONLY crash hook step, from crashEnv
	exit           func(code int)    // os.Exit; used by the crash hook only
}

func newAgent(cfg Config, b platform.Backend, log *slog.Logger) (*agent, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if b == nil {
		return nil, errors.New("agent: no platform backend")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("subsystem", "agent")
	dir, err := openDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	rec, err := newReconciler(b, dir, log)
	if err != nil {
		return nil, err
	}
	ident, err := dir.loadIdentity()
	if err != nil {
		return nil, err
	}
	if ident == nil && cfg.JoinToken == "" {
		return nil, fmt.Errorf("agent config: JoinToken: required to register (no identity in %s)", dir.path)
	}
	hc, err := newHTTPClient(cfg.CACert, splitServers(cfg.Server), log)
	if err != nil {
		return nil, err
	}
	m := newMetrics(b)
	if err := m.register(cfg.Metrics, b.Name()); err != nil {
		return nil, fmt.Errorf("agent metrics: %w", err)
	}
	rec.fw, rec.fwErr = cfg.Firewall, nil
	if rec.fw == nil {
		if rec.fw, rec.fwErr = platform.NewFirewall(log); rec.fwErr != nil {
			log.Warn("access policies will not be enforced on this host", "reason", rec.fwErr)
		}
	}
	return &agent{
		metrics:    m,
		http:       hc,
		cfg:        cfg,
		b:          b,
		log:        log,
		dir:        dir,
		rec:        rec,
		jitter:     fullJitter,
		ident:      ident,
		reports:    newMailbox(),
		handshakes: newHandshakeWatch(),
		pollUp:     make(chan struct{}, 1),
		reportUp:   make(chan struct{}, 1),
		serverBack: make(chan struct{}, 1),

		echoes:         map[string]echo{},
		blocked:        map[string]string{},
		switchFallback: switchFallback,
		crashAt:        crashHook(),
		exit:           os.Exit,
	}, nil
}

func (a *agent) run(ctx context.Context) error {
	a.log.Info("agent starting", "version", api.Version, "backend", a.b.Name(), "server", a.cfg.Server, "data_dir", a.dir.path)
	for _, s := range splitServers(a.cfg.Server) {
		if strings.HasPrefix(s, "http://") && !api.IsLoopback(s) {
			a.log.Warn("the server address is plain HTTP off this machine: the host credential and desired state cross the network in clear; use https://", "server", s)
		}
	}
	defer a.http.CloseIdleConnections()
	if a.cfg.Firewall == nil && a.rec.fw != nil {
		defer a.rec.fw.Close() // the rules stay in force
	}
	if a.ident != nil {
		a.restore(ctx)
	} else {
		id, err := a.register(ctx)
		if ctx.Err() != nil {
			a.log.Info("agent stopped before registering")
			return nil
		}
		if err != nil {
			return err
		}
		a.ident = id
	}
	client, err := a.client(a.ident.Credential)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	states := make(chan *api.DesiredState)
	var wg sync.WaitGroup
	wg.Go(func() { a.poll(ctx, client, states) })
	wg.Go(func() { a.sendReports(ctx, client) })
	a.loop(ctx, states)
	cancel()
	wg.Wait()
	a.log.Info("agent stopped")
	return nil
}

// restore applies the desired state saved by the last run, before the
// server answers, so that tunnels come back even while it is down.
func (a *agent) restore(ctx context.Context) {
	ds, err := a.dir.loadDesired()
	switch {
	case err != nil:
		a.log.Warn("ignoring the saved desired state", "err", err)
		return
	case ds == nil:
		return
	case ds.HostID != "" && ds.HostID != a.ident.HostID:
		a.log.Warn("ignoring the saved desired state of another host", "host_id", ds.HostID)
		return
	}
	a.log.Info("applying the saved desired state", "index", ds.Index)
	a.state = ds
	a.reconcile(ctx, "restore")
}

// loop serializes everything that touches the backend or the keys: new
// desired states, key rotation steps, drift repair and status snapshots.
func (a *agent) loop(ctx context.Context, states <-chan *api.DesiredState) {
	drift := time.NewTicker(a.cfg.DriftInterval)
	defer drift.Stop()
	heartbeat := time.NewTicker(a.cfg.HeartbeatInterval)
	defer heartbeat.Stop()
	rotate := time.NewTimer(time.Hour)
	defer rotate.Stop()
	save := time.NewTimer(time.Hour)
	save.Stop()
	defer a.saveState() // a state not saved yet
	handshakes := time.NewTimer(time.Hour)
	defer handshakes.Stop()
	a.reportRead(true)
	for {
		if a.rotateAt.IsZero() {
			rotate.Stop()
		} else {
			rotate.Reset(max(time.Until(a.rotateAt), 0))
		}
		if a.handshakes.next.IsZero() {
			handshakes.Stop()
		} else {
			handshakes.Reset(max(time.Until(a.handshakes.next), 0))
		}
		select {
		case <-ctx.Done():
			return
		case ds := <-states:
			if a.accept(ctx, ds) {
				save.Reset(StateSaveDelay)
			}
		case <-save.C:
			a.saveState()
		case <-rotate.C:
			if a.rotateKeys(time.Now()) {
				a.reportChange()
			}
			a.publishMetrics()
		case <-drift.C:
			if a.state != nil && a.reconcile(ctx, "drift") {
				a.reportChange()
			}
		case <-heartbeat.C:
			a.reportRead(false)
		case <-a.serverBack:
			// A restarted server holds no counters: give them now, not at
			// the next heartbeat.
			a.reportRead(false)
		case <-handshakes.C:
			a.watchHandshakes(time.Now())
		}
	}
}

// reportChange reports a change of the host, without reading the devices,
// and watches the peers the change added for their first handshake.
func (a *agent) reportChange() {
	r := a.statusReport(false)
	if a.state != nil {
		a.handshakes.note(a.rec.parse(a.state).Interfaces, r, time.Now())
	}
	a.reports.put(r)
}

// reportRead reports the host with its peers read from the devices, as
// heartbeats do, and stops watching the peers that have a handshake. At
// start, every peer is new: those without a handshake are watched.
func (a *agent) reportRead(start bool) {
	r := a.statusReport(true)
	if start && a.state != nil {
		a.handshakes.note(a.rec.parse(a.state).Interfaces, r, time.Now())
	}
	a.handshakes.observe(r, func(string) bool { return true })
	a.reports.put(r)
}

// watchHandshakes reads the devices that hold peers waiting for their
// first handshake and reports, from the same reads, when one came (see
// handshakes.go).
func (a *agent) watchHandshakes(now time.Time) {
	h := a.handshakes
	h.expire(now)
	if h.pending() && a.state != nil {
		devs := map[string]*platform.Device{}
		found := false
		for _, w := range a.rec.parse(a.state).Interfaces {
			if !h.reads(w.ID) || a.rec.owned[w.Name] != w.ID {
				continue
			}
			dev, err := a.b.Device(w.Name)
			if err != nil {
				continue // the next read, or the drift check, sees to it
			}
			devs[w.ID] = dev
			if h.observeDevice(w.ID, dev.WireGuard.Peers) {
				found = true
			}
		}
		if found {
			a.reports.put(a.statusReportFrom(func(w wantInterface) (*platform.Device, bool) {
				dev, ok := devs[w.ID]
				return dev, ok
			}))
		}
	}
	h.schedule(now)
}

// StateSaveDelay is how long a new desired state waits before it is saved
// for the next start, so that a burst of states (a key rotation, hosts joining)
// costs one synced write of the last of them.
const StateSaveDelay = 2 * time.Second

// accept applies a desired state from the server, runs the key rotation
// steps it allows and reports. It leaves the state to save for the next
// start, and reports whether none was waiting to be saved before. The save
// (a synced file write of the whole state, milliseconds for a large mesh)
// comes StateSaveDelay later: during a peer's key rotation, the time this host
// takes to apply and report is time in which the peer's packets under its
// new key are dropped here. A crash before the save only makes the next
// start apply the previous state until the server answers.
func (a *agent) accept(ctx context.Context, ds *api.DesiredState) bool {
	if ds.HostID != "" && ds.HostID != a.ident.HostID {
		a.log.Error("ignoring a desired state for another host", "host_id", ds.HostID, "want_host_id", a.ident.HostID)
		return false
	}
	a.state, a.fromServer = ds, true
	a.reconcile(ctx, "update")
	a.rotateKeys(time.Now())
	a.reportChange()
	first := a.unsaved == nil
	a.unsaved = ds
	return first
}

// saveState saves the state accept left unsaved, if any.
func (a *agent) saveState() {
	if a.unsaved == nil {
		return
	}
	if err := a.dir.saveDesired(a.unsaved); err != nil {
		a.log.Error("cannot save the desired state; the next start applies an older one until the server answers", "err", err)
	}
	a.unsaved = nil
}

// reconcile applies a.state and reports whether the host changed or the
// applied index moved.
func (a *agent) reconcile(ctx context.Context, why string) bool {
	start := time.Now()
	apply := a.rec.reconcile
	if why == "update" {
		apply = a.rec.reconcileChanges // the drift check reads the devices
	}
	res, err := apply(ctx, a.state)
	a.metrics.reconciled(why, time.Since(start), err)
	a.publishMetrics()
	log := a.log.With("reason", why, "index", a.state.Index, "ops", res.Ops, "skipped", res.Skipped, "skipped_peers", res.SkippedPeers, "took", time.Since(start).Round(time.Millisecond))
	if err != nil {
		log.Error("reconcile failed; retrying at the next drift check", "err", err)
		return res.Ops > 0
	}
	moved := a.applied != a.state.Index
	a.applied = a.state.Index
	switch {
	case why == "drift" && res.Ops > 0:
		log.Warn("repaired drift from the desired state")
	case why != "drift":
		log.Info("applied desired state")
	}
	return moved || res.Ops > 0
}
