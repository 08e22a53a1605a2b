package main

// rsftp demo -tls: the same download, cuts and report as rsftp demo, over
// a resumable TLS connection (package tlsresume) instead of SFTP over a
// resumable SSH session: the embedded server streams the file over the
// *tlsresume.Conn its listener accepted, the client copies what it reads
// into the local file.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/rsftp/rsftp/internal/netsim"
	"github.com/rsftp/rsftp/resume"
	"github.com/rsftp/rsftp/tlsresume"
)

const demoTLSAddr = "198.18.0.1:443"

// demoCert makes a self-signed certificate for the embedded server's
// address, and the pool the client trusts it with.
func demoCert() (tls.Certificate, *x509.CertPool, error) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	host, _, _ := net.SplitHostPort(demoTLSAddr)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rsftp demo"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP(host)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}

// demoTLS is rsftp demo -tls, from the server's file on: the rest of
// demo's work (flags, network, recorder) is done.
func demoTLS(ctx context.Context, o *demoOptions, network *netsim.Network, rec *demoRecorder,
	root, local string, want [32]byte, stdout, stderr io.Writer) error {
	cert, pool, err := demoCert()
	if err != nil {
		return err
	}
	inner, err := network.Listen(demoTLSAddr)
	if err != nil {
		return err
	}
	ln := tlsresume.NewListener(inner, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"demo"}},
		&tlsresume.Config{Hold: time.Hour, IdleTimeout: 10 * time.Second, Events: rec.serverEvent})
	defer ln.Close()
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		f, err := os.Open(filepath.Join(root, demoFile))
		if err != nil {
			srvErr <- err
			return
		}
		defer f.Close()
		_, err = io.Copy(c, f)
		srvErr <- err
	}()

	cfg := &tlsresume.Config{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			nc, err := network.Dial(ctx, addr)
			if err == nil {
				rec.addLink(netsim.LinkOf(nc))
			}
			return nc, err
		},
		AliveInterval:  250 * time.Millisecond,
		AliveCountMax:  3,
		MinBackoff:     50 * time.Millisecond,
		MaxBackoff:     500 * time.Millisecond,
		AttemptTimeout: 5 * time.Second,
		NoNetworkWatch: true, // the link is simulated
		Events:         rec.clientEvent,
	}
	connectStart := time.Now()
	dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
	c, err := tlsresume.Dial(dctx, "tcp", demoTLSAddr, &tls.Config{RootCAs: pool, NextProtos: []string{"demo"}}, cfg)
	dcancel()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	connectTime := time.Since(connectStart)
	stopClosing := context.AfterFunc(ctx, func() { c.Close() })
	defer stopClosing()
	if !c.Resumable() {
		return errors.New("the embedded server did not make the connection resumable")
	}
	st := c.ConnectionState()
	return rec.transfer(ctx, local, want, stdout, stderr, demoTransfer{
		proto: "TLS",
		session: fmt.Sprintf("%s, %s, ALPN %q; connected in %d ms; resumable, the server holds it for %v",
			tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.NegotiatedProtocol,
			connectTime.Milliseconds(), c.Status().Hold),
		copy:  func(w io.Writer) (int64, error) { return io.Copy(w, c) },
		done:  func() error { return <-srvErr },
		stats: func() resume.Stats { return c.Status().Stats },
	})
}
