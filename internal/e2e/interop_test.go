package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/internal/sshtest"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/transport"
)

// loadSigner reads an OpenSSH private key file made by ssh-keygen.
func loadSigner(t testing.TB, path string) kex.Signer {
	t.Helper()
	pem, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := auth.ParsePrivateKey(pem, nil)
	if err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	s, err := kex.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startServer runs our server on loopback with host key from ssh-keygen
// and the given authorized_keys text; it returns the address.
func startServer(t testing.TB, dir, authorizedKeys string, mod func(*rsftp.ServerConfig)) (string, kex.Signer) {
	t.Helper()
	hk := loadSigner(t, sshtest.KeyGen(t, t.TempDir(), "ed25519", 0))
	keys, err := auth.ParseAuthorizedKeys([]byte(authorizedKeys))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &rsftp.ServerConfig{
		HostKeys: []kex.Signer{hk},
		Auth: auth.ServerConfig{
			PublicKeyCallback: func(user string, key kex.PublicKey) (*auth.Permissions, error) {
				for _, k := range keys {
					if bytes.Equal(k.Key.Marshal(), key.Marshal()) {
						return &auth.Permissions{}, nil
					}
				}
				return nil, errors.New("key not authorized")
			},
		},
		Exec: rsftp.CommandHandler("/bin/sh"),
		Logf: t.Logf,
		// Resumption offered as rsftp serve does: OpenSSH clients must
		// not notice it.
		Resume: &rsftp.ResumeServerConfig{},
	}
	if mod != nil {
		mod(cfg)
	}
	srv, err := rsftp.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String(), hk
}

// knownHostsFor writes a known_hosts file trusting hk for addr.
func knownHostsFor(t testing.TB, dir, addr string, hk kex.PublicKey) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	path := filepath.Join(dir, "known_hosts")
	line := fmt.Sprintf("[%s]:%s %s\n", host, port, kex.MarshalAuthorizedKey(hk))
	if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Debian's ssh client runs commands on our server: stdin to stdout,
// stderr, exit status; with every cipher and MAC, and each user key type.
func TestInteropOpenSSHClientToOurServer(t *testing.T) {
	sshBin := sshtest.Binary(t, "ssh")
	dir := t.TempDir()
	var keys []string
	var ak strings.Builder
	for _, kt := range []struct {
		typ  string
		bits int
	}{{"ed25519", 0}, {"ecdsa", 256}, {"ecdsa", 384}, {"ecdsa", 521}, {"rsa", 3072}} {
		p := sshtest.KeyGen(t, dir, kt.typ, kt.bits)
		keys = append(keys, p)
		pub, _ := os.ReadFile(p + ".pub")
		ak.Write(pub)
	}
	// Record what each connection negotiated, seen from our side.
	var mu sync.Mutex
	var lastAlgs transport.Algorithms
	var lastStrict bool
	addr, hk := startServer(t, dir, ak.String(), func(cfg *rsftp.ServerConfig) {
		inner := cfg.Exec
		cfg.Exec = func(ctx context.Context, s *rsftp.ServerSession) int {
			mu.Lock()
			lastAlgs, lastStrict = s.Conn.Algorithms(), s.Conn.StrictKex()
			mu.Unlock()
			return inner(ctx, s)
		}
	})
	negotiated := func() (transport.Algorithms, bool) {
		mu.Lock()
		defer mu.Unlock()
		a, s := lastAlgs, lastStrict
		lastAlgs, lastStrict = transport.Algorithms{}, false
		return a, s
	}
	kh := knownHostsFor(t, dir, addr, hk.PublicKey())
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)

	run := func(t *testing.T, key string, extra []string, cmd string, stdin string) (string, string, int) {
		args := append(sshtest.SSHArgs(kh, p), "-i", key)
		args = append(args, extra...)
		args = append(args, "127.0.0.1", cmd)
		c := exec.Command(sshBin, args...)
		c.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		c.Stdout, c.Stderr = &out, &errb
		err := c.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("ssh: %v", err)
		}
		return out.String(), errb.String(), code
	}
	ciphers := []string{"chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes256-ctr"}
	macs := []string{"hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "hmac-sha2-256", "hmac-sha2-512"}
	for _, c := range ciphers {
		ms := macs
		if strings.Contains(c, "@") {
			ms = []string{""}
		}
		for _, m := range ms {
			t.Run(c+"/"+m, func(t *testing.T) {
				extra := []string{"-c", c}
				if m != "" {
					extra = append(extra, "-m", m)
				}
				out, errs, code := run(t, keys[0], extra, "cat; echo to-stderr >&2; exit 3", "hello from stdin\n")
				if out != "hello from stdin\n" || !strings.Contains(errs, "to-stderr") || code != 3 {
					t.Fatalf("stdout %q stderr %q exit %d", out, errs, code)
				}
				// OpenSSH 9.2's ssh has no RequireStrictKex; check
				// on our side that strict kex and the asked-for
				// algorithms were in effect.
				algs, strict := negotiated()
				if !strict || algs.CipherCS != c || algs.CipherSC != c || algs.MACCS != m || algs.MACSC != m {
					t.Fatalf("negotiated %+v, strict kex %v", algs, strict)
				}
			})
		}
	}
	// Each of our key exchange methods that this ssh knows (OpenSSH 9.2
	// has the sntrup761x25519 hybrid under both its names, not ML-KEM's).
	q, err := exec.Command(sshBin, "-Q", "kex").Output()
	if err != nil {
		t.Fatalf("ssh -Q kex: %v", err)
	}
	known := strings.Fields(string(q))
	for _, method := range kex.SupportedMethods() {
		t.Run(method, func(t *testing.T) {
			if !slices.Contains(known, method) {
				t.Skipf("this ssh lacks %s", method)
			}
			out, errs, code := run(t, keys[0], []string{"-o", "KexAlgorithms=" + method}, "echo ok", "")
			if out != "ok\n" || code != 0 {
				t.Fatalf("stdout %q stderr %q exit %d", out, errs, code)
			}
			if algs, strict := negotiated(); algs.Kex != method || !strict {
				t.Fatalf("negotiated %+v, strict kex %v", algs, strict)
			}
		})
	}
	for _, key := range keys {
		t.Run(filepath.Base(key), func(t *testing.T) {
			out, errs, code := run(t, key, nil, "echo ok", "")
			if out != "ok\n" || code != 0 {
				t.Fatalf("stdout %q stderr %q exit %d", out, errs, code)
			}
		})
	}
	t.Run("unknown-key", func(t *testing.T) {
		other := sshtest.KeyGen(t, t.TempDir(), "ed25519", 0)
		_, errs, code := run(t, other, nil, "echo ok", "")
		if code != 255 || !strings.Contains(errs, "Permission denied") {
			t.Fatalf("unknown key: exit %d stderr %q", code, errs)
		}
	})
}

