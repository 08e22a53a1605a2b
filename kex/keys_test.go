package kex

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"io"
	"math/big"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// ---------------------------------------------------------------------
// Test keys. All are fixed so that fuzz corpora and failures reproduce:
// ed25519 and ECDSA from constant scalars, RSA from the PEM blocks at the
// end of this file (generated for these tests with openssl genrsa).

type testKey struct {
	name string
	priv crypto.Signer
}

var (
	testKeysOnce sync.Once
	testKeysList []testKey
)

func mustParseRSA(p string) *rsa.PrivateKey {
	b, _ := pem.Decode([]byte(p))
	if b == nil {
		panic("bad PEM")
	}
	k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
	if err != nil {
		panic(err)
	}
	return k
}

func mustECDSA(c elliptic.Curve, fill byte) *ecdsa.PrivateKey {
	n := (c.Params().BitSize + 7) / 8
	d := bytes.Repeat([]byte{fill}, n)
	if c == elliptic.P521() {
		d[0] = 0x01
	}
	k, err := ecdsa.ParseRawPrivateKey(c, d)
	if err != nil {
		panic(err)
	}
	return k
}

// testKeys returns one private key of each kind we support.
func testKeys() []testKey {
	testKeysOnce.Do(func() {
		testKeysList = []testKey{
			{"ed25519", ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x42}, 32))},
			{"ecdsa-p256", mustECDSA(elliptic.P256(), 0x5a)},
			{"ecdsa-p384", mustECDSA(elliptic.P384(), 0x5b)},
			{"ecdsa-p521", mustECDSA(elliptic.P521(), 0x5c)},
			{"rsa-2048", mustParseRSA(testRSA2048)},
			{"rsa-3072", mustParseRSA(testRSA3072)},
		}
	})
	return testKeysList
}

