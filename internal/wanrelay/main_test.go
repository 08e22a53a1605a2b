package main

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	for s, want := range map[string]float64{
		"100MB": 100e6, "12.5MiB": 12.5 * (1 << 20), "800Mbit": 100e6, "0": 0, "1000": 1000, "1GB": 1e9,
	} {
		got, err := parseRate(s)
		if err != nil || got != want {
			t.Errorf("parseRate(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "fast", "-1MB"} {
		if _, err := parseRate(s); err == nil {
			t.Errorf("parseRate(%q) accepted", s)
		}
	}
}

// The link's schedule is arithmetic on the times it is given, not a
// measurement.
func TestLinkSchedule(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := link{rate: 1e6, delay: 50 * time.Millisecond} // 1 MB/s: 1 us a byte
	if at := l.admit(t0, 1000); !at.Equal(t0.Add(51 * time.Millisecond)) {
		t.Errorf("first chunk arrives at +%v, want +51ms", at.Sub(t0))
	}
	// Handed over while the first is still being sent: it waits for it.
	if at := l.admit(t0.Add(500*time.Microsecond), 2000); !at.Equal(t0.Add(53 * time.Millisecond)) {
		t.Errorf("second chunk arrives at +%v, want +53ms", at.Sub(t0))
	}
	// After an idle spell the bottleneck starts afresh.
	if at := l.admit(t0.Add(time.Second), 1); !at.Equal(t0.Add(time.Second + 50*time.Millisecond + time.Microsecond)) {
		t.Errorf("third chunk arrives at +%v", at.Sub(t0))
	}
	u := link{delay: 10 * time.Millisecond} // unlimited
	if at := u.admit(t0, 1<<30); !at.Equal(t0.Add(10 * time.Millisecond)) {
		t.Errorf("unlimited link: +%v", at.Sub(t0))
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// A relayed connection carries every byte both ways, in order, and
// passes each side's half-close on.
// echoRelay starts an echo server behind a relay with cfg (its target
// set here) and returns the relay's address.
func echoRelay(t *testing.T, cfg *relayConfig) string {
	t.Helper()
	echo := listen(t)
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	cfg.target = echo.Addr().String()
	rl := listen(t)
	go func() {
		for {
			c, err := rl.Accept()
			if err != nil {
				return
			}
			go cfg.relay(c.(*net.TCPConn))
		}
	}()
	return rl.Addr().String()
}

// TestRelayCutAfter: with cutAfter, a connection is reset once it
// carried that many bytes (both ways); the next one is cut afresh.
func TestRelayCutAfter(t *testing.T) {
	addr := echoRelay(t, &relayConfig{up: link{delay: time.Millisecond}, down: link{delay: time.Millisecond},
		queue: 256 << 10, noHandshake: true, cutAfter: 1 << 20})
	for i := range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c.Write(make([]byte, 4<<20))
			c.(*net.TCPConn).CloseWrite()
		}()
		got, err := io.Copy(io.Discard, c)
		c.Close()
		if err == nil || got >= 1<<20 {
			t.Fatalf("connection %d: echoed %d bytes and ended with %v; want a reset before 1 MiB came back", i, got, err)
		}
	}
}

func TestRelayForwards(t *testing.T) {
	echo := listen(t)
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	cfg := &relayConfig{target: echo.Addr().String(), up: link{rate: 50e6, delay: time.Millisecond},
		down: link{rate: 50e6, delay: 2 * time.Millisecond}, queue: 256 << 10}
	rl := listen(t)
	go func() {
		for {
			c, err := rl.Accept()
			if err != nil {
				return
			}
			go cfg.relay(c.(*net.TCPConn))
		}
	}()
	c, err := net.Dial("tcp", rl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := make([]byte, 3<<20)
	rand.Read(data)
	go func() {
		c.Write(data)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echoed %d bytes, not the %d sent", len(got), len(data))
	}
}

func TestPlainCopy(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 1<<20+7)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(dir, "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if err := serveOne(c.(*net.TCPConn), dir); err != nil {
					t.Error(err)
				}
			}()
		}
	}()
	local := filepath.Join(t.TempDir(), "g")
	if err := runGet([]string{"-addr", ln.Addr().String(), "f", local}); err != nil {
		t.Fatal(err)
	}
	if err := runPut([]string{"-addr", ln.Addr().String(), local, "h"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{local, filepath.Join(dir, "h")} {
		if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: %d bytes, %v", p, len(got), err)
		}
	}
}
