package channel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/connmsg"
	"github.com/rsftp/rsftp/internal/wire"
)

// pipeConn is one end of an in-memory packet pipe.
type pipeConn struct {
	in     <-chan []byte
	out    chan<- []byte
	closed chan struct{}
	once   *sync.Once
	// sent records what this end wrote, for tests that check order.
	mu   sync.Mutex
	sent [][]byte
	tap  bool
}

func pipePair() (*pipeConn, *pipeConn) {
	a2b := make(chan []byte, 1024)
	b2a := make(chan []byte, 1024)
	closed := make(chan struct{})
	once := new(sync.Once)
	return &pipeConn{in: b2a, out: a2b, closed: closed, once: once},
		&pipeConn{in: a2b, out: b2a, closed: closed, once: once}
}

func (p *pipeConn) ReadPacket() ([]byte, error) {
	select {
	case b := <-p.in:
		return b, nil
	case <-p.closed:
		return nil, io.EOF
	}
}

func (p *pipeConn) WritePacket(b []byte) error {
	c := bytes.Clone(b)
	if p.tap {
		p.mu.Lock()
		p.sent = append(p.sent, c)
		p.mu.Unlock()
	}
	select {
	case p.out <- c:
		return nil
	case <-p.closed:
		return io.ErrClosedPipe
	}
}

func (p *pipeConn) Close() error {
	p.once.Do(func() { close(p.closed) })
	return nil
}

func (p *pipeConn) sentTypes() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	var t []byte
	for _, b := range p.sent {
		t = append(t, b[0])
	}
	return t
}

func muxPair(t *testing.T, ca, cb *Config) (*Mux, *Mux) {
	t.Helper()
	a, b := pipePair()
	ma, mb := NewMux(PlainConn(a), ca), NewMux(PlainConn(b), cb)
	t.Cleanup(func() { ma.Close(); mb.Close() })
	return ma, mb
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// openPair opens a channel from a to b and returns both ends.
func openPair(t *testing.T, a, b *Mux, typ string) (*Channel, *Channel) {
	t.Helper()
	nch := b.HandleChannelOpen(typ)
	if nch == nil {
		t.Fatal("no handler")
	}
	acc := make(chan *Channel, 1)
	go func() {
		nc := <-nch
		c, err := nc.Accept()
		if err != nil {
			t.Error(err)
		}
		acc <- c
	}()
	ca, err := a.OpenChannel(ctxT(t), typ, []byte("extra"))
	if err != nil {
		t.Fatal(err)
	}
	return ca, <-acc
}

func TestStreamBothWaysSmallWindow(t *testing.T) {
	// A window of 4 packets forces many WINDOW_ADJUSTs.
	cfg := &Config{WindowSize: 4 << 10, MaxPacket: 1 << 10}
	ma, mb := muxPair(t, cfg, cfg)
	ca, cb := openPair(t, ma, mb, "x")
	const size = 3<<20 + 17
	src := make([]byte, size)
	for i := range src {
		src[i] = byte(i*31 + i>>9)
	}
	want := sha256.Sum256(src)
	var wg sync.WaitGroup
	for _, pair := range [][2]*Channel{{ca, cb}, {cb, ca}} {
		w, r := pair[0], pair[1]
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := w.Write(src); err != nil {
				t.Error(err)
			}
			w.CloseWrite()
		}()
		go func() {
			defer wg.Done()
			h := sha256.New()
			n, err := io.Copy(h, r)
			if err != nil || n != size || !bytes.Equal(h.Sum(nil), want[:]) {
				t.Errorf("received %d bytes, err %v, hash match %v", n, err, bytes.Equal(h.Sum(nil), want[:]))
			}
		}()
	}
	wg.Wait()
	ca.Close()
	cb.Close()
}

func TestOpenRefused(t *testing.T) {
	ma, mb := muxPair(t, nil, nil)
	_, err := ma.OpenChannel(ctxT(t), "nobody-handles-this", nil)
	var oe *OpenError
	if !errors.As(err, &oe) || oe.Reason != UnknownChannelType {
		t.Fatalf("open of unhandled type: %v", err)
	}
	h := mb.HandleChannelOpen("session")
	go func() {
		nc := <-h
		nc.Reject(Prohibited, "no sessions\x1b[31m today")
	}()
	_, err = ma.OpenChannel(ctxT(t), "session", nil)
	if !errors.As(err, &oe) || oe.Reason != Prohibited || strings.ContainsRune(oe.Message, 0x1b) {
		t.Fatalf("rejected open: %v", err)
	}
	if !strings.Contains(err.Error(), "no sessions") {
		t.Fatalf("error lacks the peer's message: %v", err)
	}
}

