package rsftp_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/kex"
)

// A server with one exec handler, and a client that runs a command on
// it. Real clients check the host key against known_hosts with
// auth.HostKeyCallback; this one pins the key it knows.
func Example() {
	ctx := context.Background()

	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, _ := kex.NewSigner(hostPriv)
	_, userPriv, _ := ed25519.GenerateKey(rand.Reader)
	userKey, _ := kex.NewSigner(userPriv)

	srv, err := rsftp.NewServer(&rsftp.ServerConfig{
		HostKeys: []kex.Signer{hostKey},
		Auth: auth.ServerConfig{
			PublicKeyCallback: func(user string, key kex.PublicKey) (*auth.Permissions, error) {
				if user == "alice" && bytes.Equal(key.Marshal(), userKey.PublicKey().Marshal()) {
					return &auth.Permissions{}, nil
				}
				return nil, errors.New("unknown key")
			},
		},
		// The handler gets the command and the channel: stdin is
		// Read, stdout Write, stderr Stderr().
		Exec: func(ctx context.Context, s *rsftp.Session) int {
			fmt.Fprintf(s.Channel, "%s ran %q\n", s.User, s.Command)
			return 0
		},
		Logf: func(string, ...any) {},
	})
	if err != nil {
		log.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(l)
	defer srv.Close()

	c, err := rsftp.Dial(ctx, "tcp", l.Addr().String(), &rsftp.ClientConfig{
		User: "alice",
		Auth: []auth.Method{auth.PublicKeySigners(userKey)},
		HostKeyCallback: func(host string, port int, key kex.PublicKey) error {
			if !bytes.Equal(key.Marshal(), hostKey.PublicKey().Marshal()) {
				return errors.New("host key mismatch")
			}
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	sess, err := c.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	out, err := sess.Output(ctx, "uptime")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(out))
	// Output: alice ran "uptime"
}

// Streaming through a command: stdin and stdout are an io.Writer and an
// io.Reader, and Wait reports the exit status.
func ExampleClient_NewSession() {
	ctx := context.Background()
	c, stop := exampleServer(rsftp.CommandHandler("/bin/sh"))
	defer stop()
	sess, err := c.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	stdin, stdout := sess.Stdin(), sess.Stdout()
	if err := sess.Exec(ctx, "tr a-z A-Z; exit 3"); err != nil {
		log.Fatal(err)
	}
	go func() {
		io.Copy(stdin, strings.NewReader("streamed through the server\n"))
		stdin.Close()
	}()
	io.Copy(exampleStdout{}, stdout)
	err = sess.Wait()
	fmt.Println(err)
	// Output:
	// STREAMED THROUGH THE SERVER
	// remote command exited with status 3
}

type exampleStdout struct{}

func (exampleStdout) Write(p []byte) (int, error) { fmt.Print(string(p)); return len(p), nil }

// exampleServer starts a server that lets anyone in and dials it.
func exampleServer(exec rsftp.Handler) (*rsftp.Client, func()) {
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, _ := kex.NewSigner(hostPriv)
	_, userPriv, _ := ed25519.GenerateKey(rand.Reader)
	userKey, _ := kex.NewSigner(userPriv)
	srv, err := rsftp.NewServer(&rsftp.ServerConfig{
		HostKeys: []kex.Signer{hostKey},
		Auth: auth.ServerConfig{PublicKeyCallback: func(string, kex.PublicKey) (*auth.Permissions, error) {
			return &auth.Permissions{}, nil
		}},
		Exec: exec,
		Logf: func(string, ...any) {},
	})
	if err != nil {
		log.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(l)
	c, err := rsftp.Dial(context.Background(), "tcp", l.Addr().String(), &rsftp.ClientConfig{
		User: "example",
		Auth: []auth.Method{auth.PublicKeySigners(userKey)},
		HostKeyCallback: func(_ string, _ int, key kex.PublicKey) error {
			if !bytes.Equal(key.Marshal(), hostKey.PublicKey().Marshal()) {
				return errors.New("host key mismatch")
			}
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	return c, func() { c.Close(); srv.Close() }
}
