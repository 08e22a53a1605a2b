package e2e

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/internal/sshtest"
)

// benchSize is what each iteration uploads.
const benchSize = 256 << 20

// zeros is an io.Reader of n zero bytes without allocation per read.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), z.n)
	clear(p[:k])
	z.n -= k
	return int(k), nil
}

// BenchmarkUploadToSshd streams 256 MiB into "cat > /dev/null" on Debian's
// sshd, once with our client and once with OpenSSH's ssh, in the same run
// with the same cipher (chacha20-poly1305@openssh.com), so the ratio of the
// two is what to read.
func BenchmarkUploadToSshd(b *testing.B) {
	dir := b.TempDir()
	kp := sshtest.KeyGen(b, dir, "ed25519", 0)
	pub, _ := os.ReadFile(kp + ".pub")
	sshd := sshtest.StartSshd(b, string(pub))
	key := loadSigner(b, kp)

	b.Run("rsftp-client", func(b *testing.B) {
		c := dialSshd(b, sshd, key, nil)
		b.SetBytes(benchSize)
		for range b.N {
			uploadOurs(b, c)
		}
	})
	b.Run("openssh-ssh", func(b *testing.B) {
		hk, _ := os.ReadFile(sshd.HostKey + ".pub")
		kh := filepath.Join(dir, "known_hosts")
		os.WriteFile(kh, append([]byte("[127.0.0.1]:"+itoa(sshd.Port)+" "), hk...), 0o600)
		ssh := sshtest.Binary(b, "ssh")
		b.SetBytes(benchSize)
		for range b.N {
			args := append(sshtest.SSHArgs(kh, sshd.Port), "-i", kp, "-c", "chacha20-poly1305@openssh.com", "127.0.0.1", "cat > /dev/null")
			cmd := exec.Command(ssh, args...)
			cmd.Stdin = &zeros{benchSize}
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("ssh: %v\n%s", err, out)
			}
		}
	})
}

// BenchmarkUploadToOurServer is the same against our server, with both
// clients.
func BenchmarkUploadToOurServer(b *testing.B) {
	dir := b.TempDir()
	kp := sshtest.KeyGen(b, dir, "ed25519", 0)
	pub, _ := os.ReadFile(kp + ".pub")
	addr, hk := startServer(b, dir, string(pub), func(cfg *rsftp.ServerConfig) {
		cfg.Logf = func(string, ...any) {}
	})
	key := loadSigner(b, kp)
	b.Run("rsftp-client", func(b *testing.B) {
		c := dialAddr(b, addr, hk.PublicKey(), key)
		b.SetBytes(benchSize)
		for range b.N {
			uploadOurs(b, c)
		}
	})
	b.Run("openssh-ssh", func(b *testing.B) {
		kh := knownHostsFor(b, dir, addr, hk.PublicKey())
		_, port := splitAddr(addr)
		ssh := sshtest.Binary(b, "ssh")
		b.SetBytes(benchSize)
		for range b.N {
			args := append(sshtest.SSHArgs(kh, port), "-i", kp, "-c", "chacha20-poly1305@openssh.com", "127.0.0.1", "cat > /dev/null")
			cmd := exec.Command(ssh, args...)
			cmd.Stdin = &zeros{benchSize}
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("ssh: %v\n%s", err, out)
			}
		}
	})
}

func uploadOurs(b *testing.B, c *rsftp.Client) {
	ctx := context.Background()
	sess, err := c.NewSession(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Close()
	stdin := sess.Stdin()
	if err := sess.Exec(ctx, "cat > /dev/null"); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	if _, err := io.CopyBuffer(stdin, &zeros{benchSize}, buf); err != nil {
		b.Fatal(err)
	}
	stdin.Close()
	if err := sess.Wait(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkDownload1GiB reads 1 GiB that the server's shell produces with
// head -c from /dev/zero: from Debian's sshd and from our server, with our
// client and with OpenSSH's ssh.
func BenchmarkDownload1GiB(b *testing.B) {
	const size = 1 << 30
	cmd := "head -c 1073741824 /dev/zero"
	dir := b.TempDir()
	kp := sshtest.KeyGen(b, dir, "ed25519", 0)
	pub, _ := os.ReadFile(kp + ".pub")
	sshd := sshtest.StartSshd(b, string(pub))
	addr, hk := startServer(b, dir, string(pub), func(cfg *rsftp.ServerConfig) { cfg.Logf = func(string, ...any) {} })
	key := loadSigner(b, kp)
	sshdHK, _ := os.ReadFile(sshd.HostKey + ".pub")
	khSshd := filepath.Join(dir, "known_hosts_sshd")
	os.WriteFile(khSshd, append([]byte("[127.0.0.1]:"+itoa(sshd.Port)+" "), sshdHK...), 0o600)
	khOurs := knownHostsFor(b, dir, addr, hk.PublicKey())
	_, ourPort := splitAddr(addr)

	ours := func(b *testing.B, c *rsftp.Client) {
		b.SetBytes(size)
		for range b.N {
			sess, err := c.NewSession(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			out := sess.Stdout()
			if err := sess.Exec(context.Background(), cmd); err != nil {
				b.Fatal(err)
			}
			n, err := io.CopyBuffer(io.Discard, out, make([]byte, 1<<20))
			if err != nil || n != size {
				b.Fatalf("%d bytes, %v", n, err)
			}
			if err := sess.Wait(); err != nil {
				b.Fatal(err)
			}
		}
	}
	theirs := func(b *testing.B, kh string, port int) {
		ssh := sshtest.Binary(b, "ssh")
		b.SetBytes(size)
		for range b.N {
			args := append(sshtest.SSHArgs(kh, port), "-i", kp, "-c", "chacha20-poly1305@openssh.com", "127.0.0.1", cmd)
			c := exec.Command(ssh, args...)
			c.Stdout = io.Discard
			if err := c.Run(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("sshd/rsftp-client", func(b *testing.B) { ours(b, dialSshd(b, sshd, key, nil)) })
	b.Run("sshd/openssh-ssh", func(b *testing.B) { theirs(b, khSshd, sshd.Port) })
	b.Run("rsftp-server/rsftp-client", func(b *testing.B) { ours(b, dialAddr(b, addr, hk.PublicKey(), key)) })
	b.Run("rsftp-server/openssh-ssh", func(b *testing.B) { theirs(b, khOurs, ourPort) })
}