func TestRequestRepliesInOrder(t *testing.T) {
	ma, mb := muxPair(t, nil, nil)
	ca, cb := openPair(t, ma, mb, "x")
	// The server answers the second request before the first; the
	// replies must still match.
	go func() {
		r1 := <-cb.Requests()
		r2 := <-cb.Requests()
		r2.Reply(false, nil)
		r1.Reply(true, nil)
	}()
	res := make(chan [2]any, 2)
	var wg sync.WaitGroup
	for _, name := range []string{"first", "second"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := ca.SendRequest(ctxT(t), name, true, nil)
			res <- [2]any{name, ok}
			if err != nil {
				t.Error(err)
			}
		}()
		time.Sleep(20 * time.Millisecond) // send in this order
	}
	wg.Wait()
	close(res)
	for r := range res {
		if (r[0] == "first") != r[1].(bool) {
			t.Errorf("%v got %v", r[0], r[1])
		}
	}
}

func TestGlobalRequests(t *testing.T) {
	ma, mb := muxPair(t, nil, nil)
	// Nobody listens on b: refused.
	ok, _, err := ma.SendRequest(ctxT(t), "keepalive@openssh.com", true, nil)
	if err != nil || ok {
		t.Fatalf("unhandled global request: ok %v err %v", ok, err)
	}
	gr := mb.GlobalRequests()
	go func() {
		for r := range gr {
			r.Reply(r.Type == "yes", []byte("payload:"+r.Type))
		}
	}()
	ok, p, err := ma.SendRequest(ctxT(t), "yes", true, nil)
	if err != nil || !ok || string(p) != "payload:yes" {
		t.Fatalf("global request: ok %v payload %q err %v", ok, p, err)
	}
	ok, _, err = ma.SendRequest(ctxT(t), "no", true, nil)
	if err != nil || ok {
		t.Fatalf("refused global request: ok %v err %v", ok, err)
	}
}

// rawPeer is a Mux on one end and hand-written packets on the other.
func rawPeer(t *testing.T, cfg *Config) (*Mux, *pipeConn) {
	a, b := pipePair()
	m := NewMux(PlainConn(a), cfg)
	t.Cleanup(func() { m.Close() })
	return m, b
}

func expect(t *testing.T, p *pipeConn, msg byte) []byte {
	t.Helper()
	for {
		b, err := p.ReadPacket()
		if err != nil {
			t.Fatalf("waiting for %s: %v", connmsg.Name(msg), err)
		}
		if b[0] == msg {
			return b
		}
		if b[0] != wire.MsgChannelWindowAdjust {
			t.Fatalf("got %s, want %s", connmsg.Name(b[0]), connmsg.Name(msg))
		}
	}
}

// rawOpen has the raw peer open a channel on m and returns the Channel
// and m's channel number.
func rawOpen(t *testing.T, m *Mux, raw *pipeConn, window, maxPacket uint32) (*Channel, uint32) {
	t.Helper()
	h := m.HandleChannelOpen("x")
	raw.WritePacket((&connmsg.ChannelOpen{Type: "x", Sender: 77, Window: window, MaxPacket: maxPacket}).Marshal())
	c, err := (<-h).Accept()
	if err != nil {
		t.Fatal(err)
	}
	conf, err := connmsg.ParseOpenConfirm(expect(t, raw, wire.MsgChannelOpenConfirm))
	if err != nil || conf.Recipient != 77 {
		t.Fatalf("confirm %+v %v", conf, err)
	}
	return c, conf.Sender
}

