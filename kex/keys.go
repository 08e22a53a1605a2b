package kex

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/rsftp/rsftp/internal/wire"
)

// Key format and signature algorithm names.
const (
	KeyAlgoED25519   = "ssh-ed25519"
	KeyAlgoECDSA256  = "ecdsa-sha2-nistp256"
	KeyAlgoECDSA384  = "ecdsa-sha2-nistp384"
	KeyAlgoECDSA521  = "ecdsa-sha2-nistp521"
	KeyAlgoRSA       = "ssh-rsa"
	SigAlgoRSASHA256 = "rsa-sha2-256"
	SigAlgoRSASHA512 = "rsa-sha2-512"
)

// RSA key size bounds we accept from peers and files.
const (
	minRSABits = 1024
	maxRSABits = 16384
)

// PublicKey is a host or user public key.
type PublicKey interface {
	// Type is the key format name, such as "ssh-ed25519" or "ssh-rsa".
	Type() string
	// Marshal returns the wire blob.
	Marshal() []byte
	// Verify checks a signature blob (string algorithm || string
	// signature) over data. Algorithms that do not belong to the key
	// type, and ssh-rsa's SHA-1 signatures, are rejected.
	Verify(data, sig []byte) error
	// CryptoPublicKey returns the standard library key.
	CryptoPublicKey() crypto.PublicKey
}

// Signer holds a private key.
type Signer interface {
	PublicKey() PublicKey
	// Algorithms lists the signature algorithms it can make, best first.
	Algorithms() []string
	// Sign returns a signature blob; algorithm "" means Algorithms()[0].
	Sign(rand io.Reader, data []byte, algorithm string) ([]byte, error)
}

// SignatureAlgorithmsFor lists the signature algorithms of a key type,
// certificate types included (for ssh-rsa-cert-v01@openssh.com:
// rsa-sha2-512-cert-v01@openssh.com, rsa-sha2-256-cert-v01@openssh.com).
func SignatureAlgorithmsFor(keyType string) []string {
	switch keyType {
	case KeyAlgoRSA:
		return []string{SigAlgoRSASHA512, SigAlgoRSASHA256}
	case KeyAlgoED25519, KeyAlgoECDSA256, KeyAlgoECDSA384, KeyAlgoECDSA521, KeyAlgoSKED25519, KeyAlgoSKECDSA256:
		return []string{keyType}
	case CertAlgoRSA:
		return []string{CertSigAlgoRSASHA512, CertSigAlgoRSASHA256}
	}
	if _, ok := certKeyTypes[keyType]; ok {
		return []string{keyType}
	}
	return nil
}

// KeyTypeForSignatureAlgorithm maps a signature algorithm (or a public key
// algorithm of a USERAUTH_REQUEST or KEXINIT) to its key type; "" for
// names of no supported key type and for ssh-rsa's SHA-1 signatures.
func KeyTypeForSignatureAlgorithm(sigAlgo string) string {
	switch sigAlgo {
	case SigAlgoRSASHA256, SigAlgoRSASHA512:
		return KeyAlgoRSA
	case KeyAlgoED25519, KeyAlgoECDSA256, KeyAlgoECDSA384, KeyAlgoECDSA521, KeyAlgoSKED25519, KeyAlgoSKECDSA256:
		return sigAlgo
	case SigAlgoWebAuthnSKECDSA256:
		return KeyAlgoSKECDSA256
	case CertSigAlgoRSASHA256, CertSigAlgoRSASHA512:
		return CertAlgoRSA
	case CertSigAlgoWebAuthnSKECDSA256:
		return CertAlgoSKECDSA256
	case CertAlgoRSA:
		return "" // SHA-1
	}
	if _, ok := certKeyTypes[sigAlgo]; ok {
		return sigAlgo
	}
	return ""
}

// FingerprintSHA256 is the key fingerprint as ssh-keygen -l prints it.
func FingerprintSHA256(k PublicKey) string {
	h := sha256.Sum256(k.Marshal())
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(h[:])
}

// MarshalAuthorizedKey returns "type base64-blob", without a newline, as
// in authorized_keys and .pub files.
func MarshalAuthorizedKey(k PublicKey) string {
	return k.Type() + " " + base64.StdEncoding.EncodeToString(k.Marshal())
}

