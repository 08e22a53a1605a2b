package auth

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/poly1305" //nolint:staticcheck // OpenSSH's construction needs raw Poly1305
)

// ErrPassphraseRequired is returned by ParsePrivateKey when the key is
// encrypted and no passphrase (nil) was given, so a caller can prompt for
// one and try again.
var ErrPassphraseRequired = errors.New("auth: private key is encrypted; a passphrase is required")

// ErrIncorrectPassphrase is returned by ParsePrivateKey when decryption
// with the given passphrase does not produce a well-formed key.
var ErrIncorrectPassphrase = errors.New("auth: incorrect passphrase supplied to decrypt private key")

// Size limits for private keys. RSA moduli follow OpenSSH's bounds.
const (
	rsaMinBits = 1024
	rsaMaxBits = 16384

	// privateKeyMaxBlob bounds the decoded openssh-key-v1 blob; the largest
	// real key (16384-bit RSA) is well under 16 KiB.
	privateKeyMaxBlob = 1 << 20

	// defaultKDFRounds is what ssh-keygen uses when -a is not given.
	defaultKDFRounds = 16
	kdfSaltLen       = 16
)

const (
	opensshKeyMagic = "openssh-key-v1\x00"
	pemOpenSSH      = "OPENSSH PRIVATE KEY"
)

// Key type names used in key files (identical to the public key algorithm
// names of RFC 4253, RFC 5656 and RFC 8709).
const (
	keyTypeED25519   = "ssh-ed25519"
	keyTypeRSA       = "ssh-rsa"
	keyTypeECDSA256  = "ecdsa-sha2-nistp256"
	keyTypeECDSA384  = "ecdsa-sha2-nistp384"
	keyTypeECDSA521  = "ecdsa-sha2-nistp521"
	curveNameP256    = "nistp256"
	curveNameP384    = "nistp384"
	curveNameP521    = "nistp521"
	kdfNone          = "none"
	kdfBcrypt        = "bcrypt"
	cipherNone       = "none"
	cipherAES256CTR  = "aes256-ctr"
	cipherAES192CTR  = "aes192-ctr"
	cipherAES128CTR  = "aes128-ctr"
	cipherAES256CBC  = "aes256-cbc"
	cipherAES192CBC  = "aes192-cbc"
	cipherAES128CBC  = "aes128-cbc"
	cipherAES256GCM  = "aes256-gcm@openssh.com"
	cipherAES128GCM  = "aes128-gcm@openssh.com"
	cipherChaChaPoly = "chacha20-poly1305@openssh.com"
	noneCipherBlock  = 8
	aesBlockSize     = aes.BlockSize
	gcmTagSize       = 16
	gcmNonceSize     = 12
	ed25519PubSize   = ed25519.PublicKeySize
	ed25519PrivSize  = ed25519.PrivateKeySize
	maxCommentLength = 1 << 16
)

// keyCipher describes a cipher that may protect an openssh-key-v1 file.
type keyCipher struct {
	keyLen, ivLen, blockSize, tagLen int
	mode                             string // "ctr", "cbc", "gcm" or "chachapoly"
}

var keyCiphers = map[string]keyCipher{
	cipherAES128CTR: {16, 16, aesBlockSize, 0, "ctr"},
	cipherAES192CTR: {24, 16, aesBlockSize, 0, "ctr"},
	cipherAES256CTR: {32, 16, aesBlockSize, 0, "ctr"},
	cipherAES128CBC: {16, 16, aesBlockSize, 0, "cbc"},
	cipherAES192CBC: {24, 16, aesBlockSize, 0, "cbc"},
	cipherAES256CBC: {32, 16, aesBlockSize, 0, "cbc"},
	cipherAES128GCM: {16, gcmNonceSize, aesBlockSize, gcmTagSize, "gcm"},
	cipherAES256GCM: {32, gcmNonceSize, aesBlockSize, gcmTagSize, "gcm"},
	// Two 256-bit ChaCha20 keys; only the first is used for a key file.
	cipherChaChaPoly: {64, 0, 8, poly1305.TagSize, "chachapoly"},
}

