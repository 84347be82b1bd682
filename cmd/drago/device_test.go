package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/server/api"
)

// iniValues returns the values of key in section of a wg-quick config.
func iniValues(conf, section, key string) []string {
	var out []string
	cur := ""
	for _, l := range strings.Split(conf, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "[") {
			cur = l
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if ok && cur == section && strings.TrimSpace(k) == key {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

func TestDeviceAdd(t *testing.T) {
	ts := newTestServer(t)
	ts.ok(t, "network", "create", "-name", "prod", "-ipv4-range", "10.1.0.0/24", "-topology", "mesh", "-dns", "10.1.0.53", "-keepalive", "25")
	web := ts.addHost(t, "web-1", "prod")
	webIface := web.ifaces[0]
	dir := t.TempDir()
	confPath := filepath.Join(dir, "phone.conf")

	r := ts.run(t, "device", "add", "-network", "prod", "-name", "phone", "-ip", "10.1.0.99", "-out", confPath)
	if r.code != exitOK || r.stdout != "" {
		t.Fatalf("device add -out: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "Its private key is only in "+confPath) {
		t.Errorf("stderr: %s", r.stderr)
	}
	fi, err := os.Stat(confPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", confPath, fi.Mode().Perm())
	}
	b, err := os.ReadFile(confPath)
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)

	t.Run("config is complete", func(t *testing.T) {
		pubWeb := web.keys[webIface.ID].PublicKey().String()
		checks := []struct {
			section, key string
			want         []string
		}{
			{"[Interface]", "Address", []string{"10.1.0.99/24"}},
			{"[Interface]", "DNS", []string{"10.1.0.53"}},
			{"[Peer]", "PublicKey", []string{pubWeb}},
			{"[Peer]", "Endpoint", []string{"192.0.2.10:" + itoa(webIface.ListenPort)}},
			{"[Peer]", "AllowedIPs", []string{strings.TrimSuffix(webIface.Addresses[0], "/24") + "/32"}},
			{"[Peer]", "PersistentKeepalive", []string{"25"}},
		}
		for _, c := range checks {
			if diff := cmp.Diff(c.want, iniValues(conf, c.section, c.key)); diff != "" {
				t.Errorf("%s %s (-want +got):\n%s", c.section, c.key, diff)
			}
		}
	})

	keys := iniValues(conf, "[Interface]", "PrivateKey")
	if len(keys) != 1 {
		t.Fatalf("PrivateKey lines: %q\n%s", keys, conf)
	}
	priv, err := wgtypes.ParseKey(keys[0])
	if err != nil {
		t.Fatalf("PrivateKey %q: %v", keys[0], err)
	}

	t.Run("wg-quick strip accepts it", func(t *testing.T) {
		if _, err := exec.LookPath("wg-quick"); err != nil {
			t.Fatal("wg-quick is missing: install wireguard-tools (.ci/apt-packages)")
		}
		out, err := exec.Command("wg-quick", "strip", confPath).CombinedOutput()
		if err != nil {
			t.Fatalf("wg-quick strip: %v\n%s", err, out)
		}
		stripped := string(out)
		if !strings.Contains(stripped, "PrivateKey = "+priv.String()) || !strings.Contains(stripped, "[Peer]") || strings.Contains(stripped, "Address") {
			t.Errorf("wg-quick strip:\n%s", stripped)
		}
	})

	t.Run("the server has only the public key", func(t *testing.T) {
		var devs []api.Interface
		ts.decode(t, &devs, "device", "list", "-network", "prod")
		if len(devs) != 1 || devs[0].DeviceName != "phone" {
			t.Fatalf("device list: %+v", devs)
		}
		if devs[0].PublicKey != priv.PublicKey().String() {
			t.Errorf("stored public key %s, want %s (of the config's private key)", devs[0].PublicKey, priv.PublicKey())
		}
		var raw string
		if err := ts.client.Do(context.Background(), "GET", "/devices", nil, nil, &raw); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(raw, priv.String()) || strings.Contains(strings.ToLower(raw), "private") {
			t.Errorf("GET /devices shows the private key: %s", raw)
		}
		var dev api.Interface
		ts.decode(t, &dev, "device", "show", devs[0].ID)
		if diff := cmp.Diff(devs[0], dev); diff != "" {
			t.Errorf("device show (-want +got):\n%s", diff)
		}
		// Nor does the state database on disk.
		db, err := os.ReadFile(filepath.Join(ts.dataDir, "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(db), priv.String()) {
			t.Error("state.db holds the device's private key")
		}
		if !strings.Contains(string(db), priv.PublicKey().String()) {
			t.Error("state.db lacks the device's public key; is this the right file?")
		}
	})

	t.Run("stdout, json and qr", func(t *testing.T) {
		out := ts.ok(t, "device", "add", "-network", "prod", "-name", "laptop")
		if len(iniValues(out, "[Interface]", "PrivateKey")) != 1 || len(iniValues(out, "[Peer]", "PublicKey")) != 1 { // web-1; devices do not peer with devices
			t.Errorf("device add to stdout:\n%s", out)
		}
		var added addedDevice
		ts.decode(t, &added, "device", "add", "-network", "prod", "-name", "tablet")
		if added.Device == nil || added.Device.DeviceName != "tablet" || len(iniValues(added.Config, "[Interface]", "PrivateKey")) != 1 {
			t.Errorf("device add -json: %+v", added)
		}
		qr := ts.ok(t, "device", "add", "-network", "prod", "-name", "watch", "-qr")
		if strings.Contains(qr, "PrivateKey") || !strings.ContainsAny(qr, "█▀▄") || strings.Count(qr, "\n") < 30 {
			t.Errorf("device add -qr printed:\n%s", qr)
		}
	})

	t.Run("-out never replaces a file and registers nothing then", func(t *testing.T) {
		r := ts.run(t, "device", "add", "-network", "prod", "-name", "again", "-out", confPath)
		want := result{stderr: "drago: -out: " + confPath + " exists; choose a new file\n", code: exitUsage}
		if diff := cmp.Diff(want, r, cmp.AllowUnexported(result{})); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		var devs []api.Interface
		ts.decode(t, &devs, "device", "list")
		for _, d := range devs {
			if d.DeviceName == "again" {
				t.Errorf("device registered although -out failed: %+v", d)
			}
		}
	})

	t.Run("delete", func(t *testing.T) {
		var devs []api.Interface
		ts.decode(t, &devs, "device", "list")
		for _, d := range devs {
			if out := ts.ok(t, "device", "delete", d.ID); out != "Deleted device "+d.ID+".\n" {
				t.Errorf("device delete printed %q", out)
			}
		}
		if out := ts.ok(t, "device", "list", "-json"); strings.TrimSpace(out) != "[]" {
			t.Errorf("devices left: %s", out)
		}
		table := ts.ok(t, "device", "list")
		if strings.TrimSpace(table) != "NAME  ID  NETWORK  ADDRESSES  PUBLIC KEY" {
			t.Errorf("empty table: %q", table)
		}
	})
}
