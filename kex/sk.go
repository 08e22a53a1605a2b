package kex

// FIDO/U2F security keys as OpenSSH defines them (PROTOCOL.u2f): the
// public keys sk-ssh-ed25519@openssh.com and
// sk-ecdsa-sha2-nistp256@openssh.com, and the verification of their
// signatures, webauthn-sk-ecdsa-sha2-nistp256@openssh.com included. Making
// such signatures needs the authenticator (through ssh-agent, for a
// client); nothing here signs.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/rsftp/rsftp/internal/wire"
)

// Security key types and signature algorithm names.
const (
	KeyAlgoSKED25519  = "sk-ssh-ed25519@openssh.com"
	KeyAlgoSKECDSA256 = "sk-ecdsa-sha2-nistp256@openssh.com"
	// SigAlgoWebAuthnSKECDSA256 is a signature algorithm of
	// sk-ecdsa-sha2-nistp256@openssh.com keys: the authenticator signed
	// a WebAuthn clientData that embeds the data (a browser made it).
	SigAlgoWebAuthnSKECDSA256 = "webauthn-sk-ecdsa-sha2-nistp256@openssh.com"
)

// Flags of a security key signature (the authenticator data flags of
// FIDO, which OpenSSH's sk-api.h names SSH_SK_USER_PRESENCE_REQD and
// SSH_SK_USER_VERIFICATION_REQD).
const (
	// SKFlagUserPresent: the user touched the authenticator.
	SKFlagUserPresent = 0x01
	// SKFlagUserVerified: the authenticator verified the user (PIN,
	// biometric).
	SKFlagUserVerified = 0x04

	skFlagAttestedData = 0x40 // AT: never in an assertion
	skFlagExtensions   = 0x80 // ED: extensions follow the counter
)

// SKSignature is what a security key signature asserts besides the
// signature itself.
type SKSignature struct {
	// Algorithm is the signature's algorithm name.
	Algorithm string
	// Flags are the authenticator's flags (SKFlagUserPresent,
	// SKFlagUserVerified, ...).
	Flags byte
	// Counter is the authenticator's signature counter.
	Counter uint32
	// Origin is the WebAuthn origin of a webauthn-sk signature, else "".
	Origin string
}

// SKPublicKey is a security key's public key: sk-ssh-ed25519@openssh.com
// or sk-ecdsa-sha2-nistp256@openssh.com. Its Verify requires the user
// presence flag; VerifySK leaves the flags to the caller, as sshd judges
// them against no-touch-required and verify-required.
type SKPublicKey interface {
	PublicKey
	// Application is the FIDO application (relying party) the key was
	// made for, usually "ssh:".
	Application() string
	// VerifySK checks a signature over data and returns the flags and
	// counter the authenticator signed, without judging them.
	VerifySK(data, sig []byte) (*SKSignature, error)
}

// VerifyDetails verifies sig over data with k, as k.Verify does, except
// that for a security key (or a certificate of one) it does not require
// the user presence flag and returns what the authenticator asserted:
// the caller must judge the flags. For other keys it returns nil details.
func VerifyDetails(k PublicKey, data, sig []byte) (*SKSignature, error) {
	if c, ok := k.(*Certificate); ok {
		k = c.Key
	}
	if sk, ok := k.(SKPublicKey); ok {
		return sk.VerifySK(data, sig)
	}
	return nil, k.Verify(data, sig)
}

