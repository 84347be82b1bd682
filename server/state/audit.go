package state

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
)

// Audit retention defaults.
const (
	DefaultAuditMaxAge     = 30 * 24 * time.Hour
	DefaultAuditMaxEntries = 20000
	MaxAuditEntries        = 1000000
)

// auditLog is the audit trail in memory, oldest first, as stored in the
// audit bucket under ids that sort in the order of the entries.
type auditLog struct {
	mu      sync.RWMutex
	entries []*api.AuditEntry
	last    int64 // time of the last id, in ns: ids grow even when the clock does not
}

// auditBatch bounds the entries one store transaction drops (etcd caps the
// operations of a transaction at 128 by default).
const auditBatch = 100

// newAuditID returns the id of an entry recorded now: the time in hex, so
// ids sort as the entries were recorded, and a random suffix, so servers
// sharing a store never pick the same. The caller holds a.mu.
func (a *auditLog) newAuditID(now time.Time) string {
	a.last = max(now.UnixNano(), a.last+1)
	return fmt.Sprintf("%016x-%s", a.last, newID()[:6])
}

// decodeAudit decodes the stored audit entry id.
func decodeAudit(id string, raw []byte) (*api.AuditEntry, error) {
	e := &api.AuditEntry{}
	if err := json.Unmarshal(raw, e); err != nil {
		return nil, fmt.Errorf("decoding audit/%s: %w", id, err)
	}
	return e, nil
}

// loadAudit adds a stored entry; Open reads them in key order.
func (s *State) loadAudit(id string, raw []byte) error {
	e, err := decodeAudit(id, raw)
	if err != nil {
		return err
	}
	s.audit.entries = append(s.audit.entries, e)
	s.audit.noteID(e.ID)
	return nil
}

// noteID keeps later ids above id. The caller holds a.mu (or is Open).
func (a *auditLog) noteID(id string) {
	if hex, _, ok := strings.Cut(id, "-"); ok {
		if t, err := strconv.ParseInt(hex, 16, 64); err == nil {
			a.last = max(a.last, t)
		}
	}
}

// followAudit applies the audit entries another server sharing the store
// recorded or pruned (its own come back from the watch too: kept once).
func (s *State) followAudit(changes []store.Change) {
	a := &s.audit
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ch := range changes {
		if ch.Kind != store.KindAudit {
			continue
		}
		k, found := slices.BinarySearchFunc(a.entries, ch.ID, func(e *api.AuditEntry, id string) int { return strings.Compare(e.ID, id) })
		switch {
		case ch.Value == nil && found:
			a.entries = slices.Delete(a.entries, k, k+1)
		case ch.Value != nil && !found:
			e, err := decodeAudit(ch.ID, ch.Value)
			if err != nil {
				s.log.Error("skipping an undecodable audit entry from the store", "id", ch.ID, "error", err)
				continue
			}
			a.entries = slices.Insert(a.entries, k, e)
			a.noteID(e.ID)
		}
	}
}

// AuditRecord is the audit entry of one API call as it is known before the
// call writes. The first write through the State WithAudit returns for it
// stores the entry in the write's own store transaction, completed with the
// object written: an acknowledged write never lacks its entry.
type AuditRecord struct {
	Entry     api.AuditEntry
	committed bool
}

// Committed reports whether a write stored the entry; Entry is then the
// entry stored.
func (r *AuditRecord) Committed() bool { return r.committed }

// WithAudit returns a State sharing s whose first committed write stores
// rec's entry in its transaction.
func (s *State) WithAudit(rec *AuditRecord) *State { return &State{core: s.core, entry: rec} }

// auditCommit is an audit entry on its way into a store transaction, with
// the number of oldest entries the retention drops in the same transaction
// (the next PruneAudit drops the rest). It holds the audit trail's lock
// from lockAudit to end. A nil auditCommit does nothing.
type auditCommit struct {
	a    *auditLog
	rec  *AuditRecord // the record it commits, if any
	e    *api.AuditEntry
	drop int
}

// lockAudit locks the audit trail and prepares e as its newest entry, to
// go with up to maxDrop of the oldest the retention drops: its id and, when
// unset, its time are the state's.
func (s *State) lockAudit(e api.AuditEntry, now time.Time, maxDrop int) *auditCommit {
	a := &s.audit
	a.mu.Lock()
	if e.Time.IsZero() {
		e.Time = now
	}
	e.ID = a.newAuditID(now)
	return &auditCommit{a: a, e: &e, drop: min(s.auditExpired(now, 1), maxDrop)}
}

