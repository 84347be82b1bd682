package store

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// DefaultEtcdPrefix is the key prefix of an etcd store when
// EtcdOptions.Prefix is empty.
const DefaultEtcdPrefix = "/drago/"

// DefaultEtcdTimeout bounds each etcd request when EtcdOptions.Timeout is zero.
const DefaultEtcdTimeout = 5 * time.Second

const (
	// maxCompares is the largest read set checked key by key; a bigger one
	// is checked as "nothing under the prefix changed", which is coarser but
	// stays below etcd's default --max-txn-ops of 128.
	maxCompares = 100
	// maxAttempts bounds how often Update reruns fn after conflicts.
	maxAttempts = 64
	// pageSize is how many keys one range request of ForEach returns.
	pageSize = 1000
)

// ErrUnavailable wraps errors of a store that cannot be reached (etcd down
// or cut off): the write or read did not happen, or its outcome is unknown.
var ErrUnavailable = errors.New("store unavailable")

// ErrCompacted is returned by Watch when the revision to watch from is no
// longer in etcd's history.
var ErrCompacted = errors.New("store history compacted")

// ErrConflict is returned by Update when fn kept conflicting with writes of
// other servers for maxAttempts tries.
var ErrConflict = errors.New("write conflict")

// EtcdOptions configures OpenEtcd.
type EtcdOptions struct {
	// Endpoints are the etcd client URLs.
	Endpoints []string
	// TLS, when set, is the client's TLS configuration (CA, certificate).
	TLS *tls.Config
	// Prefix is prepended to every key; empty means DefaultEtcdPrefix.
	Prefix string
	// Timeout bounds each etcd request; zero means DefaultEtcdTimeout.
	Timeout time.Duration
}

// EtcdStore is a Store kept in etcd, shared by every drago server of a
// cluster. Keys are Prefix+kind+"/"+id holding the JSON value; the schema
// version and modify index live under Prefix+"meta/".
//
// Update is optimistic: fn runs against a snapshot at one etcd revision
// while its reads are recorded, and the writes commit in one etcd
// transaction only if nothing read changed since that revision; otherwise fn
// runs again on a new snapshot. Writers of one EtcdStore are serialized, so
// conflicts only arise between servers.
type EtcdStore struct {
	cli     *clientv3.Client
	prefix  string
	timeout time.Duration
	wmu     sync.Mutex
	closed  atomic.Bool
}

var _ Store = (*EtcdStore)(nil)

// OpenEtcd connects to etcd and creates the schema under the prefix, or
// checks the one found there.
func OpenEtcd(opts EtcdOptions) (*EtcdStore, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("opening etcd store: no endpoints")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultEtcdPrefix
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultEtcdTimeout
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   opts.Endpoints,
		TLS:         opts.TLS,
		DialTimeout: opts.Timeout,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("opening etcd store: %w", err)
	}
	s := &EtcdStore{cli: cli, prefix: opts.Prefix, timeout: opts.Timeout}
	if err := s.initSchema(); err != nil {
		cli.Close()
		return nil, fmt.Errorf("opening etcd store at %s: %w", strings.Join(opts.Endpoints, ","), err)
	}
	return s, nil
}

// Client returns the store's etcd client.
func (s *EtcdStore) Client() *clientv3.Client { return s.cli }

// Prefix returns the key prefix of the store.
func (s *EtcdStore) Prefix() string { return s.prefix }

func (s *EtcdStore) metaKey(name string) string { return s.prefix + metaKind + "/" + name }

// kindPrefix returns the prefix of every key of kind.
func (s *EtcdStore) kindPrefix(kind string) string { return s.prefix + kind + "/" }

// deletedKey names the marker a commit bumps when it deletes keys of kind,
// so that a transaction which listed kind notices the deletion.
func (s *EtcdStore) deletedKey(kind string) string { return s.metaKey("deleted/" + kind) }

// initSchema writes the schema version under an empty prefix, or checks it.
func (s *EtcdStore) initSchema() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	vkey := s.metaKey(string(versionKey))
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(vkey), "=", 0)).
		Then(clientv3.OpGet(s.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())).
		Else(clientv3.OpGet(vkey)).
		Commit()
	if err != nil {
		return unavailable(err)
	}
	if resp.Succeeded { // no version yet
		if n := resp.Responses[0].GetResponseRange().Count; n > 0 {
			return fmt.Errorf("prefix %q holds %d keys but no schema version: not a drago store", s.prefix, n)
		}
		_, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(vkey), "=", 0)).
			Then(clientv3.OpPut(vkey, strconv.FormatUint(SchemaVersion, 10))).
			Commit()
		return unavailable(err)
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) != 1 {
		return errors.New("reading schema version: missing")
	}
	v, err := strconv.ParseUint(string(kvs[0].Value), 10, 64)
	switch {
	case err != nil:
		return fmt.Errorf("reading schema version: %w", err)
	case v > SchemaVersion:
		return fmt.Errorf("schema version %d is newer than this drago supports (%d): upgrade drago", v, SchemaVersion)
	case v < SchemaVersion:
		return fmt.Errorf("no migration from schema version %d", v) // etcd stores start at version 3
	}
	return nil
}

