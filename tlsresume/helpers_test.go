package tlsresume

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// testPKI is a CA and a server certificate for "localhost", 127.0.0.1 and
// the simulator's addresses.
type testPKI struct {
	pool   *x509.CertPool
	cert   tls.Certificate
	caDER  []byte
	caKey  *ecdsa.PrivateKey
	caCert *x509.Certificate
}

var (
	pkiOnce sync.Once
	pki     *testPKI
)

func getPKI(t testing.TB) *testPKI {
	pkiOnce.Do(func() { pki = newPKI(t) })
	return pki
}

func newPKI(t testing.TB) *testPKI {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tlsresume test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p := &testPKI{pool: x509.NewCertPool(), caDER: caDER, caKey: caKey, caCert: caCert}
	p.pool.AddCert(caCert)
	p.cert = p.leaf(t)
	return p
}

// leaf issues a server certificate with a fresh key.
func (p *testPKI) leaf(t testing.TB) tls.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(198, 18, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func serverTLS(t testing.TB, protos ...string) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{getPKI(t).cert}, NextProtos: protos}
}

func clientTLS(t testing.TB, protos ...string) *tls.Config {
	return &tls.Config{RootCAs: getPKI(t).pool, NextProtos: protos}
}

// fastCfg notices a blackhole within a few hundred milliseconds.
func fastCfg() *Config {
	return &Config{AliveInterval: 100 * time.Millisecond, AliveCountMax: 2, MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 100 * time.Millisecond, AttemptTimeout: 2 * time.Second, NoNetworkWatch: true}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
