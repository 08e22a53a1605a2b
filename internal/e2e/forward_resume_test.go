package e2e

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/internal/agenttest"
	"github.com/rsftp/rsftp/internal/netsim"
)

// numbered is one direction of a checked stream: the writer sends 8-byte
// big-endian record numbers 0, 1, 2... and the reader checks that each
// byte is the one at its offset: a byte lost, repeated or out of order
// fails it.
type numbered struct {
	name   string
	w      io.Writer
	r      io.Reader
	sent   int64 // the writer's offset (the writer's goroutine)
	got    atomic.Int64
	failed chan error
}

func newNumbered(name string, w io.Writer, r io.Reader) *numbered {
	s := &numbered{name: name, w: w, r: r, failed: make(chan error, 2)}
	go s.read()
	return s
}

// numberedByte is the byte at offset k of the stream.
func numberedByte(k int64) byte {
	var rec [8]byte
	binary.BigEndian.PutUint64(rec[:], uint64(k/8))
	return rec[k%8]
}

// write sends the next n bytes of the stream.
func (s *numbered) write(n int64) {
	buf := make([]byte, 16<<10)
	for n > 0 {
		m := min(n, int64(len(buf)))
		for i := range m {
			buf[i] = numberedByte(s.sent + i)
		}
		if _, err := s.w.Write(buf[:m]); err != nil {
			s.failed <- fmt.Errorf("%s: write at %d: %w", s.name, s.sent, err)
			return
		}
		s.sent += m
		n -= m
	}
}

func (s *numbered) read() {
	buf := make([]byte, 32<<10)
	var off int64
	for {
		n, err := s.r.Read(buf)
		for i := range n {
			if buf[i] != numberedByte(off) {
				s.failed <- fmt.Errorf("%s: byte %d is %#x, want %#x", s.name, off, buf[i], numberedByte(off))
				return
			}
			off++
		}
		s.got.Store(off)
		if err != nil {
			if err != io.EOF {
				s.failed <- fmt.Errorf("%s: read at %d: %w", s.name, off, err)
			}
			return
		}
	}
}

