package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// object is a stored value for tests.
type object struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Addrs []string `json:"addrs,omitempty"`
}

var errBoom = errors.New("boom")

// testStores runs fn as a subtest against a fresh store of every
// implementation, so all obey one suite.
func testStores(t *testing.T, fn func(t *testing.T, s Store)) {
	t.Helper()
	impls := []struct {
		name string
		open func(t *testing.T) Store
	}{
		{"bolt", func(t *testing.T) Store {
			s, err := OpenBolt(filepath.Join(t.TempDir(), "drago.db"), BoltOptions{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{"mem", func(*testing.T) Store { return NewMem() }},
		{"etcd", func(t *testing.T) Store { return openTestEtcd(t) }},
	}
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			s := impl.open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			fn(t, s)
		})
	}
}

func mustUpdate(t *testing.T, s Store, fn func(Tx) error) {
	t.Helper()
	if err := s.Update(fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func mustView(t *testing.T, s Store, fn func(Tx) error) {
	t.Helper()
	if err := s.View(fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// get returns kind/id read in a new View, or nil if it is missing.
func get(t *testing.T, s Store, kind, id string) *object {
	t.Helper()
	var o object
	err := s.View(func(tx Tx) error { return tx.Get(kind, id, &o) })
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("Get %s/%s: %v", kind, id, err)
	}
	return &o
}

// list returns the ids of kind in ForEach order.
func list(t *testing.T, tx Tx, kind string) []string {
	t.Helper()
	ids := []string{}
	if err := tx.ForEach(kind, func(id string, _ []byte) error {
		ids = append(ids, id)
		return nil
	}); err != nil {
		t.Fatalf("ForEach %s: %v", kind, err)
	}
	return ids
}

func index(t *testing.T, s Store) uint64 {
	t.Helper()
	var i uint64
	mustView(t, s, func(tx Tx) error { i = tx.Index(); return nil })
	return i
}

func TestStorePutGetDelete(t *testing.T) {
	testStores(t, func(t *testing.T, s Store) {
		a := object{ID: "a", Name: "alpha", Addrs: []string{"10.0.0.1/32"}}
		b := object{ID: "b", Name: "beta"}
		mustUpdate(t, s, func(tx Tx) error {
			if err := tx.Put(KindNetworks, "a", a); err != nil {
				return err
			}
			if err := tx.Put(KindHosts, "a", b); err != nil { // same id, other kind
				return err
			}
			var got object // reads see the transaction's own writes
			if err := tx.Get(KindNetworks, "a", &got); err != nil {
				return err
			}
			if diff := cmp.Diff(a, got); diff != "" {
				t.Errorf("Get in Update (-want +got):\n%s", diff)
			}
			return nil
		})
		if diff := cmp.Diff(&a, get(t, s, KindNetworks, "a")); diff != "" {
			t.Errorf("networks/a (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(&b, get(t, s, KindHosts, "a")); diff != "" {
			t.Errorf("hosts/a (-want +got):\n%s", diff)
		}

		a.Name = "alpha2" // overwrite
		mustUpdate(t, s, func(tx Tx) error { return tx.Put(KindNetworks, "a", a) })
		if diff := cmp.Diff(&a, get(t, s, KindNetworks, "a")); diff != "" {
			t.Errorf("networks/a after overwrite (-want +got):\n%s", diff)
		}

		mustUpdate(t, s, func(tx Tx) error {
			if err := tx.Delete(KindNetworks, "a"); err != nil {
				return err
			}
			return tx.Delete(KindNetworks, "missing") // not an error
		})
		if got := get(t, s, KindNetworks, "a"); got != nil {
			t.Errorf("networks/a after Delete = %+v, want not found", got)
		}
		if got := get(t, s, KindHosts, "a"); got == nil {
			t.Error("hosts/a deleted along with networks/a")
		}
	})
}

func TestStoreNotFound(t *testing.T) {
	testStores(t, func(t *testing.T, s Store) {
		mustUpdate(t, s, func(tx Tx) error {
			if err := tx.Put(KindHosts, "h", object{}); err != nil {
				return err
			}
			return tx.Delete(KindHosts, "h")
		})
		for _, kind := range Kinds {
			err := s.View(func(tx Tx) error {
				var o object
				return tx.Get(kind, "h", &o)
			})
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("Get %s/h = %v, want ErrNotFound", kind, err)
			}
			if err != nil && !strings.Contains(err.Error(), kind+"/h") {
				t.Errorf("Get %s/h error %q does not name the key", kind, err)
			}
		}
	})
}

func TestStoreInvalid(t *testing.T) {
	tests := []struct {
		name    string
		fn      func(tx Tx) error
		wantErr string
	}{
		{"get unknown kind", func(tx Tx) error { return tx.Get("nope", "a", &object{}) }, `unknown kind "nope"`},
		{"get meta", func(tx Tx) error { return tx.Get(metaKind, "version", &object{}) }, `unknown kind "meta"`},
		{"put unknown kind", func(tx Tx) error { return tx.Put("nope", "a", object{}) }, `unknown kind "nope"`},
		{"delete unknown kind", func(tx Tx) error { return tx.Delete("nope", "a") }, `unknown kind "nope"`},
		{"foreach unknown kind", func(tx Tx) error {
			return tx.ForEach("nope", func(string, []byte) error { return nil })
		}, `unknown kind "nope"`},
		{"put empty id", func(tx Tx) error { return tx.Put(KindHosts, "", object{}) }, "empty id"},
		{"put long id", func(tx Tx) error {
			return tx.Put(KindHosts, strings.Repeat("x", maxKeySize+1), object{})
		}, "longer than"},
		{"put unencodable", func(tx Tx) error { return tx.Put(KindHosts, "a", func() {}) }, "encoding"},
		{"get undecodable", func(tx Tx) error {
			if err := tx.Put(KindHosts, "a", "a string"); err != nil {
				return err
			}
			var n int
			return tx.Get(KindHosts, "a", &n)
		}, "getting hosts/a: decoding"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			testStores(t, func(t *testing.T, s Store) {
				err := s.Update(tc.fn)
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("got error %v, want one containing %q", err, tc.wantErr)
				}
			})
		})
	}
}

func TestStoreReadOnly(t *testing.T) {
	testStores(t, func(t *testing.T, s Store) {
		ops := map[string]func(tx Tx) error{
			"Put":      func(tx Tx) error { return tx.Put(KindHosts, "a", object{}) },
			"Delete":   func(tx Tx) error { return tx.Delete(KindHosts, "a") },
			"SetIndex": func(tx Tx) error { return tx.SetIndex(3) },
		}
		for name, op := range ops {
			if err := s.View(op); !errors.Is(err, errReadOnly) {
				t.Errorf("%s in View = %v, want errReadOnly", name, err)
			}
		}
		if got := get(t, s, KindHosts, "a"); got != nil {
			t.Errorf("hosts/a = %+v after Put in View, want not found", got)
		}
		if got := index(t, s); got != 0 {
			t.Errorf("Index = %d after SetIndex in View, want 0", got)
		}
	})
}

func TestStoreRollback(t *testing.T) {
	testStores(t, func(t *testing.T, s Store) {
		a := object{ID: "a", Name: "kept"}
		mustUpdate(t, s, func(tx Tx) error {
			if err := tx.Put(KindInterfaces, "a", a); err != nil {
				return err
			}
			return tx.SetIndex(1)
		})
		err := s.Update(func(tx Tx) error {
			if err := tx.Put(KindInterfaces, "b", object{ID: "b"}); err != nil {
				return err
			}
			if err := tx.Put(KindInterfaces, "a", object{ID: "a", Name: "changed"}); err != nil {
				return err
			}
			if err := tx.Delete(KindInterfaces, "a"); err != nil {
				return err
			}
			if err := tx.SetIndex(2); err != nil {
				return err
			}
			return fmt.Errorf("validating: %w", errBoom)
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("Update = %v, want the error from fn", err)
		}
		if diff := cmp.Diff(&a, get(t, s, KindInterfaces, "a")); diff != "" {
			t.Errorf("interfaces/a after rollback (-want +got):\n%s", diff)
		}
		if got := get(t, s, KindInterfaces, "b"); got != nil {
			t.Errorf("interfaces/b = %+v after rollback, want not found", got)
		}
		if got := index(t, s); got != 1 {
			t.Errorf("Index after rollback = %d, want 1", got)
		}
	})
}

func TestStorePanicRollsBack(t *testing.T) {
	testStores(t, func(t *testing.T, s Store) {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("Update did not propagate the panic")
				}
			}()
			s.Update(func(tx Tx) error {
				if err := tx.Put(KindTokens, "t", object{}); err != nil {
					return err
				}
				panic("boom")
			})
		}()
		if got := get(t, s, KindTokens, "t"); got != nil {
			t.Errorf("tokens/t = %+v after panic, want not found", got)
		}
		// The writer lock was released: a later Update does not hang.
		done := make(chan error, 1)
		go func() { done <- s.Update(func(tx Tx) error { return tx.Put(KindTokens, "u", object{}) }) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Update after panic: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Update after a panicking Update hung")
		}
	})
}

