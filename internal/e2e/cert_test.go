package e2e

// OpenSSH certificates between Debian's OpenSSH and our server (issue 22):
// ssh-keygen makes the CA, the user and host certificates and a KRL;
// Debian's ssh logs in with the certificates and checks our host
// certificate against an @cert-authority line.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/internal/netsim"
	"github.com/rsftp/rsftp/internal/sshtest"
	"github.com/rsftp/rsftp/kex"
)

// lockedLog is a log buffer several goroutines write.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// certLab holds a CA, keys and the certificates ssh-keygen makes.
type certLab struct {
	t   *testing.T
	kg  string
	dir string
}

func (l *certLab) keygen(args ...string) string {
	l.t.Helper()
	out, err := exec.Command(l.kg, args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// key makes a key pair called name.
func (l *certLab) key(name, typ string) string {
	p := filepath.Join(l.dir, name)
	l.keygen("-q", "-t", typ, "-N", "", "-C", name, "-f", p)
	return p
}

// sign has ca sign the public key of key (a copy, so that each
// certificate gets its own file) with the extra ssh-keygen options, and
// returns the certificate's path.
func (l *certLab) sign(ca, key, name string, opts ...string) string {
	l.t.Helper()
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		l.t.Fatal(err)
	}
	p := filepath.Join(l.dir, name)
	if err := os.WriteFile(p+".pub", pub, 0o644); err != nil {
		l.t.Fatal(err)
	}
	args := append([]string{"-q", "-s", ca}, opts...)
	l.keygen(append(args, p+".pub")...)
	return p + "-cert.pub"
}

// certServer runs our server with user certificates trusted through
// trustedCAs (a file; "" for none) and authorized_keys text ak, and the
// host keys given; its Exec runs the forced command in place of the
// client's, as sshd does, and reports the certificate that logged in.
type certServer struct {
	addr  string
	port  int
	log   *lockedLog
	mu    sync.Mutex
	certs []string // key IDs that logged in
}

func startCertServer(t *testing.T, hostKeys []kex.Signer, trustedCAs, ak, krl string) *certServer {
	t.Helper()
	s := &certServer{log: &lockedLog{}}
	akPath := filepath.Join(t.TempDir(), "authorized_keys")
	if err := os.WriteFile(akPath, []byte(ak), 0o600); err != nil {
		t.Fatal(err)
	}
	acfg := auth.ServerConfig{PublicKeyConnCallback: (&auth.AuthorizedKeysFile{Path: akPath}).Authorize}
	if trustedCAs != "" {
		acfg.TrustedUserCAs = &auth.TrustedUserCAs{KeysFile: trustedCAs}
	}
	if krl != "" {
		acfg.RevokedKeys = auth.RevokedKeysFile(krl)
	}
	inner := rsftp.CommandHandler("/bin/sh")
	cfg := &rsftp.ServerConfig{
		HostKeys: hostKeys,
		Auth:     acfg,
		Exec: func(ctx context.Context, ss *rsftp.ServerSession) int {
			if ss.Perms != nil {
				if ss.Perms.ForceCommand != "" {
					ss.Command = ss.Perms.ForceCommand
				}
				if c := ss.Perms.Certificate; c != nil {
					s.mu.Lock()
					s.certs = append(s.certs, c.KeyID)
					s.mu.Unlock()
				}
			}
			return inner(ctx, ss)
		},
		Logger: slog.New(slog.NewTextHandler(s.log, nil)),
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
	t.Cleanup(func() {
		srv.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", s.log.String())
		}
	})
	s.addr = l.Addr().String()
	s.port = l.Addr().(*net.TCPAddr).Port
	return s
}

// waitLog waits (up to 10 s) for the server's log to contain want.
func (s *certServer) waitLog(want string) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(s.log.String(), want) {
			return true
		}
	}
	return false
}

func (s *certServer) lastCert() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.certs) == 0 {
		return ""
	}
	return s.certs[len(s.certs)-1]
}

