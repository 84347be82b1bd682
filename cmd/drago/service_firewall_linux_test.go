package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/drago-wg/drago/platform/platformtest"
)

// TestUninstallRemovesFirewall runs the firewall cleanup of `drago service
// uninstall -agent` in a network namespace holding drago's table and
// foreign ones: drago's goes, the others stay.
func TestUninstallRemovesFirewall(t *testing.T) {
	if os.Getenv("DRAGO_PRIVILEGED_TESTS") != "1" {
		t.Skip("set DRAGO_PRIVILEGED_TESTS=1 (as root) to change nftables in a network namespace")
	}
	ns := fmt.Sprintf("dgct-%08x", rand.Uint32())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	nft := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ip", append([]string{"netns", "exec", ns, "nft"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("nft %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	nft("add table inet drago; add chain inet drago dg-a-policy; add table ip nat; add chain ip nat POSTROUTING { type nat hook postrouting priority srcnat; }")

	var err error
	if nerr := platformtest.InNetns(ns, func() { err = removeFirewall() }); nerr != nil {
		t.Fatal(nerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	tables := nft("list", "tables")
	if strings.Contains(tables, "drago") || !strings.Contains(tables, "table ip nat") {
		t.Errorf("tables after uninstall:\n%s", tables)
	}
}