func TestProtocolViolationsEndTheConnection(t *testing.T) {
	cases := []struct {
		name string
		send func(id uint32) []byte
	}{
		{"window past 2^32-1", func(id uint32) []byte {
			return (&connmsg.WindowAdjust{Recipient: id, Bytes: 1<<32 - 100}).Marshal()
		}},
		{"data beyond the window", func(id uint32) []byte {
			return (&connmsg.Data{Recipient: id, Data: make([]byte, 3000)}).Marshal()
		}},
		{"data beyond the maximum packet", func(id uint32) []byte {
			return (&connmsg.Data{Recipient: id, Data: make([]byte, 1025)}).Marshal()
		}},
		{"unknown channel", func(id uint32) []byte {
			return (&connmsg.EOF{Recipient: id + 1000}).Marshal()
		}},
		{"reply without request", func(id uint32) []byte {
			return (&connmsg.ChannelSuccess{Recipient: id}).Marshal()
		}},
		{"global reply without request", func(uint32) []byte {
			return []byte{wire.MsgRequestSuccess}
		}},
		{"truncated data", func(id uint32) []byte {
			return (&connmsg.Data{Recipient: id, Data: []byte("abc")}).Marshal()[:10]
		}},
		{"userauth after auth", func(uint32) []byte {
			return []byte{wire.MsgUserauthRequest}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, raw := rawPeer(t, &Config{WindowSize: 2048, MaxPacket: 1024})
			c, id := rawOpen(t, m, raw, 1<<20, 1<<15)
			raw.WritePacket(tc.send(id))
			err := m.Wait()
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("Wait: %v, want a protocol error", err)
			}
			if _, err := c.Write([]byte("x")); err == nil {
				t.Fatal("write on a dead connection succeeded")
			}
			if _, err := c.Read(make([]byte, 1)); err == nil {
				t.Fatal("read on a dead connection succeeded")
			}
		})
	}
}

func TestWritesRespectPeerWindowAndPacket(t *testing.T) {
	m, raw := rawPeer(t, nil)
	c, id := rawOpen(t, m, raw, 1000, 300)
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(make([]byte, 2500))
		done <- err
	}()
	got := 0
	for got < 1000 {
		d, err := connmsg.ParseData(expect(t, raw, wire.MsgChannelData))
		if err != nil || len(d.Data) > 300 || d.Recipient != 77 {
			t.Fatalf("data %d bytes to %d: %v", len(d.Data), d.Recipient, err)
		}
		got += len(d.Data)
	}
	if got != 1000 {
		t.Fatalf("sent %d bytes into a window of 1000", got)
	}
	select {
	case <-done:
		t.Fatal("Write returned with the window exhausted")
	case <-time.After(50 * time.Millisecond):
	}
	raw.WritePacket((&connmsg.WindowAdjust{Recipient: id, Bytes: 1500}).Marshal())
	for got < 2500 {
		d, _ := connmsg.ParseData(expect(t, raw, wire.MsgChannelData))
		got += len(d.Data)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCloseOrderAndRelease(t *testing.T) {
	m, raw := rawPeer(t, nil)
	raw.tap = true
	c, id := rawOpen(t, m, raw, 1<<20, 1<<15)
	c.Write([]byte("out"))
	c.CloseWrite()
	ok, err := c.SendRequest(ctxT(t), "exit-status", false, wire.AppendUint32(nil, 3))
	if ok || err != nil {
		t.Fatalf("exit-status after EOF: %v", err)
	}
	c.Close()
	var types []byte
	for len(types) < 4 {
		b, err := raw.ReadPacket()
		if err != nil {
			t.Fatal(err)
		}
		if b[0] != wire.MsgChannelWindowAdjust {
			types = append(types, b[0])
		}
	}
	want := []byte{wire.MsgChannelData, wire.MsgChannelEOF, wire.MsgChannelRequest, wire.MsgChannelClose}
	if !bytes.Equal(types, want) {
		t.Fatalf("sent %v, want data, EOF, request, CLOSE", types)
	}
	if _, err := c.Write([]byte("late")); err == nil {
		t.Fatal("write after Close succeeded")
	}
	// The number stays reserved until the peer's CLOSE...
	if m.lookup(id) == nil {
		t.Fatal("channel released before the peer's CLOSE")
	}
	raw.WritePacket((&connmsg.Close{Recipient: id}).Marshal())
	deadline := time.Now().Add(5 * time.Second)
	for m.lookup(id) != nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if m.lookup(id) != nil {
		t.Fatal("channel not released after CLOSE both ways")
	}
	// ...after which its number is unknown.
	raw.WritePacket((&connmsg.Data{Recipient: id, Data: []byte("x")}).Marshal())
	var pe *ProtocolError
	if err := m.Wait(); !errors.As(err, &pe) {
		t.Fatalf("data for a released channel: %v", err)
	}
}

func TestPeerCloseIsAnswered(t *testing.T) {
	m, raw := rawPeer(t, nil)
	c, id := rawOpen(t, m, raw, 1<<20, 1<<15)
	raw.WritePacket((&connmsg.Data{Recipient: id, Data: []byte("last words")}).Marshal())
	raw.WritePacket((&connmsg.Close{Recipient: id}).Marshal())
	expect(t, raw, wire.MsgChannelClose)
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "last words" {
		t.Fatalf("read after peer CLOSE: %q %v", b, err)
	}
	if _, ok := <-c.Requests(); ok {
		t.Fatal("requests channel still open")
	}
}

func TestOpenCancelledThenConfirmed(t *testing.T) {
	m, raw := rawPeer(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := m.OpenChannel(ctx, "slow", nil)
		errc <- err
	}()
	open, err := connmsg.ParseChannelOpen(expect(t, raw, wire.MsgChannelOpen))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("OpenChannel: %v", err)
	}
	raw.WritePacket((&connmsg.OpenConfirm{Recipient: open.Sender, Sender: 5, Window: 100, MaxPacket: 100}).Marshal())
	cl, err := connmsg.ParseClose(expect(t, raw, wire.MsgChannelClose))
	if err != nil || cl.Recipient != 5 {
		t.Fatalf("abandoned channel not closed: %+v %v", cl, err)
	}
}

