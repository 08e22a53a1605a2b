package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/netlab"
	"github.com/rsftp/rsftp/internal/sshtest"
)

// readEvents parses an --events file.
func readEvents(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("events line %q: %v", sc.Text(), err)
		}
		if _, err := time.Parse(time.RFC3339Nano, m["time"].(string)); err != nil {
			t.Fatalf("events line %q: time: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func countEvents(evs []map[string]any, kind string) int {
	n := 0
	for _, e := range evs {
		if e["event"] == kind {
			n++
		}
	}
	return n
}

// waitSize waits until path holds at least n bytes.
func waitSize(path string, n int64, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if fi, err := os.Stat(path); err == nil && fi.Size() >= n {
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false
}

// TestE2EResumeOnSIGUSR2: rsftp get from rsftp serve, told by SIGUSR2 to
// drop its connection twice mid-transfer, resumes each time; the file is
// identical and both --events files tell the story.
func TestE2EResumeOnSIGUSR2(t *testing.T) {
	dir := t.TempDir()
	key := sshtest.KeyGen(t, dir, "ed25519", 0)
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	const size = 256 << 20
	e2eRandFile(t, filepath.Join(root, "big"), size)
	srvEvents := filepath.Join(dir, "server-events")
	port, kh := e2eServeArgs(t, root, key+".pub", "127.0.0.1", "--events", srvEvents)
	cliEvents := filepath.Join(dir, "client-events")
	local := filepath.Join(dir, "big")
	args := append([]string{"get"}, e2eOpts(key, kh, port)...)
	args = append(args, "--events", cliEvents, "127.0.0.1:big", local)
	cmd := exec.Command(e2eTool(t), args...)
	cmd.Env = e2eEnv(t)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, mark := range []int64{size / 8, size / 3} {
		if !waitSize(local, mark, 30*time.Second) {
			break // finished or failed; checked below
		}
		signalReconnect(cmd.Process)
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("rsftp get: %v\n%s", err, errb.String())
	}
	e2eSame(t, filepath.Join(root, "big"), local)
	cev := readEvents(t, cliEvents)
	if countEvents(cev, "connected") != 1 || countEvents(cev, "closed") != 1 {
		t.Errorf("client events: %v", cev)
	}
	lost, resumed := countEvents(cev, "link_lost"), countEvents(cev, "resumed")
	if lost == 0 || resumed != lost {
		t.Errorf("client: %d link_lost, %d resumed: %v", lost, resumed, cev)
	}
	for _, e := range cev {
		if e["event"] == "resumed" {
			for _, k := range []string{"offline_ms", "handshake_ms", "retransmitted_bytes", "hold_s", "attempt"} {
				if _, ok := e[k]; !ok {
					t.Errorf("resumed event lacks %s: %v", k, e)
				}
			}
		}
	}
	time.Sleep(100 * time.Millisecond)
	sev := readEvents(t, srvEvents)
	if countEvents(sev, "resumed") != resumed || countEvents(sev, "closed") != 1 {
		t.Errorf("server events: %v", sev)
	}
	t.Logf("%d reconnections", resumed)
}

// e2eServeArgs is e2eServe on a chosen address, with extra flags; run
// with prefix (such as "ip netns exec NS") if given.
func e2eServeArgs(t *testing.T, root, authorizedKeys, host string, extra ...string) (int, string) {
	return e2eServeIn(t, nil, root, authorizedKeys, host, extra...)
}

func e2eServeIn(t *testing.T, prefix []string, root, authorizedKeys, host string, extra ...string) (int, string) {
	t.Helper()
	dir := t.TempDir()
	port := e2eFreePort(t)
	hk := filepath.Join(dir, "hk")
	argv := append(append([]string{}, prefix...), e2eTool(t), "serve", "--listen", net.JoinHostPort(host, strconv.Itoa(port)),
		"--root", root, "--host-key", hk, "--authorized-keys", authorizedKeys)
	argv = append(argv, extra...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = e2eEnv(t)
	logb := &lockedBuffer{}
	cmd.Stderr = logb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("rsftp serve log:\n%s", logb.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(hk + ".pub"); err == nil && strings.Contains(logb.String(), "fingerprint") {
			if c, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), time.Second); err == nil {
				c.Close()
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsftp serve did not listen:\n%s", logb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	pub, err := os.ReadFile(hk + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(pub))
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(fmt.Sprintf("[%s]:%d %s %s\n", host, port, f[0], f[1])), 0o600)
	return port, kh
}

// lockedBuffer collects a subprocess's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestE2EResumeAcrossInterfaces is the real-kernel test: a server in a
// network namespace joined to us by two veth links with different
// addresses. The route over link A is preferred; in the middle of a 256
// MiB rsftp get, link A goes down. The client notices by netlink,
// reconnects at once over link B from its other address, and the
// transfer finishes with an equal SHA-256.
func TestE2EResumeAcrossInterfaces(t *testing.T) {
	lab := netlab.New(t, "rs", 0)
	ns, a0, linkB, server := lab.NS, lab.A0, lab.LinkB, lab.Server
	dir := t.TempDir()
	key := sshtest.KeyGen(t, dir, "ed25519", 0)
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	const size = 256 << 20
	e2eRandFile(t, filepath.Join(root, "big"), size)
	srvEvents := filepath.Join(dir, "server-events")
	port, kh := e2eServeIn(t, []string{"ip", "netns", "exec", ns}, root, key+".pub", server, "--events", srvEvents)
	cliEvents := filepath.Join(dir, "client-events")
	local := filepath.Join(dir, "big")
	args := append([]string{"get"}, e2eOpts(key, kh, port)...)
	args = append(args, "--events", cliEvents, server+":big", local)
	cmd := exec.Command(e2eTool(t), args...)
	cmd.Env = e2eEnv(t)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !waitSize(local, size/4, 60*time.Second) {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("transfer did not reach a quarter:\n%s", errb.String())
	}
	downAt := time.Now()
	netlab.IP(t, "link", "set", a0, "down")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("rsftp get: %v\n%s", err, errb.String())
	}
	e2eSame(t, filepath.Join(root, "big"), local)
	cev := readEvents(t, cliEvents)
	if countEvents(cev, "resumed") < 1 {
		t.Fatalf("client never resumed: %v", cev)
	}
	time.Sleep(100 * time.Millisecond)
	sev := readEvents(t, srvEvents)
	var from []string
	for _, e := range sev {
		if e["event"] == "resumed" {
			from = append(from, fmt.Sprint(e["remote"]))
		}
	}
	if len(from) == 0 || !strings.HasPrefix(from[len(from)-1], linkB+".1:") {
		t.Fatalf("server resumed from %v, want the address on link B (%s.1); events %v", from, linkB, sev)
	}
	for _, e := range cev {
		if e["event"] == "link_lost" || e["event"] == "resumed" {
			t.Logf("client %v: %v", e["event"], e)
		}
	}
	t.Logf("link A down at %v; transfer done %v later", downAt.Format("15:04:05.000"), time.Since(downAt).Round(time.Millisecond))
}
