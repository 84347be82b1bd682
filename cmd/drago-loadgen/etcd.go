//go:build linux

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/drago-wg/drago/server/store"
	"github.com/drago-wg/drago/server/store/etcdtest"
)

// maxEtcdMembers bounds -etcd-members: all of them run on this machine.
const maxEtcdMembers = 5

// etcdCommand runs an etcd cluster of real members (etcdtest, the
// members the store tests use) in this process until SIGTERM: "-store
// etcd" starts it as a child, so that its CPU and memory are measured
// apart from this tool's and the agents' garbage collections do not pause
// it. Unlike the tests' members these sync to disk, as a production member
// does (bbolt's server does too), and keep etcd's default limits
// (--max-txn-ops 128, --max-request-bytes 1.5 MiB): the scenarios fit in
// them, and a run that did not would fail by name.
func etcdCommand(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("drago-loadgen etcd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "parent folder of the members' data (required)")
	members := fs.Int("members", 3, fmt.Sprintf("members, 1-%d", maxEtcdMembers))
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" || *members < 1 || *members > maxEtcdMembers {
		fmt.Fprintf(stderr, "drago-loadgen etcd: -dir is required and -members must be from 1 to %d\n", maxEtcdMembers)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	c, err := etcdtest.New(*dir, *members, func(cfg *embed.Config) {
		cfg.UnsafeNoFsync = false
		cfg.MaxTxnOps = embed.DefaultMaxTxnOps
		cfg.MaxRequestBytes = embed.DefaultMaxRequestBytes
	})
	if err != nil {
		fmt.Fprintf(stderr, "drago-loadgen etcd: %v\n", err)
		return 1
	}
	defer c.Close()
	slog.New(slog.NewTextHandler(stderr, nil)).Info("etcd ready", "members", *members, "endpoints", strings.Join(c.Endpoints(), ","))
	<-ctx.Done()
	return 0
}

// startEtcd runs "drago-loadgen etcd" with its data under dir and returns
// it with its client URLs.
func startEtcd(ctx context.Context, log *slog.Logger, members int, dir string) (*child, []string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("starting etcd: %w", err)
	}
	cmd := exec.Command(self, "etcd", "-dir", filepath.Join(dir, "etcd"), "-members", fmt.Sprint(members))
	c, err := startChild(ctx, "etcd", cmd, filepath.Join(dir, "etcd.log"), "endpoints")
	if err != nil {
		return nil, nil, err
	}
	endpoints := strings.Split(c.values["endpoints"], ",")
	log.Info("etcd started", "pid", c.pid, "members", members, "endpoints", endpoints, "log", c.logPath)
	return c, endpoints, nil
}

// startStore readies the run's etcd cluster for -store etcd: it starts
// one, or picks a key prefix of its own in the cluster of -etcd-endpoints.
// It returns the server's flags that select the store.
func (r *runner) startStore(ctx context.Context) ([]string, error) {
	if r.c.Store != storeEtcd {
		r.res.Store = "bolt (fsync on), data dir on " + r.c.ServerDir
		return nil, nil
	}
	endpoints, prefix := r.c.EtcdEndpoints, store.DefaultEtcdPrefix
	if len(endpoints) == 0 {
		var err error
		if r.etcd, endpoints, err = startEtcd(ctx, r.log, r.c.EtcdMembers, r.tmp); err != nil {
			return nil, err
		}
		r.res.Store = fmt.Sprintf("etcd, %d real members (embed, fsync on, etcd's default limits) in a child process of this tool, data on %s", r.c.EtcdMembers, r.c.ServerDir)
	} else {
		prefix = fmt.Sprintf("/drago-loadgen-%s-%d/", time.Now().UTC().Format("20060102T150405"), os.Getpid())
		r.extPrefix = prefix
		r.res.Store = fmt.Sprintf("etcd at %s, prefix %s", strings.Join(endpoints, ","), prefix)
	}
	r.etcdEndpoints = endpoints
	return []string{"-store", storeEtcd, "-etcd-endpoints", strings.Join(endpoints, ","), "-etcd-prefix", prefix}, nil
}

// stopStore stops the cluster this tool started, or deletes the run's keys
// from the one of -etcd-endpoints (unless -keep).
func (r *runner) stopStore() {
	if r.etcd != nil {
		r.etcd.stop()
	}
	if r.extPrefix == "" || r.c.Keep {
		return
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: r.etcdEndpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err = cli.Delete(ctx, r.extPrefix, clientv3.WithPrefix())
		cancel()
		cli.Close()
	}
	if err != nil {
		r.log.Warn("deleting the run's etcd keys", "prefix", r.extPrefix, "err", err)
	}
}
