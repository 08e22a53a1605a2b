// Package kex implements SSH key exchange: curve25519-sha256 (RFC 8731),
// the hybrids mlkem768x25519-sha256 and sntrup761x25519-sha512 (OpenSSH's
// default from 9.0 to 9.8), the exchange hash, RFC 4253 key
// derivation, and the host and user key algorithms ssh-ed25519,
// ecdsa-sha2-nistp256/384/521 and rsa-sha2-256/512.
//
// The methods are sans-I/O: a client makes its init message and handles
// the server's reply; a server turns an init message into a reply. The
// transport moves the bytes.
package kex

import (
	"crypto"
	"crypto/ecdh"
	"crypto/mlkem"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"github.com/rsftp/rsftp/internal/sntrup761"
	"github.com/rsftp/rsftp/internal/wire"
)

// Method names.
const (
	Curve25519SHA256       = "curve25519-sha256"
	Curve25519SHA256LibSSH = "curve25519-sha256@libssh.org"
	MLKEM768X25519SHA256   = "mlkem768x25519-sha256"
	// SNTRUP761X25519SHA512 is the name OpenSSH 9.9 gave the method it
	// had offered since 8.5 as SNTRUP761X25519SHA512OpenSSH.
	SNTRUP761X25519SHA512        = "sntrup761x25519-sha512"
	SNTRUP761X25519SHA512OpenSSH = "sntrup761x25519-sha512@openssh.com"
)

// Message numbers shared by the ECDH-style methods.
const (
	msgKexInit  = wire.MsgKexECDHInit
	msgKexReply = wire.MsgKexECDHReply
)

// SupportedMethods lists our key exchange methods, best first: the
// post-quantum hybrids before curve25519 alone, as OpenSSH orders them.
func SupportedMethods() []string {
	return []string{MLKEM768X25519SHA256, SNTRUP761X25519SHA512, SNTRUP761X25519SHA512OpenSSH, Curve25519SHA256, Curve25519SHA256LibSSH}
}

// methodHash is the hash of a method's exchange hash and key derivation.
func methodHash(method string) crypto.Hash {
	switch method {
	case SNTRUP761X25519SHA512, SNTRUP761X25519SHA512OpenSSH:
		return crypto.SHA512
	}
	return crypto.SHA256
}

// Magics are the handshake strings that enter the exchange hash.
type Magics struct {
	// ClientVersion and ServerVersion without CR LF.
	ClientVersion, ServerVersion []byte
	// ClientKexInit and ServerKexInit are the whole KEXINIT payloads.
	ClientKexInit, ServerKexInit []byte
}

// Result is what a completed key exchange yields.
type Result struct {
	Hash crypto.Hash
	// H is the exchange hash.
	H []byte
	// K is the shared secret encoded as it enters the hash and the KDF:
	// an mpint for curve25519, a string for the hybrids.
	K         []byte
	HostKey   PublicKey
	Signature []byte
}

// ClientMethod is the client's half of a key exchange method.
type ClientMethod interface {
	// InitMessage is the whole payload of the client's message 30.
	InitMessage() []byte
	// HandleReply parses the server's reply, computes K and H and
	// verifies the host key's signature over H with sigAlgo. Whether the
	// host key is trusted is for the caller to decide.
	HandleReply(reply []byte, m *Magics, sigAlgo string) (*Result, error)
}

// NewClient starts the client side of method.
func NewClient(method string, rand io.Reader) (ClientMethod, error) {
	switch method {
	case Curve25519SHA256, Curve25519SHA256LibSSH:
		priv, err := ecdh.X25519().GenerateKey(rand)
		if err != nil {
			return nil, fmt.Errorf("kex: generating X25519 key: %w", err)
		}
		return &x25519Client{priv: priv}, nil
	case MLKEM768X25519SHA256:
		dk, err := mlkem.GenerateKey768()
		if err != nil {
			return nil, fmt.Errorf("kex: generating ML-KEM key: %w", err)
		}
		priv, err := ecdh.X25519().GenerateKey(rand)
		if err != nil {
			return nil, fmt.Errorf("kex: generating X25519 key: %w", err)
		}
		return &hybridClient{dk: dk, priv: priv}, nil
	case SNTRUP761X25519SHA512, SNTRUP761X25519SHA512OpenSSH:
		dk, err := sntrupKey()
		if err != nil {
			return nil, fmt.Errorf("kex: generating sntrup761 key: %w", err)
		}
		priv, err := ecdh.X25519().GenerateKey(rand)
		if err != nil {
			return nil, fmt.Errorf("kex: generating X25519 key: %w", err)
		}
		return &sntrupClient{dk: dk, priv: priv}, nil
	}
	return nil, fmt.Errorf("kex: unsupported key exchange method %q", method)
}

