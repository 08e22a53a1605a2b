package testvectors

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"math/big"
	"strings"
	"testing"

	"github.com/rsftp/rsftp/kex"
)

const (
	ed25519RFC8032File = "data/keys-ed25519-rfc8032.json"
	ecdsaRFC6979File   = "data/keys-ecdsa-rfc6979.json"
	openSSHSigFile     = "data/keys-openssh-sshsig.json"
)

// ed25519Vector is an RFC 8032 test with its SSH encodings.
type ed25519Vector struct {
	Comment       string `json:"comment"`
	Secret        Hex    `json:"secret"`
	Public        Hex    `json:"public"`
	Message       Hex    `json:"message"`
	Signature     Hex    `json:"signature"`
	PublicBlob    Hex    `json:"public_blob"`
	SignatureBlob Hex    `json:"signature_blob"`
	AuthorizedKey string `json:"authorized_key"`
	Fingerprint   string `json:"fingerprint"`
}

// ecdsaVector is an RFC 6979 signature with its SSH encodings.
type ecdsaVector struct {
	Comment       string `json:"comment"`
	Private       Hex    `json:"private"`
	Ux            Hex    `json:"ux"`
	Uy            Hex    `json:"uy"`
	Message       Hex    `json:"message"`
	R             Hex    `json:"r"`
	S             Hex    `json:"s"`
	PublicBlob    Hex    `json:"public_blob"`
	SignatureBlob Hex    `json:"signature_blob"`
	AuthorizedKey string `json:"authorized_key"`
	Fingerprint   string `json:"fingerprint"`
}

// sshsigVector is a public key and an SSHSIG signature made by ssh-keygen.
type sshsigVector struct {
	Comment       string `json:"comment"`
	AuthorizedKey string `json:"authorized_key"`
	Fingerprint   string `json:"fingerprint"`
	Namespace     string `json:"namespace"`
	Message       Hex    `json:"message"`
	SSHSig        string `json:"sshsig"`
}

// flipEach calls f with copies of b that have one bit flipped, at a
// spread of positions.
func flipEach(b []byte, f func(pos int, c []byte)) {
	step := max(1, len(b)/97)
	for i := 0; i < len(b); i += step {
		c := bytes.Clone(b)
		c[i] ^= 0x04
		f(i, c)
	}
}

func TestEd25519RFC8032(t *testing.T) {
	f, err := load[ed25519Vector](ed25519RFC8032File)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) != 3 {
		t.Fatalf("%d vectors, want 3", len(f.Vectors))
	}
	for i, v := range f.Vectors {
		// The transcription of the RFC must agree with crypto/ed25519.
		priv := ed25519.NewKeyFromSeed(v.Secret)
		if !bytes.Equal(priv.Public().(ed25519.PublicKey), v.Public) {
			t.Fatalf("vector %d: public key does not match the secret", i)
		}
		if !bytes.Equal(ed25519.Sign(priv, v.Message), v.Signature) {
			t.Fatalf("vector %d: signature does not match crypto/ed25519", i)
		}
		// The SSH wrapping, assembled independently.
		algo := refString([]byte("ssh-ed25519"))
		if !bytes.Equal(v.PublicBlob, append(bytes.Clone(algo), refString(v.Public)...)) {
			t.Errorf("vector %d: public_blob is not string \"ssh-ed25519\" || string key", i)
		}
		if !bytes.Equal(v.SignatureBlob, append(bytes.Clone(algo), refString(v.Signature)...)) {
			t.Errorf("vector %d: signature_blob is not string \"ssh-ed25519\" || string sig", i)
		}

		pub, err := kex.ParsePublicKey(v.PublicBlob)
		if err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		if pub.Type() != kex.KeyAlgoED25519 || !bytes.Equal(pub.Marshal(), v.PublicBlob) {
			t.Errorf("vector %d: parsed to %s %x", i, pub.Type(), pub.Marshal())
		}
		if got, ok := pub.CryptoPublicKey().(ed25519.PublicKey); !ok || !bytes.Equal(got, v.Public) {
			t.Errorf("vector %d: CryptoPublicKey = %#v", i, pub.CryptoPublicKey())
		}
		if err := pub.Verify(v.Message, v.SignatureBlob); err != nil {
			t.Errorf("vector %d: %v", i, err)
		}
		if got := kex.FingerprintSHA256(pub); got != v.Fingerprint {
			t.Errorf("vector %d: fingerprint %s, ssh-keygen says %s", i, got, v.Fingerprint)
		}
		if got := kex.MarshalAuthorizedKey(pub); got != v.AuthorizedKey {
			t.Errorf("vector %d: authorized key %q, want %q", i, got, v.AuthorizedKey)
		}
		// ed25519 is deterministic, so our signer must make the same blob.
		s, err := kex.NewSigner(priv)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := s.Sign(nil, v.Message, "")
		if err != nil || !bytes.Equal(sig, v.SignatureBlob) {
			t.Errorf("vector %d: Sign = %x, %v; want %x", i, sig, err, v.SignatureBlob)
		}
		// Any change must be refused.
		flipEach(v.SignatureBlob, func(pos int, c []byte) {
			if pub.Verify(v.Message, c) == nil {
				t.Errorf("vector %d: signature with byte %d changed verifies", i, pos)
			}
		})
		if pub.Verify(append(bytes.Clone(v.Message), 0), v.SignatureBlob) == nil {
			t.Errorf("vector %d: verifies over a longer message", i)
		}
	}
}

