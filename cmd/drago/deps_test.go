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
			cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "list", "-deps", ".")
			cmd.Env = append(os.Environ(), "GOOS="+goos, "CGO_ENABLED=0")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list -deps: %v", err)
			}
			for _, pkg := range strings.Fields(string(out)) {
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
