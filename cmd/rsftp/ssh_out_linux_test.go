package main

import (
	"bytes"
	"io"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// termOut.tryWrite on a blocking pipe: it takes what fits and returns,
// never waits, leaves the pipe's own description blocking, and its bytes
// come out in order before those of a blocking Write after it.
func TestTermOutTryWrite(t *testing.T) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r, w := os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
	defer r.Close()
	defer w.Close()
	out := newTermOut(w)
	defer out.closeNoWait()
	if !out.hasNoWait {
		t.Fatal("a pipe was not opened again non-blocking")
	}
	src := make([]byte, 1<<20)
	for i := range src {
		src[i] = byte(i * 7)
	}
	done := make(chan int, 1)
	go func() {
		n := 0
		for k := out.tryWrite(src); k > 0; k = out.tryWrite(src[n:]) {
			n += k
		}
		done <- n
	}()
	var n int
	select {
	case n = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("tryWrite waited for a full pipe")
	}
	if n == 0 || n >= len(src) {
		t.Fatalf("tryWrite took %d bytes of %d into a pipe nobody reads", n, len(src))
	}
	if fl, err := unix.FcntlInt(w.Fd(), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK != 0 {
		t.Fatalf("the pipe's own description: flags %#x, %v; want it blocking", fl, err)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(r)
		got <- b
	}()
	if _, err := out.Write(src[n:]); err != nil {
		t.Fatal(err)
	}
	out.closeNoWait()
	w.Close()
	if b := <-got; !bytes.Equal(b, src) {
		t.Fatalf("read %d bytes, not the %d written in order", len(b), len(src))
	}
}

// A regular file is not opened again (it would get an offset of its
// own): tryWrite takes nothing and the output goes the waiting way.
func TestTermOutTryWriteNotForFiles(t *testing.T) {
	f, err := os.Create(t.TempDir() + "/out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := newTermOut(f)
	if out.hasNoWait || out.tryWrite([]byte("x")) != 0 {
		t.Fatal("a regular file was opened again for tryWrite")
	}
}
