//go:build unix

package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/resume"
	"github.com/rsftp/rsftp/transport"
)

// testHelper is a helper served in process over a pipe (its standard
// input and output), with its run directory in a temporary directory,
// and the client's ed25519 key.
type testHelper struct {
	h    *helper
	priv ed25519.PrivateKey
	done chan error
	nc   net.Conn // the client's end of the pipe
}

func startTestHelper(t *testing.T, hold time.Duration) *testHelper {
	t.Helper()
	return startTestHelperIn(t, filepath.Join(t.TempDir(), "helper"), hold)
}

// startTestHelperIn is startTestHelper with the helper directory dir.
func startTestHelperIn(t *testing.T, dir string, hold time.Duration) *testHelper {
	t.Helper()
	if err := mkdirPrivate(dir); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, helperRunDir)
	if err := mkdirPrivate(run); err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := kex.NewSigner(priv)
	th := &testHelper{h: &helper{run: run, clientKey: signer.PublicKey().Marshal()}, priv: priv, done: make(chan error, 1)}
	a, b := socketPair(t)
	th.nc = a
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		select {
		case <-th.done:
		case <-time.After(10 * time.Second):
			t.Error("the helper did not end")
		}
	})
	go func() { th.done <- th.h.serve(ctx, b, hold, time.Minute) }()
	return th
}

// socketPair is a connected pair of Unix stream sockets: buffered, as
// the pipes sshd gives a command are (net.Pipe is not).
func socketPair(t *testing.T) (net.Conn, net.Conn) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	var cs [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		cs[i] = c
	}
	return cs[0], cs[1]
}

