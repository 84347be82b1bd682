package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drago-wg/drago/server"
	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/servertest"
	"github.com/drago-wg/drago/server/store/etcdtest"
)

// TestSnapshotBoltToEtcd moves a bbolt server's state to a server on etcd
// with drago operator snapshot save and restore.
func TestSnapshotBoltToEtcd(t *testing.T) {
	bolt := newTestServer(t)
	bolt.ok(t, "network", "create", "-name", "moved", "-ipv4-range", "10.9.0.0/24")
	bolt.ok(t, "join-token", "create", "-name", "j", "-network", "moved")
	file := filepath.Join(t.TempDir(), "drago.snap")
	out := bolt.ok(t, "operator", "snapshot", "save", file)
	if !strings.Contains(out, "Saved") {
		t.Errorf("save printed %q", out)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot file: %v, %v; want mode 0600", fi, err)
	}

	c := etcdtest.Start(t, 1)
	addr, root := servertest.Start(t, server.Config{StoreType: server.StoreEtcd, Etcd: server.EtcdConfig{Endpoints: c.Endpoints(), Prefix: "/snap/"}})
	etcd := &testServer{addr: addr, root: root}
	etcd.ok(t, "operator", "snapshot", "restore", file)
	// The bbolt server's root token is the etcd server's now.
	etcd.root = bolt.root
	if out := etcd.ok(t, "network", "list"); !strings.Contains(out, "moved") {
		t.Errorf("network list after restore: %q", out)
	}
	if out := etcd.ok(t, "join-token", "list"); !strings.Contains(out, "j") {
		t.Errorf("join-token list after restore: %q", out)
	}

	// Only the root token; a file that is not a snapshot is a usage error.
	tok := etcd.ok(t, "token", "create", "-name", "ops", "-policy", "tokens:write", "-json")
	var created api.Token
	mustUnmarshal(t, tok, &created)
	if r := runDrago(t, etcd.env(created.Secret), "operator", "snapshot", "save", file); r.code == exitOK || !strings.Contains(r.stderr, "root token") {
		t.Errorf("save with a tokens:write token: exit %d, %q; want refused naming the root token", r.code, r.stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.snap")
	os.WriteFile(bad, []byte("not json"), 0o600)
	if r := etcd.run(t, "operator", "snapshot", "restore", bad); r.code != exitUsage || !strings.Contains(r.stderr, "not a snapshot") {
		t.Errorf("restore of a bad file: exit %d, %q", r.code, r.stderr)
	}
}
