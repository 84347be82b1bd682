//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/drago-wg/drago/server/api"
)

// A cluster lab: three etcd members and two drago servers on etcd, each in
// a namespace of its own on the underlay 172.31.78.0/24 (so that a member
// can be killed and a server cut off for real), and four agents: h1 and h2
// talk to server a first, h3 and h4 to server b.

const clusterSubnet = "172.31.78"

type clusterLab struct {
	*lab
	etcd     []string // member client URLs
	etcdProc []*proc
	urls     [2]string // servers a and b
	ns       [2]string
	proc     [2]*proc
	hs       []*host
}

// newClusterLab starts the cluster and the agents, and waits until every
// host registered.
func newClusterLab(t *testing.T, prefix string) *clusterLab {
	c := &clusterLab{lab: newNet(t, prefix, clusterSubnet)}
	var initial []string
	for i := range 3 {
		initial = append(initial, fmt.Sprintf("e%d=http://%s.%d:2380", i, clusterSubnet, 5+i))
	}
	for i := range 3 {
		ip := fmt.Sprintf("%s.%d", clusterSubnet, 5+i)
		ns := c.attach(fmt.Sprintf("e%d", i), ip)
		p := c.startBin(etcdBin, ns, "", "-name", fmt.Sprintf("e%d", i), "-dir", fmt.Sprintf("%s/e%d", c.dir, i),
			"-peer-url", "http://"+ip+":2380", "-client-url", "http://"+ip+":2379", "-initial-cluster", strings.Join(initial, ","))
		p.name = fmt.Sprintf("etcd e%d", i)
		c.procs = append(c.procs, p)
		c.etcdProc = append(c.etcdProc, p)
		c.etcd = append(c.etcd, "http://"+ip+":2379")
	}
	for i, p := range c.etcdProc {
		eventually(t, 30*time.Second, fmt.Sprintf("etcd member e%d ready", i), func() bool {
			return strings.Contains(p.output(), "ready")
		})
	}
	for i, name := range []string{"a", "b"} {
		ip := fmt.Sprintf("%s.%d", clusterSubnet, 2+i)
		c.ns[i] = c.attach("s"+name, ip)
		c.urls[i] = "http://" + ip + ":8080"
		c.proc[i] = c.start(c.ns[i], "", "server", "-store", "etcd", "-etcd-endpoints", strings.Join(c.etcd, ","),
			"-addr", ip+":8080", "-data-dir", c.dir+"/server-"+name)
		c.proc[i].name = "server " + name
		c.procs = append(c.procs, c.proc[i])
		c.waitHealthy(c.proc[i], func() string { return c.urls[i] })
		if i == 0 {
			c.readRoot(c.dir + "/server-a") // the first server creates it
		}
	}
	c.url = c.urls[0]
	cl := c.client()
	if _, err := cl.CreateNetwork(ctx, &api.Network{Name: "lab", IPv4Range: "10.42.0.0/24", IPv6Range: "fd42::/64", Topology: api.TopologyMesh}); err != nil {
		t.Fatal(err)
	}
	jt, err := cl.CreateJoinToken(ctx, &api.JoinToken{Name: "lab", Networks: []string{"lab"}})
	if err != nil {
		t.Fatal(err)
	}
	ab, ba := c.urls[0]+","+c.urls[1], c.urls[1]+","+c.urls[0]
	for i, servers := range []string{ab, ab, ba, ba} {
		c.hs = append(c.hs, c.addHostOf(fmt.Sprintf("h%d", i+1), servers, jt.Secret))
	}
	c.waitRegistered(len(c.hs))
	return c
}

