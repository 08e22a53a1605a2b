package kex

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rsftp/rsftp/internal/sshtest"
)

// testNow is the time the certificates of these tests are checked at.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newCert makes a user certificate for key, valid for alice and bob an
// hour either side of testNow, signed by ca; edit changes it before it
// is signed.
func newCert(t testing.TB, key PublicKey, ca Signer, edit func(*Certificate)) *Certificate {
	t.Helper()
	c := &Certificate{
		Key:             key,
		Nonce:           []byte("0123456789abcdef0123456789abcdef"),
		Serial:          7,
		CertType:        UserCert,
		KeyID:           "alice@example",
		ValidPrincipals: []string{"alice", "bob"},
		ValidAfter:      uint64(testNow.Add(-time.Hour).Unix()),
		ValidBefore:     uint64(testNow.Add(time.Hour).Unix()),
		Extensions:      []CertOption{{Name: "permit-pty"}, {Name: "permit-user-rc"}},
	}
	if edit != nil {
		edit(c)
	}
	if err := c.SignCert(rand.Reader, ca, ""); err != nil {
		t.Fatal(err)
	}
	return c
}

func userCheck(principal string) CertCheck {
	return CertCheck{Type: UserCert, Principal: principal, Now: testNow}
}

// reparse marshals c and parses it again (what a peer would see).
func reparse(t testing.TB, c *Certificate) *Certificate {
	t.Helper()
	p, err := ParseCertificate(c.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// certKeys are the keys certified in the tests: every plain type and
// both security key types.
func certKeys(t testing.TB) []PublicKey {
	var ks []PublicKey
	for _, tk := range testKeys() {
		ks = append(ks, testSigner(t, tk.name).PublicKey())
	}
	for _, typ := range skTypes {
		ks = append(ks, newSoftSK(t, typ, "ssh:").pub(t))
	}
	return ks
}

// TestCertRoundTrip: a certificate of every key type, signed by a CA of
// every type with each of its algorithms, marshals, parses back to the
// same blob and fields, passes CheckCertificate, and reads the same with
// x/crypto.
func TestCertRoundTrip(t *testing.T) {
	for _, key := range certKeys(t) {
		for _, tk := range testKeys() {
			ca := testSigner(t, tk.name)
			for _, algo := range ca.Algorithms() {
				c := newCert(t, key, ca, nil)
				c.SignCert(rand.Reader, ca, algo)
				blob := c.Marshal()
				p := reparse(t, c)
				if !bytes.Equal(p.Marshal(), blob) {
					t.Fatalf("%s by %s: marshal differs after parse", c.Type(), algo)
				}
				if p.Type() != c.Type() || !strings.HasSuffix(p.Type(), "-cert-v01@openssh.com") ||
					!bytes.Equal(p.Key.Marshal(), key.Marshal()) || p.Serial != 7 || p.KeyID != "alice@example" ||
					strings.Join(p.ValidPrincipals, ",") != "alice,bob" || len(p.Extensions) != 2 ||
					!bytes.Equal(p.SignatureKey.Marshal(), ca.PublicKey().Marshal()) {
					t.Fatalf("%s by %s: fields %+v", c.Type(), algo, p)
				}
				if err := CheckCertificate(p, userCheck("alice")); err != nil {
					t.Fatalf("%s by %s: %v", c.Type(), algo, err)
				}
				xk, err := ssh.ParsePublicKey(blob)
				if err != nil {
					t.Fatalf("x/crypto cannot parse our %s: %v", c.Type(), err)
				}
				xc := xk.(*ssh.Certificate)
				if xc.Type() != c.Type() || !bytes.Equal(xc.Marshal(), blob) || xc.KeyId != c.KeyID {
					t.Fatalf("x/crypto reads %s differently", c.Type())
				}
			}
		}
	}
}

// TestCertFromXCrypto: a certificate x/crypto signs parses and checks.
func TestCertFromXCrypto(t *testing.T) {
	caKey := testKeys()[0].priv
	xca, err := ssh.NewSignerFromSigner(caKey)
	if err != nil {
		t.Fatal(err)
	}
	user := testSigner(t, "ecdsa-p384")
	xpub, _ := ssh.ParsePublicKey(user.PublicKey().Marshal())
	xc := &ssh.Certificate{
		Key: xpub, Serial: 99, CertType: ssh.UserCert, KeyId: "x", ValidPrincipals: []string{"carol"},
		ValidAfter: uint64(testNow.Unix() - 10), ValidBefore: uint64(testNow.Unix() + 10),
		Permissions: ssh.Permissions{CriticalOptions: map[string]string{"force-command": "internal-sftp", "source-address": "10.0.0.0/8,::1"},
			Extensions: map[string]string{"permit-pty": "", "custom@example.com": ""}},
	}
	if err := xc.SignCert(rand.Reader, xca); err != nil {
		t.Fatal(err)
	}
	c, err := ParseCertificate(xc.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckCertificate(c, userCheck("carol")); err != nil {
		t.Fatal(err)
	}
	p, err := c.Permissions()
	if err != nil {
		t.Fatal(err)
	}
	if !p.HasForceCommand || p.ForceCommand != "internal-sftp" || p.SourceAddress != "10.0.0.0/8,::1" || !p.PermitPTY ||
		p.PermitPortForwarding || len(p.UnknownExtensions) != 1 {
		t.Errorf("permissions %+v", p)
	}
}

// TestCertIsPublicKey: a certificate's Verify is its key's, with the
// plain algorithm's signatures.
func TestCertIsPublicKey(t *testing.T) {
	for _, tk := range testKeys() {
		s := testSigner(t, tk.name)
		c := reparse(t, newCert(t, s.PublicKey(), testSigner(t, "ed25519"), nil))
		for _, algo := range s.Algorithms() {
			sig, err := s.Sign(rand.Reader, []byte("data"), algo)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Verify([]byte("data"), sig); err != nil {
				t.Errorf("%s: %v", algo, err)
			}
			if err := c.Verify([]byte("other"), sig); err == nil {
				t.Errorf("%s: verified other data", algo)
			}
		}
		if again, err := NewPublicKey(c.CryptoPublicKey()); err != nil || !bytes.Equal(again.Marshal(), s.PublicKey().Marshal()) {
			t.Errorf("%s: CryptoPublicKey", tk.name)
		}
		var k PublicKey = c
		if k.Type() != CertKeyType(s.PublicKey().Type()) {
			t.Errorf("type %s", k.Type())
		}
		for _, a := range SignatureAlgorithmsFor(c.Type()) {
			if KeyTypeForSignatureAlgorithm(a) != c.Type() || !IsCertAlgorithm(a) {
				t.Errorf("%s: algorithm %s maps to %s", c.Type(), a, KeyTypeForSignatureAlgorithm(a))
			}
			u := UnderlyingSignatureAlgorithm(a)
			if KeyTypeForSignatureAlgorithm(u) != s.PublicKey().Type() || CertSignatureAlgorithm(u) != a {
				t.Errorf("%s: underlying %s", a, u)
			}
		}
	}
	if UnderlyingSignatureAlgorithm(CertAlgoRSA) != CertAlgoRSA || KeyTypeForSignatureAlgorithm(CertAlgoRSA) != "" {
		t.Error("ssh-rsa-cert-v01 (SHA-1) is a usable signature algorithm")
	}
}

func TestCertCheckRefusals(t *testing.T) {
	ca := testSigner(t, "ed25519")
	key := testSigner(t, "ecdsa-p256").PublicKey()
	now := uint64(testNow.Unix())
	for _, c := range []struct {
		name   string
		edit   func(*Certificate)
		check  CertCheck
		reason error
	}{
		{"accepted", nil, userCheck("alice"), nil},
		{"accepted, no name asked", nil, userCheck(""), nil},
		{"principal not listed", nil, userCheck("carol"), ErrCertPrincipal},
		{"principal prefix", nil, userCheck("ali"), ErrCertPrincipal},
		{"principal case", nil, userCheck("Alice"), ErrCertPrincipal},
		{"host certificate as a user's", func(c *Certificate) { c.CertType = HostCert }, userCheck("alice"), ErrCertType},
		{"user certificate as a host's", nil, CertCheck{Type: HostCert, Principal: "alice", Now: testNow}, ErrCertType},
		{"not yet valid", func(c *Certificate) { c.ValidAfter = now + 1 }, userCheck("alice"), ErrCertNotYetValid},
		{"valid from this second", func(c *Certificate) { c.ValidAfter = now }, userCheck("alice"), nil},
		{"expired", func(c *Certificate) { c.ValidBefore = now - 1 }, userCheck("alice"), ErrCertExpired},
		{"expires this second", func(c *Certificate) { c.ValidBefore = now }, userCheck("alice"), ErrCertExpired},
		{"valid one more second", func(c *Certificate) { c.ValidBefore = now + 1 }, userCheck("alice"), nil},
		{"forever", func(c *Certificate) { c.ValidAfter, c.ValidBefore = 0, CertForever }, userCheck("alice"), nil},
		{"no principals", func(c *Certificate) { c.ValidPrincipals = nil }, userCheck("alice"), ErrCertNoPrincipals},
		{"no principals, no name asked", func(c *Certificate) { c.ValidPrincipals = nil }, userCheck(""), ErrCertNoPrincipals},
		{"no principals allowed", func(c *Certificate) { c.ValidPrincipals = nil },
			CertCheck{Type: UserCert, Principal: "alice", Now: testNow, AllowNoPrincipals: true}, nil},
		{"unknown critical option", func(c *Certificate) {
			c.CriticalOptions = []CertOption{{Name: "restrict-everything@example.com"}}
		}, userCheck("alice"), ErrCertOptions},
		{"unknown extension ignored", func(c *Certificate) {
			c.Extensions = append(c.Extensions, CertOption{Name: "grant-nothing@example.com", Data: []byte{1, 2, 3}})
		}, userCheck("alice"), nil},
		{"force-command twice", func(c *Certificate) {
			c.CriticalOptions = []CertOption{{"force-command", tString([]byte("a"))}, {"force-command", tString([]byte("a"))}}
		}, userCheck("alice"), ErrCertOptions},
		{"force-command not a string", func(c *Certificate) {
			c.CriticalOptions = []CertOption{{"force-command", []byte("internal-sftp")}}
		}, userCheck("alice"), ErrCertOptions},
		{"force-command with extra data", func(c *Certificate) {
			c.CriticalOptions = []CertOption{{"force-command", tCat(tString([]byte("a")), []byte{0})}}
		}, userCheck("alice"), ErrCertOptions},
		{"verify-required with data", func(c *Certificate) {
			c.CriticalOptions = []CertOption{{"verify-required", []byte{0}}}
		}, userCheck("alice"), ErrCertOptions},
		{"permit-pty with data", func(c *Certificate) { c.Extensions = []CertOption{{"permit-pty", tString(nil)}} }, userCheck("alice"), ErrCertOptions},
		{"source-address with a blank", func(c *Certificate) {
			c.CriticalOptions = []CertOption{{"source-address", tString([]byte("10.0.0.0/8, 10.1.0.0/16"))}}
		}, userCheck("alice"), ErrCertOptions},
		{"source-address with host bits", func(c *Certificate) {
			c.CriticalOptions = []CertOption{{"source-address", tString([]byte("10.0.0.1/8"))}}
		}, userCheck("alice"), ErrCertOptions},
		{"source-address pattern", func(c *Certificate) {
			c.CriticalOptions = []CertOption{{"source-address", tString([]byte("10.*"))}}
		}, userCheck("alice"), ErrCertOptions},
		{"host certificate with a critical option", func(c *Certificate) {
			c.CertType = HostCert
			c.CriticalOptions = []CertOption{{"force-command", tString([]byte("x"))}}
		}, CertCheck{Type: HostCert, Principal: "alice", Now: testNow}, ErrCertOptions},
		{"CA algorithm not allowed", nil, CertCheck{Type: UserCert, Principal: "alice", Now: testNow,
			CASignatureAlgorithms: []string{KeyAlgoECDSA256, SigAlgoRSASHA512}}, ErrCertCA},
	} {
		t.Run(c.name, func(t *testing.T) {
			cert := reparse(t, newCert(t, key, ca, c.edit))
			err := CheckCertificate(cert, c.check)
			if c.reason == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, c.reason) {
				t.Fatalf("got %v, want %v", err, c.reason)
			}
			var ce *CertError
			if !errors.As(err, &ce) || ce.KeyID != "alice@example" || ce.Serial != 7 {
				t.Errorf("error %v does not name the certificate", err)
			}
		})
	}
}

// TestCertAttack_SignatureNotVerified: a certificate whose signature does
// not verify, that names the trusted CA, is refused (rust sshkeys never
// verified the signature: rustsec/advisory-db#762). Any change after
// signing breaks it: serial, principals, validity, options, key.
func TestCertAttack_SignatureNotVerified(t *testing.T) {
	ca := testSigner(t, "ed25519")
	key := testSigner(t, "ecdsa-p256").PublicKey()
	for name, edit := range map[string]func(*Certificate){
		"serial":     func(c *Certificate) { c.Serial++ },
		"principals": func(c *Certificate) { c.ValidPrincipals = append(c.ValidPrincipals, "root") },
		"validity":   func(c *Certificate) { c.ValidBefore = CertForever },
		"options":    func(c *Certificate) { c.Extensions = append(c.Extensions, CertOption{Name: "permit-port-forwarding"}) },
		"key":        func(c *Certificate) { c.Key = testSigner(t, "ecdsa-p384").PublicKey() },
		"type":       func(c *Certificate) { c.CertType = HostCert },
		"signature": func(c *Certificate) {
			c.Signature = bytes.Clone(c.Signature)
			c.Signature[len(c.Signature)-1] ^= 1
		},
	} {
		c := newCert(t, key, ca, nil)
		edit(c)
		p := reparse(t, c)
		want := userCheck("alice")
		if c.CertType == HostCert {
			want.Type = HostCert
		}
		if err := CheckCertificate(p, want); !errors.Is(err, ErrCertSignature) {
			t.Errorf("%s changed after signing: %v", name, err)
		}
	}
	// A signature by another key, naming the trusted CA.
	c := newCert(t, key, testSigner(t, "ecdsa-p384"), nil)
	c.SignatureKey = ca.PublicKey()
	if err := CheckCertificate(reparse(t, c), userCheck("alice")); !errors.Is(err, ErrCertSignature) {
		t.Errorf("signed by another key: %v", err)
	}
}

// TestCertAttack_SignedByCertificate: a certificate whose signature key
// is itself a certificate (chained, which PROTOCOL.certkeys does not
// support) is refused by the parser and by CheckCertificate: otherwise a
// user holding a certificate from a trusted CA could sign certificates
// for any principal with its own key, if the verifier then compared the
// intermediate certificate's CA key, or its key, with the trusted ones.
func TestCertAttack_SignedByCertificate(t *testing.T) {
	root := testSigner(t, "ed25519")
	mallory := testSigner(t, "ecdsa-p256")
	intermediate := newCert(t, mallory.PublicKey(), root, nil)
	// mallory signs a certificate for root's principal with her key and
	// names her certificate as the signature key.
	forged := &Certificate{Key: testSigner(t, "ecdsa-p384").PublicKey(), CertType: UserCert, KeyID: "forged",
		ValidPrincipals: []string{"root"}, ValidBefore: CertForever, SignatureKey: intermediate}
	sig, err := mallory.Sign(rand.Reader, forged.signedBytes(), "")
	if err != nil {
		t.Fatal(err)
	}
	forged.Signature = sig
	if _, err := ParseCertificate(forged.Marshal()); err == nil || !strings.Contains(err.Error(), "signed by a certificate") {
		t.Errorf("parsed a certificate signed by a certificate: %v", err)
	}
	if err := CheckCertificate(forged, userCheck("root")); !errors.Is(err, ErrCertCA) {
		t.Errorf("CheckCertificate: %v", err)
	}
	if err := forged.SignCert(rand.Reader, &pubSwapSigner{Signer: mallory, pub: intermediate}, ""); err == nil {
		t.Error("SignCert with a certificate as the authority")
	}
	// Nor may a certificate certify a certificate.
	nested := &Certificate{Key: intermediate, CertType: UserCert, ValidPrincipals: []string{"x"}, ValidBefore: CertForever}
	if err := nested.SignCert(rand.Reader, root, ""); err == nil {
		t.Error("SignCert of a certificate")
	}
	nested.SignatureKey = root.PublicKey()
	if err := CheckCertificate(nested, userCheck("x")); !errors.Is(err, ErrCertCA) {
		t.Errorf("certificate of a certificate: %v", err)
	}
}

// pubSwapSigner is a Signer that claims another public key (a certificate,
// or another key).
type pubSwapSigner struct {
	Signer
	pub PublicKey
}

func (s *pubSwapSigner) PublicKey() PublicKey { return s.pub }

// TestCertAttack_DisallowedCASignature: the CA's signature algorithm must
// be one of CASignatureAlgorithms, compared exactly. ssh-rsa (SHA-1) is
// never accepted by default (wolfSSH accepted SHA-1 CA signatures while
// refusing SHA-1 elsewhere: wolfSSL/wolfssh#1060), and naming one ECDSA
// curve does not admit the others (CVE-2026-35387, where OpenSSH read
// one ECDSA algorithm as all of them).
func TestCertAttack_DisallowedCASignature(t *testing.T) {
	key := testSigner(t, "ed25519").PublicKey()
	rsaCA := testSigner(t, "rsa-2048")
	c := newCert(t, key, rsaCA, nil)
	// Re-sign with ssh-rsa: PKCS#1 v1.5 over SHA-1.
	h := sha1.Sum(c.signedBytes())
	raw, err := rsa.SignPKCS1v15(rand.Reader, testKeys()[4].priv.(*rsa.PrivateKey), crypto.SHA1, h[:])
	if err != nil {
		t.Fatal(err)
	}
	c.Signature = tCat(tString([]byte("ssh-rsa")), tString(raw))
	p := reparse(t, c)
	if err := CheckCertificate(p, userCheck("alice")); !errors.Is(err, ErrCertCA) {
		t.Errorf("ssh-rsa CA signature: %v", err)
	}
	if err := CheckCertificate(p, CertCheck{Type: UserCert, Now: testNow, CASignatureAlgorithms: []string{"ssh-rsa"}}); !errors.Is(err, ErrCertSignature) {
		t.Errorf("ssh-rsa CA signature, allowed by name: %v (our keys never verify SHA-1)", err)
	}
	// rsa-sha2-256 when only rsa-sha2-512 is allowed.
	c = newCert(t, key, rsaCA, nil)
	c.SignCert(rand.Reader, rsaCA, SigAlgoRSASHA256)
	only512 := CertCheck{Type: UserCert, Now: testNow, CASignatureAlgorithms: []string{SigAlgoRSASHA512}}
	if err := CheckCertificate(reparse(t, c), only512); !errors.Is(err, ErrCertCA) {
		t.Errorf("rsa-sha2-256 with only rsa-sha2-512 allowed: %v", err)
	}
	c.SignCert(rand.Reader, rsaCA, SigAlgoRSASHA512)
	if err := CheckCertificate(reparse(t, c), only512); err != nil {
		t.Errorf("rsa-sha2-512: %v", err)
	}
	// One ECDSA curve does not stand for the others.
	only384 := CertCheck{Type: UserCert, Now: testNow, CASignatureAlgorithms: []string{KeyAlgoECDSA384}}
	for _, name := range []string{"ecdsa-p256", "ecdsa-p521"} {
		if err := CheckCertificate(reparse(t, newCert(t, key, testSigner(t, name), nil)), only384); !errors.Is(err, ErrCertCA) {
			t.Errorf("%s CA with only nistp384 allowed: %v", name, err)
		}
	}
	if err := CheckCertificate(reparse(t, newCert(t, key, testSigner(t, "ecdsa-p384"), nil)), only384); err != nil {
		t.Errorf("nistp384 CA: %v", err)
	}
	// A name that claims another key type than the CA key's.
	c = newCert(t, key, testSigner(t, "ecdsa-p256"), nil)
	_, rest, _ := tReadString(c.Signature)
	c.Signature = tCat(tString([]byte(KeyAlgoECDSA384)), rest)
	if err := CheckCertificate(reparse(t, c), userCheck("alice")); !errors.Is(err, ErrCertSignature) {
		t.Errorf("nistp384 name on a nistp256 signature: %v", err)
	}
}

// TestCertAttack_PrincipalNULAndComma: OpenSSH reads principals and the
// key ID as C strings, so one with a NUL byte makes the certificate
// unreadable (it could otherwise read as "root" to a C verifier and as
// "root\x00..." to us); a principal with a comma is one name, matched
// only by that whole name, never as a list (CVE-2026-35414 in
// authorized_keys principals=, auth's TestCVE_2026_35414_...).
func TestCertAttack_PrincipalNULAndComma(t *testing.T) {
	ca := testSigner(t, "ed25519")
	key := testSigner(t, "ecdsa-p256").PublicKey()
	for name, edit := range map[string]func(*Certificate){
		"NUL in a principal": func(c *Certificate) { c.ValidPrincipals = []string{"root\x00alice"} },
		"NUL in the key ID":  func(c *Certificate) { c.KeyID = "ok\x00evil" },
		"NUL in an option":   func(c *Certificate) { c.Extensions = []CertOption{{Name: "permit-pty\x00x"}} },
	} {
		c := newCert(t, key, ca, edit)
		if _, err := ParseCertificate(c.Marshal()); err == nil || !strings.Contains(err.Error(), "NUL") {
			t.Errorf("%s: parsed (%v)", name, err)
		}
	}
	c := reparse(t, newCert(t, key, ca, func(c *Certificate) { c.ValidPrincipals = []string{"alice,root"} }))
	for _, n := range []string{"alice", "root", "alice,", ",root"} {
		if err := CheckCertificate(c, userCheck(n)); !errors.Is(err, ErrCertPrincipal) {
			t.Errorf("principal \"alice,root\" matched %q: %v", n, err)
		}
	}
	if err := CheckCertificate(c, userCheck("alice,root")); err != nil {
		t.Errorf("principal \"alice,root\" as itself: %v", err)
	}
	// force-command and source-address values with a NUL are refused.
	for _, opt := range []string{"force-command", "source-address"} {
		c := reparse(t, newCert(t, key, ca, func(c *Certificate) {
			c.CriticalOptions = []CertOption{{opt, tString([]byte("10.0.0.0/8\x00;rm"))}}
		}))
		if err := CheckCertificate(c, userCheck("alice")); !errors.Is(err, ErrCertOptions) {
			t.Errorf("%s with a NUL: %v", opt, err)
		}
	}
}

// TestCertAttack_ValidityWrapAround: the bounds are unsigned 64-bit
// numbers. Read as signed (time.Unix(int64(v))), a valid-after from
// 2^63 on is in the past and a valid-before of "forever" (2^64-1) is -1,
// long expired; a window whose end precedes its start would pass a check
// that only looks at one bound.
func TestCertAttack_ValidityWrapAround(t *testing.T) {
	ca := testSigner(t, "ed25519")
	key := testSigner(t, "ed25519").PublicKey()
	now := uint64(testNow.Unix())
	for _, c := range []struct {
		name          string
		after, before uint64
		reason        error
	}{
		{"after 2^63 (negative as int64)", 1 << 63, CertForever, ErrCertNotYetValid},
		{"after 2^64-1", CertForever, CertForever, ErrCertNotYetValid},
		{"after 2^63+now", 1<<63 + now, CertForever, ErrCertNotYetValid},
		{"before 2^63", 0, 1 << 63, nil},
		{"forever", 0, CertForever, nil},
		{"before precedes after", now + 10, now - 10, ErrCertExpired},
		{"before precedes after, both huge", CertForever, 1 << 63, ErrCertExpired},
		{"empty window now", now, now, ErrCertExpired},
	} {
		cert := reparse(t, newCert(t, key, ca, func(x *Certificate) { x.ValidAfter, x.ValidBefore = c.after, c.before }))
		err := CheckCertificate(cert, userCheck("alice"))
		if c.reason == nil && err != nil || c.reason != nil && !errors.Is(err, c.reason) {
			t.Errorf("%s: %v, want %v", c.name, err, c.reason)
		}
	}
	// Bounds past what time.Time holds are printed as numbers, never as
	// negative times.
	if certTime(1<<63) != "9223372036854775808" || certTime(CertForever) != "forever" || certTime(0) != "1970-01-01T00:00:00Z" {
		t.Errorf("certTime: %s, %s, %s", certTime(1<<63), certTime(CertForever), certTime(0))
	}
	// A clock before 1970 is before every window.
	cert := reparse(t, newCert(t, key, ca, func(x *Certificate) { x.ValidAfter, x.ValidBefore = 0, CertForever }))
	if err := CheckCertificate(cert, CertCheck{Type: UserCert, Principal: "alice", Now: time.Unix(-5, 0)}); !errors.Is(err, ErrCertNotYetValid) {
		t.Errorf("clock before 1970: %v", err)
	}
}

// TestCertParseBounds: every proper prefix and trailing data fail; more
// than MaxCertPrincipals principals fail; an unknown type fails.
func TestCertParseBounds(t *testing.T) {
	ca := testSigner(t, "ecdsa-p256")
	blob := newCert(t, testSigner(t, "ed25519").PublicKey(), ca, nil).Marshal()
	for i := range blob {
		if _, err := ParsePublicKey(blob[:i]); err == nil {
			t.Fatalf("%d-byte prefix parsed", i)
		}
	}
	mustNotParse(t, "trailing byte", append(bytes.Clone(blob), 0))
	many := make([]string, MaxCertPrincipals+1)
	for i := range many {
		many[i] = "p"
	}
	c := newCert(t, testSigner(t, "ed25519").PublicKey(), ca, func(c *Certificate) { c.ValidPrincipals = many })
	if _, err := ParseCertificate(c.Marshal()); err == nil {
		t.Error("parsed 257 principals")
	}
	c.ValidPrincipals = many[:MaxCertPrincipals]
	c.SignCert(rand.Reader, ca, "")
	if _, err := ParseCertificate(c.Marshal()); err != nil {
		t.Errorf("256 principals: %v", err)
	}
	for _, ct := range []uint32{0, 3, 1 << 31} {
		c := newCert(t, testSigner(t, "ed25519").PublicKey(), ca, func(c *Certificate) { c.CertType = ct })
		if _, err := ParseCertificate(c.Marshal()); err == nil {
			t.Errorf("certificate type %d parsed", ct)
		}
	}
	// The certified key's fields must be its type's.
	c = newCert(t, testSigner(t, "ed25519").PublicKey(), ca, nil)
	b := c.Marshal()
	_, rest, _ := tReadString(b)
	mustNotParse(t, "ed25519 body labelled ecdsa", tCat(tString([]byte(CertAlgoECDSA256)), rest))
	if _, err := ParseCertificate(testSigner(t, "ed25519").PublicKey().Marshal()); err == nil {
		t.Error("ParseCertificate of a plain key")
	}
}

func TestSourceAddress(t *testing.T) {
	for _, c := range []struct {
		list, addr string
		ok         bool
	}{
		{"10.0.0.0/8", "10.1.2.3", true},
		{"10.0.0.0/8", "11.1.2.3", false},
		{"192.168.1.7", "192.168.1.7", true},
		{"192.168.1.7", "192.168.1.8", false},
		{"10.0.0.0/8,2001:db8::/32", "2001:db8::1", true},
		{"2001:db8::/32", "10.0.0.1", false},
		{"10.0.0.0/8", "::ffff:10.0.0.1", true}, // a mapped address is its IPv4 address
		{"0.0.0.0/0", "127.0.0.1", true},
		{"::/0", "127.0.0.1", false},
	} {
		ok, err := SourceAddressAllows(c.list, netip.MustParseAddr(c.addr))
		if err != nil || ok != c.ok {
			t.Errorf("%s admits %s: %v, %v", c.list, c.addr, ok, err)
		}
	}
	for _, bad := range []string{"", ",", "10.0.0.0/8,", "10.0.0.0/33", "10.0.0.1/8", "host.example", "10.*", "!10.0.0.0/8", " 10.0.0.1", "fe80::1%eth0"} {
		if _, err := ParseSourceAddress(bad); err == nil {
			t.Errorf("source-address %q accepted", bad)
		}
	}
}

// TestCertFromSSHKeygen: certificates ssh-keygen makes, for keys of
// every type ssh-keygen makes and for a security key public key written
// by the software authenticator, parse and check, with their options.
func TestCertFromSSHKeygen(t *testing.T) {
	kg := sshtest.Binary(t, "ssh-keygen")
	dir := t.TempDir()
	run := func(args ...string) string {
		out, err := exec.Command(kg, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	caPath := filepath.Join(dir, "ca")
	run("-q", "-t", "ed25519", "-N", "", "-f", caPath)
	var pubs []string
	for _, kt := range []string{"ed25519", "ecdsa", "rsa"} {
		p := filepath.Join(dir, "id_"+kt)
		run("-q", "-t", kt, "-N", "", "-f", p)
		pubs = append(pubs, p+".pub")
	}
	for _, typ := range skTypes {
		p := filepath.Join(dir, "id_"+strings.SplitN(typ, "@", 2)[0]+".pub")
		a := newSoftSK(t, typ, "ssh:")
		if err := os.WriteFile(p, []byte(MarshalAuthorizedKey(a.pub(t))+" soft\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, p)
	}
	for _, pub := range pubs {
		run("-q", "-s", caPath, "-I", "id of "+filepath.Base(pub), "-n", "alice,bob", "-z", "4242",
			"-V", "20260101:20270101", "-O", "force-command=internal-sftp", "-O", "source-address=127.0.0.1,10.0.0.0/8",
			"-O", "no-pty", "-O", "extension:custom@example.com=v", pub)
		certPath := strings.TrimSuffix(pub, ".pub") + "-cert.pub"
		data, err := os.ReadFile(certPath)
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(data))
		blob, err := base64.StdEncoding.DecodeString(f[1])
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseCertificate(blob)
		if err != nil {
			t.Fatalf("%s: %v", certPath, err)
		}
		if c.Type() != f[0] || !bytes.Equal(c.Marshal(), blob) || c.Serial != 4242 || c.KeyID != "id of "+filepath.Base(pub) ||
			strings.Join(c.ValidPrincipals, ",") != "alice,bob" {
			t.Errorf("%s: %+v", certPath, c)
		}
		if err := CheckCertificate(c, userCheck("bob")); err != nil {
			t.Errorf("%s: %v", certPath, err)
		}
		if err := CheckCertificate(c, CertCheck{Type: UserCert, Principal: "bob", Now: time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)}); !errors.Is(err, ErrCertExpired) {
			t.Errorf("%s in 2027: %v", certPath, err)
		}
		p, err := c.Permissions()
		if err != nil {
			t.Fatal(err)
		}
		if p.ForceCommand != "internal-sftp" || p.SourceAddress != "127.0.0.1,10.0.0.0/8" || p.PermitPTY || !p.PermitPortForwarding ||
			!p.PermitAgentForwarding || !p.PermitX11Forwarding || !p.PermitUserRC || len(p.UnknownExtensions) != 1 {
			t.Errorf("%s: permissions %+v", certPath, p)
		}
		// ssh-keygen -L reads back what we marshal.
		if err := os.WriteFile(certPath, []byte(MarshalAuthorizedKey(c)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out := run("-L", "-f", certPath); !strings.Contains(out, "Serial: 4242") {
			t.Errorf("ssh-keygen -L of our marshalling:\n%s", out)
		}
	}
}

// TestNewCertSigner: a certificate's signer offers the certificate
// algorithms and signs with the plain ones, which the certificate
// verifies.
func TestNewCertSigner(t *testing.T) {
	ca := testSigner(t, "ed25519")
	for _, tk := range testKeys() {
		s := testSigner(t, tk.name)
		c := reparse(t, newCert(t, s.PublicKey(), ca, nil))
		cs, err := NewCertSigner(c, s)
		if err != nil {
			t.Fatal(err)
		}
		if cs.PublicKey() != PublicKey(c) {
			t.Error("PublicKey is not the certificate")
		}
		want := SignatureAlgorithmsFor(c.Type())
		if strings.Join(cs.Algorithms(), ",") != strings.Join(want, ",") {
			t.Errorf("%s: algorithms %v, want %v", tk.name, cs.Algorithms(), want)
		}
		for _, a := range append(cs.Algorithms(), "") {
			sig, err := cs.Sign(rand.Reader, []byte("d"), a)
			if err != nil {
				t.Fatal(err)
			}
			name, _, _ := tReadString(sig)
			if a != "" && string(name) != UnderlyingSignatureAlgorithm(a) {
				t.Errorf("%s: signature named %s", a, name)
			}
			if err := c.Verify([]byte("d"), sig); err != nil {
				t.Error(err)
			}
		}
		if _, err := cs.Sign(rand.Reader, []byte("d"), s.Algorithms()[0]); err == nil {
			t.Errorf("%s: signed with the plain algorithm under the certificate", tk.name)
		}
	}
	if _, err := NewCertSigner(reparse(t, newCert(t, testSigner(t, "ecdsa-p256").PublicKey(), ca, nil)), ca); err == nil {
		t.Error("a signer of another key")
	}
}

// TestExchangeWithHostCertificate: a key exchange under a certificate
// host key algorithm: the server signs with the certificate's signer (the
// signature names the plain algorithm) and sends the certificate as K_S;
// the client verifies and gets the certificate as the host key, for its
// HostKeyCallback to check against its CA.
func TestExchangeWithHostCertificate(t *testing.T) {
	ca := testSigner(t, "ed25519")
	for _, tk := range testKeys() {
		hk := testSigner(t, tk.name)
		cert := reparse(t, newCert(t, hk.PublicKey(), ca, func(c *Certificate) { c.CertType = HostCert }))
		cs, err := NewCertSigner(cert, hk)
		if err != nil {
			t.Fatal(err)
		}
		for _, algo := range cs.Algorithms() {
			m := testMagics()
			c, err := NewClient(Curve25519SHA256, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			reply, _, err := Server(Curve25519SHA256, rand.Reader, c.InitMessage(), m, cs, algo)
			if err != nil {
				t.Fatalf("%s: server: %v", algo, err)
			}
			res, err := c.HandleReply(reply, m, algo)
			if err != nil {
				t.Fatalf("%s: client: %v", algo, err)
			}
			got, ok := res.HostKey.(*Certificate)
			if !ok || !bytes.Equal(got.Marshal(), cert.Marshal()) {
				t.Fatalf("%s: host key %T", algo, res.HostKey)
			}
			// The plain algorithm's name is not a certificate's.
			c2, _ := NewClient(Curve25519SHA256, rand.Reader)
			reply2, _, err := Server(Curve25519SHA256, rand.Reader, c2.InitMessage(), m, cs, algo)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c2.HandleReply(reply2, m, UnderlyingSignatureAlgorithm(algo)); err == nil {
				t.Errorf("%s: accepted as %s", algo, UnderlyingSignatureAlgorithm(algo))
			}
		}
	}
}
