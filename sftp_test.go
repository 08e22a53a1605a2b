package rsftp_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/sftp"
)

// TestClientSFTPWithSFTPHandler: Client.SFTP against SFTPHandler moves a
// file both ways; closing the SFTP client ends the server's session; the
// session logs with its user and address.
func TestClientSFTPWithSFTPHandler(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	var sftpLog syncBuffer
	h := rsftp.SFTPHandler(&sftp.ServerConfig{Root: root, Logger: slog.New(slog.NewJSONHandler(&sftpLog, nil))})
	ended := make(chan int, 1)
	c := startTestServer(t, &rsftp.ServerConfig{
		Subsystems: map[string]rsftp.Handler{"sftp": func(ctx context.Context, s *rsftp.ServerSession) int {
			st := h(ctx, s)
			ended <- st
			return st
		}},
	})

	sc, err := c.SFTP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f, err := sc.Create("hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f, "hello over sftp\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "hello.txt"))
	if err != nil || string(got) != "hello over sftp\n" {
		t.Fatalf("file on the server: %q, %v", got, err)
	}
	f, err = sc.Open("hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(f)
	f.Close()
	if err != nil || string(back) != "hello over sftp\n" {
		t.Fatalf("read back %q, %v", back, err)
	}

	sc.Close()
	if st := <-ended; st != 0 {
		t.Errorf("handler exit status %d after the client closed, want 0", st)
	}

	recs := sftpLog.records(t)
	for _, msg := range []string{"sftp session started", "sftp session ended"} {
		r := findRecord(recs, msg)
		if r == nil {
			t.Fatalf("no %q in the session's log:\n%s", msg, sftpLog.String())
		}
		if r["user"] != "alice" || r["remote"] == "" || r["remote"] == nil {
			t.Errorf("%q: user %v remote %v, want alice and an address", msg, r["user"], r["remote"])
		}
		if _, ok := r["err"]; ok {
			t.Errorf("%q has an error: %v", msg, r["err"])
		}
	}

	// The connection outlives the SFTP client: another session works.
	sc2, err := c.SFTP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc2.Stat("hello.txt"); err != nil {
		t.Error(err)
	}
	sc2.Close()
	<-ended
}

// TestClientSFTPContextEndsAfter: the context given to SFTP may end as
// soon as it returns; the session goes on (the answer to the subsystem
// request, sent ahead of INIT, was once waited for under it).
func TestClientSFTPContextEndsAfter(t *testing.T) {
	root := t.TempDir()
	c := startTestServer(t, &rsftp.ServerConfig{
		Subsystems: map[string]rsftp.Handler{"sftp": rsftp.SFTPHandler(&sftp.ServerConfig{Root: root})},
	})
	for range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		sc, err := c.SFTP(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sc.Stat("."); err != nil {
			t.Fatalf("Stat after SFTP's context ended: %v", err)
		}
		sc.Close()
	}
}

// TestClientSFTPRefused: a server without the sftp subsystem refuses, and
// SFTP says so; the connection stays usable.
func TestClientSFTPRefused(t *testing.T) {
	ctx := context.Background()
	c := startTestServer(t, &rsftp.ServerConfig{
		Exec: func(ctx context.Context, s *rsftp.ServerSession) int { return 0 },
	})
	if sc, err := c.SFTP(ctx); err == nil {
		sc.Close()
		t.Fatal("SFTP succeeded against a server without the subsystem")
	} else if !strings.Contains(err.Error(), "sftp") || !strings.Contains(err.Error(), "refused") {
		// The refusal itself, not what the closed session did to the
		// INIT sent behind the request.
		t.Errorf("error %q does not say the subsystem was refused", err)
	}
	sess, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Run(ctx, "true"); err != nil {
		t.Errorf("exec after the refused subsystem: %v", err)
	}
}

// TestSFTPHandlerBadRoot: a session whose root cannot be opened ends with
// status 1 and a warning in the session's log.
func TestSFTPHandlerBadRoot(t *testing.T) {
	var sftpLog syncBuffer
	h := rsftp.SFTPHandler(&sftp.ServerConfig{
		Root:   filepath.Join(t.TempDir(), "missing"),
		Logger: slog.New(slog.NewJSONHandler(&sftpLog, nil)),
	})
	ended := make(chan int, 1)
	c := startTestServer(t, &rsftp.ServerConfig{
		Subsystems: map[string]rsftp.Handler{"sftp": func(ctx context.Context, s *rsftp.ServerSession) int {
			st := h(ctx, s)
			ended <- st
			return st
		}},
	})
	if sc, err := c.SFTP(context.Background()); err == nil {
		sc.Close()
		t.Error("SFTP succeeded with a root that does not exist")
	}
	if st := <-ended; st != 1 {
		t.Errorf("exit status %d, want 1", st)
	}
	r := findRecord(sftpLog.records(t), "sftp session ended")
	if r == nil || r["level"] != "WARN" || r["err"] == nil {
		t.Errorf("no warning with the error:\n%s", sftpLog.String())
	}
}

// TestSFTPHandlerConnectionClosedIsNoWarning: a client that closes its
// whole connection straight after its last request ends the session with
// the connection; that is logged as a normal end, never a warning with
// "context canceled".
func TestSFTPHandlerConnectionClosedIsNoWarning(t *testing.T) {
	ctx := context.Background()
	for i := range 20 {
		var sftpLog syncBuffer
		h := rsftp.SFTPHandler(&sftp.ServerConfig{Root: t.TempDir(), Logger: slog.New(slog.NewJSONHandler(&sftpLog, nil))})
		ended := make(chan int, 1)
		c := startTestServer(t, &rsftp.ServerConfig{
			Subsystems: map[string]rsftp.Handler{"sftp": func(ctx context.Context, s *rsftp.ServerSession) int {
				st := h(ctx, s)
				ended <- st
				return st
			}},
		})
		sc, err := c.SFTP(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sc.RealPath("."); err != nil {
			t.Fatal(err)
		}
		c.Close() // the connection, not the SFTP client first
		if st := <-ended; st != 0 {
			t.Errorf("round %d: exit status %d", i, st)
		}
		if strings.Contains(sftpLog.String(), `"level":"WARN"`) {
			t.Fatalf("round %d: a warning for a normal close:\n%s", i, sftpLog.String())
		}
		if findRecord(sftpLog.records(t), "sftp session ended") == nil {
			t.Fatalf("round %d: no end logged:\n%s", i, sftpLog.String())
		}
	}
}
