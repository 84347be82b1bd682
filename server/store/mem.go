package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// memState is one committed version of a mem store; it is never modified
// once published, so readers need no lock.
type memState struct {
	data  map[string]map[string][]byte // kind -> id -> JSON
	index uint64
}

type memStore struct {
	wmu    sync.Mutex // serializes Update
	state  atomic.Pointer[memState]
	closed atomic.Bool
}

var _ Store = (*memStore)(nil)

// NewMem returns an empty in-memory Store with the semantics of the bbolt
// one: Update is serialized and atomic, View sees a consistent snapshot and
// runs concurrently with an Update, and values are stored as JSON so callers
// never share memory with the store.
func NewMem() Store {
	s := &memStore{}
	data := make(map[string]map[string][]byte, len(Kinds))
	for _, k := range Kinds {
		data[k] = map[string][]byte{}
	}
	s.state.Store(&memState{data: data})
	return s
}

func (s *memStore) View(fn func(Tx) error) error {
	if s.closed.Load() {
		return errClosed
	}
	return fn(&memTx{base: s.state.Load()})
}

func (s *memStore) Update(fn func(Tx) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed.Load() {
		return errClosed
	}
	tx := &memTx{base: s.state.Load(), writable: true, writes: map[string]map[string][]byte{}}
	if err := fn(tx); err != nil {
		return err
	}
	s.state.Store(tx.commit())
	return nil
}

func (s *memStore) Close() error {
	s.closed.Store(true)
	return nil
}

type memTx struct {
	base     *memState
	writable bool
	writes   map[string]map[string][]byte // kind -> id -> JSON, nil when deleted
	index    *uint64
}

var _ Tx = (*memTx)(nil)

// lookup returns the JSON of kind/id as this transaction sees it.
func (t *memTx) lookup(kind, id string) []byte {
	if raw, ok := t.writes[kind][id]; ok {
		return raw
	}
	return t.base.data[kind][id]
}

func (t *memTx) Get(kind, id string, v any) error {
	if err := checkKey(kind, id); err != nil {
		return fmt.Errorf("getting %s/%s: %w", kind, id, err)
	}
	raw := t.lookup(kind, id)
	if raw == nil {
		return fmt.Errorf("getting %s/%s: %w", kind, id, ErrNotFound)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("getting %s/%s: decoding: %w", kind, id, err)
	}
	return nil
}

func (t *memTx) Put(kind, id string, v any) error {
	if err := t.checkWrite(kind, id); err != nil {
		return fmt.Errorf("putting %s/%s: %w", kind, id, err)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("putting %s/%s: encoding: %w", kind, id, err)
	}
	t.write(kind, id, raw)
	return nil
}

func (t *memTx) Delete(kind, id string) error {
	if err := t.checkWrite(kind, id); err != nil {
		return fmt.Errorf("deleting %s/%s: %w", kind, id, err)
	}
	t.write(kind, id, nil)
	return nil
}

func (t *memTx) checkWrite(kind, id string) error {
	if !t.writable {
		return errReadOnly
	}
	return checkKey(kind, id)
}

func (t *memTx) write(kind, id string, raw []byte) {
	w := t.writes[kind]
	if w == nil {
		w = map[string][]byte{}
		t.writes[kind] = w
	}
	w[id] = raw
}

func (t *memTx) ForEach(kind string, fn func(id string, raw []byte) error) error {
	if err := checkKind(kind); err != nil {
		return fmt.Errorf("listing %s: %w", kind, err)
	}
	ids := slices.Collect(maps.Keys(t.base.data[kind]))
	for id := range t.writes[kind] {
		if _, ok := t.base.data[kind][id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids) // Go compares strings bytewise, as bbolt orders keys
	type pair struct {
		id  string
		raw []byte
	}
	pairs := make([]pair, 0, len(ids))
	for _, id := range ids {
		if raw := t.lookup(kind, id); raw != nil {
			pairs = append(pairs, pair{id, bytes.Clone(raw)})
		}
	}
	for _, p := range pairs {
		if err := fn(p.id, p.raw); err != nil {
			return err
		}
	}
	return nil
}

func (t *memTx) Index() uint64 {
	if t.index != nil {
		return *t.index
	}
	return t.base.index
}

func (t *memTx) SetIndex(i uint64) error {
	if !t.writable {
		return fmt.Errorf("setting index: %w", errReadOnly)
	}
	t.index = &i
	return nil
}

// commit returns the state with this transaction's writes applied, copying
// only the kinds it changed.
func (t *memTx) commit() *memState {
	next := &memState{data: maps.Clone(t.base.data), index: t.Index()}
	for kind, w := range t.writes {
		m := maps.Clone(next.data[kind])
		for id, raw := range w {
			if raw == nil {
				delete(m, id)
			} else {
				m[id] = raw
			}
		}
		next.data[kind] = m
	}
	return next
}
