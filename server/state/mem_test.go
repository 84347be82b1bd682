package state

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/drago-wg/drago/server/api"
)

// BenchmarkStatusReportsMemory measures the heap that the agents' status
// reports take in a 10,000-host fleet (100 meshes of 100, 99 peers each).
func BenchmarkStatusReportsMemory(b *testing.B) {
	s, hosts := fleet(b, 100, 100, api.TopologyMesh)
	now := time.Now()
	var before, after runtime.MemStats
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		for n := range hosts {
			for _, h := range hosts[n] {
				ds, _ := s.DesiredState(context.Background(), h, 0, 0, false)
				is := api.InterfaceStatus{ID: ds.Interfaces[0].ID, PublicKey: ds.Interfaces[0].PublicKey}
				for _, p := range ds.Interfaces[0].Peers {
					// Keys arrive decoded from each agent's JSON: distinct copies.
					is.Peers = append(is.Peers, api.PeerStatus{PublicKey: string([]byte(p.PublicKey)), Endpoint: string([]byte(p.Endpoint)), LastHandshake: &now, RxBytes: 1, TxBytes: 2})
				}
				if err := s.ReportStatus(h, api.StatusReport{AppliedIndex: ds.Index, Interfaces: []api.InterfaceStatus{is}}, "192.0.2.1"); err != nil {
					b.Fatal(err)
				}
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
	}
	runtime.KeepAlive(s)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "report-MiB")
	b.ReportMetric(float64(after.HeapAlloc)/(1<<20), "heap-MiB")
}
