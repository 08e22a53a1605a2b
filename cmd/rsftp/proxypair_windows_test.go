package main

import (
	"bufio"
	"io"
	"strings"
	"testing"
	"time"
)

// TestProxyCommandWindows: a ProxyCommand run by cmd.exe has the named
// pipe as its standard output and input: what it prints arrives, what is
// written reaches it, and its end is seen.
func TestProxyCommandWindows(t *testing.T) {
	nc, err := dialCommand(`echo hello from cmd`)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	b, err := io.ReadAll(nc)
	if err != nil || strings.TrimSpace(string(b)) != "hello from cmd" {
		t.Fatalf("read %q, %v", b, err)
	}
	select {
	case <-nc.(*commandConn).done:
	case <-time.After(5 * time.Second):
		t.Fatal("the command's end not seen")
	}

	// more prints the lines of its input: the input is the connection
	// too.
	nc, err = dialCommand(`more`)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write([]byte("one x\r\nthree x\r\n")); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(nc)
	for _, want := range []string{"one x", "three x"} {
		line, err := br.ReadString('\n')
		if err != nil || strings.TrimSpace(line) != want {
			t.Fatalf("read %q, %v; want %q", line, err, want)
		}
	}
	// Closing ends the command (its input ends; killed if it lingers).
	cc := nc.(*commandConn)
	nc.Close()
	select {
	case <-cc.done:
	case <-time.After(2 * commandLinger):
		t.Fatal("the command still runs after its connection closed")
	}
}
