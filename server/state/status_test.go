package state

import (
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
)

// fakeClock is a settable clock for tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestHostStatusFollowsHeartbeats(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, err := Open(store.NewMem(), slog.New(slog.NewTextHandler(io.Discard, nil)), Options{HeartbeatGrace: 45 * time.Second, KeyRotationInterval: time.Hour, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := s.CreateNetwork(api.Network{Name: "n", IPv4Range: "10.0.0.0/24"})
	jt, _ := s.CreateJoinToken(api.JoinToken{Networks: []string{n.ID}})
	_, joinID, _, _ := splitSecret(jt.Secret)
	reg, err := s.Register(joinID, api.RegisterRequest{Name: "h"}, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	status := func() api.Host {
		h, err := s.Host("h")
		if err != nil {
			t.Fatal(err)
		}
		return *h
	}
	if got := status().Status; got != api.HostPending {
		t.Fatalf("before any report: %s", got)
	}
	ifs, _ := s.Interfaces(Filter{Host: "h"}, false)
	report := api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: ifs.Items[0].ID, PublicKey: "yZOV6dSvjg7Qt3r8v2OnAvcpA/JQiGxGpzjFf3tYFBE="}}}
	index := s.Index()
	for range 3 {
		if err := s.ReportStatus(reg.HostID, report, "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
	}
	if got := status().Status; got != api.HostReady {
		t.Fatalf("after a report: %s", got)
	}
	if s.Index() != index+1 {
		t.Errorf("index moved by %d for one key and two plain heartbeats, want 1", s.Index()-index)
	}
	clock.advance(44 * time.Second)
	if got := status().Status; got != api.HostReady {
		t.Fatalf("within the grace: %s", got)
	}
	clock.advance(2 * time.Second)
	if got := status().Status; got != api.HostDown {
		t.Fatalf("after the grace: %s", got)
	}
	if o := s.Overview(); o.HostsDown != 1 || o.HostsReady != 0 {
		t.Errorf("overview: %+v", o)
	}
	// Keys older than twice the rotation interval are flagged.
	if status().KeyStale {
		t.Fatal("fresh key flagged stale")
	}
	clock.advance(2 * time.Hour)
	if !status().KeyStale {
		t.Fatal("key older than twice the rotation interval not flagged")
	}
}
