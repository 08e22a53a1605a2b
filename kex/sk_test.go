package kex

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// softSK is a software authenticator: it holds an Ed25519 or P-256 key
// and signs exactly as PROTOCOL.u2f describes ("SSH U2F signatures"),
// written here from the specification with its own encoders (tString,
// tMPInt), not with the code under test.
type softSK struct {
	typ     string
	ed      ed25519.PrivateKey
	ec      *ecdsa.PrivateKey
	app     string
	flags   byte
	counter uint32
}

func newSoftSK(t testing.TB, typ, app string) *softSK {
	t.Helper()
	a := &softSK{typ: typ, app: app, flags: SKFlagUserPresent, counter: 41}
	var err error
	if typ == KeyAlgoSKED25519 {
		_, a.ed, err = ed25519.GenerateKey(rand.Reader)
	} else {
		a.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// blob is the public key as PROTOCOL.u2f lays it out.
func (a *softSK) blob() []byte {
	if a.typ == KeyAlgoSKED25519 {
		return tCat(tString([]byte(a.typ)), tString(a.ed.Public().(ed25519.PublicKey)), tString([]byte(a.app)))
	}
	pt := elliptic.Marshal(elliptic.P256(), a.ec.X, a.ec.Y) //nolint:staticcheck // the SEC 1 point, independently of the code under test
	return tCat(tString([]byte(a.typ)), tString([]byte("nistp256")), tString(pt), tString([]byte(a.app)))
}

func (a *softSK) pub(t testing.TB) PublicKey {
	t.Helper()
	k, err := ParsePublicKey(a.blob())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signedBlob is what the authenticator signs: SHA256(application) ||
// flags || counter || extensions || SHA256(message).
func (a *softSK) signedBlob(flags byte, counter uint32, exts, msghash []byte) []byte {
	ah := sha256.Sum256([]byte(a.app))
	c := []byte{byte(counter >> 24), byte(counter >> 16), byte(counter >> 8), byte(counter)}
	return tCat(ah[:], []byte{flags}, c, exts, msghash)
}

// rawSign signs the authenticator's blob: Ed25519 over it, or ECDSA
// P-256 over its SHA-256 (as FIDO authenticators do), r and s as mpints.
func (a *softSK) rawSign(t testing.TB, blob []byte) []byte {
	t.Helper()
	if a.ed != nil {
		return ed25519.Sign(a.ed, blob)
	}
	h := sha256.Sum256(blob)
	r, s, err := ecdsa.Sign(rand.Reader, a.ec, h[:])
	if err != nil {
		t.Fatal(err)
	}
	return tCat(tMPInt(r.Bytes()), tMPInt(s.Bytes()))
}

func beU32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

// sign returns the SSH signature blob: string algorithm || string
// signature || byte flags || uint32 counter.
func (a *softSK) sign(t testing.TB, data []byte) []byte {
	t.Helper()
	mh := sha256.Sum256(data)
	raw := a.rawSign(t, a.signedBlob(a.flags, a.counter, nil, mh[:]))
	return tCat(tString([]byte(a.typ)), tString(raw), []byte{a.flags}, beU32(a.counter))
}

// signWebAuthn makes a webauthn-sk-ecdsa-sha2-nistp256@openssh.com
// signature: the authenticator signs SHA256(clientData) in place of
// SHA256(data), clientData embedding data as its challenge.
func (a *softSK) signWebAuthn(t testing.TB, data []byte, origin, clientData string, exts []byte) []byte {
	t.Helper()
	if clientData == "" {
		clientData = `{"type":"webauthn.get","challenge":"` + base64.RawURLEncoding.EncodeToString(data) +
			`","origin":"` + origin + `","crossOrigin":false}`
	}
	mh := sha256.Sum256([]byte(clientData))
	raw := a.rawSign(t, a.signedBlob(a.flags, a.counter, exts, mh[:]))
	return tCat(tString([]byte(SigAlgoWebAuthnSKECDSA256)), tString(raw), []byte{a.flags}, beU32(a.counter),
		tString([]byte(origin)), tString([]byte(clientData)), tString(exts))
}

var skTypes = []string{KeyAlgoSKED25519, KeyAlgoSKECDSA256}

func TestSKKeyParse(t *testing.T) {
	for _, typ := range skTypes {
		t.Run(typ, func(t *testing.T) {
			a := newSoftSK(t, typ, "ssh:")
			k := a.pub(t)
			if k.Type() != typ || !bytes.Equal(k.Marshal(), a.blob()) {
				t.Fatalf("type %s, marshal round trip %v", k.Type(), bytes.Equal(k.Marshal(), a.blob()))
			}
			sk, ok := k.(SKPublicKey)
			if !ok || sk.Application() != "ssh:" {
				t.Fatalf("not an SKPublicKey with application ssh: (%T)", k)
			}
			if got := SignatureAlgorithmsFor(typ); len(got) != 1 || got[0] != typ || KeyTypeForSignatureAlgorithm(typ) != typ {
				t.Errorf("algorithms %v", got)
			}
			// x/crypto reads the same blob as the same key.
			xk, err := ssh.ParsePublicKey(a.blob())
			if err != nil || xk.Type() != typ || !bytes.Equal(xk.Marshal(), a.blob()) {
				t.Errorf("x/crypto: %v", err)
			}
			// Every proper prefix and trailing data fail.
			blob := a.blob()
			for i := range blob {
				if _, err := ParsePublicKey(blob[:i]); err == nil {
					t.Fatalf("%d-byte prefix parsed", i)
				}
			}
			mustNotParse(t, "trailing byte", append(bytes.Clone(blob), 0))
			// An application OpenSSH could not read as a C string.
			a.app = "ssh:\x00evil"
			mustNotParse(t, "NUL in application", a.blob())
		})
	}
	// The curve of an sk-ecdsa key must be nistp256, and the point on it.
	a := newSoftSK(t, KeyAlgoSKECDSA256, "ssh:")
	pt := elliptic.Marshal(elliptic.P256(), a.ec.X, a.ec.Y) //nolint:staticcheck
	mustNotParse(t, "nistp384 curve name", tCat(tString([]byte(KeyAlgoSKECDSA256)), tString([]byte("nistp384")), tString(pt), tString([]byte("ssh:"))))
	pt[len(pt)-1] ^= 1
	mustNotParse(t, "point off the curve", tCat(tString([]byte(KeyAlgoSKECDSA256)), tString([]byte("nistp256")), tString(pt), tString([]byte("ssh:"))))
	mustNotParse(t, "ed25519 key of 31 bytes", tCat(tString([]byte(KeyAlgoSKED25519)), tString(make([]byte, 31)), tString([]byte("ssh:"))))
}

// TestSKSignatureFromSpec verifies signatures made by the software
// authenticator: flags and counter come back, Verify requires user
// presence, and every part of what the authenticator signs is bound
// (application, flags, counter, message).
func TestSKSignatureFromSpec(t *testing.T) {
	data := []byte("session id and userauth request")
	for _, typ := range skTypes {
		t.Run(typ, func(t *testing.T) {
			a := newSoftSK(t, typ, "ssh:")
			k := a.pub(t).(SKPublicKey)
			a.flags, a.counter = SKFlagUserPresent|SKFlagUserVerified, 0x01020304
			sig := a.sign(t, data)
			d, err := k.VerifySK(data, sig)
			if err != nil {
				t.Fatal(err)
			}
			if d.Flags != SKFlagUserPresent|SKFlagUserVerified || d.Counter != 0x01020304 || d.Algorithm != typ {
				t.Errorf("details %+v", d)
			}
			if err := k.Verify(data, sig); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if d2, err := VerifyDetails(k, data, sig); err != nil || *d2 != *d {
				t.Errorf("VerifyDetails: %+v, %v", d2, err)
			}
			// x/crypto's independent verifier agrees.
			xk, _ := ssh.ParsePublicKey(a.blob())
			if err := xk.Verify(data, xSig(t, sig)); err != nil {
				t.Errorf("x/crypto refuses our authenticator's signature: %v", err)
			}

			// No touch: VerifySK reports it, Verify refuses it.
			a.flags = 0
			noTouch := a.sign(t, data)
			if d, err := k.VerifySK(data, noTouch); err != nil || d.Flags != 0 {
				t.Errorf("VerifySK without presence: %+v, %v", d, err)
			}
			if err := k.Verify(data, noTouch); err == nil || !strings.Contains(err.Error(), "user presence") {
				t.Errorf("Verify without presence: %v", err)
			}

			// Tampering with any signed part fails.
			a.flags = SKFlagUserPresent
			good := a.sign(t, data)
			tamper := func(name string, sig []byte, d []byte) {
				if _, err := k.VerifySK(d, sig); err == nil {
					t.Errorf("%s: verified", name)
				}
			}
			tamper("other data", good, []byte("other data"))
			flipped := bytes.Clone(good)
			flipped[len(flipped)-5] ^= SKFlagUserVerified // claim verification that was not signed
			tamper("flags changed", flipped, data)
			counter := bytes.Clone(good)
			counter[len(counter)-1]++
			tamper("counter changed", counter, data)
			other := newSoftSK(t, typ, "ssh:other")
			other.ed, other.ec = a.ed, a.ec // same key, other application
			if _, err := other.pub(t).(SKPublicKey).VerifySK(data, good); err == nil {
				t.Error("a signature for application ssh: verified for ssh:other")
			}
			tamper("trailing byte", append(bytes.Clone(good), 0), data)
			tamper("truncated", good[:len(good)-1], data)
			// The plain algorithm's name, or the other sk type's.
			_, rest, _ := tReadString(good)
			for _, name := range []string{"ssh-ed25519", "ecdsa-sha2-nistp256", KeyAlgoSKED25519, KeyAlgoSKECDSA256} {
				if name != typ {
					tamper("named "+name, tCat(tString([]byte(name)), rest), data)
				}
			}
		})
	}
	// Ed25519 signatures of the wrong length (the CVE-2020-9283 lesson).
	a := newSoftSK(t, KeyAlgoSKED25519, "ssh:")
	k := a.pub(t).(SKPublicKey)
	for _, n := range []int{0, 63, 65} {
		sig := tCat(tString([]byte(KeyAlgoSKED25519)), tString(make([]byte, n)), []byte{1}, beU32(0))
		if _, err := k.VerifySK(data, sig); err == nil {
			t.Errorf("%d-byte signature verified", n)
		}
	}
}

// xSig converts a signature blob to x/crypto's form.
func xSig(t testing.TB, blob []byte) *ssh.Signature {
	t.Helper()
	format, rest, _ := tReadString(blob)
	body, rest, _ := tReadString(rest)
	s := &ssh.Signature{Format: string(format), Blob: body}
	if len(rest) > 0 {
		s.Rest = rest
	}
	return s
}

func TestSKWebAuthnSignature(t *testing.T) {
	data := []byte("userauth signed data")
	a := newSoftSK(t, KeyAlgoSKECDSA256, "ssh:")
	k := a.pub(t).(SKPublicKey)
	origin := "https://example.org"
	sig := a.signWebAuthn(t, data, origin, "", nil)
	d, err := k.VerifySK(data, sig)
	if err != nil {
		t.Fatal(err)
	}
	if d.Algorithm != SigAlgoWebAuthnSKECDSA256 || d.Origin != origin || d.Flags != SKFlagUserPresent {
		t.Errorf("details %+v", d)
	}
	if err := k.Verify(data, sig); err != nil {
		t.Error(err)
	}
	if _, err := k.VerifySK([]byte("other"), sig); err == nil {
		t.Error("verified over other data (the challenge is the data)")
	}
	// Extensions, with the ED flag that announces them.
	a.flags = SKFlagUserPresent | skFlagExtensions
	if _, err := k.VerifySK(data, a.signWebAuthn(t, data, origin, "", []byte{0xa0})); err != nil {
		t.Errorf("with extensions: %v", err)
	}
	for _, c := range []struct {
		name       string
		flags      byte
		origin     string
		clientData string
		exts       []byte
	}{
		{"origin with a quote", SKFlagUserPresent, `https://a"b`, "", nil},
		{"attested data flag", SKFlagUserPresent | skFlagAttestedData, origin, "", nil},
		{"extensions without the ED flag", SKFlagUserPresent, origin, "", []byte{0xa0}},
		{"ED flag without extensions", SKFlagUserPresent | skFlagExtensions, origin, "", nil},
		{"challenge of other data", SKFlagUserPresent, origin,
			`{"type":"webauthn.get","challenge":"` + base64.RawURLEncoding.EncodeToString([]byte("x")) + `","origin":"` + origin + `"}`, nil},
		{"webauthn.create", SKFlagUserPresent, origin,
			`{"type":"webauthn.create","challenge":"` + base64.RawURLEncoding.EncodeToString(data) + `","origin":"` + origin + `"}`, nil},
		{"padded challenge", SKFlagUserPresent, origin,
			`{"type":"webauthn.get","challenge":"` + base64.URLEncoding.EncodeToString(data) + `","origin":"` + origin + `"}`, nil},
		{"other origin in clientData", SKFlagUserPresent, origin,
			`{"type":"webauthn.get","challenge":"` + base64.RawURLEncoding.EncodeToString(data) + `","origin":"https://evil"}`, nil},
	} {
		a.flags = c.flags
		if _, err := k.VerifySK(data, a.signWebAuthn(t, data, c.origin, c.clientData, c.exts)); err == nil {
			t.Errorf("%s: verified", c.name)
		}
	}
	// webauthn is a signature algorithm of sk-ecdsa keys only.
	ed := newSoftSK(t, KeyAlgoSKED25519, "ssh:")
	_, rest, _ := tReadString(ed.sign(t, data))
	if _, err := ed.pub(t).(SKPublicKey).VerifySK(data, tCat(tString([]byte(SigAlgoWebAuthnSKECDSA256)), rest)); err == nil {
		t.Error("an sk-ed25519 key verified a webauthn signature")
	}
	if KeyTypeForSignatureAlgorithm(SigAlgoWebAuthnSKECDSA256) != KeyAlgoSKECDSA256 {
		t.Error("webauthn does not map to sk-ecdsa")
	}
}

// TestVerifyDetailsPlainKeys: plain keys give no details.
func TestVerifyDetailsPlainKeys(t *testing.T) {
	s := testSigner(t, "ed25519")
	sig, err := s.Sign(rand.Reader, []byte("x"), "")
	if err != nil {
		t.Fatal(err)
	}
	if d, err := VerifyDetails(s.PublicKey(), []byte("x"), sig); d != nil || err != nil {
		t.Errorf("%+v, %v", d, err)
	}
	if _, err := VerifyDetails(s.PublicKey(), []byte("y"), sig); err == nil {
		t.Error("bad signature verified")
	}
}