func TestSessionExitStatusAndSignal(t *testing.T) {
	ma, mb := muxPair(t, nil, nil)
	h := mb.HandleChannelOpen("session")
	serve := func(script func(c *Channel)) {
		go func() {
			nc := <-h
			c, _ := nc.Accept()
			r := <-c.Requests()
			r.Reply(r.Type == "exec", nil)
			script(c)
			c.Close()
		}()
	}
	serve(func(c *Channel) {
		io.WriteString(c, "hello")
		io.WriteString(c.Stderr(), "warn")
		c.CloseWrite()
		c.SendRequest(context.Background(), "exit-status", false, wire.AppendUint32(nil, 7))
	})
	s, err := ma.NewSession(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	stderr := s.Stderr()
	out, err := s.Output(ctxT(t), "x")
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Status != 7 || string(out) != "hello" {
		t.Fatalf("Output: %q %v", out, err)
	}
	if b, _ := io.ReadAll(stderr); string(b) != "warn" {
		t.Fatalf("stderr %q", b)
	}

	serve(func(c *Channel) {
		p := wire.AppendString(nil, "KILL")
		p = wire.AppendBool(p, true)
		p = wire.AppendString(p, "oom")
		p = wire.AppendString(p, "")
		c.SendRequest(context.Background(), "exit-signal", false, p)
	})
	s, _ = ma.NewSession(ctxT(t))
	err = s.Run(ctxT(t), "x")
	if !errors.As(err, &ee) || ee.Signal != "KILL" || !ee.CoreDumped || !strings.Contains(err.Error(), "oom") {
		t.Fatalf("Run: %v", err)
	}

	serve(func(c *Channel) {})
	s, _ = ma.NewSession(ctxT(t))
	var em *ExitMissingError
	if err := s.Run(ctxT(t), "x"); !errors.As(err, &em) {
		t.Fatalf("Run without status: %v", err)
	}
}

// A stream nobody reads (stderr here) must not stall the one being read.
func TestUnreadStderrDoesNotStall(t *testing.T) {
	cfg := &Config{WindowSize: 8 << 10, MaxPacket: 1 << 10}
	ma, mb := muxPair(t, cfg, cfg)
	h := mb.HandleChannelOpen("session")
	go func() {
		nc := <-h
		c, _ := nc.Accept()
		r := <-c.Requests()
		r.Reply(true, nil)
		junk := make([]byte, 1<<20)
		c.Stderr().Write(junk)
		io.WriteString(c, "done")
		c.CloseWrite()
		c.SendRequest(context.Background(), "exit-status", false, wire.AppendUint32(nil, 0))
		c.Close()
	}()
	s, err := ma.NewSession(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Output(ctxT(t), "x")
	if err != nil || string(out) != "done" {
		t.Fatalf("Output: %q %v", out, err)
	}
}

func TestReadDeadline(t *testing.T) {
	ma, mb := muxPair(t, nil, nil)
	ca, _ := openPair(t, ma, mb, "x")
	ca.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	_, err := ca.Read(make([]byte, 10))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read past deadline: %v", err)
	}
}

func TestDirectTCPIP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	ma, mb := muxPair(t, nil, nil)
	h := mb.HandleChannelOpen("direct-tcpip")
	go func() {
		for nc := range h {
			host, port, err := nc.DirectTCPIP()
			if err != nil {
				nc.Reject(ConnectFailed, err.Error())
				continue
			}
			go ServeDirectTCPIP(context.Background(), nc, host, port)
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	c, err := ma.DialTCP(ctxT(t), "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("echo "), 100000)
	go func() { c.Write(msg); c.(*conn).CloseWrite() }()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo through direct-tcpip: %d bytes, %v", len(got), err)
	}
	c.Close()
	// A port nobody listens on is refused with ConnectFailed.
	l2, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l2.Addr().(*net.TCPAddr).Port
	l2.Close()
	_, err = ma.DialTCP(ctxT(t), "127.0.0.1", dead)
	var oe *OpenError
	if !errors.As(err, &oe) || oe.Reason != ConnectFailed {
		t.Fatalf("dial to a closed port: %v", err)
	}
}

func TestMuxCloseFailsEverything(t *testing.T) {
	ma, mb := muxPair(t, nil, nil)
	ca, _ := openPair(t, ma, mb, "x")
	blocked := make(chan error, 1)
	go func() {
		_, err := ca.Read(make([]byte, 1))
		blocked <- err
	}()
	mb.Close()
	if err := <-blocked; err == nil {
		t.Fatal("Read survived the connection")
	}
	if _, err := ma.OpenChannel(ctxT(t), "x", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("open on closed mux: %v", err)
	}
	if err := ma.Wait(); err == nil {
		t.Fatal("Wait returned nil")
	}
}

// Data that arrives while a Read waits goes straight into its buffer; data
// that arrives while nobody waits is buffered. Each path is first forced
// once; then, mixed at random, with reads of every size, the stream
// arrives whole and in order.
func TestReadPlacesDataDirectly(t *testing.T) {
	ma, mb := muxPair(t, nil, nil)
	ca, cb := openPair(t, ma, mb, "x")
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			cb.mu.Lock()
			ok := cond()
			cb.mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	direct := func() uint64 {
		cb.mu.Lock()
		defer cb.mu.Unlock()
		return cb.in.directBytes
	}

	// A waiting reader: the data lands in its buffer.
	first := bytes.Repeat([]byte("direct!"), 100)
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 4096)
		n, _ := cb.Read(buf)
		got <- buf[:n]
	}()
	waitFor("the reader to wait", func() bool { return cb.in.direct != nil })
	if _, err := ca.Write(first); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, first) || direct() != uint64(len(first)) {
		t.Fatalf("read %q with %d bytes placed directly, want all %d", b, direct(), len(first))
	}

	// No reader: the data is buffered, and read from there.
	second := bytes.Repeat([]byte("buffered"), 100)
	if _, err := ca.Write(second); err != nil {
		t.Fatal(err)
	}
	waitFor("the data to be buffered", func() bool { return cb.in.stdout.len() == len(second) })
	buf := make([]byte, 4096)
	if n, err := cb.Read(buf); err != nil || !bytes.Equal(buf[:n], second) || direct() != uint64(len(first)) {
		t.Fatalf("read %d bytes, %v, %d placed directly", n, err, direct())
	}

	// Both at random.
	const size = 4<<20 + 3
	src := make([]byte, size)
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range src {
		src[i] = byte(rng.Uint32())
	}
	go func() {
		wr := rand.New(rand.NewPCG(9, 10))
		for off := 0; off < size; {
			n := min(size-off, 1+wr.IntN(100<<10))
			if _, err := ca.Write(src[off : off+n]); err != nil {
				t.Error(err)
				return
			}
			off += n
			if wr.IntN(3) == 0 {
				time.Sleep(100 * time.Microsecond)
			}
		}
		ca.CloseWrite()
	}()
	var all []byte
	buf = make([]byte, 200<<10)
	for {
		n, err := cb.Read(buf[:1+rng.IntN(len(buf))])
		all = append(all, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rng.IntN(16) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if !bytes.Equal(all, src) {
		t.Fatalf("received %d bytes of %d, not the same", len(all), size)
	}
	t.Logf("%d of %d bytes of the random mix placed directly", direct()-uint64(len(first)), size)
}

// readData reads n bytes of channel data from the raw peer.
func readData(t *testing.T, raw *pipeConn, n int) []byte {
	t.Helper()
	var got []byte
	for len(got) < n {
		d, err := connmsg.ParseData(expect(t, raw, wire.MsgChannelData))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, d.Data...)
	}
	if len(got) != n {
		t.Fatalf("%d bytes of data, want %d", len(got), n)
	}
	return got
}

