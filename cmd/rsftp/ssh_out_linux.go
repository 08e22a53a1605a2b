package main

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openOutNoWait opens f (the standard output) once more, as a file
// description of its own that is non-blocking, for termOut.tryWrite: the
// goroutine that reads the connection writes the remote program's output
// with it while the output takes it at once, and hands over to the
// goroutine that waits only when it does not (issue 18's bulk row: a
// wake-up of that goroutine per packet cost more than the bytes). The
// description is our own, so O_NONBLOCK does not reach the programs that
// share f's, as ssh's set_nonblock on its standard output does. Only a
// terminal, a pipe or /dev/null is opened so, through /proc/self/fd: a
// regular file would get an offset of its own, and other devices may act
// on an open. It returns -1 for anything else or when the open fails.
func openOutNoWait(f *os.File) int {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1
	}
	nfd := -1
	rc.Control(func(fd uintptr) {
		var st unix.Stat_t
		if unix.Fstat(int(fd), &st) != nil || !outNoWaitKind(int(fd), &st) {
			return
		}
		path := fmt.Sprintf("/proc/self/fd/%d", fd)
		n, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != nil {
			return
		}
		// The same file, not another one of that name.
		var st2 unix.Stat_t
		if unix.Fstat(n, &st2) != nil || st2.Dev != st.Dev || st2.Ino != st.Ino || st2.Rdev != st.Rdev {
			unix.Close(n)
			return
		}
		nfd = n
	})
	return nfd
}

// outNoWaitKind says whether fd, whose status is st, is a terminal, a
// pipe or /dev/null.
func outNoWaitKind(fd int, st *unix.Stat_t) bool {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return true
	case unix.S_IFCHR:
		if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
			return true
		}
		var null unix.Stat_t
		return unix.Stat("/dev/null", &null) == nil && null.Mode&unix.S_IFMT == unix.S_IFCHR && null.Rdev == st.Rdev
	}
	return false
}

// writeNoWait writes what fd takes of p now: 0 when it takes nothing
// (EAGAIN) or fails (the waiting write then meets the error). It does so
// without telling the runtime it entered a system call, as the transport
// writes and reads its socket (transport/rawio_linux.go): the write never
// waits, and entering one woke the runtime's monitor thread whenever the
// program had gone idle between two packets (issue 18's bulk row).
func writeNoWait(fd int, p []byte) int {
	if len(p) == 0 {
		return 0
	}
	for {
		n, _, errno := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch errno {
		case 0:
			return int(n)
		case unix.EINTR:
			continue
		}
		return 0
	}
}

func closeOutNoWait(fd int) { unix.Close(fd) }