// unavailable wraps an etcd client error in ErrUnavailable; it keeps nil.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, rpctypes.ErrTooManyOps) {
		return fmt.Errorf("%w (raise the etcd server's --max-txn-ops)", err)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func (s *EtcdStore) View(fn func(Tx) error) error {
	if s.closed.Load() {
		return errClosed
	}
	tx, err := s.begin(false)
	if err != nil {
		return err
	}
	return fn(tx)
}

// Update runs fn and commits its writes if nothing it read changed in the
// meantime, rerunning it otherwise (up to maxAttempts times): fn must not
// act outside tx. An error wrapping ErrUnavailable means etcd could not be
// reached; after a failed commit request the write may or may not have
// happened.
func (s *EtcdStore) Update(fn func(Tx) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for attempt := range maxAttempts {
		if s.closed.Load() {
			return errClosed
		}
		tx, err := s.begin(true)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) {
				continue // the snapshot's revision is gone: take a new one
			}
			return err
		}
		ok, err := tx.commit()
		if err != nil || ok {
			return err
		}
		// Another server wrote what fn read: back off a little, then rerun.
		time.Sleep(time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 7))))
	}
	return fmt.Errorf("committing: %w after %d attempts", ErrConflict, maxAttempts)
}

func (s *EtcdStore) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("closing etcd store: %w", err)
	}
	return nil
}

// begin reads the modify index, fixing the revision every later read of the
// transaction sees.
func (s *EtcdStore) begin(writable bool) (*etcdTx, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.metaKey(string(indexKey)))
	if err != nil {
		return nil, fmt.Errorf("reading modify index: %w", unavailable(err))
	}
	tx := &etcdTx{s: s, rev: resp.Header.Revision, writable: writable}
	if len(resp.Kvs) == 1 {
		kv := resp.Kvs[0]
		if tx.index, err = strconv.ParseUint(string(kv.Value), 10, 64); err != nil {
			return nil, fmt.Errorf("reading modify index: %w", err)
		}
		tx.indexRev = kv.ModRevision
	}
	if writable {
		tx.writes = map[string][]byte{}
		tx.reads = map[string]int64{}
		tx.listed = map[string]bool{}
	}
	return tx, nil
}

type etcdTx struct {
	s        *EtcdStore
	rev      int64 // the snapshot's revision
	writable bool
	index    uint64 // as committed at rev
	indexRev int64  // mod revision of the index key at rev (0: none)
	newIndex *uint64
	writes   map[string][]byte // key -> JSON, nil when deleted
	reads    map[string]int64  // key -> mod revision read (0: missing)
	listed   map[string]bool   // kinds listed by ForEach
}

var _ Tx = (*etcdTx)(nil)

func (t *etcdTx) key(kind, id string) string { return t.s.kindPrefix(kind) + id }

// get returns the value of key as of the snapshot, with this transaction's
// writes applied, and records the read.
func (t *etcdTx) get(key string) ([]byte, error) {
	if raw, ok := t.writes[key]; ok {
		return raw, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.s.timeout)
	defer cancel()
	resp, err := t.s.cli.Get(ctx, key, clientv3.WithRev(t.rev))
	if err != nil {
		return nil, unavailable(err)
	}
	var raw []byte
	var modRev int64
	if len(resp.Kvs) == 1 {
		raw, modRev = resp.Kvs[0].Value, resp.Kvs[0].ModRevision
	}
	if t.writable && !t.hasRead(key) {
		t.reads[key] = modRev
	}
	return raw, nil
}

// hasRead reports whether key is in the read set.
func (t *etcdTx) hasRead(key string) bool {
	_, ok := t.reads[key]
	return ok
}

func (t *etcdTx) Get(kind, id string, v any) error {
	if err := checkKey(kind, id); err != nil {
		return fmt.Errorf("getting %s/%s: %w", kind, id, err)
	}
	raw, err := t.get(t.key(kind, id))
	if err != nil {
		return fmt.Errorf("getting %s/%s: %w", kind, id, err)
	}
	if raw == nil {
		return fmt.Errorf("getting %s/%s: %w", kind, id, ErrNotFound)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("getting %s/%s: decoding: %w", kind, id, err)
	}
	return nil
}