// A writer keeps at most half the peer's window plus a packet in flight
// while the peer keeps adjusting it, in whole packets; each adjustment
// lets that much more go.
func TestWindowReserveHoldsBackHalf(t *testing.T) {
	c, raw, id, src := reserveFixture(t, time.Hour, window1M)
	done := make(chan struct{})
	go func() { c.Write(src); close(done) }()
	// The writer must be gone before reserveWait is restored.
	defer func() { c.Close(); <-done }()
	got := readData(t, raw, window1M/2+reserveMaxPacket)
	select {
	case p := <-raw.in:
		t.Fatalf("message %d sent past half the window and a packet", p[0])
	case <-time.After(50 * time.Millisecond):
	}
	raw.WritePacket((&connmsg.WindowAdjust{Recipient: id, Bytes: 2 * reserveMaxPacket}).Marshal())
	got = append(got, readData(t, raw, 2*reserveMaxPacket)...)
	if !bytes.Equal(got, src[:len(got)]) {
		t.Fatal("data differs")
	}
	if w := waivers(c); w != 0 {
		t.Fatalf("reserve waived %d times", w)
	}
}

const (
	window1M         = 1 << 20
	reserveMaxPacket = 32 << 10
)

// reserveFixture opens a channel to a raw peer offering window bytes in
// packets of reserveMaxPacket, with reserveWait set to wait for the test,
// and returns data of 2*window bytes to write.
func reserveFixture(t *testing.T, wait time.Duration, window uint32) (*Channel, *pipeConn, uint32, []byte) {
	t.Helper()
	old := reserveWait
	reserveWait = wait
	// Cleanups run after the test's defers: the writer is gone by then.
	t.Cleanup(func() { reserveWait = old })
	m, raw := rawPeer(t, nil)
	c, id := rawOpen(t, m, raw, window, reserveMaxPacket)
	src := make([]byte, 2*window)
	for i := range src {
		src[i] = byte(i*7 + i>>12)
	}
	return c, raw, id, src
}

