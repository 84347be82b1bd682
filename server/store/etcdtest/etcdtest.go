// Package etcdtest runs a real etcd cluster inside a test process: members
// built from go.etcd.io/etcd/server/v3/embed on loopback ports, data in a
// temporary directory. Only tests import it, so the etcd server never ends
// up in the drago binary.
package etcdtest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// startTimeout bounds how long a cluster may take to elect its first leader.
const startTimeout = 30 * time.Second

// Cluster is a running etcd cluster of in-process members.
type Cluster struct {
	mu      sync.Mutex
	members []*member
}

type member struct {
	name      string
	clientURL string
	etcd      *embed.Etcd // nil once killed
}

// Start runs an n-member cluster for the test and stops it at cleanup.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	c, err := New(t.TempDir(), n)
	if err != nil {
		t.Fatalf("starting etcd: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// New starts an n-member cluster with its data under dir and waits until
// every member is ready. Close stops it. Each tune function, if any, adjusts
// every member's configuration after the tests' settings (the load tool
// turns fsync back on and keeps etcd's default limits).
func New(dir string, n int, tune ...func(*embed.Config)) (*Cluster, error) {
	peers := make([]string, n)
	clients := make([]string, n)
	var initial []string
	for i := range n {
		p, err := FreePorts(2)
		if err != nil {
			return nil, err
		}
		peers[i] = fmt.Sprintf("http://127.0.0.1:%d", p[0])
		clients[i] = fmt.Sprintf("http://127.0.0.1:%d", p[1])
		initial = append(initial, fmt.Sprintf("m%d=%s", i, peers[i]))
	}
	c := &Cluster{}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		mc := MemberConfig{Name: fmt.Sprintf("m%d", i), PeerURL: peers[i], ClientURL: clients[i], InitialCluster: strings.Join(initial, ",")}
		mc.Dir = filepath.Join(dir, mc.Name)
		m := &member{name: mc.Name, clientURL: clients[i]}
		c.members = append(c.members, m)
		wg.Go(func() {
			e, err := StartMember(mc, tune...)
			if err != nil {
				errs[i] = err
				return
			}
			c.mu.Lock()
			m.etcd = e
			c.mu.Unlock()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// MemberConfig describes one member of a cluster.
type MemberConfig struct {
	Name           string
	Dir            string // its data
	PeerURL        string // http://host:port the other members reach it at
	ClientURL      string // http://host:port clients reach it at
	InitialCluster string // name=peerURL of every member, comma-separated
}

// StartMember starts a member and waits until it is ready: the cluster it
// joined has a leader. The member runs in this process until closed; the
// command etcdtest/member runs one in a process of its own. Each tune
// function adjusts the configuration after the tests' settings.
func StartMember(mc MemberConfig, tune ...func(*embed.Config)) (*embed.Etcd, error) {
	peer, err := url.Parse(mc.PeerURL)
	if err != nil {
		return nil, fmt.Errorf("member %s: peer url: %w", mc.Name, err)
	}
	client, err := url.Parse(mc.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("member %s: client url: %w", mc.Name, err)
	}
	cfg := embed.NewConfig()
	cfg.Name = mc.Name
	cfg.Dir = mc.Dir
	cfg.InitialCluster = mc.InitialCluster
	cfg.InitialClusterToken = "drago-test"
	cfg.ListenPeerUrls = []url.URL{*peer}
	cfg.AdvertisePeerUrls = cfg.ListenPeerUrls
	cfg.ListenClientUrls = []url.URL{*client}
	cfg.AdvertiseClientUrls = cfg.ListenClientUrls
	cfg.LogLevel = "error"
	cfg.UnsafeNoFsync = true // test data: speed over durability
	cfg.MaxTxnOps = 1024
	for _, f := range tune {
		f(cfg)
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("member %s: %w", mc.Name, err)
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err = <-e.Err():
		err = fmt.Errorf("member %s: %w", mc.Name, err)
	case <-time.After(startTimeout):
		err = fmt.Errorf("member %s: not ready after %s", mc.Name, startTimeout)
	}
	e.Close()
	return nil, err
}

// FreePorts returns n loopback TCP ports free at the time of the call.
func FreePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Endpoints returns the client URLs of every member, killed ones included
// (a client must cope with a dead endpoint).
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.members {
		out = append(out, m.clientURL)
	}
	return out
}

// Leader returns the index of the member that leads, or -1 if no running
// member knows a leader.
func (c *Cluster) Leader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.members {
		if m.etcd == nil {
			continue
		}
		lead := m.etcd.Server.Leader()
		for j, o := range c.members {
			if o.etcd != nil && o.etcd.Server.MemberID() == lead {
				return j
			}
		}
	}
	return -1
}

// WaitLeader waits up to timeout for a running member to lead and returns
// its index.
func (c *Cluster) WaitLeader(timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		if l := c.Leader(); l >= 0 {
			return l, nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("no etcd leader after %s", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops member i abruptly: a leader does not hand its leadership over
// first, so the others must notice it is gone and elect a new one.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	e := c.members[i].etcd
	c.members[i].etcd = nil
	c.mu.Unlock()
	if e == nil {
		return
	}
	e.Server.HardStop()
	e.Close()
}

// Close stops every member still running.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for i := range c.members {
		wg.Go(func() { c.Kill(i) })
	}
	wg.Wait()
}
