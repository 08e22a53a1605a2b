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
	"strings"
	"time"

	"github.com/rsftp/rsftp/internal/netsim"
	"github.com/rsftp/rsftp/internal/svgplot"
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

	kinds := make([]string, o.cuts)
	for i := range kinds {
		kinds[i] = cutMode(i).name()
	}
	bw := "unlimited bandwidth"
	if o.bandwidth > 0 {
		bw = fmt.Sprintf("%s/s", decimalBytes(o.bandwidth))
	}
	fmt.Fprintf(stdout, "rsftp demo: TLS download of %s from an embedded server over a simulated link\n", binaryBytes(o.size))
	fmt.Fprintf(stdout, "link:       %v one way (%v RTT), %s", o.latency, 2*o.latency, bw)
	if o.cuts > 0 {
		fmt.Fprintf(stdout, "; cut %s (%s), the network unreachable for %v after each cut",
			times(o.cuts), strings.Join(kinds, ", "), o.outage)
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "session:    %s, %s, ALPN %q; connected in %d ms; resumable, the server holds it for %v\n",
		tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.NegotiatedProtocol,
		connectTime.Milliseconds(), c.Status().Hold)

	localPath := filepath.Join(local, demoFile)
	out, err := os.Create(localPath)
	if err != nil {
		return err
	}
	defer out.Close()
	ui := newDemoUI(stderr, o.quiet, o.size)
	cw := &countingWriter{w: out, after: rec.maybeCut}
	rec.begin(time.Now())
	sampler := startSampler(rec, cw, ui)
	ui.printf(rec.start, "downloading %s (%s) over resumable TLS", demoFile, binaryBytes(o.size))

	n, err := io.Copy(cw, c)
	end := time.Now()
	if err == nil {
		err = out.Close()
	}
	if err == nil && n != o.size {
		err = fmt.Errorf("got %d bytes, expected %d", n, o.size)
	}
	if err == nil {
		err = <-srvErr
	}
	if err == nil {
		err = rec.waitSettled(ctx)
	}
	points := sampler.stop(end, cw.n.Load())
	lines, _ := rec.live(time.Now(), true)
	ui.finish(lines)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		if cerr := rec.closedErr(); cerr != nil {
			return fmt.Errorf("transfer: %w (session ended: %v)", err, cerr)
		}
		return fmt.Errorf("transfer: %w", err)
	}
	elapsed := end.Sub(rec.start)
	got, err := hashFile(localPath)
	if err != nil {
		return fmt.Errorf("reading back the download: %w", err)
	}
	fmt.Fprintf(stdout, "transfer:   %s in %.2f s, %.1f MB/s on average\n",
		binaryBytes(n), elapsed.Seconds(), float64(n)/elapsed.Seconds()/1e6)
	if got == want {
		fmt.Fprintf(stdout, "verified:   SHA-256 %x matches\n", got)
	} else {
		fmt.Fprintf(stdout, "verified:   FAILED: SHA-256 of the download %x, of the server's file %x\n", got, want)
	}
	rec.printSummary(stdout, c.Status().Stats, n)

	var svgErr error
	if o.svg != "" {
		chart := &svgplot.Chart{
			Title:   strings.Replace(rec.chartTitle(), "SFTP download", "TLS download", 1),
			Points:  points,
			Outages: rec.chartOutages(),
			Resumes: rec.chartResumes(),
		}
		if svgErr = writeChart(o.svg, chart); svgErr == nil {
			fmt.Fprintf(stdout, "figure:     %s (bytes received over time, outages shaded, resumptions marked)\n", o.svg)
		}
	}
	if got != want {
		return fmt.Errorf("SHA-256 mismatch: downloaded %x, the server's file is %x", got, want)
	}
	return svgErr
}