// ParsePublicKey parses a public key blob: a plain key, a security key
// (sk.go) or an OpenSSH certificate (cert.go, a *Certificate).
func ParsePublicKey(blob []byte) (PublicKey, error) {
	r := wire.NewReader(blob)
	typ := r.String()
	if r.Err() != nil {
		return nil, fmt.Errorf("kex: malformed public key: %w", r.Err())
	}
	if _, ok := certKeyTypes[typ]; ok {
		c, err := parseCertificate(typ, r)
		if err != nil {
			return nil, err // not a nil *Certificate in a non-nil interface
		}
		return c, nil
	}
	k, err := parseKeyBody(typ, r)
	if err != nil {
		return nil, err
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("kex: malformed %s public key: %w", typ, err)
	}
	return k, nil
}

// parseKeyBody reads the fields of a plain (not certificate) key of type
// typ, which r has read already; the caller checks for trailing bytes.
func parseKeyBody(typ string, r *wire.Reader) (PublicKey, error) {
	var k PublicKey
	var err error
	switch typ {
	case KeyAlgoED25519:
		raw := r.Bytes()
		if r.Err() == nil && len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("kex: ssh-ed25519 key of %d bytes, want %d", len(raw), ed25519.PublicKeySize)
		}
		k = ed25519Public(append([]byte(nil), raw...))
	case KeyAlgoECDSA256, KeyAlgoECDSA384, KeyAlgoECDSA521:
		curveName := r.String()
		point := r.Bytes()
		if r.Err() == nil {
			k, err = parseECDSA(typ, curveName, point)
		}
	case KeyAlgoRSA:
		e := r.MPInt()
		n := r.MPInt()
		if r.Err() == nil {
			k, err = parseRSA(e, n)
		}
	case KeyAlgoSKED25519, KeyAlgoSKECDSA256:
		k, err = parseSKKey(typ, r)
	default:
		return nil, fmt.Errorf("kex: unsupported public key type %q", printable(typ))
	}
	if err != nil {
		return nil, err
	}
	if r.Err() != nil {
		return nil, fmt.Errorf("kex: malformed %s public key: %w", typ, r.Err())
	}
	return k, nil
}

// keyBody is a key's wire blob without its leading type name: the fields
// a certificate repeats after its nonce.
func keyBody(k PublicKey) []byte {
	b := k.Marshal()
	return b[4+len(k.Type()):]
}

func printable(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return fmt.Sprintf("%q", s)
}

// NewPublicKey wraps a standard library public key.
func NewPublicKey(k crypto.PublicKey) (PublicKey, error) {
	switch k := k.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, errors.New("kex: bad ed25519 public key length")
		}
		return ed25519Public(append([]byte(nil), k...)), nil
	case *ecdsa.PublicKey:
		typ, _, ok := ecdsaParams(k.Curve)
		if !ok {
			return nil, errors.New("kex: unsupported ECDSA curve")
		}
		return &ecdsaPublic{typ: typ, key: k}, nil
	case *rsa.PublicKey:
		return parseRSA(big.NewInt(int64(k.E)), k.N)
	}
	return nil, fmt.Errorf("kex: unsupported public key type %T", k)
}

// NewSigner wraps a private key (or any crypto.Signer whose public key is
// ed25519, ECDSA or RSA).
func NewSigner(k crypto.Signer) (Signer, error) {
	pub, err := NewPublicKey(k.Public())
	if err != nil {
		return nil, err
	}
	return &signer{priv: k, pub: pub}, nil
}

type signer struct {
	priv crypto.Signer
	pub  PublicKey
}

func (s *signer) PublicKey() PublicKey { return s.pub }
func (s *signer) Algorithms() []string { return SignatureAlgorithmsFor(s.pub.Type()) }

// SignsQuietly reports whether the key is a software key, which signs
// with no one asked and nothing but a computation (auth.QuietSigner);
// another crypto.Signer (a token, a remote service) may not.
func (s *signer) SignsQuietly() bool {
	switch s.priv.(type) {
	case ed25519.PrivateKey, *ed25519.PrivateKey, *ecdsa.PrivateKey, *rsa.PrivateKey:
		return true
	}
	return false
}

func (s *signer) Sign(rand io.Reader, data []byte, algo string) ([]byte, error) {
	if algo == "" {
		algo = s.Algorithms()[0]
	}
	if KeyTypeForSignatureAlgorithm(algo) != s.pub.Type() {
		return nil, fmt.Errorf("kex: cannot make a %s signature with a %s key", algo, s.pub.Type())
	}
	var sig []byte
	var err error
	switch p := s.pub.(type) {
	case ed25519Public:
		sig, err = s.priv.Sign(rand, data, crypto.Hash(0))
	case *ecdsaPublic:
		_, h, _ := ecdsaParams(p.key.Curve)
		d := hashOf(h, data)
		var der []byte
		der, err = s.priv.Sign(rand, d, h)
		if err == nil {
			var r, ss *big.Int
			r, ss, err = parseDERSignature(der)
			if err == nil {
				sig = wire.AppendMPInt(wire.AppendMPInt(nil, r), ss)
			}
		}
	case *rsaPublic:
		h := crypto.SHA512
		if algo == SigAlgoRSASHA256 {
			h = crypto.SHA256
		}
		sig, err = s.priv.Sign(rand, hashOf(h, data), h)
	}
	if err != nil {
		return nil, fmt.Errorf("kex: signing with %s: %w", algo, err)
	}
	return wire.AppendBytes(wire.AppendString(nil, algo), sig), nil
}

