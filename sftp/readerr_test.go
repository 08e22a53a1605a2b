package sftp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rsftp/rsftp/internal/wire"
)

// failingConn serves a VERSION and the start of a reply, then fails
// with err, as a channel fails when its session is refused on
// reconnection.
type failingConn struct {
	version, reply *bytes.Reader
	err            error
	writes         atomic.Int32
	asked          chan struct{} // closed at the second write (the request after INIT and limits)
}

func (f *failingConn) Read(p []byte) (int, error) {
	if f.version.Len() > 0 {
		return f.version.Read(p)
	}
	<-f.asked
	n, err := f.reply.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func (f *failingConn) Write(p []byte) (int, error) {
	if f.writes.Add(1) == 2 {
		close(f.asked)
	}
	return len(p), nil
}
func (f *failingConn) Close() error { return nil }

// TestClientReportsWhyTheConnectionFailed: a connection that fails in
// the middle of a reply gives its cause, not "connection closed
// mid-packet: unexpected EOF"; one that only ends still says that.
func TestClientReportsWhyTheConnectionFailed(t *testing.T) {
	// VERSION, and the answer to the limits request sent with INIT.
	version := finishPacket(wire.AppendUint32(startPacket(nil, typeVersion), 3))
	version = append(version, finishPacket(fakeStatus(limitsID, StatusOpUnsupported, ""))...)
	// The start of a NAME reply to the next request: the header and 2
	// bytes of a 100-byte body.
	partial := []byte{0, 0, 0, 105, typeName, 0, 0, 0, limitsID + 1, 0, 0}
	cause := errors.New("resume: the server refused the session (unknown session)")
	for _, c := range []struct {
		err  error
		want string
	}{
		{cause, cause.Error()},
		{io.EOF, "connection closed mid-packet"},
	} {
		conn := &failingConn{version: bytes.NewReader(version), reply: bytes.NewReader(partial), err: c.err, asked: make(chan struct{})}
		cl, err := NewClient(context.Background(), conn)
		if err != nil {
			t.Fatal(err)
		}
		_, err = cl.RealPath(".")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("with %v: %v, want it to say %q", c.err, err, c.want)
		}
		if c.err == cause && !errors.Is(err, cause) {
			t.Errorf("%v does not wrap the cause", err)
		}
		cl.Close()
	}
}
