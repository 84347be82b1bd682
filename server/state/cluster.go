package state

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
)

// Host liveness across servers, and the cluster's jobs. An agent talks to
// one server at a time; that server alone sees its heartbeats and blocking
// queries. Once a second it publishes, under its etcd lease, one record per
// host it saw within the heartbeat grace: which server, and the index the
// host applied. Records are written when they change (a host arrives, or
// applies a new index), never per heartbeat, and deleted when the host goes
// quiet; a server that dies takes its records with its lease (memberTTL).
// Every server follows the records through its watch: a host with a record
// of another server is up, and stays up for the grace after the record goes
// (time for its agent to reach another server). The index a host applied,
// which key rotations wait for, is the highest a report or a record gave.
//
// One server, elected through etcd, runs the cluster's jobs: today, marking
// a rotating key ready when the last peer to apply it reported to another
// server (the server that receives a report does it for its own hosts).
// Host status and key staleness are computed when read, from the records:
// they need no job.

// memberTTL is the lease of a server's membership: its records outlive it
// by at most this.
const memberTTL = 10 * time.Second

// cluster is what state needs of a store shared with other servers.
type cluster interface {
	Join(ctx context.Context, info store.ServerInfo, ttl time.Duration) (*store.Member, error)
	Live(ctx context.Context, rev int64) (map[string][]byte, error)
}

// liveRecord is a host's liveness as published by the server it talks to.
type liveRecord struct {
	Server  string `json:"server"`
	Applied uint64 `json:"applied"`
}

// remoteLive is another server's record of a host, or when it went.
type remoteLive struct {
	liveRecord
	gone time.Time // zero while the record exists
}

// loadLive loads the records at rev (a held record missing there is gone);
// the caller holds s.mu or has not published s yet.
func (s *State) loadLive(ctx context.Context, c cluster, rev int64) error {
	recs, err := c.Live(ctx, rev)
	if err != nil {
		return err
	}
	for host := range s.remote {
		if _, ok := recs[host]; !ok {
			s.applyLive(store.Change{ID: host})
		}
	}
	for host, raw := range recs {
		s.applyLive(store.Change{ID: host, Value: raw})
	}
	return nil
}

// applyLive applies a record of the watch; the caller holds s.mu.
func (s *State) applyLive(ch store.Change) {
	if ch.Value == nil {
		if r, ok := s.remote[ch.ID]; ok && r.gone.IsZero() {
			r.gone = s.opts.Now()
			s.remote[ch.ID] = r
		}
		return
	}
	var rec liveRecord
	if json.Unmarshal(ch.Value, &rec) != nil || rec.Server == s.opts.ServerID {
		return
	}
	old := s.remote[ch.ID]
	s.remote[ch.ID] = remoteLive{liveRecord: rec}
	if rec.Applied > old.Applied && rec.Applied > s.reportedIndex(ch.ID) {
		s.readyCheck.add(ch.ID)
	}
}

// remoteSeen returns when another server last vouched for the host: now
// while its record exists.
func (s *State) remoteSeen(host string, now time.Time) (time.Time, bool) {
	r, ok := s.remote[host]
	switch {
	case !ok:
		return time.Time{}, false
	case r.gone.IsZero():
		return now, true
	}
	return r.gone, true
}

// lastSeen returns when the host last showed life: its last report (in
// this server's memory or the stored host), a blocking query once it has
// reported, or another server's record (published only for hosts that
// reported there); nil before any report.
func (s *State) lastSeen(h *api.Host, now time.Time) *time.Time {
	last := h.LastSeen
	if t, ok := s.live.seen(h.ID, now); ok && last != nil && t.After(*last) {
		last = &t
	}
	if t, ok := s.remoteSeen(h.ID, now); ok && (last == nil || t.After(*last)) {
		last = &t
	}
	return last
}

// runMember keeps this server a member of the cluster: it publishes the
// records of its hosts, campaigns to lead, and runs the jobs while it leads.
// A lost lease (etcd unreachable) starts a new membership.
func (s *State) runMember(ctx context.Context, c cluster) {
	for ctx.Err() == nil {
		m, err := c.Join(ctx, store.ServerInfo{ID: s.opts.ServerID, Addr: s.opts.ServerAddr, Started: s.opts.Now().UTC()}, memberTTL)
		if err != nil {
			s.log.Warn("joining the cluster failed; retrying", "error", err)
			sleep(ctx, probeInterval)
			continue
		}
		mctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-m.Done():
			case <-mctx.Done():
			}
			cancel()
		}()
		// The campaign is not waited for: when etcd is gone, an abandoned
		// campaign resigns until the store closes its client.
		var mu sync.Mutex
		active := true
		go func() {
			if m.Campaign(mctx) == nil {
				mu.Lock()
				defer mu.Unlock()
				if active {
					s.log.Info("leading the cluster: this server runs its jobs")
					s.follow.leader.Store(true)
				}
			}
		}()
		s.publish(mctx, m)
		cancel()
		mu.Lock()
		active = false
		s.follow.leader.Store(false)
		mu.Unlock()
		m.Close()
	}
}

// publish writes the changes of this server's host records every
// probeInterval, and runs the leader's jobs, until ctx ends.
func (s *State) publish(ctx context.Context, m *store.Member) {
	published := map[string]uint64{} // host -> applied index published
	every(ctx, probeInterval, func() {
		changes := map[string][]byte{}
		now := s.opts.Now()
		s.mu.RLock()
		for host := range s.hosts {
			seen, ok := s.live.seen(host, now)
			_, was := published[host]
			switch {
			case ok && now.Sub(seen) <= s.opts.HeartbeatGrace && s.reports[host] != nil:
				applied := s.reportedIndex(host)
				if !was || published[host] != applied {
					changes[host], _ = json.Marshal(liveRecord{Server: s.opts.ServerID, Applied: applied})
				}
			case was:
				changes[host] = nil
			}
		}
		for host := range published {
			if _, ok := s.hosts[host]; !ok {
				changes[host] = nil
			}
		}
		s.mu.RUnlock()
		if err := m.Publish(ctx, changes); err != nil {
			s.log.Warn("publishing host liveness failed", "error", err)
			return
		}
		for host, raw := range changes {
			if raw == nil {
				delete(published, host)
				continue
			}
			var rec liveRecord
			json.Unmarshal(raw, &rec)
			published[host] = rec.Applied
		}
		if s.follow.leader.Load() {
			s.markRemoteReady(ctx)
		}
	})
}

// markRemoteReady is the leader's job: the rotations that hosts served by
// other servers made ready by applying a new index.
func (s *State) markRemoteReady(ctx context.Context) {
	if err := s.CatchUp(ctx); err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.readyCheck) == 0 {
		return
	}
	w := s.begin()
	for host := range s.readyCheck {
		if _, ok := s.hosts[host]; ok {
			s.markKeysReady(w, host, s.appliedIndex(host))
		}
	}
	if err := w.commit(); err != nil {
		s.log.Warn("marking rotated keys ready failed; retrying", "error", err)
		return
	}
	s.readyCheck = set{}
}

// ServerID returns this server's id among the servers sharing the store.
func (s *State) ServerID() string { return s.opts.ServerID }

// IsLeader reports whether this server runs the cluster's jobs: always with
// a store no other server writes.
func (s *State) IsLeader() bool { return s.follow == nil || s.follow.leader.Load() }

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
