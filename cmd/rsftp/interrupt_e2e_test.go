package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/sshtest"
)

// blackholeRelay forwards TCP connections to a server, slowly (so that a
// transfer is still under way when the test acts), until blackhole:
// from then on nothing more is forwarded either way and new connections
// are accepted and left silent, as a dead path does.
type blackholeRelay struct {
	ln   net.Listener
	to   string
	dead chan struct{}
	once sync.Once
	mu   sync.Mutex
	open []net.Conn
}

func newBlackholeRelay(t *testing.T, to string) *blackholeRelay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &blackholeRelay{ln: ln, to: to, dead: make(chan struct{})}
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		for _, c := range r.open {
			c.Close()
		}
		r.mu.Unlock()
	})
	go r.serve()
	return r
}

func (r *blackholeRelay) port() int { return r.ln.Addr().(*net.TCPAddr).Port }

func (r *blackholeRelay) blackhole() { r.once.Do(func() { close(r.dead) }) }

func (r *blackholeRelay) track(c net.Conn) {
	r.mu.Lock()
	r.open = append(r.open, c)
	r.mu.Unlock()
}

func (r *blackholeRelay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.track(c)
		select {
		case <-r.dead:
			continue // accepted, never answered
		default:
		}
		s, err := net.Dial("tcp", r.to)
		if err != nil {
			c.Close()
			continue
		}
		r.track(s)
		go r.pipe(c, s)
		go r.pipe(s, c)
	}
}

// pipe copies at most about 16 MB/s, and nothing once the relay is dead.
func (r *blackholeRelay) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-r.dead:
			io.Copy(io.Discard, src) // keep the sender's writes flowing nowhere
			return
		default:
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
		time.Sleep(2 * time.Millisecond)
	}
}

// interruptCase is one run of the tool that is interrupted mid-transfer.
type interruptCase struct {
	put      bool
	sig      syscall.Signal
	detached bool // wait for the client to lose the link and start reconnecting
}

// TestE2EInterruptOnDeadLink: rsftp get or put from rsftp serve through
// a relay that turns into a blackhole mid-transfer, then SIGINT or
// SIGTERM: while the link is silently dead (still attached), and once
// the client has noticed and is reconnecting (detached, a resumption
// under way). The tool used to ignore the signal until the link came
// back. It must exit (the 10 s bound only tells a hang from an exit),
// with status 128 plus the signal's number, a message naming the
// command that continues (rsftp get -a / rsftp put -a) and not "context
// canceled", and the partial file must be a prefix of the source.
func TestE2EInterruptOnDeadLink(t *testing.T) {
	cases := map[string]interruptCase{
		"get-attached-SIGINT":  {sig: syscall.SIGINT},
		"get-detached-SIGINT":  {sig: syscall.SIGINT, detached: true},
		"put-attached-SIGINT":  {put: true, sig: syscall.SIGINT},
		"put-detached-SIGTERM": {put: true, sig: syscall.SIGTERM, detached: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) { e2eInterrupt(t, tc) })
	}
}

func e2eInterrupt(t *testing.T, tc interruptCase) {
	dir := t.TempDir()
	key := sshtest.KeyGen(t, dir, "ed25519", 0)
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	const size = 64 << 20
	var src, partial string
	if tc.put {
		src, partial = filepath.Join(dir, "big"), filepath.Join(root, "big")
	} else {
		src, partial = filepath.Join(root, "big"), filepath.Join(dir, "big")
	}
	data := e2eRandFile(t, src, size)
	port, srvKH := e2eServeArgs(t, root, key+".pub", "127.0.0.1")
	relay := newBlackholeRelay(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	// known_hosts for the relay's port, with the server's key (its host
	// key lies next to the known_hosts file e2eServeArgs wrote).
	pub, err := os.ReadFile(filepath.Join(filepath.Dir(srvKH), "hk.pub"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(pub))
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte("[127.0.0.1]:"+strconv.Itoa(relay.port())+" "+f[0]+" "+f[1]+"\n"), 0o600)

	events := filepath.Join(dir, "events")
	args := e2eOpts(key, kh, relay.port())
	args = append(args, "-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=1", "--events", events)
	verb := "get"
	if tc.put {
		verb = "put"
		args = append(args, src, "127.0.0.1:big")
	} else {
		args = append(args, "127.0.0.1:big", partial)
	}
	cmd := exec.Command(e2eTool(t), append([]string{verb}, args...)...)
	cmd.Env = e2eEnv(t)
	var errb lockedBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var werr error
	exited := make(chan struct{})
	go func() { werr = cmd.Wait(); close(exited) }()
	defer func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	}()
	if !waitSize(partial, 4<<20, 30*time.Second) {
		t.Fatalf("the transfer did not reach 4 MiB:\n%s", errb.String())
	}
	relay.blackhole()
	if tc.detached {
		deadline := time.Now().Add(30 * time.Second)
		for {
			if b, _ := os.ReadFile(events); bytes.Contains(b, []byte(`"reconnecting"`)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the client did not start reconnecting:\n%s", errb.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	} else {
		time.Sleep(300 * time.Millisecond) // the transfer now waits on the dead link
	}
	signalled := time.Now()
	cmd.Process.Signal(tc.sig)
	select {
	case <-exited:
		t.Logf("exited %v after %v", time.Since(signalled).Round(time.Millisecond), tc.sig)
	case <-time.After(10 * time.Second):
		t.Fatalf("rsftp %s did not exit after %v (10 s):\n%s", verb, tc.sig, errb.String())
	}
	stderr := errb.String()
	t.Logf("stderr: %s", stderr)
	code := 0
	if ee, ok := werr.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if want := 128 + int(tc.sig); code != want {
		t.Errorf("exit status %d (%v), want %d", code, werr, want)
	}
	if !strings.Contains(stderr, "rsftp "+verb+" -a ") {
		t.Errorf("stderr does not name rsftp %s -a:\n%s", verb, stderr)
	}
	if strings.Contains(stderr, "context canceled") {
		t.Errorf("stderr says context canceled:\n%s", stderr)
	}
	got, err := os.ReadFile(partial)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || !bytes.Equal(got, data[:len(got)]) {
		t.Fatalf("the partial file (%d bytes) is not a prefix of the source", len(got))
	}
	if !tc.put && !strings.Contains(stderr, "kept the first "+strconv.Itoa(len(got))+" bytes") {
		t.Errorf("stderr does not say the %d bytes on disk were kept:\n%s", len(got), stderr)
	}
}
