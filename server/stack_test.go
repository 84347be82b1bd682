package server

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	rtmetrics "runtime/metrics"
	"testing"
	"time"

	"github.com/drago-wg/drago/server/api"
)

// BenchmarkBlockingQueryStack measures the goroutine stack that a waiting
// blocking query holds (its connection's goroutine and net/http's background
// reader) once the connection has answered a whole desired state of a
// 100-host mesh, as every agent's has, and the heap it holds (net/http's
// buffers, the request): the server holds one per agent.
// A stack grown by the answer shrinks at GC only while its waiting frames
// use under a quarter of it, so the depth of the waiting path decides
// between 8 and 16 KB a connection.
func BenchmarkBlockingQueryStack(b *testing.B) {
	const hosts = 100
	ts := startServerWith(b, Config{})
	ctx := context.Background()
	root := ts.rootClient()
	n := must[*api.Network](b)(root.CreateNetwork(ctx, &api.Network{Name: "mesh", IPv4Range: "10.9.0.0/16", Topology: api.TopologyMesh}))
	jt := must[*api.JoinToken](b)(root.CreateJoinToken(ctx, &api.JoinToken{Name: "j", Networks: []string{n.ID}}))
	creds := make([]string, hosts)
	for k := range creds {
		reg := must[*api.RegisterResponse](b)(ts.client(jt.Secret).Register(ctx, &api.RegisterRequest{Name: fmt.Sprintf("h%d", k), OS: "linux", Arch: "amd64"}))
		hc := ts.client(reg.Credential)
		ds := must[*api.DesiredState](b)(hc.DesiredState(ctx, 0, 0))
		i := ds.Interfaces[0]
		if err := hc.ReportStatus(ctx, &api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: i.ID, PublicKey: testKey(reg.HostID), ListenPort: i.ListenPort}}}); err != nil {
			b.Fatal(err)
		}
		creds[k] = reg.Credential
	}
	var stacks, used, heap float64
	for b.Loop() {
		before := stackMetrics()
		// Raw connections: the client side holds no goroutines to count.
		conns := make([]net.Conn, hosts)
		for k, cred := range creds {
			conns[k] = waitingQuery(b, ts.srv.Addr(), cred)
		}
		time.Sleep(200 * time.Millisecond) // the last queries reach their wait
		after := stackMetrics()
		stacks = float64(after[0]-before[0]) / hosts
		used = float64(after[1]-before[1]) / hosts
		heap = float64(after[2]-before[2]) / hosts
		for _, c := range conns {
			c.Close()
		}
	}
	b.ReportMetric(stacks, "stack-B/query")
	b.ReportMetric(used, "used-B/query")
	b.ReportMetric(heap, "heap-B/query")
}

// waitingQuery opens a connection as host cred, reads its whole desired
// state (gzipped, as agents ask) and leaves a blocking query waiting on it.
func waitingQuery(tb testing.TB, addr, cred string) net.Conn {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	get := func(query string) {
		fmt.Fprintf(c, "GET /api/v1/agent/config%s HTTP/1.1\r\nHost: drago\r\nAuthorization: Bearer %s\r\nAccept-Encoding: gzip\r\n\r\n", query, cred)
	}
	get("")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	var ds api.DesiredState
	if err := json.NewDecoder(zr).Decode(&ds); err != nil || len(ds.Interfaces[0].Peers) == 0 {
		tb.Fatalf("desired state: %v, %d interfaces", err, len(ds.Interfaces))
	}
	io.Copy(io.Discard, resp.Body)
	get(fmt.Sprintf("?index=%d&wait=60s", ds.Index))
	return c
}

// stackMetrics returns, after GCs that shrink what they can, the bytes of
// goroutine stacks, the bytes of them in use and the live heap.
func stackMetrics() [3]uint64 {
	for range 4 { // each GC halves a shrinkable stack once
		runtime.GC()
	}
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/stacks:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/heap/live:bytes"}}
	rtmetrics.Read(s)
	return [3]uint64{s[0].Value.Uint64(), s[1].Value.Uint64(), s[2].Value.Uint64()}
}
