package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/agenttest"
	"github.com/rsftp/rsftp/internal/sshtest"
)

// TestE2EServeForwardingOpenSSH: Debian's ssh against "rsftp serve
// --forwarding local,remote": -N -L and -R carry a connection each way;
// a key whose authorized_keys line says restrict may not (ssh -R with
// ExitOnForwardFailure fails), and -R outside --permit-listen is refused.
// Against "rsftp serve --shell --forwarding all", ssh -A: ssh-add -l in
// the session lists the forwarded agent's key.
func TestE2EServeForwardingOpenSSH(t *testing.T) {
	sshBin := sshtest.Binary(t, "ssh")
	dir := t.TempDir()
	kp := sshtest.KeyGen(t, dir, "ed25519", 0)
	rkp := sshtest.KeyGen(t, t.TempDir(), "ed25519", 0)
	pub, _ := os.ReadFile(kp + ".pub")
	rpub, _ := os.ReadFile(rkp + ".pub")
	ak := filepath.Join(dir, "authorized_keys")
	os.WriteFile(ak, append(append(pub, "restrict "...), rpub...), 0o600)
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	hk := filepath.Join(dir, "hk")
	allowed := e2eFreePort(t)
	port, _ := e2eServeCert(t, "--root", root, "--host-key", hk, "--authorized-keys", ak,
		"--forwarding", "local,remote", "--permit-listen", fmt.Sprintf("localhost:%d", allowed))
	hkPub, err := os.ReadFile(hk + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(hkPub))
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s %s\n", port, f[0], f[1])), 0o600)

	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	target := echo.Addr().String()
	args := func(key string, more ...string) []string {
		return append(append(sshtest.SSHArgs(kh, port), "-i", key, "-o", "ExitOnForwardFailure=yes", "-N"), append(more, "127.0.0.1")...)
	}
	start := func(a []string) {
		cmd := exec.Command(sshBin, a...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	through := func(addr, msg string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.SetDeadline(time.Now().Add(20 * time.Second))
				io.WriteString(c, msg)
				got := make([]byte, len(msg))
				_, err = io.ReadFull(c, got)
				c.Close()
				if err == nil && string(got) == msg {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("nothing answers %q at %s: %v", msg, addr, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	lport := e2eFreePort(t)
	start(args(kp, "-L", fmt.Sprintf("%d:%s", lport, target), "-R", fmt.Sprintf("%d:%s", allowed, target)))
	through(fmt.Sprintf("127.0.0.1:%d", lport), "through rsftp serve's -L")
	through(fmt.Sprintf("127.0.0.1:%d", allowed), "through rsftp serve's -R")

	refused := func(key string, fwd ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, sshBin, args(key, fwd...)...).CombinedOutput()
		if err == nil || ctx.Err() != nil || !strings.Contains(string(out), "forwarding failed") {
			t.Errorf("ssh %q: %v\n%s", fwd, err, out)
		}
	}
	refused(rkp, "-R", "0:"+target)
	refused(kp, "-R", fmt.Sprintf("%d:%s", e2eFreePort(t), target))

	// --shell --forwarding all: ssh -A, and ssh-add -l in the session
	// lists the agent's key through SSH_AUTH_SOCK.
	sshtest.Binary(t, "ssh-add")
	hk2 := filepath.Join(t.TempDir(), "hk")
	port2, _ := e2eServeCert(t, "--root", root, "--host-key", hk2, "--authorized-keys", ak, "--shell", "--forwarding", "all")
	hk2Pub, err := os.ReadFile(hk2 + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	f2 := strings.Fields(string(hk2Pub))
	kh2 := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(kh2, []byte(fmt.Sprintf("[127.0.0.1]:%d %s %s\n", port2, f2[0], f2[1])), 0o600)
	ag := agenttest.New()
	ag.Add(serveTestKey(t), "agent-through-rsftp-serve")
	sockDir, err := os.MkdirTemp("", "sfa")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	sock, stop, err := ag.Listen(sockDir)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// ssh forwards an agent only if it finds one at SSH_AUTH_SOCK,
	// which IdentityAgent=none hides.
	var a []string
	for _, s := range sshtest.SSHArgs(kh2, port2) {
		if s == "IdentityAgent=none" {
			a = a[:len(a)-1]
			continue
		}
		a = append(a, s)
	}
	a = append(a, "-i", kp, "-A", "127.0.0.1", "ssh-add -l")
	cmd := exec.Command(sshBin, a...)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "agent-through-rsftp-serve") {
		t.Fatalf("ssh -A, ssh-add -l against rsftp serve --shell --forwarding all: %v\n%s", err, out)
	}
}
