package netwatch

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nlmsg builds one netlink message of the given type with a payload.
func nlmsg(typ uint16, payload int) []byte {
	b := make([]byte, syscall.NLMSG_HDRLEN+payload)
	binary.NativeEndian.PutUint32(b[0:4], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:6], typ)
	return b
}

func TestNetlinkChange(t *testing.T) {
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	tests := []struct {
		name string
		b    []byte
		want change
	}{
		{"newaddr", nlmsg(syscall.RTM_NEWADDR, 8), changeAddrAdded},
		{"deladdr", nlmsg(syscall.RTM_DELADDR, 8), changeAddrRemoved},
		{"newroute", nlmsg(syscall.RTM_NEWROUTE, 12), changeRoute},
		{"delroute", nlmsg(syscall.RTM_DELROUTE, 12), changeRoute},
		{"newlink", nlmsg(syscall.RTM_NEWLINK, 16), changeLink},
		{"dellink", nlmsg(syscall.RTM_DELLINK, 16), changeLink},
		{"neigh", nlmsg(syscall.RTM_NEWNEIGH, 12), 0},
		{"done", nlmsg(syscall.NLMSG_DONE, 4), 0},
		{"batch", cat(nlmsg(syscall.RTM_NEWNEIGH, 12), nlmsg(syscall.RTM_DELROUTE, 12)), changeRoute},
		{"batch of two", cat(nlmsg(syscall.RTM_DELADDR, 8), nlmsg(syscall.RTM_NEWADDR, 8)), changeAddrAdded | changeAddrRemoved},
		{"empty", nil, 0},
		{"short", nlmsg(syscall.RTM_NEWADDR, 0)[:10], 0},
		{"bad length", func() []byte {
			b := nlmsg(syscall.RTM_NEWADDR, 8)
			binary.NativeEndian.PutUint32(b[0:4], 1<<31)
			return b
		}(), 0},
		{"tiny length", func() []byte {
			b := nlmsg(syscall.RTM_NEWADDR, 8)
			binary.NativeEndian.PutUint32(b[0:4], 3)
			return b
		}(), 0},
	}
	for _, tt := range tests {
		if got := netlinkChange(tt.b); got != tt.want {
			t.Errorf("%s: netlinkChange = %v, want %v", tt.name, got, tt.want)
		}
	}
	// Random and mutated input never panics.
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		b := cat(nlmsg(uint16(r.IntN(40)), r.IntN(32)), nlmsg(uint16(r.IntN(40)), r.IntN(32)))
		b = b[:r.IntN(len(b)+1)]
		for range r.IntN(4) {
			if len(b) > 0 {
				b[r.IntN(len(b))] = byte(r.Uint32())
			}
		}
		netlinkChange(b)
	}
}

func FuzzNetlinkChange(f *testing.F) {
	f.Add(nlmsg(syscall.RTM_NEWADDR, 8))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) { netlinkChange(b) })
}

// testAddr is a benchmarking-range (RFC 2544) address that no real network
// uses.
const testAddr = "198.18.77.1/32"

// ipCmd runs ip(8) and fails the test on error.
func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// testDevice returns an interface on which the test may add testAddr,
// removing it (and the address) when the test ends. It creates a dummy link
// if the kernel supports them and otherwise falls back to loopback. The test
// is skipped unless running as root with ip(8) available.
func testDevice(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to change addresses")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip(8) not found")
	}
	dev := fmt.Sprintf("rsftpnw%d", os.Getpid()%100000)
	if err := exec.Command("ip", "link", "add", dev, "type", "dummy").Run(); err != nil {
		t.Logf("no dummy link (%v); using lo", err)
		dev = "lo"
	} else {
		t.Cleanup(func() { exec.Command("ip", "link", "del", dev).Run() })
	}
	// Remove a leftover from an interrupted run, then clean up after us.
	exec.Command("ip", "addr", "del", testAddr, "dev", dev).Run()
	t.Cleanup(func() { exec.Command("ip", "addr", "del", testAddr, "dev", dev).Run() })
	return dev
}

func TestWatcherSeesAddressChange(t *testing.T) {
	dev := testDevice(t)
	w, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	ipCmd(t, "addr", "add", testAddr, "dev", dev)
	select {
	case <-w.Changes():
	case <-time.After(5 * time.Second):
		t.Fatal("no change reported within 5s of adding an address")
	}
	// The new address is local, so the kernel reaches it from itself.
	ip := net.ParseIP(strings.TrimSuffix(testAddr, "/32"))
	if src, err := SourceFor(ip); err != nil || !src.Equal(ip) {
		t.Errorf("SourceFor(%v) = %v, %v; want itself", ip, src, err)
	}
}

func TestCloseStopsChanges(t *testing.T) {
	dev := testDevice(t)
	w, err := New()
	if err != nil {
		t.Fatal(err)
	}
	// Queue a notification before Close: Close must drop it.
	ipCmd(t, "addr", "add", testAddr, "dev", dev)
	time.Sleep(50 * time.Millisecond)

	start := time.Now()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	ipCmd(t, "addr", "del", testAddr, "dev", dev)
	select {
	case <-w.Changes():
		t.Fatal("change delivered after Close")
	case <-time.After(300 * time.Millisecond):
	}
}
