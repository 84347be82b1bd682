//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/agent"
	"github.com/drago-wg/drago/platform"
	"github.com/drago-wg/drago/platform/platformtest"
)

// reqKind classifies an agent's HTTP exchanges by what was asked and, for
// the desired state, why the server answered.
type reqKind int

const (
	reqOther         reqKind = iota
	reqRegister              // POST /agent/register
	reqConfig                // GET /agent/config answered with a new version (or the first)
	reqConfigTimeout         // GET /agent/config answered because its wait expired
	reqStatus                // PUT /agent/status
	numReqKinds
)

// simAgent is one simulated host: the real agent (agent.Run) with an
// in-memory recording backend, its own data dir, HTTP client and
// connections, counted.
type simAgent struct {
	idx    int
	name   string
	netIdx int   // index of its network in the scenario; -1 for none
	expect int64 // peers with allowed IPs on its device once converged
	dir    string
	local  *net.TCPAddr // source address of its connections, stable per agent
	b      *backend
	fw     *firewall
	f      *fleet

	startedAt    atomic.Int64 // unix ns
	registeredAt atomic.Int64 // unix ns of the successful registration answer
	registerRTT  atomic.Int64 // ns from that request to its answer
	convergedAt  atomic.Int64 // unix ns when fullPeers first reached expect
	fullPeers    atomic.Int64 // peers with allowed IPs after the last ConfigureWireGuard
	badAnswers   atomic.Int64 // answers with a status of 300 or more
	regConflicts atomic.Int64 // registrations answered 409: its name is taken
	dials        atomic.Int64
	answers      [numReqKinds]atomic.Int64
	bytesIn      [numReqKinds]atomic.Int64 // what the server sent, on the wire
	bytesOut     [numReqKinds]atomic.Int64 // what the agent sent, on the wire

	registered chan struct{} // closed at the successful registration answer
	regOnce    sync.Once
	cancel     context.CancelFunc
	done       chan struct{} // closed when agent.Run returned
	err        error         // agent.Run's error, once done
}

// counters is a snapshot of an agent's counters.
type counters struct {
	Writes   int64 // backend calls other than Device
	PeerOps  int64 // peer entries passed to ConfigureWireGuard
	Answers  [numReqKinds]int64
	BytesIn  [numReqKinds]int64
	BytesOut [numReqKinds]int64
}

func (a *simAgent) counters() counters {
	c := counters{Writes: int64(a.b.Writes()), PeerOps: int64(a.b.PeerOps())}
	for k := range numReqKinds {
		c.Answers[k] = a.answers[k].Load()
		c.BytesIn[k] = a.bytesIn[k].Load()
		c.BytesOut[k] = a.bytesOut[k].Load()
	}
	return c
}

func (c counters) sub(o counters) counters {
	d := counters{Writes: c.Writes - o.Writes, PeerOps: c.PeerOps - o.PeerOps}
	for k := range numReqKinds {
		d.Answers[k] = c.Answers[k] - o.Answers[k]
		d.BytesIn[k] = c.BytesIn[k] - o.BytesIn[k]
		d.BytesOut[k] = c.BytesOut[k] - o.BytesOut[k]
	}
	return d
}

// woken reports whether the agent did anything because of the server in
// the span of the counters: a desired state answered with a new version,
// or a backend write. Heartbeats and expired waits do not count.
func (c counters) woken() bool { return c.Answers[reqConfig] > 0 || c.Writes > 0 }

func (c counters) in() int64  { return sum(c.BytesIn[:]) }
func (c counters) out() int64 { return sum(c.BytesOut[:]) }

func sum(v []int64) int64 {
	var n int64
	for _, x := range v {
		n += x
	}
	return n
}

// setPeers records the device's peer count after a configuration.
func (a *simAgent) setPeers(n int64, at time.Time) {
	a.fullPeers.Store(n)
	if n >= a.expect {
		a.convergedAt.CompareAndSwap(0, at.UnixNano())
	}
}

// converged reports whether the agent's device has all its peers.
func (a *simAgent) converged() bool { return a.fullPeers.Load() >= a.expect }

