package main

// The tool as a client of certificates and security keys (issue 22):
// user certificates beside -i keys, from CertificateFile, the default
// identities and ssh-agent; security keys through an agent; host
// certificates checked against @cert-authority lines, @revoked lines and
// RevokedHostKeys, against rsftp serve and Debian's sshd.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/internal/agenttest"
	"github.com/rsftp/rsftp/internal/sshtest"
	"github.com/rsftp/rsftp/kex"
)

// ccLab makes keys and certificates with ssh-keygen in a short
// directory (agent sockets live there too).
type ccLab struct {
	t   *testing.T
	kg  string
	dir string
}

func newCCLab(t *testing.T) *ccLab {
	dir, err := os.MkdirTemp("", "rsftp-cc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return &ccLab{t: t, kg: sshtest.Binary(t, "ssh-keygen"), dir: dir}
}

func (l *ccLab) run(args ...string) {
	l.t.Helper()
	if out, err := exec.Command(l.kg, args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
	}
}

// key makes a key pair at dir/name (passphrase "" for none).
func (l *ccLab) key(name, typ, pass string) string {
	l.t.Helper()
	p := filepath.Join(l.dir, name)
	os.MkdirAll(filepath.Dir(p), 0o700)
	l.run("-q", "-t", typ, "-N", pass, "-C", name, "-f", p)
	return p
}

// sign has ca sign key.pub (ssh-keygen writes key-cert.pub) and returns
// the certificate's path; with to set, the certificate is moved there.
func (l *ccLab) sign(ca, key, to string, opts ...string) string {
	l.t.Helper()
	l.run(append(append([]string{"-q", "-s", ca}, opts...), key+".pub")...)
	p := key + "-cert.pub"
	if to != "" {
		os.MkdirAll(filepath.Dir(to), 0o700)
		if err := os.Rename(p, to); err != nil {
			l.t.Fatal(err)
		}
		p = to
	}
	return p
}

func (l *ccLab) read(p string) string {
	l.t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		l.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// ccRun runs the tool with HOME set to home (a fresh one if "") and no
// SSH_AUTH_SOCK.
func ccRun(t *testing.T, home string, args ...string) e2eResult {
	t.Helper()
	cmd := exec.Command(e2eTool(t), args...)
	cmd.Env = e2eEnv(t)
	if home != "" {
		cmd.Env = append(cmd.Env, "HOME="+home)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running rsftp: %v", err)
	}
	return e2eResult{out.String(), errb.String(), code}
}

// ccWaitLog waits for the server's log to say want.
func ccWaitLog(log func() string, want string) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(log(), want) {
			return true
		}
	}
	return false
}

