package store

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
)

func openBolt(t *testing.T, path string) Store {
	t.Helper()
	s, err := OpenBolt(path, BoltOptions{NoSync: true})
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rawBolt runs fn in an Update on the bbolt file at path, bypassing OpenBolt.
func rawBolt(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// rawView runs fn in a View on the bbolt file at path, bypassing OpenBolt.
func rawView(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(fn); err != nil {
		t.Fatal(err)
	}
}

// layout describes a raw bbolt file: its buckets and schema version.
type layout struct {
	Buckets []string
	Version uint64
}

func readLayout(t *testing.T, path string) layout {
	t.Helper()
	var l layout
	rawView(t, path, func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			l.Buckets = append(l.Buckets, string(name))
			if string(name) == metaKind {
				if v := b.Get(versionKey); len(v) == 8 {
					l.Version = binary.BigEndian.Uint64(v)
				}
			}
			return nil
		})
	})
	return l
}

// currentLayout is the layout of a file at SchemaVersion.
func currentLayout() layout {
	l := layout{Buckets: append([]string{metaKind}, Kinds...), Version: SchemaVersion}
	slices.Sort(l.Buckets)
	return l
}

func TestBoltReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "drago.db")
	want := object{ID: "n1", Name: "office", Addrs: []string{"10.8.0.0/24"}}
	s, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, func(tx Tx) error {
		if err := tx.Put(KindNetworks, want.ID, want); err != nil {
			return err
		}
		return tx.SetIndex(42)
	})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openBolt(t, path)
	if diff := cmp.Diff(&want, get(t, s, KindNetworks, want.ID)); diff != "" {
		t.Errorf("after reopen (-want +got):\n%s", diff)
	}
	if got := index(t, s); got != 42 {
		t.Errorf("Index after reopen = %d, want 42", got)
	}
}

func TestBoltLocked(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		want    time.Duration
	}{
		{"explicit timeout", 300 * time.Millisecond, 300 * time.Millisecond},
		{"default timeout", 0, DefaultLockTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "drago.db")
			first, err := OpenBolt(path, BoltOptions{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			second, err := OpenBolt(path, BoltOptions{Timeout: tc.timeout})
			elapsed := time.Since(start)
			if err == nil {
				second.Close()
				first.Close()
				t.Fatal("second OpenBolt of a locked file succeeded")
			}
			if !errors.Is(err, ErrLocked) {
				t.Errorf("error %v does not wrap ErrLocked", err)
			}
			for _, want := range []string{path, "is another drago using this data_dir?"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			// bbolt polls the lock every 50ms and may give up one poll early.
			if elapsed < tc.want-100*time.Millisecond || elapsed > tc.want+time.Second {
				t.Errorf("OpenBolt returned after %s, want about %s", elapsed, tc.want)
			}
			// Once the holder closes, the file opens.
			if err := first.Close(); err != nil {
				t.Fatal(err)
			}
			openBolt(t, path)
		})
	}
}

func TestBoltFileMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits on Windows")
	}
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "state", "drago.db")
	openBolt(t, path)
	want := map[string]fs.FileMode{dir: 0o700, filepath.Dir(path): 0o700, path: 0o600}
	got := map[string]fs.FileMode{}
	for p := range want {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		got[p] = fi.Mode().Perm()
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("modes (-want +got):\n%s", diff)
	}
}

func TestBoltSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "drago.db")
	s, err := OpenBolt(path, BoltOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if diff := cmp.Diff(currentLayout(), readLayout(t, path)); diff != "" {
		t.Errorf("new file layout (-want +got):\n%s", diff)
	}
}

func TestMigrationsComplete(t *testing.T) {
	for v := uint64(0); v < SchemaVersion; v++ {
		if migrations[v] == nil {
			t.Errorf("no migration from schema version %d", v)
		}
	}
}

func TestBoltMigrate(t *testing.T) {
	network := object{ID: "n1", Name: "office"}
	tests := []struct {
		name string
		meta func(tx *bolt.Tx) error // lays out the meta bucket of a version 0 file
	}{
		{"no meta bucket", func(*bolt.Tx) error { return nil }},
		{"meta without version", func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket(metaBucket)
			return err
		}},
		{"version 0", func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket(metaBucket)
			if err != nil {
				return err
			}
			return putUint64(b, versionKey, 0)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "drago.db")
			rawBolt(t, path, func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte(KindNetworks)) // only bucket of the old layout
				if err != nil {
					return err
				}
				if err := b.Put([]byte(network.ID), []byte(`{"id":"n1","name":"office"}`)); err != nil {
					return err
				}
				return tc.meta(tx)
			})

			s, err := OpenBolt(path, BoltOptions{NoSync: true})
			if err != nil {
				t.Fatalf("OpenBolt of a version 0 file: %v", err)
			}
			if diff := cmp.Diff(&network, get(t, s, KindNetworks, network.ID)); diff != "" {
				t.Errorf("networks/n1 after migration (-want +got):\n%s", diff)
			}
			mustUpdate(t, s, func(tx Tx) error { return tx.Put(KindCredentials, "k", object{}) }) // new bucket usable
			s.Close()
			if diff := cmp.Diff(currentLayout(), readLayout(t, path)); diff != "" {
				t.Errorf("migrated layout (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBoltMigrationFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "drago.db")
	rawBolt(t, path, func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte(KindNetworks))
		return err
	})
	orig := migrations[0]
	t.Cleanup(func() { migrations[0] = orig })
	migrations[0] = func(tx *bolt.Tx) error {
		if err := orig(tx); err != nil {
			return err
		}
		return errBoom
	}

	_, err := OpenBolt(path, BoltOptions{NoSync: true, Timeout: 100 * time.Millisecond})
	if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), "migrating schema version 0 to 1") {
		t.Fatalf("OpenBolt = %v, want the migration's error", err)
	}
	// The failed migration changed nothing and released the lock.
	want := layout{Buckets: []string{KindNetworks}}
	if diff := cmp.Diff(want, readLayout(t, path)); diff != "" {
		t.Errorf("layout after failed migration (-want +got):\n%s", diff)
	}
}

func TestBoltFutureVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "drago.db")
	rawBolt(t, path, func(tx *bolt.Tx) error {
		if err := createBuckets(tx); err != nil {
			return err
		}
		return putUint64(tx.Bucket(metaBucket), versionKey, SchemaVersion+1)
	})
	_, err := OpenBolt(path, BoltOptions{NoSync: true, Timeout: 100 * time.Millisecond})
	if err == nil {
		t.Fatal("OpenBolt of a newer schema version succeeded")
	}
	for _, want := range []string{path, fmt.Sprintf("schema version %d is newer than this drago supports (%d)", SchemaVersion+1, SchemaVersion)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if errors.Is(err, ErrLocked) {
		t.Errorf("error %v wraps ErrLocked", err)
	}
	if got := readLayout(t, path).Version; got != SchemaVersion+1 {
		t.Errorf("version after refusal = %d, want %d", got, SchemaVersion+1)
	}
}

// crashEnv, when set, makes TestBoltCrashDurability act as the child process
// writing to the named file.
const crashEnv = "DRAGO_STORE_CRASH_CHILD"

// TestBoltCrashDurability kills a process with SIGKILL right after its Update
// returned, then checks that the write is in the file.
func TestBoltCrashDurability(t *testing.T) {
	if path := os.Getenv(crashEnv); path != "" {
		s, err := OpenBolt(path, BoltOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Update(func(tx Tx) error {
			if err := tx.Put(KindHosts, "h1", object{ID: "h1", Name: "durable"}); err != nil {
				return err
			}
			return tx.SetIndex(7)
		}); err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("committed\n")
		select {} // wait for SIGKILL, never closing the store
	}

	path := filepath.Join(t.TempDir(), "drago.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestBoltCrashDurability$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	committed := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "committed" {
				committed <- true
				return
			}
		}
		committed <- false
	}()
	select {
	case ok := <-committed:
		if !ok {
			t.Fatal("child exited without committing")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("child did not commit within 30s")
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred Close
		t.Fatal(err)
	}
	cmd.Wait()

	s := openBolt(t, path)
	want := object{ID: "h1", Name: "durable"}
	if diff := cmp.Diff(&want, get(t, s, KindHosts, "h1")); diff != "" {
		t.Errorf("write of the killed process (-want +got):\n%s", diff)
	}
	if got := index(t, s); got != 7 {
		t.Errorf("Index after crash = %d, want 7", got)
	}
}

// TestBoltMigrateOldVersions: a file of an older schema gets the current
// layout and keeps its objects. Version 1 had an unused "keys" bucket and
// version 2 no rules or audit bucket.
func TestBoltMigrateOldVersions(t *testing.T) {
	v2 := []string{metaKind, KindNetworks, KindHosts, KindInterfaces, KindConnections, KindTokens, KindJoinTokens, KindCredentials}
	tests := []struct {
		version uint64
		buckets []string
	}{
		{1, append([]string{"keys"}, v2...)},
		{2, v2},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("version %d", tc.version), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "drago.db")
			network := object{ID: "n1", Name: "office"}
			rawBolt(t, path, func(tx *bolt.Tx) error {
				for _, name := range tc.buckets {
					if _, err := tx.CreateBucket([]byte(name)); err != nil {
						return err
					}
				}
				if err := tx.Bucket([]byte(KindNetworks)).Put([]byte("n1"), []byte(`{"id":"n1","name":"office"}`)); err != nil {
					return err
				}
				return putUint64(tx.Bucket(metaBucket), versionKey, tc.version)
			})
			s, err := OpenBolt(path, BoltOptions{NoSync: true})
			if err != nil {
				t.Fatalf("OpenBolt of a version %d file: %v", tc.version, err)
			}
			if diff := cmp.Diff(&network, get(t, s, KindNetworks, network.ID)); diff != "" {
				t.Errorf("networks/n1 after migration (-want +got):\n%s", diff)
			}
			mustUpdate(t, s, func(tx Tx) error { return tx.Put(KindRules, "r1", object{}) }) // new bucket usable
			s.Close()
			if diff := cmp.Diff(currentLayout(), readLayout(t, path)); diff != "" {
				t.Errorf("migrated layout (-want +got):\n%s", diff)
			}
		})
	}
}
