package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
)

// Following a store that several servers write (etcd). Memory is a watch
// cache: loaded at one store revision, then fed every later commit in
// revision order by the store's watch. A commit of this server is applied
// by the writer itself and skipped by the watch (its modify index is not
// above the state's), so a write through server A changes memory on server
// B as if B had made it: same index, same wakes, same deltas.

const (
	// probeInterval is how often a following state checks that it is up to
	// date with the store.
	probeInterval = time.Second
	// probeTimeout is how long the check may take before the state counts
	// as cut off: writes and reads are then refused with ErrUnavailable.
	probeTimeout = 3 * time.Second
)

// follower is a store that other servers write too.
type follower interface {
	// Watch calls commit with each commit after revision after, in order,
	// and progress with revisions up to which all were delivered.
	Watch(ctx context.Context, after int64, commit func(store.Commit), progress func(rev int64)) error
	// Revision returns the store's current revision.
	Revision(ctx context.Context) (int64, error)
	// RequestProgress asks Watch for a progress call.
	RequestProgress(ctx context.Context) error
}

// revisioned is a transaction of a follower store.
type revisioned interface{ Revision() int64 }

// follow is the state of following a store.
type follow struct {
	store   follower
	cancel  context.CancelFunc
	done    sync.WaitGroup
	healthy atomic.Bool
	leader  atomic.Bool // this server runs the cluster's jobs

	mu      sync.Mutex
	rev     int64         // every commit up to rev is in memory
	revWake chan struct{} // closed when rev grows
	cut     chan struct{} // closed when the state is cut off; new when back
}

// startFollowing watches st from revision rev on; the caller has loaded
// memory at rev.
func (s *State) startFollowing(st follower, rev int64) error {
	ctx, cancel := context.WithCancel(context.Background())
	f := &follow{store: st, cancel: cancel, rev: rev, revWake: make(chan struct{}), cut: make(chan struct{})}
	f.healthy.Store(true)
	s.follow = f
	c, isCluster := st.(cluster)
	if isCluster {
		if err := s.loadLive(ctx, c, rev); err != nil {
			cancel()
			return err
		}
	}
	f.done.Go(func() { s.watch(ctx) })
	f.done.Go(func() { s.probe(ctx) })
	if isCluster {
		f.done.Go(func() { s.runMember(ctx, c) })
	}
	return nil
}

// Close stops following the store; the state keeps serving what it has.
func (s *State) Close() {
	if s.follow != nil {
		s.follow.cancel()
		s.follow.done.Wait()
	}
}

// watch runs the store's watch, restarting it after errors from the last
// revision applied.
func (s *State) watch(ctx context.Context) {
	f := s.follow
	for ctx.Err() == nil {
		err := f.store.Watch(ctx, f.revision(), s.applyCommit, f.advance)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, store.ErrCompacted) {
			// The commits this server missed are gone from etcd's history:
			// it reloads everything at a current revision and watches on
			// from there. Until then it cannot catch up, so the probe keeps
			// it cut off.
			s.log.Warn("store history compacted past this server's state: reloading it", "error", err)
			if err := s.reload(ctx); err != nil {
				if ctx.Err() == nil {
					s.log.Warn("reloading the state failed; retrying", "error", err)
					sleep(ctx, probeInterval)
				}
				continue
			}
			s.log.Info("state reloaded from the store", "revision", f.revision(), "index", s.Index())
			continue
		}
		s.log.Warn("store watch failed; retrying", "error", err)
		sleep(ctx, probeInterval)
	}
}