// ParsePrivateKey decodes a PEM-armoured private key.
//
// Supported forms are OpenSSH's own format ("OPENSSH PRIVATE KEY",
// openssh-key-v1; unencrypted or encrypted with bcrypt_pbkdf and one of
// aes{128,192,256}-{ctr,cbc} or aes{128,256}-gcm@openssh.com), and the
// unencrypted stdlib forms "RSA PRIVATE KEY" (PKCS #1), "EC PRIVATE KEY"
// (SEC 1) and "PRIVATE KEY" (PKCS #8). Key types are Ed25519, ECDSA on
// P-256, P-384 and P-521, and RSA with a 1024..16384-bit modulus.
//
// The returned signer is an ed25519.PrivateKey, *ecdsa.PrivateKey or
// *rsa.PrivateKey. The comment is the one stored in an openssh-key-v1
// file, and empty for the other forms.
//
// For an encrypted key, a nil passphrase yields ErrPassphraseRequired and
// a wrong one ErrIncorrectPassphrase (use errors.Is).
func ParsePrivateKey(pemBytes []byte, passphrase []byte) (crypto.Signer, string, error) {
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, "", errors.New("auth: no PEM-encoded private key found")
		}
		switch block.Type {
		case "EC PARAMETERS":
			// openssl ecparam -genkey writes these ahead of the key.
			continue
		case pemOpenSSH:
			return parseOpenSSHPrivateKey(block.Bytes, passphrase)
		}
		if block.Headers["Proc-Type"] != "" || block.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, "", fmt.Errorf("auth: encrypted %q PEM keys are not supported; convert the key with ssh-keygen -p", block.Type)
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		default:
			return nil, "", fmt.Errorf("auth: unsupported PEM block type %q", block.Type)
		}
		if err != nil {
			return nil, "", fmt.Errorf("auth: parsing %s: %w", block.Type, err)
		}
		s, err := checkSigner(key)
		if err != nil {
			return nil, "", err
		}
		return s, "", nil
	}
}

// checkSigner accepts only the key types and sizes this package signs with.
func checkSigner(key any) (crypto.Signer, error) {
	switch k := key.(type) {
	case ed25519.PrivateKey:
		if len(k) != ed25519PrivSize {
			return nil, errors.New("auth: malformed ed25519 private key")
		}
		return k, nil
	case *ed25519.PrivateKey:
		return checkSigner(*k)
	case *ecdsa.PrivateKey:
		if _, err := ecdsaKeyType(k.Curve); err != nil {
			return nil, err
		}
		return k, nil
	case *rsa.PrivateKey:
		if err := checkRSASize(k.N); err != nil {
			return nil, err
		}
		return k, nil
	default:
		return nil, fmt.Errorf("auth: unsupported private key type %T", key)
	}
}

func checkRSASize(n *big.Int) error {
	if bits := n.BitLen(); bits < rsaMinBits || bits > rsaMaxBits {
		return fmt.Errorf("auth: RSA modulus of %d bits is outside %d..%d", bits, rsaMinBits, rsaMaxBits)
	}
	return nil
}

func ecdsaKeyType(c elliptic.Curve) (string, error) {
	switch c {
	case elliptic.P256():
		return keyTypeECDSA256, nil
	case elliptic.P384():
		return keyTypeECDSA384, nil
	case elliptic.P521():
		return keyTypeECDSA521, nil
	}
	return "", errors.New("auth: unsupported ECDSA curve (want P-256, P-384 or P-521)")
}

func ecdsaCurve(keyType string) (elliptic.Curve, string, bool) {
	switch keyType {
	case keyTypeECDSA256:
		return elliptic.P256(), curveNameP256, true
	case keyTypeECDSA384:
		return elliptic.P384(), curveNameP384, true
	case keyTypeECDSA521:
		return elliptic.P521(), curveNameP521, true
	}
	return nil, "", false
}

