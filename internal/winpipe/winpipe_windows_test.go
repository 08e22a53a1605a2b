package winpipe

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func TestPair(t *testing.T) {
	ours, theirs, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	defer theirs.Close()
	if !strings.HasPrefix(ours.RemoteAddr().String(), `\\.\pipe\rsftp-`) {
		t.Errorf("address %q", ours.RemoteAddr())
	}
	if _, err := theirs.Write([]byte("to us")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(ours, buf); err != nil || string(buf) != "to us" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if _, err := ours.Write([]byte("to them")); err != nil {
		t.Fatal(err)
	}
	buf = make([]byte, 7)
	if _, err := io.ReadFull(theirs, buf); err != nil || string(buf) != "to them" {
		t.Fatalf("read %q, %v", buf, err)
	}
	// A deadline ends a read with nothing to read.
	ours.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := ours.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	ours.SetReadDeadline(time.Time{})
	// Close ends a read in progress.
	done := make(chan error, 1)
	go func() {
		_, err := ours.Read(buf)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	ours.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("read after Close succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the read")
	}
}

func TestPairEOF(t *testing.T) {
	ours, theirs, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	theirs.Close()
	if _, err := ours.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after the other end closed: %v, want EOF", err)
	}
}

func TestDial(t *testing.T) {
	name := `\\.\pipe\rsftp-test-` + time.Now().Format("150405.000000000")
	h, err := listen(name)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newConn(h, name)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("server read %q, %v", buf, err)
	}
	// The one instance is taken: a second Dial waits until ctx ends.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if c2, err := Dial(ctx2, name); err == nil {
		c2.Close()
		t.Error("second Dial of a one-instance pipe succeeded")
	}
	if _, err := Dial(ctx, `\\.\pipe\rsftp-no-such-pipe`); err == nil {
		t.Error("Dial of a missing pipe succeeded")
	}
}