// backend is the agent's platform backend: platformtest's Recorder, with
// the writes that show a change was applied reported to the fleet's watch.
type backend struct {
	*platformtest.Recorder
	a *simAgent
}

var _ platform.Backend = (*backend)(nil)

// ConfigureWireGuard implements platform.Backend.
func (b *backend) ConfigureWireGuard(name string, cfg wgtypes.Config) error {
	if err := b.Recorder.ConfigureWireGuard(name, cfg); err != nil {
		return err
	}
	at := time.Now()
	if n, err := b.Recorder.PeersWithAllowedIPs(name); err == nil {
		b.a.setPeers(int64(n), at)
	}
	b.a.f.observe(b.a, event{at: at, op: opConfigure, cfg: &cfg})
	return nil
}

// CreateDevice implements platform.Backend.
func (b *backend) CreateDevice(name string) error {
	if err := b.Recorder.CreateDevice(name); err != nil {
		return err
	}
	b.a.f.observe(b.a, event{at: time.Now(), op: opCreate})
	return nil
}

// AddRoute implements platform.Backend.
func (b *backend) AddRoute(name string, p netip.Prefix) error {
	if err := b.Recorder.AddRoute(name, p); err != nil {
		return err
	}
	b.a.f.observe(b.a, event{at: time.Now(), op: opAddRoute, prefix: p})
	return nil
}

// firewall is the agent's access-policy backend: platformtest's
// in-memory Firewall (the load tool must not touch the host's nf_tables),
// with each applied policy reported to the fleet's watch together with
// what changed from the one before.
type firewall struct {
	*platformtest.Firewall
	a *simAgent
}

var _ platform.Firewall = (*firewall)(nil)

// Apply implements platform.Firewall.
func (f *firewall) Apply(iface string, p *platform.FirewallPolicy) (platform.FirewallOps, error) {
	old := f.Firewall.Policy(iface)
	ops, err := f.Firewall.Apply(iface, p)
	if err != nil || ops.Total() == 0 {
		return ops, err
	}
	f.a.f.observe(f.a, event{at: time.Now(), op: opFirewall, policy: p, diff: policyDiff(old, p)})
	return ops, nil
}

// policyDiff counts what a diffing firewall changes to go from policy a
// to b (either may be nil): rules added or removed (a changed rule counts
// as one removed and one added, as nftables replaces it), sets added or
// removed, and elements added to or removed from the sets both have.
func policyDiff(a, b *platform.FirewallPolicy) platform.FirewallOps {
	var out platform.FirewallOps
	if a == nil {
		a = &platform.FirewallPolicy{}
	}
	if b == nil {
		b = &platform.FirewallPolicy{}
	}
	ra, rb := a.Rules, b.Rules
	for len(ra) > 0 && len(rb) > 0 && reflect.DeepEqual(ra[0], rb[0]) {
		ra, rb = ra[1:], rb[1:]
	}
	for len(ra) > 0 && len(rb) > 0 && reflect.DeepEqual(ra[len(ra)-1], rb[len(rb)-1]) {
		ra, rb = ra[:len(ra)-1], rb[:len(rb)-1]
	}
	out.Rules = len(ra) + len(rb)
	for name, pa := range a.Sets {
		pb, ok := b.Sets[name]
		if !ok {
			out.Sets++
			continue
		}
		in := map[netip.Prefix]bool{}
		for _, p := range pa {
			in[p] = true
		}
		for _, p := range pb {
			if in[p] {
				delete(in, p)
			} else {
				out.Elements++
			}
		}
		out.Elements += len(in)
	}
	for name := range b.Sets {
		if _, ok := a.Sets[name]; !ok {
			out.Sets++
		}
	}
	if a.DefaultAccept != b.DefaultAccept || !slices.Equal(a.Masquerade, b.Masquerade) {
		out.Chains++
	}
	return out
}

// What an event is.
const (
	opConfigure = "ConfigureWireGuard"
	opCreate    = "CreateDevice"
	opAddRoute  = "AddRoute"
	opFirewall  = "ApplyFirewall" // a policy that changed something
	opAnswer    = "answer"        // the first byte of an HTTP answer
)