// parseOpenSSHPrivateKey decodes the body of an openssh-key-v1 file.
func parseOpenSSHPrivateKey(data, passphrase []byte) (crypto.Signer, string, error) {
	if len(data) > privateKeyMaxBlob {
		return nil, "", fmt.Errorf("auth: openssh private key of %d bytes is implausibly large", len(data))
	}
	if !bytes.HasPrefix(data, []byte(opensshKeyMagic)) {
		return nil, "", errors.New("auth: openssh private key lacks the openssh-key-v1 magic")
	}
	r := wire.NewReader(data[len(opensshKeyMagic):])
	cipherName := r.String()
	kdfName := r.String()
	kdfOpts := r.Bytes()
	nKeys := r.Uint32()
	if err := r.Err(); err != nil {
		return nil, "", fmt.Errorf("auth: openssh private key header: %w", err)
	}
	if nKeys != 1 {
		return nil, "", fmt.Errorf("auth: openssh private key file holds %d keys; exactly one is supported", nKeys)
	}
	pubBlob := r.Bytes()
	encrypted := r.Bytes()
	if err := r.Err(); err != nil {
		return nil, "", fmt.Errorf("auth: openssh private key header: %w", err)
	}

	var ciph keyCipher
	switch {
	case cipherName == cipherNone:
		if kdfName != kdfNone || len(kdfOpts) != 0 {
			return nil, "", fmt.Errorf("auth: unencrypted openssh private key names kdf %q", kdfName)
		}
		ciph.blockSize = noneCipherBlock
	default:
		var ok bool
		if ciph, ok = keyCiphers[cipherName]; !ok {
			return nil, "", fmt.Errorf("auth: openssh private key uses unsupported cipher %q", cipherName)
		}
		if kdfName != kdfBcrypt {
			return nil, "", fmt.Errorf("auth: openssh private key uses unsupported kdf %q", kdfName)
		}
	}

	// An authenticated cipher's tag follows the encrypted string.
	tag := r.Fixed(ciph.tagLen)
	if err := r.Done(); err != nil {
		return nil, "", fmt.Errorf("auth: openssh private key: %w", err)
	}
	if len(encrypted) == 0 || len(encrypted)%ciph.blockSize != 0 {
		return nil, "", fmt.Errorf("auth: openssh private key section of %d bytes is not a multiple of the %d-byte block size", len(encrypted), ciph.blockSize)
	}

	plain := encrypted
	if cipherName != cipherNone {
		if passphrase == nil {
			return nil, "", ErrPassphraseRequired
		}
		if len(passphrase) == 0 {
			// bcrypt_pbkdf is undefined for an empty password, and
			// ssh-keygen never encrypts with one.
			return nil, "", ErrIncorrectPassphrase
		}
		kr := wire.NewReader(kdfOpts)
		salt := kr.Bytes()
		rounds := kr.Uint32()
		if err := kr.Done(); err != nil {
			return nil, "", fmt.Errorf("auth: openssh private key bcrypt options: %w", err)
		}
		if len(salt) == 0 || len(salt) > bcryptMaxSaltLen {
			return nil, "", fmt.Errorf("auth: openssh private key bcrypt salt of %d bytes is outside 1..%d", len(salt), bcryptMaxSaltLen)
		}
		if rounds < 1 || rounds > bcryptMaxRounds {
			return nil, "", fmt.Errorf("auth: openssh private key asks for %d bcrypt rounds; allowed 1..%d", rounds, bcryptMaxRounds)
		}
		var err error
		plain, err = decryptKeySection(ciph, passphrase, salt, int(rounds), encrypted, tag)
		if err != nil {
			return nil, "", err
		}
	}

	pr := wire.NewReader(plain)
	check1, check2 := pr.Uint32(), pr.Uint32()
	if pr.Err() != nil {
		return nil, "", errors.New("auth: openssh private key section is truncated")
	}
	if check1 != check2 {
		if cipherName != cipherNone {
			return nil, "", ErrIncorrectPassphrase
		}
		return nil, "", errors.New("auth: openssh private key is corrupt (check values differ)")
	}
	signer, err := parsePrivateKeyFields(pr)
	if err != nil {
		return nil, "", err
	}
	comment := pr.Bytes()
	if err := pr.Err(); err != nil {
		return nil, "", fmt.Errorf("auth: openssh private key comment: %w", err)
	}
	if len(comment) > maxCommentLength {
		return nil, "", fmt.Errorf("auth: openssh private key comment of %d bytes is too long", len(comment))
	}
	for i, b := range pr.Rest() {
		if b != byte(i+1) {
			return nil, "", errors.New("auth: openssh private key has malformed padding")
		}
	}

	gotPub, _, err := publicKeyBlob(signer.Public())
	if err != nil {
		return nil, "", err
	}
	if !bytes.Equal(gotPub, pubBlob) {
		return nil, "", errors.New("auth: openssh private key does not match the public key stored with it")
	}
	return signer, string(comment), nil
}

