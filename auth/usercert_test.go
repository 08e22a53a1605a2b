package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
)

// certFor makes a user certificate for key signed by ca: principals
// alice and ops, valid from an hour ago for an hour, permit-pty and
// permit-port-forwarding; edit changes it before it is signed.
func certFor(t testing.TB, key kex.PublicKey, ca kex.Signer, edit func(*kex.Certificate)) *kex.Certificate {
	t.Helper()
	now := uint64(time.Now().Unix())
	c := &kex.Certificate{
		Key: key, Nonce: []byte("nonce-nonce-nonce"), Serial: 11, CertType: kex.UserCert, KeyID: "alice@corp",
		ValidPrincipals: []string{"alice", "ops"}, ValidAfter: now - 3600, ValidBefore: now + 3600,
		Extensions: []kex.CertOption{{Name: "permit-port-forwarding"}, {Name: "permit-pty"}},
	}
	if edit != nil {
		edit(c)
	}
	if err := c.SignCert(rand.Reader, ca, ""); err != nil {
		t.Fatal(err)
	}
	// What the server sees: the certificate as parsed from the wire.
	p, err := kex.ParseCertificate(c.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func certSignerFor(t testing.TB, c *kex.Certificate, s kex.Signer) kex.Signer {
	t.Helper()
	cs, err := kex.NewCertSigner(c, s)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func stringOpt(v string) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(len(v))) // followed by v
}

func critString(name, v string) kex.CertOption {
	return kex.CertOption{Name: name, Data: append(stringOpt(v), v...)}
}

// loginWith runs Serve with cfg and the client's signer logging in as
// user; it returns Serve's result (the error says why on failure).
func loginWith(t *testing.T, cfg *ServerConfig, user string, s kex.Signer) serveResult {
	t.Helper()
	cc, sc := connPair(t)
	res := startServe(t, sc, cfg)
	err := authenticate(cc, &ClientConfig{User: user, Methods: []Method{PublicKeySigners(s)}})
	if err != nil {
		t.Logf("client: %v", err)
		cc.Abort()
	}
	return waitServe(t, res)
}

func TestServeTrustedUserCA(t *testing.T) {
	ca := mustSigner(t, newEd25519(t))
	user := mustSigner(t, userKeys(t)["ecdsa-p256"])
	now := uint64(time.Now().Unix())
	good := certFor(t, user.PublicKey(), ca, nil)
	cfg := &ServerConfig{TrustedUserCAs: &TrustedUserCAs{Keys: []kex.PublicKey{ca.PublicKey()}}}

	r := loginWith(t, cfg, "alice", certSignerFor(t, good, user))
	if r.err != nil {
		t.Fatal(r.err)
	}
	p := r.perms
	if p.Certificate == nil || p.Certificate.KeyID != "alice@corp" || p.Identity != kex.FingerprintSHA256(user.PublicKey()) {
		t.Errorf("permissions: certificate %v, identity %s", p.Certificate, p.Identity)
	}
	if ko := p.KeyOptions; ko == nil || !ko.PTY || !ko.PortForwarding || ko.AgentForwarding || ko.X11Forwarding || ko.UserRC {
		t.Errorf("key options from the extensions: %+v", p.KeyOptions)
	}
	if p.Recheck == nil || p.Recheck(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}) != nil {
		t.Error("Recheck fails at once")
	}

	otherCA := mustSigner(t, newEd25519(t))
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecdsaCA := mustSigner(t, p384)
	for _, c := range []struct {
		name, user string
		cert       *kex.Certificate
		cfg        func(*ServerConfig)
		why        string
	}{
		{"wrong principal", "bob", good, nil, "not a listed principal"},
		{"expired", "alice", certFor(t, user.PublicKey(), ca, func(c *kex.Certificate) { c.ValidBefore = now - 60 }), nil, "certificate expired"},
		{"not yet valid", "alice", certFor(t, user.PublicKey(), ca, func(c *kex.Certificate) { c.ValidAfter = now + 3600 }), nil, "not yet valid"},
		{"CA not trusted", "alice", certFor(t, user.PublicKey(), otherCA, nil), nil, "is not trusted"},
		{"no principals", "alice", certFor(t, user.PublicKey(), ca, func(c *kex.Certificate) { c.ValidPrincipals = nil }), nil, "lacks principal list"},
		{"source-address", "alice", certFor(t, user.PublicKey(), ca, func(c *kex.Certificate) {
			c.CriticalOptions = []kex.CertOption{critString("source-address", "10.0.0.0/8,192.168.0.0/16")}
		}), nil, "not allowed from 127.0.0.1"},
		{"unknown critical option", "alice", certFor(t, user.PublicKey(), ca, func(c *kex.Certificate) {
			c.CriticalOptions = []kex.CertOption{{Name: "only-on-tuesdays@example.com"}}
		}), nil, "not supported"},
		{"host certificate", "alice", certFor(t, user.PublicKey(), ca, func(c *kex.Certificate) { c.CertType = kex.HostCert }), nil, "not a user certificate"},
		{"CA algorithm not allowed", "alice", certFor(t, user.PublicKey(), ecdsaCA, nil), func(c *ServerConfig) {
			c.TrustedUserCAs = &TrustedUserCAs{Keys: []kex.PublicKey{ecdsaCA.PublicKey()}}
			c.CASignatureAlgorithms = []string{kex.KeyAlgoED25519}
		}, "signature algorithm \"ecdsa-sha2-nistp384\" not allowed"},
		{"revoked", "alice", good, func(c *ServerConfig) {
			c.RevokedKeys = func(k kex.PublicKey) error {
				if cert, ok := k.(*kex.Certificate); ok && cert.Serial == 11 {
					return ErrKeyRevoked
				}
				return nil
			}
		}, "key revoked"},
		{"certificate algorithms not accepted", "alice", good, func(c *ServerConfig) {
			c.AllowedSigAlgs = []string{kex.KeyAlgoECDSA256}
		}, "not accepted"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := &ServerConfig{TrustedUserCAs: &TrustedUserCAs{Keys: []kex.PublicKey{ca.PublicKey()}}}
			if c.cfg != nil {
				c.cfg(cfg)
			}
			r := loginWith(t, cfg, c.user, certSignerFor(t, c.cert, user))
			if r.err == nil {
				t.Fatal("logged in")
			}
			if !strings.Contains(r.err.Error(), c.why) {
				t.Errorf("Serve's error does not say %q: %v", c.why, r.err)
			}
		})
	}
	// The plain key alone is not admitted by TrustedUserCAs.
	if r := loginWith(t, cfg, "alice", user); r.err == nil || !strings.Contains(r.err.Error(), "only certificates") {
		t.Errorf("plain key: %v", r.err)
	}
}

