package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestCheckMetricsAddr(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		remote bool
		err    string
	}{
		{addr: ""},
		{addr: "127.0.0.1:9109"},
		{addr: "[::1]:9109"},
		{addr: "localhost:0"},
		{addr: "0.0.0.0:9109", err: "not a loopback address"},
		{addr: ":9109", err: "not a loopback address"},
		{addr: "10.0.0.5:9109", remote: true},
		{addr: "10.0.0.5", err: "not host:port"},
		{addr: "127.0.0.1:http", err: "no valid port"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			err := checkMetricsAddr(tc.addr, tc.remote)
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("checkMetricsAddr(%q, %v) = %v, want nil", tc.addr, tc.remote, err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("checkMetricsAddr(%q, %v) = %v, want %q", tc.addr, tc.remote, err, tc.err)
			}
		})
	}
}

// TestServerMetricsAddr runs drago server with metrics_addr from its HCL
// file and scrapes the listener without a token.
func TestServerMetricsAddr(t *testing.T) {
	hcl := filepath.Join(t.TempDir(), "drago.hcl")
	if err := os.WriteFile(hcl, []byte("server {\n  metrics_addr = \"127.0.0.1:0\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDrago(t, "server", "-dev", "-addr", "127.0.0.1:0", "-config", hcl)
	url := d.logged(t, regexp.MustCompile(`msg="serving metrics without authentication" .*url=(\S+)`))
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `drago_hosts{status="ready"} 0`) {
		t.Fatalf("GET %s = %d:\n%.500s", url, resp.StatusCode, b)
	}
	d.stop(t)
}

func TestAgentRefusesPublicMetrics(t *testing.T) {
	r := runDrago(t, nil, "agent", "-server", "http://127.0.0.1:1", "-join", "dgj_x", "-data-dir", t.TempDir(), "-metrics-addr", "0.0.0.0:9109")
	if r.code != exitUsage || !strings.Contains(r.stderr, "-metrics-addr") || !strings.Contains(r.stderr, "-metrics-allow-remote") {
		t.Fatalf("exit %d, stderr %q; want %d naming -metrics-addr", r.code, r.stderr, exitUsage)
	}
}