func waivers(c *Channel) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.waivers
}

// A peer that adjusts only once its window is spent still gets all of it:
// the reserve is waived after reserveWait without an adjustment.
func TestWindowReserveWaived(t *testing.T) {
	c, raw, id, src := reserveFixture(t, time.Millisecond, window1M)
	done := make(chan error, 1)
	go func() { _, err := c.Write(src); done <- err }()
	got := readData(t, raw, window1M)
	raw.WritePacket((&connmsg.WindowAdjust{Recipient: id, Bytes: window1M}).Marshal())
	got = append(got, readData(t, raw, window1M)...)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, src) {
		t.Fatal("data differs")
	}
	if w := waivers(c); w < 2 {
		t.Fatalf("reserve waived %d times, want one per window", w)
	}
}

// Small windows keep no reserve (it would cut them into runts), nor do
// large ones (meant for long paths).
func TestWindowReserveOnlyLargeWindows(t *testing.T) {
	c := &Channel{}
	c.out.set(15*32<<10, 32<<10)
	if c.out.reserve != 0 {
		t.Fatalf("reserve %d for a window of 15 packets", c.out.reserve)
	}
	c.out.set(2<<20, 32<<10)
	if c.out.reserve != 1<<20-32<<10 {
		t.Fatalf("reserve %d for OpenSSH's 2 MiB window", c.out.reserve)
	}
	c = &Channel{}
	c.out.set(DefaultWindowSize, 32<<10)
	if c.out.reserve != 0 {
		t.Fatalf("reserve %d for our own %d-byte window", c.out.reserve, DefaultWindowSize)
	}
}

