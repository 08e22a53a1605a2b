package kex

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

// checkCertInvariants holds for every certificate ParsePublicKey returns:
// it marshals back to its blob, its key and CA key are plain keys that
// satisfy checkKeyInvariants, its principals are bounded and without NUL
// bytes, and its type is the one its key calls for.
func checkCertInvariants(c *Certificate, blob []byte) error {
	if !bytes.Equal(c.Marshal(), blob) {
		return fmt.Errorf("%s marshals to %x, parsed from %x", c.Type(), c.Marshal(), blob)
	}
	typ, _, _ := tReadString(blob)
	if string(typ) != c.Type() || CertKeyType(c.Key.Type()) != c.Type() {
		return fmt.Errorf("blob names %q, certificate is %s of a %s key", typ, c.Type(), c.Key.Type())
	}
	for _, k := range []PublicKey{c.Key, c.SignatureKey} {
		if _, ok := k.(*Certificate); ok {
			return errors.New("a certificate inside a certificate")
		}
		if err := checkKeyInvariants(k, k.Marshal()); err != nil {
			return err
		}
	}
	if len(c.ValidPrincipals) > MaxCertPrincipals || c.CertType != UserCert && c.CertType != HostCert {
		return fmt.Errorf("%d principals, type %d", len(c.ValidPrincipals), c.CertType)
	}
	for _, p := range append([]string{c.KeyID}, c.ValidPrincipals...) {
		if bytes.IndexByte([]byte(p), 0) >= 0 {
			return fmt.Errorf("NUL in %q", p)
		}
	}
	if _, _, err := splitSignature(c.Signature); err != nil {
		return fmt.Errorf("signature blob: %v", err)
	}
	return nil
}

// checkSKInvariants holds for every security key ParsePublicKey returns.
func checkSKInvariants(k SKPublicKey, blob []byte) error {
	if !bytes.Equal(k.Marshal(), blob) {
		return fmt.Errorf("%s marshals to %x, parsed from %x", k.Type(), k.Marshal(), blob)
	}
	plain, err := NewPublicKey(k.CryptoPublicKey())
	if err != nil {
		return err
	}
	want := map[string]string{KeyAlgoSKED25519: KeyAlgoED25519, KeyAlgoSKECDSA256: KeyAlgoECDSA256}[k.Type()]
	if plain.Type() != want {
		return fmt.Errorf("%s key holds a %s key", k.Type(), plain.Type())
	}
	if bytes.IndexByte([]byte(k.Application()), 0) >= 0 {
		return errors.New("NUL in the application")
	}
	return nil
}