// clientOf returns a root client of server i.
func (c *clusterLab) clientOf(i int) *api.Client {
	cl, err := api.NewClient(api.ClientConfig{Address: c.urls[i], Token: c.root})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// pingsAll checks that every host pings every other over the mesh.
func (c *clusterLab) pingsAll() {
	c.t.Helper()
	for _, a := range c.hs {
		for _, b := range c.hs {
			if a != b {
				v4, _ := c.overlay(b)
				eventually(c.t, 15*time.Second, fmt.Sprintf("%s pings %s at %s", a.name, b.name, v4), func() bool { return c.ping(a, v4) })
			}
		}
	}
}

// change gives the interfaces of hosts new routed subnets through the
// test's current server and waits until every other host's WireGuard
// peer of each carries its subnet: every agent applied the change.
func (c *clusterLab) change(third int, hosts ...*host) time.Duration {
	c.t.Helper()
	start := time.Now()
	want := map[*host]string{}
	for k, h := range hosts {
		subnet := fmt.Sprintf("192.168.%d.%d/32", third, k+1)
		if _, err := c.client().UpdateInterface(ctx, c.ifaceOf(h).ID, map[string]any{"routed_subnets": []string{subnet}}); err != nil {
			c.t.Fatal(err)
		}
		want[h] = subnet
	}
	for from, subnet := range want {
		pub := c.ifaceOf(from).PublicKey
		for _, h := range c.hs {
			if h == from {
				continue
			}
			iface := c.ifaceOf(h).Name
			eventually(c.t, 20*time.Second, fmt.Sprintf("%s learns %s's subnet %s", h.name, from.name, subnet), func() bool {
				_, _, peers, err := c.wgDump(h, iface)
				return err == nil && strings.Contains(peers[pub].AllowedIPs, subnet)
			})
		}
	}
	return time.Since(start)
}

// moved waits until the agent of h logs its move to server i and returns
// how long after since that took.
func (c *clusterLab) moved(h *host, i int, since time.Time) time.Duration {
	c.t.Helper()
	to := "to=" + strings.TrimPrefix(c.urls[i], "http://")
	eventually(c.t, 20*time.Second, h.name+" moves to "+c.urls[i], func() bool {
		return strings.Contains(h.agent.output(), to)
	})
	return time.Since(since)
}

// write is one acknowledged write of a writer.
type write struct {
	name   string
	server int
	at     time.Time
}

// writer creates networks through servers, one goroutine per server, and
// records every write answered 2xx.
type writer struct {
	c      *clusterLab
	stop   chan struct{}
	wg     sync.WaitGroup
	next   atomic.Int64
	mu     sync.Mutex
	acked  []write
	failed []string // errors, for the log
}

func (c *clusterLab) startWrites(servers ...int) *writer {
	w := &writer{c: c, stop: make(chan struct{})}
	for _, i := range servers {
		cl := c.clientOf(i)
		w.wg.Go(func() {
			for {
				select {
				case <-w.stop:
					return
				default:
				}
				n := w.next.Add(1)
				name := fmt.Sprintf("w%d", n)
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := cl.CreateNetwork(rctx, &api.Network{Name: name, IPv4Range: fmt.Sprintf("10.%d.%d.0/24", 100+n/256, n%256)})
				cancel()
				w.mu.Lock()
				if err == nil {
					w.acked = append(w.acked, write{name: name, server: i, at: time.Now()})
				} else {
					w.failed = append(w.failed, fmt.Sprintf("%s via %s: %v", name, c.urls[i], err))
				}
				w.mu.Unlock()
				if err != nil {
					time.Sleep(100 * time.Millisecond)
				}
			}
		})
	}
	return w
}

// acks returns the writes acknowledged so far.
func (w *writer) acks() []write {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]write(nil), w.acked...)
}

// waitAcks waits until n more writes than now were acknowledged.
func (w *writer) waitAcks(n int) {
	w.c.t.Helper()
	base := len(w.acks())
	eventually(w.c.t, 20*time.Second, fmt.Sprintf("%d more writes acknowledged", n), func() bool { return len(w.acks()) >= base+n })
}

// finish stops the writers and checks through server i that every
// acknowledged write is there.
func (w *writer) finish(i int) []write {
	w.c.t.Helper()
	close(w.stop)
	w.wg.Wait()
	cl := w.c.clientOf(i)
	for _, a := range w.acked {
		if _, err := cl.Network(ctx, a.name); err != nil {
			w.c.t.Errorf("write %s, acknowledged by %s at %s, is not on %s: %v", a.name, w.c.urls[a.server], a.at.Format("15:04:05.000"), w.c.urls[i], err)
		}
	}
	w.c.t.Logf("%d writes acknowledged, all read back through %s; %d refused or failed", len(w.acked), w.c.urls[i], len(w.failed))
	for _, f := range w.failed[:min(len(w.failed), 3)] {
		w.c.t.Logf("  e.g. %s", f)
	}
	return w.acked
}

