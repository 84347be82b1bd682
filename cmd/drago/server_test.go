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

func TestServerPprof(t *testing.T) {
	var stdout, stderr lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"server", "-dev", "-addr", "127.0.0.1:0", "-pprof-addr", "127.0.0.1:0"},
			&env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }})
	}()
	// The API's and the profiles' addresses, from the logs.
	apiURL, pprofURL := regexp.MustCompile(`msg=serving .*url=(\S+)`), regexp.MustCompile(`msg="serving pprof" .*url=(\S+)`)
	var api, prof string
	deadline := time.Now().Add(10 * time.Second)
	for api == "" || prof == "" {
		select {
		case code := <-done:
			t.Fatalf("server exited %d early; stderr:\n%s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not log its addresses in 10s; stderr:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
		if m := apiURL.FindStringSubmatch(stderr.String()); m != nil {
			api = m[1]
		}
		if m := pprofURL.FindStringSubmatch(stderr.String()); m != nil {
			prof = m[1]
		}
	}
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

	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("server exited %d; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop in 10s")
	}
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
		var stderr lockedBuffer
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, append([]string{"server", "-dev", "-addr", "127.0.0.1:0"}, args...),
				&env{stdout: io.Discard, stderr: &stderr, getenv: func(string) string { return "" }})
		}()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(stderr.String(), `"msg":"serving"`) {
			if time.Now().After(deadline) {
				t.Fatalf("%v: no JSON serving line in 10s; stderr:\n%s", args, stderr.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		<-done
		for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
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