// TestGrowWindow checks that GrowWindow gives the peer the difference at
// once, that the peer may then send the larger window's worth unread,
// and that a smaller or repeated size sends nothing.
func TestGrowWindow(t *testing.T) {
	const window, grown = 64 << 10, 1 << 20
	m, raw := rawPeer(t, &Config{WindowSize: window, MaxPacket: 32 << 10, MaxWindowTotal: MaxGrownWindow + window})
	c, id := rawOpen(t, m, raw, 1<<20, 32<<10)
	if err := c.GrowWindow(grown); err != nil {
		t.Fatal(err)
	}
	b, err := raw.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	adj, err := connmsg.ParseWindowAdjust(b)
	if err != nil || adj.Recipient != 77 || adj.Bytes != grown-window {
		t.Fatalf("adjust %+v, %v; want %d bytes to 77", adj, err, grown-window)
	}
	if rx, _ := c.Windows(); rx != grown {
		t.Fatalf("receive window %d, want %d", rx, grown)
	}
	for _, n := range []uint32{grown, window, 1000} {
		if err := c.GrowWindow(n); err != nil {
			t.Fatal(err)
		}
	}
	// The whole grown window, unread: a protocol error without the growth.
	chunk := make([]byte, 32<<10)
	for range grown / len(chunk) {
		raw.WritePacket((&connmsg.Data{Recipient: id, Data: chunk}).Marshal())
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.Buffered() < grown {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d bytes buffered", c.Buffered(), grown)
		}
		time.Sleep(time.Millisecond)
	}
	if rx, _ := c.Windows(); rx != 0 {
		t.Fatalf("receive window %d after %d bytes", rx, grown)
	}
	// Nothing but the first adjust went out.
	select {
	case b := <-raw.in:
		t.Fatalf("sent %s after the growth", connmsg.Name(b[0]))
	default:
	}
	if err := c.GrowWindow(MaxGrownWindow + 1); err != nil {
		t.Fatal(err)
	}
	b, err = raw.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	if adj, err := connmsg.ParseWindowAdjust(b); err != nil || adj.Bytes != MaxGrownWindow-grown {
		t.Fatalf("adjust to the cap %+v, %v; want %d", adj, err, MaxGrownWindow-grown)
	}
}

// TestRefuseRequests: after RefuseRequests, a request already queued and
// every later one are answered with failure, with no goroutine reading
// Requests.
func TestRefuseRequests(t *testing.T) {
	ma, mb := muxPair(t, nil, nil)
	ca, cb := openPair(t, ma, mb, "x")
	queued := make(chan error, 1)
	go func() {
		ok, err := ca.SendRequest(ctxT(t), "queued", true, nil)
		if err == nil && ok {
			err = errors.New("the queued request succeeded")
		}
		queued <- err
	}()
	for len(cb.reqs) == 0 {
		time.Sleep(time.Millisecond)
	}
	cb.RefuseRequests()
	if err := <-queued; err != nil {
		t.Fatal(err)
	}
	for range 3 {
		ok, err := ca.SendRequest(ctxT(t), "later", true, nil)
		if err != nil || ok {
			t.Fatalf("a request after RefuseRequests: %v, %v; want refused", ok, err)
		}
	}
}

// TryWrite sends all it is given when the window takes it at once, and
// nothing (reporting false) when the window is short or another write is
// under way; a closed channel is an error.
func TestTryWrite(t *testing.T) {
	m, raw := rawPeer(t, nil)
	c, id := rawOpen(t, m, raw, 1000, 300)
	if ok, err := c.TryWrite(bytes.Repeat([]byte("a"), 700)); !ok || err != nil {
		t.Fatalf("TryWrite of 700 into a window of 1000: %v, %v", ok, err)
	}
	if got := readData(t, raw, 700); !bytes.Equal(got, bytes.Repeat([]byte("a"), 700)) {
		t.Fatal("TryWrite sent other data")
	}
	if ok, err := c.TryWrite(make([]byte, 301)); ok || err != nil {
		t.Fatalf("TryWrite of 301 into a window of 300: %v, %v, want false", ok, err)
	}
	if _, w := c.Windows(); w != 300 {
		t.Fatalf("window %d after a refused TryWrite, want 300", w)
	}

	// A Write waiting for window holds the channel: TryWrite must not
	// overtake it, even once the window would take its data.
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(bytes.Repeat([]byte("b"), 500))
		done <- err
	}()
	readData(t, raw, 300)
	for {
		c.mu.Lock()
		waiting := c.out.window == 0
		c.mu.Unlock()
		if waiting {
			break
		}
		time.Sleep(time.Millisecond)
	}
	raw.WritePacket((&connmsg.WindowAdjust{Recipient: id, Bytes: 100}).Marshal())
	for {
		c.mu.Lock()
		w := c.out.window
		c.mu.Unlock()
		if w == 0 {
			break // the Write took it
		}
		if ok, _ := c.TryWrite([]byte("c")); ok {
			t.Fatal("TryWrite went ahead of a Write waiting for window")
		}
		time.Sleep(time.Millisecond)
	}
	if ok, err := c.TryWrite([]byte("c")); ok || err != nil {
		t.Fatalf("TryWrite during a Write: %v, %v, want false", ok, err)
	}
	raw.WritePacket((&connmsg.WindowAdjust{Recipient: id, Bytes: 1000}).Marshal())
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := readData(t, raw, 200); !bytes.Equal(got, bytes.Repeat([]byte("b"), 200)) {
		t.Fatalf("the Write's data came out as %q", got)
	}
	if ok, err := c.TryWrite([]byte("d")); !ok || err != nil {
		t.Fatalf("TryWrite after the Write: %v, %v", ok, err)
	}
	if got := readData(t, raw, 1); string(got) != "d" {
		t.Fatalf("got %q, want d", got)
	}

	c.Close()
	if ok, err := c.TryWrite([]byte("e")); ok || err == nil {
		t.Fatalf("TryWrite on a closed channel: %v, %v, want an error", ok, err)
	}
}

