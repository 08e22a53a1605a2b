package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/internal/agenttest"
	"github.com/rsftp/rsftp/internal/sshtest"
)

// forwardingOn is the ServerConfig change of rsftp serve --shell
// --forwarding local,remote,agent: every kind allowed, sshd's defaults
// otherwise, and commands run by ShellHandler, which exports the
// forwarded agent's socket as SSH_AUTH_SOCK.
func forwardingOn(cfg *rsftp.ServerConfig) {
	cfg.AllowTCPForwarding = func(string, string, int) bool { return true }
	cfg.AllowRemoteForwarding = func(string, string, int) bool { return true }
	cfg.AllowStreamLocalForwarding = func(string, string, bool) bool { return true }
	cfg.AllowAgentForwarding = func(string) bool { return true }
	cfg.Exec = rsftp.ShellHandler(rsftp.ShellConfig{})
}

// echoServer listens on loopback and echoes each connection; it returns
// the port.
func echoServer(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// startOpenSSH starts OpenSSH's ssh with args, killed when the test ends;
// its stderr comes back line by line.
func startOpenSSH(t *testing.T, args ...string) <-chan string {
	t.Helper()
	cmd := exec.Command(sshtest.Binary(t, "ssh"), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Logf("ssh: %s", sc.Text())
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	return lines
}

// echoThrough dials network addr until it answers (ssh sets up its
// forwards after the login) and checks that a message comes back.
func echoThrough(t *testing.T, network, addr, msg string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial(network, addr)
		if err == nil {
			c.SetDeadline(time.Now().Add(20 * time.Second))
			io.WriteString(c, msg)
			got := make([]byte, len(msg))
			_, err = io.ReadFull(c, got)
			c.Close()
			if err == nil && string(got) == msg {
				return
			}
			if err == nil {
				t.Fatalf("through %s: got %q, want %q", addr, got, msg)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing answers at %s %s: %v", network, addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Debian's ssh against our server with forwarding on: -L to a TCP port
// and to a Unix socket, -R from a fixed port, from port 0 (the port the
// server allocated, as ssh reports it) and from a Unix socket, and -A
// (ssh-add -l on the server lists the agent's key).
func TestInteropOpenSSHForwarding(t *testing.T) {
	dir := t.TempDir()
	kp := sshtest.KeyGen(t, dir, "ed25519", 0)
	pub, _ := os.ReadFile(kp + ".pub")
	addr, hk := startServer(t, dir, string(pub), forwardingOn)
	kh := knownHostsFor(t, dir, addr, hk.PublicKey())
	_, port := splitAddr(addr)
	base := append(sshtest.SSHArgs(kh, port), "-i", kp, "-o", "ExitOnForwardFailure=yes")
	tport := echoServer(t)
	target := "127.0.0.1:" + strconv.Itoa(tport)
	sockDir, err := os.MkdirTemp("", "fwi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	usock := filepath.Join(sockDir, "echo.sock")
	ul, err := net.Listen("unix", usock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ul.Close() })
	go func() {
		for {
			c, err := ul.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()

	t.Run("L", func(t *testing.T) {
		lport := sshtest.FreePort(t)
		lport2 := sshtest.FreePort(t)
		startOpenSSH(t, append(base, "-N", "-L", fmt.Sprintf("%d:%s", lport, target),
			"-L", fmt.Sprintf("%d:%s", lport2, usock), "127.0.0.1")...)
		echoThrough(t, "tcp", fmt.Sprintf("127.0.0.1:%d", lport), "through ssh -L")
		echoThrough(t, "tcp", fmt.Sprintf("127.0.0.1:%d", lport2), "through ssh -L to a unix socket")
	})
	t.Run("R", func(t *testing.T) {
		rport := sshtest.FreePort(t)
		rsock := filepath.Join(sockDir, "r.sock")
		startOpenSSH(t, append(base, "-N", "-R", fmt.Sprintf("%d:%s", rport, target),
			"-R", rsock+":"+target, "127.0.0.1")...)
		echoThrough(t, "tcp", fmt.Sprintf("127.0.0.1:%d", rport), "through ssh -R")
		echoThrough(t, "unix", rsock, "through ssh -R from a unix socket")
	})
	t.Run("R0", func(t *testing.T) {
		lines := startOpenSSH(t, append(base, "-N", "-R", "0:"+target, "127.0.0.1")...)
		re := regexp.MustCompile(`Allocated port (\d+) for remote forward`)
		var rport string
		timeout := time.After(20 * time.Second)
		for rport == "" {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("ssh ended without reporting an allocated port")
				}
				if m := re.FindStringSubmatch(l); m != nil {
					rport = m[1]
				}
			case <-timeout:
				t.Fatal("ssh reported no allocated port")
			}
		}
		echoThrough(t, "tcp", "127.0.0.1:"+rport, "through ssh -R 0")
	})
	t.Run("A", func(t *testing.T) {
		sshtest.Binary(t, "ssh-add")
		ag := agenttest.New()
		ag.Add(loadSigner(t, sshtest.KeyGen(t, t.TempDir(), "ed25519", 0)), "forwarded-through-rsftp")
		sock, stop, err := ag.Listen(sockDir)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		// ssh forwards an agent only if it finds one at
		// SSH_AUTH_SOCK, which IdentityAgent=none hides.
		var args []string
		for i := 0; i < len(base); i++ {
			if base[i] == "-o" && base[i+1] == "IdentityAgent=none" {
				i++
				continue
			}
			args = append(args, base[i])
		}
		args = append(args, "-A", "127.0.0.1", `ssh-add -l; echo "sock=$SSH_AUTH_SOCK"`)
		cmd := exec.Command(sshtest.Binary(t, "ssh"), args...)
		cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "forwarded-through-rsftp") {
			t.Fatalf("ssh -A, ssh-add -l: %v\n%s", err, out)
		}
		// The same in a session with a pseudo-terminal (-tt).
		ptyArgs := append(append([]string(nil), args[:len(args)-2]...), "-tt", "127.0.0.1", "ssh-add -l")
		cmd = exec.Command(sshtest.Binary(t, "ssh"), ptyArgs...)
		cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		if pout, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(pout), "forwarded-through-rsftp") {
			t.Fatalf("ssh -tt -A, ssh-add -l: %v\n%s", err, pout)
		}
		// The socket's directory is gone with the session.
		m := regexp.MustCompile(`sock=(\S+)`).FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("no SSH_AUTH_SOCK in %q", out)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := os.Lstat(filepath.Dir(m[1])); os.IsNotExist(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still there after the session", filepath.Dir(m[1]))
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("refused", func(t *testing.T) {
		// With no-port-forwarding in force (here: the server allows
		// nothing) ssh -R with ExitOnForwardFailure gives up.
		addr2, hk2 := startServer(t, dir, string(pub), nil)
		kh2 := knownHostsFor(t, t.TempDir(), addr2, hk2.PublicKey())
		_, port2 := splitAddr(addr2)
		args := append(sshtest.SSHArgs(kh2, port2), "-i", kp, "-o", "ExitOnForwardFailure=yes",
			"-N", "-R", "0:"+target, "127.0.0.1")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, sshtest.Binary(t, "ssh"), args...).CombinedOutput()
		if err == nil || ctx.Err() != nil || !strings.Contains(string(out), "remote port forwarding failed") {
			t.Fatalf("ssh -R against a server without forwarding: %v\n%s", err, out)
		}
	})
}

// Our client's forwarding against Debian's sshd: ListenTCP with port 0
// and a fixed port, cancel, ListenUnix, DialUnix and ForwardAgent
// (ssh-add -l in the session lists agenttest's key), and sshd's refusals
// (AllowTcpForwarding local, AllowAgentForwarding no) as errors.
func TestInteropOurForwardingToSshd(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	kp := sshtest.KeyGen(t, dir, "ed25519", 0)
	pub, _ := os.ReadFile(kp + ".pub")
	sshd := sshtest.StartSshd(t, string(pub), "AllowTcpForwarding yes", "AllowStreamLocalForwarding yes", "AllowAgentForwarding yes")
	c := dialSshd(t, sshd, loadSigner(t, kp), nil)
	tport := echoServer(t)

	l, err := c.ListenTCP(ctx, "localhost", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, rport, _ := net.SplitHostPort(l.Addr().String())
	go acceptEcho(l)
	echoThrough(t, "tcp", "127.0.0.1:"+rport, "through sshd's -R 0")
	fixed := sshtest.FreePort(t)
	l2, err := c.ListenTCP(ctx, "127.0.0.1", fixed)
	if err != nil {
		t.Fatal(err)
	}
	go acceptEcho(l2)
	echoThrough(t, "tcp", fmt.Sprintf("127.0.0.1:%d", fixed), "through sshd's -R")
	l2.Close()
	// sshd has the cancel once a later request is answered.
	if _, _, err := c.Mux().SendRequest(ctx, "keepalive@openssh.com", true, nil); err != nil {
		t.Fatal(err)
	}
	if tc, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", fixed)); err == nil {
		tc.Close()
		t.Errorf("sshd still listens on %d after the cancel", fixed)
	}

	sockDir, err := os.MkdirTemp("", "fws")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	rsock := filepath.Join(sockDir, "r.sock")
	ul, err := c.ListenUnix(ctx, rsock)
	if err != nil {
		t.Fatal(err)
	}
	go acceptEcho(ul)
	echoThrough(t, "unix", rsock, "through sshd's streamlocal-forward")
	ul.Close()

	tl, err := net.Listen("unix", filepath.Join(sockDir, "t.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	go acceptEcho(tl)
	dc, err := c.DialUnix(ctx, filepath.Join(sockDir, "t.sock"))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(dc, "direct-streamlocal to sshd")
	buf := make([]byte, len("direct-streamlocal to sshd"))
	if _, err := io.ReadFull(dc, buf); err != nil || string(buf) != "direct-streamlocal to sshd" {
		t.Fatalf("DialUnix through sshd: %q, %v", buf, err)
	}
	dc.Close()
	if fc, err := c.DialTCP(ctx, "127.0.0.1", tport); err != nil {
		t.Fatal(err)
	} else {
		fc.Close()
	}

	ag := agenttest.New()
	ag.Add(loadSigner(t, sshtest.KeyGen(t, t.TempDir(), "ed25519", 0)), "agent-through-sshd")
	sess, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ForwardAgent(ctx, sess, func(context.Context) (net.Conn, error) {
		a, b := net.Pipe()
		go ag.Serve(b)
		return a, nil
	}); err != nil {
		t.Fatal(err)
	}
	out, err := sess.Output(ctx, "ssh-add -l 2>&1")
	if err != nil || !strings.Contains(string(out), "agent-through-sshd") {
		t.Fatalf("ssh-add -l through sshd: %v\n%s", err, out)
	}

	// sshd's refusals.
	sshd2 := sshtest.StartSshd(t, string(pub), "AllowTcpForwarding local", "AllowStreamLocalForwarding no", "AllowAgentForwarding no")
	c2 := dialSshd(t, sshd2, loadSigner(t, kp), nil)
	if _, err := c2.ListenTCP(ctx, "localhost", 0); err == nil {
		t.Error("sshd with AllowTcpForwarding local granted a remote forward")
	}
	if _, err := c2.ListenUnix(ctx, filepath.Join(sockDir, "no.sock")); err == nil {
		t.Error("sshd with AllowStreamLocalForwarding no granted a socket forward")
	}
	sess2, err := c2.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.ForwardAgent(ctx, sess2, func(context.Context) (net.Conn, error) { return nil, io.EOF }); err == nil {
		t.Error("sshd with AllowAgentForwarding no granted agent forwarding")
	}
}

// acceptEcho echoes each connection l accepts.
func acceptEcho(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() { io.Copy(c, c); c.Close() }()
	}
}
