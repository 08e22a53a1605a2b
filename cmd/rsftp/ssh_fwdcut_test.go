package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/sshtest"
)

// fwdStream is a TCP connection through a forward to the echo server:
// what is written is read back, checked once the test half-closes it.
type fwdStream struct {
	name string
	c    net.Conn
	sent bytes.Buffer
	got  chan []byte
	err  chan error
}

func newFwdStream(name string, c net.Conn) *fwdStream {
	s := &fwdStream{name: name, c: c, got: make(chan []byte, 1), err: make(chan error, 1)}
	go func() {
		b, err := io.ReadAll(c)
		s.got <- b
		s.err <- err
	}()
	return s
}

// write sends n random bytes, in pieces.
func (s *fwdStream) write(t *testing.T, n int) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	s.sent.Write(b)
	for len(b) > 0 {
		k := min(len(b), 16<<10)
		if _, err := s.c.Write(b[:k]); err != nil {
			t.Fatalf("%s: writing: %v", s.name, err)
		}
		b = b[k:]
	}
}

// finish half-closes the stream and checks that every byte came back,
// and that the connection ended with an EOF, not a reset.
func (s *fwdStream) finish(t *testing.T) {
	t.Helper()
	s.c.(interface{ CloseWrite() error }).CloseWrite()
	select {
	case got := <-s.got:
		if err := <-s.err; err != nil {
			t.Errorf("%s: the connection failed: %v (after %d of %d bytes)", s.name, err, len(got), s.sent.Len())
		} else if !bytes.Equal(got, s.sent.Bytes()) {
			t.Errorf("%s: %d bytes back of %d sent, equal prefix %v", s.name, len(got), s.sent.Len(), bytes.HasPrefix(s.sent.Bytes(), got))
		}
	case <-time.After(60 * time.Second):
		t.Errorf("%s: no EOF after the half close", s.name)
	}
	s.c.Close()
}

// TestE2ESSHForwardsAcrossCuts: -L, -R and -D (SOCKS5) through rsftp
// serve --forwarding, each carrying a stream that checks its bytes while
// the link is reset and then blackholed, with bytes written while it is
// away: every connection carries on, none is reset, every byte arrives
// once and in order.
func TestE2ESSHForwardsAcrossCuts(t *testing.T) {
	dir := t.TempDir()
	key := sshtest.KeyGen(t, dir, "ed25519", 0)
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	port, kh := e2eServeArgs(t, root, key+".pub", "127.0.0.1", "--forwarding", "local,remote")
	relay := newLinkRelay(t, "127.0.0.1:"+strconv.Itoa(port))
	khb, err := os.ReadFile(kh)
	if err != nil {
		t.Fatal(err)
	}
	kh2 := kh + ".relay"
	os.WriteFile(kh2, bytes.Replace(khb, []byte(fmt.Sprintf("]:%d ", port)), []byte(fmt.Sprintf("]:%d ", relay.port())), 1), 0o600)
	tg := &sshTarget{key: key, kh: kh2, port: relay.port()}
	echo := echoServer(t)
	lport, rport, dport := e2eFreePort(t), e2eFreePort(t), e2eFreePort(t)
	events := filepath.Join(dir, "events")
	cmd, errb := startSSHTool(t, nil, tg.args("--events", events, "-o", "ServerAliveInterval=1", "-N",
		"-L", fmt.Sprintf("%d:127.0.0.1:%d", lport, echo),
		"-R", fmt.Sprintf("%d:127.0.0.1:%d", rport, echo),
		"-D", strconv.Itoa(dport), "127.0.0.1")...)
	stderr := errb.String
	l := newFwdStream("-L", dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", lport), cmd, errb))
	r := newFwdStream("-R", dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", rport), cmd, errb))
	dc := dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", dport), cmd, errb)
	socks5Connect(t, dc, "127.0.0.1", echo)
	d := newFwdStream("-D", dc)
	streams := []*fwdStream{l, r, d}
	each := func(n int) {
		for _, s := range streams {
			s.write(t, n)
		}
	}
	each(256 << 10)
	relay.reset()
	waitEvent(t, events, "link_lost", 1, stderr)
	each(64 << 10) // while the link is away
	waitEvent(t, events, "resumed", 1, stderr)
	each(256 << 10)
	relay.blackhole()
	each(32 << 10) // into the dead path
	waitEvent(t, events, "link_lost", 2, stderr)
	relay.restore()
	waitEvent(t, events, "resumed", 2, stderr)
	each(256 << 10)
	for _, s := range streams {
		s.finish(t)
	}
	if strings.Contains(stderr(), "failed") {
		t.Errorf("rsftp ssh said: %s", stderr())
	}
	t.Logf("events:\n%s", readFileString(events))
}
