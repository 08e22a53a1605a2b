package winpipe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/windows"
)

// Addr is a named pipe's name.
type Addr string

func (a Addr) Network() string { return "pipe" }
func (a Addr) String() string  { return string(a) }

// conn is one end of a pipe: the *os.File does the I/O and the deadlines.
type conn struct {
	*os.File
	addr Addr
}

func (c *conn) LocalAddr() net.Addr  { return c.addr }
func (c *conn) RemoteAddr() net.Addr { return c.addr }

// newConn wraps an overlapped pipe handle.
func newConn(h windows.Handle, name string) (net.Conn, error) {
	f := os.NewFile(uintptr(h), name)
	if f == nil {
		return nil, errors.New("winpipe: invalid handle")
	}
	// The runtime takes an overlapped handle into its completion port;
	// without it a deadline could not end a read.
	if err := f.SetDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, fmt.Errorf("winpipe: %s: %w", name, err)
	}
	return &conn{File: f, addr: Addr(name)}, nil
}

// Dial connects to the named pipe name (\\.\pipe\...), waiting while all
// its instances are busy, until ctx is done. The server may identify the
// caller but not impersonate it (SECURITY_IDENTIFICATION), as OpenSSH
// for Windows' own client opens its agent's pipe.
func Dial(ctx context.Context, name string) (net.Conn, error) {
	n16, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return nil, err
	}
	for {
		h, err := windows.CreateFile(n16, windows.GENERIC_READ|windows.GENERIC_WRITE, 0, nil, windows.OPEN_EXISTING,
			windows.FILE_FLAG_OVERLAPPED|windows.SECURITY_SQOS_PRESENT|windows.SECURITY_IDENTIFICATION, 0)
		if err == nil {
			return newConn(h, name)
		}
		if !errors.Is(err, windows.ERROR_PIPE_BUSY) {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		case <-t.C:
		}
	}
}

// Pair makes a connected pair: ours, overlapped, and theirs, an
// *os.File for a child process's standard input and output
// (synchronous, as programs expect of those). The pipe's name is random
// and local (remote clients are refused); it has one instance, which
// theirs fills at once, so nobody else can connect to it.
func Pair() (ours net.Conn, theirs *os.File, err error) {
	var rnd [16]byte
	rand.Read(rnd[:])
	name := fmt.Sprintf(`\\.\pipe\rsftp-%d-%s`, os.Getpid(), hex.EncodeToString(rnd[:]))
	srv, err := listen(name)
	if err != nil {
		return nil, nil, err
	}
	n16, _ := windows.UTF16PtrFromString(name)
	cli, err := windows.CreateFile(n16, windows.GENERIC_READ|windows.GENERIC_WRITE, 0, nil, windows.OPEN_EXISTING,
		windows.SECURITY_SQOS_PRESENT|windows.SECURITY_ANONYMOUS, 0)
	if err != nil {
		windows.CloseHandle(srv)
		return nil, nil, fmt.Errorf("winpipe: open %s: %w", name, err)
	}
	// The client connected before any ConnectNamedPipe, which would only
	// say ERROR_PIPE_CONNECTED: the pipe is connected.
	ours, err = newConn(srv, name)
	if err != nil {
		windows.CloseHandle(cli)
		return nil, nil, err
	}
	return ours, os.NewFile(uintptr(cli), name), nil
}

// listen creates the first and only instance of a local byte pipe, for
// overlapped I/O.
func listen(name string) (windows.Handle, error) {
	n16, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return 0, err
	}
	h, err := windows.CreateNamedPipe(n16,
		windows.PIPE_ACCESS_DUPLEX|windows.FILE_FLAG_OVERLAPPED|windows.FILE_FLAG_FIRST_PIPE_INSTANCE,
		windows.PIPE_TYPE_BYTE|windows.PIPE_READMODE_BYTE|windows.PIPE_WAIT|windows.PIPE_REJECT_REMOTE_CLIENTS,
		1, 64<<10, 64<<10, 0, nil)
	if err != nil {
		return 0, fmt.Errorf("winpipe: create %s: %w", name, err)
	}
	return h, nil
}
