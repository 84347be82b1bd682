package platform_test

import (
	"os"
	"testing"

	"github.com/drago-wg/drago/platform"
	"github.com/drago-wg/drago/platform/platformtest"
)

// TestDarwinConformance runs the conformance suite against the macOS
// backend for real: it needs root and changes the host's routing table
// (10.10.0.0/16, 10.20.0.0/16, fd10::/16, fd20::/16), so it runs only with
// DRAGO_PRIVILEGED_TESTS=1, on a throwaway Mac such as a CI runner. It has
// not run yet: the project has no Mac.
func TestDarwinConformance(t *testing.T) {
	if os.Getenv("DRAGO_PRIVILEGED_TESTS") != "1" {
		t.Skip("privileged test: set DRAGO_PRIVILEGED_TESTS=1 to run it (needs root; changes the routing table)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("DRAGO_PRIVILEGED_TESTS=1 but not running as root")
	}
	b, err := platform.New("auto", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	platformtest.Conformance(t, b, "dgconform0")
}