func TestECDSARFC6979(t *testing.T) {
	f, err := load[ecdsaVector](ecdsaRFC6979File)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) != 2 {
		t.Fatalf("%d vectors, want 2", len(f.Vectors))
	}
	for i, v := range f.Vectors {
		priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), v.Private)
		if err != nil {
			t.Fatal(err)
		}
		if priv.X.Cmp(new(big.Int).SetBytes(v.Ux)) != 0 || priv.Y.Cmp(new(big.Int).SetBytes(v.Uy)) != 0 {
			t.Fatalf("vector %d: public point does not match the private key", i)
		}
		digest := sha256.Sum256(v.Message)
		r, s := new(big.Int).SetBytes(v.R), new(big.Int).SetBytes(v.S)
		if !ecdsa.Verify(&priv.PublicKey, digest[:], r, s) {
			t.Fatalf("vector %d: crypto/ecdsa rejects the RFC 6979 signature", i)
		}
		wantBlob := bytes.Join([][]byte{
			refString([]byte("ecdsa-sha2-nistp256")),
			refString([]byte("nistp256")),
			refString(append(append([]byte{4}, v.Ux...), v.Uy...)),
		}, nil)
		if !bytes.Equal(v.PublicBlob, wantBlob) {
			t.Errorf("vector %d: public_blob differs from the RFC 5656 encoding", i)
		}
		wantSig := append(refString([]byte("ecdsa-sha2-nistp256")), refString(append(refMPInt(v.R), refMPInt(v.S)...))...)
		if !bytes.Equal(v.SignatureBlob, wantSig) {
			t.Errorf("vector %d: signature_blob differs from the RFC 5656 encoding", i)
		}

		pub, err := kex.ParsePublicKey(v.PublicBlob)
		if err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		if pub.Type() != kex.KeyAlgoECDSA256 || !bytes.Equal(pub.Marshal(), v.PublicBlob) {
			t.Errorf("vector %d: parsed to %s %x", i, pub.Type(), pub.Marshal())
		}
		if err := pub.Verify(v.Message, v.SignatureBlob); err != nil {
			t.Errorf("vector %d: %v", i, err)
		}
		if got := kex.FingerprintSHA256(pub); got != v.Fingerprint {
			t.Errorf("vector %d: fingerprint %s, ssh-keygen says %s", i, got, v.Fingerprint)
		}
		if got := kex.MarshalAuthorizedKey(pub); got != v.AuthorizedKey {
			t.Errorf("vector %d: authorized key %q, want %q", i, got, v.AuthorizedKey)
		}
		flipEach(v.SignatureBlob, func(pos int, c []byte) {
			if pub.Verify(v.Message, c) == nil {
				t.Errorf("vector %d: signature with byte %d changed verifies", i, pos)
			}
		})
		// Our signer, with the same key, makes signatures that verify.
		signer, err := kex.NewSigner(priv)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(signer.PublicKey().Marshal(), v.PublicBlob) {
			t.Errorf("vector %d: signer's public key differs", i)
		}
		sig, err := signer.Sign(nil, v.Message, kex.KeyAlgoECDSA256)
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Verify(v.Message, sig); err != nil {
			t.Errorf("vector %d: our own signature: %v", i, err)
		}
	}
}

// sshReadString reads an SSH string from b.
func sshReadString(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, false
	}
	return b[4 : 4+n], b[4+n:], true
}

