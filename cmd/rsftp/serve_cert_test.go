package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/kex"
)

// serveCert makes a user certificate for key signed by ca, for the
// principals given, valid an hour either side of now; edit changes it
// before it is signed.
func serveCert(t *testing.T, key kex.PublicKey, ca kex.Signer, principals []string, edit func(*kex.Certificate)) *kex.Certificate {
	t.Helper()
	now := uint64(time.Now().Unix())
	c := &kex.Certificate{Key: key, Nonce: []byte("0123456789abcdef"), Serial: 42, CertType: kex.UserCert, KeyID: "test-cert",
		ValidPrincipals: principals, ValidAfter: now - 3600, ValidBefore: now + 3600,
		Extensions: []kex.CertOption{{Name: "permit-pty"}}}
	if edit != nil {
		edit(c)
	}
	if err := c.SignCert(rand.Reader, ca, ""); err != nil {
		t.Fatal(err)
	}
	return c
}

func certKey(t *testing.T, c *kex.Certificate, s kex.Signer) kex.Signer {
	t.Helper()
	cs, err := kex.NewCertSigner(c, s)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func certString(name, v string) kex.CertOption {
	return kex.CertOption{Name: name, Data: append(binary.BigEndian.AppendUint32(nil, uint32(len(v))), v...)}
}

// TestServeTrustedUserCAKeys: rsftp serve with --trusted-user-ca-keys
// admits a certificate of a trusted CA that lists the serving user, and
// refuses, with the reason logged, each thing sshd refuses.
func TestServeTrustedUserCAKeys(t *testing.T) {
	me := currentUser(t)
	dir := t.TempDir()
	ca, other := serveTestKey(t), serveTestKey(t)
	caFile := filepath.Join(dir, "ca.pub")
	os.WriteFile(caFile, []byte(kex.MarshalAuthorizedKey(ca.PublicKey())+" ca\n"), 0o644)
	revoked := filepath.Join(dir, "revoked")
	os.WriteFile(revoked, []byte("# nothing yet\n"), 0o644)
	r := newServeRig(t, "", "--trusted-user-ca-keys", caFile, "--revoked-keys", revoked)
	r.writeKeys(t, "# no keys")
	user := serveTestKey(t)
	now := uint64(time.Now().Unix())
	good := serveCert(t, user.PublicKey(), ca, []string{me}, nil)
	if err := r.sftpLogin(me, certKey(t, good, user)); err != nil {
		t.Fatalf("certificate of the trusted CA: %v", err)
	}
	if !strings.Contains(r.logs.String(), "certificate accepted") || !strings.Contains(r.logs.String(), "key_id=test-cert") {
		t.Errorf("acceptance not logged:\n%s", r.logs.String())
	}
	if err := r.sftpLogin(me, user); err == nil {
		t.Error("the certified key alone logged in")
	}
	for _, c := range []struct {
		name string
		cert *kex.Certificate
		why  string
	}{
		{"wrong principal", serveCert(t, user.PublicKey(), ca, []string{me + "x", "x" + me}, nil), "not a listed principal"},
		{"expired", serveCert(t, user.PublicKey(), ca, []string{me}, func(c *kex.Certificate) { c.ValidBefore = now - 10 }), "expired"},
		{"not yet valid", serveCert(t, user.PublicKey(), ca, []string{me}, func(c *kex.Certificate) { c.ValidAfter = now + 600 }), "not yet valid"},
		{"CA not trusted", serveCert(t, user.PublicKey(), other, []string{me}, nil), "is not trusted"},
		{"force-command not SFTP", serveCert(t, user.PublicKey(), ca, []string{me}, func(c *kex.Certificate) {
			c.CriticalOptions = []kex.CertOption{certString("force-command", "/bin/sh -c id")}
		}), "rsftp serve serves only SFTP"},
		{"source-address", serveCert(t, user.PublicKey(), ca, []string{me}, func(c *kex.Certificate) {
			c.CriticalOptions = []kex.CertOption{certString("source-address", "192.0.2.0/24")}
		}), "not allowed from 127.0.0.1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := r.sftpLogin(me, certKey(t, c.cert, user)); err == nil {
				t.Fatal("logged in")
			}
			if !strings.Contains(r.logs.String(), c.why) {
				t.Errorf("log does not say %q:\n%s", c.why, r.logs.String())
			}
		})
	}
	forced := serveCert(t, user.PublicKey(), ca, []string{me}, func(c *kex.Certificate) {
		c.CriticalOptions = []kex.CertOption{certString("force-command", "internal-sftp"), certString("source-address", "127.0.0.0/8,::1")}
	})
	if err := r.sftpLogin(me, certKey(t, forced, user)); err != nil {
		t.Errorf("force-command internal-sftp from 127/8: %v", err)
	}
	// --revoked-keys, re-read at each login: the certified key, then the
	// CA.
	os.WriteFile(revoked, []byte(kex.MarshalAuthorizedKey(user.PublicKey())+"\n"), 0o644)
	if err := r.sftpLogin(me, certKey(t, good, user)); err == nil {
		t.Error("certificate of a revoked key logged in")
	}
	os.WriteFile(revoked, []byte(kex.MarshalAuthorizedKey(ca.PublicKey())+"\n"), 0o644)
	if err := r.sftpLogin(me, certKey(t, good, user)); err == nil {
		t.Error("certificate of a revoked CA logged in")
	}
	if !strings.Contains(r.logs.String(), "key revoked") {
		t.Errorf("revocation not logged:\n%s", r.logs.String())
	}
}

