package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
)

// openEtcd opens the etcd store cfg describes. TLS is used when an endpoint
// is https:// or a certificate is given.
func openEtcd(cfg EtcdConfig) (*store.EtcdStore, error) {
	tc, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	st, err := store.OpenEtcd(store.EtcdOptions{Endpoints: cfg.Endpoints, TLS: tc, Prefix: cfg.Prefix})
	if err != nil && tc != nil {
		// etcd's client retries a refused handshake until its timeout, so
		// the error rarely names the certificate.
		return nil, fmt.Errorf("%w (over TLS: check that -etcd-ca-cert signed the members' certificates and that they accept -etcd-cert)", err)
	}
	return st, err
}

// tlsConfig returns the client TLS configuration, or nil for plain http.
func (cfg EtcdConfig) tlsConfig() (*tls.Config, error) {
	secure := cfg.CACertFile != "" || cfg.CertFile != ""
	for _, e := range cfg.Endpoints {
		secure = secure || strings.HasPrefix(e, "https://")
	}
	if !secure {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CACertFile != "" {
		pem, err := os.ReadFile(cfg.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("etcd ca cert: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd ca cert %s: no PEM certificate in it", cfg.CACertFile)
		}
	}
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("etcd client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// cluster describes the servers sharing the store.
func (s *Server) cluster(ctx context.Context) (*api.Cluster, error) {
	c := &api.Cluster{Store: cmp.Or(s.cfg.StoreType, StoreBolt), Healthy: s.state.Healthy() == nil, Server: s.state.ServerID()}
	es, ok := s.store.(*store.EtcdStore)
	if !ok {
		c.Leader = c.Server
		c.Servers = []api.ClusterServer{{ID: c.Server, Addr: s.cfg.Addr, Leader: true}}
		if s.ln != nil {
			c.Servers[0].Addr = s.Addr()
		}
		return c, nil
	}
	c.Store = StoreEtcd
	servers, err := es.Servers(ctx)
	if err == nil {
		c.Leader, err = es.Leader(ctx)
	}
	if err != nil {
		c.Healthy = false // etcd unreachable: no servers to list
		return c, nil
	}
	for _, si := range servers {
		c.Servers = append(c.Servers, api.ClusterServer{ID: si.ID, Addr: si.Addr, Started: si.Started, Leader: si.ID == c.Leader})
	}
	return c, nil
}