// event is a backend write or an HTTP answer seen on one agent.
type event struct {
	at     time.Time
	op     string
	cfg    *wgtypes.Config          // opConfigure
	prefix netip.Prefix             // opAddRoute
	policy *platform.FirewallPolicy // opFirewall
	diff   platform.FirewallOps     // opFirewall: from the policy before
	req    reqKind                  // opAnswer
	status int                      // opAnswer
	sent   time.Time                // opAnswer: when its request was sent
}

// agentKey carries the *simAgent in the agent's context, from which the
// HTTP transport's dials inherit it.
type agentKey struct{}

var dialerOnce sync.Once

// installDialer makes the connections of every simulated agent counted and
// sourced from the agent's own loopback address. The agent builds its HTTP
// client by cloning http.DefaultTransport, which copies DialContext, and
// its requests carry the context given to agent.Run, whose values reach
// the dial: so no agent code changes. Other dials are left alone.
func installDialer() {
	dialerOnce.Do(func() {
		tr := http.DefaultTransport.(*http.Transport)
		plain := tr.DialContext
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			a, ok := ctx.Value(agentKey{}).(*simAgent)
			if !ok {
				return plain(ctx, network, addr)
			}
			d := net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, LocalAddr: a.local}
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			a.dials.Add(1)
			return &countingConn{Conn: c, a: a}, nil
		}
	})
}

// countingConn counts an agent's bytes per kind of exchange and reports
// the first byte of each answer. Go's HTTP/1.1 client sends one request at
// a time on a connection and writes each request's head in its first
// write, so a write after an answer began starts the next request.
type countingConn struct {
	net.Conn
	a *simAgent

	mu      sync.Mutex
	kind    reqKind   // of the request in flight
	sentAt  time.Time // its first write
	waiting bool      // sent, no answer byte yet
	inKind  reqKind   // what the bytes being read belong to
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if !c.waiting {
		c.kind, c.sentAt, c.waiting = requestKind(p), time.Now(), true
	}
	k := c.kind
	c.mu.Unlock()
	n, err := c.Conn.Write(p)
	c.a.bytesOut[k].Add(int64(n))
	return n, err
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n == 0 {
		return n, err
	}
	now := time.Now()
	c.mu.Lock()
	first := c.waiting
	sent := c.sentAt
	var took time.Duration
	if first {
		c.waiting = false
		took = now.Sub(sent)
		c.inKind = c.kind
		if c.kind == reqConfig && took >= c.a.f.wait {
			c.inKind = reqConfigTimeout
		}
	}
	k := c.inKind
	c.mu.Unlock()
	c.a.bytesIn[k].Add(int64(n))
	if first {
		c.a.answered(k, answerStatus(p[:n]), sent, now)
	}
	return n, err
}

// answered records the first byte of an answer.
func (a *simAgent) answered(k reqKind, status int, sent, at time.Time) {
	a.answers[k].Add(1)
	if status >= 300 {
		a.badAnswers.Add(1)
	}
	if k == reqRegister && status == http.StatusConflict {
		a.regConflicts.Add(1)
	}
	if k == reqRegister && status >= 200 && status < 300 {
		a.registerRTT.Store(int64(at.Sub(sent)))
		a.registeredAt.CompareAndSwap(0, at.UnixNano())
		a.regOnce.Do(func() { close(a.registered) })
	}
	a.f.observe(a, event{at: at, op: opAnswer, req: k, status: status, sent: sent})
}

// requestKind classifies a request by its request line.
func requestKind(p []byte) reqKind {
	switch {
	case bytes.HasPrefix(p, []byte("GET /api/v1/agent/config")):
		return reqConfig
	case bytes.HasPrefix(p, []byte("PUT /api/v1/agent/status")):
		return reqStatus
	case bytes.HasPrefix(p, []byte("POST /api/v1/agent/register")):
		return reqRegister
	}
	return reqOther
}

// answerStatus parses the status code of "HTTP/1.1 200 OK", or 0.
func answerStatus(p []byte) int {
	if len(p) < 12 || !bytes.HasPrefix(p, []byte("HTTP/1.")) {
		return 0
	}
	n, err := strconv.Atoi(string(p[9:12]))
	if err != nil {
		return 0
	}
	return n
}