// Server runs the server side of method: it parses the client's init,
// computes K and H, signs H with hostKey using sigAlgo and returns the
// reply payload.
func Server(method string, rand io.Reader, init []byte, m *Magics, hostKey Signer, sigAlgo string) ([]byte, *Result, error) {
	qc, err := parseKexInitMsg(init)
	if err != nil {
		return nil, nil, err
	}
	var qs, k []byte
	switch method {
	case Curve25519SHA256, Curve25519SHA256LibSSH:
		priv, err := ecdh.X25519().GenerateKey(rand)
		if err != nil {
			return nil, nil, fmt.Errorf("kex: generating X25519 key: %w", err)
		}
		secret, err := x25519Shared(priv, qc)
		if err != nil {
			return nil, nil, err
		}
		qs = priv.PublicKey().Bytes()
		k = wire.AppendMPIntBytes(nil, secret)
	case MLKEM768X25519SHA256:
		if len(qc) != mlkem.EncapsulationKeySize768+32 {
			return nil, nil, fmt.Errorf("kex: hybrid client init of %d bytes, want %d", len(qc), mlkem.EncapsulationKeySize768+32)
		}
		ek, err := mlkem.NewEncapsulationKey768(qc[:mlkem.EncapsulationKeySize768])
		if err != nil {
			return nil, nil, fmt.Errorf("kex: client's ML-KEM key: %w", err)
		}
		kemSecret, ct := ek.Encapsulate()
		priv, err := ecdh.X25519().GenerateKey(rand)
		if err != nil {
			return nil, nil, fmt.Errorf("kex: generating X25519 key: %w", err)
		}
		ecSecret, err := x25519Shared(priv, qc[mlkem.EncapsulationKeySize768:])
		if err != nil {
			return nil, nil, err
		}
		qs = append(ct, priv.PublicKey().Bytes()...)
		k = hybridSecret(crypto.SHA256, kemSecret, ecSecret)
	case SNTRUP761X25519SHA512, SNTRUP761X25519SHA512OpenSSH:
		if len(qc) != sntrup761.PublicKeySize+32 {
			return nil, nil, fmt.Errorf("kex: sntrup761x25519 client init of %d bytes, want %d", len(qc), sntrup761.PublicKeySize+32)
		}
		ct, kemSecret, err := sntrup761.Encapsulate(rand, qc[:sntrup761.PublicKeySize])
		if err != nil {
			return nil, nil, fmt.Errorf("kex: %w", err)
		}
		priv, err := ecdh.X25519().GenerateKey(rand)
		if err != nil {
			return nil, nil, fmt.Errorf("kex: generating X25519 key: %w", err)
		}
		ecSecret, err := x25519Shared(priv, qc[sntrup761.PublicKeySize:])
		if err != nil {
			return nil, nil, err
		}
		qs = append(ct, priv.PublicKey().Bytes()...)
		k = hybridSecret(crypto.SHA512, kemSecret, ecSecret)
	default:
		return nil, nil, fmt.Errorf("kex: unsupported key exchange method %q", method)
	}
	hostBlob := hostKey.PublicKey().Marshal()
	hash := methodHash(method)
	h := exchangeHash(hash, m, hostBlob, qc, qs, k)
	sig, err := hostKey.Sign(rand, h, sigAlgo)
	if err != nil {
		return nil, nil, err
	}
	reply := []byte{msgKexReply}
	reply = wire.AppendBytes(reply, hostBlob)
	reply = wire.AppendBytes(reply, qs)
	reply = wire.AppendBytes(reply, sig)
	return reply, &Result{Hash: hash, H: h, K: k, HostKey: hostKey.PublicKey(), Signature: sig}, nil
}

