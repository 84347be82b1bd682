package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/platform"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{Server: "https://drago.example:8080"}
	tests := []struct {
		name   string
		change func(c *Config)
		field  string // "" when valid
	}{
		{"minimal", func(c *Config) {}, ""},
		{"everything", func(c *Config) {
			*c = Config{Server: "http://10.0.0.1:8080", JoinToken: "t", DataDir: "/tmp/x", Name: "h1",
				Labels: map[string]string{"a": "b"}, AdvertiseAddress: "[2001:db8::1]:51820", Backend: "auto",
				DriftInterval: time.Second, HeartbeatInterval: time.Second, Wait: time.Second,
				BackoffBase: time.Second, BackoffMax: 2 * time.Second}
		}, ""},
		{"advertise host only", func(c *Config) { c.AdvertiseAddress = "host.example" }, ""},
		{"no server", func(c *Config) { c.Server = "" }, "Server"},
		{"server without scheme", func(c *Config) { c.Server = "drago.example:8080" }, "Server"},
		{"server ftp", func(c *Config) { c.Server = "ftp://drago.example" }, "Server"},
		{"missing ca file", func(c *Config) { c.CACert = filepath.Join(t.TempDir(), "nope.pem") }, "CACert"},
		{"name with space", func(c *Config) { c.Name = "my host" }, "Name"},
		{"empty label key", func(c *Config) { c.Labels = map[string]string{"": "x"} }, "Labels"},
		{"advertise bad port", func(c *Config) { c.AdvertiseAddress = "1.2.3.4:99999" }, "AdvertiseAddress"},
		{"advertise empty host", func(c *Config) { c.AdvertiseAddress = ":51820" }, "AdvertiseAddress"},
		{"backend", func(c *Config) { c.Backend = "kernal" }, "Backend"},
		{"negative drift", func(c *Config) { c.DriftInterval = -time.Second }, "DriftInterval"},
		{"negative heartbeat", func(c *Config) { c.HeartbeatInterval = -1 }, "HeartbeatInterval"},
		{"negative wait", func(c *Config) { c.Wait = -1 }, "Wait"},
		{"base above max", func(c *Config) { c.BackoffBase, c.BackoffMax = time.Minute, time.Second }, "BackoffBase"},
	}
	for _, kind := range platform.Kinds() {
		tests = append(tests, struct {
			name   string
			change func(c *Config)
			field  string
		}{"backend " + kind, func(c *Config) { c.Backend = kind }, ""})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("Validate = %v, want nil", err)
			case tt.field != "" && (err == nil || !strings.Contains(err.Error(), tt.field+":")):
				t.Errorf("Validate = %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	host, _ := os.Hostname()
	got := Config{Server: "http://x:1"}.withDefaults()
	want := Config{
		Server: "http://x:1", DataDir: "/var/lib/drago", Name: host, Backend: "auto",
		DriftInterval: 30 * time.Second, HeartbeatInterval: time.Minute, Wait: 5 * time.Minute,
		BackoffBase: time.Second, BackoffMax: 30 * time.Second, KeyRotationInterval: 24 * time.Hour,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("withDefaults (-want +got):\n%s", d)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	// Key rotation: zero is the default, a negative value disables it.
	off := Config{Server: "http://x:1", KeyRotationInterval: KeyRotationDisabled}.withDefaults()
	if off.KeyRotationInterval != KeyRotationDisabled {
		t.Errorf("KeyRotationDisabled became %v", off.KeyRotationInterval)
	}
	if err := off.Validate(); err != nil {
		t.Errorf("disabled key rotation does not validate: %v", err)
	}
}