// decryptKeySection derives the cipher key and IV with bcrypt_pbkdf and
// decrypts the private section. A GCM tag mismatch means a wrong passphrase.
func decryptKeySection(c keyCipher, pass, salt []byte, rounds int, ct, tag []byte) ([]byte, error) {
	kiv, err := bcryptPBKDF(pass, salt, rounds, c.keyLen+c.ivLen)
	if err != nil {
		return nil, fmt.Errorf("auth: openssh private key: %w", err)
	}
	if c.mode == "chachapoly" {
		return openChaChaPoly(kiv[:32], ct, tag)
	}
	block, err := aes.NewCipher(kiv[:c.keyLen])
	if err != nil {
		return nil, err
	}
	iv := kiv[c.keyLen:]
	switch c.mode {
	case "ctr":
		out := make([]byte, len(ct))
		cipher.NewCTR(block, iv).XORKeyStream(out, ct)
		return out, nil
	case "cbc":
		out := make([]byte, len(ct))
		cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, ct)
		return out, nil
	case "gcm":
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		sealed := make([]byte, 0, len(ct)+len(tag))
		sealed = append(append(sealed, ct...), tag...)
		out, err := aead.Open(nil, iv, sealed, nil)
		if err != nil {
			return nil, ErrIncorrectPassphrase
		}
		return out, nil
	}
	return nil, fmt.Errorf("auth: internal error: cipher mode %q", c.mode)
}

// openChaChaPoly undoes OpenSSH's chacha20-poly1305@openssh.com as applied
// to a key file: sequence number 0 and no additional data, so the Poly1305
// key is the first ChaCha20 block (counter 0) under the first key, the
// payload uses counters from 1 on, and the tag covers the ciphertext. The
// original 64-bit-nonce ChaCha20 with a zero nonce and small counters
// produces the same stream as the IETF variant with a zero 96-bit nonce.
func openChaChaPoly(key, ct, tag []byte) ([]byte, error) {
	var nonce [chacha20.NonceSize]byte
	c, err := chacha20.NewUnauthenticatedCipher(key, nonce[:])
	if err != nil {
		return nil, err
	}
	var polyKey [32]byte
	c.XORKeyStream(polyKey[:], polyKey[:])
	var want [poly1305.TagSize]byte
	poly1305.Sum(&want, ct, &polyKey)
	if subtle.ConstantTimeCompare(want[:], tag) != 1 {
		return nil, ErrIncorrectPassphrase
	}
	c.SetCounter(1)
	out := make([]byte, len(ct))
	c.XORKeyStream(out, ct)
	return out, nil
}

// readKeyMPInt reads an mpint as OpenSSH does: negative values are
// rejected, leading zero bytes tolerated, and the size bounded.
func readKeyMPInt(r *wire.Reader, what string) (*big.Int, error) {
	b := r.Bytes()
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("auth: RSA %s: %w", what, err)
	}
	if len(b) > rsaMaxBits/8+1 {
		return nil, fmt.Errorf("auth: RSA %s of %d bytes is too large", what, len(b))
	}
	if len(b) > 0 && b[0]&0x80 != 0 {
		return nil, fmt.Errorf("auth: RSA %s is negative", what)
	}
	return new(big.Int).SetBytes(b), nil
}