// parseKexInitMsg parses message 30: byte 30 || string Q_C.
func parseKexInitMsg(p []byte) ([]byte, error) {
	r := wire.NewReader(p)
	if r.Byte() != msgKexInit {
		return nil, errors.New("kex: not a key exchange init message")
	}
	q := r.Bytes()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("kex: malformed key exchange init: %w", err)
	}
	return q, nil
}

// kexReplyMsg is message 31: byte 31 || string K_S || string Q_S || string sig.
type kexReplyMsg struct {
	HostKey, Q, Signature []byte
}

func parseKexReply(p []byte) (*kexReplyMsg, error) {
	r := wire.NewReader(p)
	if r.Byte() != msgKexReply {
		return nil, errors.New("kex: not a key exchange reply message")
	}
	m := &kexReplyMsg{HostKey: r.Bytes(), Q: r.Bytes(), Signature: r.Bytes()}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("kex: malformed key exchange reply: %w", err)
	}
	return m, nil
}

func x25519Shared(priv *ecdh.PrivateKey, peer []byte) ([]byte, error) {
	if len(peer) != 32 {
		return nil, fmt.Errorf("kex: X25519 public key of %d bytes, want 32", len(peer))
	}
	pub, err := ecdh.X25519().NewPublicKey(peer)
	if err != nil {
		return nil, fmt.Errorf("kex: X25519 public key: %w", err)
	}
	secret, err := priv.ECDH(pub)
	if err != nil {
		// crypto/ecdh refuses an all-zero result (a low-order point).
		return nil, fmt.Errorf("kex: X25519: %w", err)
	}
	var zero [32]byte
	if subtle.ConstantTimeCompare(secret, zero[:]) == 1 {
		return nil, errors.New("kex: X25519 shared secret is zero")
	}
	return secret, nil
}

// hybridSecret is a hybrid's K: string HASH(KEM key || X25519 secret).
func hybridSecret(hash crypto.Hash, kem, ec []byte) []byte {
	var h = sha256.New()
	if hash == crypto.SHA512 {
		h = sha512.New()
	}
	h.Write(kem)
	h.Write(ec)
	return wire.AppendBytes(nil, h.Sum(nil))
}

// exchangeHash computes H = HASH(string V_C || string V_S || string I_C
// || string I_S || string K_S || string Q_C || string Q_S || K), with K
// already encoded.
func exchangeHash(hash crypto.Hash, m *Magics, hostKey, qc, qs, k []byte) []byte {
	var h = sha256.New()
	if hash == crypto.SHA512 {
		h = sha512.New()
	}
	var b []byte
	for _, f := range [][]byte{m.ClientVersion, m.ServerVersion, m.ClientKexInit, m.ServerKexInit, hostKey, qc, qs} {
		b = wire.AppendBytes(b[:0], f)
		h.Write(b)
	}
	h.Write(k)
	return h.Sum(nil)
}

type x25519Client struct{ priv *ecdh.PrivateKey }

func (c *x25519Client) InitMessage() []byte {
	return wire.AppendBytes([]byte{msgKexInit}, c.priv.PublicKey().Bytes())
}

func (c *x25519Client) HandleReply(p []byte, m *Magics, sigAlgo string) (*Result, error) {
	rep, err := parseKexReply(p)
	if err != nil {
		return nil, err
	}
	secret, err := x25519Shared(c.priv, rep.Q)
	if err != nil {
		return nil, err
	}
	return finishClient(crypto.SHA256, rep, m, sigAlgo, c.priv.PublicKey().Bytes(), wire.AppendMPIntBytes(nil, secret))
}

type hybridClient struct {
	dk   *mlkem.DecapsulationKey768
	priv *ecdh.PrivateKey
}

func (c *hybridClient) qc() []byte {
	return append(c.dk.EncapsulationKey().Bytes(), c.priv.PublicKey().Bytes()...)
}

func (c *hybridClient) InitMessage() []byte {
	return wire.AppendBytes([]byte{msgKexInit}, c.qc())
}