// TestE2EClientUserCertificates: the tool logs in to rsftp serve, which
// trusts the user CA and no key, with a certificate found as ssh finds
// it: key-cert.pub beside -i key; CertificateFile (-o, or ssh_config with
// %-tokens) for a key that has none beside it; beside a default identity
// (~/.ssh/id_ed25519-cert.pub); held by ssh-agent with its key (the key
// file gone); and beside an encrypted key whose plain key the agent holds
// (signed by the agent, no passphrase asked, BatchMode on). An RSA
// certificate logs in too. With CertificateFile set, the certificate
// beside -i is not read, as in ssh.
func TestE2EClientUserCertificates(t *testing.T) {
	l := newCCLab(t)
	me := sshtest.User(t) // rsftp serve admits its own user only
	ca := l.key("user_ca", "ed25519", "")
	hk := l.key("host", "ed25519", "")
	root := filepath.Join(l.dir, "root")
	os.Mkdir(root, 0o755)
	os.WriteFile(filepath.Join(root, "hello.txt"), []byte("hello\n"), 0o644)
	port, serveLog := e2eServeCert(t, "--root", root, "--host-key", hk, "--trusted-user-ca-keys", ca+".pub", "--hold", "0")
	kh := filepath.Join(l.dir, "known_hosts")
	os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s\n", port, l.read(hk+".pub"))), 0o600)

	beside := l.key("id_beside", "ed25519", "")
	l.sign(ca, beside, "", "-I", "beside", "-n", me, "-V", "-5m:+1h")
	rsaKey := l.key("id_rsa_beside", "rsa", "")
	l.sign(ca, rsaKey, "", "-I", "rsa-beside", "-n", me)
	lone := l.key("id_lone", "ecdsa", "")
	l.sign(ca, lone, filepath.Join(l.dir, "certs", me+"-lone.cert"), "-I", "from-certificatefile", "-n", me)
	home := filepath.Join(l.dir, "home")
	def := l.key("home/.ssh/id_ed25519", "ed25519", "")
	l.sign(ca, def, "", "-I", "default-identity", "-n", me)
	enc := l.key("id_encrypted", "ed25519", "a passphrase")
	l.sign(ca, enc, "", "-I", "encrypted-via-agent", "-n", me)
	conf := filepath.Join(l.dir, "config")
	os.WriteFile(conf, []byte(fmt.Sprintf("Host *\n  IdentityFile %s\n  CertificateFile %s/certs/%%r-lone.cert\n", lone, l.dir)), 0o600)

	sock, stop := ccOpenSSHAgent(t, l.dir)
	defer stop()
	inAgent := l.key("id_agent", "ed25519", "")
	l.sign(ca, inAgent, "", "-I", "agent-held", "-n", me)
	if out, err := exec.Command(sshtest.Binary(t, "ssh-add"), "-q", inAgent).CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v\n%s", err, out)
	}
	encPlain := ccDecrypt(t, enc, "a passphrase")
	a, err := auth.DialAgent(t.Context(), sock)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Add(encPlain, "the encrypted key, decrypted"); err != nil {
		t.Fatal(err)
	}
	a.Close()
	for _, p := range []string{inAgent, inAgent + ".pub", inAgent + "-cert.pub"} {
		os.Remove(p)
	}

	base := []string{"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + kh,
		"-o", "User=" + me, "-P", strconv.Itoa(port)}
	noAgent := []string{"-o", "IdentityAgent=none"}
	for _, c := range []struct {
		name  string
		home  string
		args  []string
		keyID string // "" if the login must fail
		says  string // in stderr when it fails
	}{
		{"-i with -cert.pub beside", "", append(noAgent, "-i", beside), "beside", ""},
		{"RSA certificate", "", append(noAgent, "-i", rsaKey), "rsa-beside", ""},
		{"-i without a certificate", "", append(noAgent, "-i", lone), "", "Permission denied"},
		{"CertificateFile with -o and %r", "", append(noAgent, "-i", lone, "-o", "CertificateFile="+l.dir+"/certs/%r-lone.cert"), "from-certificatefile", ""},
		{"CertificateFile in ssh_config", "", append(noAgent, "-F", conf), "from-certificatefile", ""},
		{"CertificateFile hides the one beside -i", "", append(noAgent, "-i", beside, "-o", "CertificateFile="+l.dir+"/certs/"+me+"-lone.cert"),
			"", "no private key for it"},
		{"default identity", home, noAgent, "default-identity", ""},
		{"agent", "", []string{"-o", "IdentityAgent=" + sock}, "agent-held", ""},
		{"encrypted key signed by the agent", "", []string{"-o", "IdentityAgent=" + sock, "-o", "IdentitiesOnly=yes", "-i", enc}, "encrypted-via-agent", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			local := filepath.Join(t.TempDir(), "got.txt")
			args := append(append(append([]string{"get", "-F", "none"}, base...), c.args...), "127.0.0.1:hello.txt", local)
			if slicesContains(c.args, "-F") {
				args = append(append(append([]string{"get"}, base...), c.args...), "127.0.0.1:hello.txt", local)
			}
			r := ccRun(t, c.home, args...)
			if c.keyID == "" {
				if r.code == 0 || !strings.Contains(r.stderr, c.says) {
					t.Fatalf("exit %d, stderr %q; want a failure saying %q", r.code, r.stderr, c.says)
				}
				return
			}
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if got, _ := os.ReadFile(local); string(got) != "hello\n" {
				t.Fatalf("downloaded %q", got)
			}
			if !ccWaitLog(serveLog, fmt.Sprintf("key_id=%s", c.keyID)) {
				t.Errorf("the server did not log certificate %q", c.keyID)
			}
		})
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// ccOpenSSHAgent runs OpenSSH's ssh-agent on a socket in dir; SSH_AUTH_SOCK
// is set for this process's ssh-add.
func ccOpenSSHAgent(t *testing.T, dir string) (string, func()) {
	t.Helper()
	sock := filepath.Join(dir, "agent.sock")
	cmd := exec.Command(sshtest.Binary(t, "ssh-agent"), "-D", "-a", sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if a, err := auth.DialAgent(t.Context(), sock); err == nil {
			a.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatal("ssh-agent did not start")
		}
	}
	t.Setenv("SSH_AUTH_SOCK", sock)
	return sock, stop
}

