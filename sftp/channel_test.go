package sftp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/internal/wire"
)

// memConn is an in-memory connection of whole messages (channel.PlainConn
// adapts it for the multiplexer, whose WriteFill and ReadVia then fill
// and read in place as they do over SSH). Its queue has no bound:
// with bounded ones, two multiplexers each writing from the goroutine
// that reads (window adjustments) could wait on each other forever.
type memConn struct {
	in, out *packetQueue
}

type packetQueue struct {
	mu     sync.Mutex
	cond   sync.Cond
	q      [][]byte
	closed bool
}

func newPacketQueue() *packetQueue {
	q := &packetQueue{}
	q.cond.L = &q.mu
	return q
}

func (m *memConn) ReadPacket() ([]byte, error) {
	q := m.in
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.q) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.q) == 0 {
		return nil, io.EOF
	}
	p := q.q[0]
	q.q[0] = nil
	q.q = q.q[1:]
	return p, nil
}

func (m *memConn) WritePacket(b []byte) error {
	q := m.out
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return io.ErrClosedPipe
	}
	q.q = append(q.q, bytes.Clone(b))
	q.cond.Broadcast()
	return nil
}

// Close ends both directions, as closing a connection does.
func (m *memConn) Close() error {
	for _, q := range []*packetQueue{m.in, m.out} {
		q.mu.Lock()
		q.closed = true
		q.cond.Broadcast()
		q.mu.Unlock()
	}
	return nil
}

// channelPair opens a channel between two multiplexers whose packets
// carry at most maxPacket bytes of data.
func channelPair(t testing.TB, maxPacket uint32) (client, server *channel.Channel) {
	t.Helper()
	a2b, b2a := newPacketQueue(), newPacketQueue()
	cfg := &channel.Config{MaxPacket: maxPacket}
	ma := channel.NewMux(channel.PlainConn(&memConn{in: b2a, out: a2b}), cfg)
	mb := channel.NewMux(channel.PlainConn(&memConn{in: a2b, out: b2a}), cfg)
	t.Cleanup(func() { ma.Close(); mb.Close() })
	nch := mb.HandleChannelOpen("session")
	acc := make(chan *channel.Channel, 1)
	go func() {
		c, err := (<-nch).Accept()
		if err != nil {
			t.Error(err)
		}
		acc <- c
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := ma.OpenChannel(ctx, "session", nil)
	if err != nil {
		t.Fatal(err)
	}
	return client, <-acc
}

// ourServerOverChannel is newOurServerClient over an SSH channel.
func ourServerOverChannel(t testing.TB, root string, maxPacket uint32) *Client {
	t.Helper()
	cc, sc := channelPair(t, maxPacket)
	return ourServerClientOver(t, cc, sc, root)
}

// Over a channel the server reads files straight into the packets
// (readFill) and the client writes downloads straight from its receive
// buffer (downloadTo): whole files, in packets of every size down to
// ones smaller than a DATA header, come through byte for byte.
func TestTransfersOverChannel(t *testing.T) {
	for _, mp := range []uint32{9, 1000, 32 << 10} {
		t.Run(fmt.Sprint("maxpacket-", mp), func(t *testing.T) {
			root, local := t.TempDir(), t.TempDir()
			c := ourServerOverChannel(t, root, mp)
			sizes := []int{0, 1, minFillRead - 1, minFillRead, MaxReadWrite, 2*MaxReadWrite + 17}
			if mp < 100 {
				sizes = []int{0, 13, 3*minFillRead + 5}
			}
			for i, size := range sizes {
				data := randomBytes(size, uint64(i))
				writeFile(t, root+"/f", data)
				lp := local + "/f"
				if err := c.Download(context.Background(), "/f", lp, TransferOptions{}); err != nil {
					t.Fatalf("%d bytes, max packet %d: Download: %v", size, mp, err)
				}
				if got, _ := os.ReadFile(lp); !bytes.Equal(got, data) {
					t.Fatalf("%d bytes, max packet %d: downloaded file differs (%d bytes)", size, mp, len(got))
				}
				f, err := c.Open("/f")
				if err != nil {
					t.Fatal(err)
				}
				var buf bytes.Buffer
				if n, err := f.WriteTo(&buf); err != nil || n != int64(size) || !bytes.Equal(buf.Bytes(), data) {
					t.Fatalf("%d bytes: WriteTo = %d, %v", size, n, err)
				}
				if size > 100 {
					p := make([]byte, size/3)
					if n, err := f.ReadAt(p, 50); err != nil || !bytes.Equal(p[:n], data[50:50+n]) {
						t.Fatalf("%d bytes: ReadAt = %d, %v", size, n, err)
					}
				}
				f.Close()
				up := randomBytes(size, uint64(i+100))
				writeFile(t, local+"/u", up)
				if err := c.Upload(context.Background(), local+"/u", "/u", TransferOptions{}); err != nil {
					t.Fatal(err)
				}
				if got, _ := os.ReadFile(root + "/u"); !bytes.Equal(got, up) {
					t.Fatalf("%d bytes: uploaded file differs", size)
				}
			}
		})
	}
}

// A download whose replies are short, and one of whose re-requests then
// fails, has later replies' data already in the local file: the file is
// cut back to the bytes received in order, which the error reports, so
// that a resume appends to a true prefix.
func TestDownloadDirectCutsBackOnFailure(t *testing.T) {
	data := randomBytes(12*32768+99, 5)
	for _, fail := range []int{0, 9} {
		cc, sc := channelPair(t, 32<<10)
		srv := newFakeServer(t, sc)
		srv.files["/f"] = &fakeFile{data: data}
		srv.maxRead = 7000
		srv.failRead = fail
		c, err := NewClient(context.Background(), cc, ReadSize(32768), MaxInflight(8))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		lp := filepath.Join(t.TempDir(), "f")
		err = c.Download(context.Background(), "/f", lp, TransferOptions{})
		got, _ := os.ReadFile(lp)
		if fail == 0 {
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("short reads: %v, equal %v", err, bytes.Equal(got, data))
			}
			continue
		}
		var pe *PartialError
		if !errors.As(err, &pe) {
			t.Fatalf("failed READ: %v, want a PartialError", err)
		}
		if pe.Done <= 0 || pe.Done >= 32768 || int64(len(got)) != pe.Done || !bytes.Equal(got, data[:len(got)]) {
			t.Fatalf("failed READ: %d bytes reported, local file %d bytes (prefix %v)", pe.Done, len(got), bytes.Equal(got, data[:min(len(got), len(data))]))
		}
	}
}

