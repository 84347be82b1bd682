package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/drago-wg/drago/server/api"
)

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 and its key.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	c := writeCert(t, dir, "tls", nil, x509.ExtKeyUsageServerAuth)
	return c.certFile, c.keyFile
}

// testCert is a certificate and its key, parsed and written to files.
type testCert struct {
	cert              *x509.Certificate
	key               *ecdsa.PrivateKey
	certFile, keyFile string
}

// writeCert writes name.crt and name.key to dir: a certificate for
// 127.0.0.1 with the extended key usage given (none: any), signed by parent,
// or self-signed and a CA when parent is nil.
func writeCert(t *testing.T, dir, name string, parent *testCert, usage x509.ExtKeyUsage) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "drago test " + name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if usage != x509.ExtKeyUsageAny {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	}
	signer, signKey := tmpl, key
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else {
		signer, signKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	c := &testCert{cert: cert, key: key, certFile: filepath.Join(dir, name+".crt"), keyFile: filepath.Join(dir, name+".key")}
	os.WriteFile(c.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(c.keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return c
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeSelfSigned(t, dir)
	srv, root, err := New(Config{Addr: "127.0.0.1:0", DataDir: dir, TLSCertFile: cert, TLSKeyFile: key}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	url := "https://" + srv.Addr()
	trusted, err := api.NewClient(api.ClientConfig{Address: url, Token: root, CACert: cert})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trusted.Networks(ctx, api.ListOptions{}); err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	untrusted, _ := api.NewClient(api.ClientConfig{Address: url, Token: root})
	if _, err := untrusted.Health(ctx); err == nil {
		t.Fatal("a client without the CA trusted the self-signed certificate")
	}
	if _, _, err := New(Config{DataDir: t.TempDir(), TLSCertFile: cert}, discardLogger()); err == nil {
		t.Fatal("cert without key accepted")
	}
}