// parsePrivateKeyFields reads one key from the private section in the
// per-type layout of OpenSSH's private key serialisation.
func parsePrivateKeyFields(r *wire.Reader) (crypto.Signer, error) {
	keyType := r.String()
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("auth: openssh private key: %w", err)
	}
	switch keyType {
	case keyTypeED25519:
		pub := r.Bytes()
		priv := r.Bytes()
		if err := r.Err(); err != nil {
			return nil, fmt.Errorf("auth: ed25519 private key: %w", err)
		}
		if len(pub) != ed25519PubSize || len(priv) != ed25519PrivSize {
			return nil, fmt.Errorf("auth: ed25519 key sizes %d/%d, want %d/%d", len(pub), len(priv), ed25519PubSize, ed25519PrivSize)
		}
		key := ed25519.NewKeyFromSeed(priv[:ed25519.SeedSize])
		if subtle.ConstantTimeCompare(key, priv) != 1 || !bytes.Equal(pub, key[ed25519.SeedSize:]) {
			return nil, errors.New("auth: ed25519 private key is inconsistent with its public half")
		}
		return key, nil

	case keyTypeECDSA256, keyTypeECDSA384, keyTypeECDSA521:
		curve, curveName, _ := ecdsaCurve(keyType)
		gotCurve := r.String()
		point := r.Bytes()
		d := r.Bytes()
		if err := r.Err(); err != nil {
			return nil, fmt.Errorf("auth: ECDSA private key: %w", err)
		}
		if gotCurve != curveName {
			return nil, fmt.Errorf("auth: key type %s names curve %q", keyType, gotCurve)
		}
		size := (curve.Params().BitSize + 7) / 8
		// d is an mpint: reject a negative value, strip leading zeros
		// (a sign byte included), then left-pad to the field size.
		if len(d) > 0 && d[0]&0x80 != 0 {
			return nil, errors.New("auth: ECDSA private scalar is negative")
		}
		for len(d) > 0 && d[0] == 0 {
			d = d[1:]
		}
		if len(d) > size {
			return nil, errors.New("auth: ECDSA private scalar is too large")
		}
		raw := make([]byte, size)
		copy(raw[size-len(d):], d)
		key, err := ecdsa.ParseRawPrivateKey(curve, raw)
		if err != nil {
			return nil, fmt.Errorf("auth: ECDSA private key: %w", err)
		}
		wantPoint, err := key.PublicKey.Bytes()
		if err != nil {
			return nil, fmt.Errorf("auth: ECDSA private key: %w", err)
		}
		if !bytes.Equal(point, wantPoint) {
			return nil, errors.New("auth: ECDSA private key is inconsistent with its public point")
		}
		return key, nil

	case keyTypeRSA:
		var vals [6]*big.Int
		for i, what := range []string{"modulus", "public exponent", "private exponent", "iqmp", "p", "q"} {
			v, err := readKeyMPInt(r, what)
			if err != nil {
				return nil, err
			}
			vals[i] = v
		}
		n, e, d, p, q := vals[0], vals[1], vals[2], vals[4], vals[5]
		if err := checkRSASize(n); err != nil {
			return nil, err
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return nil, errors.New("auth: RSA public exponent is out of range")
		}
		key := &rsa.PrivateKey{
			PublicKey: rsa.PublicKey{N: n, E: int(e.Int64())},
			D:         d,
			Primes:    []*big.Int{p, q},
		}
		// The CRT values are recomputed rather than trusted; Validate
		// checks that p*q = n and that d inverts e.
		if err := key.Validate(); err != nil {
			return nil, fmt.Errorf("auth: invalid RSA private key: %w", err)
		}
		key.Precompute()
		return key, nil
	}
	return nil, fmt.Errorf("auth: unsupported private key type %q", keyType)
}

// publicKeyBlob returns the SSH wire encoding of a public key and its type.
func publicKeyBlob(pub crypto.PublicKey) ([]byte, string, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519PubSize {
			return nil, "", errors.New("auth: malformed ed25519 public key")
		}
		b := wire.AppendString(nil, keyTypeED25519)
		return wire.AppendBytes(b, k), keyTypeED25519, nil
	case *ecdsa.PublicKey:
		t, err := ecdsaKeyType(k.Curve)
		if err != nil {
			return nil, "", err
		}
		_, curveName, _ := ecdsaCurve(t)
		point, err := k.Bytes()
		if err != nil {
			return nil, "", fmt.Errorf("auth: ECDSA public key: %w", err)
		}
		b := wire.AppendString(nil, t)
		b = wire.AppendString(b, curveName)
		return wire.AppendBytes(b, point), t, nil
	case *rsa.PublicKey:
		b := wire.AppendString(nil, keyTypeRSA)
		b = wire.AppendMPInt(b, big.NewInt(int64(k.E)))
		return wire.AppendMPInt(b, k.N), keyTypeRSA, nil
	}
	return nil, "", fmt.Errorf("auth: unsupported public key type %T", pub)
}