func hashOf(h crypto.Hash, data []byte) []byte {
	switch h {
	case crypto.SHA256:
		s := sha256.Sum256(data)
		return s[:]
	case crypto.SHA384:
		s := sha512.Sum384(data)
		return s[:]
	default:
		s := sha512.Sum512(data)
		return s[:]
	}
}

// parseSignature splits a signature blob and checks its algorithm.
func parseSignature(sig []byte, allowed ...string) (algo string, raw []byte, err error) {
	r := wire.NewReader(sig)
	algo = r.String()
	raw = r.Bytes()
	if err := r.Done(); err != nil {
		return "", nil, fmt.Errorf("kex: malformed signature: %w", err)
	}
	for _, a := range allowed {
		if a == algo {
			return algo, raw, nil
		}
	}
	return "", nil, fmt.Errorf("kex: signature algorithm %s not valid for this key (want one of %v)", printable(algo), allowed)
}

// --- ed25519 ---

type ed25519Public ed25519.PublicKey

func (k ed25519Public) Type() string { return KeyAlgoED25519 }
func (k ed25519Public) Marshal() []byte {
	return wire.AppendBytes(wire.AppendString(nil, KeyAlgoED25519), k)
}
func (k ed25519Public) CryptoPublicKey() crypto.PublicKey { return ed25519.PublicKey(k) }
func (k ed25519Public) Verify(data, sig []byte) error {
	_, raw, err := parseSignature(sig, KeyAlgoED25519)
	if err != nil {
		return err
	}
	if len(raw) != ed25519.SignatureSize {
		return fmt.Errorf("kex: ssh-ed25519 signature of %d bytes, want %d", len(raw), ed25519.SignatureSize)
	}
	if !ed25519.Verify(ed25519.PublicKey(k), data, raw) {
		return errors.New("kex: ssh-ed25519 signature does not verify")
	}
	return nil
}

// --- ECDSA ---

type ecdsaPublic struct {
	typ string
	key *ecdsa.PublicKey
}

func ecdsaParams(c elliptic.Curve) (typ string, h crypto.Hash, ok bool) {
	switch c {
	case elliptic.P256():
		return KeyAlgoECDSA256, crypto.SHA256, true
	case elliptic.P384():
		return KeyAlgoECDSA384, crypto.SHA384, true
	case elliptic.P521():
		return KeyAlgoECDSA521, crypto.SHA512, true
	}
	return "", 0, false
}

func parseECDSA(typ, curveName string, point []byte) (PublicKey, error) {
	var curve elliptic.Curve
	var ec ecdh.Curve
	switch typ {
	case KeyAlgoECDSA256:
		curve, ec = elliptic.P256(), ecdh.P256()
	case KeyAlgoECDSA384:
		curve, ec = elliptic.P384(), ecdh.P384()
	default:
		curve, ec = elliptic.P521(), ecdh.P521()
	}
	if "ecdsa-sha2-"+curveName != typ {
		return nil, fmt.Errorf("kex: %s key names curve %s", typ, printable(curveName))
	}
	// crypto/ecdh validates that the point is on the curve.
	if _, err := ec.NewPublicKey(point); err != nil {
		return nil, fmt.Errorf("kex: %s key: invalid point: %w", typ, err)
	}
	byteLen := (curve.Params().BitSize + 7) / 8
	x := new(big.Int).SetBytes(point[1 : 1+byteLen])
	y := new(big.Int).SetBytes(point[1+byteLen:])
	return &ecdsaPublic{typ: typ, key: &ecdsa.PublicKey{Curve: curve, X: x, Y: y}}, nil
}

