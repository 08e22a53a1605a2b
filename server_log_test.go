package rsftp_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/kex"
)

// syncBuffer is a bytes.Buffer for loggers written from several
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// records parses the JSON lines of a slog.JSONHandler.
func (b *syncBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(b.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// findRecord returns the first record with message msg, or nil.
func findRecord(recs []map[string]any, msg string) map[string]any {
	for _, r := range recs {
		if r["msg"] == msg {
			return r
		}
	}
	return nil
}

func testSigner(t *testing.T) kex.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := kex.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startTestServer runs a server with cfg (host key and an auth that lets
// anyone in added) and dials it as "alice".
func startTestServer(t *testing.T, cfg *rsftp.ServerConfig) *rsftp.Client {
	t.Helper()
	cfg.Auth = auth.ServerConfig{PublicKeyCallback: func(string, kex.PublicKey) (*auth.Permissions, error) {
		return &auth.Permissions{}, nil
	}}
	return serveAndDial(t, cfg, testSigner(t))
}

// TestServerLogDefaults: with neither Logger nor Logf the server writes
// nothing (not even to the standard logger); Logf alone still gets its
// lines.
func TestServerLogDefaults(t *testing.T) {
	var std syncBuffer
	prev, flags := log.Writer(), log.Flags()
	log.SetOutput(&std)
	defer func() { log.SetOutput(prev); log.SetFlags(flags) }()

	c := startTestServer(t, &rsftp.ServerConfig{})
	// A session the server refuses to open is a round trip after the
	// login, so the login's event has been reported by then.
	refusedSession(t, c)
	c.Close()
	if s := std.String(); s != "" {
		t.Errorf("the server wrote to the standard logger:\n%s", s)
	}

	var mu sync.Mutex
	var lines []string
	c = startTestServer(t, &rsftp.ServerConfig{Logf: func(format string, args ...any) {
		mu.Lock()
		lines = append(lines, fmt.Sprintf(format, args...))
		mu.Unlock()
	}})
	refusedSession(t, c)
	want := fmt.Sprintf("ssh: %v: authenticated as %q", c.Transport().LocalAddr(), "alice")
	mu.Lock()
	defer mu.Unlock()
	if len(lines) == 0 || lines[0] != want {
		t.Errorf("Logf lines %q, want first %q", lines, want)
	}
}

// TestServerLogger: Logger gets the login as a record with the user and
// the peer's address; Logf, also set, gets nothing.
func TestServerLogger(t *testing.T) {
	var srvLog syncBuffer
	logf := false
	c := startTestServer(t, &rsftp.ServerConfig{
		Logger: slog.New(slog.NewJSONHandler(&srvLog, nil)),
		Logf:   func(string, ...any) { logf = true }, // Logger wins
	})
	refusedSession(t, c)
	r := findRecord(srvLog.records(t), "authenticated")
	if r == nil {
		t.Fatalf("no login in the server's log:\n%s", srvLog.String())
	}
	if r["user"] != "alice" || r["remote"] != c.Transport().LocalAddr().String() {
		t.Errorf("login record user %v remote %v, want alice from %v", r["user"], r["remote"], c.Transport().LocalAddr())
	}
	if logf {
		t.Error("Logf was called although Logger is set")
	}
}

// refusedSession opens a session and asks for a command the server (with
// no Exec) refuses.
func refusedSession(t *testing.T, c *rsftp.Client) {
	t.Helper()
	sess, err := c.NewSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.Exec(context.Background(), "true"); err == nil {
		t.Fatal("exec succeeded on a server without Exec")
	}
}
