// Package packaging_test checks the configuration files the packages ship
// against the drago binary and the systemd units: each file parses, the
// agent's refuses to run until a server is set, and the data folders of the
// configs and the units agree so that the server (user drago) and the agent
// (root) can run on one machine.
package packaging_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/drago-wg/drago/packaging/systemd"
)

// buildDrago builds cmd/drago into a temporary folder.
func buildDrago(t *testing.T) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "drago")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", exe, "github.com/drago-wg/drago/cmd/drago")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return exe
}

// dragoEnv is the environment without DRAGO_* variables, which would
// override the config file.
func dragoEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DRAGO_") {
			env = append(env, kv)
		}
	}
	return env
}

// attrs returns the string attributes of the top level and of one block of
// an HCL file, keyed "name" and "block.name"; commented lines are absent.
func attrs(t *testing.T, path string) map[string]string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	out := map[string]string{}
	var walk func(b *hclsyntax.Body, prefix string)
	walk = func(b *hclsyntax.Body, prefix string) {
		for name, a := range b.Attributes {
			v, diags := a.Expr.Value(nil)
			if diags.HasErrors() {
				t.Fatalf("%s: %s", path, diags.Error())
			}
			if v.Type() == cty.String {
				out[prefix+name] = v.AsString()
			} else {
				out[prefix+name] = v.GoString()
			}
		}
		for _, blk := range b.Blocks {
			walk(blk.Body, prefix+blk.Type+".")
		}
	}
	walk(f.Body.(*hclsyntax.Body), "")
	return out
}

func TestDataDirsMatchUnits(t *testing.T) {
	server := attrs(t, "etc/server.hcl")
	agent := attrs(t, "etc/agent.hcl")
	// The server's data_dir is the unit's StateDirectory; the agent keeps
	// its files in data_dir/agent, the agent unit's StateDirectory.
	checks := []struct{ what, unit, want string }{
		{"server StateDirectory", systemd.Server, "StateDirectory=" + strings.TrimPrefix(server["data_dir"], "/var/lib/")},
		{"server ReadWritePaths", systemd.Server, "ReadWritePaths=" + server["data_dir"]},
		{"agent StateDirectory", systemd.Agent, "StateDirectory=" + strings.TrimPrefix(agent["data_dir"], "/var/lib/") + "/agent"},
		{"agent ReadWritePaths", systemd.Agent, "ReadWritePaths=" + agent["data_dir"] + "/agent /run/wireguard"},
	}
	for _, c := range checks {
		if !strings.Contains(c.unit, "\n"+c.want+"\n") {
			t.Errorf("%s: the unit lacks the line %q", c.what, c.want)
		}
	}
	if diff := cmp.Diff("/var/lib/drago/server", server["data_dir"]); diff != "" {
		t.Errorf("server.hcl data_dir (-want +got):\n%s", diff)
	}
	// Unconfigured: no server and no join token set.
	for _, k := range []string{"agent.server", "agent.join", "agent.join_file"} {
		if v, ok := agent[k]; ok {
			t.Errorf("agent.hcl sets %s = %q; the shipped agent must be unconfigured", k, v)
		}
	}
}

// parseError matches the messages of errors in the config file itself.
var parseError = regexp.MustCompile(`config line|config key|unknown key|unknown block|config: `)

// runDrago runs drago with args and returns its exit code and stderr.
func runDrago(t *testing.T, exe string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = dragoEnv()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stderr.String()
}

// uncomment returns src with the commented key = value lines of keys
// un-commented.
func uncomment(src string, keys ...string) string {
	re := regexp.MustCompile(`(?m)^(\s*)#\s*((?:` + strings.Join(keys, "|") + `)\s*=)`)
	return re.ReplaceAllString(src, "$1$2")
}

func TestShippedAgentConfigs(t *testing.T) {
	exe := buildDrago(t)
	for _, path := range []string{"etc/agent.hcl", "windows/agent.hcl"} {
		t.Run(path, func(t *testing.T) {
			// As shipped: parsed, then refused for want of a server (a
			// usage error, exit 2), so the agent never runs unconfigured.
			code, stderr := runDrago(t, exe, "agent", "-config", path)
			if code != 2 || !strings.Contains(stderr, "Server: required") || strings.Contains(stderr, "drago: config") {
				t.Errorf("drago agent -config %s: exit %d, want 2 and \"Server: required\"; stderr:\n%s", path, code, stderr)
			}
			// Every example key, un-commented, is a known key with a valid
			// value: the run gets past parsing to the CA file check.
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			all := uncomment(string(src), "server", "join", "ca_cert", "name", "label", "advertise_address")
			if all == string(src) || strings.Contains(all, "\n  # server") {
				t.Fatal("found no commented example keys to un-comment")
			}
			variant := filepath.Join(t.TempDir(), "agent.hcl")
			if err := os.WriteFile(variant, []byte(all), 0o600); err != nil {
				t.Fatal(err)
			}
			code, stderr = runDrago(t, exe, "agent", "-config", variant)
			if code != 2 || !strings.Contains(stderr, "CACert") || parseError.MatchString(strings.ReplaceAll(stderr, "agent config: ", "")) {
				t.Errorf("drago agent with every example key: exit %d, want 2 and a CACert error after parsing; stderr:\n%s", code, stderr)
			}
		})
	}
}

func TestShippedServerConfig(t *testing.T) {
	exe := buildDrago(t)
	// The shipped file with only the data folder and the port moved: the
	// server starts, creates its root token and stops on SIGTERM.
	dir := filepath.Join(t.TempDir(), "server")
	cmd := exec.Command(exe, "server", "-config", "etc/server.hcl", "-data-dir", dir, "-addr", "127.0.0.1:0")
	cmd.Env = dragoEnv()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	started := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		started <- line
	}()
	select {
	case line := <-started:
		if !strings.Contains(line, "Created the root token in "+dir) {
			t.Fatalf("drago server -config etc/server.hcl: first line %q; stderr:\n%s", line, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("drago server -config etc/server.hcl did not start in 20s; stderr:\n%s", stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("drago server after SIGTERM: %v; stderr:\n%s", err, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "state.db")); err != nil {
		t.Error(err)
	}

	// The commented TLS and etcd blocks, un-commented, parse: the server gets
	// as far as loading the (missing) etcd CA certificate.
	src, err := os.ReadFile("etc/server.hcl")
	if err != nil {
		t.Fatal(err)
	}
	tls := regexp.MustCompile(`(?m)^(\s*)#\s*(tls \{|cert_file\s*=|key_file\s*=|store\s*=|etcd \{|endpoints\s*=|ca_cert\s*=|cert\s*=|key\s*=|prefix\s*=|\}\s*$)`).ReplaceAllString(string(src), "$1$2")
	if !strings.Contains(tls, "\n  tls {") || !strings.Contains(tls, "\n  etcd {") {
		t.Fatal("found no commented tls and etcd blocks to un-comment")
	}
	variant := filepath.Join(t.TempDir(), "server.hcl")
	if err := os.WriteFile(variant, []byte(tls), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stderr2 := runDrago(t, exe, "server", "-config", variant, "-data-dir", t.TempDir(), "-addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(stderr2, "etcd ca cert: open /etc/drago/tls/etcd-ca.crt") {
		t.Errorf("drago server with the TLS and etcd blocks: exit %d, want an etcd CA error after parsing; stderr:\n%s", code, stderr2)
	}
}
