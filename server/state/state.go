// Package state is the server's desired state: every object in memory,
// indexed for the queries the API and the agents make, written through to a
// store.Store. Each write gets the next modify index and wakes only the
// agents whose desired state it changed.
package state

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/ipam"
	"github.com/drago-wg/drago/server/store"
)

// Options tune a State.
type Options struct {
	// HeartbeatGrace is how long after its last report a host counts as down.
	HeartbeatGrace time.Duration
	// KeyRotationInterval is the agents' rotation period; a key older than
	// twice this is flagged stale. 0 flags nothing.
	KeyRotationInterval time.Duration
	// Now replaces the clock in tests.
	Now func() time.Time
	// ServerID names this server among those sharing an etcd store
	// (default: a random id); ServerAddr is its API address, for status.
	ServerID, ServerAddr string
	// OnCommit, when set, is told of each committed write: how long its
	// store transaction took and how many agents it woke (metrics). It is
	// called under the state's write lock and must not block.
	OnCommit func(tx time.Duration, woken int)
	// AuditMaxAge and AuditMaxEntries bound the audit trail; zero means
	// DefaultAuditMaxAge and DefaultAuditMaxEntries.
	AuditMaxAge     time.Duration
	AuditMaxEntries int
}

// State holds the desired state. Its methods are safe for concurrent use.
// The States WithAudit returns share one's state.
type State struct {
	*core
	// entry, when set, is the audit entry the first write through this
	// State commits in its store transaction (WithAudit).
	entry *AuditRecord
}

// core is the state a State and those WithAudit returns share.
type core struct {
	log   *slog.Logger
	store store.Store
	opts  Options

	mu          sync.RWMutex
	index       uint64
	indexSeen   atomic.Uint64            // index, readable without mu (see applied)
	inflight    atomic.Pointer[inflight] // the write whose commit is in flight, if any
	networks    map[string]*api.Network
	netByName   map[string]string
	hosts       map[string]*api.Host
	hostByName  map[string]string
	ifaces      map[string]*api.Interface
	ifaceNets   map[string]*ifaceNets // interface id -> its parsed addresses
	netIfaces   map[string]set        // network id -> interface ids
	netDevices  map[string]set        // network id -> its plain devices' interface ids
	hostIfaces  map[string]set        // host id -> interface ids
	keyOwner    map[netKey]string     // (network, public or next key) -> interface id
	conns       map[string]*api.Connection
	ifaceConns  map[string]set // interface id -> connection ids
	rules       map[string]*api.Rule
	netRules    map[string][]*api.Rule // network id -> its rules by position
	parsedRules map[string]*parsedRule // rule id -> its selectors and ports parsed
	rulesDirty  set                    // networks whose netRules need sorting
	firewalls   map[string]*firewall   // interface id -> compiled policy, when it has one
	tokens      map[string]*tokenRecord
	joins       map[string]*joinRecord
	creds       map[string]*credRecord // host id -> credential
	pools       map[string]*netPools   // network id -> address pools
	hostIndex   map[string]uint64      // host id -> index of its last desired-state change
	wakeMu      sync.Mutex             // guards hostWake, so waiters need only s.mu.RLock
	hostWake    map[string]chan struct{}
	reports     map[string]*api.StatusReport
	history     history        // the last hour of the reported counters
	changes     changeLog      // recent commits, for delta desired states
	rotating    set            // interfaces whose next key awaits its peers (NextKeyReady unset)
	waiting     map[string]set // rotating interface id -> hosts it still waits for (markKeysReady)
	live        liveness       // agents' blocking queries, as signs of life
	events      []api.Event    // ring of recent changes, oldest first
	eventWake   chan struct{}
	follow      *follow               // set when other servers write the store too
	remote      map[string]remoteLive // host id -> another server's record of it
	readyCheck  set                   // hosts whose record shows a new applied index (leader's job)
	audit       auditLog              // guarded by its own lock
}

type set map[string]struct{}

func (s set) add(id string) { s[id] = struct{}{} }

