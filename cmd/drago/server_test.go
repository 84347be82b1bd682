package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCheckPprofAddr(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"", true},
		{"127.0.0.1:6060", true},
		{"127.1.2.3:6060", true},
		{"[::1]:6060", true},
		{"localhost:6060", true},
		{"127.0.0.1:0", true},
		{"[::ffff:127.0.0.1]:6060", true},
		{"0.0.0.0:6060", false},
		{":6060", false},
		{"[::]:6060", false},
		{"10.0.0.1:6060", false},
		{"example.com:6060", false},
		{"127.0.0.1", false},
		{"127.0.0.1:http", false},
		{"127.0.0.1:70000", false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			err := checkPprofAddr(tc.addr)
			if tc.ok != (err == nil) {
				t.Fatalf("checkPprofAddr(%q) = %v, want ok %v", tc.addr, err, tc.ok)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "-pprof-addr: ") {
				t.Errorf("error %q does not name -pprof-addr first", err)
			}
		})
	}
}

// TestServerRefusesPublicPprof: a non-loopback address, from the flag, the
// environment or the config file, stops the server before it starts.
func TestServerRefusesPublicPprof(t *testing.T) {
	hcl := filepath.Join(t.TempDir(), "drago.hcl")
	if err := os.WriteFile(hcl, []byte("server {\n  pprof_addr = \"0.0.0.0:6060\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  string
		args []string
	}{
		{"flag", "", []string{"-pprof-addr", "0.0.0.0:6060"}},
		{"env", "0.0.0.0:6060", nil},
		{"config", "", []string{"-config", hcl}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("DRAGO_SERVER_PPROF_ADDR", tc.env)
			}
			dir := t.TempDir()
			args := append([]string{"server", "-data-dir", dir, "-addr", "127.0.0.1:0"}, tc.args...)
			r := runDrago(t, nil, args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, "-pprof-addr") || !strings.Contains(r.stderr, "loopback") {
				t.Fatalf("exit %d, stderr %q; want %d naming -pprof-addr", r.code, r.stderr, exitUsage)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("the refused server wrote %d files to its data dir", len(entries))
			}
		})
	}
}

// lockedBuffer collects a running command's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runningDrago is a drago command running in-process for a test.
type runningDrago struct {
	stderr lockedBuffer
	cancel context.CancelFunc
	done   chan int
}

// startDrago runs drago with args until the test ends or stop is called.
func startDrago(t *testing.T, args ...string) *runningDrago {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &runningDrago{cancel: cancel, done: make(chan int, 1)}
	go func() {
		d.done <- run(ctx, args, &env{stdout: io.Discard, stderr: &d.stderr, getenv: func(string) string { return "" }})
	}()
	t.Cleanup(func() { d.stop(t) })
	return d
}

// logged waits up to 10 s for a log line matching re and returns its first
// submatch (or the whole match).
func (d *runningDrago) logged(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		select {
		case code := <-d.done:
			d.done <- code
			t.Fatalf("drago exited %d early; stderr:\n%s", code, d.stderr.String())
		default:
		}
		if m := re.FindStringSubmatch(d.stderr.String()); m != nil {
			return m[len(m)-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line matching %s in 10s; stderr:\n%s", re, d.stderr.String())
		}
	}
}

// stop ends the command and checks that it exits 0 within 10 s.
func (d *runningDrago) stop(t *testing.T) {
	t.Helper()
	d.cancel()
	select {
	case code := <-d.done:
		if code != exitOK {
			t.Fatalf("drago exited %d; stderr:\n%s", code, d.stderr.String())
		}
		d.done <- code
	case <-time.After(10 * time.Second):
		t.Fatal("drago did not stop in 10s")
	}
}

func TestServerPprof(t *testing.T) {
	d := startDrago(t, "server", "-dev", "-addr", "127.0.0.1:0", "-pprof-addr", "127.0.0.1:0")
	// The API's and the profiles' addresses, from the logs.
	api := d.logged(t, regexp.MustCompile(`msg=serving .*url=(\S+)`))
	prof := d.logged(t, regexp.MustCompile(`msg="serving pprof" .*url=(\S+)`))
	if !strings.HasPrefix(prof, "http://127.0.0.1:") || !strings.HasSuffix(prof, "/debug/pprof/") {
		t.Fatalf("pprof url = %q", prof)
	}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(prof); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("GET %s = %d:\n%.300s", prof, code, body)
	}
	if code, body := get(prof + "goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Errorf("GET %sgoroutine = %d:\n%.300s", prof, code, body)
	}
	// Not on the API's address.
	if code, body := get(api + "/debug/pprof/"); code != http.StatusNotFound || strings.Contains(body, "goroutine") {
		t.Errorf("GET %s/debug/pprof/ = %d:\n%.300s", api, code, body)
	}

	d.stop(t)
	if _, err := http.Get(prof); err == nil {
		t.Error("pprof still served after the server stopped")
	}
}

// TestLogFormat: -log-format json writes one JSON object a line (from the
// flag or the config file's top-level key); a bad format is a usage error.
func TestLogFormat(t *testing.T) {
	hcl := filepath.Join(t.TempDir(), "drago.hcl")
	if err := os.WriteFile(hcl, []byte("log_format = \"json\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-log-format", "json"}, {"-config", hcl}} {
		d := startDrago(t, append([]string{"server", "-dev", "-addr", "127.0.0.1:0"}, args...)...)
		d.logged(t, regexp.MustCompile(`"msg":"serving"`))
		d.stop(t)
		for _, line := range strings.Split(strings.TrimSpace(d.stderr.String()), "\n") {
			if strings.HasPrefix(line, "{") && !json.Valid([]byte(line)) {
				t.Errorf("%v: log line is not JSON: %s", args, line)
			}
		}
	}
	r := runDrago(t, nil, "server", "-dev", "-addr", "127.0.0.1:0", "-log-format", "xml")
	if r.code != exitUsage || !strings.Contains(r.stderr, "-log-format") {
		t.Fatalf("-log-format xml: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestServerAuditFlags: a bad audit retention, from a flag or the
// environment, stops the server before it starts.
func TestServerAuditFlags(t *testing.T) {
	hcl := filepath.Join(t.TempDir(), "drago.hcl")
	if err := os.WriteFile(hcl, []byte("server {\n  audit_retention = \"0s\"\n  audit_max_entries = 10\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		flag string
	}{
		{"zero age", nil, []string{"-audit-retention", "0s"}, "-audit-retention"},
		{"zero entries", nil, []string{"-audit-max-entries", "0"}, "-audit-max-entries"},
		{"too many entries", nil, []string{"-audit-max-entries", "2000000"}, "-audit-max-entries"},
		{"env", map[string]string{"DRAGO_SERVER_AUDIT_MAX_ENTRIES": "-5"}, nil, "-audit-max-entries"}, // ff reads os.Getenv
		{"config", nil, []string{"-config", hcl}, "-audit-retention"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			dir := t.TempDir()
			r := runDrago(t, nil, append([]string{"server", "-data-dir", dir, "-addr", "127.0.0.1:0"}, tc.args...)...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tc.flag) {
				t.Fatalf("exit %d, stderr %q; want %d naming %s", r.code, r.stderr, exitUsage, tc.flag)
			}
		})
	}
}