func TestStoreIndex(t *testing.T) {
	testStores(t, func(t *testing.T, s Store) {
		if got := index(t, s); got != 0 {
			t.Errorf("Index of a new store = %d, want 0", got)
		}
		var seen []uint64
		for range 3 {
			mustUpdate(t, s, func(tx Tx) error {
				next := tx.Index() + 1
				if err := tx.SetIndex(next); err != nil {
					return err
				}
				seen = append(seen, tx.Index()) // sees its own SetIndex
				return nil
			})
		}
		if diff := cmp.Diff([]uint64{1, 2, 3}, seen); diff != "" {
			t.Errorf("Index after SetIndex in Update (-want +got):\n%s", diff)
		}
		if got := index(t, s); got != 3 {
			t.Errorf("committed Index = %d, want 3", got)
		}
		s.Update(func(tx Tx) error {
			tx.SetIndex(99)
			return errBoom
		})
		if got := index(t, s); got != 3 {
			t.Errorf("Index after failed Update = %d, want 3", got)
		}
	})
}

func TestStoreForEachOrder(t *testing.T) {
	testStores(t, func(t *testing.T, s Store) {
		// Byte order: digits < upper case < lower case < multi-byte UTF-8.
		mustUpdate(t, s, func(tx Tx) error {
			for _, id := range []string{"b", "ä", "a0", "B", "9", "10", "a", "z"} {
				if err := tx.Put(KindConnections, id, object{ID: id}); err != nil {
					return err
				}
			}
			return nil
		})
		mustView(t, s, func(tx Tx) error {
			want := []string{"10", "9", "B", "a", "a0", "b", "z", "ä"}
			if diff := cmp.Diff(want, list(t, tx, KindConnections)); diff != "" {
				t.Errorf("ForEach order (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{}, list(t, tx, KindHosts)); diff != "" {
				t.Errorf("ForEach of an empty kind (-want +got):\n%s", diff)
			}
			return nil
		})
		// Inside an Update, ForEach merges uncommitted writes in order.
		mustUpdate(t, s, func(tx Tx) error {
			for _, id := range []string{"a", "z"} {
				if err := tx.Delete(KindConnections, id); err != nil {
					return err
				}
			}
			for _, id := range []string{"0", "aa", "zz"} {
				if err := tx.Put(KindConnections, id, object{ID: id}); err != nil {
					return err
				}
			}
			want := []string{"0", "10", "9", "B", "a0", "aa", "b", "zz", "ä"}
			if diff := cmp.Diff(want, list(t, tx, KindConnections)); diff != "" {
				t.Errorf("ForEach order in Update (-want +got):\n%s", diff)
			}
			return nil
		})
		// The raw values are the stored JSON, and an error stops the walk.
		var raws []string
		err := s.View(func(tx Tx) error {
			return tx.ForEach(KindConnections, func(id string, raw []byte) error {
				raws = append(raws, string(raw))
				if len(raws) == 2 {
					return errBoom
				}
				return nil
			})
		})
		if !errors.Is(err, errBoom) {
			t.Errorf("ForEach = %v, want the error from fn", err)
		}
		want := []string{`{"id":"0","name":""}`, `{"id":"10","name":""}`}
		if diff := cmp.Diff(want, raws); diff != "" {
			t.Errorf("ForEach raw values (-want +got):\n%s", diff)
		}
	})
}

func TestStoreForEachWrites(t *testing.T) {
	testStores(t, func(t *testing.T, s Store) {
		mustUpdate(t, s, func(tx Tx) error {
			for _, id := range []string{"a", "b", "c"} {
				if err := tx.Put(KindCredentials, id, object{ID: id}); err != nil {
					return err
				}
			}
			return nil
		})
		var visited []string
		mustUpdate(t, s, func(tx Tx) error {
			return tx.ForEach(KindCredentials, func(id string, _ []byte) error {
				visited = append(visited, id)
				if err := tx.Delete(KindCredentials, id); err != nil {
					return err
				}
				return tx.Put(KindCredentials, "new-"+id, object{ID: id})
			})
		})
		if diff := cmp.Diff([]string{"a", "b", "c"}, visited); diff != "" {
			t.Errorf("ForEach visits while writing (-want +got):\n%s", diff)
		}
		mustView(t, s, func(tx Tx) error {
			want := []string{"new-a", "new-b", "new-c"}
			if diff := cmp.Diff(want, list(t, tx, KindCredentials)); diff != "" {
				t.Errorf("keys after ForEach writes (-want +got):\n%s", diff)
			}
			return nil
		})
	})
}

func TestStoreNoAliasing(t *testing.T) {
	testStores(t, func(t *testing.T, s Store) {
		o := object{ID: "a", Addrs: []string{"10.0.0.1/32"}}
		want := object{ID: "a", Addrs: []string{"10.0.0.1/32"}}
		mustUpdate(t, s, func(tx Tx) error {
			if err := tx.Put(KindNetworks, "a", o); err != nil {
				return err
			}
			o.Addrs[0] = "changed in tx"
			return nil
		})
		o.Addrs[0] = "changed after commit"
		got := get(t, s, KindNetworks, "a")
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("after mutating the Put value (-want +got):\n%s", diff)
		}
		got.Addrs[0] = "changed the Get value"
		mustView(t, s, func(tx Tx) error {
			return tx.ForEach(KindNetworks, func(_ string, raw []byte) error {
				clear(raw)
				return nil
			})
		})
		if diff := cmp.Diff(&want, get(t, s, KindNetworks, "a")); diff != "" {
			t.Errorf("after mutating read values (-want +got):\n%s", diff)
		}
	})
}