func (k *ecdsaPublic) Type() string                      { return k.typ }
func (k *ecdsaPublic) CryptoPublicKey() crypto.PublicKey { return k.key }
func (k *ecdsaPublic) Marshal() []byte {
	byteLen := (k.key.Curve.Params().BitSize + 7) / 8
	pt := make([]byte, 1+2*byteLen)
	pt[0] = 4
	k.key.X.FillBytes(pt[1 : 1+byteLen])
	k.key.Y.FillBytes(pt[1+byteLen:])
	b := wire.AppendString(nil, k.typ)
	b = wire.AppendString(b, k.typ[len("ecdsa-sha2-"):])
	return wire.AppendBytes(b, pt)
}

func (k *ecdsaPublic) Verify(data, sig []byte) error {
	_, raw, err := parseSignature(sig, k.typ)
	if err != nil {
		return err
	}
	r := wire.NewReader(raw)
	rr := r.MPInt()
	ss := r.MPInt()
	if err := r.Done(); err != nil {
		return fmt.Errorf("kex: malformed %s signature: %w", k.typ, err)
	}
	_, h, _ := ecdsaParams(k.key.Curve)
	if !ecdsa.Verify(k.key, hashOf(h, data), rr, ss) {
		return fmt.Errorf("kex: %s signature does not verify", k.typ)
	}
	return nil
}

// parseDERSignature decodes an ASN.1 ECDSA-Sig-Value (SEQUENCE of two
// INTEGERs) as crypto.Signer returns it.
func parseDERSignature(der []byte) (r, s *big.Int, err error) {
	bad := errors.New("kex: malformed DER ECDSA signature")
	if len(der) < 2 || der[0] != 0x30 {
		return nil, nil, bad
	}
	body, rest, ok := derContents(der[1:])
	if !ok || len(rest) != 0 {
		return nil, nil, bad
	}
	var ints [2]*big.Int
	for i := range ints {
		if len(body) < 2 || body[0] != 0x02 {
			return nil, nil, bad
		}
		var v []byte
		v, body, ok = derContents(body[1:])
		if !ok || len(v) == 0 || v[0]&0x80 != 0 {
			return nil, nil, bad
		}
		ints[i] = new(big.Int).SetBytes(v)
	}
	if len(body) != 0 {
		return nil, nil, bad
	}
	return ints[0], ints[1], nil
}

// derContents reads a DER length and returns the contents and the rest.
func derContents(b []byte) (contents, rest []byte, ok bool) {
	if len(b) < 1 {
		return nil, nil, false
	}
	n := int(b[0])
	b = b[1:]
	if n&0x80 != 0 {
		nb := n & 0x7f
		if nb == 0 || nb > 2 || len(b) < nb {
			return nil, nil, false
		}
		n = 0
		for i := 0; i < nb; i++ {
			n = n<<8 | int(b[i])
		}
		b = b[nb:]
	}
	if n > len(b) {
		return nil, nil, false
	}
	return b[:n], b[n:], true
}

// --- RSA ---

type rsaPublic struct{ key *rsa.PublicKey }

func parseRSA(e, n *big.Int) (PublicKey, error) {
	if n.BitLen() < minRSABits || n.BitLen() > maxRSABits {
		return nil, fmt.Errorf("kex: RSA modulus of %d bits (accepted: %d to %d)", n.BitLen(), minRSABits, maxRSABits)
	}
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
		return nil, errors.New("kex: RSA public exponent out of range")
	}
	return &rsaPublic{key: &rsa.PublicKey{N: new(big.Int).Set(n), E: int(e.Int64())}}, nil
}

func (k *rsaPublic) Type() string                      { return KeyAlgoRSA }
func (k *rsaPublic) CryptoPublicKey() crypto.PublicKey { return k.key }
func (k *rsaPublic) Marshal() []byte {
	b := wire.AppendString(nil, KeyAlgoRSA)
	b = wire.AppendMPInt(b, big.NewInt(int64(k.key.E)))
	return wire.AppendMPInt(b, k.key.N)
}

func (k *rsaPublic) Verify(data, sig []byte) error {
	algo, raw, err := parseSignature(sig, SigAlgoRSASHA512, SigAlgoRSASHA256)
	if err != nil {
		return err
	}
	h := crypto.SHA512
	if algo == SigAlgoRSASHA256 {
		h = crypto.SHA256
	}
	if len(raw) > (k.key.N.BitLen()+7)/8 {
		return fmt.Errorf("kex: %s signature longer than the modulus", algo)
	}
	// Some signers strip leading zeros; pad back to the modulus size.
	if n := (k.key.N.BitLen() + 7) / 8; len(raw) < n {
		raw = append(make([]byte, n-len(raw)), raw...)
	}
	if err := rsa.VerifyPKCS1v15(k.key, h, hashOf(h, data), raw); err != nil {
		return fmt.Errorf("kex: %s signature does not verify", algo)
	}
	return nil
}
