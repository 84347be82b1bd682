package state

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
)

// Snapshot reads every stored object in one store transaction.
func (s *State) Snapshot() (*api.Snapshot, error) {
	if err := s.healthy(); err != nil {
		return nil, err
	}
	snap := &api.Snapshot{Version: store.SchemaVersion, Objects: map[string]map[string]any{}}
	err := s.store.View(func(tx store.Tx) error {
		snap.Index = tx.Index()
		for _, kind := range store.Kinds {
			objs := map[string]any{}
			if err := tx.ForEach(kind, func(id string, raw []byte) error {
				var v any
				if err := json.Unmarshal(raw, &v); err != nil {
					return fmt.Errorf("decoding %s/%s: %w", kind, id, err)
				}
				objs[id] = v
				return nil
			}); err != nil {
				return err
			}
			snap.Objects[kind] = objs
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading snapshot: %w", err)
	}
	return snap, nil
}

// Restore replaces every stored object with the snapshot's, in one write
// whose index is above both the snapshot's and the current one, so that no
// agent holds an index the new state could reuse: every host is sent its
// whole state.
func (s *State) Restore(snap *api.Snapshot) (*api.SnapshotRestored, error) {
	if snap.Version != store.SchemaVersion {
		return nil, invalid("version", "the snapshot has schema version %d; this server reads %d", snap.Version, store.SchemaVersion)
	}
	for kind := range snap.Objects {
		if !slices.Contains(store.Kinds, kind) {
			return nil, invalid("objects", "unknown kind %q", kind)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.begin()
	w.index = max(s.index, snap.Index) + 1
	for h := range s.hosts {
		w.hosts.add(h)
	}
	n := 0
	var audit []store.Change // the audit trail's changes, for its memory
	for _, kind := range store.Kinds {
		objs := snap.Objects[kind]
		for _, id := range slices.Sorted(maps.Keys(objs)) {
			raw, err := json.Marshal(objs[id])
			if id == "" || objs[id] == nil || err != nil {
				return nil, invalid("objects."+kind, "an object without id or value")
			}
			v, err := decode(kind, raw)
			if err != nil {
				return nil, invalid("objects."+kind+"."+id, "%v", err)
			}
			if v == nil {
				v = json.RawMessage(raw) // a kind memory does not hold (the audit trail)
			}
			if kind == store.KindAudit {
				audit = append(audit, store.Change{Kind: kind, ID: id, Value: raw})
			}
			w.changes = append(w.changes, change{kind: kind, id: id, val: v})
			if kind == store.KindHosts {
				w.hosts.add(id)
			}
			n++
		}
		gone, err := s.storedIDs(kind)
		if err != nil {
			return nil, err
		}
		for _, id := range gone {
			if _, kept := objs[id]; !kept {
				w.changes = append(w.changes, change{kind: kind, id: id})
				if kind == store.KindAudit {
					audit = append(audit, store.Change{Kind: kind, ID: id})
				}
			}
		}
	}
	if err := w.commit(); err != nil {
		return nil, err
	}
	s.followAudit(audit)
	s.log.Warn("restored a snapshot: every stored object was replaced", "index", w.index, "objects", n)
	return &api.SnapshotRestored{Index: w.index, Objects: n}, nil
}

// storedIDs lists the ids of kind in the store.
func (s *State) storedIDs(kind string) ([]string, error) {
	var ids []string
	err := s.store.View(func(tx store.Tx) error {
		return tx.ForEach(kind, func(id string, _ []byte) error {
			ids = append(ids, id)
			return nil
		})
	})
	return ids, err
}