// ccDecrypt reads an encrypted private key.
func ccDecrypt(t *testing.T, path, pass string) ed25519.PrivateKey {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := auth.ParsePrivateKey(data, []byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	return k.(ed25519.PrivateKey)
}

// TestE2EClientSecurityKeysThroughAgent: security keys held by an agent
// (a software authenticator behind the agent protocol: no hardware) log
// the tool in to rsftp serve and to Debian's sshd, by authorized_keys and
// by a certificate; a signature without user presence is refused by both.
func TestE2EClientSecurityKeysThroughAgent(t *testing.T) {
	l := newCCLab(t)
	ca := l.key("user_ca", "ed25519", "")
	caSigner := ccSigner(t, ca)
	me := sshtest.User(t)
	skEd, err := agenttest.NewSecurityKey(kex.KeyAlgoSKED25519)
	if err != nil {
		t.Fatal(err)
	}
	skEC, err := agenttest.NewSecurityKey(kex.KeyAlgoSKECDSA256)
	if err != nil {
		t.Fatal(err)
	}
	now := uint64(time.Now().Unix())
	cert := &kex.Certificate{Key: skEC.PublicKey(), CertType: kex.UserCert, KeyID: "sk-certificate", Serial: 5,
		ValidPrincipals: []string{me}, ValidAfter: now - 300, ValidBefore: now + 3600}
	if err := cert.SignCert(rand.Reader, caSigner, ""); err != nil {
		t.Fatal(err)
	}
	certSigner, err := kex.NewCertSigner(cert, skEC)
	if err != nil {
		t.Fatal(err)
	}
	edAgent, ecAgent := agenttest.New(), agenttest.New()
	edAgent.Add(skEd, "sk ed25519")
	ecAgent.Add(certSigner, "sk ecdsa certificate")
	edSock, stopEd, err := edAgent.Listen(filepath.Join(l.dir))
	if err != nil {
		t.Fatal(err)
	}
	defer stopEd()
	ecDir := filepath.Join(l.dir, "ec")
	os.Mkdir(ecDir, 0o700)
	ecSock, stopEC, err := ecAgent.Listen(ecDir)
	if err != nil {
		t.Fatal(err)
	}
	defer stopEC()
	ak := kex.MarshalAuthorizedKey(skEd.PublicKey()) + "\n"
	akFile := filepath.Join(l.dir, "authorized_keys")
	os.WriteFile(akFile, []byte(ak), 0o600)

	// Our server, and Debian's sshd with the same authorized_keys and CA.
	root := filepath.Join(l.dir, "root")
	os.Mkdir(root, 0o755)
	os.WriteFile(filepath.Join(root, "hello.txt"), []byte("hello\n"), 0o644)
	hk := l.key("host", "ed25519", "")
	port, _ := e2eServeCert(t, "--root", root, "--host-key", hk, "--authorized-keys", akFile, "--trusted-user-ca-keys", ca+".pub", "--hold", "0")
	sshd := sshtest.StartSshd(t, ak, "TrustedUserCAKeys "+ca+".pub")
	kh := filepath.Join(l.dir, "known_hosts")
	os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s\n[127.0.0.1]:%d %s\n", port, l.read(hk+".pub"), sshd.Port, l.read(sshd.HostKey+".pub"))), 0o600)

	for _, srv := range []struct {
		name   string
		port   int
		remote string
	}{{"serve", port, "hello.txt"}, {"sshd", sshd.Port, filepath.Join(root, "hello.txt")}} {
		for _, c := range []struct {
			name  string
			sock  string
			key   *agenttest.SecurityKey
			flags byte
			ok    bool
		}{
			{"sk-ssh-ed25519", edSock, skEd, kex.SKFlagUserPresent, true},
			{"sk-ecdsa certificate", ecSock, skEC, kex.SKFlagUserPresent, true},
			{"sk-ssh-ed25519 untouched", edSock, skEd, 0, false},
		} {
			t.Run(srv.name+"/"+c.name, func(t *testing.T) {
				c.key.SetFlags(c.flags)
				before := c.key.Signatures()
				local := filepath.Join(t.TempDir(), "got.txt")
				r := ccRun(t, "", "get", "-F", "none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
					"-o", "UserKnownHostsFile="+kh, "-o", "IdentityAgent="+c.sock, "-o", "User="+me,
					"-P", strconv.Itoa(srv.port), "127.0.0.1:"+srv.remote, local)
				if c.ok != (r.code == 0) {
					t.Fatalf("exit %d: %s", r.code, r.stderr)
				}
				if c.key.Signatures() == before {
					t.Error("the security key did not sign")
				}
				if c.ok {
					if got, _ := os.ReadFile(local); string(got) != "hello\n" {
						t.Fatalf("downloaded %q", got)
					}
				}
			})
		}
	}
}

func ccSigner(t *testing.T, path string) kex.Signer {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := auth.ParsePrivateKey(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := kex.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestE2EClientHostCertificates: the tool trusts rsftp serve's and
// Debian's sshd's host certificates through @cert-authority lines alone
// (patterns, hashed names, HostKeyAlias), and refuses one that is
// expired, for another name, of an untrusted CA, of a CA a negated
// pattern leaves out, revoked by @revoked (its key or its CA) or by
// RevokedHostKeys (a KRL from ssh-keygen -k, or a key list). A
// certificate of a trusted CA that fails its checks is warned about and
// the plain key, if known_hosts has it, still lets the connection in, as
// with ssh.
func TestE2EClientHostCertificates(t *testing.T) {
	l := newCCLab(t)
	hostCA, otherCA := l.key("host_ca", "ed25519", ""), l.key("other_ca", "ecdsa", "")
	user := l.key("id_user", "ed25519", "")
	me := sshtest.User(t)
	akFile := filepath.Join(l.dir, "authorized_keys")
	os.WriteFile(akFile, []byte(l.read(user+".pub")+"\n"), 0o600)
	root := filepath.Join(l.dir, "root")
	os.Mkdir(root, 0o755)
	os.WriteFile(filepath.Join(root, "hello.txt"), []byte("hello\n"), 0o644)
	caLine := func(hosts, ca string) string { return "@cert-authority " + hosts + " " + l.read(ca+".pub") + "\n" }

	// One host key per server, certificates made for each case.
	type hostCase struct {
		name    string
		ca      string
		opts    []string
		kh      func(hk, port string) string // the known_hosts text
		extra   []string                     // tool options
		ok      bool
		warning string // in stderr
	}
	spec := filepath.Join(l.dir, "krl.spec")
	os.WriteFile(spec, []byte("serial: 666\n"), 0o644)
	krl := filepath.Join(l.dir, "krl")
	l.run("-k", "-f", krl, "-s", hostCA+".pub", spec)
	valid := []string{"-n", "127.0.0.1,alias.example", "-V", "-5m:+1h", "-z", "1"}
	cases := []hostCase{
		{"trusted", hostCA, valid, func(hk, port string) string { return caLine("*", hostCA) }, nil, true, ""},
		{"host and port pattern", hostCA, valid, func(hk, port string) string { return caLine("[127.0.0.1]:"+port, hostCA) }, nil, true, ""},
		{"hashed", hostCA, valid, func(hk, port string) string {
			p, _ := strconv.Atoi(port)
			return caLine(auth.HashHostname(auth.KnownHostName("127.0.0.1", p), nil), hostCA)
		}, nil, true, ""},
		{"HostKeyAlias", hostCA, valid, func(hk, port string) string { return caLine("alias.example", hostCA) },
			[]string{"-o", "HostKeyAlias=alias.example"}, true, ""},
		{"expired", hostCA, []string{"-n", "127.0.0.1", "-V", "20200101:20200102"}, func(hk, port string) string { return caLine("*", hostCA) }, nil, false, "expired"},
		{"other name", hostCA, []string{"-n", "server.example"}, func(hk, port string) string { return caLine("*", hostCA) }, nil, false, "not a listed principal"},
		{"untrusted CA", otherCA, valid, func(hk, port string) string { return caLine("*", hostCA) }, nil, false, ""},
		{"negated", hostCA, valid, func(hk, port string) string { return caLine("*,!*127.0.0.1*", hostCA) }, nil, false, ""},
		{"@revoked host key", hostCA, valid, func(hk, port string) string {
			return caLine("*", hostCA) + "@revoked * " + l.read(hk+".pub") + "\n"
		}, nil, false, ""},
		{"@revoked CA", hostCA, valid, func(hk, port string) string {
			return caLine("*", hostCA) + "@revoked * " + l.read(hostCA+".pub") + "\n"
		}, nil, false, ""},
		{"KRL", hostCA, []string{"-n", "127.0.0.1", "-z", "666"}, func(hk, port string) string { return caLine("*", hostCA) },
			[]string{"-o", "RevokedHostKeys=" + krl}, false, ""},
		{"KRL, not revoked", hostCA, valid, func(hk, port string) string { return caLine("*", hostCA) },
			[]string{"-o", "RevokedHostKeys=" + krl}, true, ""},
		{"key list", hostCA, valid, func(hk, port string) string { return caLine("*", hostCA) },
			[]string{"-o", "RevokedHostKeys=" + hostCA + ".pub"}, false, ""},
		{"expired, plain key known", hostCA, []string{"-n", "127.0.0.1", "-V", "20200101:20200102"}, func(hk, port string) string {
			return caLine("*", hostCA) + "[127.0.0.1]:" + port + " " + l.read(hk+".pub") + "\n"
		}, nil, true, "not accepted"},
	}
	for _, server := range []string{"serve", "sshd"} {
		for i, c := range cases {
			if server == "sshd" && !slicesContains([]string{"trusted", "expired", "KRL", "@revoked CA", "other name"}, c.name) {
				continue
			}
			t.Run(server+"/"+c.name, func(t *testing.T) {
				// An ECDSA host key: sshd also has its own ed25519
				// key, which has no certificate.
				hk := l.key(fmt.Sprintf("hk_%s_%d", server, i), "ecdsa", "")
				l.sign(c.ca, hk, "", append([]string{"-h", "-I", "host-" + c.name}, c.opts...)...)
				var port int
				remote := "hello.txt"
				if server == "serve" {
					port, _ = e2eServeCert(t, "--root", root, "--host-key", hk, "--host-cert", hk+"-cert.pub",
						"--authorized-keys", akFile, "--hold", "0")
				} else {
					sshd := sshtest.StartSshd(t, l.read(user+".pub")+"\n", "HostKey "+hk, "HostCertificate "+hk+"-cert.pub")
					port, remote = sshd.Port, filepath.Join(root, "hello.txt")
				}
				kh := filepath.Join(t.TempDir(), "known_hosts")
				os.WriteFile(kh, []byte(c.kh(hk, strconv.Itoa(port))), 0o600)
				local := filepath.Join(t.TempDir(), "got.txt")
				args := append([]string{"get", "-F", "none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
					"-o", "UserKnownHostsFile=" + kh, "-o", "GlobalKnownHostsFile=none", "-o", "IdentityAgent=none",
					"-i", user, "-o", "User=" + me, "-P", strconv.Itoa(port)}, c.extra...)
				r := ccRun(t, "", append(args, "127.0.0.1:"+remote, local)...)
				switch {
				case c.ok && r.code != 0:
					t.Fatalf("exit %d: %s", r.code, r.stderr)
				case !c.ok && (r.code == 0 || !strings.Contains(r.stderr, "Host key verification failed")):
					t.Fatalf("exit %d, stderr %q; want a host key verification failure", r.code, r.stderr)
				}
				if c.warning != "" && !strings.Contains(r.stderr, c.warning) {
					t.Errorf("stderr %q does not say %q", r.stderr, c.warning)
				}
				if c.ok {
					if got, _ := os.ReadFile(local); string(got) != "hello\n" {
						t.Fatalf("downloaded %q", got)
					}
				}
			})
		}
	}
}