// TestServeCertRecheck: a certificate that expires while its session is
// detached, whose CA is no longer trusted, that is revoked, or whose
// source-address does not admit the new address, fails the Recheck a
// resumption makes.
func TestServeCertRecheck(t *testing.T) {
	ca := mustSigner(t, newEd25519(t))
	user := mustSigner(t, newEd25519(t))
	now := time.Now()
	var clock atomic.Int64
	clock.Store(now.Unix())
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pub")
	os.WriteFile(caFile, []byte(kex.MarshalAuthorizedKey(ca.PublicKey())+"\n"), 0o644)
	var revoked atomic.Bool
	cert := certFor(t, user.PublicKey(), ca, func(c *kex.Certificate) {
		c.ValidBefore = uint64(now.Unix() + 600)
		c.CriticalOptions = []kex.CertOption{critString("source-address", "127.0.0.0/8")}
	})
	cfg := &ServerConfig{
		TrustedUserCAs: &TrustedUserCAs{KeysFile: caFile, Now: func() time.Time { return time.Unix(clock.Load(), 0) }},
		RevokedKeys: func(kex.PublicKey) error {
			if revoked.Load() {
				return ErrKeyRevoked
			}
			return nil
		},
	}
	r := loginWith(t, cfg, "alice", certSignerFor(t, cert, user))
	if r.err != nil {
		t.Fatal(r.err)
	}
	here := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 9), Port: 1}
	if err := r.perms.Recheck(here); err != nil {
		t.Fatalf("Recheck at once: %v", err)
	}
	if err := r.perms.Recheck(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1}); err == nil || !strings.Contains(err.Error(), "source-address") {
		t.Errorf("Recheck from 10.0.0.1: %v", err)
	}
	clock.Store(now.Unix() + 601)
	if err := r.perms.Recheck(here); !errors.Is(err, kex.ErrCertExpired) {
		t.Errorf("Recheck after the certificate expired: %v", err)
	}
	clock.Store(now.Unix())
	revoked.Store(true)
	if err := r.perms.Recheck(here); !errors.Is(err, ErrKeyRevoked) {
		t.Errorf("Recheck after revocation: %v", err)
	}
	revoked.Store(false)
	os.WriteFile(caFile, []byte("# no CA any more\n"), 0o644)
	if err := r.perms.Recheck(here); err == nil || !strings.Contains(err.Error(), "not trusted") {
		t.Errorf("Recheck after the CA was removed: %v", err)
	}
}

