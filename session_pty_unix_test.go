//go:build unix

package rsftp

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/internal/ttymodes"
)

func testPty(t *testing.T, modes ...channel.TerminalMode) *ptyFiles {
	t.Helper()
	p, err := openPty(&PtyRequest{Term: "xterm", Window: Window{Cols: 80, Rows: 24}, Modes: modes})
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(p.close)
	return p
}

// TestPtyMasterReadsInOrder: what the program writes comes out of the
// master once and in order, in reads that take all that is there.
func TestPtyMasterReadsInOrder(t *testing.T) {
	p := testPty(t)
	// No newlines: the terminal's output processing would add a
	// carriage return before each.
	want := make([]byte, 200<<10)
	for i := range want {
		want[i] = 'a' + byte(i%26)
	}
	go func() {
		p.tty.Write(want)
	}()
	got := make([]byte, 0, len(want))
	buf := make([]byte, 32<<10)
	p.master.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(got) < len(want) {
		n, err := p.master.Read(buf)
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the master's output differs from what was written")
	}
}

// TestPtyMasterDeadline: a Read that finds nothing returns at its
// deadline, and a deadline set while it waits applies to it.
func TestPtyMasterDeadline(t *testing.T) {
	p := testPty(t)
	buf := make([]byte, 1024)
	p.master.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	if _, err := p.master.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read with a past deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("Read returned after %v, before its deadline", d)
	}

	p.master.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := p.master.Read(buf)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Read with no deadline returned: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	p.master.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read: %v, want os.ErrDeadlineExceeded", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a deadline set during Read did not end it")
	}

	// Output that comes before the deadline is read.
	p.master.SetReadDeadline(time.Now().Add(5 * time.Second))
	go func() {
		time.Sleep(20 * time.Millisecond)
		p.tty.Write([]byte("x"))
	}()
	if n, err := p.master.Read(buf); err != nil || string(buf[:n]) != "x" {
		t.Fatalf("Read = %q, %v; want \"x\"", buf[:n], err)
	}
}

// TestPtyMasterCloseEndsRead: Close ends a Read waiting for output, and
// later Reads and Writes fail.
func TestPtyMasterCloseEndsRead(t *testing.T) {
	p := testPty(t)
	done := make(chan error, 1)
	go func() {
		_, err := p.master.Read(make([]byte, 1024))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	p.master.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Read after Close: %v, want os.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a waiting Read")
	}
	if _, err := p.master.Read(make([]byte, 1)); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read on a closed master: %v", err)
	}
	if _, err := p.master.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write on a closed master: %v", err)
	}
	if err := p.master.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestPtyMasterCloseEndsWrite: a Write waiting for room in a terminal
// whose program does not read ends at Close. The terminal is in raw
// mode: in canonical mode a line that overflows the line discipline's
// buffer is cut and the rest dropped (Linux's n_tty does so rather than
// block the writer), so whether the Write ever waits would depend on how
// fast the kernel's worker drains it (it returned in about 1 run of 6).
func TestPtyMasterCloseEndsWrite(t *testing.T) {
	p := testPty(t, channel.TerminalMode{Opcode: ttymodes.ICANON, Value: 0}, channel.TerminalMode{Opcode: ttymodes.ECHO, Value: 0})
	done := make(chan error, 1)
	go func() {
		_, err := p.master.Write(bytes.Repeat([]byte("y"), 1<<20))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a 1 MiB Write to a terminal nobody reads returned: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	p.master.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Write after Close: %v, want os.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a waiting Write")
	}
}

// TestPtyMasterWrite: what is written to the master is the program's
// input.
func TestPtyMasterWrite(t *testing.T) {
	p := testPty(t)
	if _, err := p.master.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	p.tty.SetReadDeadline(time.Now().Add(5 * time.Second))
	line := make([]byte, 64)
	n, err := p.tty.Read(line)
	if err != nil || string(line[:n]) != "hello\n" {
		t.Fatalf("the program read %q, %v", line[:n], err)
	}
}

// TestPtyMasterHangUp: once nobody holds the terminal, Read ends with an
// error after what was written before.
func TestPtyMasterHangUp(t *testing.T) {
	p := testPty(t)
	p.tty.Write([]byte("last"))
	p.tty.Close()
	p.tty = nil
	p.master.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	buf := make([]byte, 1024)
	for {
		n, err := p.master.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("no error after the terminal was closed")
			}
			if n != 0 {
				t.Errorf("Read returned %d bytes with %v", n, err)
			}
			break
		}
	}
	if string(got) != "last" {
		t.Errorf("read %q before the hang-up, want \"last\"", got)
	}
}
