package server

import (
	"context"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store/etcdtest"
)

// TestEtcdMutualTLS runs a server against a real etcd member that serves
// clients over TLS and requires their certificates (-etcd-ca-cert,
// -etcd-cert, -etcd-key): the server writes and reads through it. Without a
// client certificate, or trusting another CA, opening the store fails with
// an error instead of running without the store.
func TestEtcdMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := writeCert(t, dir, "ca", nil, x509.ExtKeyUsageAny)
	member := writeCert(t, dir, "member", ca, x509.ExtKeyUsageServerAuth)
	client := writeCert(t, dir, "client", ca, x509.ExtKeyUsageClientAuth)
	other := writeCert(t, dir, "other-ca", nil, x509.ExtKeyUsageAny)

	ports, err := etcdtest.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	peer, endpoint := fmt.Sprintf("http://127.0.0.1:%d", ports[0]), fmt.Sprintf("https://127.0.0.1:%d", ports[1])
	e, err := startTLSMember(t, filepath.Join(dir, "m0"), peer, endpoint, member, ca)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close) // after the server's stop, registered later

	ts := startServerWith(t, Config{StoreType: StoreEtcd, Etcd: EtcdConfig{Endpoints: []string{endpoint},
		CACertFile: ca.certFile, CertFile: client.certFile, KeyFile: client.keyFile}})
	ctx := context.Background()
	root := ts.rootClient()
	must[*api.Network](t)(root.CreateNetwork(ctx, &api.Network{Name: "tls", IPv4Range: "10.77.0.0/24"}))
	if n := must[*api.Network](t)(root.Network(ctx, "tls")); n.IPv4Range != "10.77.0.0/24" {
		t.Errorf("network read back over TLS: %+v", n)
	}
	if cl := must[*api.Cluster](t)(root.Cluster(ctx)); cl.Store != StoreEtcd || !cl.Healthy {
		t.Errorf("cluster over TLS: %+v; want etcd, healthy", cl)
	}

	for _, bad := range []struct {
		name string
		cfg  EtcdConfig
		want string
	}{
		{"no client certificate", EtcdConfig{Endpoints: []string{endpoint}, CACertFile: ca.certFile}, "-etcd-ca-cert signed the members' certificates"},
		{"another CA", EtcdConfig{Endpoints: []string{endpoint}, CACertFile: other.certFile, CertFile: client.certFile, KeyFile: client.keyFile}, "-etcd-ca-cert signed the members' certificates"},
	} {
		st, err := openEtcd(bad.cfg)
		if err == nil {
			st.Close()
			t.Errorf("%s: the store opened", bad.name)
			continue
		}
		if !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want an error containing %q", bad.name, err, bad.want)
		}
	}
}

// startTLSMember starts a one-member etcd cluster whose client URL is
// https, with the member's certificate and client certificates required
// (signed by ca).
func startTLSMember(t *testing.T, dir, peer, client string, member, ca *testCert) (*embed.Etcd, error) {
	t.Helper()
	return etcdtest.StartMember(etcdtest.MemberConfig{Name: "m0", Dir: dir, PeerURL: peer, ClientURL: client, InitialCluster: "m0=" + peer},
		func(cfg *embed.Config) {
			cfg.ClientTLSInfo.CertFile = member.certFile
			cfg.ClientTLSInfo.KeyFile = member.keyFile
			cfg.ClientTLSInfo.TrustedCAFile = ca.certFile
			cfg.ClientTLSInfo.ClientCertAuth = true
		})
}