// uploadFrom over a channel reads the file straight into the packets; a
// failed WRITE still leaves the remote file at the acknowledged prefix.
func TestUploadDirectNoHoles(t *testing.T) {
	const ws = 32768
	data := randomBytes(40*ws+5, 4)
	lp := filepath.Join(t.TempDir(), "src")
	writeFile(t, lp, data)
	lf, err := os.Open(lp)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	for _, failAt := range []int64{-1, 0, 3 * ws, 39 * ws, 40 * ws} {
		t.Run(fmt.Sprint(failAt), func(t *testing.T) {
			cc, sc := channelPair(t, 32<<10)
			srv, f := uploadToFake(t, cc, sc, failAt, ws)
			read := 0
			n, err := f.uploadFrom(lf, 0, func() error { return nil }, func(k int) { read += k })
			f.Close()
			got := srv.file("/up")
			if failAt < 0 {
				if err != nil || n != int64(len(data)) || read != len(data) || !bytes.Equal(got, data) {
					t.Fatalf("uploadFrom = %d, %v; %d bytes read; remote equal %v", n, err, read, bytes.Equal(got, data))
				}
				return
			}
			if err == nil || n != failAt {
				t.Fatalf("uploadFrom = %d, %v; want %d and the server's error", n, err, failAt)
			}
			if !bytes.Equal(got, data[:failAt]) {
				t.Fatalf("remote file is %d bytes (prefix equal: %v), want the %d acknowledged", len(got), bytes.HasPrefix(data, got), failAt)
			}
		})
	}
}

// rawSession speaks SFTP by hand over a channel to our server.
type rawSession struct {
	t  *testing.T
	ch *channel.Channel
	id uint32
}

func newRawSession(t *testing.T, cfg *ServerConfig) *rawSession {
	cc, sc := channelPair(t, 32<<10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, sc, cfg) }()
	t.Cleanup(func() { cc.Close(); cancel(); <-done })
	rs := &rawSession{t: t, ch: cc}
	init := wire.AppendUint32(startPacket(nil, typeInit), ProtocolVersion)
	if _, err := cc.Write(finishPacket(init)); err != nil {
		t.Fatal(err)
	}
	if p, err := readPacket(cc, nil); err != nil || p[0] != typeVersion {
		t.Fatalf("VERSION: %v", err)
	}
	return rs
}

// call sends a request of type typ with body and returns the reply's
// type and body after the id.
func (rs *rawSession) call(typ byte, body []byte) (byte, []byte) {
	rs.t.Helper()
	rs.id++
	p := wire.AppendUint32(startPacket(nil, typ), rs.id)
	if _, err := rs.ch.Write(finishPacket(append(p, body...))); err != nil {
		rs.t.Fatal(err)
	}
	r, err := readPacket(rs.ch, nil)
	if err != nil || len(r) < 5 || binary.BigEndian.Uint32(r[1:5]) != rs.id {
		rs.t.Fatalf("reply to request %d: %v (%d bytes)", rs.id, err, len(r))
	}
	return r[0], r[5:]
}

