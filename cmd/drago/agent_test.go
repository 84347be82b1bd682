package main

import (
	"flag"
	"log/slog"
	"runtime/debug"
	"strings"
	"testing"
)

// TestAgentRefusesBadMemoryFlags: a non-positive -gc-percent and a pprof
// address off loopback stop the agent before it starts.
func TestAgentRefusesBadMemoryFlags(t *testing.T) {
	for _, tc := range []struct {
		name, flag string
		args       []string
	}{
		{"zero gc percent", "-gc-percent", []string{"-gc-percent", "0"}},
		{"negative gc percent", "-gc-percent", []string{"-gc-percent", "-1"}},
		{"public pprof", "-pprof-addr", []string{"-pprof-addr", "0.0.0.0:6061"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"agent", "-server", "http://127.0.0.1:1", "-join", "dgj_x", "-data-dir", t.TempDir()}, tc.args...)
			r := runDrago(t, nil, args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tc.flag) {
				t.Fatalf("exit %d, stderr %q; want %d naming %s", r.code, r.stderr, exitUsage, tc.flag)
			}
		})
	}
}

// TestSetGCPercent: the flag sets the GC target unless GOGC is set.
func TestSetGCPercent(t *testing.T) {
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })
	log := slog.New(slog.DiscardHandler)

	setGCPercent(agentGCPercent, log)
	if got := debug.SetGCPercent(100); got != agentGCPercent {
		t.Errorf("without GOGC: GC percent %d, want %d", got, agentGCPercent)
	}
	t.Setenv("GOGC", "100")
	setGCPercent(agentGCPercent, log)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC=100: GC percent %d, want 100 (GOGC wins)", got)
	}
}

// TestServersFlag: -server repeated, comma-separated, or both, ends up one
// comma-separated list.
func TestServersFlag(t *testing.T) {
	var s string
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.Var(serversFlag{&s}, "server", "")
	if err := fs.Parse([]string{"-server", "http://a:1", "-server", "http://b:2,http://c:3"}); err != nil {
		t.Fatal(err)
	}
	if s != "http://a:1,http://b:2,http://c:3" {
		t.Errorf("servers = %q", s)
	}
}
