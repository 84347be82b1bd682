//go:build linux

package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/agent"
)

func TestParseFlagsRejectsBadValues(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		flag string // the error must name it
	}{
		{"no scenario", nil, "-scenario"},
		{"scenario 0", []string{"-scenario", "0"}, "-scenario"},
		{"scenario 7", []string{"-scenario", "7"}, "-scenario"},
		{"policy scope", []string{"-scenario", "6", "-policy-scope", "some"}, "-policy-scope"},
		{"policy scope for scenario 1", []string{"-scenario", "1", "-policy-scope", "all"}, "-policy-scope"},
		{"scenario not a number", []string{"-scenario", "two"}, "-scenario"},
		{"unknown flag", []string{"-scenario", "1", "-bogus"}, "-bogus"},
		{"positional argument", []string{"-scenario", "1", "extra"}, "extra"},
		{"too few hosts", []string{"-scenario", "1", "-hosts", "1"}, "-hosts"},
		{"too many hosts", []string{"-scenario", "2", "-hosts", "1000000"}, "-hosts"},
		{"negative hosts", []string{"-scenario", "5", "-hosts", "-3"}, "-hosts"},
		{"mesh size above hosts", []string{"-scenario", "2", "-hosts", "100", "-mesh-size", "200"}, "-mesh-size"},
		{"mesh size not a divisor", []string{"-scenario", "2", "-hosts", "1000", "-mesh-size", "300"}, "-mesh-size"},
		{"mesh size of one", []string{"-scenario", "5", "-hosts", "10", "-mesh-size", "1"}, "-mesh-size"},
		{"mesh size for scenario 1", []string{"-scenario", "1", "-mesh-size", "10"}, "-mesh-size"},
		{"changes for scenario 5", []string{"-scenario", "5", "-changes", "3"}, "-changes"},
		{"negative changes", []string{"-scenario", "2", "-changes", "-1"}, "-changes"},
		{"zero changes", []string{"-scenario", "2", "-changes", "0"}, "-changes"},
		{"zero hosts", []string{"-scenario", "2", "-hosts", "0"}, "-hosts"},
		{"zero mesh size", []string{"-scenario", "2", "-mesh-size", "0"}, "-mesh-size"},
		{"too many changes", []string{"-scenario", "3", "-changes", "5000"}, "-changes"},
		{"more rotations than hosts", []string{"-scenario", "1", "-hosts", "5", "-changes", "6"}, "-changes"},
		{"unknown change", []string{"-scenario", "1", "-change", "mtu"}, "-change"},
		{"change for scenario 2", []string{"-scenario", "2", "-change", "subnet"}, "-change"},
		{"idle for scenario 1", []string{"-scenario", "1", "-idle", "5s"}, "-idle"},
		{"idle too short", []string{"-scenario", "5", "-idle", "10ms"}, "-idle"},
		{"burst window for scenario 5", []string{"-scenario", "5", "-burst-window", "1s"}, "-burst-window"},
		{"burst window zero", []string{"-scenario", "4", "-burst-window", "0s"}, "-burst-window"},
		{"bad duration", []string{"-scenario", "4", "-heartbeat", "often"}, "-heartbeat"},
		{"heartbeat too short", []string{"-scenario", "4", "-heartbeat", "10ms"}, "-heartbeat"},
		{"wait above the server's cap", []string{"-scenario", "4", "-wait", "10m"}, "-wait"},
		{"unknown store", []string{"-scenario", "2", "-store", "consul"}, "-store"},
		{"etcd members with bolt", []string{"-scenario", "2", "-etcd-members", "1"}, "-etcd-members"},
		{"etcd endpoints with bolt", []string{"-scenario", "2", "-etcd-endpoints", "http://127.0.0.1:2379"}, "-etcd-endpoints"},
		{"zero etcd members", []string{"-scenario", "2", "-store", "etcd", "-etcd-members", "0"}, "-etcd-members"},
		{"too many etcd members", []string{"-scenario", "2", "-store", "etcd", "-etcd-members", "9"}, "-etcd-members"},
		{"etcd members and endpoints", []string{"-scenario", "2", "-store", "etcd", "-etcd-members", "3", "-etcd-endpoints", "http://127.0.0.1:2379"}, "-etcd-members"},
		{"etcd endpoint without port", []string{"-scenario", "2", "-store", "etcd", "-etcd-endpoints", "http://127.0.0.1"}, "-etcd-endpoints"},
		{"etcd endpoint https", []string{"-scenario", "2", "-store", "etcd", "-etcd-endpoints", "https://127.0.0.1:2379"}, "-etcd-endpoints"},
		{"etcd endpoint not a URL", []string{"-scenario", "2", "-store", "etcd", "-etcd-endpoints", "127.0.0.1:2379"}, "-etcd-endpoints"},
		{"negative conn idle", []string{"-scenario", "4", "-conn-idle", "-1s"}, "-conn-idle"},
		{"zero setup concurrency", []string{"-scenario", "2", "-setup-concurrency", "0"}, "-setup-concurrency"},
		{"negative settle", []string{"-scenario", "2", "-settle", "-1s"}, "-settle"},
		{"server binary missing", []string{"-scenario", "2", "-server-bin", "/nonexistent/drago"}, "-server-bin"},
		{"server binary not executable", []string{"-scenario", "2", "-server-bin", file}, "-server-bin"},
		{"server binary with pprof", []string{"-scenario", "2", "-server-bin", file, "-pprof", t.TempDir()}, "-server-bin"},
		{"agent dir missing", []string{"-scenario", "2", "-agent-dir", "/nonexistent"}, "-agent-dir"},
		{"agent dir is a file", []string{"-scenario", "2", "-agent-dir", file}, "-agent-dir"},
		{"pprof dir missing", []string{"-scenario", "2", "-pprof", "/nonexistent"}, "-pprof"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args, io.Discard)
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("parseFlags(%q) = %v, want a usage error", tc.args, err)
			}
			if !strings.Contains(err.Error(), tc.flag) {
				t.Errorf("parseFlags(%q) = %q, want it to name %s", tc.args, err, tc.flag)
			}
		})
	}
}

