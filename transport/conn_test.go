package transport

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
)

func testHostKey(t testing.TB) kex.Signer {
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

// tcpPair returns two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			ch <- nil
			return
		}
		ch <- c
	}()
	a, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-ch
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// handshakePair runs both handshakes over ca/cb.
func handshakePair(t testing.TB, ca, cb net.Conn, ccfg, scfg *Config) (*Conn, *Conn, error, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var sc *Conn
	var serr error
	done := make(chan struct{})
	go func() {
		sc, serr = NewServerConn(ctx, cb, scfg)
		close(done)
	}()
	cc, cerr := NewClientConn(ctx, ca, ccfg)
	<-done
	return cc, sc, cerr, serr
}

func acceptAny(kex.PublicKey) error { return nil }

func newPair(t testing.TB, mod func(c, s *Config)) (*Conn, *Conn) {
	t.Helper()
	ca, cb := tcpPair(t)
	return newPairOver(t, ca, cb, mod)
}

// newSmallBufferPair is newPair over sockets with 64 KiB buffers, so that
// the bytes in flight while a key exchange is under way stay small and
// tests that count rekeys do not depend on the kernel's autotuning.
func newSmallBufferPair(t testing.TB, mod func(c, s *Config)) (*Conn, *Conn) {
	t.Helper()
	ca, cb := tcpPair(t)
	for _, c := range []net.Conn{ca, cb} {
		tc := c.(*net.TCPConn)
		tc.SetReadBuffer(64 << 10)
		tc.SetWriteBuffer(64 << 10)
	}
	return newPairOver(t, ca, cb, mod)
}

func newPairOver(t testing.TB, ca, cb net.Conn, mod func(c, s *Config)) (*Conn, *Conn) {
	t.Helper()
	ccfg := &Config{HostKeyCallback: acceptAny}
	scfg := &Config{HostKeys: []kex.Signer{testHostKey(t)}}
	if mod != nil {
		mod(ccfg, scfg)
	}
	cc, sc, cerr, serr := handshakePair(t, ca, cb, ccfg, scfg)
	if cerr != nil || serr != nil {
		t.Fatalf("handshake: client %v, server %v", cerr, serr)
	}
	t.Cleanup(func() { cc.Close(); sc.Close() })
	return cc, sc
}

func TestHandshakeEveryCipher(t *testing.T) {
	for _, cipher := range supportedCiphers {
		macs := supportedMACs
		if _, _, aead, _ := cipherKeySizes(cipher); aead {
			macs = macs[:1]
		}
		for _, mac := range macs {
			t.Run(cipher+"/"+mac, func(t *testing.T) {
				cc, sc := newPair(t, func(c, s *Config) {
					c.Ciphers = []string{cipher}
					c.MACs = []string{mac}
				})
				a := cc.Algorithms()
				if a.CipherCS != cipher || a.CipherSC != cipher {
					t.Fatalf("negotiated %+v, want %s", a, cipher)
				}
				if !cc.StrictKex() || !sc.StrictKex() {
					t.Fatal("strict kex not in effect between two of ours")
				}
				if !bytes.Equal(cc.SessionID(), sc.SessionID()) || len(cc.SessionID()) != 32 {
					t.Fatal("session IDs differ")
				}
				exchange(t, cc, sc, 50)
				exchange(t, sc, cc, 50)
			})
		}
	}
}

