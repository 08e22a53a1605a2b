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
	return vectorAt(f, bufs, off, false)
}

// writeAtv is WriteAt from several buffers in turn, with pwritev(2).
func writeAtv(f *os.File, bufs [][]byte, off int64) (int, error) {
	return vectorAt(f, bufs, off, true)
}

// vectorAt moves all of bufs from or to f at off, in as few system calls
// as the kernel allows.
func vectorAt(f *os.File, bufs [][]byte, off int64, write bool) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	total := 0
	for bufs = skipBytes(bufs, 0); len(bufs) > 0; {
		iov := bufs[:min(len(bufs), maxIovecs)]
		var n int
		var serr error
		if write {
			err = rc.Write(func(fd uintptr) bool {
				n, serr = unix.Pwritev(int(fd), iov, off)
				return true
			})
		} else {
			err = rc.Read(func(fd uintptr) bool {
				n, serr = unix.Preadv(int(fd), iov, off)
				return true
			})
		}
		switch {
		case err != nil:
			return total, err
		case serr == unix.EINTR:
			continue
		case serr != nil:
			op := "read"
			if write {
				op = "write"
			}
			return total, &os.PathError{Op: op, Path: f.Name(), Err: serr}
		case n <= 0 && write:
			return total, io.ErrShortWrite
		case n <= 0:
			return total, io.EOF
		}
		total += n
		off += int64(n)
		bufs = skipBytes(bufs, n)
	}
	return total, nil
}
