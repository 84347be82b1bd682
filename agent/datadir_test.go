package agent

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for _, content := range []string{"one", "two"} {
		if err := writeFileAtomic(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil || string(b) != content {
			t.Fatalf("read %q, %v; want %q", b, err, content)
		}
	}
	if runtime.GOOS != "windows" {
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries, want only the file", len(entries))
	}
}

func TestDataDirRoundTrip(t *testing.T) {
	root := t.TempDir()
	// A folder created too open is tightened, and stale temp files go.
	must(t, os.MkdirAll(filepath.Join(root, "agent"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "agent", ".desired.json.tmp-123"), nil, 0o600))
	d, err := openDataDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		fi, _ := os.Stat(d.path)
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("data dir mode = %v, want 0700", fi.Mode().Perm())
		}
	}
	if _, err := os.Stat(filepath.Join(root, "agent", ".desired.json.tmp-123")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temp file kept: %v", err)
	}

	if id, err := d.loadIdentity(); id != nil || err != nil {
		t.Errorf("loadIdentity on empty dir = %v, %v; want nil, nil", id, err)
	}
	id := &identity{HostID: "h1", Credential: "c1", Server: "http://x"}
	must(t, d.saveIdentity(id))
	got, err := d.loadIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(id, got); diff != "" {
		t.Errorf("identity (-want +got):\n%s", diff)
	}

	ds := testState(2)
	must(t, d.saveDesired(ds))
	gotDS, err := d.loadDesired()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ds, gotDS); diff != "" {
		t.Errorf("desired (-want +got):\n%s", diff)
	}

	must(t, d.saveOwned(ownedSet{"drago-b": "if-b", "drago-a": "if-a"}))
	owned, err := d.loadOwned()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"drago-a", "drago-b"}, owned.names()); diff != "" {
		t.Errorf("owned (-want +got):\n%s", diff)
	}
}

func TestLoadIdentityIncomplete(t *testing.T) {
	d, err := openDataDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	must(t, d.saveIdentity(&identity{HostID: "h1"}))
	if _, err := d.loadIdentity(); err == nil || !strings.Contains(err.Error(), "credential") {
		t.Errorf("loadIdentity = %v, want an error about the credential", err)
	}
}

func TestKeyStore(t *testing.T) {
	d, err := openDataDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ks := &keyStore{dir: d.keysDir()}
	if _, err := ks.get("if-1"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("get before create: %v, want not exist", err)
	}
	k1, created, err := ks.getOrCreate("if-1")
	if err != nil || !created {
		t.Fatalf("getOrCreate = %v, %v; want a new key", created, err)
	}
	k2, created, err := ks.getOrCreate("if-1")
	if err != nil || created || k2 != k1 {
		t.Errorf("second getOrCreate: created %v, err %v, same key %v; want the stored key", created, err, k2 == k1)
	}
	b, _ := os.ReadFile(filepath.Join(d.keysDir(), "if-1.json"))
	if !strings.Contains(string(b), `"private_key"`) || !strings.Contains(string(b), k1.String()) {
		t.Errorf("key file = %s, want the key under private_key", b)
	}
	if _, _, err := ks.getOrCreate("../escape"); err == nil {
		t.Error("getOrCreate accepted an id that escapes the folder")
	}
	ids, err := ks.list()
	if err != nil || !cmp.Equal(ids, []string{"if-1"}) {
		t.Errorf("list = %v, %v; want [if-1]", ids, err)
	}
	must(t, ks.remove("if-1"))
	must(t, ks.remove("if-1")) // idempotent
	if _, err := ks.get("if-1"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("get after remove: %v, want not exist", err)
	}

	// A corrupt key file is an error, never silently replaced.
	must(t, os.WriteFile(filepath.Join(d.keysDir(), "if-2.json"), []byte(`{"private_key":"nope"}`), 0o600))
	if _, _, err := ks.getOrCreate("if-2"); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("getOrCreate on a corrupt file = %v, want an error", err)
	}
}

// TestDesiredFileFormat: the desired state is saved compact, and a file
// saved indented by an earlier version still loads.
func TestDesiredFileFormat(t *testing.T) {
	d, err := openDataDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ds := testState(2)
	must(t, d.saveDesired(ds))
	b, err := os.ReadFile(d.file(desiredFile))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(b), "\n") != 1 || !strings.HasSuffix(string(b), "}\n") {
		t.Errorf("desired file = %s, want one line of compact JSON", b)
	}

	indented, err := json.MarshalIndent(ds, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(d.file(desiredFile), append(indented, '\n'), 0o600))
	got, err := d.loadDesired()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ds, got); diff != "" {
		t.Errorf("indented desired file (-want +got):\n%s", diff)
	}
}