func (c *hybridClient) HandleReply(p []byte, m *Magics, sigAlgo string) (*Result, error) {
	rep, err := parseKexReply(p)
	if err != nil {
		return nil, err
	}
	if len(rep.Q) != mlkem.CiphertextSize768+32 {
		return nil, fmt.Errorf("kex: hybrid server reply of %d bytes, want %d", len(rep.Q), mlkem.CiphertextSize768+32)
	}
	kemSecret, err := c.dk.Decapsulate(rep.Q[:mlkem.CiphertextSize768])
	if err != nil {
		return nil, fmt.Errorf("kex: ML-KEM decapsulation: %w", err)
	}
	ecSecret, err := x25519Shared(c.priv, rep.Q[mlkem.CiphertextSize768:])
	if err != nil {
		return nil, err
	}
	return finishClient(crypto.SHA256, rep, m, sigAlgo, c.qc(), hybridSecret(crypto.SHA256, kemSecret, ecSecret))
}

type sntrupClient struct {
	dk   *sntrup761.PrivateKey
	priv *ecdh.PrivateKey
}

func (c *sntrupClient) qc() []byte {
	return append(c.dk.PublicKey(), c.priv.PublicKey().Bytes()...)
}

func (c *sntrupClient) InitMessage() []byte {
	return wire.AppendBytes([]byte{msgKexInit}, c.qc())
}

func (c *sntrupClient) HandleReply(p []byte, m *Magics, sigAlgo string) (*Result, error) {
	rep, err := parseKexReply(p)
	if err != nil {
		return nil, err
	}
	if len(rep.Q) != sntrup761.CiphertextSize+32 {
		return nil, fmt.Errorf("kex: sntrup761x25519 server reply of %d bytes, want %d", len(rep.Q), sntrup761.CiphertextSize+32)
	}
	kemSecret, err := c.dk.Decapsulate(rep.Q[:sntrup761.CiphertextSize])
	if err != nil {
		return nil, fmt.Errorf("kex: %w", err)
	}
	ecSecret, err := x25519Shared(c.priv, rep.Q[sntrup761.CiphertextSize:])
	if err != nil {
		return nil, err
	}
	return finishClient(crypto.SHA512, rep, m, sigAlgo, c.qc(), hybridSecret(crypto.SHA512, kemSecret, ecSecret))
}

func finishClient(hash crypto.Hash, rep *kexReplyMsg, m *Magics, sigAlgo string, qc, k []byte) (*Result, error) {
	hostKey, err := ParsePublicKey(rep.HostKey)
	if err != nil {
		return nil, fmt.Errorf("kex: server host key: %w", err)
	}
	if KeyTypeForSignatureAlgorithm(sigAlgo) != hostKey.Type() {
		return nil, fmt.Errorf("kex: server sent a %s host key, but %s was negotiated", hostKey.Type(), sigAlgo)
	}
	// Under a certificate algorithm the signature names the plain one.
	if algo, _, err := parseSignature(rep.Signature, UnderlyingSignatureAlgorithm(sigAlgo)); err != nil || algo != UnderlyingSignatureAlgorithm(sigAlgo) {
		return nil, fmt.Errorf("kex: host key signature: %v", err)
	}
	h := exchangeHash(hash, m, rep.HostKey, qc, rep.Q, k)
	if err := hostKey.Verify(h, rep.Signature); err != nil {
		return nil, fmt.Errorf("kex: server's host key signature over the exchange hash: %w", err)
	}
	return &Result{Hash: hash, H: h, K: k, HostKey: hostKey, Signature: rep.Signature}, nil
}

// DeriveKey is the RFC 4253 section 7.2 key derivation: HASH(K || H ||
// letter || session_id), extended by HASH(K || H || all so far) until n
// bytes are there. K is already encoded.
func DeriveKey(hash crypto.Hash, K, H []byte, letter byte, sessionID []byte, n int) []byte {
	if n == 0 {
		return nil
	}
	h := hash.New()
	h.Write(K)
	h.Write(H)
	h.Write([]byte{letter})
	h.Write(sessionID)
	out := h.Sum(nil)
	for len(out) < n {
		h.Reset()
		h.Write(K)
		h.Write(H)
		h.Write(out)
		out = h.Sum(out)
	}
	return out[:n]
}