// reload replaces memory with the store's state at its current revision,
// for a watch whose next revision etcd compacted away. What differs from
// memory is applied as one write of the stored index (events, firewalls),
// every agent is woken, and the delta log starts over: an agent's index
// may come from a commit this server never saw, so each gets its whole
// desired state once. Audit entries and liveness records are reloaded too.
func (s *State) reload(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &s.audit
	a.mu.Lock()
	defer a.mu.Unlock()
	c := store.Commit{}
	var audit []*api.AuditEntry
	seen := map[string]set{}
	err := s.store.View(func(tx store.Tx) error {
		c.Revision, c.Index = tx.(revisioned).Revision(), tx.Index()
		for _, kind := range store.Kinds {
			seen[kind] = set{}
			err := tx.ForEach(kind, func(id string, raw []byte) error {
				if kind == store.KindAudit {
					e, err := decodeAudit(id, raw)
					if err == nil {
						audit = append(audit, e)
					}
					return err
				}
				v, err := decode(kind, raw)
				if err != nil || v == nil {
					return err // an undecodable object fails the reload
				}
				seen[kind].add(id)
				if !reflect.DeepEqual(s.object(kind, id), v) {
					c.Changes = append(c.Changes, store.Change{Kind: kind, ID: id, Value: bytes.Clone(raw)})
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
		return fmt.Errorf("reloading state: %w", err)
	}
	for _, kind := range store.Kinds {
		for _, id := range s.objectIDs(kind) {
			if _, ok := seen[kind][id]; !ok {
				c.Changes = append(c.Changes, store.Change{Kind: kind, ID: id})
			}
		}
	}
	if cl, ok := s.follow.store.(cluster); ok {
		if err := s.loadLive(ctx, cl, c.Revision); err != nil {
			return fmt.Errorf("reloading liveness records: %w", err)
		}
	}
	a.entries = audit
	for _, e := range audit {
		a.noteID(e.ID)
	}
	if c.Index > s.index { // else no commit changed an object
		w := s.followWrite(c.Index, c.Changes)
		for h := range s.hosts {
			w.wake.add(h)
		}
		s.applyWrite(w)
		s.changes.reset(s.index)
	}
	s.follow.advance(c.Revision)
	return nil
}

// every calls fn every d until ctx ends.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn()
	}
}

// probe checks every probeInterval that the state catches up with the store
// within probeTimeout, and marks it healthy or cut off.
func (s *State) probe(ctx context.Context) {
	every(ctx, probeInterval, func() {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := s.CatchUp(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if s.follow.setHealthy(err == nil) {
			if err != nil {
				s.log.Error("cut off from the store: refusing requests until it is back", "error", err)
			} else {
				s.log.Info("store reachable again")
			}
		}
	})
}

// setHealthy records whether the state is up to date with the store, and
// reports whether that changed. Going cut off closes cut, which ends the
// blocking queries waiting on memory that no longer follows the store.
func (f *follow) setHealthy(ok bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.healthy.Swap(ok) == ok {
		return false
	}
	if ok {
		f.cut = make(chan struct{})
	} else {
		close(f.cut)
	}
	return true
}

// errCutOff is the error of a state cut off from the store it follows.
var errCutOff = fmt.Errorf("this server is cut off from its store: %w", store.ErrUnavailable)

// healthy returns errCutOff while the state is cut off from the store it
// follows.
func (s *State) healthy() error {
	if s.follow != nil && !s.follow.healthy.Load() {
		return errCutOff
	}
	return nil
}

// cutOff returns a channel closed once the state is cut off from the store
// it follows (at once if it is): a blocking query must not then go on to
// answer from memory. A state that follows no store gets nil, which never
// fires.
func (s *State) cutOff() <-chan struct{} {
	if s.follow == nil {
		return nil
	}
	s.follow.mu.Lock()
	defer s.follow.mu.Unlock()
	return s.follow.cut
}

// Healthy returns an error wrapping store.ErrUnavailable while the server
// cannot tell that its state is up to date (cut off from etcd); it must not
// then answer from memory.
func (s *State) Healthy() error { return s.healthy() }

// CatchUp returns once memory holds every commit made to the store before
// the call (at once for a store no other server writes), or an error
// wrapping store.ErrUnavailable when ctx ends first.
func (s *State) CatchUp(ctx context.Context) error {
	f := s.follow
	if f == nil {
		return nil
	}
	rev, err := f.store.Revision(ctx)
	if err != nil {
		return err
	}
	for {
		f.mu.Lock()
		cur, wake := f.rev, f.revWake
		f.mu.Unlock()
		if cur >= rev {
			return nil
		}
		if err := f.store.RequestProgress(ctx); err != nil {
			return err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("catching up to store revision %d (at %d): %w", rev, cur, store.ErrUnavailable)
		}
	}
}

func (f *follow) revision() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rev
}

// advance notes that every commit up to rev is in memory.
func (f *follow) advance(rev int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rev > f.rev {
		f.rev = rev
		close(f.revWake)
		f.revWake = make(chan struct{})
	}
}

// applyCommit applies another server's commit as a write of its index. The
// sets of what changed are derived from the objects, so agents are woken
// and deltas recorded as on the server that wrote it.
func (s *State) applyCommit(c store.Commit) {
	defer s.follow.advance(c.Revision)
	s.followAudit(c.Changes)
	if s.applied(c) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range c.Live {
		s.applyLive(ch)
	}
	if c.Index <= s.index {
		return // this server's own commit, applied when it was made
	}
	s.applyWrite(s.followWrite(c.Index, c.Changes))
}

// followWrite turns the objects another server wrote or deleted into a
// write of index; the caller holds s.mu.
func (s *State) followWrite(index uint64, changes []store.Change) *write {
	w := s.newWrite(index)
	for _, ch := range changes {
		var v any
		if ch.Value != nil {
			var err error
			if v, err = decode(ch.Kind, ch.Value); err != nil {
				s.log.Error("skipping an undecodable object from the store", "kind", ch.Kind, "id", ch.ID, "error", err)
				continue
			}
			if v == nil {
				continue // a kind this state does not hold
			}
		}
		old := s.object(ch.Kind, ch.ID)
		action := "updated"
		switch {
		case v == nil:
			action = "deleted"
		case old == nil:
			action = "created"
		}
		name := objectName(v)
		if v == nil {
			name = objectName(old)
		}
		if v == nil {
			w.del(ch.Kind, ch.ID, name)
		} else {
			w.put(ch.Kind, ch.ID, v, action, name)
		}
		switch ch.Kind {
		case store.KindNetworks:
			w.nets.add(ch.ID)
		case store.KindHosts:
			w.hosts.add(ch.ID)
		case store.KindInterfaces:
			w.ifaces.add(ch.ID)
		case store.KindConnections:
			for _, cn := range []any{old, v} {
				if cn, ok := cn.(*api.Connection); ok {
					w.ifaces.add(cn.A.InterfaceID)
					w.ifaces.add(cn.B.InterfaceID)
				}
			}
		}
	}
	return w
}

// applied reports, without taking s.mu, whether memory already holds all
// of c: a commit this server made (its index is not above the state's
// once the write in flight, if it is that one, is applied), with no
// liveness record but this server's own. Writes hold s.mu while their
// commit goes to the store, so during a burst of writes the lock is queued
// behind each of them; the watch must not wait there for its own commits,
// or a catch-up (the health probe's, 3 s) times out and the server refuses
// requests only because it is busy.
func (s *State) applied(c store.Commit) bool {
	if c.Index > s.indexSeen.Load() {
		fl := s.inflight.Load()
		if fl == nil || fl.index != c.Index {
			return false
		}
		<-fl.done // its writer applies it, or fails and leaves it to the watch
		if c.Index > s.indexSeen.Load() {
			return false
		}
	}
	for _, ch := range c.Live {
		var rec liveRecord
		if ch.Value == nil || json.Unmarshal(ch.Value, &rec) != nil || rec.Server != s.opts.ServerID {
			return false
		}
	}
	return true
}

// object returns the in-memory object kind/id, or nil.
func (s *State) object(kind, id string) any {
	var v any
	var ok bool
	switch kind {
	case store.KindNetworks:
		v, ok = s.networks[id]
	case store.KindHosts:
		v, ok = s.hosts[id]
	case store.KindInterfaces:
		v, ok = s.ifaces[id]
	case store.KindConnections:
		v, ok = s.conns[id]
	case store.KindTokens:
		v, ok = s.tokens[id]
	case store.KindJoinTokens:
		v, ok = s.joins[id]
	case store.KindCredentials:
		v, ok = s.creds[id]
	case store.KindRules:
		v, ok = s.rules[id]
	}
	if !ok {
		return nil
	}
	return v
}

// objectIDs returns the ids of the in-memory objects of kind.
func (s *State) objectIDs(kind string) []string {
	switch kind {
	case store.KindNetworks:
		return slices.Collect(maps.Keys(s.networks))
	case store.KindHosts:
		return slices.Collect(maps.Keys(s.hosts))
	case store.KindInterfaces:
		return slices.Collect(maps.Keys(s.ifaces))
	case store.KindConnections:
		return slices.Collect(maps.Keys(s.conns))
	case store.KindTokens:
		return slices.Collect(maps.Keys(s.tokens))
	case store.KindJoinTokens:
		return slices.Collect(maps.Keys(s.joins))
	case store.KindCredentials:
		return slices.Collect(maps.Keys(s.creds))
	case store.KindRules:
		return slices.Collect(maps.Keys(s.rules))
	}
	return nil
}

// objectName returns the name events show for an object.
func objectName(v any) string {
	switch v := v.(type) {
	case *api.Network:
		return v.Name
	case *api.Host:
		return v.Name
	case *api.Interface:
		return v.Name
	case *tokenRecord:
		return v.Name
	case *joinRecord:
		return v.Name
	}
	return ""
}