// firstAckAfter returns the first write acknowledged after t.
func firstAckAfter(acks []write, t time.Time) (write, bool) {
	for _, a := range acks {
		if a.at.After(t) {
			return a, true
		}
	}
	return write{}, false
}

// TestClusterServerKilled: kill -9 of server a in the middle of a stream of
// writes through both servers. a's agents move to b within seconds, every
// acknowledged write is there, the mesh pings, and a change made after
// reaches every agent.
func TestClusterServerKilled(t *testing.T) {
	c := newClusterLab(t, "dcs")
	c.pingsAll()
	before := c.leads(0, 2)
	if got := c.leads(1, 2); got != before {
		t.Fatalf("servers a and b disagree on the leader: %s and %s", before, got)
	}
	w := c.startWrites(0, 1)
	w.waitAcks(20)
	killed := time.Now()
	c.proc[0].kill(syscall.SIGKILL)
	c.url = c.urls[1]
	for _, h := range c.hs[:2] {
		took := c.moved(h, 1, killed)
		t.Logf("%s moved to server b %v after the kill", h.name, took.Round(time.Millisecond))
	}
	w.waitAcks(20)
	w.finish(1)
	c.pingsAll()
	took := c.change(61, c.hs[0], c.hs[2])
	t.Logf("a change through b reached every agent in %v", took.Round(time.Millisecond))
	// a's lease expires: b lists itself alone, and leads.
	b, err := c.clientOf(1).Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after := c.leads(1, 1); after != b.Server {
		t.Errorf("after a's death the leader is %s, want b (%s)", after, b.Server)
	}
	t.Logf("b lists itself alone and leads %v after the kill", time.Since(killed).Round(time.Millisecond))
}

// leads waits until server i's cluster view (GET /api/v1/cluster, as drago
// status and the dashboard show it) lists n healthy etcd servers, one of
// them flagged as the leader it names, and returns that leader.
func (c *clusterLab) leads(i, n int) string {
	c.t.Helper()
	var last *api.Cluster
	ok := func() bool {
		v, err := c.clientOf(i).Cluster(ctx)
		if err != nil {
			return false
		}
		last = v
		leaders := 0
		for _, sv := range v.Servers {
			if sv.Leader {
				leaders++
				if sv.ID != v.Leader {
					return false
				}
			}
		}
		return v.Store == "etcd" && v.Healthy && len(v.Servers) == n && leaders == 1
	}
	for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			c.t.Fatalf("server %s's cluster view after 30s: %+v; want %d healthy etcd servers, one leading", c.urls[i], last, n)
		}
	}
	return last.Leader
}

// TestClusterEtcdLeaderKilled: kill -9 of the etcd leader in the middle of
// a stream of writes through both servers: writes resume after the
// election, none acknowledged is lost, agents still converge.
func TestClusterEtcdLeaderKilled(t *testing.T) {
	c := newClusterLab(t, "dcl")
	leader := c.etcdLeader()
	w := c.startWrites(0, 1)
	w.waitAcks(20)
	killed := time.Now()
	c.etcdProc[leader].kill(syscall.SIGKILL)
	w.waitAcks(20)
	acks := w.finish(0)
	first, ok := firstAckAfter(acks, killed)
	if !ok {
		t.Fatal("no write acknowledged after the kill")
	}
	t.Logf("etcd leader e%d killed; first write acknowledged %v later (through %s)", leader, first.at.Sub(killed).Round(time.Millisecond), c.urls[first.server])
	if next := c.etcdLeader(); next == leader {
		t.Fatalf("e%d still leads after its kill", leader)
	}
	for i := range c.urls {
		eventually(t, 10*time.Second, c.urls[i]+" healthy", func() bool {
			_, err := c.clientOf(i).Health(ctx)
			return err == nil
		})
	}
	took := c.change(62, c.hs[0], c.hs[2])
	t.Logf("a change reached every agent in %v", took.Round(time.Millisecond))
}

