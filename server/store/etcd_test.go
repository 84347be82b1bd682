package store

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drago-wg/drago/server/store/etcdtest"
)

// testEtcd is one three-member etcd cluster shared by the package's tests,
// started by the first test that needs it; each store gets its own prefix.
var testEtcd struct {
	once    sync.Once
	cluster *etcdtest.Cluster
	dir     string
	err     error
	stores  atomic.Int64
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testEtcd.cluster != nil {
		testEtcd.cluster.Close()
		os.RemoveAll(testEtcd.dir)
	}
	os.Exit(code)
}

// sharedEtcd returns the package's etcd cluster, starting it if needed.
func sharedEtcd(tb testing.TB) *etcdtest.Cluster {
	tb.Helper()
	testEtcd.once.Do(func() {
		if testEtcd.dir, testEtcd.err = os.MkdirTemp("", "drago-etcd-"); testEtcd.err != nil {
			return
		}
		testEtcd.cluster, testEtcd.err = etcdtest.New(testEtcd.dir, 3)
	})
	if testEtcd.err != nil {
		tb.Fatalf("starting etcd: %v", testEtcd.err)
	}
	return testEtcd.cluster
}

// openTestEtcd opens an empty etcd store: a fresh prefix on the shared cluster.
func openTestEtcd(tb testing.TB) *EtcdStore {
	tb.Helper()
	return openEtcdAt(tb, sharedEtcd(tb).Endpoints(), fmt.Sprintf("/test/%d/", testEtcd.stores.Add(1)))
}

func openEtcdAt(tb testing.TB, endpoints []string, prefix string) *EtcdStore {
	tb.Helper()
	s, err := OpenEtcd(EtcdOptions{Endpoints: endpoints, Prefix: prefix})
	if err != nil {
		tb.Fatalf("OpenEtcd: %v", err)
	}
	return s
}

