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
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/sftp"
)

// A server with one exec handler, and a client that runs a command on
// it. Real clients check the host key against known_hosts with
// auth.KnownHostsCallback; this one pins the key it knows.
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
		Exec: func(ctx context.Context, s *rsftp.ServerSession) int {
			fmt.Fprintf(s.Channel, "%s ran %q\n", s.User, s.Command)
			return 0
		},
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

// A client as the package documentation shows it: the host key checked
// against the user's known_hosts, a key from ~/.ssh, a command, then
// files over SFTP. (Compiled, not run: it needs a server.)
func ExampleDial() {
	ctx := context.Background()
	home, err := os.UserHomeDir()
	if err != nil {
		log.Fatal(err)
	}
	pem, err := os.ReadFile(filepath.Join(home, ".ssh", "id_ed25519"))
	if err != nil {
		log.Fatal(err)
	}
	signer, _, err := auth.ParsePrivateKey(pem, nil)
	if err != nil {
		log.Fatal(err)
	}
	knownHostsFiles := []string{filepath.Join(home, ".ssh", "known_hosts")}

	cfg := &rsftp.ClientConfig{
		User:            "alice",
		Auth:            []auth.Method{auth.PublicKeys(signer)},
		HostKeyCallback: auth.KnownHostsCallback(knownHostsFiles, auth.StrictYes, false),
	}
	c, err := rsftp.Dial(ctx, "tcp", "example.org:22", cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	sess, err := c.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	out, err := sess.Output(ctx, "uname -a")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s", out)

	sc, err := c.SFTP(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer sc.Close()
	if err := sc.Download(ctx, "report.csv", "report.csv", sftp.TransferOptions{}); err != nil {
		log.Fatal(err)
	}
}

// Files over SFTP: the server serves a directory with SFTPHandler, and
// the client opens an SFTP session on its connection with one call.
func ExampleClient_SFTP() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "rsftp-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "motd"), []byte("served over SFTP\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	c, stop := exampleServerWith(&rsftp.ServerConfig{
		Subsystems: map[string]rsftp.Handler{
			"sftp": rsftp.SFTPHandler(&sftp.ServerConfig{Root: dir, ReadOnly: true}),
		},
	})
	defer stop()

	sc, err := c.SFTP(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer sc.Close() // closes the SFTP session; c stays open
	f, err := sc.Open("motd")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	io.Copy(exampleStdout{}, f)
	// Output: served over SFTP
}

// An SFTP server as the package documentation shows it: the keys of an
// authorized_keys file may log in, and one slog.Logger gets the server's
// connection events and each SFTP session's (with its user and address).
// (Compiled, not run: it serves until it fails.)
func ExampleSFTPHandler() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	pem, err := os.ReadFile("/etc/rsftp/host_ed25519_key")
	if err != nil {
		log.Fatal(err)
	}
	priv, _, err := auth.ParsePrivateKey(pem, nil)
	if err != nil {
		log.Fatal(err)
	}
	hostKey, err := kex.NewSigner(priv)
	if err != nil {
		log.Fatal(err)
	}
	keys, err := auth.LoadAuthorizedKeys("/etc/rsftp/authorized_keys")
	if err != nil {
		log.Fatal(err)
	}
	allowed := auth.AuthorizedKeysCallback(keys)

	srv, err := rsftp.NewServer(&rsftp.ServerConfig{
		HostKeys: []kex.Signer{hostKey},
		Auth: auth.ServerConfig{PublicKeyCallback: func(user string, key kex.PublicKey) (*auth.Permissions, error) {
			if _, ok := allowed(user, key); !ok {
				return nil, errors.New("unknown key")
			}
			return &auth.Permissions{}, nil
		}},
		Subsystems: map[string]rsftp.Handler{
			"sftp": rsftp.SFTPHandler(&sftp.ServerConfig{Root: "/srv/files", Logger: logger}),
		},
		Logger: logger,
	})
	if err != nil {
		log.Fatal(err)
	}
	l, err := net.Listen("tcp", ":2222")
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(srv.Serve(l))
}

func (exampleStdout) Write(p []byte) (int, error) { fmt.Print(string(p)); return len(p), nil }

// exampleServer starts a server that lets anyone in and dials it.
func exampleServer(exec rsftp.Handler) (*rsftp.Client, func()) {
	return exampleServerWith(&rsftp.ServerConfig{Exec: exec})
}

// exampleServerWith starts a server with cfg, its host key and an auth
// that lets anyone in, and dials it.
func exampleServerWith(cfg *rsftp.ServerConfig) (*rsftp.Client, func()) {
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, _ := kex.NewSigner(hostPriv)
	_, userPriv, _ := ed25519.GenerateKey(rand.Reader)
	userKey, _ := kex.NewSigner(userPriv)
	cfg.HostKeys = []kex.Signer{hostKey}
	cfg.Auth = auth.ServerConfig{PublicKeyCallback: func(string, kex.PublicKey) (*auth.Permissions, error) {
		return &auth.Permissions{}, nil
	}}
	srv, err := rsftp.NewServer(cfg)
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