func testSigner(t testing.TB, name string) Signer {
	t.Helper()
	for _, k := range testKeys() {
		if k.name == name {
			s, err := NewSigner(k.priv)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}
	t.Fatalf("no test key %q", name)
	return nil
}

// Independent SSH encoders for the tests (no internal/wire).

func tString(b []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

func tMPInt(mag []byte) []byte {
	for len(mag) > 0 && mag[0] == 0 {
		mag = mag[1:]
	}
	if len(mag) > 0 && mag[0] >= 0x80 {
		mag = append([]byte{0}, mag...)
	}
	return tString(mag)
}

func tCat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// ---------------------------------------------------------------------
// Cross-checks with golang.org/x/crypto/ssh.

func TestKeysCrossXCrypto(t *testing.T) {
	data := []byte("data to be signed, as an exchange hash would be")
	for _, tk := range testKeys() {
		t.Run(tk.name, func(t *testing.T) {
			xPub, err := ssh.NewPublicKey(tk.priv.Public())
			if err != nil {
				t.Fatal(err)
			}
			blob := xPub.Marshal()

			// x/crypto's encoding parses with ours and re-encodes unchanged.
			ours, err := ParsePublicKey(blob)
			if err != nil {
				t.Fatal(err)
			}
			if ours.Type() != xPub.Type() {
				t.Errorf("Type %s, x/crypto %s", ours.Type(), xPub.Type())
			}
			if !bytes.Equal(ours.Marshal(), blob) {
				t.Errorf("Marshal differs from x/crypto:\n%x\n%x", ours.Marshal(), blob)
			}
			wrapped, err := NewPublicKey(tk.priv.Public())
			if err != nil || !bytes.Equal(wrapped.Marshal(), blob) {
				t.Errorf("NewPublicKey: %v, marshal equal %v", err, err == nil && bytes.Equal(wrapped.Marshal(), blob))
			}
			if got, want := FingerprintSHA256(ours), ssh.FingerprintSHA256(xPub); got != want {
				t.Errorf("fingerprint %s, x/crypto %s", got, want)
			}
			if got, want := MarshalAuthorizedKey(ours), strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(xPub)), "\n"); got != want {
				t.Errorf("authorized key %q, x/crypto %q", got, want)
			}

			signer, err := NewSigner(tk.priv)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(signer.PublicKey().Marshal(), blob) {
				t.Error("signer's public key differs")
			}
			algos := signer.Algorithms()
			if len(algos) == 0 || !equalStrings(algos, SignatureAlgorithmsFor(ours.Type())) {
				t.Errorf("Algorithms() = %v", algos)
			}
			xSigner, err := ssh.NewSignerFromKey(tk.priv)
			if err != nil {
				t.Fatal(err)
			}
			xAlgSigner := xSigner.(ssh.AlgorithmSigner)

			for _, algo := range algos {
				// Our signature, checked by x/crypto.
				sigBlob, err := signer.Sign(rand.Reader, data, algo)
				if err != nil {
					t.Fatalf("%s: %v", algo, err)
				}
				var xSig ssh.Signature
				if err := ssh.Unmarshal(sigBlob, &xSig); err != nil {
					t.Fatalf("%s: x/crypto cannot parse our signature blob: %v", algo, err)
				}
				if xSig.Format != algo || len(xSig.Rest) != 0 {
					t.Errorf("%s: blob says %q with %d extra bytes", algo, xSig.Format, len(xSig.Rest))
				}
				if err := xPub.Verify(data, &xSig); err != nil {
					t.Errorf("%s: x/crypto rejects our signature: %v", algo, err)
				}
				if err := ours.Verify(data, sigBlob); err != nil {
					t.Errorf("%s: we reject our own signature: %v", algo, err)
				}

				// x/crypto's signature, checked by us.
				xs, err := xAlgSigner.SignWithAlgorithm(rand.Reader, data, algo)
				if err != nil {
					t.Fatalf("%s: x/crypto: %v", algo, err)
				}
				xBlob := ssh.Marshal(xs)
				if err := ours.Verify(data, xBlob); err != nil {
					t.Errorf("%s: we reject x/crypto's signature: %v", algo, err)
				}
				if ours.Verify(append(bytes.Clone(data), '!'), xBlob) == nil {
					t.Errorf("%s: x/crypto's signature verifies over other data", algo)
				}
				// Deterministic algorithms must give identical blobs.
				if algo == KeyAlgoED25519 || KeyTypeForSignatureAlgorithm(algo) == KeyAlgoRSA {
					if !bytes.Equal(xBlob, sigBlob) {
						t.Errorf("%s: deterministic signatures differ:\nours %x\nx    %x", algo, sigBlob, xBlob)
					}
				}
			}
			// The empty algorithm means the first one.
			def, err := signer.Sign(rand.Reader, data, "")
			if err != nil {
				t.Fatal(err)
			}
			if a, _, err := parseSignature(def, algos[0]); err != nil || a != algos[0] {
				t.Errorf("default signature algorithm: %q, %v; want %q", a, err, algos[0])
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSignatureAlgorithmTables(t *testing.T) {
	cases := []struct {
		keyType string
		algos   []string
	}{
		{KeyAlgoED25519, []string{"ssh-ed25519"}},
		{KeyAlgoECDSA256, []string{"ecdsa-sha2-nistp256"}},
		{KeyAlgoECDSA384, []string{"ecdsa-sha2-nistp384"}},
		{KeyAlgoECDSA521, []string{"ecdsa-sha2-nistp521"}},
		{KeyAlgoRSA, []string{"rsa-sha2-512", "rsa-sha2-256"}},
		{KeyAlgoSKED25519, []string{"sk-ssh-ed25519@openssh.com"}},
		{KeyAlgoSKECDSA256, []string{"sk-ecdsa-sha2-nistp256@openssh.com"}},
		{CertAlgoED25519, []string{"ssh-ed25519-cert-v01@openssh.com"}},
		{CertAlgoECDSA384, []string{"ecdsa-sha2-nistp384-cert-v01@openssh.com"}},
		{CertAlgoRSA, []string{"rsa-sha2-512-cert-v01@openssh.com", "rsa-sha2-256-cert-v01@openssh.com"}},
		{CertAlgoSKECDSA256, []string{"sk-ecdsa-sha2-nistp256-cert-v01@openssh.com"}},
		{"ssh-dss", nil},
		{"", nil},
	}
	for _, c := range cases {
		if got := SignatureAlgorithmsFor(c.keyType); !equalStrings(got, c.algos) {
			t.Errorf("SignatureAlgorithmsFor(%q) = %v, want %v", c.keyType, got, c.algos)
		}
		for _, a := range c.algos {
			if got := KeyTypeForSignatureAlgorithm(a); got != c.keyType {
				t.Errorf("KeyTypeForSignatureAlgorithm(%q) = %q, want %q", a, got, c.keyType)
			}
		}
	}
	// ssh-rsa as a signature algorithm is SHA-1: no key type makes it.
	for _, a := range []string{"ssh-rsa", "ssh-dss", "rsa-sha2-384", "", "ssh-ed448", "ssh-rsa-cert-v01@openssh.com", "ssh-dss-cert-v01@openssh.com"} {
		if got := KeyTypeForSignatureAlgorithm(a); got != "" {
			t.Errorf("KeyTypeForSignatureAlgorithm(%q) = %q, want none", a, got)
		}
	}
}

// ---------------------------------------------------------------------
// Malformed and weak keys and signatures (the CVE-2020-9283 lesson:
// lengths that reach a crypto primitive must be checked first).

func ed25519Blob(key []byte) []byte { return tCat(tString([]byte("ssh-ed25519")), tString(key)) }
func sigBlob(algo string, raw []byte) []byte {
	return tCat(tString([]byte(algo)), tString(raw))
}

func mustNotParse(t *testing.T, what string, blob []byte) {
	t.Helper()
	k, err := ParsePublicKey(blob)
	if err == nil {
		t.Errorf("%s: parsed as %s", what, k.Type())
	}
}

func TestEd25519Lengths(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	pub := priv.Public().(ed25519.PublicKey)
	for _, n := range []int{0, 1, 31, 33, 64} {
		key := make([]byte, n)
		copy(key, pub)
		mustNotParse(t, "ed25519 key of "+itoa(n)+" bytes", ed25519Blob(key))
	}
	if _, err := NewPublicKey(ed25519.PublicKey(pub[:31])); err == nil {
		t.Error("NewPublicKey accepted a 31-byte ed25519 key")
	}
	k, err := ParsePublicKey(ed25519Blob(pub))
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("m")
	good := ed25519.Sign(priv, msg)
	if err := k.Verify(msg, sigBlob("ssh-ed25519", good)); err != nil {
		t.Fatal(err)
	}
	for _, raw := range [][]byte{good[:63], append(bytes.Clone(good), 0), good[:0], good[:32], append(bytes.Clone(good), good...)} {
		if k.Verify(msg, sigBlob("ssh-ed25519", raw)) == nil {
			t.Errorf("ed25519 signature of %d bytes accepted", len(raw))
		}
	}
	// Right bytes, wrong algorithm names; trailing bytes after the blob.
	for _, algo := range []string{"ssh-ed25519@openssh.com", "ecdsa-sha2-nistp256", "ssh-rsa", "rsa-sha2-256", "", "SSH-ED25519"} {
		if k.Verify(msg, sigBlob(algo, good)) == nil {
			t.Errorf("signature labelled %q accepted", algo)
		}
	}
	if k.Verify(msg, append(sigBlob("ssh-ed25519", good), 0)) == nil {
		t.Error("signature blob with a trailing byte accepted")
	}
	if k.Verify(msg, nil) == nil {
		t.Error("empty signature blob accepted")
	}
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

func rsaBlob(e, n *big.Int) []byte {
	return tCat(tString([]byte("ssh-rsa")), tMPInt(e.Bytes()), tMPInt(n.Bytes()))
}

func TestRSAKeyBounds(t *testing.T) {
	e := big.NewInt(65537)
	oddOfBits := func(bits int) *big.Int {
		n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
		n.Or(n, new(big.Int).Lsh(big.NewInt(0x5555), uint(bits/2)))
		return n.SetBit(n, 0, 1)
	}
	for _, bits := range []int{512, 768, 1023, 16385, 20000} {
		mustNotParse(t, "RSA modulus of "+itoa(bits)+" bits", rsaBlob(e, oddOfBits(bits)))
	}
	for _, bits := range []int{1024, 2048, 16384} {
		k, err := ParsePublicKey(rsaBlob(e, oddOfBits(bits)))
		if err != nil {
			t.Errorf("RSA modulus of %d bits: %v", bits, err)
			continue
		}
		if !bytes.Equal(k.Marshal(), rsaBlob(e, oddOfBits(bits))) {
			t.Errorf("RSA %d bits: re-encoding differs", bits)
		}
	}
	n := oddOfBits(2048)
	for _, ev := range []int64{0, 1, 2, 4, 65536, 1 << 31, 1<<31 + 1, 1 << 40} {
		mustNotParse(t, "RSA exponent "+big.NewInt(ev).String(), rsaBlob(big.NewInt(ev), n))
	}
	for _, ev := range []int64{3, 17, 65537, 1<<31 - 1} {
		if _, err := ParsePublicKey(rsaBlob(big.NewInt(ev), n)); err != nil {
			t.Errorf("RSA exponent %d: %v", ev, err)
		}
	}
	// Non-canonical and negative mpints.
	mustNotParse(t, "RSA e with a needless zero", tCat(tString([]byte("ssh-rsa")), tString([]byte{0, 1, 0, 1}), tMPInt(n.Bytes())))
	mustNotParse(t, "RSA n negative", tCat(tString([]byte("ssh-rsa")), tMPInt(e.Bytes()), tString(n.Bytes())))
	mustNotParse(t, "RSA without n", tCat(tString([]byte("ssh-rsa")), tMPInt(e.Bytes())))
	mustNotParse(t, "RSA with trailing byte", append(rsaBlob(e, n), 0))
	// NewSigner and NewPublicKey apply the same bounds.
	small := &rsa.PublicKey{N: oddOfBits(768), E: 65537}
	if _, err := NewPublicKey(small); err == nil {
		t.Error("NewPublicKey accepted a 768-bit RSA key")
	}
}

// TestRSASignatureRules: SHA-1 ssh-rsa signatures are refused; short
// signatures (leading zeros stripped, as PuTTY and old SSH.NET send) are
// accepted as OpenSSH accepts them; long ones are not.
func TestRSASignatureRules(t *testing.T) {
	priv := mustParseRSA(testRSA2048)
	pub, err := NewPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("exchange hash")
	d := sha1.Sum(data)
	sha1Sig, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA1, d[:])
	if err != nil {
		t.Fatal(err)
	}
	if pub.Verify(data, sigBlob("ssh-rsa", sha1Sig)) == nil {
		t.Error("ssh-rsa (SHA-1) signature accepted")
	}
	// The same bytes relabelled as a SHA-2 signature must fail too.
	if pub.Verify(data, sigBlob("rsa-sha2-256", sha1Sig)) == nil {
		t.Error("SHA-1 signature relabelled rsa-sha2-256 accepted")
	}
	// And x/crypto's ssh-rsa signature.
	xs, _ := ssh.NewSignerFromKey(priv)
	xsig, err := xs.(ssh.AlgorithmSigner).SignWithAlgorithm(rand.Reader, data, ssh.KeyAlgoRSA)
	if err != nil {
		t.Fatal(err)
	}
	if pub.Verify(data, ssh.Marshal(xsig)) == nil {
		t.Error("x/crypto ssh-rsa signature accepted")
	}
	// Our signer refuses to make one.
	s, _ := NewSigner(priv)
	if _, err := s.Sign(rand.Reader, data, "ssh-rsa"); err == nil {
		t.Error("signer made an ssh-rsa signature")
	}
	// SHA-256 and SHA-512 signatures are not interchangeable.
	s256, _ := s.Sign(rand.Reader, data, SigAlgoRSASHA256)
	_, raw256, _ := parseSignature(s256, SigAlgoRSASHA256)
	if pub.Verify(data, sigBlob(SigAlgoRSASHA512, raw256)) == nil {
		t.Error("rsa-sha2-256 signature relabelled rsa-sha2-512 accepted")
	}

	// Find a signature with a leading zero byte (1 in 256).
	var msg, raw []byte
	for i := 0; ; i++ {
		msg = []byte("short signature " + itoa(i))
		b, err := s.Sign(rand.Reader, msg, SigAlgoRSASHA256)
		if err != nil {
			t.Fatal(err)
		}
		_, raw, _ = parseSignature(b, SigAlgoRSASHA256)
		if raw[0] == 0 {
			break
		}
		if i > 5000 {
			t.Fatal("no signature with a leading zero byte")
		}
	}
	if len(raw) != 256 {
		t.Fatalf("signature of %d bytes", len(raw))
	}
	if err := pub.Verify(msg, sigBlob(SigAlgoRSASHA256, raw[1:])); err != nil {
		t.Errorf("short signature rejected: %v", err)
	}
	if pub.Verify(msg, sigBlob(SigAlgoRSASHA256, append([]byte{0}, raw...))) == nil {
		t.Error("signature longer than the modulus accepted")
	}
	if pub.Verify(msg, sigBlob(SigAlgoRSASHA256, nil)) == nil {
		t.Error("empty signature accepted")
	}
}

func ecdsaBlob(typ, curve string, point []byte) []byte {
	return tCat(tString([]byte(typ)), tString([]byte(curve)), tString(point))
}

func TestECDSAKeyValidation(t *testing.T) {
	p256 := mustECDSA(elliptic.P256(), 0x11)
	p384 := mustECDSA(elliptic.P384(), 0x12)
	pt256, _ := p256.PublicKey.Bytes()
	pt384, _ := p384.PublicKey.Bytes()
	good := ecdsaBlob("ecdsa-sha2-nistp256", "nistp256", pt256)
	if k, err := ParsePublicKey(good); err != nil || !bytes.Equal(k.Marshal(), good) {
		t.Fatalf("valid P-256 key: %v", err)
	}

	offCurve := bytes.Clone(pt256)
	offCurve[len(offCurve)-1] ^= 1
	mustNotParse(t, "point not on the curve", ecdsaBlob("ecdsa-sha2-nistp256", "nistp256", offCurve))

	// x replaced by x + p: the same residue, not a canonical encoding.
	p := elliptic.P256().Params().P
	x := new(big.Int).SetBytes(pt256[1:33])
	if xp := new(big.Int).Add(x, p); xp.BitLen() <= 256 {
		nc := bytes.Clone(pt256)
		xp.FillBytes(nc[1:33])
		mustNotParse(t, "x >= p", ecdsaBlob("ecdsa-sha2-nistp256", "nistp256", nc))
	}
	pOnly := make([]byte, 65)
	pOnly[0] = 4
	p.FillBytes(pOnly[1:33])
	mustNotParse(t, "x = p", ecdsaBlob("ecdsa-sha2-nistp256", "nistp256", pOnly))

	compressed := append([]byte{2 + pt256[64]&1}, pt256[1:33]...)
	mustNotParse(t, "compressed point", ecdsaBlob("ecdsa-sha2-nistp256", "nistp256", compressed))
	mustNotParse(t, "point at infinity", ecdsaBlob("ecdsa-sha2-nistp256", "nistp256", []byte{0}))
	mustNotParse(t, "empty point", ecdsaBlob("ecdsa-sha2-nistp256", "nistp256", nil))
	mustNotParse(t, "point with an extra byte", ecdsaBlob("ecdsa-sha2-nistp256", "nistp256", append(bytes.Clone(pt256), 0)))
	mustNotParse(t, "point missing a byte", ecdsaBlob("ecdsa-sha2-nistp256", "nistp256", pt256[:64]))
	mustNotParse(t, "all-zero point", ecdsaBlob("ecdsa-sha2-nistp256", "nistp256", append([]byte{4}, make([]byte, 64)...)))

	// Curve name and key type must agree, and the point must fit.
	mustNotParse(t, "nistp256 key naming nistp384", ecdsaBlob("ecdsa-sha2-nistp256", "nistp384", pt256))
	mustNotParse(t, "nistp384 key naming nistp256", ecdsaBlob("ecdsa-sha2-nistp384", "nistp256", pt384))
	mustNotParse(t, "P-384 point in a nistp256 key", ecdsaBlob("ecdsa-sha2-nistp256", "nistp256", pt384))
	mustNotParse(t, "P-256 point in a nistp384 key", ecdsaBlob("ecdsa-sha2-nistp384", "nistp384", pt256))
	mustNotParse(t, "unknown curve", ecdsaBlob("ecdsa-sha2-nistp224", "nistp224", pt256))
	mustNotParse(t, "empty curve name", ecdsaBlob("ecdsa-sha2-nistp256", "", pt256))
	mustNotParse(t, "trailing byte", append(bytes.Clone(good), 0))

	// Unsupported curves are refused by the constructors.
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewPublicKey(&p224.PublicKey); err == nil {
		t.Error("NewPublicKey accepted P-224")
	}
	if _, err := NewSigner(p224); err == nil {
		t.Error("NewSigner accepted P-224")
	}
}

func TestECDSASignatureValidation(t *testing.T) {
	priv := mustECDSA(elliptic.P256(), 0x21)
	s, err := NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	pub := s.PublicKey()
	data := []byte("h")
	blob, err := s.Sign(rand.Reader, data, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Verify(data, blob); err != nil {
		t.Fatal(err)
	}
	_, raw, _ := parseSignature(blob, KeyAlgoECDSA256)
	var rs [2][]byte
	rest := raw
	for i := range rs {
		var ok bool
		rs[i], rest, ok = tReadString(rest)
		if !ok {
			t.Fatal("cannot split r and s")
		}
	}
	n := elliptic.P256().Params().N
	r, sv := new(big.Int).SetBytes(rs[0]), new(big.Int).SetBytes(rs[1])
	mk := func(r, s []byte) []byte { return sigBlob(KeyAlgoECDSA256, tCat(tString(r), tString(s))) }
	cases := map[string][]byte{
		"r = 0":              mk(nil, rs[1]),
		"s = 0":              mk(rs[0], nil),
		"r + n":              mk(tMPIntBody(new(big.Int).Add(r, n)), rs[1]),
		"s + n":              mk(rs[0], tMPIntBody(new(big.Int).Add(sv, n))),
		"negative r":         mk(append([]byte{0xff}, rs[0]...), rs[1]),
		"needless zero in s": mk(rs[0], append([]byte{0, 0}, rs[1]...)),
		"trailing inside":    sigBlob(KeyAlgoECDSA256, append(bytes.Clone(raw), 0)),
		"s missing":          sigBlob(KeyAlgoECDSA256, tString(rs[0])),
		"trailing outside":   append(bytes.Clone(blob), 0),
		"nistp384 label":     sigBlob(KeyAlgoECDSA384, raw),
		"ed25519 label":      sigBlob(KeyAlgoED25519, raw),
		"swapped r and s":    mk(rs[1], rs[0]),
	}
	for name, b := range cases {
		if pub.Verify(data, b) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Sanity: the re-assembly itself is faithful.
	if err := pub.Verify(data, mk(rs[0], rs[1])); err != nil {
		t.Errorf("re-assembled signature rejected: %v", err)
	}
}

func tMPIntBody(v *big.Int) []byte { return tMPInt(v.Bytes())[4:] }

func tReadString(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, false
	}
	return b[4 : 4+n], b[4+n:], true
}

func TestParsePublicKeyMalformed(t *testing.T) {
	for _, tk := range testKeys() {
		s, err := NewSigner(tk.priv)
		if err != nil {
			t.Fatal(err)
		}
		blob := s.PublicKey().Marshal()
		// Every proper prefix fails, as does any trailing data.
		for i := 0; i < len(blob); i++ {
			if k, err := ParsePublicKey(blob[:i]); err == nil {
				t.Fatalf("%s: %d-byte prefix parsed as %s", tk.name, i, k.Type())
			}
		}
		mustNotParse(t, tk.name+" with trailing byte", append(bytes.Clone(blob), 0))
		// A wrong type name in front of a valid body.
		_, body, _ := tReadString(blob)
		for _, typ := range []string{"ssh-dss", "ssh-ed448", "ssh-rsa-cert-v01@openssh.com", "ssh-ed25519-cert-v01@openssh.com", "sk-ssh-ed25519@openssh.com"} {
			mustNotParse(t, tk.name+" labelled "+typ, tCat(tString([]byte(typ)), body))
		}
	}
	for _, b := range [][]byte{nil, {0}, {0, 0, 0, 0}, {0, 0, 0, 1}, {0xff, 0xff, 0xff, 0xff, 's'}} {
		mustNotParse(t, "junk", b)
	}
}

func TestSignerRefusesForeignAlgorithms(t *testing.T) {
	for _, tk := range testKeys() {
		s, err := NewSigner(tk.priv)
		if err != nil {
			t.Fatal(err)
		}
		for _, algo := range []string{"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-256", "rsa-sha2-512", "ssh-rsa", "unknown"} {
			_, err := s.Sign(rand.Reader, []byte("x"), algo)
			allowed := KeyTypeForSignatureAlgorithm(algo) == s.PublicKey().Type()
			if allowed != (err == nil) {
				t.Errorf("%s signing %s: %v", tk.name, algo, err)
			}
		}
	}
	if _, err := NewSigner(fakeSigner{}); err == nil {
		t.Error("NewSigner accepted an ecdh public key")
	}
}

type fakeSigner struct{}

func (fakeSigner) Public() crypto.PublicKey {
	k, _ := ecdh.X25519().GenerateKey(rand.Reader)
	return k.PublicKey()
}

func (fakeSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) { return nil, nil }

func TestParseDERSignature(t *testing.T) {
	cases := []struct {
		name string
		der  string
		r, s int64
		ok   bool
	}{
		{"minimal", "3006020101020102", 1, 2, true},
		{"leading zero for high bit", "30080202008002020081", 0x80, 0x81, true},
		{"long-form length", "3081060201010201ff", 0, 0, false}, // 0xff is negative
		{"long-form length ok", "308106020101020102", 1, 2, true},
		{"negative r", "3006020181020102", 0, 0, false},
		{"empty integer", "30050200020102", 0, 0, false},
		{"trailing after sequence", "300602010102010200", 0, 0, false},
		{"trailing inside sequence", "3009020101020102020103", 0, 0, false},
		{"wrong tag", "3106020101020102", 0, 0, false},
		{"integer tag wrong", "3006030101020102", 0, 0, false},
		{"length past end", "3007020101020102", 0, 0, false},
		{"inner length past end", "3006020201020102", 0, 0, false},
		{"one integer", "3003020101", 0, 0, false},
		{"empty", "", 0, 0, false},
		{"just tag", "30", 0, 0, false},
		{"indefinite length", "3080020101020102", 0, 0, false},
		{"huge length of length", "3085ffffffffff", 0, 0, false},
	}
	for _, c := range cases {
		der := mustHexT(t, c.der)
		r, s, err := parseDERSignature(der)
		if c.ok != (err == nil) {
			t.Errorf("%s: err = %v", c.name, err)
			continue
		}
		if c.ok && (r.Int64() != c.r || s.Int64() != c.s) {
			t.Errorf("%s: r, s = %v, %v", c.name, r, s)
		}
	}
	// Real signatures from crypto/ecdsa of all sizes parse.
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		k := mustECDSA(c, 0x33)
		for i := 0; i < 20; i++ {
			der, err := ecdsa.SignASN1(rand.Reader, k, []byte{byte(i), 1, 2, 3})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := parseDERSignature(der); err != nil {
				t.Fatalf("%s: %x: %v", c.Params().Name, der, err)
			}
		}
	}
}

// RSA test keys, generated for these tests with openssl genrsa -traditional.
const testRSA2048 = `-----BEGIN RSA PRIVATE KEY-----
MIIEpQIBAAKCAQEA9nVRZlcPtSKuT+X37KGOzNSN9U0+7kUD/FHnmTCxyhSzs6fB
P29uPx05eqCXgeGqOhAR/ixvlpnODGguCcWRDAUxCt3aFVK8RyLoQPrb7Bb6/+ub
VazWpCAOyO97Z9hhp3DUcQl9i7VvXb4PmqzDCI8Uixca2v/0WstZg8Sep4OxpcP1
8l69pMsW2QtobvPodvCMTYjGPUq49nCXTPHUqSpKPmu/+ZQwUYO2CTRMT/Fd4buo
0C4OhBI+yOMBlWi0HIGWUtl/yoMGya/F8Ipt/vHM0bnBcTspnkRt0mLf/Q2ziYn6
QheQrXrs173XCKk3Ouz7bzcmlFr/zqguEBEhgwIDAQABAoIBAEamAbP+//syGlq/
9u5nr3oq8hif0IrX0NkrF2Mz8LsXbR3yWDSZejZwZ7Itx9CNAlGLmsTMMx6uL0Ei
OhRGBJq4AEN3rhTPtzYDHSXHY3SNb90dylToa0z3/ZT/BVaS0geAEf3nNQxv8aEj
IvD5Vh0lesOWV3XwyjiesyXRHpOw3hvAxyZsyHOcLqQM+Gz1ukYcl4qsI2si0+QF
PBmSj54SE1q2xNpkLuEWi2wzT6yVTTEa2Kp9G5deUHg1i/XormtOHt0YBylXs29H
0xqfm+SQF0mjYhZimECeUwWOMjojLETsGXc/0zeJLF6lRfM4lihz1/h4jCSnY9Js
029x5V0CgYEA/4HC9w7yDQoe96DThuxW65nY+87ykpVdbj0McKn201696/THaJth
xcjOUBoEkX36k2QP/70tH5hr2leA2zBi/k4TuEMJyMZa2Uvmq5dNczckW16+hatO
lPeQ1efCcpBMyZ97LlOUu5cRFB6A88hNhw+183uTBioTUX2Ig3whRWUCgYEA9u8V
8rzAqq9O7n5okCADrth19In0shTspO3MVwA0wnnlf34D0Qvc/+hJvUybz/9nJ2SX
AxvZvBRHkorFGUXJqMCHf0VRinOXjzdb0wbOhv281YjwS36shOjIn96QYMZL8wXD
TH7wB//LYbkgeze2IYQcAplSiNkncLLxFAL4cMcCgYEAqcdz4e8QcBG1mh5H8HPD
HjLQuCI/lZ+iwcnXJlYKKVHfKZcxmhUF1wMj9J4VQwhPJPlsmCcAgOorYJ6chQmV
/h2rhNkm+z6yx4lj8clMMa8GfaBrQS8fvGT03O5viujP3XoXxCTNxAkR1Cigz1ze
B00tPmlyvLngtFmSCKzG/vECgYEApQVQQKC9jRONBzr4++A5Nd64rUyId34eS3YT
icy8dX7qzRHU0R5Bec+tf9Ezi4QeVqgVd2FkWBmhXyBX6bTGuHy50GbtwD3Rekc/
mT5CRNpLGNTj6T/lYQkEEjq1d8btOKKQSo3GMUJTk6IZP98SW0GjSmVWT9f3UIx1
Ka92gj8CgYEAu56VMvDTIMFw4wJHU+hUl6uaLrE2Y4nyPA+n0tuPSTu8woBnI8+t
lSINIthKpeH+mTvEd4xDHsZZUVZZIQNTTP4YTh4vftKWc0+fZp8u6J1qSbMMt9Cf
ahGyUhSs+yKkdkgYE2LogOrj2DxYCwPrc5jAsMyrP87Nrs7WpSKO/1U=
-----END RSA PRIVATE KEY-----`

const testRSA3072 = `-----BEGIN RSA PRIVATE KEY-----
MIIG4wIBAAKCAYEAwNl45b1Z2+uDOpOuHqUUstJJpPZRk8sofsZGp1Q+vdrEb/8U
UQ1QrPEG1zUgzsYDSU3JGpwNrMceKwokhBWJM0ZM7RIF/hAHkoKdxC7kUUfDJ1jh
rfPQqUVfHRvAsjjGwGPt4XVH8giXH//LB4F+NnYJ+ywQ/X0bgfOFWyhpsaXjHKJF
6cUV6f80+a3mvjNNq5ZwauuZrkdpIheqnhSE+7RhumAUOO9WdDYPzy9ahYA2qnGa
kc2TnGar++3Q4yR5CSAon0siNuDCZ+boeWBhkG+FKonlhWd8m90rG9vspinTMATb
xT4xr8QLAJxkivclDXk/F2mZIwDSlLYdP/LzgXIkPap2T223vnN048lSoE88IFkE
YihYeiiTP1cgjKWwf8pjoNRZQs19nSsqPH1Rp314OO+VoLWbD/d/QiCZIKHsa+pt
7Z/I4i9FajRTshmFwHA5QX8odSylN8ow1q0MEErqiyhq7iwmamM/mJeQCM/budRX
IRaQrZoc8hFA2DrnAgMBAAECggGABKiPYve4RqrOPTYZcMERGm65yH1wvaHpmDWT
ufGiU48hmDwweL+Nfgss3KCUBDREgQ4bEdFiNsgkKOr/Gp4aKQrSMeNx3jZZ6hNn
DZ89jniuAXKd5PtTESIaKMeL8WIthUxrD+6q1PEzLieaKm2M2tjugP3XNtOOVgz6
+pdwnvhAX7RlyiTwh600BOUxm539CtLAyjxnUA5TWLdhb9C6egmpI+NNQ1pr6E7w
zwYetcN1AcudVCQdcQI9gxtQCySaD/Bk3VDPoURunWOkWCpmlWytuzBKdEHI0T5e
m9ufqekkUwWZK3wEuHAhI1xpragLEjBLGp8wD35K5OmpWhhQ4T1NmAbw0wsuwXCD
Vv0brNBsM7PDaWOkryCtmHUM+PlWW25Mln7K72YZDfSnth4pDLUDqyAzJ/LUpRfx
qikeNSjlGf/Ir27g7gn/ODxR0Okz5vzTExxhvd+im8LU8Hxryzxjjqj6sFBs2NbI
xFLHHzMKGLJFTQzC02wIB2VxdXKhAoHBAOZmD2mn56RSrhs+OLiBAU+9tU4LyjRw
cS+/ghglS8XMlr2w/UCI2YTuLFQOoBQm642mYPCSwDKX7KNMhJmwDgffZHrJBbay
q9F9iul5s3hOeMngEXcpqRWC+sIvqkOiOSxsvsFXM478CXEBwWNwEytf1/TgkN0I
asqJlCUxXP2ply4NM8o83+nK3Kp2U+DGWb8OeyCtH004qvdhdZ8qhK390H+miAu0
TujkfgOuYkJO9qyhCx24oASGNe1hUowKoQKBwQDWR0kCRFTFznEmFRcVZ/7BPg1l
gRdlLBrs82W9UQ5dBiaSx1zIZrid9qbi5UcIO+KoLPTehlX5jcksnvc1Cd20Nhnk
djgVCNQJJsDOfx8ICJ6T2KU9tz8wSrpo1g2sG0v+N6fhtRfk17xRZsycJBD8RnHy
OS3IKHGIXLQI1kW2m+xPbZH5q+k55VRaMwkDkIWTuSbox4xwGEBmse+8mhvvmr0m
5RHxV9BQzL88VgytbcgRVEkp7J53jbFTp14aoIcCgcEAtIi6gQbRSwCCbtR1q5Vi
irJTVAGHA0osVsbQUM1Ar5BdeewqtZvGHhRm5cLECqZoowkBIuFK+xnykg7ORIMg
q2iPmmrUMFGWssOVytbTG20Z1s3dwasCU9nbVbf1yaNe+4GGg4cp3lt9pnBCsgFK
9AzY8ofY22nSDDx7uh0RCa8OyEYOE+VZax/Lg0LO/O1Pu5bEQlmFkoPZ65gRi5PM
fW3KJ4w9RDaYMoOAfq/xTJYFUkWqqTJXKNRlg0lkXlmhAoHAVUpOjy5vp8SCWSwv
4f9g8b4nSu3VSBoEJajEKFTpKLHYDLh5//KTLZ0N1GZ6nZZoo5Qxa5mBAzIijzY/
I8dnjeGy8LL1o7m93F6mhAspaOM1a5fiPeyApFI6XJxHGOhMmUXB9x9EAXy1opkO
fGAGusO3ezizNmaSujpcFuBjI0pxBzSP1BdPYBIeP0DtJ5QQ9znNeP5ksgGVMMtG
p4WX9QlcnOy09aGEc4Tr4bJGnYmDBxLLhHqAoQmvOaL23BZlAoHALVKzQCc7axw5
eon/X3L4wxSOoTzzLSTUG1kuYmf3MSfYy8O3aPNGRJ7RYh6UYEb7VMg0dUmeV4Fc
QrUGGVjQno1QT/wlQAHJ1uPdGb1g244E7Nk6jLaoy+X/cfa+zZR6EoNxF47Tfggd
3bGLREer0tEu3l8hQk8sROazUccckS0fzZoDY3chaCd5buN1Y8Kb77SX77tIOtQb
LmI/LYQYDS2ofNT14SDbPXCwshusjejimsxVQtinrCMOjvKLjttg
-----END RSA PRIVATE KEY-----`
