package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/kex"
)

// sinkCommand is the demo server's built-in command: it reads stdin to
// the end and answers with the byte count and SHA-256.
const sinkCommand = "rsftp-demo-sink"

func runDemo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	size := fs.Int64("size", 256<<20, "bytes to stream through the session")
	cipher := fs.String("c", "", "cipher to use (default: our preference, chacha20-poly1305@openssh.com)")
	fs.Parse(args)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	hostKey, err := newKey()
	if err != nil {
		return err
	}
	userKey, err := newKey()
	if err != nil {
		return err
	}
	srv, err := rsftp.NewServer(&rsftp.ServerConfig{
		HostKeys: []kex.Signer{hostKey},
		Auth: auth.ServerConfig{PublicKeyCallback: func(user string, k kex.PublicKey) (*auth.Permissions, error) {
			if bytes.Equal(k.Marshal(), userKey.PublicKey().Marshal()) {
				return &auth.Permissions{}, nil
			}
			return nil, errors.New("unknown key")
		}},
		Exec: demoHandler,
		Logf: func(string, ...any) {},
	})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go srv.Serve(l)
	defer srv.Close()
	fmt.Printf("server:     listening on %s, host key %s\n", l.Addr(), kex.FingerprintSHA256(hostKey.PublicKey()))

	cfg := &rsftp.ClientConfig{
		User: "demo",
		Auth: []auth.Method{auth.PublicKeySigners(userKey)},
		HostKeyCallback: func(host string, port int, k kex.PublicKey) error {
			if !bytes.Equal(k.Marshal(), hostKey.PublicKey().Marshal()) {
				return fmt.Errorf("host key for %s:%d is %s, expected %s", host, port,
					kex.FingerprintSHA256(k), kex.FingerprintSHA256(hostKey.PublicKey()))
			}
			return nil
		},
	}
	if *cipher != "" {
		cfg.Transport.Ciphers = []string{*cipher}
	}
	start := time.Now()
	c, err := rsftp.Dial(ctx, "tcp", l.Addr().String(), cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	tc := c.Transport()
	a := tc.Algorithms()
	fmt.Printf("client:     connected and authenticated in %v\n", time.Since(start).Round(time.Microsecond))
	fmt.Printf("            kex %s, host key %s, cipher %s, strict kex %v\n", a.Kex, a.HostKey, a.CipherCS, tc.StrictKex())

	sess, err := c.NewSession(ctx)
	if err != nil {
		return err
	}
	out, err := sess.Output(ctx, "echo hello from $0 on the embedded server")
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	fmt.Printf("exec:       %s", out)

	sess, err = c.NewSession(ctx)
	if err != nil {
		return err
	}
	stdin, stdout := sess.Stdin(), sess.Stdout()
	if err := sess.Exec(ctx, sinkCommand); err != nil {
		return err
	}
	h := sha256.New()
	start = time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.MultiWriter(stdin, h), io.LimitReader(zeroReader{}, *size))
		if err == nil {
			err = stdin.Close()
		}
		errc <- err
	}()
	reply, err := io.ReadAll(stdout)
	if err != nil {
		return err
	}
	if err := <-errc; err != nil {
		return err
	}
	if err := sess.Wait(); err != nil {
		return err
	}
	el := time.Since(start)
	want := fmt.Sprintf("%d %s\n", *size, hex.EncodeToString(h.Sum(nil)))
	if string(reply) != want {
		return fmt.Errorf("server saw %q, client sent %q", reply, want)
	}
	fmt.Printf("stream:     %d MiB in %v = %.0f MB/s, SHA-256 matches on both ends\n",
		*size>>20, el.Round(time.Millisecond), float64(*size)/el.Seconds()/1e6)
	s := tc.Seq()
	fmt.Printf("transport:  %d key exchanges; packets out %d, in %d; next seq out %d, in %d\n",
		tc.KexCount(), s.OutTotal, s.InTotal, s.Out, s.In)
	return nil
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func newKey() (kex.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return kex.NewSigner(priv)
}

func demoHandler(ctx context.Context, s *rsftp.Session) int {
	if s.Command != sinkCommand {
		return rsftp.CommandHandler("/bin/sh")(ctx, s)
	}
	h := sha256.New()
	n, err := io.Copy(h, s.Channel)
	if err != nil {
		fmt.Fprintf(s.Channel.Stderr(), "sink: %v\n", err)
		return 1
	}
	fmt.Fprintf(s.Channel, "%d %s\n", n, hex.EncodeToString(h.Sum(nil)))
	return 0
}