// parseSKKey reads the fields of a security key after its type name.
func parseSKKey(typ string, r *wire.Reader) (PublicKey, error) {
	switch typ {
	case KeyAlgoSKED25519:
		raw := r.Bytes()
		app := r.Bytes()
		if r.Err() != nil {
			return nil, nil
		}
		if len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("kex: %s key of %d bytes, want %d", typ, len(raw), ed25519.PublicKeySize)
		}
		if err := checkApplication(app); err != nil {
			return nil, err
		}
		return &skED25519Public{key: ed25519.PublicKey(bytes.Clone(raw)), app: string(app)}, nil
	default: // KeyAlgoSKECDSA256
		curveName := r.String()
		point := r.Bytes()
		app := r.Bytes()
		if r.Err() != nil {
			return nil, nil
		}
		if curveName != "nistp256" {
			return nil, fmt.Errorf("kex: %s key names curve %s", typ, printable(curveName))
		}
		k, err := parseECDSA(KeyAlgoECDSA256, curveName, point)
		if err != nil {
			return nil, fmt.Errorf("kex: %s key: %w", typ, err)
		}
		if err := checkApplication(app); err != nil {
			return nil, err
		}
		return &skECDSAPublic{key: k.(*ecdsaPublic).key, app: string(app)}, nil
	}
}

// checkApplication refuses an application string OpenSSH could not read
// (it reads it as a C string).
func checkApplication(app []byte) error {
	if bytes.IndexByte(app, 0) >= 0 {
		return errors.New("kex: security key application contains a NUL byte")
	}
	return nil
}

// skSignedData is what the authenticator signs (PROTOCOL.u2f, "SSH U2F
// signatures"): SHA256(application) || flags || counter || extensions ||
// msghash, where msghash is SHA256 of the message (of the WebAuthn
// clientData for a webauthn signature).
func skSignedData(app string, flags byte, counter uint32, exts, msghash []byte) []byte {
	ah := sha256.Sum256([]byte(app))
	b := make([]byte, 0, 32+1+4+len(exts)+32)
	b = append(b, ah[:]...)
	b = append(b, flags)
	b = wire.AppendUint32(b, counter)
	b = append(b, exts...)
	return append(b, msghash...)
}

// requirePresence is what Verify adds to VerifySK.
func requirePresence(d *SKSignature, err error) error {
	if err != nil {
		return err
	}
	if d.Flags&SKFlagUserPresent == 0 {
		return fmt.Errorf("kex: %s signature without user presence (the authenticator was not touched)", d.Algorithm)
	}
	return nil
}

// --- sk-ssh-ed25519@openssh.com ---

type skED25519Public struct {
	key ed25519.PublicKey
	app string
}

func (k *skED25519Public) Type() string                      { return KeyAlgoSKED25519 }
func (k *skED25519Public) Application() string               { return k.app }
func (k *skED25519Public) CryptoPublicKey() crypto.PublicKey { return k.key }
func (k *skED25519Public) Marshal() []byte {
	b := wire.AppendString(nil, KeyAlgoSKED25519)
	b = wire.AppendBytes(b, k.key)
	return wire.AppendString(b, k.app)
}

func (k *skED25519Public) Verify(data, sig []byte) error {
	return requirePresence(k.VerifySK(data, sig))
}

// VerifySK: string "sk-ssh-ed25519@openssh.com" || string signature ||
// byte flags || uint32 counter; Ed25519 over skSignedData.
func (k *skED25519Public) VerifySK(data, sig []byte) (*SKSignature, error) {
	r := wire.NewReader(sig)
	algo := r.String()
	raw := r.Bytes()
	flags := r.Byte()
	counter := r.Uint32()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("kex: malformed %s signature: %w", KeyAlgoSKED25519, err)
	}
	if algo != KeyAlgoSKED25519 {
		return nil, fmt.Errorf("kex: signature algorithm %s not valid for this key (want %s)", printable(algo), KeyAlgoSKED25519)
	}
	if len(raw) != ed25519.SignatureSize {
		return nil, fmt.Errorf("kex: %s signature of %d bytes, want %d", algo, len(raw), ed25519.SignatureSize)
	}
	mh := sha256.Sum256(data)
	if !ed25519.Verify(k.key, skSignedData(k.app, flags, counter, nil, mh[:]), raw) {
		return nil, fmt.Errorf("kex: %s signature does not verify", algo)
	}
	return &SKSignature{Algorithm: algo, Flags: flags, Counter: counter}, nil
}