func (t *etcdTx) Put(kind, id string, v any) error {
	if err := t.checkWrite(kind, id); err != nil {
		return fmt.Errorf("putting %s/%s: %w", kind, id, err)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("putting %s/%s: encoding: %w", kind, id, err)
	}
	t.writes[t.key(kind, id)] = raw
	return nil
}

func (t *etcdTx) Delete(kind, id string) error {
	if err := t.checkWrite(kind, id); err != nil {
		return fmt.Errorf("deleting %s/%s: %w", kind, id, err)
	}
	t.writes[t.key(kind, id)] = nil
	return nil
}

func (t *etcdTx) checkWrite(kind, id string) error {
	if !t.writable {
		return errReadOnly
	}
	return checkKey(kind, id)
}

// ForEach reads kind in pages at the snapshot's revision, merges this
// transaction's writes, then calls fn on the copies.
func (t *etcdTx) ForEach(kind string, fn func(id string, raw []byte) error) error {
	if err := checkKind(kind); err != nil {
		return fmt.Errorf("listing %s: %w", kind, err)
	}
	prefix := t.s.kindPrefix(kind)
	vals := map[string][]byte{}
	end := clientv3.GetPrefixRangeEnd(prefix)
	for from := prefix; ; {
		ctx, cancel := context.WithTimeout(context.Background(), t.s.timeout)
		resp, err := t.s.cli.Get(ctx, from, clientv3.WithRange(end), clientv3.WithRev(t.rev), clientv3.WithLimit(pageSize))
		cancel()
		if err != nil {
			return fmt.Errorf("listing %s: %w", kind, unavailable(err))
		}
		for _, kv := range resp.Kvs {
			vals[string(kv.Key)] = kv.Value
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	for key, raw := range t.writes {
		if !strings.HasPrefix(key, prefix) {
			continue
		}
		if raw == nil {
			delete(vals, key)
		} else {
			vals[key] = raw
		}
	}
	if t.writable {
		t.listed[kind] = true
	}
	for _, key := range slices.Sorted(maps.Keys(vals)) { // bytewise, as etcd and bbolt order keys
		if err := fn(strings.TrimPrefix(key, prefix), slices.Clone(vals[key])); err != nil {
			return err
		}
	}
	return nil
}

func (t *etcdTx) Index() uint64 {
	if t.newIndex != nil {
		return *t.newIndex
	}
	if t.writable {
		if key := t.s.metaKey(string(indexKey)); !t.hasRead(key) {
			t.reads[key] = t.indexRev
		}
	}
	return t.index
}

func (t *etcdTx) SetIndex(i uint64) error {
	if !t.writable {
		return fmt.Errorf("setting index: %w", errReadOnly)
	}
	t.newIndex = &i
	return nil
}

// commit writes the transaction if its read set is unchanged. It reports
// false, without error, when another writer changed what it read.
func (t *etcdTx) commit() (bool, error) {
	var ops []clientv3.Op
	deleted := map[string]bool{}
	for _, key := range slices.Sorted(maps.Keys(t.writes)) {
		raw := t.writes[key]
		if raw == nil {
			ops = append(ops, clientv3.OpDelete(key))
			kind, _, _ := strings.Cut(strings.TrimPrefix(key, t.s.prefix), "/")
			deleted[kind] = true
		} else {
			ops = append(ops, clientv3.OpPut(key, string(raw)))
		}
	}
	if t.newIndex != nil {
		ops = append(ops, clientv3.OpPut(t.s.metaKey(string(indexKey)), strconv.FormatUint(*t.newIndex, 10)))
	}
	if len(ops) == 0 {
		return true, nil // read only: the snapshot was consistent
	}
	for _, kind := range slices.Sorted(maps.Keys(deleted)) {
		ops = append(ops, clientv3.OpPut(t.s.deletedKey(kind), ""))
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.s.timeout)
	defer cancel()
	resp, err := t.s.cli.Txn(ctx).If(t.compares()...).Then(ops...).Commit()
	if err != nil {
		return false, fmt.Errorf("committing: %w", unavailable(err))
	}
	return resp.Succeeded, nil
}

// compares returns the conditions under which the transaction's reads still
// hold: each key read has the mod revision it had, and nothing was put in or
// deleted from a listed kind after the snapshot. A read set too big for one
// etcd transaction becomes "no object or meta key changed": every commit
// puts at least one such key (a delete bumps its kind's marker), so that
// holds only if no other write happened since the snapshot. The servers'
// leased keys (Member) are left out: they are not state.
func (t *etcdTx) compares() []clientv3.Cmp {
	after := t.rev + 1
	if len(t.reads)+2*len(t.listed) > maxCompares {
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(t.s.metaKey("")), "<", after).WithPrefix()}
		for _, kind := range Kinds {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(t.s.kindPrefix(kind)), "<", after).WithPrefix())
		}
		return cmps
	}
	var cmps []clientv3.Cmp
	for _, key := range slices.Sorted(maps.Keys(t.reads)) {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", t.reads[key]))
	}
	for _, kind := range slices.Sorted(maps.Keys(t.listed)) {
		cmps = append(cmps,
			clientv3.Compare(clientv3.ModRevision(t.s.kindPrefix(kind)), "<", after).WithPrefix(),
			clientv3.Compare(clientv3.ModRevision(t.s.deletedKey(kind)), "<", after))
	}
	return cmps
}