// TestStoreUpdateIsolation checks that a View running while an Update is in
// progress neither waits for it nor sees its writes, and that a failed
// Update's writes are never seen by a later one.
func TestStoreUpdateIsolation(t *testing.T) {
	testStores(t, func(t *testing.T, s Store) {
		mustUpdate(t, s, func(tx Tx) error {
			if err := tx.Put(KindHosts, "a", object{Name: "v1"}); err != nil {
				return err
			}
			return tx.SetIndex(1)
		})
		for _, fail := range []bool{true, false} {
			inside, release := make(chan struct{}), make(chan struct{})
			updated := make(chan error, 1)
			go func() {
				updated <- s.Update(func(tx Tx) error {
					if err := tx.Put(KindHosts, "a", object{Name: "v2"}); err != nil {
						return err
					}
					if err := tx.Put(KindHosts, "b", object{Name: "v2"}); err != nil {
						return err
					}
					if err := tx.SetIndex(2); err != nil {
						return err
					}
					close(inside)
					<-release
					if fail {
						return errBoom
					}
					return nil
				})
			}()
			<-inside
			viewed := make(chan struct{})
			go func() {
				defer close(viewed)
				err := s.View(func(tx Tx) error {
					var a, b object
					if err := tx.Get(KindHosts, "a", &a); err != nil {
						return err
					}
					if diff := cmp.Diff(object{Name: "v1"}, a); diff != "" {
						t.Errorf("hosts/a during Update (-want +got):\n%s", diff)
					}
					if err := tx.Get(KindHosts, "b", &b); !errors.Is(err, ErrNotFound) {
						t.Errorf("hosts/b during Update: %v, want ErrNotFound", err)
					}
					if got := tx.Index(); got != 1 {
						t.Errorf("Index during Update = %d, want 1", got)
					}
					return nil
				})
				if err != nil {
					t.Errorf("View during Update: %v", err)
				}
			}()
			select {
			case <-viewed:
			case <-time.After(5 * time.Second):
				t.Fatal("View blocked by an open Update")
			}
			close(release)
			if err := <-updated; fail != errors.Is(err, errBoom) || (!fail && err != nil) {
				t.Fatalf("Update (fail=%v) = %v", fail, err)
			}
			if !fail {
				break
			}
			// The failed Update left nothing behind for the next writer.
			mustUpdate(t, s, func(tx Tx) error {
				var o object
				if err := tx.Get(KindHosts, "b", &o); !errors.Is(err, ErrNotFound) {
					t.Errorf("hosts/b in the Update after a failed one: %v, want ErrNotFound", err)
				}
				if got := tx.Index(); got != 1 {
					t.Errorf("Index in the Update after a failed one = %d, want 1", got)
				}
				return nil
			})
		}
		if diff := cmp.Diff(&object{Name: "v2"}, get(t, s, KindHosts, "b")); diff != "" {
			t.Errorf("hosts/b after commit (-want +got):\n%s", diff)
		}
		if got := index(t, s); got != 2 {
			t.Errorf("Index after commit = %d, want 2", got)
		}
	})
}