// fleet runs the simulated agents of one scenario in this process.
type fleet struct {
	ctx    context.Context
	url    string
	base   string // parent of the agents' data dirs
	wait   time.Duration
	acfg   agent.Config // template: intervals
	alog   *slog.Logger
	logs   *logCounter
	agents []*simAgent
	watch  atomic.Pointer[watch]
}

func newFleet(ctx context.Context, url, base string, c config, connIdle time.Duration, logs *logCounter) *fleet {
	installDialer()
	// Every agent clones http.DefaultTransport when it starts.
	http.DefaultTransport.(*http.Transport).IdleConnTimeout = connIdle
	return &fleet{
		ctx: ctx, url: url, base: base, wait: c.Wait, logs: logs,
		alog: slog.New(logs.handler()),
		acfg: agent.Config{
			Server:              url,
			DriftInterval:       c.Drift,
			HeartbeatInterval:   c.Heartbeat,
			Wait:                c.Wait,
			KeyRotationInterval: agent.KeyRotationDisabled,
		},
	}
}

// add creates (without starting) the next agent.
func (f *fleet) add(netIdx int, expect int64) *simAgent {
	i := len(f.agents)
	rec := platformtest.NewRecorder()
	rec.DiscardOps = true
	a := &simAgent{
		idx: i, name: fmt.Sprintf("lg-%05d", i), netIdx: netIdx, expect: expect,
		dir:        filepath.Join(f.base, strconv.Itoa(i)),
		local:      &net.TCPAddr{IP: net.IPv4(127, byte(1+i>>16), byte(i>>8), byte(i))},
		f:          f,
		registered: make(chan struct{}),
		done:       make(chan struct{}),
	}
	a.b = &backend{Recorder: rec, a: a}
	a.fw = &firewall{Firewall: platformtest.NewFirewall(), a: a}
	f.agents = append(f.agents, a)
	return a
}

// start runs agent a, registering with the join token.
func (f *fleet) start(a *simAgent, joinToken string) {
	ctx, cancel := context.WithCancel(context.WithValue(f.ctx, agentKey{}, a))
	a.cancel = cancel
	cfg := f.acfg
	cfg.JoinToken, cfg.DataDir, cfg.Name, cfg.Firewall = joinToken, a.dir, a.name, a.fw
	a.startedAt.Store(time.Now().UnixNano())
	go func() {
		defer close(a.done)
		a.err = agent.Run(ctx, cfg, a.b, f.alog.With("host", a.name))
		if a.err == nil && ctx.Err() == nil {
			a.err = errors.New("agent stopped on its own")
		}
	}()
}

// stop stops every agent and waits for them, up to timeout.
func (f *fleet) stop(timeout time.Duration) {
	for _, a := range f.agents {
		if a.cancel != nil {
			a.cancel()
		}
	}
	deadline := time.After(timeout)
	for _, a := range f.agents {
		if a.cancel == nil {
			continue
		}
		select {
		case <-a.done:
		case <-deadline:
			return
		}
	}
}

// errRegistrationLost is an agent that can never register: the server
// registered its host, the answer did not reach it within the agent's 30s
// request timeout, and its retry is refused because the name is taken.
var errRegistrationLost = errors.New("registration lost: the server registered the host, the agent timed out waiting for the answer, and its retries get 409 \"host name is taken\" forever")

// failed returns the first agent that stopped with an error or lost its
// registration.
func (f *fleet) failed(agents []*simAgent) error {
	for _, a := range agents {
		select {
		case <-a.done:
			if a.err != nil {
				return fmt.Errorf("agent %s: %w", a.name, a.err)
			}
		default:
		}
		if a.lostRegistration() {
			return fmt.Errorf("agent %s: %w", a.name, errRegistrationLost)
		}
	}
	return nil
}

// lostRegistration reports whether the agent is stuck as errRegistrationLost says.
func (a *simAgent) lostRegistration() bool {
	return a.registeredAt.Load() == 0 && a.regConflicts.Load() > 0
}