// waitFor waits until the reader has checked n bytes.
func (s *numbered) waitFor(t *testing.T, n int64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for s.got.Load() < n {
		select {
		case err := <-s.failed:
			t.Fatal(err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d bytes after %v", s.name, s.got.Load(), n, within)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A forwarded TCP connection, remote (ListenTCP) and local (DialTCP),
// carries numbered bytes both ways across resets and blackholes of the
// session's link: every byte arrives once and in order, and neither end's
// TCP connection notices. A connection to the remote forward made while
// the link is away opens its channel once the session is back.
func TestForwardResume(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, time.Minute, func(cfg *rsftp.ServerConfig) {
		cfg.AllowRemoteForwarding = func(string, string, int) bool { return true }
	}, netsim.WithLatency(time.Millisecond))
	c := r.dial(nil)

	// -R: the server listens; a TCP client dials it, the client's
	// listener accepts.
	l, err := c.ListenTCP(ctx, "localhost", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, rport, _ := net.SplitHostPort(l.Addr().String())
	rOuter, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", rport))
	if err != nil {
		t.Fatal(err)
	}
	defer rOuter.Close()
	rInner, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer rInner.Close()

	// -L: the client dials through the server to a TCP listener.
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	lInner, err := c.DialTCP(ctx, "127.0.0.1", tl.Addr().(*net.TCPAddr).Port)
	if err != nil {
		t.Fatal(err)
	}
	defer lInner.Close()
	lOuter, err := tl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer lOuter.Close()

	streams := []*numbered{
		newNumbered("-R to the client", rOuter, rInner),
		newNumbered("-R from the client", rInner, rOuter),
		newNumbered("-L to the server", lInner, lOuter),
		newNumbered("-L from the server", lOuter, lInner),
	}
	const phase = 512 << 10
	modes := []netsim.CutMode{netsim.Reset, netsim.Blackhole, netsim.Reset, netsim.Blackhole}
	for i, mode := range modes {
		base := int64(i) * phase
		// The next phase's writers start once these have returned: a
		// writer counts what it sent after its last Write, which the
		// reader may have seen before.
		var writers sync.WaitGroup
		for _, s := range streams {
			writers.Go(func() { s.write(phase) })
		}
		// Cut with the phase's bytes in flight.
		for _, s := range streams {
			s.waitFor(t, base+phase/4, 20*time.Second)
		}
		r.net.CutAll(mode)
		t.Logf("cut %d (%v)", i, mode)
		for _, s := range streams {
			s.waitFor(t, base+phase, 30*time.Second)
		}
		writers.Wait()
		r.waitResumed(i+1, 10*time.Second)
	}

	// While the link is away (blackhole, no reconnection possible), a
	// new connection to the remote forward is accepted by the server,
	// its data waits, and it reaches the client once the session is
	// back.
	r.net.SetPathDown(true)
	r.net.CutAll(netsim.Blackhole)
	late, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", rport))
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	if _, err := io.WriteString(late, "sent while the link was away"); err != nil {
		t.Fatal(err)
	}
	for r.clientCount(rsftp.EventLinkLost) < len(modes)+1 {
		time.Sleep(5 * time.Millisecond)
	}
	r.net.SetPathDown(false)
	lateInner, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer lateInner.Close()
	buf := make([]byte, len("sent while the link was away"))
	if _, err := io.ReadFull(lateInner, buf); err != nil || string(buf) != "sent while the link was away" {
		t.Fatalf("late connection: %q, %v", buf, err)
	}
	r.waitResumed(len(modes)+1, 10*time.Second)

	// The streams end cleanly: EOF passes through each forward.
	rOuter.(*net.TCPConn).CloseWrite()
	lOuter.(*net.TCPConn).CloseWrite()
	rInner.(interface{ CloseWrite() error }).CloseWrite()
	lInner.(interface{ CloseWrite() error }).CloseWrite()
	total := int64(len(modes)) * phase
	for _, s := range streams {
		s.waitFor(t, total, 20*time.Second)
		select {
		case err := <-s.failed:
			t.Fatal(err)
		default:
		}
	}
	t.Logf("%d bytes each way through -R and -L across %d cuts; remote forward port %s", total, len(modes)+1, strconv.Quote(rport))
}

// agentListLoop is an Exec handler: for each line on stdin it lists the
// forwarded agent's keys over one agent connection, kept for the whole
// session, and writes "<n> <first comment>".
func agentListLoop(ctx context.Context, s *rsftp.ServerSession) int {
	if s.AgentSocket == "" {
		fmt.Fprintln(s.Channel, "no agent")
		return 1
	}
	a, err := auth.DialAgent(ctx, s.AgentSocket)
	if err != nil {
		fmt.Fprintln(s.Channel, err)
		return 1
	}
	defer a.Close()
	sc := bufio.NewScanner(s.Channel)
	for sc.Scan() {
		keys, err := a.List()
		if err != nil || len(keys) == 0 {
			fmt.Fprintf(s.Channel, "list: %d keys, %v\n", len(keys), err)
			return 1
		}
		fmt.Fprintf(s.Channel, "%d %s\n", len(keys), keys[0].Comment)
	}
	return 0
}

// Agent forwarding across cuts: an agent connection made before the cuts
// answers after each of them, and a request in flight when the link goes
// (written just before a blackhole) is answered once, after the
// resumption.
func TestForwardAgentResume(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, time.Minute, func(cfg *rsftp.ServerConfig) {
		cfg.AllowAgentForwarding = func(string) bool { return true }
		cfg.Exec = agentListLoop
	}, netsim.WithLatency(time.Millisecond))
	c := r.dial(nil)
	ag := agenttest.New()
	ag.Add(signer(t), "agent-across-cuts")
	sess, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ForwardAgent(ctx, sess, func(context.Context) (net.Conn, error) {
		a, b := net.Pipe()
		go ag.Serve(b)
		return a, nil
	}); err != nil {
		t.Fatal(err)
	}
	stdin, stdout := sess.Stdin(), bufio.NewReader(sess.Stdout())
	if err := sess.Exec(ctx, "loop"); err != nil {
		t.Fatal(err)
	}
	ask := func(what string) {
		t.Helper()
		line, err := stdout.ReadString('\n')
		if err != nil || line != "1 agent-across-cuts\n" {
			t.Fatalf("%s: %q, %v", what, line, err)
		}
	}
	io.WriteString(stdin, "list\n")
	ask("before the cuts")
	for i, mode := range []netsim.CutMode{netsim.Reset, netsim.Blackhole, netsim.Reset} {
		io.WriteString(stdin, "list\n") // in flight at the cut
		r.net.CutAll(mode)
		ask(fmt.Sprintf("in flight at cut %d (%v)", i, mode))
		r.waitResumed(i+1, 10*time.Second)
		io.WriteString(stdin, "list\n")
		ask(fmt.Sprintf("after cut %d", i))
	}
	// No request was answered twice: nothing follows the last answer.
	stdin.Close()
	if rest, err := io.ReadAll(stdout); err != nil || len(rest) != 0 {
		t.Fatalf("after the last answer: %q, %v", rest, err)
	}
	if err := sess.Wait(); err != nil {
		t.Fatal(err)
	}
}

// A detached session keeps its remote forward listening; when its hold
// time runs out the listener closes.
func TestForwardListenerOutlivesLinkNotSession(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, 3*time.Second, func(cfg *rsftp.ServerConfig) {
		cfg.AllowRemoteForwarding = func(string, string, int) bool { return true }
	}, netsim.WithLatency(time.Millisecond))
	c := r.dial(nil)
	l, err := c.ListenTCP(ctx, "localhost", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, port := splitAddr(l.Addr().String())
	dial := func() error {
		tc, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			tc.Close()
		}
		return err
	}
	r.net.SetPathDown(true)
	r.net.CutAll(netsim.Blackhole)
	serverCount := func(kind rsftp.EventKind) int {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.count(r.serverEvents, kind)
	}
	deadline := time.Now().Add(20 * time.Second)
	for serverCount(rsftp.EventLinkLost) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the server did not notice the lost link")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if serverCount(rsftp.EventClosed) == 0 {
		if err := dial(); err != nil {
			t.Fatalf("the detached session's forward does not listen: %v", err)
		}
	}
	for serverCount(rsftp.EventClosed) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the session outlived its hold time")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for dial() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the forward still listens after the session ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
