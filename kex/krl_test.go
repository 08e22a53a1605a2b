package kex

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rsftp/rsftp/internal/sshtest"
)

func tU64(v uint64) []byte {
	return []byte{byte(v >> 56), byte(v >> 48), byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

// krlBlob builds a KRL with the test's own encoders: header, then the
// sections given as (type, body).
func krlBlob(sections ...[]byte) []byte {
	b := tCat([]byte("SSHKRL\n\x00"), beU32(1), tU64(3), tU64(1700000000), tU64(0), tString(nil), tString([]byte("test krl")))
	for _, s := range sections {
		b = append(b, s...)
	}
	return b
}

func krlSection(typ byte, body []byte) []byte { return tCat([]byte{typ}, tString(body)) }

// krlCertSection: string ca (nil: any CA), string reserved, subsections.
func krlCertSection(ca PublicKey, subs ...[]byte) []byte {
	var caBlob []byte
	if ca != nil {
		caBlob = ca.Marshal()
	}
	return krlSection(1, tCat(append([][]byte{tString(caBlob), tString(nil)}, subs...)...))
}

func TestKRLRevokes(t *testing.T) {
	ca := testSigner(t, "ed25519")
	otherCA := testSigner(t, "ecdsa-p256")
	user := testSigner(t, "ecdsa-p384").PublicKey()
	cert := func(ca Signer, serial uint64, id string) *Certificate {
		return reparse(t, newCert(t, user, ca, func(c *Certificate) { c.Serial, c.KeyID = serial, id }))
	}
	bitmap := tCat(tU64(1000), tString([]byte{0x05})) // serials 1000 and 1002
	revokedPlain := testSigner(t, "rsa-2048").PublicKey()
	bySHA1 := testSigner(t, "ecdsa-p521").PublicKey()
	bySHA256 := newSoftSK(t, KeyAlgoSKED25519, "ssh:").pub(t)
	s1 := sha1.Sum(bySHA1.Marshal())
	s256 := sha256.Sum256(bySHA256.Marshal())
	k, err := ParseKRL(krlBlob(
		krlCertSection(ca.PublicKey(),
			krlSection(0x20, tCat(tU64(5), tU64(9))),
			krlSection(0x21, tCat(tU64(20), tU64(29))),
			krlSection(0x22, bitmap),
			krlSection(0x23, tCat(tString([]byte("bad-id")), tString([]byte("worse-id")))),
		),
		krlCertSection(nil, krlSection(0x23, tString([]byte("any-ca-id")))),
		krlSection(2, tString(revokedPlain.Marshal())),
		krlSection(3, tString(s1[:])),
		krlSection(5, tString(s256[:])),
		krlSection(255, tCat(tString([]byte("optional@example.com")), []byte{0}, tString([]byte("x")))),
	))
	if err != nil {
		t.Fatal(err)
	}
	if k.Version != 3 || k.Comment != "test krl" {
		t.Errorf("header %d %q", k.Version, k.Comment)
	}
	for _, c := range []struct {
		name    string
		key     PublicKey
		revoked bool
	}{
		{"listed serial", cert(ca, 5, "x"), true},
		{"listed serial 9", cert(ca, 9, "x"), true},
		{"unlisted serial", cert(ca, 6, "x"), false},
		{"range start", cert(ca, 20, "x"), true},
		{"range end", cert(ca, 29, "x"), true},
		{"past the range", cert(ca, 30, "x"), false},
		{"bitmap bit 0", cert(ca, 1000, "x"), true},
		{"bitmap bit 1 (clear)", cert(ca, 1001, "x"), false},
		{"bitmap bit 2", cert(ca, 1002, "x"), true},
		{"key ID", cert(ca, 77, "worse-id"), true},
		{"serial 0 never by number", cert(ca, 0, "x"), false},
		{"another CA's serial", cert(otherCA, 5, "x"), false},
		{"another CA's key ID", cert(otherCA, 77, "bad-id"), false},
		{"any CA's key ID", cert(otherCA, 77, "any-ca-id"), true},
		{"explicit plain key", revokedPlain, true},
		{"by SHA-1", bySHA1, true},
		{"by SHA-256", bySHA256, true},
		{"another plain key", user, false},
		{"certificate of an explicitly revoked key", reparse(t, newCert(t, revokedPlain, otherCA, nil)), true},
		{"certificate signed by a revoked CA key", reparse(t, newCert(t, user, &pubSwapSigner{Signer: testSigner(t, "rsa-2048"), pub: revokedPlain}, nil)), true},
	} {
		if got := k.IsRevoked(c.key); got != c.revoked {
			t.Errorf("%s: revoked %v, want %v", c.name, got, c.revoked)
		}
	}
}

func TestKRLMalformed(t *testing.T) {
	ca := testSigner(t, "ed25519").PublicKey()
	good := krlBlob(krlCertSection(ca, krlSection(0x21, tCat(tU64(1), tU64(2)))))
	if _, err := ParseKRL(good); err != nil {
		t.Fatal(err)
	}
	header := len(krlBlob()) // a KRL of no sections is valid
	for i := len("SSHKRL\n\x00"); i < len(good); i++ {
		if _, err := ParseKRL(good[:i]); err == nil && i != header {
			t.Fatalf("%d-byte prefix parsed", i)
		}
	}
	if _, err := ParseKRL([]byte("ssh-ed25519 AAAA")); !errors.Is(err, ErrNotKRL) {
		t.Errorf("a key list: %v", err)
	}
	for name, b := range map[string][]byte{
		"version 2":             tCat([]byte("SSHKRL\n\x00"), beU32(2), tU64(0), tU64(0), tU64(0), tString(nil), tString(nil)),
		"unknown section":       krlBlob(krlSection(6, nil)),
		"critical extension":    krlBlob(krlSection(255, tCat(tString([]byte("must@example.com")), []byte{1}, tString(nil)))),
		"critical cert ext":     krlBlob(krlCertSection(ca, krlSection(0x39, tCat(tString([]byte("must@example.com")), []byte{1}, tString(nil))))),
		"unknown cert section":  krlBlob(krlCertSection(ca, krlSection(0x24, nil))),
		"range ends first":      krlBlob(krlCertSection(ca, krlSection(0x21, tCat(tU64(9), tU64(2))))),
		"range with extra":      krlBlob(krlCertSection(ca, krlSection(0x21, tCat(tU64(1), tU64(2), []byte{0})))),
		"serial list ragged":    krlBlob(krlCertSection(ca, krlSection(0x20, tCat(tU64(1), []byte{0, 0})))),
		"bitmap wraps":          krlBlob(krlCertSection(ca, krlSection(0x22, tCat(tU64(^uint64(0)-3), tString([]byte{0x7f, 0xff}))))),
		"negative bitmap":       krlBlob(krlCertSection(ca, krlSection(0x22, tCat(tU64(0), tString([]byte{0x80}))))),
		"NUL in a key ID":       krlBlob(krlCertSection(ca, krlSection(0x23, tString([]byte("a\x00b"))))),
		"CA is a certificate":   krlBlob(krlCertSection(reparse(t, newCert(t, ca, testSigner(t, "ed25519"), nil)))),
		"explicit certificate":  krlBlob(krlSection(2, tString(newCert(t, ca, testSigner(t, "ed25519"), nil).Marshal()))),
		"SHA-1 of 19 bytes":     krlBlob(krlSection(3, tString(make([]byte, 19)))),
		"SHA-256 of 33 bytes":   krlBlob(krlSection(5, tString(make([]byte, 33)))),
		"section past the end":  append(krlBlob(), 1, 0, 0, 1, 0),
		"explicit key garbage":  krlBlob(krlSection(2, tString([]byte("junk")))),
		"signature without sig": krlBlob(krlSection(4, tString(ca.Marshal()))),
	} {
		if _, err := ParseKRL(b); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	// A bitmap that reaches exactly 2^64-1, and a signature section
	// (skipped, as OpenSSH skips it).
	for name, b := range map[string][]byte{
		"bitmap to the last serial": krlBlob(krlCertSection(ca, krlSection(0x22, tCat(tU64(^uint64(0)-7), tString([]byte{0x7f}))))),
		"signature section":         krlBlob(krlSection(4, tString(ca.Marshal())), tString([]byte("sig"))),
		"bitmap with leading zero":  krlBlob(krlCertSection(ca, krlSection(0x22, tCat(tU64(0), tString([]byte{0, 0x80}))))),
	} {
		if _, err := ParseKRL(b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestKRLFromSSHKeygen: KRLs made by ssh-keygen -k from a specification
// (serials listed, in ranges and scattered so that it picks bitmaps, key
// IDs, keys, sha1:, sha256:) revoke what ssh-keygen -Q says they revoke.
func TestKRLFromSSHKeygen(t *testing.T) {
	kg := sshtest.Binary(t, "ssh-keygen")
	dir := t.TempDir()
	run := func(args ...string) error {
		out, err := exec.Command(kg, args...).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "REVOKED") {
			return fmt.Errorf("ssh-keygen %v: %v\n%s", args, err, out)
		}
		return err
	}
	ca := testSigner(t, "ecdsa-p256")
	caPub := filepath.Join(dir, "ca.pub")
	os.WriteFile(caPub, []byte(MarshalAuthorizedKey(ca.PublicKey())+"\n"), 0o644)
	plain := []PublicKey{testSigner(t, "rsa-2048").PublicKey(), testSigner(t, "ecdsa-p521").PublicKey(), newSoftSK(t, KeyAlgoSKECDSA256, "ssh:").pub(t)}
	var spec strings.Builder
	spec.WriteString("serial: 5\nserial: 100-200\nid: revoked-id\n")
	for s := 1001; s < 1400; s += 3 {
		fmt.Fprintf(&spec, "serial: %d\n", s)
	}
	fmt.Fprintf(&spec, "key: %s\nsha1: %s\nsha256: %s\n", MarshalAuthorizedKey(plain[0]), MarshalAuthorizedKey(plain[1]), MarshalAuthorizedKey(plain[2]))
	specPath := filepath.Join(dir, "spec")
	os.WriteFile(specPath, []byte(spec.String()), 0o644)
	krlPath := filepath.Join(dir, "krl")
	if err := run("-k", "-f", krlPath, "-s", caPub, "-z", "9", specPath); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(krlPath)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKRL(data)
	if err != nil {
		t.Fatalf("ssh-keygen's KRL: %v", err)
	}
	if k.Version != 9 {
		t.Errorf("version %d", k.Version)
	}
	if len(k.certs) != 1 || len(k.certs[0].bitmaps) == 0 || len(k.certs[0].ranges) == 0 {
		t.Errorf("expected serial ranges and bitmaps from ssh-keygen: %+v", k.certs)
	}
	user := testSigner(t, "ed25519").PublicKey()
	var keys []PublicKey
	keys = append(keys, plain...)
	keys = append(keys, user, testSigner(t, "ecdsa-p384").PublicKey())
	for _, serial := range []uint64{0, 4, 5, 6, 99, 100, 150, 200, 201, 1000, 1001, 1002, 1003, 1004, 1399, 1400} {
		keys = append(keys, reparse(t, newCert(t, user, ca, func(c *Certificate) { c.Serial = serial })))
	}
	keys = append(keys, reparse(t, newCert(t, user, ca, func(c *Certificate) { c.Serial, c.KeyID = 77, "revoked-id" })))
	keys = append(keys, reparse(t, newCert(t, user, testSigner(t, "ed25519"), func(c *Certificate) { c.Serial = 5 })))
	revokedCount := 0
	for i, key := range keys {
		p := filepath.Join(dir, fmt.Sprintf("k%d.pub", i))
		os.WriteFile(p, []byte(MarshalAuthorizedKey(key)+"\n"), 0o644)
		err := run("-Q", "-f", krlPath, p)
		theirs := err != nil
		if err != nil && !strings.Contains(err.Error(), "exit status") {
			t.Fatal(err)
		}
		if ours := k.IsRevoked(key); ours != theirs {
			serial := uint64(0)
			if c, ok := key.(*Certificate); ok {
				serial = c.Serial
			}
			t.Errorf("key %d (%s, serial %d): we say revoked %v, ssh-keygen -Q %v", i, key.Type(), serial, ours, theirs)
		}
		if theirs {
			revokedCount++
		}
	}
	if revokedCount < 10 {
		t.Errorf("only %d keys revoked: the test does not test much", revokedCount)
	}
}

// FuzzParseKRL parses KRLs: whole (mode bit 0) or as the body of one
// certificate section for a fixed CA; what parses must answer IsRevoked
// for plain keys and certificates without panicking, and a certificate
// of serial 0 is revoked only by key ID or key.
func FuzzParseKRL(f *testing.F) {
	ca := testSigner(f, "ed25519")
	user := testSigner(f, "ecdsa-p256").PublicKey()
	f.Add(uint8(1), krlBlob(krlCertSection(ca.PublicKey(), krlSection(0x20, tU64(5)), krlSection(0x21, tCat(tU64(1), tU64(9))))))
	f.Add(uint8(1), krlBlob(krlSection(2, tString(user.Marshal())), krlSection(255, tCat(tString([]byte("x")), []byte{0}, tString(nil)))))
	f.Add(uint8(0), tCat(tString(ca.PublicKey().Marshal()), tString(nil), krlSection(0x22, tCat(tU64(0), tString([]byte{0x7f, 0xff})))))
	f.Add(uint8(0), tCat(tString(nil), tString(nil), krlSection(0x23, tString([]byte("id")))))
	certs := []*Certificate{
		reparse(f, newCert(f, user, ca, func(c *Certificate) { c.Serial = 0 })),
		reparse(f, newCert(f, user, ca, func(c *Certificate) { c.Serial = 5 })),
		reparse(f, newCert(f, user, ca, func(c *Certificate) { c.Serial = 1<<64 - 1 })),
	}
	f.Fuzz(func(t *testing.T, mode uint8, data []byte) {
		blob := data
		if mode&1 == 0 {
			blob = krlBlob(krlSection(1, data))
		}
		k, err := ParseKRL(blob)
		if err != nil {
			if k != nil {
				t.Fatal("error with a KRL")
			}
			return
		}
		k.IsRevoked(user)
		k.IsRevoked(ca.PublicKey())
		for _, c := range certs {
			revoked := k.IsRevoked(c)
			if c.Serial == 0 && revoked && !k.plainRevoked(user) && !k.plainRevoked(ca.PublicKey()) {
				found := false
				for _, s := range k.certs {
					found = found || s.keyIDs[c.KeyID]
				}
				if !found {
					t.Fatal("a serial-0 certificate revoked by serial")
				}
			}
		}
		if !bytes.HasPrefix(blob, []byte(krlMagic)) {
			t.Fatal("parsed without the magic")
		}
	})
}