// FuzzParseCertificate parses certificate blobs. mode bit 0: data is a
// whole blob; otherwise data replaces one field of a valid certificate
// (bits 1-4 pick it, from the nonce to the signature) and the result is
// parsed. What parses must satisfy checkCertInvariants, and
// CheckCertificate and Permissions must not panic; a certificate whose
// signed part was changed must never pass CheckCertificate.
func FuzzParseCertificate(f *testing.F) {
	ca := testSigner(f, "ed25519")
	base := newCert(f, testSigner(f, "ecdsa-p256").PublicKey(), ca, func(c *Certificate) {
		c.CriticalOptions = []CertOption{{"force-command", tString([]byte("internal-sftp"))}, {"source-address", tString([]byte("10.0.0.0/8"))}}
	})
	baseFields := certFields(base.Marshal())
	for _, k := range certKeys(f) {
		f.Add(uint8(1), newCert(f, k, ca, nil).Marshal())
	}
	f.Add(uint8(1), newCert(f, testSigner(f, "ed25519").PublicKey(), testSigner(f, "rsa-2048"), nil).Marshal())
	for i, fl := range baseFields {
		f.Add(uint8(i<<1), fl)
	}
	f.Add(uint8(6<<1), tCat(tString([]byte("a,b")), tString([]byte("c\x00"))))
	f.Add(uint8(10<<1), tCat(tString([]byte("permit-pty")), tString(nil)))
	f.Add(uint8(7<<1), append(make([]byte, 8), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
	f.Fuzz(func(t *testing.T, mode uint8, data []byte) {
		blob := data
		field := -1
		if mode&1 == 0 {
			field = int(mode>>1) % len(baseFields)
			fields := append([][]byte(nil), baseFields...)
			fields[field] = data
			blob = bytes.Join(fields, nil)
		}
		k, err := ParsePublicKey(blob)
		if err != nil {
			if k != nil {
				t.Fatalf("ParsePublicKey failed (%v) but returned a key", err)
			}
			return
		}
		c, ok := k.(*Certificate)
		if !ok {
			if err := checkKeyInvariants(k, blob); err != nil {
				t.Fatal(err)
			}
			return
		}
		if err := checkCertInvariants(c, blob); err != nil {
			t.Fatal(err)
		}
		c.Permissions()
		for _, typ := range []uint32{UserCert, HostCert} {
			err := CheckCertificate(c, CertCheck{Type: typ, Principal: "alice", Now: testNow})
			// Fields 0-13 are signed: changed, the CA's signature no
			// longer holds (the fuzzer cannot forge ed25519).
			if err == nil && field >= 0 && field <= 13 && !bytes.Equal(data, baseFields[field]) {
				t.Fatalf("field %d changed to %x and the certificate still checks", field, data)
			}
		}
		CheckCertificate(c, CertCheck{Type: UserCert, Now: time.Unix(int64(c.ValidAfter>>1), 0), AllowNoPrincipals: true})
		if again, err := ParseCertificate(c.Marshal()); err != nil || !bytes.Equal(again.Marshal(), blob) {
			t.Fatalf("re-parse: %v", err)
		}
	})
}

// certFields splits an ecdsa-sha2-nistp256 certificate blob into its
// fields, each with its framing: type, nonce, curve, point, serial,
// type, key ID, principals, valid after, valid before, critical options,
// extensions, reserved, signature key, signature.
func certFields(blob []byte) [][]byte {
	var out [][]byte
	str := func() {
		n := 4 + int(uint32(blob[0])<<24|uint32(blob[1])<<16|uint32(blob[2])<<8|uint32(blob[3]))
		out, blob = append(out, blob[:n]), blob[n:]
	}
	fixed := func(n int) { out, blob = append(out, blob[:n]), blob[n:] }
	str()
	str()
	str()
	str()
	fixed(8)
	fixed(4)
	str()
	str()
	fixed(8)
	fixed(8)
	str()
	str()
	str()
	str()
	str()
	return out
}

// FuzzSKSignature verifies security key signature blobs with one key of
// each type over fixed data. mode bit 0 picks the key, bit 1 means data
// is the whole blob; otherwise data is the body after the algorithm name
// (bit 2: the webauthn name). Verify must agree with VerifySK and the
// presence flag, details come only with success, and what verifies over
// the data must not verify over other data.
func FuzzSKSignature(f *testing.F) {
	keys := []*softSK{newSoftSK(f, KeyAlgoSKED25519, "ssh:"), newSoftSK(f, KeyAlgoSKECDSA256, "ssh:")}
	data := []byte("fuzzed sk signed data")
	for i, a := range keys {
		for _, fl := range []byte{0, SKFlagUserPresent, SKFlagUserPresent | SKFlagUserVerified} {
			a.flags = fl
			sig := a.sign(f, data)
			f.Add(uint8(i|2), sig)
			_, rest, _ := tReadString(sig)
			f.Add(uint8(i), rest)
		}
	}
	keys[1].flags = SKFlagUserPresent
	w := keys[1].signWebAuthn(f, data, "https://o.example", "", nil)
	f.Add(uint8(1|2), w)
	_, rest, _ := tReadString(w)
	f.Add(uint8(1|4), rest)
	pubs := []SKPublicKey{keys[0].pub(f).(SKPublicKey), keys[1].pub(f).(SKPublicKey)}
	f.Fuzz(func(t *testing.T, mode uint8, b []byte) {
		k := pubs[mode&1]
		blob := b
		if mode&2 == 0 {
			name := k.Type()
			if mode&4 != 0 {
				name = SigAlgoWebAuthnSKECDSA256
			}
			blob = tCat(tString([]byte(name)), b)
		}
		d, err := k.VerifySK(data, blob)
		verr := k.Verify(data, blob)
		if err != nil {
			if d != nil {
				t.Fatal("VerifySK failed but returned details")
			}
			if verr == nil {
				t.Fatal("Verify accepts what VerifySK refuses")
			}
			return
		}
		if (verr == nil) != (d.Flags&SKFlagUserPresent != 0) {
			t.Fatalf("Verify %v with flags %#x", verr, d.Flags)
		}
		if d.Algorithm != KeyAlgoSKED25519 && d.Algorithm != KeyAlgoSKECDSA256 && d.Algorithm != SigAlgoWebAuthnSKECDSA256 {
			t.Fatalf("algorithm %q", d.Algorithm)
		}
		if _, err := k.VerifySK([]byte("other data"), blob); err == nil {
			t.Fatal("verified over other data too")
		}
	})
}

// TestFuzzSeedsCertificates: the generated seeds of FuzzParseCertificate
// parse, and a fresh certificate of each key type satisfies the
// invariants (so that the target starts from valid inputs).
func TestFuzzSeedsCertificates(t *testing.T) {
	ca := testSigner(t, "ecdsa-p384")
	for _, k := range certKeys(t) {
		c := newCert(t, k, ca, nil)
		if err := checkCertInvariants(reparse(t, c), c.Marshal()); err != nil {
			t.Error(err)
		}
		if sk, ok := k.(SKPublicKey); ok {
			if err := checkSKInvariants(sk, sk.Marshal()); err != nil {
				t.Error(err)
			}
		}
	}
}