// --- sk-ecdsa-sha2-nistp256@openssh.com ---

type skECDSAPublic struct {
	key *ecdsa.PublicKey
	app string
}

func (k *skECDSAPublic) Type() string                      { return KeyAlgoSKECDSA256 }
func (k *skECDSAPublic) Application() string               { return k.app }
func (k *skECDSAPublic) CryptoPublicKey() crypto.PublicKey { return k.key }
func (k *skECDSAPublic) Marshal() []byte {
	b := keyBody(&ecdsaPublic{typ: KeyAlgoECDSA256, key: k.key})
	b = append(wire.AppendString(nil, KeyAlgoSKECDSA256), b...)
	return wire.AppendString(b, k.app)
}

func (k *skECDSAPublic) Verify(data, sig []byte) error { return requirePresence(k.VerifySK(data, sig)) }

// webauthnClientDataPrefix is how the clientData of a webauthn signature
// must begin (the fields OpenSSH checks, in the order browsers write
// them): its challenge is the signed data in unpadded base64url.
func webauthnClientDataPrefix(data []byte, origin string) []byte {
	b := []byte(`{"type":"webauthn.get","challenge":"`)
	b = base64.RawURLEncoding.AppendEncode(b, data)
	b = append(b, `","origin":"`...)
	b = append(b, origin...)
	return append(b, '"')
}

// VerifySK: string algorithm || string (mpint r || mpint s) || byte flags
// || uint32 counter, and for webauthn-sk-ecdsa-sha2-nistp256@openssh.com
// string origin || string clientData || string extensions; ECDSA P-256
// with SHA-256 over skSignedData.
func (k *skECDSAPublic) VerifySK(data, sig []byte) (*SKSignature, error) {
	r := wire.NewReader(sig)
	algo := r.String()
	raw := r.Bytes()
	flags := r.Byte()
	counter := r.Uint32()
	var origin, clientData, exts []byte
	webauthn := algo == SigAlgoWebAuthnSKECDSA256
	if webauthn {
		origin = r.Bytes()
		clientData = r.Bytes()
		exts = r.Bytes()
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("kex: malformed %s signature: %w", KeyAlgoSKECDSA256, err)
	}
	if algo != KeyAlgoSKECDSA256 && !webauthn {
		return nil, fmt.Errorf("kex: signature algorithm %s not valid for this key (want %s or %s)", printable(algo), KeyAlgoSKECDSA256, SigAlgoWebAuthnSKECDSA256)
	}
	rs := wire.NewReader(raw)
	rr := rs.MPInt()
	ss := rs.MPInt()
	if err := rs.Done(); err != nil {
		return nil, fmt.Errorf("kex: malformed %s signature: %w", algo, err)
	}
	var mh [32]byte
	if webauthn {
		// As OpenSSH: an origin that could end the JSON string early,
		// attested credential data, or an extensions flag that does not
		// say whether extensions follow, is malformed.
		if bytes.ContainsAny(origin, "\"\x00") || flags&skFlagAttestedData != 0 ||
			(flags&skFlagExtensions != 0) != (len(exts) != 0) {
			return nil, fmt.Errorf("kex: malformed %s signature: bad origin or flags", algo)
		}
		if !bytes.HasPrefix(clientData, webauthnClientDataPrefix(data, string(origin))) {
			return nil, fmt.Errorf("kex: %s signature: clientData does not carry the signed data", algo)
		}
		mh = sha256.Sum256(clientData)
	} else {
		mh = sha256.Sum256(data)
	}
	d := sha256.Sum256(skSignedData(k.app, flags, counter, exts, mh[:]))
	if !ecdsa.Verify(k.key, d[:], rr, ss) {
		return nil, fmt.Errorf("kex: %s signature does not verify", algo)
	}
	return &SKSignature{Algorithm: algo, Flags: flags, Counter: counter, Origin: string(origin)}, nil
}
