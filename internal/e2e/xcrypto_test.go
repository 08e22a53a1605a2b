package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/kex"
)

func newEd25519(t testing.TB) (kex.Signer, ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := kex.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := ssh.NewSignerFromSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return ours, theirs
}

// golang.org/x/crypto/ssh's client against our server: exec with stdin,
// stdout, stderr and exit status.
func TestInteropXCryptoClientToOurServer(t *testing.T) {
	userOurs, userTheirs := newEd25519(t)
	hostOurs, _ := newEd25519(t)
	cfg := &rsftp.ServerConfig{
		HostKeys: []kex.Signer{hostOurs},
		Auth: auth.ServerConfig{PublicKeyCallback: func(user string, key kex.PublicKey) (*auth.Permissions, error) {
			if user == "alice" && bytes.Equal(key.Marshal(), userOurs.PublicKey().Marshal()) {
				return &auth.Permissions{}, nil
			}
			return nil, errors.New("no")
		}},
		Exec: rsftp.CommandHandler("/bin/sh"),
		Logf: t.Logf,
	}
	srv, err := rsftp.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(l)
	defer srv.Close()

	hostPub, _ := ssh.ParsePublicKey(hostOurs.PublicKey().Marshal())
	c, err := ssh.Dial("tcp", l.Addr().String(), &ssh.ClientConfig{
		User: "alice", Auth: []ssh.AuthMethod{ssh.PublicKeys(userTheirs)},
		HostKeyCallback: ssh.FixedHostKey(hostPub), Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	s.Stdin = bytes.NewReader([]byte("abc"))
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	err = s.Run("cat; echo e >&2; exit 5")
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 5 || out.String() != "abc" || errb.String() != "e\n" {
		t.Fatalf("err %v out %q stderr %q", err, out.String(), errb.String())
	}
}

// Our client against golang.org/x/crypto/ssh's server.
func TestInteropOurClientToXCryptoServer(t *testing.T) {
	userOurs, _ := newEd25519(t)
	_, hostTheirs := newEd25519(t)
	scfg := &ssh.ServerConfig{PublicKeyCallback: func(md ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		if bytes.Equal(key.Marshal(), userOurs.PublicKey().Marshal()) {
			return &ssh.Permissions{}, nil
		}
		return nil, errors.New("no")
	}}
	scfg.AddHostKey(hostTheirs)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	go func() {
		nc, err := l.Accept()
		if err != nil {
			return
		}
		_, chans, reqs, err := ssh.NewServerConn(nc, scfg)
		if err != nil {
			return
		}
		go ssh.DiscardRequests(reqs)
		for nch := range chans {
			ch, reqs, _ := nch.Accept()
			go func() {
				for r := range reqs {
					r.Reply(r.Type == "exec", nil)
					if r.Type == "exec" {
						io.Copy(ch, ch)
						ch.CloseWrite()
						ch.SendRequest("exit-status", false, []byte{0, 0, 0, 0})
						ch.Close()
					}
				}
			}()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hk, _ := kex.ParsePublicKey(hostTheirs.PublicKey().Marshal())
	c, err := rsftp.Dial(ctx, "tcp", l.Addr().String(), &rsftp.ClientConfig{
		User: "bob", Auth: []auth.Method{auth.PublicKeySigners(userOurs)},
		HostKeyCallback: func(_ string, _ int, k kex.PublicKey) error {
			if !bytes.Equal(k.Marshal(), hk.Marshal()) {
				return errors.New("mismatch")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stream(t, c, "echo", 4<<20)
}
