package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/internal/sshtest"
)

// forwardBenchSize is what each iteration pushes through a forward.
const forwardBenchSize = 256 << 20

const benchCipher = "chacha20-poly1305@openssh.com"

// sinkServer reads each connection to its end, then closes it: the
// sender's read of EOF says every byte arrived.
func sinkServer(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				io.CopyBuffer(io.Discard, c, make([]byte, 256<<10))
				c.Close()
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// pushForward sends forwardBenchSize bytes into c, closes its write side and
// waits for the far end's close.
func pushForward(b *testing.B, c net.Conn) {
	if _, err := io.CopyBuffer(c, &zeros{forwardBenchSize}, make([]byte, 256<<10)); err != nil {
		b.Fatal(err)
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	io.Copy(io.Discard, c)
	c.Close()
}

// waitListening dials addr until it answers (ssh sets its forwards up
// after the login).
func waitListening(b *testing.B, addr string) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("nothing listens at %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkForward pushes 256 MiB through a remote (-R) and a local (-L)
// forward, both ends on loopback, chacha20-poly1305 throughout: our
// client against our server, and OpenSSH's ssh against Debian's sshd, in
// one run, so the ratio is what to read. Each row crosses the same TCP
// hops: a sender, the listening side, the SSH connection, the side that
// connects on, a sink.
func BenchmarkForward(b *testing.B) {
	dir := b.TempDir()
	kp := sshtest.KeyGen(b, dir, "ed25519", 0)
	pub, _ := os.ReadFile(kp + ".pub")
	key := loadSigner(b, kp)
	sink := sinkServer(b)
	addr, hk := startServer(b, dir, string(pub), func(cfg *rsftp.ServerConfig) {
		forwardingOn(cfg)
		cfg.Logf = func(string, ...any) {}
		cfg.Transport.Ciphers = []string{benchCipher}
	})
	sshd := sshtest.StartSshd(b, string(pub), "AllowTcpForwarding yes", "Ciphers "+benchCipher)
	ours := func(b *testing.B) *rsftp.Client {
		return dialAddrMod(b, addr, hk.PublicKey(), key, func(cfg *rsftp.ClientConfig) { cfg.Transport.Ciphers = []string{benchCipher} })
	}
	sshArgs := func(b *testing.B, fwd ...string) {
		hkp, _ := os.ReadFile(sshd.HostKey + ".pub")
		kh := filepath.Join(b.TempDir(), "known_hosts")
		os.WriteFile(kh, append([]byte(fmt.Sprintf("[127.0.0.1]:%d ", sshd.Port)), hkp...), 0o600)
		args := append(sshtest.SSHArgs(kh, sshd.Port), "-i", kp, "-c", benchCipher, "-N", "-o", "ExitOnForwardFailure=yes")
		cmd := exec.Command(sshtest.Binary(b, "ssh"), append(append(args, fwd...), "127.0.0.1")...)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	b.Run("R/rsftp", func(b *testing.B) {
		c := ours(b)
		l, err := c.ListenTCP(b.Context(), "localhost", 0)
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				fc, err := l.Accept()
				if err != nil {
					return
				}
				go func() {
					tc, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", sink))
					if err != nil {
						fc.Close()
						return
					}
					spliceConns(fc, tc)
				}()
			}
		}()
		_, port := splitAddr(l.Addr().String())
		b.SetBytes(forwardBenchSize)
		b.ResetTimer()
		for range b.N {
			tc, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				b.Fatal(err)
			}
			pushForward(b, tc)
		}
	})
	b.Run("R/openssh", func(b *testing.B) {
		port := sshtest.FreePort(b)
		sshArgs(b, "-R", fmt.Sprintf("%d:127.0.0.1:%d", port, sink))
		a := fmt.Sprintf("127.0.0.1:%d", port)
		waitListening(b, a)
		b.SetBytes(forwardBenchSize)
		b.ResetTimer()
		for range b.N {
			tc, err := net.Dial("tcp", a)
			if err != nil {
				b.Fatal(err)
			}
			pushForward(b, tc)
		}
	})
	b.Run("L/rsftp", func(b *testing.B) {
		// As ssh -L: a local listener whose connections go through
		// DialTCP, so that both rows cross the same TCP hops.
		c := ours(b)
		ll, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ll.Close()
		go func() {
			for {
				tc, err := ll.Accept()
				if err != nil {
					return
				}
				go func() {
					fc, err := c.DialTCP(b.Context(), "127.0.0.1", sink)
					if err != nil {
						tc.Close()
						return
					}
					spliceConns(tc, fc)
				}()
			}
		}()
		b.SetBytes(forwardBenchSize)
		for range b.N {
			tc, err := net.Dial("tcp", ll.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			pushForward(b, tc)
		}
	})
	b.Run("L/openssh", func(b *testing.B) {
		port := sshtest.FreePort(b)
		sshArgs(b, "-L", fmt.Sprintf("%d:127.0.0.1:%d", port, sink))
		a := fmt.Sprintf("127.0.0.1:%d", port)
		waitListening(b, a)
		b.SetBytes(forwardBenchSize)
		b.ResetTimer()
		for range b.N {
			tc, err := net.Dial("tcp", a)
			if err != nil {
				b.Fatal(err)
			}
			pushForward(b, tc)
		}
	})
}

// spliceConns copies both ways between a and b, passing EOF along, then
// closes both.
func spliceConns(a, b net.Conn) {
	done := make(chan struct{})
	go func() {
		io.CopyBuffer(b, a, make([]byte, 256<<10))
		b.(interface{ CloseWrite() error }).CloseWrite()
		close(done)
	}()
	io.CopyBuffer(a, b, make([]byte, 256<<10))
	a.(interface{ CloseWrite() error }).CloseWrite()
	<-done
	a.Close()
	b.Close()
}