// TestStoreConcurrentReaders runs readers against a writer; each reader must
// see every Update whole (run with -race).
func TestStoreConcurrentReaders(t *testing.T) {
	testStores(t, func(t *testing.T, s Store) {
		const writes, readers = 200, 4
		type counter struct{ N uint64 }
		done := make(chan struct{})
		var wg, reading sync.WaitGroup
		reading.Add(readers)
		for range readers {
			wg.Go(func() {
				for reads := 0; ; reads++ {
					if reads == 1 {
						reading.Done()
					}
					select {
					case <-done:
						return
					default:
					}
					var x, y counter
					var i uint64
					err := s.View(func(tx Tx) error {
						i = tx.Index()
						if err := tx.Get(KindJoinTokens, "x", &x); err != nil && !errors.Is(err, ErrNotFound) {
							return err
						}
						if err := tx.Get(KindCredentials, "y", &y); err != nil && !errors.Is(err, ErrNotFound) {
							return err
						}
						return nil
					})
					if err != nil {
						t.Errorf("View: %v", err)
					}
					if x.N != i || y.N != i {
						t.Errorf("torn read: x=%d y=%d index=%d", x.N, y.N, i)
					}
				}
			})
		}
		reading.Wait() // every reader is running before the writes start
		for n := uint64(1); n <= writes; n++ {
			mustUpdate(t, s, func(tx Tx) error {
				if err := tx.Put(KindJoinTokens, "x", counter{n}); err != nil {
					return err
				}
				if err := tx.Put(KindCredentials, "y", counter{n}); err != nil {
					return err
				}
				return tx.SetIndex(n)
			})
		}
		close(done)
		wg.Wait()
	})
}