// setOf returns a set of ids.
func setOf(ids []string) set {
	out := make(set, len(ids))
	for _, id := range ids {
		out.add(id)
	}
	return out
}

// sorted returns the members in order.
func (s set) sorted() []string { return slices.Sorted(maps.Keys(s)) }

type netPools struct{ v4, v6 *ipam.Pool }

const maxEvents = 1000

// Open loads the state from st. When st is written by other servers too
// (etcd), the state then follows their commits until Close.
func Open(st store.Store, log *slog.Logger, opts Options) (*State, error) {
	if opts.HeartbeatGrace <= 0 {
		opts.HeartbeatGrace = 45 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ServerID == "" {
		opts.ServerID = newID()
	}
	if opts.AuditMaxAge <= 0 {
		opts.AuditMaxAge = DefaultAuditMaxAge
	}
	if opts.AuditMaxEntries <= 0 {
		opts.AuditMaxEntries = DefaultAuditMaxEntries
	}
	s := &State{core: &core{
		log: log.With("subsystem", "state"), store: st, opts: opts,
		networks: map[string]*api.Network{}, netByName: map[string]string{},
		hosts: map[string]*api.Host{}, hostByName: map[string]string{},
		ifaces: map[string]*api.Interface{}, ifaceNets: map[string]*ifaceNets{}, netIfaces: map[string]set{}, netDevices: map[string]set{}, hostIfaces: map[string]set{}, keyOwner: map[netKey]string{},
		conns: map[string]*api.Connection{}, ifaceConns: map[string]set{},
		rules: map[string]*api.Rule{}, netRules: map[string][]*api.Rule{}, parsedRules: map[string]*parsedRule{}, rulesDirty: set{}, firewalls: map[string]*firewall{},
		tokens: map[string]*tokenRecord{}, joins: map[string]*joinRecord{}, creds: map[string]*credRecord{},
		pools: map[string]*netPools{}, hostIndex: map[string]uint64{}, hostWake: map[string]chan struct{}{}, rotating: set{}, waiting: map[string]set{},
		reports: map[string]*api.StatusReport{}, eventWake: make(chan struct{}), remote: map[string]remoteLive{}, readyCheck: set{},
	}}
	var rev int64
	err := st.View(func(tx store.Tx) error {
		s.index = tx.Index()
		s.indexSeen.Store(s.index)
		if r, ok := tx.(revisioned); ok {
			rev = r.Revision()
		}
		for _, kind := range store.Kinds {
			err := tx.ForEach(kind, func(id string, raw []byte) error {
				if kind == store.KindAudit {
					return s.loadAudit(id, raw)
				}
				v, err := decode(kind, raw)
				if err != nil {
					return fmt.Errorf("decoding %s/%s: %w", kind, id, err)
				}
				if v != nil {
					s.apply(change{kind: kind, id: id, val: v})
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading state: %w", err)
	}
	for id := range s.hosts {
		s.hostIndex[id] = s.index
	}
	s.changes = newChangeLog(s.index)
	s.sortRules()
	s.recompile(setOf(slices.Collect(maps.Keys(s.networks))), 0)
	if f, ok := st.(follower); ok {
		if err := s.startFollowing(f, rev); err != nil {
			return nil, fmt.Errorf("loading state: %w", err)
		}
	}
	return s, nil
}

// decode turns a stored value into the in-memory type of its kind.
func decode(kind string, raw []byte) (any, error) {
	var v any
	switch kind {
	case store.KindNetworks:
		v = &api.Network{}
	case store.KindHosts:
		v = &api.Host{}
	case store.KindInterfaces:
		v = &api.Interface{}
	case store.KindConnections:
		v = &api.Connection{}
	case store.KindTokens:
		v = &tokenRecord{}
	case store.KindJoinTokens:
		v = &joinRecord{}
	case store.KindCredentials:
		v = &credRecord{}
	case store.KindRules:
		v = &api.Rule{}
	default: // the audit trail is kept apart (loadAudit, followAudit)
		return nil, nil
	}
	return v, json.Unmarshal(raw, v)
}

// Index reports the last modify index.
func (s *State) Index() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.index
}

// change is one object written (val) or deleted (val nil) by a write.
type change struct {
	kind, id string
	val      any
}

// write collects the changes of one operation; commit persists and applies
// them atomically under s.mu.
type write struct {
	s       *State
	index   uint64
	now     time.Time
	changes []change
	events  []api.Event
	ifaces  set                 // interfaces whose peers may change
	nets    set                 // networks whose every host may change
	hosts   set                 // hosts whose own state changed
	wake    set                 // hosts to wake, without their peers
	addrs   map[netip.Addr]bool // addresses the write assigns: the pools reserve them at commit
	entry   *AuditRecord        // stored in the same transaction, when not yet
}

// begin starts a write; the caller holds s.mu for writing.
func (s *State) begin() *write {
	w := s.newWrite(s.index + 1)
	w.entry = s.entry
	return w
}

// newWrite returns an empty write of index.
func (s *State) newWrite(index uint64) *write {
	return &write{s: s, index: index, now: s.opts.Now().UTC(), ifaces: set{}, nets: set{}, hosts: set{}, wake: set{}, addrs: map[netip.Addr]bool{}}
}

func (w *write) put(kind, id string, v any, action, name string) {
	w.changes = append(w.changes, change{kind: kind, id: id, val: v})
	if ev := eventKind(kind); ev != "" {
		w.events = append(w.events, api.Event{Index: w.index, Time: w.now, Kind: ev, Action: action, ID: id, Name: name})
	}
}

func (w *write) del(kind, id, name string) {
	w.changes = append(w.changes, change{kind: kind, id: id})
	if ev := eventKind(kind); ev != "" {
		w.events = append(w.events, api.Event{Index: w.index, Time: w.now, Kind: ev, Action: "deleted", ID: id, Name: name})
	}
}

func eventKind(kind string) string {
	switch kind {
	case store.KindNetworks:
		return "network"
	case store.KindHosts:
		return "host"
	case store.KindInterfaces:
		return "interface"
	case store.KindConnections:
		return "connection"
	case store.KindTokens:
		return "token"
	case store.KindJoinTokens:
		return "join_token"
	case store.KindRules:
		return "rule"
	}
	return ""
}

// meta stamps a new or changed object.
func (w *write) meta(m *api.Meta) {
	if m.ID == "" {
		m.ID = newID()
		m.CreatedAt = w.now
	}
	m.UpdatedAt = w.now
	m.ModifyIndex = w.index
}

// inflight is a write of this server whose commit is under way: done is
// closed once it is in memory (or failed).
type inflight struct {
	index uint64
	done  chan struct{}
}

// commit persists the write, with its audit entry, and applies it in
// memory, then wakes the agents whose desired state changed and the event
// watchers. With a store other servers write (etcd), it fails with ErrStale
// if one of them wrote since this server's memory was last brought up to
// date.
func (w *write) commit() error {
	s := w.s
	if len(w.changes) == 0 {
		return nil
	}
	if err := s.healthy(); err != nil {
		return err
	}
	ac := s.beginAudit(w)
	defer ac.end()
	fl := &inflight{index: w.index, done: make(chan struct{})}
	s.inflight.Store(fl)
	defer func() {
		s.inflight.Store(nil)
		close(fl.done)
	}()
	start := time.Now()
	err := s.store.Update(func(tx store.Tx) error {
		if got := tx.Index(); got != s.index {
			return &Error{Class: ErrStale, Message: fmt.Sprintf("the state changed on another server (index %d, this server has %d): retry", got, s.index)}
		}
		for _, c := range w.changes {
			var err error
			if c.val == nil {
				err = tx.Delete(c.kind, c.id)
			} else {
				err = tx.Put(c.kind, c.id, c.val)
			}
			if err != nil {
				return err
			}
		}
		if err := ac.put(tx); err != nil {
			return err
		}
		return tx.SetIndex(w.index)
	})
	txTime := time.Since(start)
	if errors.Is(err, ErrStale) {
		return err
	}
	if err != nil {
		return fmt.Errorf("persisting change: %w", err)
	}
	ac.keep()
	woken := s.applyWrite(w)
	if s.opts.OnCommit != nil {
		s.opts.OnCommit(txTime, woken)
	}
	return nil
}

// applyWrite applies a committed write in memory, wakes the agents whose
// desired state it changed and the event watchers, and returns how many
// agents it woke; the caller holds s.mu for writing.
func (s *State) applyWrite(w *write) int {
	affected := s.affectedHosts(w)
	policies := s.policyNets(w)
	s.record(w)
	s.eventNets(w, true)
	for _, c := range w.changes {
		s.apply(c)
	}
	s.sortRules()
	s.eventNets(w, false)
	for h := range s.affectedHosts(w) {
		affected.add(h)
	}
	s.record(w)
	for h := range s.recompile(policies, w.index) {
		affected.add(h)
	}
	s.index = w.index
	s.indexSeen.Store(w.index)
	s.wakeMu.Lock()
	woken := 0
	for h := range affected {
		if _, ok := s.hosts[h]; !ok {
			continue
		}
		woken++
		s.hostIndex[h] = w.index
		if ch, ok := s.hostWake[h]; ok {
			close(ch)
			delete(s.hostWake, h)
		}
	}
	s.wakeMu.Unlock()
	if len(w.events) > 0 {
		s.events = append(s.events, w.events...)
		if n := len(s.events) - maxEvents; n > 0 {
			s.events = slices.Delete(s.events, 0, n)
		}
		close(s.eventWake)
		s.eventWake = make(chan struct{})
	}
	return woken
}

// affectedHosts lists the hosts whose desired state depends on what w touched.
func (s *State) affectedHosts(w *write) set {
	out := set{}
	for h := range w.wake {
		out.add(h)
	}
	for h := range w.hosts {
		out.add(h)
		for i := range s.hostIfaces[h] {
			s.addPeerHosts(out, i)
		}
	}
	for n := range w.nets {
		for i := range s.netIfaces[n] {
			if h := s.ifaces[i].HostID; h != "" {
				out.add(h)
			}
		}
	}
	for i := range w.ifaces {
		s.addPeerHosts(out, i)
	}
	return out
}

// addPeerHosts adds the host of interface i and the hosts of all its peers.
func (s *State) addPeerHosts(out set, i string) {
	iface, ok := s.ifaces[i]
	if !ok {
		return
	}
	if iface.HostID != "" {
		out.add(iface.HostID)
	}
	if iface.PublicKey == "" {
		return // no peer lists an interface without a key
	}
	s.eachPeer(iface, func(p *api.Interface, _ *api.Connection) {
		if p.HostID != "" {
			out.add(p.HostID)
		}
	})
}

// apply changes the in-memory maps; used by commit and by Open.
func (s *State) apply(c change) {
	switch c.kind {
	case store.KindNetworks:
		if old, ok := s.networks[c.id]; ok {
			delete(s.netByName, old.Name)
		}
		if c.val == nil {
			delete(s.networks, c.id)
			delete(s.pools, c.id)
			return
		}
		n := c.val.(*api.Network)
		n.DefaultAction = cmp.Or(n.DefaultAction, api.ActionAccept) // stored before policies existed
		s.networks[c.id] = n
		s.netByName[n.Name] = n.ID
		s.rebuildPools(n)
	case store.KindHosts:
		if old, ok := s.hosts[c.id]; ok {
			delete(s.hostByName, old.Name)
		}
		if c.val == nil {
			delete(s.hosts, c.id)
			delete(s.hostIndex, c.id)
			delete(s.reports, c.id)
			s.forgetHistory(c.id)
			delete(s.remote, c.id)
			s.live.forget(c.id)
			s.changes.forget(c.id)
			for _, wait := range s.waiting {
				delete(wait, c.id)
			}
			return
		}
		h := c.val.(*api.Host)
		s.hosts[c.id] = h
		s.hostByName[h.Name] = h.ID
		if _, ok := s.hostIndex[c.id]; !ok {
			s.hostIndex[c.id] = s.index
		}
	case store.KindInterfaces:
		if old, ok := s.ifaces[c.id]; ok {
			delete(s.netIfaces[old.NetworkID], c.id)
			delete(s.netDevices[old.NetworkID], c.id)
			delete(s.hostIfaces[old.HostID], c.id)
			s.releaseAddrs(old)
			s.indexKeys(old, false)
		}
		delete(s.rotating, c.id)
		delete(s.waiting, c.id)
		if c.val == nil {
			delete(s.ifaces, c.id)
			delete(s.ifaceNets, c.id)
			delete(s.firewalls, c.id)
			s.changes.forgetIface(c.id)
			return
		}
		i := c.val.(*api.Interface)
		s.ifaces[c.id] = i
		s.ifaceNets[c.id] = parseNets(i)
		if i.NextPublicKey != "" && !i.NextKeyReady {
			s.rotating.add(c.id)
		}
		index(s.netIfaces, i.NetworkID, c.id)
		if i.DeviceName != "" {
			index(s.netDevices, i.NetworkID, c.id)
		}
		s.indexKeys(i, true)
		if i.HostID != "" {
			index(s.hostIfaces, i.HostID, c.id)
		}
		s.reserveAddrs(i)
	case store.KindConnections:
		if old, ok := s.conns[c.id]; ok {
			delete(s.ifaceConns[old.A.InterfaceID], c.id)
			delete(s.ifaceConns[old.B.InterfaceID], c.id)
		}
		if c.val == nil {
			delete(s.conns, c.id)
			return
		}
		cn := c.val.(*api.Connection)
		s.conns[c.id] = cn
		index(s.ifaceConns, cn.A.InterfaceID, c.id)
		index(s.ifaceConns, cn.B.InterfaceID, c.id)
	case store.KindRules:
		if old, ok := s.rules[c.id]; ok {
			s.rulesDirty.add(old.NetworkID)
		}
		setOrDelete(s.rules, c)
		delete(s.parsedRules, c.id)
		if r, ok := s.rules[c.id]; ok {
			s.rulesDirty.add(r.NetworkID)
			s.parsedRules[c.id] = parseRule(r)
		}
	case store.KindTokens:
		setOrDelete(s.tokens, c)
	case store.KindJoinTokens:
		setOrDelete(s.joins, c)
	case store.KindCredentials:
		setOrDelete(s.creds, c)
	}
}

// setOrDelete applies a change to a map without secondary indexes.
func setOrDelete[T any](m map[string]*T, c change) {
	if c.val == nil {
		delete(m, c.id)
		return
	}
	m[c.id] = c.val.(*T)
}

func index(m map[string]set, key, id string) {
	if m[key] == nil {
		m[key] = set{}
	}
	m[key].add(id)
}

func newID() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

// clone returns a deep copy of v through JSON, so callers never alias state.
func clone[T any](v *T) *T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		panic(err)
	}
	return out
}

// netKey is a public key within one network: keys are unique per network.
type netKey struct{ network, key string }

// indexKeys adds (or removes) the interface's current and next keys to the
// key index.
func (s *State) indexKeys(i *api.Interface, add bool) {
	for _, k := range []string{i.PublicKey, i.NextPublicKey} {
		nk := netKey{i.NetworkID, k}
		switch {
		case k == "":
		case add:
			s.keyOwner[nk] = i.ID
		case s.keyOwner[nk] == i.ID:
			delete(s.keyOwner, nk)
		}
	}
}

// checkKeyFree refuses key for interface self of network when another
// interface of that network holds it as its current or next key.
func (s *State) checkKeyFree(field, network, key, self string) error {
	if owner, ok := s.keyOwner[netKey{network, key}]; ok && owner != self {
		return conflict(field, "%s: the key is used by another interface or device of this network", field)
	}
	return nil
}