// etcdLeader returns the index of the member that leads, asking each
// running member's status.
func (c *clusterLab) etcdLeader() int {
	c.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.etcd, DialTimeout: 2 * time.Second})
	if err != nil {
		c.t.Fatal(err)
	}
	defer cli.Close()
	var leader int
	eventually(c.t, 15*time.Second, "a running etcd member leads", func() bool {
		ids := map[uint64]int{}
		var lead uint64
		for i, ep := range c.etcd {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := cli.Status(sctx, ep)
			cancel()
			if err == nil {
				ids[st.Header.MemberId] = i
				lead = max(lead, st.Leader)
			}
		}
		i, ok := ids[lead]
		leader = i
		return ok && lead != 0
	})
	return leader
}

// TestClusterPartitionedServer: server a loses etcd (its packets to the
// members dropped in its namespace; agents still reach it). It answers 503
// naming the cause and acknowledges no write, its agents move to b and
// apply a change made there; once healed, a serves the new state.
func TestClusterPartitionedServer(t *testing.T) {
	c := newClusterLab(t, "dcp")
	c.pingsAll()
	var ips []string
	for i := range c.etcd {
		ips = append(ips, fmt.Sprintf("%s.%d", clusterSubnet, 5+i))
	}
	nft := func(args ...string) { run(t, "ip", append([]string{"netns", "exec", c.ns[0], "nft"}, args...)...) }
	nft("add table inet cut")
	nft("add chain inet cut out { type filter hook output priority 0 ; }")
	cut := time.Now()
	nft("add rule inet cut out ip daddr { " + strings.Join(ips, ", ") + " } drop")

	w := c.startWrites(0)
	a := c.clientOf(0)
	var refusal error
	took := eventually(t, 15*time.Second, "server a answers 503", func() bool {
		_, refusal = a.Networks(ctx, api.ListOptions{})
		return api.StatusOf(refusal) == http.StatusServiceUnavailable
	})
	t.Logf("server a refuses %v after the cut: %v", took.Round(time.Millisecond), refusal)
	if !strings.Contains(refusal.Error(), "state store (etcd)") {
		t.Errorf("a's 503 does not name the cause: %v", refusal)
	}
	// From now until the heal, a must not answer from its memory.
	stopHealth, served := make(chan struct{}), make(chan time.Time, 1)
	go func() {
		defer close(served)
		for {
			select {
			case <-stopHealth:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := a.Health(ctx); err == nil {
				served <- time.Now()
				return
			}
		}
	}()
	for _, h := range c.hs[:2] {
		t.Logf("%s moved to server b %v after the cut", h.name, c.moved(h, 1, cut).Round(time.Millisecond))
	}
	c.url = c.urls[1]
	took = c.change(63, c.hs[0], c.hs[2])
	t.Logf("a change through b reached every agent in %v while a was cut off", took.Round(time.Millisecond))
	close(w.stop)
	w.wg.Wait()
	if len(w.acked) > 0 {
		t.Errorf("server a acknowledged %d writes while cut off from etcd, e.g. %s", len(w.acked), w.acked[0].name)
	}
	if len(w.failed) == 0 || !strings.Contains(w.failed[len(w.failed)-1], "state store (etcd)") {
		t.Errorf("a's refusals of writes do not name the cause: %q", w.failed)
	}

	time.Sleep(time.Until(cut.Add(10 * time.Second))) // several of a's checks of etcd
	close(stopHealth)
	if at, ok := <-served; ok {
		t.Errorf("server a answered /health at %s while cut off from etcd", at.Format("15:04:05.000"))
	}
	nft("delete table inet cut")
	healed := time.Now()
	eventually(t, 15*time.Second, "server a serves again", func() bool {
		_, err := a.Health(ctx)
		return err == nil
	})
	t.Logf("server a serves %v after the heal", time.Since(healed).Round(time.Millisecond))
	for _, h := range []*host{c.hs[0], c.hs[2]} {
		i, err := c.clientOf(1).Interface(ctx, c.ifaceOf(h).ID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.Interface(ctx, i.ID)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got.RoutedSubnets, ",") != strings.Join(i.RoutedSubnets, ",") || got.ModifyIndex != i.ModifyIndex {
			t.Errorf("%s's interface on a: %v at %d, on b: %v at %d", h.name, got.RoutedSubnets, got.ModifyIndex, i.RoutedSubnets, i.ModifyIndex)
		}
	}
}
