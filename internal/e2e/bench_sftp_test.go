package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/sftp"
)

// BenchmarkSFTPOverSSH moves a 256 MiB file through our SFTP client and
// server over our SSH stack on loopback, both ends in this process (so
// the two share the machine's cores), for profiling the whole path:
//
//	go test -run '^$' -bench SFTPOverSSH -cpuprofile cpu.out ./internal/e2e
func BenchmarkSFTPOverSSH(b *testing.B) {
	const size = 256 << 20
	dir := b.TempDir()
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	f, _ := os.Create(filepath.Join(root, "big"))
	io.CopyN(f, rand.Reader, size)
	f.Close()
	kp := filepath.Join(dir, "id")
	userKey, pubLine := newUserKey(b, kp)
	addr, hk := startServer(b, dir, pubLine, func(cfg *rsftp.ServerConfig) {
		cfg.Logf = func(string, ...any) {}
		cfg.Subsystems = map[string]rsftp.Handler{"sftp": func(ctx context.Context, s *rsftp.ServerSession) int {
			if err := sftp.Serve(ctx, s.Channel, &sftp.ServerConfig{Root: root}); err != nil {
				return 1
			}
			return 0
		}}
	})
	for _, cipher := range []string{"chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com"} {
		b.Run(cipher, func(b *testing.B) {
			c := dialAddrMod(b, addr, hk.PublicKey(), userKey, func(cfg *rsftp.ClientConfig) {
				cfg.Transport.Ciphers = []string{cipher}
			})
			sess, err := c.NewSession(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if err := sess.Subsystem(context.Background(), "sftp"); err != nil {
				b.Fatal(err)
			}
			sc, err := sftp.NewClient(context.Background(), sess.Channel())
			if err != nil {
				b.Fatal(err)
			}
			defer sc.Close()
			b.Run("get", func(b *testing.B) {
				b.SetBytes(size)
				for range b.N {
					rf, err := sc.Open("big")
					if err != nil {
						b.Fatal(err)
					}
					if n, err := rf.WriteTo(io.Discard); err != nil || n != size {
						b.Fatal(n, err)
					}
					rf.Close()
				}
			})
			b.Run("put", func(b *testing.B) {
				b.SetBytes(size)
				for range b.N {
					wf, err := sc.Create("up")
					if err != nil {
						b.Fatal(err)
					}
					if n, err := wf.ReadFrom(io.LimitReader(zeroReader{}, size)); err != nil || n != size {
						b.Fatal(n, err)
					}
					wf.Close()
				}
			})
		})
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// newUserKey makes an ed25519 user key with ssh-keygen-free code and
// returns its signer and authorized_keys line.
func newUserKey(tb testing.TB, _ string) (kex.Signer, string) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := kex.NewSigner(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return s, kex.MarshalAuthorizedKey(s.PublicKey()) + "\n"
}