// MarshalPrivateKey encodes k in OpenSSH's openssh-key-v1 format, PEM
// armoured, as ssh-keygen writes it. With a non-empty passphrase the key
// is encrypted with aes256-ctr under a key from bcrypt_pbkdf (16-byte
// random salt, 16 rounds, ssh-keygen's defaults); otherwise it is stored
// unencrypted. k must be an ed25519.PrivateKey, *ecdsa.PrivateKey (P-256,
// P-384, P-521) or a two-prime *rsa.PrivateKey.
func MarshalPrivateKey(k crypto.Signer, comment string, passphrase []byte) ([]byte, error) {
	if len(comment) > maxCommentLength {
		return nil, errors.New("auth: private key comment is too long")
	}
	k, err := checkSigner(k)
	if err != nil {
		return nil, err
	}
	pubBlob, keyType, err := publicKeyBlob(k.Public())
	if err != nil {
		return nil, err
	}

	var checkBuf [4]byte
	if _, err := rand.Read(checkBuf[:]); err != nil {
		return nil, err
	}
	check := binary.BigEndian.Uint32(checkBuf[:])
	priv := wire.AppendUint32(nil, check)
	priv = wire.AppendUint32(priv, check)
	priv = wire.AppendString(priv, keyType)
	switch k := k.(type) {
	case ed25519.PrivateKey:
		priv = wire.AppendBytes(priv, k[ed25519.SeedSize:])
		priv = wire.AppendBytes(priv, k)
	case *ecdsa.PrivateKey:
		point, err := k.PublicKey.Bytes()
		if err != nil {
			return nil, err
		}
		d, err := k.Bytes()
		if err != nil {
			return nil, err
		}
		_, curveName, _ := ecdsaCurve(keyType)
		priv = wire.AppendString(priv, curveName)
		priv = wire.AppendBytes(priv, point)
		priv = wire.AppendMPIntBytes(priv, d)
	case *rsa.PrivateKey:
		if len(k.Primes) != 2 {
			return nil, errors.New("auth: only two-prime RSA keys can be stored in OpenSSH format")
		}
		p, q := k.Primes[0], k.Primes[1]
		iqmp := new(big.Int).ModInverse(q, p)
		if iqmp == nil {
			return nil, errors.New("auth: invalid RSA private key (q has no inverse mod p)")
		}
		priv = wire.AppendMPInt(priv, k.N)
		priv = wire.AppendMPInt(priv, big.NewInt(int64(k.E)))
		priv = wire.AppendMPInt(priv, k.D)
		priv = wire.AppendMPInt(priv, iqmp)
		priv = wire.AppendMPInt(priv, p)
		priv = wire.AppendMPInt(priv, q)
	}
	priv = wire.AppendString(priv, comment)

	cipherName, kdfName, kdfOpts, blockSize := cipherNone, kdfNone, []byte(nil), noneCipherBlock
	var salt []byte
	if len(passphrase) > 0 {
		cipherName, kdfName, blockSize = cipherAES256CTR, kdfBcrypt, aesBlockSize
		salt = make([]byte, kdfSaltLen)
		if _, err := rand.Read(salt); err != nil {
			return nil, err
		}
		kdfOpts = wire.AppendBytes(nil, salt)
		kdfOpts = wire.AppendUint32(kdfOpts, defaultKDFRounds)
	}
	for i := 1; len(priv)%blockSize != 0; i++ {
		priv = append(priv, byte(i))
	}
	if len(passphrase) > 0 {
		c := keyCiphers[cipherAES256CTR]
		kiv, err := bcryptPBKDF(passphrase, salt, defaultKDFRounds, c.keyLen+c.ivLen)
		if err != nil {
			return nil, err
		}
		block, err := aes.NewCipher(kiv[:c.keyLen])
		if err != nil {
			return nil, err
		}
		cipher.NewCTR(block, kiv[c.keyLen:]).XORKeyStream(priv, priv)
	}

	out := []byte(opensshKeyMagic)
	out = wire.AppendString(out, cipherName)
	out = wire.AppendString(out, kdfName)
	out = wire.AppendBytes(out, kdfOpts)
	out = wire.AppendUint32(out, 1)
	out = wire.AppendBytes(out, pubBlob)
	out = wire.AppendBytes(out, priv)
	return pem.EncodeToMemory(&pem.Block{Type: pemOpenSSH, Bytes: out}), nil
}