// parseSSHSig decodes an armored SSHSIG (OpenSSH PROTOCOL.sshsig) and
// returns the public key blob, the signature blob and the data that was
// signed for message.
func parseSSHSig(t *testing.T, armored, namespace string, message []byte) (pubBlob, sigBlob, signed []byte) {
	t.Helper()
	body := strings.TrimSpace(armored)
	body = strings.TrimPrefix(body, "-----BEGIN SSH SIGNATURE-----")
	body = strings.TrimSuffix(body, "-----END SSH SIGNATURE-----")
	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(body), ""))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("SSHSIG")) || binary.BigEndian.Uint32(raw[6:]) != 1 {
		t.Fatal("not an SSHSIG version 1")
	}
	rest := raw[10:]
	var fields [5][]byte
	for i := range fields {
		var ok bool
		fields[i], rest, ok = sshReadString(rest)
		if !ok {
			t.Fatalf("SSHSIG field %d truncated", i)
		}
	}
	if len(rest) != 0 {
		t.Fatal("trailing bytes after SSHSIG")
	}
	pubBlob, ns, reserved, hashAlg, sigBlob := fields[0], fields[1], fields[2], fields[3], fields[4]
	if string(ns) != namespace {
		t.Fatalf("namespace %q", ns)
	}
	var digest []byte
	switch string(hashAlg) {
	case "sha512":
		d := sha512.Sum512(message)
		digest = d[:]
	case "sha256":
		d := sha256.Sum256(message)
		digest = d[:]
	default:
		t.Fatalf("hash algorithm %q", hashAlg)
	}
	signed = bytes.Join([][]byte{[]byte("SSHSIG"), refString(ns), refString(reserved), refString(hashAlg), refString(digest)}, nil)
	return pubBlob, sigBlob, signed
}

// TestOpenSSHKeysAndSignatures checks keys and signatures made by OpenSSH's
// ssh-keygen: the public key parses and re-encodes, the fingerprint and
// authorized_keys line match ssh-keygen's, and the signature verifies.
func TestOpenSSHKeysAndSignatures(t *testing.T) {
	f, err := load[sshsigVector](openSSHSigFile)
	if err != nil {
		t.Fatal(err)
	}
	wantTypes := map[string]string{
		"ed25519": kex.KeyAlgoED25519, "ecdsa256": kex.KeyAlgoECDSA256, "ecdsa384": kex.KeyAlgoECDSA384,
		"ecdsa521": kex.KeyAlgoECDSA521, "rsa2048": kex.KeyAlgoRSA, "rsa3072": kex.KeyAlgoRSA,
	}
	seen := map[string]bool{}
	for i, v := range f.Vectors {
		typ, b64, ok := strings.Cut(v.AuthorizedKey, " ")
		if !ok {
			t.Fatalf("vector %d: bad authorized_key", i)
		}
		blob, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := kex.ParsePublicKey(blob)
		if err != nil {
			t.Fatalf("vector %d (%s): %v", i, typ, err)
		}
		seen[pub.Type()] = true
		if pub.Type() != typ || !bytes.Equal(pub.Marshal(), blob) {
			t.Errorf("vector %d: parsed to %s, round trip %v", i, pub.Type(), bytes.Equal(pub.Marshal(), blob))
		}
		name := strings.TrimSuffix(strings.TrimPrefix(v.Comment, "ssh-keygen -t "), "; signed with ssh-keygen -Y sign -n rsftp-test")
		if wantTypes[name] != pub.Type() {
			t.Errorf("vector %d: %q is a %s key", i, name, pub.Type())
		}
		if got := kex.FingerprintSHA256(pub); got != v.Fingerprint {
			t.Errorf("vector %d: fingerprint %s, ssh-keygen says %s", i, got, v.Fingerprint)
		}
		if got := kex.MarshalAuthorizedKey(pub); got != v.AuthorizedKey {
			t.Errorf("vector %d: authorized key %q, want %q", i, got, v.AuthorizedKey)
		}

		sigPub, sigBlob, signed := parseSSHSig(t, v.SSHSig, v.Namespace, v.Message)
		if !bytes.Equal(sigPub, blob) {
			t.Fatalf("vector %d: SSHSIG names another key", i)
		}
		algo, _, _ := sshReadString(sigBlob)
		wantAlgo := pub.Type()
		if pub.Type() == kex.KeyAlgoRSA {
			wantAlgo = kex.SigAlgoRSASHA512
		}
		if string(algo) != wantAlgo {
			t.Errorf("vector %d: signature algorithm %q, want %q", i, algo, wantAlgo)
		}
		if err := pub.Verify(signed, sigBlob); err != nil {
			t.Errorf("vector %d (%s): OpenSSH's signature: %v", i, pub.Type(), err)
		}
		if pub.Verify(v.Message, sigBlob) == nil {
			t.Errorf("vector %d: verifies over the bare message", i)
		}
		flipEach(sigBlob, func(pos int, c []byte) {
			if pub.Verify(signed, c) == nil {
				t.Errorf("vector %d (%s): signature with byte %d changed verifies", i, pub.Type(), pos)
			}
		})
	}
	if len(seen) != 5 || len(f.Vectors) != 6 {
		t.Errorf("%d vectors covering %d key types; want 6 covering 5", len(f.Vectors), len(seen))
	}
}