func TestServeCertPrincipalsFile(t *testing.T) {
	ca := mustSigner(t, newEd25519(t))
	user := mustSigner(t, newEd25519(t))
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "deploy"), []byte("# principals of deploy\n"+
		"from=\"10.0.0.0/8\" alice\n"+
		"restrict,pty,command=\"internal-sftp\" ops\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "root"), []byte("cert-authority ops\n"), 0o644)
	principals, err := AuthorizedPrincipalsFile(filepath.Join(dir, "%u"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ServerConfig{TrustedUserCAs: &TrustedUserCAs{Keys: []kex.PublicKey{ca.PublicKey()}, AuthorizedPrincipals: principals}}

	// alice's line needs 10/8; ops's line admits from loopback, and its
	// options merge with the certificate's.
	r := loginWith(t, cfg, "deploy", certSignerFor(t, certFor(t, user.PublicKey(), ca, nil), user))
	if r.err != nil {
		t.Fatal(r.err)
	}
	ko := r.perms.KeyOptions
	if r.perms.ForceCommand != "internal-sftp" || !ko.PTY || ko.PortForwarding || ko.UserRC {
		t.Errorf("merged options: command %q, %+v", r.perms.ForceCommand, ko)
	}
	for _, c := range []struct {
		name, user string
		cert       *kex.Certificate
		why        string
	}{
		{"user name is not enough with a principals file", "alice", certFor(t, user.PublicKey(), ca, nil), "none of its principals"},
		{"no line for the principal", "deploy", certFor(t, user.PublicKey(), ca, func(c *kex.Certificate) { c.ValidPrincipals = []string{"deploy"} }), "none of its principals"},
		{"from= of the only matching line", "deploy", certFor(t, user.PublicKey(), ca, func(c *kex.Certificate) { c.ValidPrincipals = []string{"alice"} }), "not allowed from"},
		{"forced commands differ", "deploy", certFor(t, user.PublicKey(), ca, func(c *kex.Certificate) {
			c.CriticalOptions = []kex.CertOption{critString("force-command", "/bin/sh")}
		}), "forced command options do not match"},
		{"cert-authority in a principals file", "root", certFor(t, user.PublicKey(), ca, nil), "cert-authority is not valid"},
		{"missing file", "nobody", certFor(t, user.PublicKey(), ca, nil), "none of its principals"},
		{"user name that leaves the directory", "../deploy", certFor(t, user.PublicKey(), ca, nil), "cannot name a principals file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := loginWith(t, cfg, c.user, certSignerFor(t, c.cert, user))
			if r.err == nil || !strings.Contains(r.err.Error(), c.why) {
				t.Errorf("want %q: %v", c.why, r.err)
			}
		})
	}
	if _, err := AuthorizedPrincipalsFile("/etc/%h/principals"); err == nil {
		t.Error("%h accepted")
	}
}

// TestServeCertAuthorityLine: cert-authority lines of authorized_keys
// admit certificates of their CA, with principals= or the user name, and
// the line's options merged with the certificate's.
func TestServeCertAuthorityLine(t *testing.T) {
	ca := mustSigner(t, newEd25519(t))
	user := mustSigner(t, userKeys(t)["rsa2048"])
	dir := t.TempDir()
	ak := filepath.Join(dir, "authorized_keys")
	caLine := kex.MarshalAuthorizedKey(ca.PublicKey())
	write := func(lines ...string) {
		t.Helper()
		if err := os.WriteFile(ak, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f := &AuthorizedKeysFile{Path: ak}
	cfg := &ServerConfig{PublicKeyConnCallback: f.Authorize}
	cert := certFor(t, user.PublicKey(), ca, nil)

	for _, c := range []struct {
		name  string
		lines []string
		user  string
		cert  *kex.Certificate
		why   string // "" accepted
	}{
		{"user name among the principals", []string{"cert-authority " + caLine}, "alice", cert, ""},
		{"user name not among them", []string{"cert-authority " + caLine}, "bob", cert, "not a listed principal"},
		{"principals= names one", []string{`cert-authority,principals="root,ops" ` + caLine}, "deploy", cert, ""},
		{"principals= names none", []string{`cert-authority,principals="root,admin" ` + caLine}, "alice", cert, "lists none of principals="},
		{"CA key without cert-authority", []string{caLine}, "alice", cert, "is not a cert-authority"},
		{"another CA", []string{"cert-authority " + kex.MarshalAuthorizedKey(mustSigner(t, newEd25519(t)).PublicKey())}, "alice", cert, "is not a cert-authority"},
		{"from= of the CA line", []string{`cert-authority,from="10.0.0.0/8" ` + caLine}, "alice", cert, "not allowed from"},
		{"expiry-time of the CA line", []string{`cert-authority,expiry-time="20200101" ` + caLine}, "alice", cert, "expired"},
		{"second line admits", []string{`cert-authority,from="10.0.0.0/8" ` + caLine, "cert-authority " + caLine}, "alice", cert, ""},
		{"the user's key itself is not listed", []string{kex.MarshalAuthorizedKey(user.PublicKey())}, "alice", cert, "is not a cert-authority"},
	} {
		t.Run(c.name, func(t *testing.T) {
			write(c.lines...)
			r := loginWith(t, cfg, c.user, certSignerFor(t, c.cert, user))
			switch {
			case c.why == "" && r.err != nil:
				t.Fatal(r.err)
			case c.why != "" && (r.err == nil || !strings.Contains(r.err.Error(), c.why)):
				t.Fatalf("want %q: %v", c.why, r.err)
			case c.why == "" && (r.perms.Certificate == nil || r.perms.KeyOptions == nil || !r.perms.KeyOptions.PTY):
				t.Errorf("permissions %+v", r.perms)
			}
		})
	}

	// Options merge: restrict on the line takes the certificate's pty
	// away; the certificate's force-command becomes the forced command
	// and reaches Check; a different command= on the line refuses it.
	write(`cert-authority,restrict,port-forwarding ` + caLine)
	r := loginWith(t, cfg, "alice", certSignerFor(t, cert, user))
	if r.err != nil {
		t.Fatal(r.err)
	}
	if ko := r.perms.KeyOptions; ko.PTY || !ko.PortForwarding || ko.CertAuthority {
		t.Errorf("merged %+v", ko)
	}
	forced := certFor(t, user.PublicKey(), ca, func(c *kex.Certificate) {
		c.CriticalOptions = []kex.CertOption{critString("force-command", "internal-sftp")}
	})
	var checked string
	f.Check = func(k *AuthorizedKey) error { checked, _ = k.Option("command"); return nil }
	write("cert-authority " + caLine)
	if r := loginWith(t, cfg, "alice", certSignerFor(t, forced, user)); r.err != nil || r.perms.ForceCommand != "internal-sftp" || checked != "internal-sftp" {
		t.Errorf("force-command: %v, %q, Check saw %q", r.err, r.perms.ForceCommand, checked)
	}
	f.Check = nil
	write(`cert-authority,command="/bin/date" ` + caLine)
	if r := loginWith(t, cfg, "alice", certSignerFor(t, forced, user)); r.err == nil || !strings.Contains(r.err.Error(), "forced command options do not match") {
		t.Errorf("command= and force-command differ: %v", r.err)
	}
	// The Recheck re-reads the file.
	write("cert-authority " + caLine)
	r = loginWith(t, cfg, "alice", certSignerFor(t, cert, user))
	if r.err != nil {
		t.Fatal(r.err)
	}
	write("# emptied")
	if err := r.perms.Recheck(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}); err == nil {
		t.Error("Recheck after the CA line was removed")
	}
}

// TestServeTrustedCAThenAuthorizedKeys: a certificate TrustedUserCAs
// refuses may still be admitted by the callback, and both reasons are
// said when neither admits it.
func TestServeTrustedCAThenAuthorizedKeys(t *testing.T) {
	ca1, ca2 := mustSigner(t, newEd25519(t)), mustSigner(t, newEd25519(t))
	user := mustSigner(t, newEd25519(t))
	ak := filepath.Join(t.TempDir(), "authorized_keys")
	os.WriteFile(ak, []byte("cert-authority "+kex.MarshalAuthorizedKey(ca2.PublicKey())+"\n"), 0o600)
	f := &AuthorizedKeysFile{Path: ak}
	cfg := &ServerConfig{TrustedUserCAs: &TrustedUserCAs{Keys: []kex.PublicKey{ca1.PublicKey()}}, PublicKeyConnCallback: f.Authorize}
	if r := loginWith(t, cfg, "alice", certSignerFor(t, certFor(t, user.PublicKey(), ca2, nil), user)); r.err != nil {
		t.Errorf("cert of the authorized_keys CA: %v", r.err)
	}
	if r := loginWith(t, cfg, "alice", certSignerFor(t, certFor(t, user.PublicKey(), ca1, nil), user)); r.err != nil {
		t.Errorf("cert of the trusted CA: %v", r.err)
	}
	r := loginWith(t, cfg, "alice", certSignerFor(t, certFor(t, user.PublicKey(), mustSigner(t, newEd25519(t)), nil), user))
	if r.err == nil || !strings.Contains(r.err.Error(), "is not trusted") || !strings.Contains(r.err.Error(), "is not a cert-authority") {
		t.Errorf("neither: %v", r.err)
	}
}

// TestServeCertSignatureAlgorithms: under an RSA certificate the
// signature must be of the algorithm the request names
// (rsa-sha2-256-cert-v01@openssh.com: rsa-sha2-256).
func TestServeCertSignatureAlgorithms(t *testing.T) {
	ca := mustSigner(t, newEd25519(t))
	user := mustSigner(t, userKeys(t)["rsa2048"])
	cert := certFor(t, user.PublicKey(), ca, nil)
	cfg := &ServerConfig{TrustedUserCAs: &TrustedUserCAs{Keys: []kex.PublicKey{ca.PublicKey()}}}
	for _, c := range []struct {
		algo, sigAlgo string
		ok            bool
	}{
		{kex.CertSigAlgoRSASHA256, kex.SigAlgoRSASHA256, true},
		{kex.CertSigAlgoRSASHA512, kex.SigAlgoRSASHA512, true},
		{kex.CertSigAlgoRSASHA256, kex.SigAlgoRSASHA512, false},
		{kex.CertSigAlgoRSASHA512, kex.CertSigAlgoRSASHA512, false},
		{kex.CertAlgoRSA, kex.SigAlgoRSASHA512, false},
	} {
		cc, sc := connPair(t)
		res := startServe(t, sc, cfg)
		r := rawPeer{t, cc}
		r.startUserauth()
		data := marshalPublickeySignedData(cc.SessionID(), "alice", serviceConnection, c.algo, cert.Marshal())
		sig, err := user.Sign(rand.Reader, data, kex.UnderlyingSignatureAlgorithm(c.sigAlgo))
		if err != nil {
			t.Fatal(err)
		}
		if c.sigAlgo == kex.CertSigAlgoRSASHA512 {
			// the signature named with the certificate algorithm
			_, rest, _ := readSSHString(sig)
			sig = append(stringOpt(c.sigAlgo), append([]byte(c.sigAlgo), rest...)...)
		}
		r.send(pkRequest("alice", cert, c.algo, sig))
		p := r.recv2()
		if ok := p[0] == wire.MsgUserauthSuccess; ok != c.ok {
			t.Errorf("%s with a %s signature: success %v", c.algo, c.sigAlgo, ok)
		}
		cc.Abort()
		waitServe(t, res)
	}
}

func readSSHString(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, false
	}
	return b[4 : 4+n], b[4+n:], true
}

// recv2 reads the next message, whatever it is.
func (r rawPeer) recv2() []byte {
	r.t.Helper()
	p, err := r.recv()
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

// skSigner is a software security key (sk-ssh-ed25519@openssh.com) that
// signs as PROTOCOL.u2f describes, asserting the flags it is given.
type skSigner struct {
	priv    ed25519.PrivateKey
	app     string
	flags   byte
	counter uint32
}

func newSKSigner(t testing.TB) *skSigner {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &skSigner{priv: priv, app: "ssh:", flags: kex.SKFlagUserPresent}
}

func (s *skSigner) PublicKey() kex.PublicKey {
	blob := append(stringOpt(kex.KeyAlgoSKED25519), kex.KeyAlgoSKED25519...)
	blob = append(append(blob, stringOpt(string(s.priv.Public().(ed25519.PublicKey)))...), s.priv.Public().(ed25519.PublicKey)...)
	blob = append(append(blob, stringOpt(s.app)...), s.app...)
	k, err := kex.ParsePublicKey(blob)
	if err != nil {
		panic(err)
	}
	return k
}

func (s *skSigner) Algorithms() []string { return []string{kex.KeyAlgoSKED25519} }

func (s *skSigner) Sign(_ io.Reader, data []byte, algo string) ([]byte, error) {
	if algo != "" && algo != kex.KeyAlgoSKED25519 {
		return nil, fmt.Errorf("sk signer: algorithm %s", algo)
	}
	s.counter++
	ah, mh := sha256.Sum256([]byte(s.app)), sha256.Sum256(data)
	signed := append(append(append(ah[:], s.flags), binary.BigEndian.AppendUint32(nil, s.counter)...), mh[:]...)
	sig := ed25519.Sign(s.priv, signed)
	out := append(stringOpt(kex.KeyAlgoSKED25519), kex.KeyAlgoSKED25519...)
	out = append(append(out, stringOpt(string(sig))...), sig...)
	out = append(out, s.flags)
	return binary.BigEndian.AppendUint32(out, s.counter), nil
}

// TestServeSecurityKeys: security keys in authorized_keys and in
// certificates: user presence is required unless no-touch-required (an
// authorized_keys option, or a certificate extension, which a
// cert-authority line must also grant), user verification when
// verify-required (option or critical option).
func TestServeSecurityKeys(t *testing.T) {
	sk := newSKSigner(t)
	line := kex.MarshalAuthorizedKey(sk.PublicKey())
	ak := filepath.Join(t.TempDir(), "authorized_keys")
	f := &AuthorizedKeysFile{Path: ak}
	cfg := &ServerConfig{PublicKeyConnCallback: f.Authorize}
	up, uv := byte(kex.SKFlagUserPresent), byte(kex.SKFlagUserVerified)
	for _, c := range []struct {
		name  string
		line  string
		flags byte
		why   string
	}{
		{"touched", line, up, ""},
		{"not touched", line, 0, "user presence"},
		{"not touched, no-touch-required", "no-touch-required " + line, 0, ""},
		{"verify-required, touched only", "verify-required " + line, up, "user verification"},
		{"verify-required, verified", "verify-required " + line, up | uv, ""},
		{"verify-required, no-touch-required, verified only", "no-touch-required,verify-required " + line, uv, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			os.WriteFile(ak, []byte(c.line+"\n"), 0o600)
			sk.flags = c.flags
			r := loginWith(t, cfg, "alice", sk)
			if c.why == "" && r.err != nil || c.why != "" && (r.err == nil || !strings.Contains(r.err.Error(), c.why)) {
				t.Errorf("want %q: %v", c.why, r.err)
			}
		})
	}

	// Certificates of a security key.
	ca := mustSigner(t, newEd25519(t))
	noTouch := certFor(t, sk.PublicKey(), ca, func(c *kex.Certificate) {
		c.Extensions = append(c.Extensions, kex.CertOption{Name: "no-touch-required"})
	})
	verifyReq := certFor(t, sk.PublicKey(), ca, func(c *kex.Certificate) {
		c.CriticalOptions = []kex.CertOption{{Name: "verify-required"}}
	})
	plain := certFor(t, sk.PublicKey(), ca, nil)
	trusted := &ServerConfig{TrustedUserCAs: &TrustedUserCAs{Keys: []kex.PublicKey{ca.PublicKey()}}}
	caLine := kex.MarshalAuthorizedKey(ca.PublicKey())
	for _, c := range []struct {
		name  string
		cfg   *ServerConfig
		line  string
		cert  *kex.Certificate
		flags byte
		why   string
	}{
		{"trusted CA, touched", trusted, "", plain, up, ""},
		{"trusted CA, not touched", trusted, "", plain, 0, "user presence"},
		{"trusted CA, no-touch-required extension", trusted, "", noTouch, 0, ""},
		{"trusted CA, verify-required, touched", trusted, "", verifyReq, up, "user verification"},
		{"trusted CA, verify-required, verified", trusted, "", verifyReq, up | uv, ""},
		{"cert-authority line without no-touch-required", cfg, "cert-authority " + caLine, noTouch, 0, "user presence"},
		{"cert-authority line with no-touch-required", cfg, "cert-authority,no-touch-required " + caLine, noTouch, 0, ""},
		{"cert-authority line no-touch-required, certificate not", cfg, "cert-authority,no-touch-required " + caLine, plain, 0, "user presence"},
		{"cert-authority line verify-required", cfg, "cert-authority,verify-required " + caLine, plain, up, "user verification"},
	} {
		t.Run(c.name, func(t *testing.T) {
			os.WriteFile(ak, []byte(c.line+"\n"), 0o600)
			sk.flags = c.flags
			r := loginWith(t, c.cfg, "alice", certSignerFor(t, c.cert, sk))
			if c.why == "" && r.err != nil || c.why != "" && (r.err == nil || !strings.Contains(r.err.Error(), c.why)) {
				t.Errorf("want %q: %v", c.why, r.err)
			}
		})
	}

	// A security key as the CA: its signature's flags are not judged.
	caSK := newSKSigner(t)
	caSK.flags = 0
	c := certFor(t, mustSigner(t, newEd25519(t)).PublicKey(), caSK, nil)
	if err := kex.CheckCertificate(c, kex.CertCheck{Type: kex.UserCert, Principal: "alice"}); err != nil {
		t.Errorf("certificate by an sk CA: %v", err)
	}
}

func TestAuthorizedPrincipalsParse(t *testing.T) {
	ps, err := ParseAuthorizedPrincipals([]byte("# comment\n\nalice\n  bob  \ncommand=\"internal-sftp -R\",no-pty  carol\t\nbogus-option dave\nno-pty eve mallory\n"))
	if len(ps) != 3 || ps[0].Principal != "alice" || ps[1].Principal != "bob" || ps[2].Principal != "carol" || ps[2].Line != 5 {
		t.Fatalf("%+v", ps)
	}
	if v, _ := (AuthorizedKey{Options: ps[2].Options}).Option("command"); v != "internal-sftp -R" || ps[2].Permissions().PTY {
		t.Errorf("options %+v", ps[2].Options)
	}
	if err == nil || !strings.Contains(err.Error(), "line 6") || !strings.Contains(err.Error(), "line 7") {
		t.Errorf("errors: %v", err)
	}
}

func TestRevokedKeysFile(t *testing.T) {
	dir := t.TempDir()
	ca := mustSigner(t, newEd25519(t))
	revokedKey := mustSigner(t, newEd25519(t))
	okKey := mustSigner(t, newEd25519(t))
	list := filepath.Join(dir, "revoked")
	os.WriteFile(list, []byte("# revoked\n"+kex.MarshalAuthorizedKey(revokedKey.PublicKey())+" gone\nnot a key line\n"), 0o644)
	check := RevokedKeysFile(list)
	for _, c := range []struct {
		name    string
		key     kex.PublicKey
		revoked bool
	}{
		{"listed key", revokedKey.PublicKey(), true},
		{"other key", okKey.PublicKey(), false},
		{"certificate of a listed key", certFor(t, revokedKey.PublicKey(), ca, nil), true},
		{"certificate of another key", certFor(t, okKey.PublicKey(), ca, nil), false},
		{"certificate by a listed CA", certFor(t, okKey.PublicKey(), revokedKey, nil), true},
	} {
		if err := check(c.key); (err != nil) != c.revoked || c.revoked && !errors.Is(err, ErrKeyRevoked) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// Unreadable, or a KRL that does not parse: every key is refused.
	for name, path := range map[string]string{"missing": filepath.Join(dir, "nope"), "bad KRL": filepath.Join(dir, "bad.krl")} {
		if name == "bad KRL" {
			os.WriteFile(path, []byte("SSHKRL\n\x00\x00\x00\x00\x09"), 0o644)
		}
		if err := RevokedKeysFile(path)(okKey.PublicKey()); err == nil || errors.Is(err, ErrKeyRevoked) {
			t.Errorf("%s file: %v", name, err)
		}
	}
}

// FuzzParseAuthorizedPrincipals: any file parses without panicking, every
// principal is one blank-free name, and options that parse evaluate.
func FuzzParseAuthorizedPrincipals(f *testing.F) {
	f.Add([]byte("alice\n# c\n  bob\t\ncommand=\"internal-sftp\",from=\"10.0.0.0/8\" ops\n"))
	f.Add([]byte("restrict,pty carol\nno-pty a b\ncert-authority x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, _ := ParseAuthorizedPrincipals(data)
		for _, p := range ps {
			if p.Principal == "" || strings.ContainsAny(p.Principal, " \t\n") {
				t.Fatalf("principal %q", p.Principal)
			}
			p.Permissions()
			p.Allows(&net.TCPAddr{IP: net.IPv4(10, 1, 2, 3)})
		}
	})
}
