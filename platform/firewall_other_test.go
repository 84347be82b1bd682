//go:build !linux

package platform_test

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/drago-wg/drago/platform"
)

// TestNewFirewallUnsupported: without nf_tables, NewFirewall says why, in
// the words the host status carries.
func TestNewFirewallUnsupported(t *testing.T) {
	fw, err := platform.NewFirewall(nil)
	if fw != nil || !errors.Is(err, platform.ErrFirewallUnsupported) || !strings.Contains(err.Error(), runtime.GOOS) {
		t.Fatalf("NewFirewall() = %v, %v; want ErrFirewallUnsupported naming %s", fw, err, runtime.GOOS)
	}
	t.Log(err)
}
