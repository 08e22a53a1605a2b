package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/sshtest"
)

// TestE2EHelperAcrossInterfaces is TestE2EResumeAcrossInterfaces through
// Debian's sshd with the helper: sshd runs in a network namespace joined
// to us by two veth links with different addresses, the route over link
// A preferred. In the middle of a 256 MiB rsftp get, link A goes down;
// the client notices by netlink, logs in to sshd again over link B from
// its other address, attaches to the helper, and the transfer finishes
// whole.
func TestE2EHelperAcrossInterfaces(t *testing.T) {
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
	sshdBin := sshtest.Binary(t, "sshd")
	sftpServer := sshtest.Binary(t, "sftp-server")
	pid := os.Getpid()
	ns := fmt.Sprintf("rshelp%d", pid)
	a0, a1, b0, b1 := "rha0"+strconv.Itoa(pid%10000), "rha1", "rhb0"+strconv.Itoa(pid%10000), "rhb1"
	ip(t, "netns", "add", ns)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", a0).Run()
		exec.Command("ip", "link", "del", b0).Run()
		exec.Command("ip", "netns", "del", ns).Run()
	})
	ip(t, "link", "add", a0, "type", "veth", "peer", "name", a1, "netns", ns)
	ip(t, "link", "add", b0, "type", "veth", "peer", "name", b1, "netns", ns)
	// Addresses of this run's own in 198.19.0.0/16 (the resume test
	// takes 198.18.x), by process.
	third := 100 + 3*(pid%50)
	linkA, linkB := fmt.Sprintf("198.19.%d", third), fmt.Sprintf("198.19.%d", third+1)
	server := fmt.Sprintf("198.19.%d.1", third+2)
	ip(t, "addr", "add", linkA+".1/24", "dev", a0)
	ip(t, "addr", "add", linkB+".1/24", "dev", b0)
	ip(t, "link", "set", a0, "up")
	ip(t, "link", "set", b0, "up")
	ip(t, "-n", ns, "addr", "add", linkA+".2/24", "dev", a1)
	ip(t, "-n", ns, "addr", "add", linkB+".2/24", "dev", b1)
	ip(t, "-n", ns, "addr", "add", server+"/32", "dev", "lo")
	ip(t, "-n", ns, "link", "set", "lo", "up")
	ip(t, "-n", ns, "link", "set", a1, "up")
	ip(t, "-n", ns, "link", "set", b1, "up")
	ip(t, "route", "add", server+"/32", "via", linkA+".2", "dev", a0, "metric", "10")
	ip(t, "route", "add", server+"/32", "via", linkB+".2", "dev", b0, "metric", "20")

	// sshd in the namespace, configured as sshtest.StartSshd does.
	dir := t.TempDir()
	key := sshtest.KeyGen(t, dir, "ed25519", 0)
	hkDir := filepath.Join(dir, "host")
	os.Mkdir(hkDir, 0o700)
	hostKey := sshtest.KeyGen(t, hkDir, "ed25519", 0)
	pub, _ := os.ReadFile(key + ".pub")
	ak := filepath.Join(dir, "authorized_keys")
	os.WriteFile(ak, pub, 0o600)
	os.MkdirAll("/run/sshd", 0o755)
	port := 22
	cfg := strings.Join([]string{
		"Port " + strconv.Itoa(port), "ListenAddress " + server, "HostKey " + hostKey,
		"AuthorizedKeysFile " + ak, "PidFile none", "UsePAM no", "StrictModes no",
		"PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin yes",
		"Subsystem sftp " + sftpServer, "LogLevel VERBOSE",
	}, "\n") + "\n"
	cfgPath := filepath.Join(dir, "sshd_config")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	sshdLog := &lockedBuffer{}
	sshd := exec.Command("ip", "netns", "exec", ns, sshdBin, "-D", "-e", "-f", cfgPath)
	sshd.Stderr = sshdLog
	if err := sshd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sshd.Process.Kill()
		sshd.Wait()
		if t.Failed() {
			t.Logf("sshd log:\n%s", sshdLog.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(sshdLog.String(), "Server listening"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen:\n%s", sshdLog.String())
		}
	}
	hkPub, _ := os.ReadFile(hostKey + ".pub")
	f := strings.Fields(string(hkPub))
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(fmt.Sprintf("%s %s %s\n", server, f[0], f[1])), 0o600)

	remote := filepath.Join(dir, "big")
	const size = 256 << 20
	e2eRandFile(t, remote, size)
	local := filepath.Join(dir, "big.local")
	events := filepath.Join(dir, "events")
	cmd := exec.Command(e2eTool(t), "get", "-F", "none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile="+kh, "-i", key, "-o", "User="+sshtest.User(t), "-q",
		"--events", events, server+":"+remote, local)
	cmd.Env = append(e2eEnv(t), helperDirEnv+"="+filepath.Join(dir, "helper"))
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
	ip(t, "link", "set", a0, "down")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("rsftp get: %v\n%s", err, errb.String())
	}
	e2eSame(t, remote, local)
	ev := readEvents(t, events)
	if countEvents(ev, "resumed") < 1 {
		t.Fatalf("the client never resumed: %v", ev)
	}
	if !strings.Contains(sshdLog.String(), "Connection from "+linkB+".1 ") {
		t.Fatalf("sshd had no connection from the address on link B (%s.1):\n%s", linkB, sshdLog.String())
	}
	for _, e := range ev {
		if e["event"] == "link_lost" || e["event"] == "resumed" {
			t.Logf("client %v: %v", e["event"], e)
		}
	}
	t.Logf("link A down at %v; transfer done %v later", downAt.Format("15:04:05.000"), time.Since(downAt).Round(time.Millisecond))
	waitNoSessions(t, filepath.Join(dir, "helper"))
}
