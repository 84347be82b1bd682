package platform_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDepsByOS checks that the Windows and macOS builds of drago do not
// link the Linux-only netlink and nf_tables packages (tailscale's
// deps_test.go): they are kept behind build tags.
func TestDepsByOS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	banned := []string{"github.com/google/nftables", "github.com/vishvananda/netlink", "github.com/mdlayher/netlink"}
	for _, goos := range []string{"windows", "darwin"} {
		t.Run(goos, func(t *testing.T) {
			cmd := exec.Command("go", "list", "-deps", "github.com/drago-wg/drago/cmd/drago")
			cmd.Env = append(cmd.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list: %v", err)
			}
			for pkg := range strings.SplitSeq(string(out), "\n") {
				for _, b := range banned {
					if pkg == b || strings.HasPrefix(pkg, b+"/") {
						t.Errorf("the %s build imports %s", goos, pkg)
					}
				}
			}
		})
	}
}
