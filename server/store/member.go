package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Keys of the servers of a cluster, apart from the state: each lives as
// long as the lease of the server that wrote it.
const (
	serversDir = "servers/" // server id -> ServerInfo
	liveDir    = "live/"    // host id -> the host's liveness, by the server it talks to
	leaderDir  = "leader/"  // the election of the server that runs the cluster's jobs
)

// ServerInfo describes one running server of a cluster.
type ServerInfo struct {
	ID      string    `json:"id"`
	Addr    string    `json:"addr"`
	Started time.Time `json:"started"`
}

// Member is one server's membership of the cluster sharing an etcd store:
// a lease kept alive while the server runs, under which it announces itself
// and the hosts it serves, and with which it campaigns to run the cluster's
// jobs. When the server dies its lease expires after the TTL, and its keys
// go with it.
type Member struct {
	s        *EtcdStore
	info     ServerInfo
	session  *concurrency.Session
	election *concurrency.Election
}

// Join starts a membership with a lease of ttl, kept alive until ctx ends
// or Close, and announces info.
func (s *EtcdStore) Join(ctx context.Context, info ServerInfo, ttl time.Duration) (*Member, error) {
	tctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	lease, err := s.cli.Grant(tctx, int64(max(1, ttl/time.Second)))
	if err != nil {
		return nil, fmt.Errorf("joining the cluster: %w", unavailable(err))
	}
	session, err := concurrency.NewSession(s.cli, concurrency.WithLease(lease.ID), concurrency.WithContext(ctx))
	if err != nil {
		s.revoke(lease.ID)
		return nil, fmt.Errorf("joining the cluster: %w", unavailable(err))
	}
	m := &Member{s: s, info: info, session: session, election: concurrency.NewElection(session, s.prefix+leaderDir)}
	raw, err := json.Marshal(info)
	if err == nil {
		_, err = s.cli.Put(tctx, s.prefix+serversDir+info.ID, string(raw), clientv3.WithLease(lease.ID))
	}
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("joining the cluster: %w", unavailable(err))
	}
	return m, nil
}

// revoke ends a lease, bounded by the store's timeout.
func (s *EtcdStore) revoke(id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	s.cli.Revoke(ctx, id)
}

// Done is closed when the membership's lease is lost (etcd unreachable for
// longer than the TTL); the server must then join again.
func (m *Member) Done() <-chan struct{} { return m.session.Done() }

// Close revokes the lease: the server's keys disappear at once (or with
// the TTL when etcd cannot be reached).
func (m *Member) Close() {
	m.session.Orphan()
	m.s.revoke(m.session.Lease())
}

// Campaign blocks until this server leads, ctx ends, or the lease is lost.
func (m *Member) Campaign(ctx context.Context) error {
	if err := m.election.Campaign(ctx, m.info.ID); err != nil {
		return unavailable(err)
	}
	return nil
}

// Leader returns the id of the leading server ("" when none).
func (s *EtcdStore) Leader(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.prefix+leaderDir, clientv3.WithFirstCreate()...)
	if err != nil {
		return "", unavailable(err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}

// Servers lists the running servers of the cluster.
func (s *EtcdStore) Servers(ctx context.Context) ([]ServerInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.prefix+serversDir, clientv3.WithPrefix())
	if err != nil {
		return nil, unavailable(err)
	}
	var out []ServerInfo
	for _, kv := range resp.Kvs {
		var si ServerInfo
		if json.Unmarshal(kv.Value, &si) == nil {
			out = append(out, si)
		}
	}
	return out, nil
}

// Publish writes the liveness records of hosts this server serves (nil
// deletes one, if this server wrote it), in transactions of at most
// maxCompares hosts.
func (m *Member) Publish(ctx context.Context, live map[string][]byte) error {
	lease := m.session.Lease()
	var ops []clientv3.Op
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		tctx, cancel := context.WithTimeout(ctx, m.s.timeout)
		defer cancel()
		_, err := m.s.cli.Txn(tctx).Then(ops...).Commit()
		ops = ops[:0]
		return unavailable(err)
	}
	for host, raw := range live {
		key := m.s.prefix + liveDir + host
		if raw == nil {
			// Only this server's record: the host may have moved on.
			ops = append(ops, clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.LeaseValue(key), "=", lease)},
				[]clientv3.Op{clientv3.OpDelete(key)}, nil))
		} else {
			ops = append(ops, clientv3.OpPut(key, string(raw), clientv3.WithLease(lease)))
		}
		if len(ops) == maxCompares {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// Live returns the liveness records at revision rev.
func (s *EtcdStore) Live(ctx context.Context, rev int64) (map[string][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.prefix+liveDir, clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		return nil, unavailable(err)
	}
	out := map[string][]byte{}
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), s.prefix+liveDir)] = kv.Value
	}
	return out, nil
}