// put writes the entry and drops the expired ones in tx.
func (ac *auditCommit) put(tx store.Tx) error {
	if ac == nil {
		return nil
	}
	for _, old := range ac.a.entries[:ac.drop] {
		if err := tx.Delete(store.KindAudit, old.ID); err != nil {
			return err
		}
	}
	return tx.Put(store.KindAudit, ac.e.ID, ac.e)
}

// keep applies a committed put in memory.
func (ac *auditCommit) keep() {
	if ac == nil {
		return
	}
	ac.a.entries = append(slices.Delete(ac.a.entries, 0, ac.drop), ac.e)
	if ac.rec != nil {
		ac.rec.Entry, ac.rec.committed = *ac.e, true
	}
}

// end unlocks the audit trail.
func (ac *auditCommit) end() {
	if ac != nil {
		ac.a.mu.Unlock()
	}
}

// beginAudit prepares the entry of w's audit record, when w is to store it,
// completed with the object w writes. It drops one old entry at most, which
// keeps the trail within its count and adds two operations to w's
// transaction (etcd bounds them); a write that replaces the audit trail (a
// restore) drops none: the snapshot's entries are kept as they are.
func (s *State) beginAudit(w *write) *auditCommit {
	if w.entry == nil || w.entry.committed {
		return nil
	}
	e := w.entry.Entry
	s.auditWritten(w, &e)
	drop := 1
	if slices.ContainsFunc(w.changes, func(c change) bool { return c.kind == store.KindAudit }) {
		drop = 0
	}
	ac := s.lockAudit(e, w.now, drop)
	ac.rec = w.entry
	return ac
}

// auditWritten completes e with the object w writes, as w leaves it: the
// object e names or, for a create, the first of e's kind w puts (a host's
// credential names its host too). A delete's entry keeps the object as the
// caller resolved it before. The caller holds s.mu.
func (s *State) auditWritten(w *write, e *api.AuditEntry) {
	kind := auditStoreKinds[e.Kind]
	if e.Method == "DELETE" || kind == "" {
		return
	}
	id := e.ObjectID
	var obj any
	for _, c := range w.changes {
		if c.val == nil || id != "" && c.id != id {
			continue
		}
		if c.kind == kind {
			id, obj = c.id, c.val
			break
		}
		if kind == store.KindHosts && c.kind == store.KindCredentials {
			id = c.id
		}
	}
	if obj == nil && id != "" {
		obj = s.auditObject(e.Kind, id)
	}
	if oid, name, nets, ok := s.describe(obj, w); ok {
		e.ObjectID, e.ObjectName = oid, name
		if len(nets) > 0 {
			e.Networks = nets
		}
	}
}

// auditStoreKinds maps the object kinds audit entries name to store kinds.
var auditStoreKinds = map[string]string{
	"network": store.KindNetworks, "host": store.KindHosts, "interface": store.KindInterfaces,
	"device": store.KindInterfaces, "connection": store.KindConnections, "token": store.KindTokens,
	"join_token": store.KindJoinTokens, "rule": store.KindRules,
}

// RecordAudit stores e as the newest entry of the audit trail in a
// transaction of its own (its id and, when unset, its time are the
// state's), dropping in it the oldest entries the retention no longer keeps
// (up to a batch; the next PruneAudit drops the rest). It is for calls that
// committed no write: a write's entry is stored with it (WithAudit).
func (s *State) RecordAudit(e api.AuditEntry) error {
	ac := s.lockAudit(e, s.opts.Now().UTC(), auditBatch)
	defer ac.end()
	if err := s.store.Update(ac.put); err != nil {
		return fmt.Errorf("recording audit entry: %w", err)
	}
	ac.keep()
	return nil
}