// TestEtcdConcurrentWriters runs read-modify-write increments from two
// stores (two servers) on one prefix at once: conflicts are retried, so no
// increment is lost.
func TestEtcdConcurrentWriters(t *testing.T) {
	c := sharedEtcd(t)
	prefix := fmt.Sprintf("/test/%d/", testEtcd.stores.Add(1))
	stores := []*EtcdStore{openEtcdAt(t, c.Endpoints(), prefix), openEtcdAt(t, c.Endpoints(), prefix)}
	t.Cleanup(func() {
		for _, s := range stores {
			s.Close()
		}
	})
	type counter struct{ N int }
	const perWriter = 25
	var wg sync.WaitGroup
	for _, s := range stores {
		for range 2 { // two writers per store: serialized locally, racing remotely
			wg.Go(func() {
				for range perWriter {
					err := s.Update(func(tx Tx) error {
						var n counter
						if err := tx.Get(KindHosts, "n", &n); err != nil && !errors.Is(err, ErrNotFound) {
							return err
						}
						n.N++
						if err := tx.Put(KindHosts, "n", n); err != nil {
							return err
						}
						return tx.SetIndex(tx.Index() + 1)
					})
					if err != nil {
						t.Errorf("Update: %v", err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	var n counter
	mustView(t, stores[1], func(tx Tx) error { return tx.Get(KindHosts, "n", &n) })
	if want := 4 * perWriter; n.N != want || index(t, stores[0]) != uint64(want) {
		t.Errorf("counter = %d, index = %d, want both %d", n.N, index(t, stores[0]), want)
	}
}

// TestEtcdConflicts interleaves a transaction with another server's write
// to what it read: the first attempt must not commit, and the rerun sees the
// other write. Each case covers one kind of read.
func TestEtcdConflicts(t *testing.T) {
	type counter struct{ N int }
	getA := func(tx Tx) error { return ignoreNotFound(tx.Get(KindHosts, "a", &counter{})) }
	many := func(tx Tx) error { // a read set beyond maxCompares
		for i := range maxCompares + 1 {
			if err := ignoreNotFound(tx.Get(KindTokens, fmt.Sprint(i), &counter{})); err != nil {
				return err
			}
		}
		return nil
	}
	tests := []struct {
		name  string
		read  func(tx Tx) error
		other func(tx Tx) error // the write racing the transaction
	}{
		{"get changed", getA, func(tx Tx) error { return tx.Put(KindHosts, "a", counter{2}) }},
		{"get deleted", getA, func(tx Tx) error { return tx.Delete(KindHosts, "a") }},
		{"get created", func(tx Tx) error { return ignoreNotFound(tx.Get(KindHosts, "new", &counter{})) },
			func(tx Tx) error { return tx.Put(KindHosts, "new", counter{}) }},
		{"index", func(tx Tx) error { tx.Index(); return nil },
			func(tx Tx) error { return tx.SetIndex(7) }},
		{"list put", func(tx Tx) error { return tx.ForEach(KindHosts, func(string, []byte) error { return nil }) },
			func(tx Tx) error { return tx.Put(KindHosts, "z", counter{}) }},
		{"list delete", func(tx Tx) error { return tx.ForEach(KindHosts, func(string, []byte) error { return nil }) },
			func(tx Tx) error { return tx.Delete(KindHosts, "b") }},
		{"many reads", many, func(tx Tx) error { return tx.Put(KindNetworks, "x", counter{}) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := sharedEtcd(t)
			prefix := fmt.Sprintf("/test/%d/", testEtcd.stores.Add(1))
			s1, s2 := openEtcdAt(t, c.Endpoints(), prefix), openEtcdAt(t, c.Endpoints(), prefix)
			defer s1.Close()
			defer s2.Close()
			mustUpdate(t, s1, func(tx Tx) error {
				for _, id := range []string{"a", "b"} {
					if err := tx.Put(KindHosts, id, counter{1}); err != nil {
						return err
					}
				}
				return nil
			})
			attempts := 0
			mustUpdate(t, s1, func(tx Tx) error {
				attempts++
				if err := tc.read(tx); err != nil {
					return err
				}
				if attempts == 1 {
					mustUpdate(t, s2, tc.other)
				}
				return tx.Put(KindJoinTokens, "result", counter{attempts})
			})
			if attempts != 2 {
				t.Errorf("fn ran %d times, want 2 (a conflict, then a commit)", attempts)
			}
			var got counter
			mustView(t, s2, func(tx Tx) error { return tx.Get(KindJoinTokens, "result", &got) })
			if got.N != 2 {
				t.Errorf("committed result of attempt %d, want 2", got.N)
			}
		})
	}
	t.Run("unrelated write", func(t *testing.T) {
		c := sharedEtcd(t)
		prefix := fmt.Sprintf("/test/%d/", testEtcd.stores.Add(1))
		s1, s2 := openEtcdAt(t, c.Endpoints(), prefix), openEtcdAt(t, c.Endpoints(), prefix)
		defer s1.Close()
		defer s2.Close()
		attempts := 0
		mustUpdate(t, s1, func(tx Tx) error {
			attempts++
			if err := tx.Get(KindHosts, "a", &counter{}); !errors.Is(err, ErrNotFound) {
				return err
			}
			if attempts == 1 {
				mustUpdate(t, s2, func(tx Tx) error { return tx.Put(KindHosts, "other", counter{}) })
			}
			return tx.Put(KindHosts, "a", counter{})
		})
		if attempts != 1 {
			t.Errorf("fn ran %d times after a write to a key it did not read, want 1", attempts)
		}
	})
}

// TestEtcdLeaderKilled writes continuously while the etcd leader is killed:
// writes resume after the election, and every acknowledged one is kept.
func TestEtcdLeaderKilled(t *testing.T) {
	c := etcdtest.Start(t, 3)
	s := openEtcdAt(t, c.Endpoints(), DefaultEtcdPrefix)
	defer s.Close()
	leader, err := c.WaitLeader(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var acked []uint64
	killed := false
	var afterKill int
	deadline := time.Now().Add(30 * time.Second)
	for n := uint64(1); afterKill < 20; n++ {
		if time.Now().After(deadline) {
			t.Fatalf("only %d writes acknowledged in 30s after the leader was killed", afterKill)
		}
		if len(acked) == 20 && !killed {
			c.Kill(leader)
			killed = true
		}
		err := s.Update(func(tx Tx) error {
			if err := tx.Put(KindHosts, fmt.Sprint(n), object{ID: fmt.Sprint(n)}); err != nil {
				return err
			}
			return tx.SetIndex(n)
		})
		if err != nil {
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Update %d: %v, want success or ErrUnavailable", n, err)
			}
			continue
		}
		acked = append(acked, n)
		if killed {
			afterKill++
		}
	}
	if l, err := c.WaitLeader(10 * time.Second); err != nil || l == leader {
		t.Fatalf("leader after kill = %d (%v), want another member than %d", l, err, leader)
	}
	var alive []string
	for i, e := range c.Endpoints() {
		if i != leader {
			alive = append(alive, e)
		}
	}
	check := openEtcdAt(t, alive, DefaultEtcdPrefix)
	defer check.Close()
	mustView(t, check, func(tx Tx) error {
		for _, n := range acked {
			var o object
			if err := tx.Get(KindHosts, fmt.Sprint(n), &o); err != nil {
				t.Errorf("acknowledged write %d: %v", n, err)
			}
		}
		if got, want := tx.Index(), acked[len(acked)-1]; got < want {
			t.Errorf("Index = %d, want at least the last acknowledged %d", got, want)
		}
		return nil
	})
}

// TestEtcdOpenErrors checks the schema checks and an unreachable cluster.
func TestEtcdOpenErrors(t *testing.T) {
	c := sharedEtcd(t)
	prefix := fmt.Sprintf("/test/%d/", testEtcd.stores.Add(1))
	raw := openEtcdAt(t, c.Endpoints(), prefix).Client()
	defer raw.Close()
	ctx := t.Context()
	for _, tc := range []struct {
		name, key, value, wantErr string
	}{
		{"foreign data", "other/x", "1", "no schema version: not a drago store"},
		{"newer schema", "meta/version", fmt.Sprint(SchemaVersion + 1), "is newer than this drago supports"},
		{"older schema", "meta/version", "1", "no migration from schema version 1"},
		{"bad version", "meta/version", "x", "reading schema version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fmt.Sprintf("/test/%d/", testEtcd.stores.Add(1))
			if _, err := raw.Put(ctx, p+tc.key, tc.value); err != nil {
				t.Fatal(err)
			}
			_, err := OpenEtcd(EtcdOptions{Endpoints: c.Endpoints(), Prefix: p})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("OpenEtcd = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		_, err := OpenEtcd(EtcdOptions{Endpoints: []string{"http://127.0.0.1:1"}, Timeout: 500 * time.Millisecond})
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("OpenEtcd of a closed port = %v, want ErrUnavailable", err)
		}
	})
}

func ignoreNotFound(err error) error {
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