func TestStoreClosed(t *testing.T) {
	testStores(t, func(t *testing.T, s Store) {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.View(func(Tx) error { return nil }); !errors.Is(err, errClosed) {
			t.Errorf("View after Close = %v, want errClosed", err)
		}
		if err := s.Update(func(Tx) error { return nil }); !errors.Is(err, errClosed) {
			t.Errorf("Update after Close = %v, want errClosed", err)
		}
	})
}

func BenchmarkStore(b *testing.B) {
	impls := []struct {
		name string
		open func(b *testing.B) Store
	}{
		{"bolt", func(b *testing.B) Store {
			s, err := OpenBolt(filepath.Join(b.TempDir(), "drago.db"), BoltOptions{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"mem", func(*testing.B) Store { return NewMem() }},
		{"etcd", func(b *testing.B) Store { return openTestEtcd(b) }},
	}
	o := object{ID: "a", Name: "interface", Addrs: []string{"10.0.0.1/32", "fd00::1/128"}}
	for _, impl := range impls {
		b.Run(impl.name+"/Update", func(b *testing.B) {
			s := impl.open(b)
			defer s.Close()
			var i uint64
			for b.Loop() {
				i++
				if err := s.Update(func(tx Tx) error {
					if err := tx.Put(KindInterfaces, fmt.Sprint(i%1000), o); err != nil {
						return err
					}
					return tx.SetIndex(i)
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(impl.name+"/View", func(b *testing.B) {
			s := impl.open(b)
			defer s.Close()
			if err := s.Update(func(tx Tx) error { return tx.Put(KindInterfaces, "a", o) }); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				var got object
				if err := s.View(func(tx Tx) error { return tx.Get(KindInterfaces, "a", &got) }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
