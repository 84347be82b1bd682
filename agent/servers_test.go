package agent

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drago-wg/drago/platform/platformtest"
	"github.com/drago-wg/drago/server"
	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/servertest"
	"github.com/drago-wg/drago/server/store/etcdtest"
)

func TestSplitServers(t *testing.T) {
	got := splitServers(" http://a:1, ,http://b:2,")
	if strings.Join(got, "|") != "http://a:1|http://b:2" {
		t.Errorf("splitServers = %q", got)
	}
	for _, s := range []string{"http://a:1,b:2", "http://a:1,http://b:2/api", "http://a:1,ftp://b:2"} {
		cfg := Config{Server: s, DataDir: t.TempDir()}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "Server") {
			t.Errorf("Validate(%q) = %v, want an error naming Server", s, err)
		}
	}
}

// TestFailoverTransport: a request the current server fails (503, or no
// connection) goes at once to the next, with its body, and the transport
// stays there.
func TestFailoverTransport(t *testing.T) {
	var hitsA, hitsB atomic.Int32
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hitsA.Add(1)
		http.Error(w, "cut off", http.StatusServiceUnavailable)
	}))
	defer a.Close()
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hitsB.Add(1)
		body, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Host+" "+string(body))
	}))
	defer b.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // nothing listens there any more
	var moves []string
	f, err := newFailover([]string{dead.URL, a.URL, b.URL}, http.DefaultTransport.(*http.Transport).Clone(), nil,
		func(from, to string) { moves = append(moves, from+">"+to) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: f}
	for range 2 {
		resp, err := c.Post(dead.URL+"/api/v1/agent/status", "application/json", strings.NewReader("report"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := strings.TrimPrefix(b.URL, "http://") + " report"; resp.StatusCode != 200 || string(body) != want {
			t.Errorf("answer %d %q, want 200 %q (server B, body replayed)", resp.StatusCode, body, want)
		}
	}
	if hitsA.Load() != 1 || hitsB.Load() != 2 || len(moves) != 1 {
		t.Errorf("A answered %d, B %d, moves %q; want A once, then B stays current", hitsA.Load(), hitsB.Load(), moves)
	}
}

// TestAgentMovesToAnotherServer runs an agent against two servers sharing
// etcd: when its server stops, it moves to the other, resumes, and applies
// a change made there.
func TestAgentMovesToAnotherServer(t *testing.T) {
	c := etcdtest.Start(t, 3)
	cfg := server.Config{StoreType: server.StoreEtcd, Etcd: server.EtcdConfig{Endpoints: c.Endpoints(), Prefix: "/move/"}}
	urlA, rootSecret, stopA := servertest.Run(t, cfg)
	urlB, _, _ := servertest.Run(t, cfg)
	ctx := context.Background()
	root, err := api.NewClient(api.ClientConfig{Address: urlB, Token: rootSecret})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.CreateNetwork(ctx, &api.Network{Name: "n", IPv4Range: "10.8.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	jt, err := root.CreateJoinToken(ctx, &api.JoinToken{Name: "j", Networks: []string{"n"}})
	if err != nil {
		t.Fatal(err)
	}
	ag := startAgent(t, Config{
		Server: urlA + "," + urlB, JoinToken: jt.Secret, DataDir: t.TempDir(), Name: "host-a",
		DriftInterval: time.Hour, HeartbeatInterval: time.Hour, Wait: 2 * time.Second,
		BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
	}, platformtest.NewRecorder(), nil)
	rootA, err := api.NewClient(api.ClientConfig{Address: urlA, Token: rootSecret})
	if err != nil {
		t.Fatal(err)
	}
	// A status report stays with the server that received it.
	applied := func(c *api.Client, index uint64) bool {
		st, err := c.HostStatus(ctx, "host-a")
		return err == nil && st.AppliedIndex >= index
	}
	waitFor(t, "the agent to report through server A", func() bool { return applied(rootA, 1) })

	stopA()
	ifs, err := root.Interfaces(ctx, api.ListOptions{})
	if err != nil || len(ifs.Items) != 1 {
		t.Fatalf("interfaces = %+v, %v", ifs, err)
	}
	changed, err := root.UpdateInterface(ctx, ifs.Items[0].ID, map[string]any{"routed_subnets": []string{"192.168.50.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the agent to apply, through server B, a change made there", func() bool { return applied(root, changed.ModifyIndex) })
	if !strings.Contains(ag.logs.String(), "moved to another server") {
		t.Errorf("the agent did not log its move; logs:\n%s", ag.logs)
	}
}
