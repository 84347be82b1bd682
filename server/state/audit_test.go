package state

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
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

// BenchmarkRecordAudit measures what the audit trail adds to a management
// write: one entry stored in a bbolt transaction of its own (with fsync),
// at the retention's count bound so each write also drops one.
func BenchmarkRecordAudit(b *testing.B) {
	st, err := store.OpenBolt(filepath.Join(b.TempDir(), "state.db"), store.BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	s, err := Open(st, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{AuditMaxEntries: 1000})
	if err != nil {
		b.Fatal(err)
	}
	e := api.AuditEntry{Method: "PATCH", Route: "/networks/{network}", Path: "/networks/prod", Kind: "network", ObjectID: "0123456789abcdef", ObjectName: "prod",
		Networks: []string{"0123456789abcdef"}, Fields: map[string]string{"mtu": "1380"}, Status: 200, Remote: "192.0.2.7",
		Actor: api.AuditActor{Kind: api.ActorToken, ID: "fedcba9876543210", Name: "ci"}}
	for b.Loop() {
		if err := s.RecordAudit(e); err != nil {
			b.Fatal(err)
		}
	}
}