func dialSshd(t testing.TB, sshd *sshtest.Sshd, key kex.Signer, mod func(*rsftp.ClientConfig)) *rsftp.Client {
	t.Helper()
	return dialAddrMod(t, sshd.Addr(), loadSigner(t, sshd.HostKey).PublicKey(), key, mod)
}

func dialAddr(t testing.TB, addr string, hk kex.PublicKey, key kex.Signer) *rsftp.Client {
	return dialAddrMod(t, addr, hk, key, nil)
}

func dialAddrMod(t testing.TB, addr string, hk kex.PublicKey, key kex.Signer, mod func(*rsftp.ClientConfig)) *rsftp.Client {
	t.Helper()
	cfg := clientConfigFor(t, hk, key, mod)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := rsftp.Dial(ctx, "tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// clientConfigFor is the configuration of dialAddrMod: this user, key,
// and hk as the only host key accepted.
func clientConfigFor(t testing.TB, hk kex.PublicKey, key kex.Signer, mod func(*rsftp.ClientConfig)) *rsftp.ClientConfig {
	cfg := &rsftp.ClientConfig{
		User: sshtest.User(t),
		Auth: []auth.Method{auth.PublicKeySigners(key)},
		HostKeyCallback: func(host string, port int, k kex.PublicKey) error {
			if !bytes.Equal(k.Marshal(), hk.Marshal()) {
				return errors.New("host key mismatch")
			}
			return nil
		},
	}
	if mod != nil {
		mod(cfg)
	}
	return cfg
}

// stream sends size random bytes through "cmd" on the server and checks
// the SHA-256 of what comes back.
func stream(t *testing.T, c *rsftp.Client, cmd string, size int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sess, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	stdin := sess.Stdin()
	stdout := sess.Stdout()
	if err := sess.Exec(ctx, cmd); err != nil {
		t.Fatal(err)
	}
	sent := sha256.New()
	errc := make(chan error, 1)
	go func() {
		_, err := io.Copy(stdin, io.TeeReader(io.LimitReader(rand.Reader, size), sent))
		if err == nil {
			err = stdin.Close()
		}
		errc <- err
	}()
	got := sha256.New()
	n, err := io.Copy(got, stdout)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := sess.Wait(); err != nil {
		t.Fatal(err)
	}
	if n != size || !bytes.Equal(got.Sum(nil), sent.Sum(nil)) {
		t.Fatalf("got %d bytes sha256 %s, sent %d bytes sha256 %s", n, hex.EncodeToString(got.Sum(nil)), size, hex.EncodeToString(sent.Sum(nil)))
	}
}

// Our client against Debian's sshd: exec, and 64 MiB through cat with the
// server rekeying every megabyte; then the same with our side rekeying.
func TestInteropOurClientToOpenSSHServer(t *testing.T) {
	dir := t.TempDir()
	kp := sshtest.KeyGen(t, dir, "ed25519", 0)
	pub, _ := os.ReadFile(kp + ".pub")
	sshd := sshtest.StartSshd(t, string(pub), "RekeyLimit 1M")
	key := loadSigner(t, kp)

	t.Run("exec", func(t *testing.T) {
		c := dialSshd(t, sshd, key, nil)
		ctx := context.Background()
		sess, err := c.NewSession(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out, err := sess.Output(ctx, "echo hello; exit 0")
		if err != nil || string(out) != "hello\n" {
			t.Fatalf("%q %v", out, err)
		}
		sess, _ = c.NewSession(ctx)
		err = sess.Run(ctx, "exit 7")
		var ee *channel.ExitError
		if !errors.As(err, &ee) || ee.Status != 7 {
			t.Fatalf("exit 7: got %v", err)
		}
	})
	t.Run("64MiB-server-rekeys", func(t *testing.T) {
		c := dialSshd(t, sshd, key, nil)
		stream(t, c, "cat", 64<<20)
		if n := c.Transport().KexCount(); n < 60 {
			t.Fatalf("only %d key exchanges for 2x64 MiB with RekeyLimit 1M", n)
		}
	})
	t.Run("64MiB-client-rekeys", func(t *testing.T) {
		sshd2 := sshtest.StartSshd(t, string(pub))
		c := dialSshd(t, sshd2, key, func(cfg *rsftp.ClientConfig) { cfg.Transport.RekeyBytes = 1 << 20 })
		stream(t, c, "cat", 64<<20)
		if n := c.Transport().KexCount(); n < 60 {
			t.Fatalf("only %d key exchanges for 2x64 MiB with our limit of 1 MiB", n)
		}
	})
	t.Run("wrong-host-key", func(t *testing.T) {
		cfg := &rsftp.ClientConfig{User: sshtest.User(t), Auth: []auth.Method{auth.PublicKeySigners(key)},
			HostKeyCallback: func(string, int, kex.PublicKey) error { return errors.New("REMOTE HOST IDENTIFICATION HAS CHANGED") }}
		_, err := rsftp.Dial(context.Background(), "tcp", sshd.Addr(), cfg)
		if err == nil || !strings.Contains(err.Error(), "HAS CHANGED") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("unknown-user-key", func(t *testing.T) {
		other := loadSigner(t, sshtest.KeyGen(t, t.TempDir(), "ed25519", 0))
		hk := loadSigner(t, sshd.HostKey).PublicKey()
		cfg := &rsftp.ClientConfig{User: sshtest.User(t), Auth: []auth.Method{auth.PublicKeySigners(other)},
			HostKeyCallback: func(_ string, _ int, k kex.PublicKey) error {
				if !bytes.Equal(k.Marshal(), hk.Marshal()) {
					return errors.New("mismatch")
				}
				return nil
			}}
		_, err := rsftp.Dial(context.Background(), "tcp", sshd.Addr(), cfg)
		var nm *auth.NoMethodError
		if !errors.As(err, &nm) || !slices.Contains(nm.Allowed, "publickey") {
			t.Fatalf("got %v, want *auth.NoMethodError", err)
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

func splitAddr(addr string) (string, int) {
	h, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return h, n
}

// keepalive@openssh.com: OpenSSH's ssh with ServerAliveInterval gives up
// on a server that does not answer; ours answers, so a command outlasting
// a few intervals completes.
func TestInteropOpenSSHKeepaliveToOurServer(t *testing.T) {
	sshBin := sshtest.Binary(t, "ssh")
	dir := t.TempDir()
	kp := sshtest.KeyGen(t, dir, "ed25519", 0)
	pub, _ := os.ReadFile(kp + ".pub")
	addr, hk := startServer(t, dir, string(pub), nil)
	kh := knownHostsFor(t, dir, addr, hk.PublicKey())
	_, port := splitAddr(addr)
	args := append(sshtest.SSHArgs(kh, port), "-i", kp, "-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=1",
		"127.0.0.1", "sleep 3; echo survived")
	out, err := exec.Command(sshBin, args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "survived") {
		t.Fatalf("ssh with keepalives: %v\n%s", err, out)
	}
}

// sshd with ClientAliveInterval asks our client keepalive@openssh.com and
// drops it if no answer comes; a command outlasting a few intervals
// completes.
func TestInteropSshdKeepaliveToOurClient(t *testing.T) {
	dir := t.TempDir()
	kp := sshtest.KeyGen(t, dir, "ed25519", 0)
	pub, _ := os.ReadFile(kp + ".pub")
	sshd := sshtest.StartSshd(t, string(pub), "ClientAliveInterval 1", "ClientAliveCountMax 1")
	c := dialSshd(t, sshd, loadSigner(t, kp), nil)
	ctx := context.Background()
	sess, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.Output(ctx, "sleep 3; echo survived")
	if err != nil || string(out) != "survived\n" {
		t.Fatalf("%q %v", out, err)
	}
}

// A command killed by a signal is reported as exit-signal, by our server
// and by sshd alike.
func TestExitSignal(t *testing.T) {
	dir := t.TempDir()
	kp := sshtest.KeyGen(t, dir, "ed25519", 0)
	pub, _ := os.ReadFile(kp + ".pub")
	addr, hk := startServer(t, dir, string(pub), nil)
	sshd := sshtest.StartSshd(t, string(pub))
	key := loadSigner(t, kp)
	for name, c := range map[string]*rsftp.Client{
		"ours": dialAddr(t, addr, hk.PublicKey(), key),
		"sshd": dialSshd(t, sshd, key, nil),
	} {
		t.Run(name, func(t *testing.T) {
			sess, err := c.NewSession(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			err = sess.Run(context.Background(), "kill -TERM $$")
			var ee *channel.ExitError
			if !errors.As(err, &ee) || ee.Signal != "TERM" {
				t.Fatalf("got %v, want killed by TERM", err)
			}
		})
	}
}

// Offering the resume extension changes nothing for peers that do not
// know it: OpenSSH's ssh and sshd work with us as plain SSH.
func TestInteropResumeOfferIgnoredByOpenSSH(t *testing.T) {
	sshBin := sshtest.Binary(t, "ssh")
	dir := t.TempDir()
	kp := sshtest.KeyGen(t, dir, "ed25519", 0)
	pub, _ := os.ReadFile(kp + ".pub")

	sshd := sshtest.StartSshd(t, string(pub))
	c := dialSshd(t, sshd, loadSigner(t, kp), func(cfg *rsftp.ClientConfig) { cfg.Transport.Extensions = resumeExtensions })
	if c.Transport().Negotiated(resumeExtensions[0].Client) {
		t.Fatal("resume negotiated with sshd")
	}
	sess, err := c.NewSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if out, err := sess.Output(context.Background(), "echo plain"); err != nil || string(out) != "plain\n" {
		t.Fatalf("%q %v", out, err)
	}

	addr, hk := startServer(t, dir, string(pub), func(cfg *rsftp.ServerConfig) { cfg.Transport.Extensions = resumeExtensions })
	kh := knownHostsFor(t, dir, addr, hk.PublicKey())
	_, port := splitAddr(addr)
	args := append(sshtest.SSHArgs(kh, port), "-i", kp, "127.0.0.1", "echo plain")
	out, err := exec.Command(sshBin, args...).CombinedOutput()
	if err != nil || string(out) != "plain\n" {
		t.Fatalf("ssh to a server offering resume: %v\n%s", err, out)
	}
}

// A server with ed25519, ECDSA and RSA host keys, known in known_hosts by
// its ECDSA key alone: with auth.KnownHostsAlgorithms ordering the host
// key algorithms (as ssh does, and the tool), the client asks for the
// known type and auth.KnownHostsCallback accepts it; with our default
// order the server presents its ed25519 key, which the check refuses.
func TestInteropHostKeyAlgorithmsFromKnownHosts(t *testing.T) {
	dir := t.TempDir()
	kp := sshtest.KeyGen(t, dir, "ed25519", 0)
	pub, _ := os.ReadFile(kp + ".pub")
	hkDir := t.TempDir()
	ecdsaKey := sshtest.KeyGen(t, hkDir, "ecdsa", 256)
	rsaKey := sshtest.KeyGen(t, hkDir, "rsa", 2048)
	sshd := sshtest.StartSshd(t, string(pub), "HostKey "+ecdsaKey, "HostKey "+rsaKey)
	kh := knownHostsFor(t, dir, sshd.Addr(), loadSigner(t, ecdsaKey).PublicKey())
	files := []string{kh}
	host, port := splitAddr(sshd.Addr())
	dial := func(algos []string) (*rsftp.Client, error) {
		cfg := &rsftp.ClientConfig{
			User:            sshtest.User(t),
			Auth:            []auth.Method{auth.PublicKeySigners(loadSigner(t, kp))},
			HostKeyCallback: auth.KnownHostsCallback(files, auth.StrictYes, false),
		}
		cfg.Transport.HostKeyAlgorithms = algos
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return rsftp.Dial(ctx, "tcp", sshd.Addr(), cfg)
	}

	algos := auth.KnownHostsAlgorithms(files, host, port, transport.DefaultHostKeyAlgorithms)
	if algos[0] != kex.KeyAlgoECDSA256 {
		t.Fatalf("ordered %v, want %s first", algos, kex.KeyAlgoECDSA256)
	}
	c, err := dial(algos)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if a := c.Transport().Algorithms().HostKey; a != kex.KeyAlgoECDSA256 {
		t.Fatalf("host key algorithm %s", a)
	}
	sess, err := c.NewSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if out, err := sess.Output(context.Background(), "echo in"); err != nil || string(out) != "in\n" {
		t.Fatalf("%q %v", out, err)
	}

	_, err = dial(nil)
	var unknown *auth.UnknownHostError
	if !errors.As(err, &unknown) || unknown.Key.Type() != kex.KeyAlgoED25519 || len(unknown.Other) != 1 {
		t.Fatalf("default order: got %v, want the ed25519 key refused as unknown", err)
	}
}
