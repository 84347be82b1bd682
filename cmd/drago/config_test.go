package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/peterbourgon/ff/v3"
)

// parseWith parses args for a flag set like the server's with the HCL parser.
func parseWith(t *testing.T, file string, env map[string]string, args ...string) (map[string]string, error) {
	t.Helper()
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(&strings.Builder{})
	fs.String("config", "", "")
	addr := fs.String("addr", "127.0.0.1:8080", "")
	dir := fs.String("data-dir", "/var/lib/drago", "")
	cert := fs.String("tls-cert-file", "", "")
	grace := fs.Duration("heartbeat-grace", 45*time.Second, "")
	labels := labelsFlag{}
	fs.Var(labels, "label", "")
	for k, v := range env {
		t.Setenv(k, v)
	}
	if file != "" {
		p := filepath.Join(t.TempDir(), "drago.hcl")
		if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"-config", p}, args...)
	}
	err := ff.Parse(fs, args, ff.WithEnvVarPrefix("DRAGO_SERVER"), ff.WithConfigFileFlag("config"), ff.WithConfigFileParser(hclParser(fs, "server")))
	return map[string]string{"addr": *addr, "data-dir": *dir, "tls-cert-file": *cert, "heartbeat-grace": grace.String(), "label": labels.String()}, err
}

func TestHCLConfig(t *testing.T) {
	const file = `
data_dir = "/srv/drago"
server {
  addr = "0.0.0.0:9000"
  heartbeat_grace = "1m"
  label = { site = "par1" }
  tls {
    cert_file = "/etc/drago/tls.crt"
  }
}
agent {
  server = "http://ignored by the server command"
}
`
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want map[string]string
	}{
		{"file over defaults", nil, nil, map[string]string{"addr": "0.0.0.0:9000", "data-dir": "/srv/drago", "tls-cert-file": "/etc/drago/tls.crt", "heartbeat-grace": "1m0s", "label": "site=par1"}},
		{"env over file", map[string]string{"DRAGO_SERVER_ADDR": "10.0.0.1:80"}, nil, map[string]string{"addr": "10.0.0.1:80", "data-dir": "/srv/drago", "tls-cert-file": "/etc/drago/tls.crt", "heartbeat-grace": "1m0s", "label": "site=par1"}},
		{"flag over env", map[string]string{"DRAGO_SERVER_ADDR": "10.0.0.1:80"}, []string{"-addr", "127.0.0.2:1"}, map[string]string{"addr": "127.0.0.2:1", "data-dir": "/srv/drago", "tls-cert-file": "/etc/drago/tls.crt", "heartbeat-grace": "1m0s", "label": "site=par1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWith(t, file, tc.env, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestHCLConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"unknown key", "server {\n  adr = \"x\"\n}\n", `config line 2: unknown key "server.adr"`},
		{"unknown top-level key", "colour = \"red\"\n", `config line 1: unknown key "colour"`},
		{"unknown block", "client {\n}\n", `config line 1: unknown block "client"`},
		{"unknown nested key", "server {\n  tls {\n    ca = \"x\"\n  }\n}\n", `unknown key "server.tls.ca"`},
		{"bad duration", "server {\n  heartbeat_grace = \"soon\"\n}\n", `config key "server.heartbeat_grace"`},
		{"bad label", "server {\n  label = [\"novalue\"]\n}\n", `config key "server.label"`},
		{"syntax", "server {\n  addr = \n", "config: "},
		{"config key in file", "config = \"other.hcl\"\n", `unknown key "config"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseWith(t, tc.file, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
