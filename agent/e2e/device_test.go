//go:build linux

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drago-wg/drago/server/api"
)

// TestPlainDeviceWithWgQuick: a device added with the CLI (keys made in the
// CLI, only the public key sent) comes up with wg-quick and Debian's
// wireguard-go in its own namespace and pings an agent-managed host; deleting
// it removes it from the host.
func TestPlainDeviceWithWgQuick(t *testing.T) {
	for _, tool := range []string{"wg-quick", "wireguard-go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found (make deps installs it)", tool)
		}
	}
	l, _, hs := meshLab(t, "dgv", 1, api.TopologyMesh)
	h1 := hs[0]
	ns := l.attach("dev", "172.31.77.90")
	conf := filepath.Join(t.TempDir(), "dgphone.conf")
	out, err := exec.Command(dragoBin, "device", "add", "-address", l.url, "-token", l.root,
		"-network", "lab", "-name", "phone", "-out", conf).CombinedOutput()
	if err != nil {
		t.Fatalf("drago device add: %v\n%s", err, out)
	}
	raw, _ := os.ReadFile(conf)
	if !strings.Contains(string(raw), "PrivateKey") || !strings.Contains(string(raw), "Endpoint = 172.31.77.") {
		t.Fatalf("exported config:\n%s", raw)
	}
	wgQuick := func(verb string) ([]byte, error) {
		cmd := exec.Command("ip", "netns", "exec", ns, "wg-quick", verb, conf)
		cmd.Env = append(os.Environ(), "WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go", "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1")
		return cmd.CombinedOutput()
	}
	if out, err := wgQuick("up"); err != nil {
		t.Fatalf("wg-quick up: %v\n%s", err, out)
	}
	t.Cleanup(func() { wgQuick("down") })

	devs, err := l.client().Devices(ctx, api.ListOptions{Network: "lab"})
	if err != nil || devs.Total != 1 {
		t.Fatalf("devices: %v %v", devs, err)
	}
	dev := devs.Items[0]
	i1 := l.ifaceOf(h1)
	eventually(t, 10*time.Second, "h1's agent adds the device as a peer", func() bool {
		_, _, peers, err := l.wgDump(h1, i1.Name)
		return err == nil && peers[dev.PublicKey].PublicKey != ""
	})
	v4, _ := l.overlay(h1)
	eventually(t, 10*time.Second, "the device pings h1 over the tunnel", func() bool {
		return exec.Command("ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "0.3", v4).Run() == nil
	})

	if out, err := exec.Command(dragoBin, "device", "delete", "-address", l.url, "-token", l.root, dev.ID).CombinedOutput(); err != nil {
		t.Fatalf("drago device delete: %v\n%s", err, out)
	}
	eventually(t, 5*time.Second, "h1 drops the deleted device", func() bool {
		_, _, peers, err := l.wgDump(h1, i1.Name)
		_, still := peers[dev.PublicKey]
		return err == nil && !still
	})
}
