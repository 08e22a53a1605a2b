package tlsresume

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rsftp/rsftp/resume"
)

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

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
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root; this test needs root for network namespaces")
		}
		t.Skip("needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ip(8) missing under CI (install iproute2)")
		}
		t.Skip("ip(8) not installed")
	}
	pid := os.Getpid()
	ns := fmt.Sprintf("rstls%d", pid)
	a0, a1, b0, b1 := "rta0"+strconv.Itoa(pid%10000), "rta1", "rtb0"+strconv.Itoa(pid%10000), "rtb1"
	ipCmd(t, "netns", "add", ns)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", a0).Run()
		exec.Command("ip", "link", "del", b0).Run()
		exec.Command("ip", "netns", "del", ns).Run()
	})
	ipCmd(t, "link", "add", a0, "type", "veth", "peer", "name", a1, "netns", ns)
	ipCmd(t, "link", "add", b0, "type", "veth", "peer", "name", b1, "netns", ns)
	// Addresses of this run's own, from 198.18.0.0/15 by process, apart
	// from cmd/rsftp's (which take 198.18.100-249).
	third := 100 + 3*(pid%50)
	linkA, linkB := fmt.Sprintf("198.19.%d", third), fmt.Sprintf("198.19.%d", third+1)
	server := fmt.Sprintf("198.19.%d.1", third+2)
	ipCmd(t, "addr", "add", linkA+".1/24", "dev", a0)
	ipCmd(t, "addr", "add", linkB+".1/24", "dev", b0)
	ipCmd(t, "link", "set", a0, "up")
	ipCmd(t, "link", "set", b0, "up")
	ipCmd(t, "-n", ns, "addr", "add", linkA+".2/24", "dev", a1)
	ipCmd(t, "-n", ns, "addr", "add", linkB+".2/24", "dev", b1)
	ipCmd(t, "-n", ns, "addr", "add", server+"/32", "dev", "lo")
	ipCmd(t, "-n", ns, "link", "set", "lo", "up")
	ipCmd(t, "-n", ns, "link", "set", a1, "up")
	ipCmd(t, "-n", ns, "link", "set", b1, "up")
	ipCmd(t, "route", "add", server+"/32", "via", linkA+".2", "dev", a0, "metric", "10")
	ipCmd(t, "route", "add", server+"/32", "via", linkB+".2", "dev", b0, "metric", "20")

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
				ipCmd(t, "link", "set", a0, "down")
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
