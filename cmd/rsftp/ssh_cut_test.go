package main

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/internal/sshtest"
)

// linkRelay forwards TCP connections to a server until the test cuts the
// link: reset closes every connection at once (RST), blackhole stops
// forwarding either way and leaves new connections silent, as a dead
// path does, until restore.
type linkRelay struct {
	ln   net.Listener
	to   string
	mu   sync.Mutex
	dead bool
	open []net.Conn
}

func newLinkRelay(t *testing.T, to string) *linkRelay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &linkRelay{ln: ln, to: to}
	t.Cleanup(func() {
		ln.Close()
		r.reset()
	})
	go r.serve()
	return r
}

func (r *linkRelay) port() int { return r.ln.Addr().(*net.TCPAddr).Port }

func (r *linkRelay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.open = append(r.open, c)
		dead := r.dead
		r.mu.Unlock()
		if dead {
			continue // accepted, never answered
		}
		s, err := net.Dial("tcp", r.to)
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		r.open = append(r.open, s)
		r.mu.Unlock()
		go r.pipe(c, s)
		go r.pipe(s, c)
	}
}

func (r *linkRelay) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		r.mu.Lock()
		dead := r.dead
		r.mu.Unlock()
		if dead {
			io.Copy(io.Discard, src) // the bytes go nowhere
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// reset closes every connection through the relay with an RST.
func (r *linkRelay) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.open {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
	r.open = nil
}

// blackhole makes the path dead: nothing passes, nothing is refused.
func (r *linkRelay) blackhole() {
	r.mu.Lock()
	r.dead = true
	r.mu.Unlock()
}

// restore brings the path back for new connections; those of the dead
// path stay dead (closed with an RST, as a peer long gone would).
func (r *linkRelay) restore() {
	r.mu.Lock()
	old := r.open
	r.open = nil
	r.dead = false
	r.mu.Unlock()
	for _, c := range old {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
}

// startExecServer runs an rsftp server in the test's process, as rsftp
// serve with its session hold, that also runs commands (exec, no pty)
// with /bin/sh: what a resumable session carries, without S's --shell.
// It returns the port and a known_hosts line for 127.0.0.1 at port
// knownPort.
func startExecServer(t *testing.T, authorizedKeys string) (port int, hostKeyLine func(knownPort int) string) {
	t.Helper()
	dir := t.TempDir()
	hkPath := filepath.Join(dir, "hk")
	o, err := parseServeFlags([]string{"--root", dir, "--host-key", hkPath, "--authorized-keys", authorizedKeys}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	hk, _, err := loadOrCreateHostKey(hkPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := o.serveConfig(hk, localUser(), slog.New(slog.DiscardHandler))
	cfg.Exec = rsftp.CommandHandler("/bin/sh")
	srv, err := rsftp.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	pub, err := os.ReadFile(hkPath + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(pub))
	return l.Addr().(*net.TCPAddr).Port, func(p int) string {
		return fmt.Sprintf("[127.0.0.1]:%d %s %s\n", p, f[0], f[1])
	}
}

// waitEvent waits until the --events file holds n events of kind.
func waitEvent(t *testing.T, path, kind string, n int, stderr func() string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(path); err == nil && strings.Count(string(b), `"event":"`+kind+`"`) >= n {
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(path)
			t.Fatalf("no %d %s events; events:\n%s\nrsftp:\n%s", n, kind, b, stderr())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestE2ESSHCutMidSession: a remote command prints a numbered line
// every 10 ms while the link is cut three times, by resets and a
// blackhole; meanwhile keys go in on stdin, some while the link is away.
// Every line arrives once and in order, and the keys arrive once, in
// order: the command stores them in a file.
func TestE2ESSHCutMidSession(t *testing.T) {
	dir := t.TempDir()
	tg := &sshTarget{}
	tg.key = sshtest.KeyGen(t, dir, "ed25519", 0)
	port, khLine := startExecServer(t, tg.key+".pub")
	relay := newLinkRelay(t, "127.0.0.1:"+strconv.Itoa(port))
	tg.port = relay.port()
	tg.kh = filepath.Join(dir, "known_hosts")
	os.WriteFile(tg.kh, []byte(khLine(relay.port())), 0o600)
	events := filepath.Join(dir, "events")
	typed := filepath.Join(dir, "typed")
	script := fmt.Sprintf(`exec 3<&0; (cat <&3 >%[1]s; touch %[1]s.done) & i=0; while [ ! -e %[1]s.done ]; do echo "line $i"; i=$((i+1)); sleep 0.01; done; echo "end $i"`, typed)
	cmd := exec.Command(e2eTool(t), tg.args("--events", events, "-o", "ServerAliveInterval=1", "127.0.0.1", script)...)
	cmd.Env = e2eEnv(t)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var errMu sync.Mutex
	var errb strings.Builder
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		errMu.Lock()
		defer errMu.Unlock()
		return errb.Write(p)
	})
	stderr := func() string {
		errMu.Lock()
		defer errMu.Unlock()
		return errb.String()
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 1<<16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var got []string
	// next waits for n more lines.
	next := func(n int) {
		t.Helper()
		for range n {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("output ended after %d lines; rsftp:\n%s", len(got), stderr())
				}
				got = append(got, l)
			case <-time.After(60 * time.Second):
				t.Fatalf("no line after %d; rsftp:\n%s", len(got), stderr())
			}
		}
	}
	var keys []string
	typeKey := func(k string) {
		keys = append(keys, k)
		io.WriteString(stdin, k+"\n")
	}
	next(20)
	typeKey("before any cut")
	next(20)

	relay.reset() // a reset; keys typed while detached
	waitEvent(t, events, "link_lost", 1, stderr)
	typeKey("typed while the link was away (1)")
	typeKey("and again")
	waitEvent(t, events, "resumed", 1, stderr)
	next(30)

	relay.blackhole() // a dead path: found by ServerAliveInterval
	typeKey("typed into the blackhole")
	waitEvent(t, events, "link_lost", 2, stderr)
	typeKey("typed while the link was away (2)")
	time.Sleep(500 * time.Millisecond) // attempts into the blackhole
	relay.restore()
	waitEvent(t, events, "resumed", 2, stderr)
	next(30)

	relay.reset()
	relay.reset() // the first reconnection too, if it was quick
	waitEvent(t, events, "resumed", 3, stderr)
	typeKey("after the last cut")
	next(20)
	stdin.Close() // cat ends, and the loop with it
	for l := range lines {
		got = append(got, l)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("rsftp ssh: %v\n%s", err, stderr())
	}
	last := got[len(got)-1]
	n, err := strconv.Atoi(strings.TrimPrefix(last, "end "))
	if err != nil || len(got) != n+1 {
		t.Fatalf("%d lines, the last %q", len(got), last)
	}
	for i, l := range got[:n] {
		if l != fmt.Sprintf("line %d", i) {
			t.Fatalf("line %d is %q: lost, doubled or out of order", i, l)
		}
	}
	b, err := os.ReadFile(typed)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(keys, "\n") + "\n"; string(b) != want {
		t.Fatalf("the command read %q, want %q", b, want)
	}
	t.Logf("%d lines across the cuts; events:\n%s", n, readFileString(events))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func readFileString(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}
