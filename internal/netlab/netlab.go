// Package netlab builds the real-kernel lab of the interface-switch
// tests (cmd/rsftp's, tlsresume's): a network namespace joined to this
// one by two veth links with different addresses, and a server address
// inside it reachable over both, the route over link A preferred. Taking
// link A down (ip link set A0 down) moves the path to link B, from our
// other address. Root only: New skips, or fails under CI=true, which
// runs as root.
package netlab

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Lab is one lab's names and addresses.
type Lab struct {
	NS     string // the namespace
	A0, B0 string // our ends of links A and B
	// LinkA and LinkB are the links' /24 prefixes ("198.18.x"); our
	// address on each is .1, the namespace's .2.
	LinkA, LinkB string
	Server       string // the address inside the namespace
}

// IP runs ip(8) and fails the test on error.
func IP(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// New builds a lab and removes it when the test ends. tag (two letters)
// names its interfaces and namespace; slot (0 to 3) picks a quarter of
// 198.18.0.0/15 of its own, so that tests of different packages, which
// go test runs at once, never route the same address. Within a slot the
// addresses also depend on the process, so that two runs of one package
// at once (several trees tested on one machine) do not meet either
// ("RTNETLINK answers: File exists").
func New(t testing.TB, tag string, slot int) *Lab {
	t.Helper()
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
	if slot < 0 || slot > 3 || len(tag) != 2 {
		t.Fatalf("netlab.New: tag %q, slot %d: want two letters and a slot from 0 to 3", tag, slot)
	}
	pid := os.Getpid()
	l := &Lab{
		NS: fmt.Sprintf("%sns%d", tag, pid),
		A0: tag + "a0" + strconv.Itoa(pid%10000), B0: tag + "b0" + strconv.Itoa(pid%10000),
	}
	a1, b1 := tag+"a1", tag+"b1"
	IP(t, "netns", "add", l.NS)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", l.A0).Run()
		exec.Command("ip", "link", "del", l.B0).Run()
		exec.Command("ip", "netns", "del", l.NS).Run()
	})
	IP(t, "link", "add", l.A0, "type", "veth", "peer", "name", a1, "netns", l.NS)
	IP(t, "link", "add", l.B0, "type", "veth", "peer", "name", b1, "netns", l.NS)
	// Three /24s: a slot is 128 of them, 40 choices by process.
	second, third := 18+slot/2, 128*(slot%2)+3*(pid%40)
	l.LinkA, l.LinkB = fmt.Sprintf("198.%d.%d", second, third), fmt.Sprintf("198.%d.%d", second, third+1)
	l.Server = fmt.Sprintf("198.%d.%d.1", second, third+2)
	IP(t, "addr", "add", l.LinkA+".1/24", "dev", l.A0)
	IP(t, "addr", "add", l.LinkB+".1/24", "dev", l.B0)
	IP(t, "link", "set", l.A0, "up")
	IP(t, "link", "set", l.B0, "up")
	IP(t, "-n", l.NS, "addr", "add", l.LinkA+".2/24", "dev", a1)
	IP(t, "-n", l.NS, "addr", "add", l.LinkB+".2/24", "dev", b1)
	IP(t, "-n", l.NS, "addr", "add", l.Server+"/32", "dev", "lo")
	IP(t, "-n", l.NS, "link", "set", "lo", "up")
	IP(t, "-n", l.NS, "link", "set", a1, "up")
	IP(t, "-n", l.NS, "link", "set", b1, "up")
	IP(t, "route", "add", l.Server+"/32", "via", l.LinkA+".2", "dev", l.A0, "metric", "10")
	IP(t, "route", "add", l.Server+"/32", "via", l.LinkB+".2", "dev", l.B0, "metric", "20")
	return l
}
