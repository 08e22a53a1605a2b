package tlsresume

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rsftp/rsftp/internal/netlab"
	"github.com/rsftp/rsftp/resume"
)

// listenInNetns opens a TCP listener inside the named network namespace
// (a socket stays in the namespace it was made in): the calling thread
// enters it, listens, and comes back.
func listenInNetns(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := os.Open("/var/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("entering %s: %v", ns, err)
	}
	ln, lerr := net.Listen("tcp", addr)
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays locked and ends with this goroutine, never
		// running anything else in the wrong namespace.
		t.Fatalf("leaving %s: %v", ns, err)
	}
	runtime.UnlockOSThread()
	if lerr != nil {
		t.Fatal(lerr)
	}
	return ln
}

// TestNetnsInterfaceSwitch is the real-kernel test, built as
// cmd/rsftp's TestE2EResumeAcrossInterfaces builds its lab: a server in
// a network namespace joined to us by two veth links with different
// addresses, the route over link A preferred. In the middle of a
// transfer each way, link A goes down; the client notices (by netlink,
// or else by the silence), reconnects over link B from its other
// address, and both streams arrive intact, exactly once.
func TestNetnsInterfaceSwitch(t *testing.T) {
	lab := netlab.New(t, "rt", 2)
	ns, a0, linkA, linkB, server := lab.NS, lab.A0, lab.LinkA, lab.LinkB, lab.Server

	var mu sync.Mutex
	var resumedFrom []string
	inner := listenInNetns(t, ns, net.JoinHostPort(server, "0"))
	ln := NewListener(inner, serverTLS(t, "lab"), &Config{Events: func(e resume.Event) {
		if e.Kind == resume.EventResumed {
			mu.Lock()
			resumedFrom = append(resumedFrom, e.Remote)
			mu.Unlock()
		}
	}})
	defer ln.Close()
	const size = 48 << 20
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		werr := make(chan error, 1)
		go func() { werr <- writeStream(c, 5, size) }()
		srvErr <- errors.Join(readStream(c, 4, size, false, nil), <-werr)
	}()
	_, port, _ := net.SplitHostPort(inner.Addr().String())
	conf := clientTLS(t, "lab")
	conf.ServerName = "localhost"
	cfg := &Config{AliveInterval: 200 * time.Millisecond, AliveCountMax: 3, MinBackoff: 20 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Dial(ctx, "tcp", net.JoinHostPort(server, port), conf, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.LocalAddr().String(), linkA+".1:") {
		t.Fatalf("connected from %v, not over link A", c.LocalAddr())
	}
	werr := make(chan error, 1)
	go func() { werr <- writeStream(c, 4, size) }()
	var once sync.Once
	var downAt time.Time
	switchLink := func(n int) {
		if n >= size/4 {
			once.Do(func() {
				downAt = time.Now()
				netlab.IP(t, "link", "set", a0, "down")
			})
		}
	}
	if err := readStream(c, 5, size, true, switchLink); err != nil {
		t.Fatalf("client read: %v (status %+v)", err, c.Status())
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if err := <-srvErr; err != nil {
		t.Fatalf("server: %v", err)
	}
	c.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(resumedFrom) == 0 || !strings.HasPrefix(resumedFrom[len(resumedFrom)-1], linkB+".1:") {
		t.Fatalf("the server resumed from %v, want the address on link B (%s.1)", resumedFrom, linkB)
	}
	t.Logf("link A down at %v; resumed from %v; done %v later; %d attaches",
		downAt.Format("15:04:05.000"), resumedFrom, time.Since(downAt).Round(time.Millisecond), c.Status().Stats.Attaches)
}