// exchange sends n connection-layer messages of growing size from a to b
// and checks they arrive intact and in order.
func exchange(t testing.TB, a, b *Conn, n int) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			p := make([]byte, 1+i*317%30000)
			p[0] = wire.MsgChannelData
			for j := 1; j < len(p); j++ {
				p[j] = byte(i + j)
			}
			if err := a.WritePacket(p); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i := 0; i < n; i++ {
		p, err := b.ReadPacket()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		want := 1 + i*317%30000
		if len(p) != want || p[0] != wire.MsgChannelData || (len(p) > 1 && p[len(p)-1] != byte(i+len(p)-1)) {
			t.Fatalf("packet %d: got %d bytes, want %d", i, len(p), want)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// Sequence numbers restart at zero after each NEWKEYS under strict kex,
// and count every packet otherwise.
func TestSequenceNumbersVisible(t *testing.T) {
	cc, sc := newPair(t, nil)
	s0 := cc.Seq()
	// Client sent KEXINIT, ECDH_INIT, NEWKEYS; the reset left Out at 0.
	if s0.Out != 0 {
		t.Fatalf("client out seq after strict first kex = %d, want 0", s0.Out)
	}
	exchange(t, cc, sc, 7)
	if got := cc.Seq().Out; got != 7 {
		t.Fatalf("client out seq = %d after 7 packets, want 7", got)
	}
	if got := sc.Seq().In; got != 7 {
		t.Fatalf("server in seq = %d after 7 packets, want 7", got)
	}
}

// streamWithRekeys moves size bytes from a to b while rekeys happen.
func streamWithRekeys(t *testing.T, a, b *Conn, size int, onRead func(got int)) [32]byte {
	t.Helper()
	h := sha256.New()
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, 32*1024+1)
		buf[0] = wire.MsgChannelData
		sent := 0
		for sent < size {
			n := min(32*1024, size-sent)
			for j := 1; j <= n; j++ {
				buf[j] = byte((sent + j) * 7)
			}
			if err := a.WritePacket(buf[:n+1]); err != nil {
				errc <- err
				return
			}
			sent += n
		}
		errc <- nil
	}()
	want := sha256.New()
	got := 0
	for got < size {
		p, err := b.ReadPacket()
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		h.Write(p[1:])
		got += len(p) - 1
		if onRead != nil {
			onRead(got)
		}
	}
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte((i + 1) * 7)
	}
	want.Write(buf)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
		t.Fatal("stream corrupted across rekeys")
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

func TestRekeyMidStream(t *testing.T) {
	cc, sc := newPair(t, func(c, s *Config) { c.RekeyBytes = 1 << 20 })
	// The server must keep reading for the client's rekeys to complete:
	// it reads the stream; the client's reader drains pongs etc.
	go func() {
		for {
			if _, err := cc.ReadPacket(); err != nil {
				return
			}
		}
	}()
	streamWithRekeys(t, cc, sc, 16<<20, nil)
	if n := sc.KexCount(); n < 10 {
		t.Fatalf("only %d key exchanges for 16 MiB with a 1 MiB limit", n)
	}
}

func TestRekeyStartedByServerMidStream(t *testing.T) {
	cc, sc := newSmallBufferPair(t, nil)
	go func() {
		for {
			if _, err := cc.ReadPacket(); err != nil {
				return
			}
		}
	}()
	// Start a rekey once a MiB has arrived since the previous one
	// completed; Rekey is a no-op while one is under way.
	next, done := 1<<20, sc.KexCount()
	// Each round lets up to the 1 MiB write buffer plus the socket buffers
	// through before the peer's KEXINIT, so expect a rekey per ~3 MiB.
	streamWithRekeys(t, cc, sc, 32<<20, func(got int) {
		if n := sc.KexCount(); n != done {
			done, next = n, got+1<<20
		}
		if got >= next {
			next = 1 << 62
			if err := sc.Rekey(); err != nil {
				t.Errorf("Rekey: %v", err)
			}
		}
	})
	if n := sc.KexCount(); n < 4 {
		t.Fatalf("only %d key exchanges", n)
	}
}

// slowWriteConn makes each write wait a little, so that data writers
// always seal more while a write is under way.
type slowWriteConn struct {
	net.Conn
	delay time.Duration
}

func (s slowWriteConn) Write(p []byte) (int, error) {
	time.Sleep(s.delay)
	return s.Conn.Write(p)
}

