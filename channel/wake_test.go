package channel

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/connmsg"
	"github.com/rsftp/rsftp/internal/wire"
)

// waitUntilLocked polls cond, with c.mu held, for up to 10 s.
func waitUntilLocked(t *testing.T, c *Channel, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		c.mu.Lock()
		ok := cond()
		c.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A reader draining stderr sleeps through a stream of stdout (rsftp's
// helper channel has one for the whole transfer): only data of its own
// stream, or the channel's end, wakes it. It went to sleep once, and
// stayed asleep while 64 packets of stdout arrived and were read, until
// stderr's data came; then the channel's EOF ends its next read.
func TestStderrReaderSleepsThroughStdout(t *testing.T) {
	m, raw := rawPeer(t, nil)
	c, id := rawOpen(t, m, raw, 1<<20, 32<<10)
	type result struct {
		b   []byte
		err error
	}
	got := make(chan result, 2)
	go func() {
		for {
			buf := make([]byte, 100)
			n, err := c.Stderr().Read(buf)
			got <- result{buf[:n], err}
			if err != nil {
				return
			}
		}
	}()
	waitUntilLocked(t, c, "the stderr reader to sleep", func() bool { return c.in.waits[1] == 1 })

	const packets = 64
	want := make([]byte, 0, packets*1000)
	for i := range packets {
		p := bytes.Repeat([]byte{byte('a' + i%26)}, 1000)
		want = append(want, p...)
		if err := raw.WritePacket((&connmsg.Data{Recipient: id, Data: p}).Marshal()); err != nil {
			t.Fatal(err)
		}
	}
	out := make([]byte, len(want))
	if _, err := io.ReadFull(c, out); err != nil || !bytes.Equal(out, want) {
		t.Fatalf("stdout: %v, or not what was sent", err)
	}
	c.mu.Lock()
	sleeps := c.in.waits[1]
	c.mu.Unlock()
	if sleeps != 1 {
		t.Errorf("the stderr reader went to sleep %d times while stdout arrived, want 1: woken by the other stream's data", sleeps)
	}

	if err := raw.WritePacket((&connmsg.Data{Recipient: id, Extended: true, Code: connmsg.ExtendedDataStderr, Data: []byte("oops")}).Marshal()); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if string(r.b) != "oops" || r.err != nil {
			t.Fatalf("stderr read %q, %v; want oops", r.b, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stderr reader was not woken by stderr's data")
	}
	if err := raw.WritePacket((&connmsg.EOF{Recipient: id}).Marshal()); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if r.err != io.EOF {
			t.Fatalf("stderr read after EOF: %q, %v; want io.EOF", r.b, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stderr reader was not woken by the channel's EOF")
	}
}

// A peer that allows 256 KiB packets gets a 255 KiB SFTP READ reply
// (261,120 bytes of data, what OpenSSH's client asks, and its 13-byte
// header) in one packet, and the largest data message still fits the
// transport's payload limit (256 KiB less 260 bytes of framing).
func TestLargestReplyInOnePacket(t *testing.T) {
	const reply = 261120 + 13
	if maxSendPacket < reply {
		t.Fatalf("maxSendPacket %d: a %d-byte reply goes in two packets", maxSendPacket, reply)
	}
	if msg := len((&connmsg.Data{Extended: true, Data: make([]byte, maxSendPacket)}).Marshal()); msg > 256<<10-260 {
		t.Fatalf("a full extended data message is %d bytes, over the transport's payload limit", msg)
	}
	m, raw := rawPeer(t, nil)
	c, _ := rawOpen(t, m, raw, 1<<20, 256<<10)
	src := make([]byte, reply)
	for i := range src {
		src[i] = byte(i * 13)
	}
	done := inBackground(len(src), func() (int, error) { return c.Write(src) })
	d, err := connmsg.ParseData(expect(t, raw, wire.MsgChannelData))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.Data, src) {
		t.Fatalf("the first packet holds %d of the reply's %d bytes, or other bytes", len(d.Data), len(src))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// sendData has the raw peer send n bytes of stdout in packets of size,
// each byte its offset from start (mod 251).
func sendData(t *testing.T, raw *pipeConn, id uint32, start, n, size int) {
	t.Helper()
	for off := start; off < start+n; off += size {
		p := make([]byte, min(size, start+n-off))
		for i := range p {
			p[i] = byte((off + i) % 251)
		}
		if err := raw.WritePacket((&connmsg.Data{Recipient: id, Data: p}).Marshal()); err != nil {
			t.Fatal(err)
		}
	}
}

func checkData(t *testing.T, b []byte, start int) {
	t.Helper()
	for i, v := range b {
		if v != byte((start+i)%251) {
			t.Fatalf("byte %d is %d, want %d", start+i, v, byte((start+i)%251))
		}
	}
}

type readResult struct {
	n   int
	err error
}

// ReadAtLeast sleeps, once, until the bytes it asked for have come,
// however many packets bring them: nine of ten packets arrive and it
// still sleeps; the tenth wakes it with all ten. Then data already
// buffered counts toward the next call, a window too small for the count
// caps it at half the window (a peer may keep the rest in reserve), and
// the channel's EOF or a read deadline end the wait with what came,
// before the next call reports them.
func TestReadAtLeast(t *testing.T) {
	t.Run("wakes-once", func(t *testing.T) {
		m, raw := rawPeer(t, nil)
		c, id := rawOpen(t, m, raw, 1<<20, 32<<10)
		buf := make([]byte, 64<<10)
		done := make(chan readResult, 1)
		go func() {
			n, err := c.ReadAtLeast(buf, 10000)
			done <- readResult{n, err}
		}()
		waitUntilLocked(t, c, "the reader to sleep", func() bool { return c.in.waits[0] == 1 })
		sendData(t, raw, id, 0, 9000, 1000)
		waitUntilLocked(t, c, "nine packets placed", func() bool { return c.in.directN == 9000 })
		select {
		case r := <-done:
			t.Fatalf("ReadAtLeast returned %d, %v with 9000 of 10000 bytes there", r.n, r.err)
		default:
		}
		sendData(t, raw, id, 9000, 1000, 1000)
		r := <-done
		if r.n != 10000 || r.err != nil {
			t.Fatalf("ReadAtLeast = %d, %v; want 10000", r.n, r.err)
		}
		checkData(t, buf[:r.n], 0)
		c.mu.Lock()
		sleeps := c.in.waits[0]
		c.mu.Unlock()
		if sleeps != 1 {
			t.Errorf("the reader went to sleep %d times, want 1: woken before its bytes were there", sleeps)
		}

		// Buffered data counts: 3000 there, 2000 more wanted.
		sendData(t, raw, id, 10000, 3000, 1000)
		waitUntilLocked(t, c, "3000 bytes buffered", func() bool { return c.in.stdout.len() == 3000 })
		go func() {
			n, err := c.ReadAtLeast(buf, 5000)
			done <- readResult{n, err}
		}()
		waitUntilLocked(t, c, "the reader to sleep again", func() bool { return c.in.waits[0] == 2 })
		sendData(t, raw, id, 13000, 2000, 1000)
		if r := <-done; r.n != 5000 || r.err != nil {
			t.Fatalf("ReadAtLeast with 3000 buffered = %d, %v; want 5000", r.n, r.err)
		} else {
			checkData(t, buf[:r.n], 10000)
		}

		// The EOF ends a wait with what came; the next call says EOF.
		go func() {
			n, err := c.ReadAtLeast(buf, 5000)
			done <- readResult{n, err}
		}()
		waitUntilLocked(t, c, "the reader to sleep a third time", func() bool { return c.in.waits[0] == 3 })
		sendData(t, raw, id, 15000, 1500, 1000)
		raw.WritePacket((&connmsg.EOF{Recipient: id}).Marshal())
		if r := <-done; r.n != 1500 || r.err != nil {
			t.Fatalf("ReadAtLeast ended by EOF = %d, %v; want the 1500 bytes that came", r.n, r.err)
		} else {
			checkData(t, buf[:r.n], 15000)
		}
		if n, err := c.ReadAtLeast(buf, 5000); n != 0 || err != io.EOF {
			t.Fatalf("ReadAtLeast after EOF = %d, %v", n, err)
		}
	})

	t.Run("window-caps-the-count", func(t *testing.T) {
		m, raw := rawPeer(t, &Config{WindowSize: 8192, MaxPacket: 1024, NoAutoGrow: true})
		c, id := rawOpen(t, m, raw, 1<<20, 32<<10)
		buf := make([]byte, 64<<10)
		done := make(chan readResult, 1)
		go func() {
			n, err := c.ReadAtLeast(buf, len(buf))
			done <- readResult{n, err}
		}()
		waitUntilLocked(t, c, "the reader to sleep", func() bool { return c.in.waits[0] == 1 })
		sendData(t, raw, id, 0, 4096, 1024)
		select {
		case r := <-done:
			if r.n != 4096 || r.err != nil {
				t.Fatalf("ReadAtLeast = %d, %v; want half the 8192-byte window", r.n, r.err)
			}
			checkData(t, buf[:r.n], 0)
		case <-time.After(10 * time.Second):
			t.Fatal("ReadAtLeast waited for more than the window lets the peer send")
		}
	})

	t.Run("deadline", func(t *testing.T) {
		m, raw := rawPeer(t, nil)
		c, id := rawOpen(t, m, raw, 1<<20, 32<<10)
		buf := make([]byte, 64<<10)
		done := make(chan readResult, 1)
		go func() {
			n, err := c.ReadAtLeast(buf, 10000)
			done <- readResult{n, err}
		}()
		waitUntilLocked(t, c, "the reader to sleep", func() bool { return c.in.waits[0] == 1 })
		sendData(t, raw, id, 0, 700, 700)
		waitUntilLocked(t, c, "700 bytes placed", func() bool { return c.in.directN == 700 })
		c.SetReadDeadline(time.Now())
		if r := <-done; r.n != 700 || r.err != nil {
			t.Fatalf("ReadAtLeast past its deadline = %d, %v; want the 700 bytes that came", r.n, r.err)
		}
		if _, err := c.ReadAtLeast(buf, 10000); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("ReadAtLeast after the deadline: %v", err)
		}
	})
}