// Change is one key a commit wrote (Value set) or deleted (Value nil).
type Change struct {
	Kind, ID string
	Value    []byte
}

// Commit is one transaction committed to an etcd store, as Watch sees it.
type Commit struct {
	// Revision is the etcd revision of the commit.
	Revision int64
	// Index is the modify index the commit set; 0 if it set none.
	Index uint64
	// Changes are the objects written or deleted, in key order.
	Changes []Change
	// Live are the liveness records written (Value set) or gone (nil),
	// keyed by host id in ID; see Member.Publish.
	Live []Change
}

// Revision returns the cluster's current revision (a linearizable read).
func (s *EtcdStore) Revision(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.metaKey(string(indexKey)), clientv3.WithCountOnly())
	if err != nil {
		return 0, unavailable(err)
	}
	return resp.Header.Revision, nil
}

// Watch calls commit with every commit under the prefix after revision
// after, in revision order, and progress with the revision up to which
// every commit was delivered, until ctx ends or the watch fails (with
// ErrCompacted when after is no longer in etcd's history).
// RequestProgress asks for a progress call.
func (s *EtcdStore) Watch(ctx context.Context, after int64, commit func(Commit), progress func(rev int64)) error {
	ctx = clientv3.WithRequireLeader(ctx)
	wch := s.cli.Watch(ctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(after+1), clientv3.WithProgressNotify())
	for resp := range wch {
		if err := resp.Err(); errors.Is(err, rpctypes.ErrCompacted) {
			return fmt.Errorf("%w: watching from revision %d: %w", ErrCompacted, after+1, err)
		} else if err != nil {
			return unavailable(err)
		}
		if resp.IsProgressNotify() {
			progress(resp.Header.Revision)
			continue
		}
		var c *Commit
		for _, ev := range resp.Events {
			if c != nil && ev.Kv.ModRevision != c.Revision {
				commit(*c)
				c = nil
			}
			if c == nil {
				c = &Commit{Revision: ev.Kv.ModRevision}
			}
			s.addEvent(c, ev)
		}
		if c != nil {
			commit(*c)
			progress(c.Revision)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("%w: watch closed", ErrUnavailable)
}

// addEvent adds a watched event to its commit; meta keys other than the
// index are skipped.
func (s *EtcdStore) addEvent(c *Commit, ev *clientv3.Event) {
	key := strings.TrimPrefix(string(ev.Kv.Key), s.prefix)
	if host, ok := strings.CutPrefix(key, liveDir); ok {
		ch := Change{ID: host}
		if ev.Type == clientv3.EventTypePut {
			ch.Value = ev.Kv.Value
		}
		c.Live = append(c.Live, ch)
		return
	}
	kind, id, _ := strings.Cut(key, "/")
	if kind == metaKind {
		if id == string(indexKey) && ev.Type == clientv3.EventTypePut {
			c.Index, _ = strconv.ParseUint(string(ev.Kv.Value), 10, 64)
		}
		return
	}
	if checkKey(kind, id) != nil {
		return // not drago's key
	}
	ch := Change{Kind: kind, ID: id}
	if ev.Type == clientv3.EventTypePut {
		ch.Value = ev.Kv.Value
	}
	c.Changes = append(c.Changes, ch)
}

// RequestProgress asks the watch for a progress call (see Watch).
func (s *EtcdStore) RequestProgress(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return unavailable(s.cli.RequestProgress(clientv3.WithRequireLeader(ctx)))
}

// Revision returns the etcd revision the transaction reads at.
func (t *etcdTx) Revision() int64 { return t.rev }
