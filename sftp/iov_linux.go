//go:build linux

package sftp

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// maxIovecs is Linux's IOV_MAX: the most buffers one preadv takes.
const maxIovecs = 1024

// readAtv is ReadAt into several buffers in turn, with preadv(2): one
// system call fills every packet of a DATA reply. Like ReadAt it returns
// io.EOF when the file ends before the buffers are full.
func readAtv(f *os.File, bufs [][]byte, off int64) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	total := 0
	for bufs = skipBytes(bufs, 0); len(bufs) > 0; {
		var n int
		var serr error
		if err := rc.Read(func(fd uintptr) bool {
			n, serr = unix.Preadv(int(fd), bufs[:min(len(bufs), maxIovecs)], off)
			return true
		}); err != nil {
			return total, err
		}
		if serr == unix.EINTR {
			continue
		}
		if serr != nil {
			return total, &os.PathError{Op: "read", Path: f.Name(), Err: serr}
		}
		if n <= 0 {
			return total, io.EOF
		}
		total += n
		off += int64(n)
		bufs = skipBytes(bufs, n)
	}
	return total, nil
}

// writeAtv is WriteAt from several buffers in turn, with pwritev(2).
func writeAtv(f *os.File, bufs [][]byte, off int64) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	total := 0
	for bufs = skipBytes(bufs, 0); len(bufs) > 0; {
		var n int
		var serr error
		if err := rc.Write(func(fd uintptr) bool {
			n, serr = unix.Pwritev(int(fd), bufs[:min(len(bufs), maxIovecs)], off)
			return true
		}); err != nil {
			return total, err
		}
		if serr == unix.EINTR {
			continue
		}
		if serr != nil {
			return total, &os.PathError{Op: "write", Path: f.Name(), Err: serr}
		}
		if n <= 0 {
			return total, io.ErrShortWrite
		}
		total += n
		off += int64(n)
		bufs = skipBytes(bufs, n)
	}
	return total, nil
}