// ReadSink's sink gets the data that arrives while it waits, in order,
// without waking it; what the sink leaves ends the wait, and data
// buffered before the call is returned without the sink. Mixed at random
// with a sink that takes a random part, every byte comes out once and in
// order, and the window given back lets all of it through.
func TestReadSink(t *testing.T) {
	ma, mb := muxPair(t, nil, &Config{WindowSize: 256 << 10})
	ca, cb := openPair(t, ma, mb, "x")
	waiting := func() {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			cb.mu.Lock()
			ok := cb.in.sink != nil && cb.in.direct != nil
			cb.mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("timed out waiting for ReadSink to wait")
			}
		}
	}

	// The sink takes all of two writes: ReadSink waits on.
	var sunk []byte
	takeAll := func(p []byte) int { sunk = append(sunk, p...); return len(p) }
	got := make(chan []byte, 1)
	read := func(sink func([]byte) int) {
		go func() {
			buf := make([]byte, 4096)
			n, err := cb.ReadSink(buf, sink)
			if err != nil {
				t.Error(err)
			}
			got <- buf[:n]
		}()
	}
	read(takeAll)
	waiting()
	ca.Write([]byte("one,"))
	ca.Write([]byte("two,"))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		cb.mu.Lock()
		s := string(sunk)
		cb.mu.Unlock()
		if s == "one,two," {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sink got %q, want one,two,", s)
		}
	}
	select {
	case b := <-got:
		t.Fatalf("ReadSink returned %q while its sink took everything", b)
	case <-time.After(20 * time.Millisecond):
	}
	// A sink that takes 2 bytes: the rest ends the wait, and what
	// arrives after it is not offered to the sink.
	cb.mu.Lock()
	cb.in.sink = func(p []byte) int { sunk = append(sunk, p[:2]...); return 2 }
	cb.mu.Unlock()
	ca.Write([]byte("three,"))
	if b := <-got; string(b) != "ree," || string(sunk) != "one,two,th" {
		t.Fatalf("ReadSink returned %q with %q sunk, want ree, and one,two,th", b, sunk)
	}
	// Buffered data: returned without the sink.
	ca.Write([]byte("four,"))
	for deadline := time.Now().Add(10 * time.Second); cb.Buffered() < 5; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("four, never arrived")
		}
	}
	read(takeAll)
	if b := <-got; string(b) != "four," || string(sunk) != "one,two,th" {
		t.Fatalf("ReadSink returned %q with %q sunk, want four,", b, sunk)
	}

	// At random: 8 MiB through a window of 256 KiB.
	const size = 8<<20 + 5
	src := make([]byte, size)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range src {
		src[i] = byte(rng.Uint32())
	}
	go func() {
		wr := rand.New(rand.NewPCG(5, 6))
		for off := 0; off < size; {
			n := min(size-off, 1+wr.IntN(64<<10))
			if _, err := ca.Write(src[off : off+n]); err != nil {
				t.Error(err)
				return
			}
			off += n
			if wr.IntN(4) == 0 {
				time.Sleep(50 * time.Microsecond)
			}
		}
		ca.CloseWrite()
	}()
	var all []byte
	sunkBytes := 0
	sinkRng := rand.New(rand.NewPCG(7, 8))
	sink := func(p []byte) int {
		k := sinkRng.IntN(len(p) + 1)
		if sinkRng.IntN(3) == 0 {
			k = len(p)
		}
		all = append(all, p[:k]...)
		sunkBytes += k
		return k
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := cb.ReadSink(buf[:1+rng.IntN(len(buf))], sink)
		cb.mu.Lock() // the sink appends under it
		all = append(all, buf[:n]...)
		cb.mu.Unlock()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(all, src) {
		t.Fatalf("received %d bytes of %d, not the same", len(all), size)
	}
	if sunkBytes == 0 || sunkBytes == size {
		t.Fatalf("%d of %d bytes through the sink: the mix did not mix", sunkBytes, size)
	}
	t.Logf("%d of %d bytes through the sink", sunkBytes, size)
}