// snapshot returns every agent's counters.
func (f *fleet) snapshot() []counters {
	out := make([]counters, len(f.agents))
	for i, a := range f.agents {
		out[i] = a.counters()
	}
	return out
}

// observe passes an event to the current watch.
func (f *fleet) observe(a *simAgent, ev event) {
	if w := f.watch.Load(); w != nil {
		w.observe(a, ev)
	}
}

// removeData deletes the agents' data dirs.
func (f *fleet) removeData() error { return os.RemoveAll(f.base) }

// goal is what one change must do on a set of agents: match reports
// whether an event completes it on agent a.
type goal struct {
	name     string
	required bool // the change has converged once every agent reached it
	agents   map[int]bool
	match    func(a *simAgent, ev event) bool
	at       map[int]time.Time
}

// watch collects, for one change, when each affected agent reached each goal.
type watch struct {
	start time.Time
	mu    sync.Mutex
	goals []*goal
	left  int // required (goal, agent) pairs not reached yet
	done  chan struct{}
}

func newWatch(start time.Time, goals ...*goal) *watch {
	w := &watch{start: start, goals: goals, done: make(chan struct{})}
	for _, g := range goals {
		g.at = map[int]time.Time{}
		if g.required {
			w.left += len(g.agents)
		}
	}
	if w.left == 0 {
		close(w.done)
	}
	return w
}

func (w *watch) observe(a *simAgent, ev event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, g := range w.goals {
		if !g.agents[a.idx] {
			continue
		}
		if _, seen := g.at[a.idx]; seen || !g.match(a, ev) {
			continue
		}
		g.at[a.idx] = ev.at
		if g.required {
			w.left--
			if w.left == 0 {
				close(w.done)
			}
		}
	}
}

// latencies returns, for goal name, the time from the start to each agent
// reaching it, and how many affected agents did not.
func (w *watch) latencies(name string) (lat []time.Duration, missing int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, g := range w.goals {
		if g.name != name {
			continue
		}
		for _, at := range g.at {
			lat = append(lat, at.Sub(w.start))
		}
		return lat, len(g.agents) - len(g.at)
	}
	return nil, 0
}

// reachedAt returns when agent idx reached goal name.
func (w *watch) reachedAt(name string, idx int) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, g := range w.goals {
		if g.name == name {
			t, ok := g.at[idx]
			return t, ok
		}
	}
	return time.Time{}, false
}

// logCounter counts the agents' warnings and errors and keeps a few; with
// fwd set it also passes them on.
type logCounter struct {
	warns, errs atomic.Int64
	fwd         slog.Handler
	mu          sync.Mutex
	samples     []string
}

const maxLogSamples = 5

func (l *logCounter) handler() slog.Handler { return &countingHandler{c: l} }

func (l *logCounter) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := fmt.Sprintf("%d errors, %d warnings", l.errs.Load(), l.warns.Load())
	for _, m := range l.samples {
		s += "\n    " + m
	}
	return s
}

// countingHandler is the slog.Handler of the simulated agents: it drops
// info and debug records before they are formatted.
type countingHandler struct {
	c     *logCounter
	attrs []slog.Attr
}

func (h *countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.c.errs.Add(1)
	} else {
		h.c.warns.Add(1)
	}
	h.c.mu.Lock()
	// Keep the first errors, and warnings only while there is room.
	if len(h.c.samples) < maxLogSamples || (r.Level >= slog.LevelError && h.c.errs.Load() <= maxLogSamples) {
		if len(h.c.samples) >= maxLogSamples {
			h.c.samples = h.c.samples[1:]
		}
		s := r.Level.String() + " " + r.Message
		for _, a := range h.attrs {
			s += " " + a.String()
		}
		r.Attrs(func(a slog.Attr) bool { s += " " + a.String(); return true })
		h.c.samples = append(h.c.samples, s)
	}
	h.c.mu.Unlock()
	if h.c.fwd != nil {
		return h.c.fwd.WithAttrs(h.attrs).Handle(ctx, r)
	}
	return nil
}

func (h *countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &countingHandler{c: h.c, attrs: append(h.attrs[:len(h.attrs):len(h.attrs)], as...)}
}

func (h *countingHandler) WithGroup(string) slog.Handler { return h }