// PruneAudit drops the entries older than the retention's age or beyond its
// count, a batch per store transaction, and reports how many it dropped.
func (s *State) PruneAudit() (int, error) {
	a := &s.audit
	a.mu.Lock()
	defer a.mu.Unlock()
	total := 0
	for {
		drop := min(s.auditExpired(s.opts.Now().UTC(), 0), auditBatch)
		if drop == 0 {
			return total, nil
		}
		err := s.store.Update(func(tx store.Tx) error {
			for _, old := range a.entries[:drop] {
				if err := tx.Delete(store.KindAudit, old.ID); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("pruning the audit trail: %w", err)
		}
		a.entries = slices.Delete(a.entries, 0, drop)
		total += drop
	}
}

// auditExpired counts the oldest entries to drop so that adding more keeps
// the trail within the retention. The caller holds s.audit.mu.
func (s *State) auditExpired(now time.Time, more int) int {
	a := &s.audit
	drop := max(len(a.entries)+more-s.opts.AuditMaxEntries, 0)
	if s.opts.AuditMaxAge > 0 {
		cut := now.Add(-s.opts.AuditMaxAge)
		for drop < len(a.entries) && a.entries[drop].Time.Before(cut) {
			drop++
		}
	}
	return min(drop, len(a.entries))
}

// AuditFilter selects and pages audit entries. Empty fields match all.
type AuditFilter struct {
	Since, Until time.Time // Time >= Since and < Until
	Actor        string    // the actor's id or name
	Object       string    // the object's id or name
	Kind         string    // the object's kind
	Method       string
	Limit        int
	Offset       int
}

func (f AuditFilter) matches(e *api.AuditEntry) bool {
	return (f.Since.IsZero() || !e.Time.Before(f.Since)) &&
		(f.Until.IsZero() || e.Time.Before(f.Until)) &&
		(f.Actor == "" || f.Actor == e.Actor.ID || f.Actor == e.Actor.Name) &&
		(f.Object == "" || f.Object == e.ObjectID || f.Object == e.ObjectName) &&
		(f.Kind == "" || f.Kind == e.Kind) &&
		(f.Method == "" || strings.EqualFold(f.Method, e.Method))
}

// Audit lists the audit entries p may see, newest first. p sees an entry
// with audit read access in every network the entry's object is in; an
// entry in no network takes an unscoped grant.
func (s *State) Audit(p *Principal, f AuditFilter) api.List[api.AuditEntry] {
	a := &s.audit
	a.mu.RLock()
	var out []api.AuditEntry
	for k := len(a.entries) - 1; k >= 0; k-- {
		e := a.entries[k]
		if f.matches(e) && p.AllowedAll("audit", AccessRead, e.Networks) {
			out = append(out, *e)
		}
	}
	a.mu.RUnlock()
	return page(out, Filter{Limit: f.Limit, Offset: f.Offset})
}

// AuditTarget describes the object of kind (as audit entries name kinds)
// that ref (an id, or a name where the API takes one) names: its id, its
// name and the networks it is in. It reports false for an unknown object
// or kind.
func (s *State) AuditTarget(kind, ref string) (id, name string, networks []string, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.describe(s.auditObject(kind, ref), nil)
}

// auditObject returns the object of kind that ref names, or nil.
func (s *State) auditObject(kind, ref string) any {
	switch kind {
	case "network":
		if n, err := s.network(ref); err == nil {
			return n
		}
	case "host":
		if h, err := s.host(ref); err == nil {
			return h
		}
	case "interface", "device":
		if i, ok := s.ifaces[ref]; ok {
			return i
		}
	case "connection":
		if c, ok := s.conns[ref]; ok {
			return c
		}
	case "token":
		if t, ok := s.tokens[ref]; ok {
			return t
		}
	case "join_token":
		if j, ok := s.joins[ref]; ok {
			return j
		}
	case "rule":
		if r, ok := s.rules[ref]; ok {
			return r
		}
	}
	return nil
}

// describe returns an object's id, name and networks; a host is also in
// the networks of the interfaces w (when not nil) gives it. It reports
// false for a value that is not an object.
func (s *State) describe(obj any, w *write) (id, name string, networks []string, ok bool) {
	switch o := obj.(type) {
	case *api.Network:
		return o.ID, o.Name, []string{o.ID}, true
	case *api.Host:
		nets := s.hostNets(o.ID)
		if w != nil {
			for _, c := range w.changes {
				if i, ok := c.val.(*api.Interface); ok && i.HostID == o.ID && !slices.Contains(nets, i.NetworkID) {
					nets = append(nets, i.NetworkID)
				}
			}
		}
		return o.ID, o.Name, nets, true
	case *api.Interface:
		return o.ID, o.Name, []string{o.NetworkID}, true
	case *api.Connection:
		return o.ID, "", []string{o.NetworkID}, true
	case *tokenRecord:
		return o.ID, o.Name, tokenNets(&o.Token), true
	case *joinRecord:
		return o.ID, o.Name, slices.Clone(o.Networks), true
	case *api.Rule:
		return o.ID, o.Description, []string{o.NetworkID}, true
	}
	return "", "", nil, false
}

// tokenNets returns the networks a token's grants are limited to, or nil
// when one of them is not (an entry about it then takes an unscoped grant).
func tokenNets(t *api.Token) []string {
	var out []string
	for _, p := range t.Policies {
		if len(p.Networks) == 0 || t.Root {
			return nil
		}
		for _, n := range p.Networks {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// Now returns the time on the state's clock.
func (s *State) Now() time.Time { return s.opts.Now().UTC() }
