//go:build linux

package e2e

import (
	"encoding/base64"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drago-wg/drago/server/api"
)

// BenchmarkConvergence measures the time from an API write to the moment
// every affected agent has applied it (each agent reports the index it
// applied right after applying), in a 4-host mesh of real agents.
func BenchmarkConvergence(b *testing.B) {
	l, _, hosts := meshLab(b, "dgb", 4, api.TopologyMesh)
	c := l.client()
	target := l.ifaceOf(hosts[0])
	var ids []string
	for _, h := range hosts {
		hv, _ := c.Host(ctx, h.name)
		ids = append(ids, hv.ID)
	}
	var worst time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		up, err := c.UpdateInterface(ctx, target.ID, map[string]any{"routed_subnets": []string{fmt.Sprintf("172.20.%d.0/24", i%250)}})
		if err != nil {
			b.Fatal(err)
		}
		for _, id := range ids {
			for {
				st, err := c.HostStatus(ctx, id)
				if err == nil && st.AppliedIndex >= up.ModifyIndex {
					break
				}
				if time.Since(start) > 10*time.Second {
					b.Fatalf("host %s did not apply index %d", id, up.ModifyIndex)
				}
				time.Sleep(200 * time.Microsecond)
			}
		}
		worst = max(worst, time.Since(start))
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
}

// BenchmarkAgentIdle measures one real agent at rest with 100 peers: its
// resident memory and the CPU it uses over 20 seconds of no changes.
func BenchmarkAgentIdle(b *testing.B) {
	l, _, hosts := meshLab(b, "dgi", 1, api.TopologyMesh)
	c := l.client()
	jt, err := c.CreateJoinToken(ctx, &api.JoinToken{Networks: []string{"lab"}})
	if err != nil {
		b.Fatal(err)
	}
	// 100 peers that exist only in the server: registered, with keys.
	for i := range 100 {
		hc, _ := api.NewClient(api.ClientConfig{Address: l.url, Token: jt.Secret})
		reg, err := hc.Register(ctx, &api.RegisterRequest{Name: fmt.Sprintf("ghost%d", i)})
		if err != nil {
			b.Fatal(err)
		}
		gc, _ := api.NewClient(api.ClientConfig{Address: l.url, Token: reg.Credential})
		ds, _ := gc.DesiredState(ctx, 0, 0)
		var key [32]byte
		copy(key[:], fmt.Sprintf("ghost-%d", i))
		gc.ReportStatus(ctx, &api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: ds.Interfaces[0].ID, PublicKey: base64.StdEncoding.EncodeToString(key[:])}}})
	}
	h := hosts[0]
	eventually(b, 20*time.Second, "the agent has 100 peers", func() bool {
		_, _, peers, err := l.wgDump(h, l.ifaceOf(h).Name)
		return err == nil && len(peers) == 100
	})
	pid := h.agent.cmd.Process.Pid
	cpu0 := cpuTime(b, pid)
	b.ResetTimer()
	for b.Loop() {
		time.Sleep(20 * time.Second)
	}
	b.StopTimer()
	cpu := cpuTime(b, pid) - cpu0
	b.ReportMetric(float64(rssKiB(b, pid))/1024, "rss-MiB")
	b.ReportMetric(100*cpu.Seconds()/(20*float64(b.N)), "cpu-%")
}

// cpuTime reads a process's user+system CPU time from /proc.
func cpuTime(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw)[strings.LastIndexByte(string(raw), ')')+2:])
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// rssKiB reads a process's resident set size from /proc.
func rssKiB(b *testing.B, pid int) int {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	return 0
}