func TestServeAuthorizedPrincipalsFile(t *testing.T) {
	me := currentUser(t)
	dir := t.TempDir()
	ca := serveTestKey(t)
	caFile := filepath.Join(dir, "ca.pub")
	os.WriteFile(caFile, []byte(kex.MarshalAuthorizedKey(ca.PublicKey())+"\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "principals"), 0o755)
	os.WriteFile(filepath.Join(dir, "principals", me), []byte("sftp-team\n"+`command="/bin/sh" shell-team`+"\n"+`from="192.0.2.0/24" remote-team`+"\n"), 0o644)
	r := newServeRig(t, "", "--trusted-user-ca-keys", caFile, "--authorized-principals-file", filepath.Join(dir, "principals", "%u"))
	user := serveTestKey(t)
	for _, c := range []struct {
		principals []string
		ok         bool
	}{
		{[]string{"sftp-team"}, true},
		{[]string{"other", "sftp-team"}, true},
		{[]string{me}, false}, // with a principals file, the user name is not enough
		{[]string{"shell-team"}, false},
		{[]string{"remote-team"}, false},
	} {
		err := r.sftpLogin(me, certKey(t, serveCert(t, user.PublicKey(), ca, c.principals, nil), user))
		if (err == nil) != c.ok {
			t.Errorf("principals %v: logged in %v (%v)", c.principals, err == nil, err)
		}
	}
}

// TestServeCertAuthorityLine: a cert-authority line of --authorized-keys
// admits its CA's certificates, with principals=.
func TestServeCertAuthorityLine(t *testing.T) {
	me := currentUser(t)
	r := newServeRig(t, "")
	ca := serveTestKey(t)
	user := serveTestKey(t)
	r.writeKeys(t, `cert-authority,principals="deployers,ops" `+kex.MarshalAuthorizedKey(ca.PublicKey()))
	if err := r.sftpLogin(me, certKey(t, serveCert(t, user.PublicKey(), ca, []string{"ops"}, nil), user)); err != nil {
		t.Errorf("principal ops: %v", err)
	}
	if err := r.sftpLogin(me, certKey(t, serveCert(t, user.PublicKey(), ca, []string{me}, nil), user)); err == nil {
		t.Error("the user name logged in although principals= does not list it")
	}
	if err := r.sftpLogin(me, certKey(t, serveCert(t, user.PublicKey(), ca, []string{"x,ops"}, nil), user)); err == nil {
		t.Error(`principal "x,ops" logged in`)
	}
	r.writeKeys(t, `cert-authority `+kex.MarshalAuthorizedKey(ca.PublicKey()))
	if err := r.sftpLogin(me, certKey(t, serveCert(t, user.PublicKey(), ca, []string{me}, func(c *kex.Certificate) {
		c.CriticalOptions = []kex.CertOption{certString("force-command", "/usr/bin/false")}
	}), user)); err == nil {
		t.Error("force-command /usr/bin/false through a cert-authority line logged in")
	}
}

func TestServeCertFlags(t *testing.T) {
	var help bytes.Buffer
	parseServeFlags([]string{"-h"}, &help)
	for _, want := range []string{"--trusted-user-ca-keys", "--authorized-principals-file", "%u", "--revoked-keys", "KRL", "--host-cert", "@cert-authority", "cert-authority lines"} {
		if !strings.Contains(help.String(), strings.TrimPrefix(want, "-")) {
			t.Errorf("-h does not mention %s:\n%s", want, help.String())
		}
	}
	for _, args := range [][]string{
		{"--authorized-principals-file", "/p/%u"},
		{"--trusted-user-ca-keys", "/ca", "--authorized-principals-file", "/p/%h"},
	} {
		if _, err := parseServeFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if _, err := parseServeFlags([]string{"--trusted-user-ca-keys", "/ca", "--authorized-principals-file", "/p/%u%%"}, &bytes.Buffer{}); err != nil {
		t.Error(err)
	}
}

// TestServeHostCert: --host-cert presents the host certificate beside the
// host key; x/crypto's client, trusting the CA through a CertChecker,
// accepts the server by its certificate. A user certificate, or one of
// another key, is refused at startup.
func TestServeHostCert(t *testing.T) {
	dir := t.TempDir()
	hostKey, ca := serveTestKey(t), serveTestKey(t)
	now := uint64(time.Now().Unix())
	hc := &kex.Certificate{Key: hostKey.PublicKey(), CertType: kex.HostCert, KeyID: "host", ValidPrincipals: []string{"127.0.0.1", "localhost"},
		ValidAfter: now - 60, ValidBefore: now + 3600}
	if err := hc.SignCert(rand.Reader, ca, ""); err != nil {
		t.Fatal(err)
	}
	certPath := filepath.Join(dir, "host-cert.pub")
	os.WriteFile(certPath, []byte(kex.MarshalAuthorizedKey(hc)+" host\n"), 0o644)
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	ak := filepath.Join(dir, "ak")
	_, userPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	user, err := kex.NewSigner(userPriv)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(ak, []byte(kex.MarshalAuthorizedKey(user.PublicKey())+"\n"), 0o600)
	o, err := parseServeFlags([]string{"--root", root, "--authorized-keys", ak, "--host-cert", certPath}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	keys, err := o.hostKeys(hostKey, log)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[1].PublicKey().Type() != kex.CertAlgoED25519 {
		t.Fatalf("host keys %v", keys)
	}
	cfg := o.serveConfig(hostKey, "u", log)
	cfg.HostKeys = keys
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

	xca, _ := ssh.ParsePublicKey(ca.PublicKey().Marshal())
	xuser, err := ssh.NewSignerFromSigner(userPriv)
	if err != nil {
		t.Fatal(err)
	}
	var sawCert bool
	checker := &ssh.CertChecker{IsHostAuthority: func(k ssh.PublicKey, addr string) bool {
		sawCert = bytes.Equal(k.Marshal(), xca.Marshal())
		return sawCert
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, "127.0.0.1:22", &ssh.ClientConfig{User: "u", Auth: []ssh.AuthMethod{ssh.PublicKeys(xuser)},
		HostKeyCallback: checker.CheckHostKey, HostKeyAlgorithms: []string{ssh.CertAlgoED25519v01}})
	if err != nil {
		t.Fatalf("x/crypto client with a host CertChecker: %v", err)
	}
	ssh.NewClient(c, chans, reqs).Close()
	if !sawCert {
		t.Error("the client never saw the host certificate")
	}

	// Refused at startup: a user certificate, or one for another key.
	uc := serveCert(t, hostKey.PublicKey(), ca, []string{"x"}, nil)
	os.WriteFile(certPath, []byte(kex.MarshalAuthorizedKey(uc)+"\n"), 0o644)
	if _, err := o.hostKeys(hostKey, log); err == nil || !strings.Contains(err.Error(), "not a host certificate") {
		t.Errorf("user certificate as --host-cert: %v", err)
	}
	os.WriteFile(certPath, []byte(kex.MarshalAuthorizedKey(hc)+"\n"), 0o644)
	if _, err := o.hostKeys(serveTestKey(t), log); err == nil || !strings.Contains(err.Error(), "another key") {
		t.Errorf("certificate of another host key: %v", err)
	}
	os.WriteFile(certPath, []byte("junk\n"), 0o644)
	if _, err := o.hostKeys(hostKey, log); err == nil {
		t.Error("junk as --host-cert")
	}
}

// TestServeCertRecheck: the Recheck of a certificate login (what a
// resumption calls) reads --trusted-user-ca-keys again and checks the
// certificate's validity and source-address for the new address.
func TestServeCertRecheck(t *testing.T) {
	dir := t.TempDir()
	ca := serveTestKey(t)
	caFile := filepath.Join(dir, "ca.pub")
	os.WriteFile(caFile, []byte(kex.MarshalAuthorizedKey(ca.PublicKey())+"\n"), 0o644)
	o, err := parseServeFlags([]string{"--trusted-user-ca-keys", caFile}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	user := serveTestKey(t)
	cert := serveCert(t, user.PublicKey(), ca, []string{"me"}, func(c *kex.Certificate) {
		c.CriticalOptions = []kex.CertOption{certString("source-address", "127.0.0.0/8")}
	})
	cb := o.authConfig("me", slog.New(slog.DiscardHandler)).PublicKeyConnCallback
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}
	p, err := cb(auth.ConnMetadata{User: "me", RemoteAddr: local}, cert)
	if err != nil {
		t.Fatal(err)
	}
	if p.Identity != kex.FingerprintSHA256(user.PublicKey()) || p.Certificate == nil {
		t.Errorf("identity %s, certificate %v", p.Identity, p.Certificate)
	}
	if err := p.Recheck(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 1}); err != nil {
		t.Fatalf("unchanged: %v", err)
	}
	if err := p.Recheck(&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}); err == nil {
		t.Error("Recheck from outside source-address passed")
	}
	os.WriteFile(caFile, []byte("\n"), 0o644)
	if err := p.Recheck(local); err == nil {
		t.Error("Recheck after the CA left --trusted-user-ca-keys passed")
	}
	// An expired certificate is refused at once (Recheck runs the same
	// check; auth's TestServeCertRecheck moves the clock).
	os.WriteFile(caFile, []byte(kex.MarshalAuthorizedKey(ca.PublicKey())+"\n"), 0o644)
	expired := serveCert(t, user.PublicKey(), ca, []string{"me"}, func(c *kex.Certificate) { c.ValidBefore = c.ValidAfter + 1 })
	if _, err := cb(auth.ConnMetadata{User: "me", RemoteAddr: local}, expired); err == nil || !errors.Is(err, kex.ErrCertExpired) {
		t.Errorf("expired: %v", err)
	}
}