// runSSH runs Debian's ssh against the server and returns stdout, stderr
// and the exit status.
func runSSH(t *testing.T, args []string, cmd string) (string, string, int) {
	t.Helper()
	c := exec.Command(sshtest.Binary(t, "ssh"), append(args, "127.0.0.1", cmd)...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	case err != nil:
		t.Fatalf("ssh: %v", err)
	}
	return out.String(), errb.String(), 0
}

func loadHostKey(t *testing.T, path string) kex.Signer {
	return loadSigner(t, path)
}

// TestInteropOpenSSHUserCertificates: Debian's ssh logs in to our server
// with certificates ssh-keygen made, and is refused for each reason sshd
// refuses one; force-command replaces the command asked for; a KRL made
// by ssh-keygen -k revokes by serial and by key ID.
func TestInteropOpenSSHUserCertificates(t *testing.T) {
	me := sshtest.User(t)
	lab := &certLab{t: t, kg: sshtest.Binary(t, "ssh-keygen"), dir: t.TempDir()}
	ca := lab.key("ca", "ed25519")
	otherCA := lab.key("other_ca", "ecdsa")
	akCA := lab.key("ak_ca", "rsa")
	keys := map[string]string{"ed25519": lab.key("id_ed25519", "ed25519"), "ecdsa": lab.key("id_ecdsa", "ecdsa"), "rsa": lab.key("id_rsa", "rsa")}

	// The KRL revokes serial 666 and key ID "revoked-id" of ca's
	// certificates.
	spec := filepath.Join(lab.dir, "krl.spec")
	os.WriteFile(spec, []byte("serial: 666\nid: revoked-id\n"), 0o644)
	krl := filepath.Join(lab.dir, "krl")
	lab.keygen("-k", "-f", krl, "-s", ca+".pub", spec)

	hk := lab.key("host", "ed25519")
	akLines := fmt.Sprintf("cert-authority,principals=\"deployers\" %s", mustRead(t, akCA+".pub"))
	srv := startCertServer(t, []kex.Signer{loadHostKey(t, hk)}, ca+".pub", akLines, krl)
	kh := filepath.Join(lab.dir, "known_hosts")
	os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s", srv.port, mustRead(t, hk+".pub"))), 0o644)

	login := func(t *testing.T, key, cert, cmd string) (string, string, int) {
		args := append(sshtest.SSHArgs(kh, srv.port), "-i", key, "-o", "CertificateFile="+cert, "-l", me)
		return runSSH(t, args, cmd)
	}
	for typ, key := range keys {
		t.Run("accepted/"+typ, func(t *testing.T) {
			cert := lab.sign(ca, key, "cert_ok_"+typ, "-I", "ok-"+typ, "-n", me+",other", "-V", "-5m:+1h", "-z", "7")
			out, errs, code := login(t, key, cert, "echo logged-in")
			if code != 0 || out != "logged-in\n" {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
			}
			if got := srv.lastCert(); got != "ok-"+typ {
				t.Errorf("server saw certificate %q", got)
			}
		})
	}
	key := keys["ed25519"]
	t.Run("force-command", func(t *testing.T) {
		cert := lab.sign(ca, key, "cert_forced", "-I", "forced", "-n", me, "-O", "force-command=echo forced-by-the-certificate")
		out, errs, code := login(t, key, cert, "echo asked-by-the-client")
		if code != 0 || out != "forced-by-the-certificate\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
		}
	})
	t.Run("source-address admits", func(t *testing.T) {
		cert := lab.sign(ca, key, "cert_src_ok", "-I", "src-ok", "-n", me, "-O", "source-address=10.0.0.0/8,127.0.0.0/8")
		if out, errs, code := login(t, key, cert, "echo ok"); code != 0 || out != "ok\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
		}
	})
	t.Run("cert-authority line with principals=", func(t *testing.T) {
		cert := lab.sign(akCA, key, "cert_ak", "-I", "via-ak", "-n", "deployers")
		if out, errs, code := login(t, key, cert, "echo ok"); code != 0 || out != "ok\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
		}
	})
	for _, c := range []struct {
		name string
		ca   string
		opts []string
		why  string // in the server's log
	}{
		{"wrong principal", ca, []string{"-I", "wrong-principal", "-n", "x" + me + ",nobody"}, "not a listed principal"},
		{"expired", ca, []string{"-I", "expired", "-n", me, "-V", "20200101:20200102"}, "certificate expired"},
		{"not yet valid", ca, []string{"-I", "future", "-n", me, "-V", "+1d:+2d"}, "not yet valid"},
		{"CA not trusted", otherCA, []string{"-I", "untrusted", "-n", me}, "is not trusted"},
		{"source-address mismatch", ca, []string{"-I", "elsewhere", "-n", me, "-O", "source-address=192.0.2.0/24"}, "not allowed from 127.0.0.1"},
		{"revoked serial", ca, []string{"-I", "by-serial", "-n", me, "-z", "666"}, "revoked"},
		{"revoked key ID", ca, []string{"-I", "revoked-id", "-n", me, "-z", "5"}, "revoked"},
		{"cert-authority line, principal not in principals=", akCA, []string{"-I", "ak-wrong", "-n", me}, "lists none of principals="},
	} {
		t.Run("refused/"+c.name, func(t *testing.T) {
			cert := lab.sign(c.ca, key, "cert_"+strings.ReplaceAll(c.name, " ", "_"), c.opts...)
			out, errs, code := login(t, key, cert, "echo logged-in")
			if code != 255 || out != "" || !strings.Contains(errs, "Permission denied") {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
			}
			// The server logs the failure once it sees the client go.
			if !srv.waitLog(c.why) {
				t.Errorf("the server's log does not say %q", c.why)
			}
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestInteropOpenSSHHostCertificate: our server presents a host
// certificate ssh-keygen -h made beside its host key (as rsftp serve
// --host-cert does), and Debian's ssh, whose known_hosts has only an
// @cert-authority line for the CA, accepts it; a certificate of an
// untrusted CA, an expired one, or one for other host names is refused.
func TestInteropOpenSSHHostCertificate(t *testing.T) {
	me := sshtest.User(t)
	lab := &certLab{t: t, kg: sshtest.Binary(t, "ssh-keygen"), dir: t.TempDir()}
	ca := lab.key("host_ca", "ed25519")
	otherCA := lab.key("other_ca", "ed25519")
	user := lab.key("id_user", "ed25519")
	ak := mustRead(t, user+".pub")
	kh := filepath.Join(lab.dir, "known_hosts")
	os.WriteFile(kh, []byte("@cert-authority * "+mustRead(t, ca+".pub")+"\n"), 0o644)

	for _, hkType := range []string{"ed25519", "ecdsa", "rsa"} {
		for _, c := range []struct {
			name string
			ca   string
			opts []string
			ok   bool
		}{
			{"trusted", ca, []string{"-n", "127.0.0.1,localhost", "-V", "-5m:+1h"}, true},
			{"untrusted CA", otherCA, []string{"-n", "127.0.0.1"}, false},
			{"expired", ca, []string{"-n", "127.0.0.1", "-V", "20200101:20200102"}, false},
			{"other host names", ca, []string{"-n", "server.example"}, false},
		} {
			t.Run(hkType+"/"+c.name, func(t *testing.T) {
				hk := lab.key("host_"+hkType+"_"+strings.ReplaceAll(c.name, " ", "_"), hkType)
				certPath := lab.sign(c.ca, hk, filepath.Base(hk)+"_signed", append([]string{"-h", "-I", "host-" + c.name}, c.opts...)...)
				signer := loadHostKey(t, hk)
				cert, err := kex.ParseCertificate(certBlob(t, certPath))
				if err != nil {
					t.Fatal(err)
				}
				cs, err := kex.NewCertSigner(cert, signer)
				if err != nil {
					t.Fatal(err)
				}
				srv := startCertServer(t, []kex.Signer{signer, cs}, "", ak, "")
				args := append(sshtest.SSHArgs(kh, srv.port), "-i", user, "-l", me)
				out, errs, code := runSSH(t, args, "echo host-ok")
				if c.ok && (code != 0 || out != "host-ok\n") || !c.ok && (code != 255 || !strings.Contains(errs, "Host key verification failed")) {
					t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
				}
			})
		}
	}
}

func certBlob(t *testing.T, path string) []byte {
	t.Helper()
	f := strings.Fields(mustRead(t, path))
	b, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// skSoft is a software security key (sk-ssh-ed25519@openssh.com, or
// sk-ecdsa-sha2-nistp256@openssh.com) signing as PROTOCOL.u2f says, with
// the flags it is told to assert: what the server tests use in place of
// an authenticator.
type skSoft struct {
	ed    ed25519.PrivateKey
	ec    *ecdsa.PrivateKey
	flags byte
	n     uint32
}

func skStr(b []byte) []byte { return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...) }

func (s *skSoft) typ() string {
	if s.ed != nil {
		return kex.KeyAlgoSKED25519
	}
	return kex.KeyAlgoSKECDSA256
}

func (s *skSoft) PublicKey() kex.PublicKey {
	b := skStr([]byte(s.typ()))
	if s.ed != nil {
		b = append(b, skStr(s.ed.Public().(ed25519.PublicKey))...)
	} else {
		pk, _ := s.ec.PublicKey.ECDH()
		b = append(append(b, skStr([]byte("nistp256"))...), skStr(pk.Bytes())...)
	}
	k, err := kex.ParsePublicKey(append(b, skStr([]byte("ssh:"))...))
	if err != nil {
		panic(err)
	}
	return k
}

func (s *skSoft) Algorithms() []string { return []string{s.typ()} }

func (s *skSoft) Sign(_ io.Reader, data []byte, _ string) ([]byte, error) {
	s.n++
	ah, mh := sha256.Sum256([]byte("ssh:")), sha256.Sum256(data)
	signed := append(append(append(ah[:], s.flags), binary.BigEndian.AppendUint32(nil, s.n)...), mh[:]...)
	var raw []byte
	if s.ed != nil {
		raw = ed25519.Sign(s.ed, signed)
	} else {
		d := sha256.Sum256(signed)
		r, ss, err := ecdsa.Sign(rand.Reader, s.ec, d[:])
		if err != nil {
			return nil, err
		}
		mp := func(v *big.Int) []byte {
			b := v.Bytes()
			if len(b) > 0 && b[0]&0x80 != 0 {
				b = append([]byte{0}, b...)
			}
			return skStr(b)
		}
		raw = append(mp(r), mp(ss)...)
	}
	out := append(skStr([]byte(s.typ())), skStr(raw)...)
	return binary.BigEndian.AppendUint32(append(out, s.flags), s.n), nil
}

// TestInteropSKSignaturesWithSshd: Debian's sshd verifies the signatures
// of the software security key our server tests use, and judges their
// flags as our server does, case by case (presence unless
// no-touch-required, verification when verify-required): the test
// authenticator is what OpenSSH expects, so our server's tests with it
// mean something.
func TestInteropSKSignaturesWithSshd(t *testing.T) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, sk := range []*skSoft{{ed: ed}, {ec: ec}} {
		line := kex.MarshalAuthorizedKey(sk.PublicKey())
		for _, c := range []struct {
			opts  string
			flags byte
			ok    bool
		}{
			{"", kex.SKFlagUserPresent, true},
			{"", 0, false},
			{"no-touch-required ", 0, true},
			{"verify-required ", kex.SKFlagUserPresent, false},
			{"verify-required ", kex.SKFlagUserPresent | kex.SKFlagUserVerified, true},
		} {
			t.Run(sk.typ()+"/"+c.opts+strconv.Itoa(int(c.flags)), func(t *testing.T) {
				sshd := sshtest.StartSshd(t, c.opts+line+"\n")
				ourHK := loadSigner(t, sshtest.KeyGen(t, t.TempDir(), "ed25519", 0))
				ours := startCertServer(t, []kex.Signer{ourHK}, "", c.opts+line+"\n", "")
				sk.flags = c.flags
				for _, srv := range []struct {
					name, addr string
					hk         kex.PublicKey
				}{{"sshd", sshd.Addr(), loadSigner(t, sshd.HostKey).PublicKey()}, {"ours", ours.addr, ourHK.PublicKey()}} {
					cfg := clientConfigFor(t, srv.hk, sk, nil)
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					cl, err := rsftp.Dial(ctx, "tcp", srv.addr, cfg)
					cancel()
					if err == nil {
						cl.Close()
					}
					if (err == nil) != c.ok {
						t.Errorf("%s: logged in %v (%v)", srv.name, err == nil, err)
					}
				}
			})
		}
	}
}

// TestResumeRefusedWhenCertificateLapses: a session a certificate opened
// does not resume once the certificate has expired, or been revoked,
// while the connection was away: the resumption's Recheck runs the
// certificate's checks again (issue 22). A certificate still valid
// resumes.
func TestResumeRefusedWhenCertificateLapses(t *testing.T) {
	for _, lapse := range []string{"none", "expired", "revoked"} {
		t.Run(lapse, func(t *testing.T) {
			ca, user := signer(t), signer(t)
			now := time.Now()
			var mu sync.Mutex
			clock, revoked := now, false
			cert := &kex.Certificate{Key: user.PublicKey(), CertType: kex.UserCert, KeyID: "lapsing", Serial: 9,
				ValidPrincipals: []string{"alice"}, ValidAfter: uint64(now.Unix() - 60), ValidBefore: uint64(now.Unix() + 600)}
			if err := cert.SignCert(rand.Reader, ca, ""); err != nil {
				t.Fatal(err)
			}
			cs, err := kex.NewCertSigner(cert, user)
			if err != nil {
				t.Fatal(err)
			}
			r := newRig(t, time.Hour, func(cfg *rsftp.ServerConfig) {
				cfg.Auth = auth.ServerConfig{
					TrustedUserCAs: &auth.TrustedUserCAs{Keys: []kex.PublicKey{ca.PublicKey()}, Now: func() time.Time {
						mu.Lock()
						defer mu.Unlock()
						return clock
					}},
					RevokedKeys: func(k kex.PublicKey) error {
						mu.Lock()
						defer mu.Unlock()
						if c, ok := k.(*kex.Certificate); ok && revoked && c.Serial == 9 {
							return auth.ErrKeyRevoked
						}
						return nil
					},
				}
			}, netsim.WithLatency(time.Millisecond))
			c := r.dial(func(cc *rsftp.ClientConfig) { cc.Auth = []auth.Method{auth.PublicKeySigners(cs)} })
			if out, err := sessionOutput(c, "before\n"); err != nil || out != "before\n" {
				t.Fatalf("%q, %v", out, err)
			}
			mu.Lock()
			switch lapse {
			case "expired":
				clock = now.Add(601 * time.Second)
			case "revoked":
				revoked = true
			}
			mu.Unlock()
			r.net.CutAll(netsim.Reset)
			if lapse == "none" {
				r.waitResumed(1, 15*time.Second)
				if out, err := sessionOutput(c, "after\n"); err != nil || out != "after\n" {
					t.Fatalf("after resuming: %q, %v", out, err)
				}
				return
			}
			done := make(chan error, 1)
			go func() { done <- c.Wait() }()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("the session ended without an error")
				}
			case <-time.After(15 * time.Second):
				t.Fatal("the session is still alive")
			}
			if n := r.clientCount(rsftp.EventResumed); n != 0 {
				t.Errorf("resumed %d times", n)
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			found := false
			for _, e := range r.serverEvents {
				found = found || e.Err != nil && strings.Contains(e.Err.Error(), "no longer authorized")
			}
			if !found {
				t.Error("no server event says the certificate is no longer authorized")
			}
		})
	}
}