func TestParseFlagsDefaults(t *testing.T) {
	base := config{
		Change: changeRotate, PolicyScope: policyScopeDB, Idle: time.Minute, BurstWindow: 2 * time.Second, SetupConcurrency: 256,
		Heartbeat: agent.DefaultHeartbeatInterval, Wait: agent.DefaultWait, Drift: time.Hour, ChangeTimeout: 5 * time.Minute,
		SetupTimeout: 30 * time.Minute, Settle: 500 * time.Millisecond, AgentDir: "/dev/shm", ServerDir: os.TempDir(),
		Store: storeBolt, EtcdMembers: 3,
	}
	with := func(f func(*config)) config {
		c := base
		f(&c)
		return c
	}
	for _, tc := range []struct {
		args []string
		want config
	}{
		{[]string{"-scenario", "1"}, with(func(c *config) { c.Scenario, c.Hosts, c.MeshSize, c.Changes = 1, 1000, 1000, 10 })},
		{[]string{"-scenario", "1", "-change", "subnet"}, with(func(c *config) {
			c.Scenario, c.Hosts, c.MeshSize, c.Changes, c.Change = 1, 1000, 1000, 10, changeSubnet
		})},
		{[]string{"-scenario", "2"}, with(func(c *config) { c.Scenario, c.Hosts, c.MeshSize, c.Changes = 2, 10_000, 100, 20 })},
		{[]string{"-scenario", "2", "-hosts", "1000"}, with(func(c *config) { c.Scenario, c.Hosts, c.MeshSize, c.Changes = 2, 1000, 100, 20 })},
		{[]string{"-scenario", "3"}, with(func(c *config) { c.Scenario, c.Hosts, c.Changes = 3, 10_000, 5 })},
		{[]string{"-scenario", "2", "-store", "etcd", "-etcd-members", "1"}, with(func(c *config) {
			c.Scenario, c.Hosts, c.MeshSize, c.Changes, c.Store, c.EtcdMembers = 2, 10_000, 100, 20, storeEtcd, 1
		})},
		{[]string{"-scenario", "2", "-store", "etcd", "-etcd-endpoints", "http://10.0.0.1:2379,http://10.0.0.2:2379"}, with(func(c *config) {
			c.Scenario, c.Hosts, c.MeshSize, c.Changes, c.Store = 2, 10_000, 100, 20, storeEtcd
			c.EtcdEndpoints = []string{"http://10.0.0.1:2379", "http://10.0.0.2:2379"}
		})},
		{[]string{"-scenario", "4", "-burst-window", "5s"}, with(func(c *config) {
			c.Scenario, c.Hosts, c.MeshSize, c.BurstWindow = 4, 1000, 1000, 5*time.Second
		})},
		{[]string{"-scenario", "5", "-hosts", "20", "-mesh-size", "5", "-idle", "3s"}, with(func(c *config) {
			c.Scenario, c.Hosts, c.MeshSize, c.Idle = 5, 20, 5, 3*time.Second
		})},
		{[]string{"-scenario", "6", "-policy-scope", "all"}, with(func(c *config) {
			c.Scenario, c.Hosts, c.MeshSize, c.Changes, c.PolicyScope = 6, 1000, 1000, 10, policyScopeAll
		})},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			got, err := parseFlags(tc.args, io.Discard)
			if err != nil {
				t.Fatalf("parseFlags: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string // in stderr
	}{
		{[]string{"-scenario", "7"}, 2, "-scenario: 7 is not one of 1-6"},
		{[]string{"-scenario", "2", "-mesh-size", "0"}, 2, "-mesh-size"},
		{[]string{"-h"}, 0, "-scenario"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.out) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tc.out)
			}
		})
	}
}

func TestAddressPlan(t *testing.T) {
	for _, tc := range []struct {
		networks, size int
		prefix, block  int
		first, last    string
	}{
		{100, 100, 25, 128, "10.0.0.0/25", "10.0.49.128/25"},
		{1, 1000, 22, 1024, "10.0.0.0/22", "10.0.0.0/22"},
		{1, 10_006, 18, 16384, "10.0.0.0/18", "10.0.0.0/18"},
		{3, 5, 29, 8, "10.0.0.0/29", "10.0.0.16/29"},
	} {
		prefix, block, err := addressPlan(tc.networks, tc.size)
		if err != nil {
			t.Fatalf("addressPlan(%d, %d): %v", tc.networks, tc.size, err)
		}
		got := []any{prefix, block, networkRange(0, prefix, block), networkRange(tc.networks-1, prefix, block)}
		if diff := cmp.Diff([]any{tc.prefix, tc.block, tc.first, tc.last}, got); diff != "" {
			t.Errorf("addressPlan(%d, %d) (-want +got):\n%s", tc.networks, tc.size, diff)
		}
	}
	if _, _, err := addressPlan(1<<20, 100); err == nil {
		t.Error("addressPlan accepted more networks than 10.0.0.0/8 holds")
	}
}