// publicKeyFileMax bounds a public key or certificate file.
const publicKeyFileMax = 1 << 20

// ParsePublicKeyFile parses an OpenSSH public key file, such as
// id_ed25519.pub or id_ed25519-cert.pub: its first line that is neither
// blank nor a comment, "type base64 [comment]". The key may be a
// certificate (a *kex.Certificate) or a security key.
func ParsePublicKeyFile(data []byte) (kex.PublicKey, string, error) {
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		typ, rest := nextField(line)
		b64, comment := nextField(rest)
		if b64 == "" {
			return nil, "", fmt.Errorf("auth: missing key data after %s", quoteShort(typ))
		}
		blob, err := decodeBase64(b64)
		if err != nil {
			return nil, "", fmt.Errorf("auth: malformed base64 in %s key: %v", quoteShort(typ), err)
		}
		k, err := kex.ParsePublicKey(blob)
		if err != nil {
			return nil, "", fmt.Errorf("auth: %s key: %w", quoteShort(typ), err)
		}
		if k.Type() != typ {
			return nil, "", fmt.Errorf("auth: key type field %s does not match the key data (%s)", quoteShort(typ), k.Type())
		}
		return k, strings.TrimRight(comment, " \t"), nil
	}
	return nil, "", errors.New("auth: no public key in the file")
}

// LoadCertificate reads an OpenSSH certificate file (the key-cert.pub
// ssh-keygen -s writes beside key.pub). It checks the encoding only:
// whether the certificate is valid is for the verifier (kex.CheckCertificate).
func LoadCertificate(path string) (*kex.Certificate, error) {
	data, err := readKeyFile(path, publicKeyFileMax)
	if err != nil {
		return nil, err
	}
	k, _, err := ParsePublicKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c, ok := k.(*kex.Certificate)
	if !ok {
		return nil, fmt.Errorf("auth: %s holds a %s key, not a certificate", path, k.Type())
	}
	return c, nil
}

// PrivateKeyPublicKey returns the public key of a private key file
// without decrypting it: openssh-key-v1 stores the public key in the
// clear, so the key can be offered to a server (or found in an agent)
// before its passphrase is asked for, as ssh does. The other forms
// ParsePrivateKey reads are unencrypted and are parsed whole. It also
// reads the public key of a security key's file
// (sk-ssh-ed25519@openssh.com...), which ParsePrivateKey cannot use: only
// an agent can sign with it.
func PrivateKeyPublicKey(pemBytes []byte) (kex.PublicKey, error) {
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("auth: no PEM-encoded private key found")
		}
		switch block.Type {
		case "EC PARAMETERS":
			continue
		case pemOpenSSH:
			data := block.Bytes
			if len(data) > privateKeyMaxBlob || !bytes.HasPrefix(data, []byte(opensshKeyMagic)) {
				return nil, errors.New("auth: malformed openssh private key")
			}
			r := wire.NewReader(data[len(opensshKeyMagic):])
			r.Bytes() // cipher name
			r.Bytes() // kdf name
			r.Bytes() // kdf options
			n := r.Uint32()
			pub := r.Bytes()
			if err := r.Err(); err != nil {
				return nil, fmt.Errorf("auth: openssh private key header: %w", err)
			}
			if n != 1 {
				return nil, fmt.Errorf("auth: openssh private key file holds %d keys; exactly one is supported", n)
			}
			k, err := kex.ParsePublicKey(pub)
			if err != nil {
				return nil, fmt.Errorf("auth: openssh private key's public key: %w", err)
			}
			if _, ok := k.(*kex.Certificate); ok {
				return nil, errors.New("auth: openssh private key holds a certificate")
			}
			return k, nil
		}
		k, _, err := ParsePrivateKey(pemBytes, nil)
		if err != nil {
			return nil, err
		}
		return kex.NewPublicKey(k.Public())
	}
}
