package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestDeps keeps test-only packages out of the drago binary: the etcd
// server runs inside tests (server/store/etcdtest), never in drago. It also
// keeps the Linux-only netlink and nf_tables packages out of the Windows and
// macOS builds (tailscale's deps_test.go): they stay behind build tags.
func TestDeps(t *testing.T) {
	for _, goos := range []string{"linux", "windows", "darwin"} {
		t.Run(goos, func(t *testing.T) {
			for _, pkg := range deps(t, goos, ".") {
				if strings.HasPrefix(pkg, "go.etcd.io/etcd/server/") || strings.HasSuffix(pkg, "/etcdtest") {
					t.Errorf("drago imports %s", pkg)
				}
				if goos != "linux" && (strings.HasPrefix(pkg, "github.com/google/nftables") ||
					strings.HasPrefix(pkg, "github.com/vishvananda/netlink") || strings.HasPrefix(pkg, "github.com/mdlayher/netlink")) {
					t.Errorf("drago for %s imports %s", goos, pkg)
				}
			}
		})
	}
}

// TestLayers keeps the data flow one way (STYLE.md): the wire contract
// server/api imports nothing but the standard library, and the agent
// reaches the server only through it: of this module it imports
// server/api and platform, never the server's state or store.
func TestLayers(t *testing.T) {
	const module = "github.com/drago-wg/drago/"
	tests := []struct {
		dir string
		ok  func(pkg string) bool
	}{
		{"../../server/api", func(pkg string) bool {
			return pkg == module+"server/api" || !strings.Contains(strings.Split(pkg, "/")[0], ".")
		}},
		{"../../agent", func(pkg string) bool {
			rest, ours := strings.CutPrefix(pkg, module)
			return !ours || rest == "agent" || rest == "server/api" || rest == "platform" || strings.HasPrefix(rest, "platform/")
		}},
	}
	for _, tt := range tests {
		for _, goos := range []string{"linux", "windows", "darwin"} {
			for _, pkg := range deps(t, goos, tt.dir) {
				if !tt.ok(pkg) {
					t.Errorf("%s imports %s (GOOS=%s)", tt.dir, pkg, goos)
				}
			}
		}
	}
}

// deps lists the packages the package in dir imports, itself included,
// when built for goos.
func deps(t *testing.T, goos, dir string) []string {
	t.Helper()
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "list", "-deps", dir)
	cmd.Env = append(os.Environ(), "GOOS="+goos, "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", dir, err)
	}
	return strings.Fields(string(out))
}
