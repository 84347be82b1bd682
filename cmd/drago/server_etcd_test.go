package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/drago-wg/drago/server"
	"github.com/drago-wg/drago/server/store/etcdtest"
)

func TestCheckStoreFlags(t *testing.T) {
	ok := server.EtcdConfig{Endpoints: []string{"http://10.0.0.1:2379", "http://e2:2379/"}, Prefix: "/drago/"}
	tls := server.EtcdConfig{Endpoints: []string{"https://e1:2379"}, CACertFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem", Prefix: "/x/y/"}
	with := func(f func(*server.EtcdConfig)) server.EtcdConfig {
		c := ok
		c.Endpoints = append([]string(nil), ok.Endpoints...)
		f(&c)
		return c
	}
	for _, tc := range []struct {
		name    string
		store   string
		etcd    server.EtcdConfig
		wantErr string // "" when valid
	}{
		{"bolt", "bolt", server.EtcdConfig{Prefix: "/drago/"}, ""},
		{"etcd", "etcd", ok, ""},
		{"etcd tls", "etcd", tls, ""},
		{"unknown store", "consul", ok, `-store: "consul" is not bolt or etcd`},
		{"endpoints with bolt", "bolt", ok, "-etcd-endpoints: only used with -store etcd"},
		{"no endpoints", "etcd", server.EtcdConfig{Prefix: "/drago/"}, "-etcd-endpoints: required"},
		{"no scheme", "etcd", with(func(c *server.EtcdConfig) { c.Endpoints[0] = "e1:2379" }), `-etcd-endpoints: "e1:2379" is not http(s)://host:port`},
		{"other scheme", "etcd", with(func(c *server.EtcdConfig) { c.Endpoints[0] = "unix://e1:2379" }), "is not http(s)://host:port"},
		{"path", "etcd", with(func(c *server.EtcdConfig) { c.Endpoints[0] = "http://e1:2379/v3" }), "is not http(s)://host:port"},
		{"user", "etcd", with(func(c *server.EtcdConfig) { c.Endpoints[0] = "http://u:p@e1:2379" }), "is not http(s)://host:port"},
		{"no port", "etcd", with(func(c *server.EtcdConfig) { c.Endpoints[0] = "http://e1" }), `-etcd-endpoints: "http://e1" has no port`},
		{"bad port", "etcd", with(func(c *server.EtcdConfig) { c.Endpoints[0] = "http://e1:99999" }), "has no valid port"},
		{"mixed schemes", "etcd", with(func(c *server.EtcdConfig) { c.Endpoints[0] = "https://e1:2379" }), "mixes http:// and https://"},
		{"cert without key", "etcd", with(func(c *server.EtcdConfig) { c.Endpoints = tls.Endpoints; c.CertFile = "c.pem" }), "-etcd-cert and -etcd-key go together"},
		{"tls over http", "etcd", with(func(c *server.EtcdConfig) { c.CACertFile = "ca.pem" }), "use https://"},
		{"prefix without slash", "etcd", with(func(c *server.EtcdConfig) { c.Prefix = "drago" }), `-etcd-prefix: "drago" must start and end with "/"`},
		{"empty prefix", "etcd", with(func(c *server.EtcdConfig) { c.Prefix = "" }), "-etcd-prefix"},
		{"control in prefix", "etcd", with(func(c *server.EtcdConfig) { c.Prefix = "/a\n/" }), "-etcd-prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkStoreFlags(tc.store, tc.etcd)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("checkStoreFlags = %v, want ok", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("checkStoreFlags = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestServerStoreFlagsRefused: a bad -etcd-* value from the flags or the
// environment is a usage error naming the flag, before anything is written.
func TestServerStoreFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		name, env string
		args      []string
	}{
		{"flag", "", []string{"-store", "etcd", "-etcd-endpoints", "e1:2379"}},
		{"env", "e1:2379", []string{"-store", "etcd"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("DRAGO_SERVER_ETCD_ENDPOINTS", tc.env)
			}
			dir := t.TempDir()
			r := runDrago(t, nil, append([]string{"server", "-data-dir", dir, "-addr", "127.0.0.1:0"}, tc.args...)...)
			if r.code != exitUsage || !strings.Contains(r.stderr, "-etcd-endpoints") {
				t.Fatalf("exit %d, stderr %q; want %d naming -etcd-endpoints", r.code, r.stderr, exitUsage)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("the refused server wrote %d files to its data dir", len(entries))
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		r := runDrago(t, nil, "server", "-data-dir", t.TempDir(), "-addr", "127.0.0.1:0", "-store", "etcd", "-etcd-endpoints", "http://127.0.0.1:1")
		if r.code == exitOK || !strings.Contains(r.stderr, "http://127.0.0.1:1") || !strings.Contains(r.stderr, "store unavailable") {
			t.Fatalf("exit %d, stderr %q; want a failure naming the endpoint", r.code, r.stderr)
		}
	})
}

// TestServerEtcd runs a server on a real etcd from an HCL config, writes
// through it, and reads the write from a second server started from flags
// on the same etcd prefix.
func TestServerEtcd(t *testing.T) {
	c := etcdtest.Start(t, 1)
	dirA, dirB := t.TempDir(), t.TempDir()
	hcl := filepath.Join(t.TempDir(), "drago.hcl")
	conf := fmt.Sprintf("server {\n  data_dir = %q\n  store = \"etcd\"\n  etcd {\n    endpoints = [%q]\n    prefix = \"/cli/\"\n  }\n}\n", dirA, c.Endpoints()[0])
	if err := os.WriteFile(hcl, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	serving := regexp.MustCompile(`msg=serving .*url=(\S+)`)
	a := startDrago(t, "server", "-config", hcl, "-addr", "127.0.0.1:0")
	addrA := a.logged(t, serving)
	root, err := os.ReadFile(filepath.Join(dirA, server.RootTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DRAGO_ADDR": addrA, "DRAGO_TOKEN": strings.TrimSpace(string(root))}
	if r := runDrago(t, env, "network", "create", "-name", "shared", "-ipv4-range", "10.7.0.0/24"); r.code != exitOK {
		t.Fatalf("network create: exit %d: %s", r.code, r.stderr)
	}
	a.stop(t)

	b := startDrago(t, "server", "-data-dir", dirB, "-addr", "127.0.0.1:0", "-store", "etcd",
		"-etcd-endpoints", c.Endpoints()[0], "-etcd-prefix", "/cli/")
	env["DRAGO_ADDR"] = b.logged(t, serving)
	r := runDrago(t, env, "network", "list")
	if r.code != exitOK || !strings.Contains(r.stdout, "shared") {
		t.Fatalf("network list on the second server: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := runDrago(t, env, "status"); r.code != exitOK || !strings.Contains(r.stdout, "etcd store, 1 servers") || !strings.Contains(r.stdout, "SERVER") {
		t.Errorf("status on etcd: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dirB, server.RootTokenFile)); err == nil {
		t.Error("the second server created another root token")
	}
}