// The goroutine that reads, when it flushes a reply of its own (here its
// KEXINIT and ECDH init, answering the peer's rekey), writes what was
// sealed until then and leaves the rest to the writer goroutine: it does
// not stay in the flush for as long as a bulk writer keeps the buffer
// full, which kept it from reading the peer's NEWKEYS and stalled the
// peer's key exchange for the rest of the stream (1 run in 10 of
// TestRekeyOnReceivedBytes and TestRekeyStartedByServerMidStream before
// the fix; this test, every run).
func TestReaderNotCapturedByFlush(t *testing.T) {
	ca, cb := tcpPair(t)
	cc, sc := newPairOver(t, slowWriteConn{ca, 200 * time.Microsecond}, cb, nil)
	go func() {
		for {
			if _, err := cc.ReadPacket(); err != nil {
				return
			}
		}
	}()
	// The sender streams until told to stop (or 256 MiB, which fails).
	const limit = 256 << 20
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, 32*1024+1)
		buf[0] = wire.MsgChannelData
		for sent := 0; sent < limit; sent += len(buf) - 1 {
			select {
			case <-stop:
				errc <- nil
				return
			default:
			}
			if err := cc.WritePacket(buf); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	// Done when both ends count the exchange: the sender's reader must
	// read the NEWKEYS behind our reply.
	got, rekeyAt := 0, -1
	before, cbefore := sc.KexCount(), cc.KexCount()
	for (sc.KexCount() == before || cc.KexCount() == cbefore) && got < limit {
		p, err := sc.ReadPacket()
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		got += len(p) - 1
		if rekeyAt < 0 && got >= 1<<20 {
			rekeyAt = got
			if err := sc.Rekey(); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	// Drain what the sender sealed before it saw stop.
	go func() {
		for {
			if _, err := sc.ReadPacket(); err != nil {
				return
			}
		}
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// What may pass between our KEXINIT and the peer's NEWKEYS: its
	// write buffer, the socket buffers, and what it seals while its
	// replies are written; a captured reader let the whole stream pass.
	if n := got - rekeyAt; sc.KexCount() == before || cc.KexCount() == cbefore || n > 16<<20 {
		t.Fatalf("the rekey started after %d bytes completed after %d more (key exchanges: receiver %d -> %d, sender %d -> %d)",
			rekeyAt, n, before, sc.KexCount(), cbefore, cc.KexCount())
	}
}

// A writer that pauses between packets writes each itself, at once
// (writeInlineLocked), and never waits for the socket there: what a full
// socket does not take goes to writeLoop ahead of what is sealed after
// it. The sender's socket buffers are small and the receiver reads
// nothing until an inline write came out short and the writer went on to
// seal 512 KiB, far more than the sockets hold; then every packet must
// arrive whole and in order.
func TestInlineWriteShortKeepsOrder(t *testing.T) {
	ca, cb := tcpPair(t)
	ca.(*net.TCPConn).SetWriteBuffer(16 << 10)
	cb.(*net.TCPConn).SetReadBuffer(16 << 10)
	cc, sc := newPairOver(t, ca, cb, nil)
	const packets, size = 48, 32 << 10
	pattern := func(i int) []byte {
		n := size
		if i >= packets {
			n = 4 << 10 // fits in the drained socket's buffers
		}
		p := make([]byte, 1+n)
		p[0] = wire.MsgChannelData
		for j := 1; j < len(p); j++ {
			p[j] = byte(i*7 + j)
		}
		return p
	}
	var written atomic.Int32
	errc := make(chan error, 1)
	go func() {
		for i := range packets {
			// Longer than inlineAfter since the last write ended.
			time.Sleep(2 * inlineAfter)
			if err := cc.WritePacket(pattern(i)); err != nil {
				errc <- err
				return
			}
			written.Add(1)
		}
		errc <- nil
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		cc.mu.Lock()
		short := cc.inlinedShort
		cc.mu.Unlock()
		if short > 0 && written.Load() >= 16 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute: %d short inline writes, %d packets written", short, written.Load())
		}
		time.Sleep(time.Millisecond)
	}
	for i := range packets {
		p, err := sc.ReadPacket()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !bytes.Equal(p, pattern(i)) {
			t.Fatalf("packet %d differs (%d bytes)", i, len(p))
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// With the socket drained, each write that finds the connection idle
	// goes out inline, whole (4 KiB: a 32 KiB packet is more than the
	// socket's buffer holds).
	idle := func() (inlined, short int) {
		for {
			cc.mu.Lock()
			done := !cc.flushing && len(cc.wbuf) == 0
			inlined, short = cc.inlined, cc.inlinedShort
			cc.mu.Unlock()
			if done {
				return inlined, short
			}
			if time.Now().After(deadline) {
				t.Fatal("the writer did not drain its buffer")
			}
			time.Sleep(time.Millisecond)
		}
	}
	for i := packets; i < packets+8; i++ {
		before, shortBefore := idle()
		time.Sleep(2 * inlineAfter)
		if err := cc.WritePacket(pattern(i)); err != nil {
			t.Fatal(err)
		}
		p, err := sc.ReadPacket()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !bytes.Equal(p, pattern(i)) {
			t.Fatalf("packet %d differs (%d bytes)", i, len(p))
		}
		if after, shortAfter := idle(); after != before+1 || shortAfter != shortBefore {
			t.Fatalf("packet %d: inline writes %d -> %d, short %d -> %d", i, before, after, shortBefore, shortAfter)
		}
	}
}

// flipConn flips one bit of the byte at offset off of what is written
// through it (counting from the first write after arm).
type flipConn struct {
	net.Conn
	mu      sync.Mutex
	armed   bool
	written int
	off     int
}

func (f *flipConn) Write(p []byte) (int, error) {
	f.mu.Lock()
	if f.armed && f.written <= f.off && f.off < f.written+len(p) {
		q := bytes.Clone(p)
		q[f.off-f.written] ^= 0x10
		p = q
	}
	if f.armed {
		f.written += len(p)
	}
	f.mu.Unlock()
	return f.Conn.Write(p)
}

// A bit flipped anywhere in a packet after the key exchange is detected,
// for every cipher and MAC (the idea of OpenSSH's integrity test).
func TestBitFlipAfterKex(t *testing.T) {
	for _, cipher := range supportedCiphers {
		macs := supportedMACs
		if _, _, aead, _ := cipherKeySizes(cipher); aead {
			macs = macs[:1]
		}
		for _, mac := range macs {
			for _, off := range []int{0, 3, 4, 5, 40, 100} {
				t.Run(fmt.Sprintf("%s/%s/%d", cipher, mac, off), func(t *testing.T) {
					ca, cb := tcpPair(t)
					fc := &flipConn{Conn: ca, off: off}
					ccfg := &Config{HostKeyCallback: acceptAny, Ciphers: []string{cipher}, MACs: []string{mac}}
					scfg := &Config{HostKeys: []kex.Signer{testHostKey(t)}}
					cc, sc, cerr, serr := handshakePair(t, fc, cb, ccfg, scfg)
					if cerr != nil || serr != nil {
						t.Fatal(cerr, serr)
					}
					defer cc.Close()
					defer sc.Close()
					fc.mu.Lock()
					fc.armed = true
					fc.mu.Unlock()
					p := append([]byte{wire.MsgChannelData}, bytes.Repeat([]byte("x"), 120)...)
					// Further packets supply the bytes that a length
					// made larger by the flip asks for.
					for i := 0; i < 4; i++ {
						cc.WritePacket(p)
					}
					sc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
					got, err := sc.ReadPacket()
					if err == nil {
						t.Fatalf("corrupted packet accepted: %q", got)
					}
					if errors.Is(err, errMAC) || strings.Contains(err.Error(), "packet") || strings.Contains(err.Error(), "length") {
						return
					}
					t.Fatalf("unexpected error kind: %v", err)
				})
			}
		}
	}
}

func TestWrongHostKeyRejected(t *testing.T) {
	ca, cb := tcpPair(t)
	want := errors.New("host key mismatch for test")
	ccfg := &Config{HostKeyCallback: func(kex.PublicKey) error { return want }}
	scfg := &Config{HostKeys: []kex.Signer{testHostKey(t)}}
	_, _, cerr, serr := handshakePair(t, ca, cb, ccfg, scfg)
	if !errors.Is(cerr, want) {
		t.Fatalf("client error = %v, want %v", cerr, want)
	}
	if serr == nil {
		t.Fatal("server handshake succeeded though the client refused")
	}
}

// A peer that stops in the middle of the key exchange: the handshake ends
// with the context's error instead of hanging.
func TestPeerStopsMidKex(t *testing.T) {
	ca, cb := tcpPair(t)
	go func() {
		io.WriteString(cb, "SSH-2.0-Staller\r\n")
		m, _ := newKexInit(&Config{}, false, true, []string{kex.KeyAlgoED25519})
		p := m.marshal()
		// An unencrypted packet: length, padding length, payload, padding.
		pad := 8 - (5+len(p))%8
		if pad < 4 {
			pad += 8
		}
		b := wire.AppendUint32(nil, uint32(1+len(p)+pad))
		b = append(b, byte(pad))
		b = append(b, p...)
		b = append(b, make([]byte, pad)...)
		cb.Write(b)
		io.Copy(io.Discard, cb) // read the client's messages, answer nothing
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := NewClientConn(ctx, ca, &Config{HostKeyCallback: acceptAny})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
}

// CVE-2023-48795 (Terrapin): an IGNORE injected before the peer's
// KEXINIT, or during the first kex, is fatal under strict kex.
func TestTerrapinIgnoreDuringStrictKexIsFatal_CVE_2023_48795(t *testing.T) {
	ca, cb := tcpPair(t)
	go func() {
		io.WriteString(cb, "SSH-2.0-Attacker\r\n")
		io.CopyN(io.Discard, cb, 0)
		writePlain(cb, []byte{wire.MsgIgnore, 0, 0, 0, 0})
		m, _ := newKexInit(&Config{}, false, true, []string{kex.KeyAlgoED25519})
		writePlain(cb, m.marshal())
		io.Copy(io.Discard, cb)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := NewClientConn(ctx, ca, &Config{HostKeyCallback: acceptAny})
	if err == nil || !strings.Contains(err.Error(), "strict kex") {
		t.Fatalf("got %v, want a strict kex violation", err)
	}
}

func writePlain(w io.Writer, p []byte) {
	pad := 8 - (5+len(p))%8
	if pad < 4 {
		pad += 8
	}
	b := wire.AppendUint32(nil, uint32(1+len(p)+pad))
	b = append(b, byte(pad))
	b = append(b, p...)
	b = append(b, make([]byte, pad)...)
	w.Write(b)
}

func TestVersionExchangeBounds(t *testing.T) {
	ca, cb := tcpPair(t)
	go func() {
		io.WriteString(cb, strings.Repeat("x", 300)+"\r\n")
		io.Copy(io.Discard, cb)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := NewClientConn(ctx, ca, &Config{HostKeyCallback: acceptAny})
	if err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("got %v", err)
	}
}

func TestExtInfoServerSigAlgs(t *testing.T) {
	cc, sc := newPair(t, nil)
	// EXT_INFO is read by the client's next ReadPacket.
	go sc.WritePacket([]byte{wire.MsgChannelData, 1})
	if _, err := cc.ReadPacket(); err != nil {
		t.Fatal(err)
	}
	algs := cc.ServerSigAlgs()
	if len(algs) == 0 || algs[0] != kex.KeyAlgoED25519 {
		t.Fatalf("server-sig-algs = %v", algs)
	}
	if _, ok := cc.ExtInfo("ping@openssh.com"); !ok {
		t.Fatal("ping@openssh.com not announced")
	}
}

// Received bytes count towards our rekey policy as well: a side that
// only receives still rekeys.
func TestRekeyOnReceivedBytes(t *testing.T) {
	cc, sc := newSmallBufferPair(t, func(c, s *Config) { s.RekeyBytes = 1 << 20 })
	go func() {
		for {
			if _, err := cc.ReadPacket(); err != nil {
				return
			}
		}
	}()
	// Up to the sender's 1 MiB write buffer and the socket buffers arrive
	// after the limit is reached and before the rekey completes. It
	// failed 1 run in 10 (4 or even 2 exchanges in 32 MiB) while the
	// sender's reading goroutine could be caught flushing the data stream
	// behind its NEWKEYS (TestReaderNotCapturedByFlush).
	streamWithRekeys(t, cc, sc, 32<<20, nil)
	if n := sc.KexCount(); n < 5 {
		t.Fatalf("receiver with a 1 MiB limit did only %d key exchanges over 32 MiB", n)
	}
}

// The resume extension is negotiated only when both sides offer it; then
// both derive the same resume key, distinct per session.
func TestResumeNegotiation(t *testing.T) {
	for _, tc := range []struct {
		client, server, want bool
	}{{true, true, true}, {true, false, false}, {false, true, false}, {false, false, false}} {
		cc, sc := newPair(t, func(c, s *Config) { c.Extensions, s.Extensions = withResume(tc.client), withResume(tc.server) })
		for _, name := range []string{resumeExt.Client, resumeExt.Server} {
			if cc.Negotiated(name) != tc.want || sc.Negotiated(name) != tc.want {
				t.Fatalf("client %v server %v: %s negotiated %v/%v", tc.client, tc.server, name, cc.Negotiated(name), sc.Negotiated(name))
			}
		}
		ck, _ := resumeKey(cc)
		sk, _ := resumeKey(sc)
		if tc.want != (len(ck) == 32) || !bytes.Equal(ck, sk) {
			t.Fatalf("client %v server %v: keys %x / %x", tc.client, tc.server, ck, sk)
		}
		// The pseudo-algorithm is never chosen as the kex method.
		if strings.Contains(cc.Algorithms().Kex, "resume") {
			t.Fatalf("negotiated kex %q", cc.Algorithms().Kex)
		}
		// Rekeying does not change the key.
		if tc.want {
			for _, c := range []*Conn{cc, sc} {
				go func() {
					for {
						if _, err := c.ReadPacket(); err != nil {
							return
						}
					}
				}()
			}
			cc.Rekey()
			deadline := time.Now().Add(5 * time.Second)
			for (sc.KexCount() < 2 || cc.KexCount() < 2) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			sk2, _ := resumeKey(sc)
			ck2, _ := resumeKey(cc)
			if sc.KexCount() < 2 || !bytes.Equal(sk2, sk) || !bytes.Equal(ck2, ck) {
				t.Fatalf("after a rekey (%d key exchanges) the resume key changed", sc.KexCount())
			}
			other, _ := newPair(t, func(c, s *Config) { c.Extensions, s.Extensions = withResume(true), withResume(true) })
			if ok, _ := resumeKey(other); bytes.Equal(ok, ck) {
				t.Fatal("two sessions share a resume key")
			}
		}
	}
}

// TestTap: what the client's tap sees sent is what the server's tap sees
// received, packet for packet with the same sequence numbers, from the
// first KEXINIT on.
func TestTap(t *testing.T) {
	type rec struct {
		seq uint32
		p   string
	}
	var mu sync.Mutex
	var sent, recv []rec
	var back int
	cc, sc := newPair(t, func(c, s *Config) {
		c.Tap = func(out bool, seq uint32, p []byte) {
			mu.Lock()
			defer mu.Unlock()
			if out {
				sent = append(sent, rec{seq, string(p)})
			} else {
				back++
			}
		}
		s.Tap = func(out bool, seq uint32, p []byte) {
			mu.Lock()
			defer mu.Unlock()
			if !out {
				recv = append(recv, rec{seq, string(p)})
			}
		}
	})
	exchange(t, cc, sc, 3)
	exchange(t, sc, cc, 2)
	exchange(t, cc, sc, 3)
	mu.Lock()
	defer mu.Unlock()
	if len(sent) < 3+3+3 || back == 0 {
		t.Fatalf("tap saw %d packets sent and %d received by the client", len(sent), back)
	}
	if sent[0].p[0] != wire.MsgKexInit {
		t.Fatalf("first packet tapped is message %d, want KEXINIT", sent[0].p[0])
	}
	// The server may not have read the last packets the client sent.
	if len(recv) > len(sent) {
		t.Fatalf("server tapped %d packets, client sent %d", len(recv), len(sent))
	}
	if diff := cmp.Diff(sent[:len(recv)], recv, cmp.AllowUnexported(rec{})); diff != "" {
		t.Fatalf("sent and received differ (-sent +received):\n%s", diff)
	}
	if got := cc.Seq().Out; sent[len(sent)-1].seq != got-1 {
		t.Fatalf("last tapped sequence number %d, connection says next is %d", sent[len(sent)-1].seq, got)
	}
}

// writeIndexed writes n channel-data packets of payload's size, packet i
// carrying i in its second byte.
func writeIndexed(t *testing.T, c *Conn, n int, payload []byte) {
	t.Helper()
	payload[0] = wire.MsgChannelData
	for i := range n {
		payload[1] = byte(i)
		if err := c.WritePacket(payload); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
}

// expectIndexedThenDisconnect reads what writeIndexed sent, in order, and
// then the peer's DISCONNECT by application.
func expectIndexedThenDisconnect(t *testing.T, c *Conn, n, size int) {
	t.Helper()
	for i := range n {
		p, err := c.ReadPacket()
		if err != nil {
			t.Fatalf("packet %d of %d: %v", i, n, err)
		}
		if len(p) != size || p[0] != wire.MsgChannelData || p[1] != byte(i) {
			t.Fatalf("packet %d: %d bytes, type %d, index %d", i, len(p), p[0], p[1])
		}
	}
	var de *DisconnectError
	if _, err := c.ReadPacket(); !errors.As(err, &de) || de.Reason != wire.DisconnectByApplication {
		t.Fatalf("after the data: %v, want the peer's DISCONNECT", err)
	}
}

// Channel data leaves through writeLoop after WritePacket returns; a
// Close right after must still deliver all of it, in order, before the
// DISCONNECT. The reader starts only after Close, so that the data sits
// in our buffer and the socket's while Close runs.
func TestDataWrittenBeforeCloseArrives(t *testing.T) {
	cc, sc := newSmallBufferPair(t, nil)
	// A regression must fail, not hang: drop both ends after a while.
	watchdog := time.AfterFunc(20*time.Second, func() { cc.Abort(); sc.Abort() })
	defer watchdog.Stop()
	// 640 KiB: more than the sockets hold, less than maxWriteBuffer, so
	// no write waits for the reader, which starts only after Close.
	const n = 20
	payload := make([]byte, 32<<10)
	writeIndexed(t, cc, n, payload)
	// The client keeps reading, as a multiplexer does
	// (TestCloseWithUnreadInputDelivers covers one that does not).
	go func() {
		for {
			if _, err := cc.ReadPacket(); err != nil {
				return
			}
		}
	}()
	closed := make(chan error, 1)
	go func() { closed <- cc.Close() }()
	expectIndexedThenDisconnect(t, sc, n, len(payload))
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

// Close with input it never read still delivers everything it sent, its
// DISCONNECT included. A socket closed with unread input sends RST, and
// the peer's kernel then discards what its application had not read yet:
// a resuming server would see a lost link, not the end, and hold the
// session. The peer here reads only after Close returned.
func TestCloseWithUnreadInputDelivers(t *testing.T) {
	cc, sc := newSmallBufferPair(t, nil)
	watchdog := time.AfterFunc(20*time.Second, func() { cc.Abort(); sc.Abort() })
	defer watchdog.Stop()
	ping := []byte{wire.MsgIgnore, 0, 0, 0, 4, 'p', 'i', 'n', 'g'}
	for range 3 {
		// Input the client never reads.
		if err := sc.WritePacket(ping); err != nil {
			t.Fatal(err)
		}
	}
	// More than the server's socket takes, less than both sockets do: when
	// Close returns, part of it still waits in the client's kernel.
	const n = 40
	payload := make([]byte, 4<<10)
	writeIndexed(t, cc, n, payload)
	// Let the pings arrive, then close: they are now unread input.
	time.Sleep(50 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- cc.Close() }()
	// Close is now waiting for the server's acknowledgement, for
	// lingerTimeout at most: read well within it.
	time.Sleep(10 * time.Millisecond)
	expectIndexedThenDisconnect(t, sc, n, len(payload))
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}
