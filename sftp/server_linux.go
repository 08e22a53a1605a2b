//go:build linux

package sftp

import (
	"io/fs"
	"os"
	"syscall"
	"time"
)

// statvfs returns statvfs@openssh.com's eleven fields for an open file:
// bsize, frsize, blocks, bfree, bavail, files, ffree, favail, fsid,
// flag, namemax.
func statvfs(f *os.File) ([11]uint64, error) {
	var st syscall.Statfs_t
	var v [11]uint64
	rc, err := f.SyscallConn()
	if err != nil {
		return v, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Fstatfs(int(fd), &st) }); err != nil {
		return v, err
	}
	if serr != nil {
		return v, os.NewSyscallError("fstatfs", serr)
	}
	frsize := uint64(st.Frsize)
	if frsize == 0 {
		frsize = uint64(st.Bsize)
	}
	v = [11]uint64{
		uint64(st.Bsize), frsize,
		uint64(st.Blocks), uint64(st.Bfree), uint64(st.Bavail),
		uint64(st.Files), uint64(st.Ffree), uint64(st.Ffree),
		uint64(uint32(st.Fsid.X__val[0]))<<32 | uint64(uint32(st.Fsid.X__val[1])),
		uint64(st.Flags) & 3, // ST_RDONLY and ST_NOSUID share the protocol's values
		uint64(st.Namelen),
	}
	return v, nil
}

// futimes sets an open file's access and modification times.
func futimes(f *os.File, atime, mtime time.Time) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	tv := []syscall.Timeval{syscall.NsecToTimeval(atime.UnixNano()), syscall.NsecToTimeval(mtime.UnixNano())}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Futimes(int(fd), tv) }); err != nil {
		return err
	}
	if serr != nil {
		return os.NewSyscallError("futimes", serr)
	}
	return nil
}

// nlinkOf is the link count for a longname.
func nlinkOf(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}
