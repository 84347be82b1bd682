package state

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
	"github.com/drago-wg/drago/server/store/etcdtest"
)

// TestAuditRetention: the trail keeps the newest AuditMaxEntries entries
// and none older than AuditMaxAge, in memory and in the store, on a write
// and on a prune, and reloads what it kept.
func TestAuditRetention(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := store.OpenBolt(path, store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	opts := Options{Now: func() time.Time { return now }, AuditMaxAge: time.Hour, AuditMaxEntries: 3}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := Open(st, log, opts)
	if err != nil {
		t.Fatal(err)
	}
	record := func(path string) {
		t.Helper()
		if err := s.RecordAudit(api.AuditEntry{Method: "POST", Path: path}); err != nil {
			t.Fatal(err)
		}
	}
	paths := func() []string {
		var out []string
		for _, e := range s.Audit(Trusted, AuditFilter{}).Items {
			out = append(out, e.Path)
		}
		return out
	}
	stored := func() []string {
		var out []string
		st.View(func(tx store.Tx) error {
			return tx.ForEach(store.KindAudit, func(id string, raw []byte) error {
				out = append([]string{id}, out...)
				return nil
			})
		})
		return out
	}
	ids := func() []string {
		var out []string
		for _, e := range s.Audit(Trusted, AuditFilter{}).Items {
			out = append(out, e.ID)
		}
		return out
	}
	check := func(step string, want []string) {
		t.Helper()
		if diff := cmp.Diff(want, paths()); diff != "" {
			t.Errorf("%s: entries (-want +got):\n%s", step, diff)
		}
		if diff := cmp.Diff(ids(), stored()); diff != "" {
			t.Errorf("%s: stored ids differ from the listed ones (-listed +stored):\n%s", step, diff)
		}
	}
	for _, p := range []string{"/1", "/2", "/3", "/4"} {
		record(p)
		now = now.Add(20 * time.Minute)
	}
	check("by count", []string{"/4", "/3", "/2"})
	now = now.Add(5 * time.Minute) // /2 was recorded 65 minutes ago
	if n, err := s.PruneAudit(); err != nil || n != 1 {
		t.Fatalf("PruneAudit = %d, %v; want 1", n, err)
	}
	check("by age", []string{"/4", "/3"})
	now = now.Add(time.Hour)
	record("/5")
	check("by age on a write", []string{"/5"})

	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err = store.OpenBolt(path, store.BoltOptions{}); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if s, err = Open(st, log, opts); err != nil {
		t.Fatal(err)
	}
	check("reloaded", []string{"/5"})
	record("/6")
	check("after reload", []string{"/6", "/5"})
	if l := ids(); l[0] <= l[1] {
		t.Errorf("ids %v: a later entry has no greater id", l)
	}
}

// TestAuditFilter: each filter selects its entries, newest first, and a
// scoped principal sees only entries wholly in its networks.
func TestAuditFilter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := Open(store.NewMem(), slog.New(slog.NewTextHandler(io.Discard, nil)), Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []api.AuditEntry{
		{Path: "/a", Method: "POST", Kind: "network", ObjectID: "n1", ObjectName: "a", Networks: []string{"n1"}, Actor: api.AuditActor{ID: "t1", Name: "ci"}},
		{Path: "/b", Method: "PATCH", Kind: "host", ObjectID: "h1", ObjectName: "web", Networks: []string{"n1", "n2"}, Actor: api.AuditActor{ID: "t2", Name: "ops"}},
		{Path: "/c", Method: "DELETE", Kind: "token", ObjectID: "t9", Actor: api.AuditActor{ID: "t1", Name: "ci"}},
		{Path: "/d", Method: "DELETE", Kind: "interface", ObjectID: "i1", Networks: []string{"n2"}, Actor: api.AuditActor{ID: "t1", Name: "ci"}},
	} {
		if err := s.RecordAudit(e); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	scoped := &Principal{Token: &api.Token{Name: "s", Policies: []api.Policy{{Resource: "audit", Access: "read", Networks: []string{"n1"}}}}}
	for _, tc := range []struct {
		name string
		p    *Principal
		f    AuditFilter
		want []string
	}{
		{"all", Trusted, AuditFilter{}, []string{"/d", "/c", "/b", "/a"}},
		{"page", Trusted, AuditFilter{Limit: 2, Offset: 1}, []string{"/c", "/b"}},
		{"actor id", Trusted, AuditFilter{Actor: "t1"}, []string{"/d", "/c", "/a"}},
		{"actor name", Trusted, AuditFilter{Actor: "ops"}, []string{"/b"}},
		{"object name", Trusted, AuditFilter{Object: "web"}, []string{"/b"}},
		{"object id", Trusted, AuditFilter{Object: "t9"}, []string{"/c"}},
		{"kind", Trusted, AuditFilter{Kind: "network"}, []string{"/a"}},
		{"method", Trusted, AuditFilter{Method: "delete"}, []string{"/d", "/c"}},
		{"since", Trusted, AuditFilter{Since: start.Add(2 * time.Minute)}, []string{"/d", "/c"}},
		{"until", Trusted, AuditFilter{Until: start.Add(time.Minute)}, []string{"/a"}},
		// n1 only: not the host also in n2, not the token in no network.
		{"scoped", scoped, AuditFilter{}, []string{"/a"}},
		{"no audit grant", &Principal{Token: &api.Token{Policies: []api.Policy{{Resource: "*", Access: "write", Networks: []string{"n3"}}}}}, AuditFilter{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := s.Audit(tc.p, tc.f)
			var got []string
			for _, e := range l.Items {
				got = append(got, e.Path)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestAuditPruneBatches: a prune larger than a store transaction may hold
// goes in batches, and a write drops at most one batch.
func TestAuditPruneBatches(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := store.NewMem()
	s, err := Open(st, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{Now: func() time.Time { return now }, AuditMaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for range 2*auditBatch + 50 {
		if err := s.RecordAudit(api.AuditEntry{Method: "POST"}); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(2 * time.Hour)
	if err := s.RecordAudit(api.AuditEntry{Method: "PATCH"}); err != nil {
		t.Fatal(err)
	}
	if n := s.Audit(Trusted, AuditFilter{}).Total; n != auditBatch+50+1 {
		t.Errorf("after a write: %d entries, want %d", n, auditBatch+50+1)
	}
	if n, err := s.PruneAudit(); err != nil || n != auditBatch+50 {
		t.Errorf("PruneAudit = %d, %v; want %d", n, err, auditBatch+50)
	}
	stored := 0
	st.View(func(tx store.Tx) error {
		return tx.ForEach(store.KindAudit, func(string, []byte) error { stored++; return nil })
	})
	if l := s.Audit(Trusted, AuditFilter{}); l.Total != 1 || l.Items[0].Method != "PATCH" || stored != 1 {
		t.Errorf("kept %+v, %d stored; want the PATCH alone", l.Items, stored)
	}
}

// TestAuditFollowed: two servers on one etcd store list the same trail:
// entries either records show on the other once it caught up, each once,
// in id order, and an entry one prunes leaves the other.
func TestAuditFollowed(t *testing.T) {
	a, b := twoServers(t)
	for k, s := range []*State{a, b, a} {
		if err := s.RecordAudit(api.AuditEntry{Method: "POST", Path: "/" + string(rune('a'+k))}); err != nil {
			t.Fatal(err)
		}
	}
	catchUp(t, a)
	catchUp(t, b)
	list := func(s *State) []string {
		var out []string
		for _, e := range s.Audit(Trusted, AuditFilter{}).Items {
			out = append(out, e.ID+" "+e.Path)
		}
		return out
	}
	if la, lb := list(a), list(b); len(la) != 3 || !cmp.Equal(la, lb) {
		t.Fatalf("A lists %v, B lists %v; want the same 3", la, lb)
	}
	a.opts.AuditMaxEntries = 1
	if n, err := a.PruneAudit(); err != nil || n != 2 {
		t.Fatalf("PruneAudit = %d, %v", n, err)
	}
	catchUp(t, b)
	if la, lb := list(a), list(b); len(la) != 1 || !cmp.Equal(la, lb) {
		t.Fatalf("after the prune A lists %v, B lists %v", la, lb)
	}
}

// TestAuditRestored: restoring a snapshot brings back its audit trail, in
// memory as in the store.
func TestAuditRestored(t *testing.T) {
	s, err := Open(store.NewMem(), slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	record := func(path string) {
		t.Helper()
		if err := s.RecordAudit(api.AuditEntry{Method: "POST", Path: path}); err != nil {
			t.Fatal(err)
		}
	}
	record("/kept")
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	record("/after")
	if _, err := s.Restore(snap); err != nil {
		t.Fatal(err)
	}
	l := s.Audit(Trusted, AuditFilter{})
	if l.Total != 1 || l.Items[0].Path != "/kept" {
		t.Errorf("after the restore: %+v", l.Items)
	}
}

// TestAuditCommitsWithWrite: a write through WithAudit stores its entry,
// naming the object written, in its own store transaction, on each store;
// a transaction that fails leaves neither the object nor the entry.
func TestAuditCommitsWithWrite(t *testing.T) {
	stores := map[string]func(t *testing.T) store.Store{
		"mem": func(*testing.T) store.Store { return store.NewMem() },
		"bolt": func(t *testing.T) store.Store {
			st, err := store.OpenBolt(filepath.Join(t.TempDir(), "state.db"), store.BoltOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
		"etcd": func(t *testing.T) store.Store {
			st, err := store.OpenEtcd(store.EtcdOptions{Endpoints: etcdtest.Start(t, 1).Endpoints()})
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			inner := open(t)
			t.Cleanup(func() { inner.Close() })
			st := &txStore{Store: inner}
			s := openState(t, st)
			rec := &AuditRecord{Entry: api.AuditEntry{Method: "POST", Route: "/networks", Kind: "network", Status: 201}}
			n, err := s.WithAudit(rec).CreateNetwork(api.Network{Name: "prod", IPv4Range: "10.9.0.0/24"})
			if err != nil {
				t.Fatal(err)
			}
			e := rec.Entry
			if !rec.Committed() || e.ObjectID != n.ID || e.ObjectName != "prod" || !cmp.Equal(e.Networks, []string{n.ID}) || e.ID == "" {
				t.Fatalf("committed %v, entry %+v; want network %s named prod", rec.Committed(), e, n.ID)
			}
			want := []string{store.KindNetworks + "/" + n.ID, store.KindAudit + "/" + e.ID}
			if diff := cmp.Diff(want, st.last); diff != "" {
				t.Errorf("the write's transaction put (-want +got):\n%s", diff)
			}
			// A second write of the same call stores no second entry.
			if _, err := s.WithAudit(rec).UpdateNetwork(n.ID, func(n *api.Network) error { n.MTU = 1380; return nil }); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{store.KindNetworks + "/" + n.ID}, st.last); diff != "" {
				t.Errorf("a second write of the call put (-want +got):\n%s", diff)
			}

			st.fail = true
			rec = &AuditRecord{Entry: api.AuditEntry{Method: "POST", Route: "/networks", Kind: "network", Status: 201}}
			if _, err := s.WithAudit(rec).CreateNetwork(api.Network{Name: "lost", IPv4Range: "10.10.0.0/24"}); !errors.Is(err, errCommit) {
				t.Fatalf("CreateNetwork with a failing commit: %v", err)
			}
			if rec.Committed() {
				t.Error("the failed write's entry counts as committed")
			}
			var nets, entries int
			inner.View(func(tx store.Tx) error {
				tx.ForEach(store.KindNetworks, func(string, []byte) error { nets++; return nil })
				return tx.ForEach(store.KindAudit, func(string, []byte) error { entries++; return nil })
			})
			if l := s.Audit(Trusted, AuditFilter{}); nets != 1 || entries != 1 || l.Total != 1 {
				t.Errorf("after the failed write: %d networks and %d entries stored, %d entries listed; want 1, 1, 1", nets, entries, l.Total)
			}
		})
	}
}

var errCommit = errors.New("commit failed")

// txStore is a store that notes the objects each transaction puts and, when
// fail is set, fails the transactions after their fn ran.
type txStore struct {
	store.Store
	fail bool
	last []string // kind/id of each Put of the last transaction
}

func (s *txStore) Update(fn func(store.Tx) error) error {
	return s.Store.Update(func(tx store.Tx) error {
		s.last = nil
		if err := fn(&notingTx{Tx: tx, s: s}); err != nil {
			return err
		}
		if s.fail {
			return errCommit
		}
		return nil
	})
}

type notingTx struct {
	store.Tx
	s *txStore
}

func (tx *notingTx) Put(kind, id string, v any) error {
	tx.s.last = append(tx.s.last, kind+"/"+id)
	return tx.Tx.Put(kind, id, v)
}

// BenchmarkAuditedWrite measures what the audit trail adds to a management
// write (a network's MTU changed) on bbolt with fsync: the entry goes in the
// write's own transaction, at the retention's count bound so each write also
// drops one.
func BenchmarkAuditedWrite(b *testing.B) {
	for _, audited := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "audited"}[audited], func(b *testing.B) {
			st, err := store.OpenBolt(filepath.Join(b.TempDir(), "state.db"), store.BoltOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			s, err := Open(st, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{AuditMaxEntries: 1000})
			if err != nil {
				b.Fatal(err)
			}
			n, err := s.CreateNetwork(api.Network{Name: "prod", IPv4Range: "10.9.0.0/24"})
			if err != nil {
				b.Fatal(err)
			}
			e := api.AuditEntry{Method: "PATCH", Route: "/networks/{network}", Path: "/networks/prod", Kind: "network", ObjectID: n.ID,
				Fields: map[string]string{"mtu": "1380"}, Status: 200, Remote: "192.0.2.7",
				Actor: api.AuditActor{Kind: api.ActorToken, ID: "fedcba9876543210", Name: "ci"}}
			mtu := 1300
			for b.Loop() {
				w := s
				if audited {
					w = s.WithAudit(&AuditRecord{Entry: e})
				}
				mtu = 2700 - mtu // 1300, 1400: each write changes the network
				if _, err := w.UpdateNetwork(n.ID, func(n *api.Network) error { n.MTU = mtu; return nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
