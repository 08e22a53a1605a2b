package netwatch

import (
	"errors"
	"net"
	"sync"
	"testing"
)

// The tests of what works the same on every system; netwatch_linux_test.go
// changes addresses to see the watcher react.

func TestSourceForLoopback(t *testing.T) {
	src, err := SourceFor(net.IPv4(127, 0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if !src.IsLoopback() {
		t.Fatalf("SourceFor(127.0.0.1) = %v, want a loopback address", src)
	}
	for _, dst := range []net.IP{nil, net.IPv4zero, net.IPv6unspecified} {
		if ip, err := SourceFor(dst); err == nil {
			t.Errorf("SourceFor(%v) = %v, want an error", dst, ip)
		}
	}
}

// strAddr is a net.Addr of an unknown type, to exercise the fallback parser.
type strAddr string

func (a strAddr) Network() string { return "custom" }
func (a strAddr) String() string  { return string(a) }

func TestPathChanged(t *testing.T) {
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
	// The kernel reaches 127.0.0.1 from 127.0.0.1 itself.
	if src, err := SourceFor(remote.IP); err != nil || !src.Equal(remote.IP) {
		t.Fatalf("SourceFor(127.0.0.1) = %v, %v; want 127.0.0.1", src, err)
	}
	tests := []struct {
		name          string
		local, remote net.Addr
		want          bool
	}{
		{"same", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, remote, false},
		{"mapped", &net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 40000}, remote, false},
		{"other source", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 40000}, remote, true},
		{"udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}, true},
		{"string form", strAddr("127.0.0.1:40000"), strAddr("127.0.0.1:22"), false},
		{"string other", strAddr("127.0.0.2:40000"), strAddr("127.0.0.1"), true},
		{"unix", &net.UnixAddr{Name: "/tmp/a", Net: "unix"}, &net.UnixAddr{Name: "/tmp/b", Net: "unix"}, false},
		{"nil", nil, remote, false},
		{"nil tcp", (*net.TCPAddr)(nil), remote, false},
	}
	for _, tt := range tests {
		if got := PathChanged(tt.local, tt.remote); got != tt.want {
			t.Errorf("%s: PathChanged(%v, %v) = %v, want %v", tt.name, tt.local, tt.remote, got, tt.want)
		}
	}
}

func TestCloseTwice(t *testing.T) {
	w, err := New()
	if errors.Is(err, ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := w.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Errorf("Close again: %v", err)
	}
	var nilW *Watcher
	if err := nilW.Close(); err != nil || nilW.Changes() != nil {
		t.Errorf("nil Watcher: Close = %v, Changes = %v", err, nilW.Changes())
	}
}