// connect logs in as the client does; reconnections dial the socket.
func (th *testHelper) connect(t *testing.T) *rsftp.Client {
	t.Helper()
	var c *rsftp.Client
	cfg := &rsftp.ClientConfig{
		User:            "u",
		Auth:            []auth.Method{auth.PublicKeys(th.priv)},
		HostKeyCallback: func(string, int, kex.PublicKey) error { return nil },
		Resume: &rsftp.ResumeConfig{NoNetworkWatch: true, MaxBackoff: 100 * time.Millisecond,
			Redial: func(ctx context.Context) (net.Conn, error) {
				st, _ := c.ResumeStatus()
				var d net.Dialer
				return d.DialContext(ctx, "unix", filepath.Join(th.h.run, st.Session, helperSocketName))
			}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rsftp.NewClient(ctx, th.nc, "helper", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Resumable() {
		t.Fatal("the helper's session is not resumable")
	}
	return c
}

// socket is the session's socket, once the helper listens on it (it
// does when the registry tells it the session began, just after the
// client has it).
func (th *testHelper) socket(t *testing.T, c *rsftp.Client) string {
	t.Helper()
	st, _ := c.ResumeStatus()
	sock := filepath.Join(th.h.run, st.Session, helperSocketName)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
	}
	t.Fatalf("the helper does not listen on %s", sock)
	return ""
}

// dialInner runs a key exchange with the resume extension on the
// helper's socket, as a client that does not hold the session would.
func dialInner(t *testing.T, sock string) *transport.Conn {
	t.Helper()
	uc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := transport.NewClientConn(ctx, uc, &transport.Config{
		HostKeyCallback: func(kex.PublicKey) error { return nil },
		Extensions: []transport.Extension{{Client: resume.ClientKexName, Server: resume.ServerKexName,
			FirstMsg: resume.MsgEnable, LastMsg: resume.MsgAck, QuietFailures: true}},
	})
	if err != nil {
		uc.Close()
		t.Fatal(err)
	}
	return conn
}

// TestHelperRefusesOthers: while the session is live on its first
// connection, the helper's socket admits no one else: a RESUME_REQUEST
// with the session's handle but a MAC made without its resume key is
// refused (AUTH_FAILED), and so is a new login, even with the key that
// made the session; the live session goes on; its own client then
// resumes through the socket (the registry moves the session); when the
// client closes, the helper ends and removes its socket and directory.
func TestHelperRefusesOthers(t *testing.T) {
	th := startTestHelper(t, time.Minute)
	c := th.connect(t)
	sock := th.socket(t, c)
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("socket mode %v, want a socket 0600", fi.Mode())
	}
	if di, err := os.Stat(filepath.Dir(sock)); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("socket directory: %v %v, want 0700", err, di.Mode())
	}
	st, _ := c.ResumeStatus()

	// A forged resumption: the right handle, a MAC without the key.
	conn := dialInner(t, sock)
	mac := make([]byte, 32)
	rand.Read(mac)
	if err := conn.WritePacket((&resume.Request{Handle: st.Handle, Received: 0, MAC: mac}).Marshal()); err != nil {
		t.Fatal(err)
	}
	p, err := conn.ReadPacket()
	if err != nil {
		t.Fatalf("reading the answer to a forged RESUME_REQUEST: %v", err)
	}
	f, err := resume.ParseFailure(p)
	if err != nil || f.Reason != resume.ReasonAuthFailed {
		t.Fatalf("answer to a forged RESUME_REQUEST: %v %v, want RESUME_FAILURE AUTH_FAILED", f, err)
	}
	conn.Close()

	// A second login: another key, then the very key of the first.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	for _, k := range []ed25519.PrivateKey{other, th.priv} {
		uc, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = rsftp.NewClient(ctx, uc, "helper", &rsftp.ClientConfig{User: "u", Auth: []auth.Method{auth.PublicKeys(k)},
			HostKeyCallback: func(string, int, kex.PublicKey) error { return nil }})
		cancel()
		uc.Close()
		if err == nil {
			t.Fatal("a second login through the helper's socket was admitted")
		}
	}

	// The live session is unharmed.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sc, err := c.SFTP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Stat("/"); err != nil {
		t.Fatal(err)
	}
	// Its own client resumes through the socket.
	c.Reconnect()
	for {
		st, _ := c.ResumeStatus()
		if st.Stats.Attaches >= 2 && st.State == resume.Attached {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no resumption through the socket: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := sc.Stat("/"); err != nil {
		t.Fatalf("after the resumption: %v", err)
	}
	sc.Close()
	c.Close()
	select {
	case err := <-th.done:
		th.done <- err
	case <-ctx.Done():
		t.Fatal("the helper did not end with its session")
	}
	if _, err := os.Stat(filepath.Dir(sock)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the session's directory outlived the helper: %v", err)
	}
}

// TestHelperHoldEnds: a helper whose client never comes back ends when
// its hold time runs out, and leaves nothing in its run directory.
func TestHelperHoldEnds(t *testing.T) {
	th := startTestHelper(t, 500*time.Millisecond)
	c := th.connect(t)
	sock := th.socket(t, c)
	// The link dies and the client is gone: no reconnection.
	th.nc.Close()
	c.Close()
	select {
	case err := <-th.done:
		th.done <- err
	case <-time.After(15 * time.Second):
		t.Fatal("the helper outlived its hold time")
	}
	if left, _ := os.ReadDir(th.h.run); len(left) != 0 {
		t.Errorf("the helper left %v in its run directory (socket %s)", left, sock)
	}
}

// TestHelperOtherUser: another user of the server cannot reach the
// session's socket: "rsftp attach" run as a user the test creates is
// refused by the helper directory (0700), and with that opened by the
// run directory, then by the session's directory, then by the socket
// (0600) itself. Past all four, the resume MAC remains
// (TestHelperRefusesOthers). Root only: it creates the user.
func TestHelperOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root; this test needs root to create a user")
		}
		t.Skip("needs root to create a user and run a command as that user")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("useradd missing under CI")
		}
		t.Skip("useradd not installed")
	}
	name := fmt.Sprintf("rsftpt%d", os.Getpid()%100000)
	if out, err := exec.Command("useradd", "-M", "-N", "-s", "/bin/sh", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)

	// A base directory anyone may enter, holding a copy of the tool
	// anyone may run; the helper directory inside it is the helper's.
	base, err := os.MkdirTemp("", "rsftp-helper-perm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	bin := filepath.Join(base, "rsftp")
	data, err := os.ReadFile(e2eTool(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	hdir := filepath.Join(base, "helper")
	th := startTestHelperIn(t, hdir, time.Minute)
	c := th.connect(t)
	defer c.Close()
	sock := th.socket(t, c)
	st, _ := c.ResumeStatus()

	attach := func() (string, error) {
		cmd := exec.Command(bin, "attach", "--dir", hdir, st.Session)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Env = []string{"HOME=/nonexistent", "PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, layer := range []struct{ path, what string }{
		{hdir, "the helper directory"},
		{filepath.Join(hdir, helperRunDir), "the run directory"},
		{filepath.Dir(sock), "the session's directory"},
		{sock, "the socket"},
	} {
		out, err := attach()
		if err == nil || !strings.Contains(out, "permission denied") {
			t.Fatalf("another user's attach, stopped by %s: %v, %q; want permission denied", layer.what, err, out)
		}
		// Open this layer (to everyone) to reach the next.
		mode := os.FileMode(0o711)
		if layer.path == sock {
			mode = 0o666
		}
		if err := os.Chmod(layer.path, mode); err != nil {
			t.Fatal(err)
		}
	}
	// The session is still its client's.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sc, err := c.SFTP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sc.Close()
}

// TestAnswerFirstConn: what the helper writes on its socket before the
// client has spoken is held, and leaves with its next write after the
// client's first bytes, as one write; before a read that would wait it
// leaves at once (the client may be waiting for it), and a client that
// never speaks gets it after answerFirstDelay.
func TestAnswerFirstConn(t *testing.T) {
	pair := func(t *testing.T) (*answerFirstConn, net.Conn, chan []byte) {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		w := make(chan []byte, 16)
		go func() {
			buf := make([]byte, 4096)
			for {
				n, err := b.Read(buf)
				if err != nil {
					close(w)
					return
				}
				w <- append([]byte(nil), buf[:n]...)
			}
		}()
		return newAnswerFirstConn(a), b, w
	}
	expect := func(t *testing.T, w chan []byte, want string, within time.Duration) {
		t.Helper()
		select {
		case got := <-w:
			if string(got) != want {
				t.Fatalf("the peer read %q, want %q", got, want)
			}
		case <-time.After(within):
			t.Fatalf("the peer read nothing in %v, want %q", within, want)
		}
	}
	quiet := func(t *testing.T, w chan []byte, d time.Duration) {
		t.Helper()
		select {
		case got := <-w:
			t.Fatalf("the peer read %q before it spoke", got)
		case <-time.After(d):
		}
	}

	t.Run("reply", func(t *testing.T) {
		c, peer, w := pair(t)
		c.Write([]byte("SSH-2.0-x\r\n"))
		c.Write([]byte("KEXINIT"))
		quiet(t, w, 30*time.Millisecond)
		go peer.Write([]byte("first flight"))
		buf := make([]byte, 64)
		if n, err := c.Read(buf); err != nil || string(buf[:n]) != "first flight" {
			t.Fatalf("Read: %q, %v", buf[:n], err)
		}
		quiet(t, w, 10*time.Millisecond)
		if n, err := c.Write([]byte("REPLY")); n != 5 || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
		expect(t, w, "SSH-2.0-x\r\nKEXINITREPLY", time.Second)
		c.Write([]byte("later"))
		expect(t, w, "later", time.Second)
	})
	t.Run("read-flushes", func(t *testing.T) {
		c, peer, w := pair(t)
		c.Write([]byte("SSH-2.0-x\r\nKEXINIT"))
		go peer.Write([]byte("version and KEXINIT, no guess"))
		buf := make([]byte, 64)
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
		// The next Read would wait for the peer, which waits for us.
		go c.Read(buf)
		expect(t, w, "SSH-2.0-x\r\nKEXINIT", time.Second)
	})
	t.Run("silent-peer", func(t *testing.T) {
		c, _, w := pair(t)
		start := time.Now()
		c.Write([]byte("SSH-2.0-x\r\n"))
		expect(t, w, "SSH-2.0-x\r\n", 10*answerFirstDelay)
		if d := time.Since(start); d < answerFirstDelay {
			t.Errorf("sent after %v, before answerFirstDelay (%v)", d, answerFirstDelay)
		}
	})
}

// TestPacedWriter: the helper's paced writes to a full pipe deliver
// every byte in order to a reader slower than the writer, and a write
// the reader does not drain ends at its deadline, or when the
// connection closes.
func TestPacedWriter(t *testing.T) {
	newPipe := func(t *testing.T) (*os.File, *pacedWriter) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(); w.Close() })
		rc, err := w.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		return r, &pacedWriter{rc: rc, size: 64 << 10, wait: initialPace}
	}
	t.Run("slow-reader", func(t *testing.T) {
		r, pw := newPipe(t)
		want := make([]byte, 4<<20)
		rand.Read(want)
		got := make(chan []byte)
		go func() {
			var b []byte
			buf := make([]byte, 32<<10)
			for len(b) < len(want) {
				n, err := r.Read(buf)
				if err != nil {
					break
				}
				b = append(b, buf[:n]...)
				time.Sleep(50 * time.Microsecond)
			}
			got <- b
		}()
		for p := want; len(p) > 0; p = p[min(len(p), 1<<20):] {
			if n, err := pw.Write(p[:min(len(p), 1<<20)]); err != nil || n != min(len(p), 1<<20) {
				t.Fatalf("Write: %d, %v", n, err)
			}
		}
		if b := <-got; !bytes.Equal(b, want) {
			t.Fatalf("the reader got %d bytes, not the %d written, or not in order", len(b), len(want))
		}
		if pw.wait < minPace || pw.wait > maxPace {
			t.Errorf("the pause went to %v, outside [%v, %v]", pw.wait, minPace, maxPace)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		_, pw := newPipe(t)
		pw.deadline.Store(time.Now().Add(50 * time.Millisecond).UnixNano())
		start := time.Now()
		n, err := pw.Write(make([]byte, 1<<20))
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Write to a pipe nobody reads: %d, %v; want a deadline error", n, err)
		}
		if n == 0 || n >= 1<<20 {
			t.Errorf("Write wrote %d bytes; want what the pipe holds", n)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Write returned after %v, long past its 50 ms deadline", d)
		}
	})
	t.Run("closed", func(t *testing.T) {
		_, pw := newPipe(t)
		done := make(chan error)
		go func() {
			_, err := pw.Write(make([]byte, 1<<20))
			done <- err
		}()
		time.Sleep(20 * time.Millisecond)
		pw.closed.Store(true)
		select {
		case err := <-done:
			if !errors.Is(err, os.ErrClosed) {
				t.Fatalf("Write after Close: %v; want os.ErrClosed", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Write still blocked 2 s after the connection closed")
		}
	})
}