func (rs *rawSession) open(name string, flags uint32) []byte {
	rs.t.Helper()
	b := wire.AppendString(nil, name)
	b = wire.AppendUint32(b, flags)
	b = wire.AppendUint32(b, 0) // no attributes
	typ, body := rs.call(typeOpen, b)
	if typ != typeHandle {
		rs.t.Fatalf("OPEN %s: reply type %d (%v)", name, typ, parseStatus(body))
	}
	return wire.NewReader(body).Bytes()
}

// write sends a WRITE and returns the status as an error (nil for OK).
func (rs *rawSession) write(handle []byte, off uint64, data []byte) error {
	rs.t.Helper()
	b := wire.AppendBytes(nil, handle)
	b = wire.AppendUint64(b, off)
	b = wire.AppendBytes(b, data)
	typ, body := rs.call(typeWrite, b)
	if typ != typeStatus {
		rs.t.Fatalf("WRITE: reply type %d", typ)
	}
	return parseStatus(body)
}

// Large WRITEs over a channel go from its buffer to the file
// (writeDirect); each refusal is the one a copied WRITE gets, and the
// data is consumed all the same: the next request is read correctly.
func TestWriteDirectAnswers(t *testing.T) {
	root := t.TempDir()
	rs := newRawSession(t, &ServerConfig{Root: root})
	big := randomBytes(100<<10, 7)
	h := rs.open("/f", FlagWrite|FlagCreate)
	if err := rs.write(h, 0, big); err != nil {
		t.Fatal(err)
	}
	if err := rs.write(h, 1000, big[:50<<10]); err != nil {
		t.Fatal(err)
	}
	want := append(big[:1000:1000], big[:50<<10]...)
	want = append(want, big[len(want):]...)
	if got, _ := os.ReadFile(root + "/f"); !bytes.Equal(got, want) {
		t.Fatalf("file differs (%d bytes)", len(got))
	}
	var se *StatusError
	if err := rs.write([]byte("nosuch"), 0, big); !errors.As(err, &se) || se.Message != "invalid handle" {
		t.Fatalf("WRITE to an unknown handle: %v", err)
	}
	hr := rs.open("/f", FlagRead)
	if err := rs.write(hr, 0, big); !errors.As(err, &se) || se.Code == StatusOK {
		t.Fatalf("WRITE to a read-only handle: %v", err)
	}
	ha := rs.open("/f", FlagWrite|FlagAppend)
	if err := rs.write(ha, 0, big[:20<<10]); err != nil {
		t.Fatal(err)
	}
	want = append(want, big[:20<<10]...)
	if got, _ := os.ReadFile(root + "/f"); !bytes.Equal(got, want) {
		t.Fatalf("after an append the file differs (%d bytes, want %d)", len(got), len(want))
	}

	if err := rs.write(h, 1<<63, big); !errors.As(err, &se) || se.Message != "offset too large" {
		t.Fatalf("WRITE at offset 2^63: %v", err)
	}

	// READs answered in place (readFill) that find no data: the file's
	// end, and a handle not open for reading, each a STATUS.
	read := func(handle []byte, off uint64) (byte, []byte) {
		b := wire.AppendBytes(nil, handle)
		b = wire.AppendUint64(b, off)
		b = wire.AppendUint32(b, 64<<10)
		return rs.call(typeRead, b)
	}
	if typ, body := read(hr, 1<<30); typ != typeStatus || !errors.Is(parseStatus(body), io.EOF) {
		t.Fatalf("READ past the end: type %d, %v", typ, parseStatus(body))
	}
	if typ, body := read(h, 0); typ != typeStatus || !errors.As(parseStatus(body), &se) || se.Code == StatusEOF {
		t.Fatalf("READ on a write-only handle: type %d, %v", typ, parseStatus(body))
	}
	if typ, body := read(hr, 10); typ != typeData || !bytes.Equal(wire.NewReader(body).Bytes(), want[10:10+64<<10]) {
		t.Fatalf("READ after the refusals: type %d", typ)
	}

	ro := newRawSession(t, &ServerConfig{Root: root, ReadOnly: true})
	h = ro.open("/f", FlagRead)
	if err := ro.write(h, 0, big); !errors.As(err, &se) || se.Code != StatusPermissionDenied {
		t.Fatalf("WRITE on a read-only server: %v", err)
	}
	if got, _ := os.ReadFile(root + "/f"); !bytes.Equal(got, want) {
		t.Fatal("a refused WRITE changed the file")
	}
}
