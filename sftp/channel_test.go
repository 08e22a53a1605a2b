package sftp

import (
	"bytes"
	"context"
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

// memConn is an in-memory channel.PacketConn that, like transport.Conn,
// takes framed packets, so that channels over it use WriteFill's and
// ReadVia's in-place paths as they do over SSH.
type memConn struct {
	in     <-chan []byte
	out    chan<- []byte
	closed chan struct{}
	once   *sync.Once
}

func (m *memConn) ReadPacket() ([]byte, error) {
	select {
	case b := <-m.in:
		return b, nil
	case <-m.closed:
		return nil, io.EOF
	}
}

func (m *memConn) WritePacket(b []byte) error {
	select {
	case m.out <- bytes.Clone(b):
		return nil
	case <-m.closed:
		return io.ErrClosedPipe
	}
}

func (m *memConn) WriteFramedPacket(buf []byte) error {
	return m.WritePacket(buf[wire.FrameHeadroom:])
}

func (m *memConn) Close() error {
	m.once.Do(func() { close(m.closed) })
	return nil
}

// channelPair opens a channel between two multiplexers whose packets
// carry at most maxPacket bytes of data.
func channelPair(t testing.TB, maxPacket uint32) (client, server *channel.Channel) {
	t.Helper()
	a2b, b2a := make(chan []byte, 256), make(chan []byte, 256)
	closed, once := make(chan struct{}), new(sync.Once)
	cfg := &channel.Config{MaxPacket: maxPacket}
	ma := channel.NewMux(&memConn{in: b2a, out: a2b, closed: closed, once: once}, cfg)
	mb := channel.NewMux(&memConn{in: a2b, out: b2a, closed: closed, once: once}, cfg)
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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, sc, &ServerConfig{Root: root}) }()
	c, err := NewClient(context.Background(), cc)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		cancel()
		<-done
	})
	return c
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
