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

	"github.com/rsftp/rsftp/internal/netlab"
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
	lab := netlab.New(t, "rh", 1)
	ns, a0, linkB, server := lab.NS, lab.A0, lab.LinkB, lab.Server
	sshdBin := sshtest.Binary(t, "sshd")
	sftpServer := sshtest.Binary(t, "sftp-server")

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
	netlab.IP(t, "link", "set", a0, "down")
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
