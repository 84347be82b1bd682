package server

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store/etcdtest"
)

// TestClusterWrites runs two servers on one etcd cluster and writes through
// both at once: writes that overtake each other are retried, every one is
// acknowledged and both servers end up with all of them. Then etcd goes
// away: both servers refuse requests with 503 rather than answer from
// memory that may be stale.
func TestClusterWrites(t *testing.T) {
	c := etcdtest.Start(t, 3)
	cfg := Config{StoreType: StoreEtcd, Etcd: EtcdConfig{Endpoints: c.Endpoints(), Prefix: "/cluster/"}}
	a := startServerWith(t, cfg)
	b := startServerWith(t, cfg)
	if b.root != "" {
		t.Error("the second server created another root token")
	}
	const perServer = 10
	var wg sync.WaitGroup
	for k, ts := range []*testServer{a, b} {
		cl := ts.client(a.root)
		wg.Go(func() {
			for i := range perServer {
				n := &api.Network{Name: fmt.Sprintf("s%d-%d", k, i), IPv4Range: fmt.Sprintf("10.%d.%d.0/24", k, i)}
				if _, err := cl.CreateNetwork(context.Background(), n); err != nil {
					t.Errorf("create %s through server %d: %v", n.Name, k, err)
				}
			}
		})
	}
	wg.Wait()
	for k, ts := range []*testServer{a, b} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			l, err := ts.client(a.root).Networks(context.Background(), api.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if l.Total == 2*perServer {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("server %d lists %d networks, want %d", k, l.Total, 2*perServer)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Both describe the same cluster: two servers, one leader.
	var ids []string
	for k, ts := range []*testServer{a, b} {
		cl := must[*api.Cluster](t)(ts.client(a.root).Cluster(context.Background()))
		leaders := 0
		for _, sv := range cl.Servers {
			if sv.Leader {
				leaders++
			}
		}
		if cl.Store != StoreEtcd || !cl.Healthy || len(cl.Servers) != 2 || leaders != 1 || cl.Leader == "" {
			t.Errorf("server %d: cluster %+v; want etcd, healthy, 2 servers, 1 leader", k, cl)
		}
		ids = append(ids, cl.Server)
	}
	if ids[0] == ids[1] {
		t.Errorf("both servers have id %s", ids[0])
	}

	c.Close()
	for k, ts := range []*testServer{a, b} {
		deadline := time.Now().Add(15 * time.Second)
		for {
			code, body := ts.raw("GET", "/networks", a.root, "", "")
			if code == http.StatusServiceUnavailable {
				if !contains(body, "cannot reach its state store") {
					t.Errorf("server %d: 503 body %q does not say why", k, body)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("server %d still answers %d %q 15s after etcd went away", k, code, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if code, _ := ts.raw("POST", "/networks", a.root, "application/json", `{"name":"late","ipv4_range":"10.50.0.0/24"}`); code != http.StatusServiceUnavailable {
			t.Errorf("server %d: write without etcd = %d, want 503", k, code)
		}
		if code, _ := ts.raw("GET", "/health", "", "", ""); code != http.StatusServiceUnavailable {
			t.Errorf("server %d: /health without etcd = %d, want 503", k, code)
		}
		// /cluster still answers, and says why the server refuses.
		if code, body := ts.raw("GET", "/cluster", a.root, "", ""); code != http.StatusOK || !contains(body, `"healthy":false`) {
			t.Errorf("server %d: /cluster without etcd = %d %q", k, code, body)
		}
	}
}

// TestClusterOfOne: a bbolt server is a cluster of one that leads.
func TestClusterOfOne(t *testing.T) {
	ts := startServer(t, "")
	cl := must[*api.Cluster](t)(ts.rootClient().Cluster(context.Background()))
	if cl.Store != StoreBolt || !cl.Healthy || len(cl.Servers) != 1 || !cl.Servers[0].Leader || cl.Leader != cl.Server || cl.Servers[0].Addr != ts.srv.Addr() {
		t.Errorf("cluster %+v; want bolt, healthy, this server alone and leading at %s", cl, ts.srv.Addr())
	}
}
