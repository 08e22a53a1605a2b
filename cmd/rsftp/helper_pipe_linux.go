package main

import "golang.org/x/sys/unix"

// growPipes makes the pipes sshd gives the helper as stdin and stdout
// hold up to 1 MiB (F_SETPIPE_SZ; 64 KiB by default, two 32 KiB packets):
// fewer wake-ups of sshd and the helper per megabyte. A pipe that cannot
// grow (pipe-max-size, a socket) stays as it is.
func growPipes() {
	for _, fd := range []int{0, 1} {
		unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, 1<<20)
	}
}

// pipeSize is the capacity of the pipe fd, or 0 if it is not a pipe.
func pipeSize(fd int) int {
	n, err := unix.FcntlInt(uintptr(fd), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		return 0
	}
	return n
}
