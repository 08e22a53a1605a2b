package rsftp_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/resume"
	"github.com/rsftp/rsftp/sftp"
)

// TestServerCloseEndsResumableSessions: Close (rsftp serve's SIGTERM)
// ends the resumable sessions it keeps, telling their clients with a
// DISCONNECT, and returns; before, a session with an SFTP subsystem open
// kept Close waiting (its connection closed, the session only detached
// and waited for a client that could no longer come back), and the
// client went on reconnecting for the hold time.
func TestServerCloseEndsResumableSessions(t *testing.T) {
	hostKey, userKey := testSigner(t), testSigner(t)
	srv, err := rsftp.NewServer(&rsftp.ServerConfig{
		HostKeys: []kex.Signer{hostKey},
		Auth: auth.ServerConfig{PublicKeyCallback: func(string, kex.PublicKey) (*auth.Permissions, error) {
			return &auth.Permissions{}, nil
		}},
		Subsystems: map[string]rsftp.Handler{"sftp": rsftp.SFTPHandler(&sftp.ServerConfig{Root: t.TempDir()})},
		Resume:     &rsftp.ResumeServerConfig{},
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	ctx := context.Background()
	c, err := rsftp.Dial(ctx, "tcp", l.Addr().String(), &rsftp.ClientConfig{
		User: "alice",
		Auth: []auth.Method{auth.PublicKeySigners(userKey)},
		HostKeyCallback: func(_ string, _ int, key kex.PublicKey) error {
			if !bytes.Equal(key.Marshal(), hostKey.PublicKey().Marshal()) {
				return errors.New("host key mismatch")
			}
			return nil
		},
		Resume: &rsftp.ResumeConfig{NoNetworkWatch: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := c.SFTP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if _, err := sc.RealPath("."); err != nil {
		t.Fatal(err)
	}
	if st, ok := c.ResumeStatus(); !ok || st.State != resume.Attached {
		t.Fatalf("not a resumable session: %+v", st)
	}

	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Server.Close still waiting after 30 s")
	}
	if n := srv.ResumeStats().Sessions; n != 0 {
		t.Errorf("%d sessions kept after Close", n)
	}
	// The client hears that the session ended; it does not go on
	// reconnecting to a server that has gone.
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		st, _ := c.ResumeStatus()
		t.Fatalf("the client's session still %v 30 s after the server closed", st.State)
	}
	if st, _ := c.ResumeStatus(); st.State != resume.Closed {
		t.Errorf("client's session %v, want closed", st.State)
	}
}
