package auth

// An ssh-agent client: the protocol of draft-ietf-sshm-ssh-agent, which
// OpenSSH's ssh-agent speaks over a Unix socket.
//
// Every message in either direction is framed as
//
//	uint32 length || byte type || contents
//
// and the client sends one request and reads exactly one reply at a time.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"
	"sync/atomic"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
)

// Agent protocol message numbers.
const (
	agentFailure            = 5  // SSH_AGENT_FAILURE
	agentSuccess            = 6  // SSH_AGENT_SUCCESS
	agentRequestIdentities  = 11 // SSH_AGENTC_REQUEST_IDENTITIES
	agentIdentitiesAnswer   = 12 // SSH_AGENT_IDENTITIES_ANSWER
	agentSignRequest        = 13 // SSH_AGENTC_SIGN_REQUEST
	agentSignResponse       = 14 // SSH_AGENT_SIGN_RESPONSE
	agentAddIdentity        = 17 // SSH_AGENTC_ADD_IDENTITY
	agentRemoveIdentity     = 18 // SSH_AGENTC_REMOVE_IDENTITY
	agentRemoveAllIdentites = 19 // SSH_AGENTC_REMOVE_ALL_IDENTITIES

	// Failure codes of older protocol versions that OpenSSH's own client
	// still treats as SSH_AGENT_FAILURE.
	agentSSH2Failure    = 30  // SSH2_AGENT_FAILURE
	agentSSHComFailure  = 102 // SSH_COM_AGENT2_FAILURE
	agentFlagRSASHA2256 = 2   // SSH_AGENT_RSA_SHA2_256
	agentFlagRSASHA2512 = 4   // SSH_AGENT_RSA_SHA2_512
)

// agentMaxMessage bounds a message in either direction, excluding the
// length word. It is OpenSSH's own limit (AGENT_MAX_LEN), so nothing a
// real agent sends is refused.
const agentMaxMessage = 256 << 10

// ErrAgentFailure is returned (wrapped) when the agent answers a request
// with SSH_AGENT_FAILURE: the key is not held, the agent is locked, the
// user declined a confirmation, or the request is not supported.
var ErrAgentFailure = errors.New("auth: agent refused the request")

var errAgentClosed = errors.New("agent connection closed")

// AgentKey is a public key held by an agent, with the comment the agent
// has for it (usually the key file's path or comment).
type AgentKey struct {
	Key     kex.PublicKey
	Comment string
}

// Agent is a client connection to an ssh-agent. It is safe for
// concurrent use: requests are serialised on the connection.
type Agent struct {
	mu  sync.Mutex // held for a request and its reply
	rw  io.ReadWriteCloser
	err error // sticky: set once the stream may be out of step

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// DialAgent connects to the agent listening on the Unix socket sock (on
// Windows also a named pipe, \\.\pipe\name), or on DefaultAgentSocket
// when sock is "": $SSH_AUTH_SOCK, and on Windows, when that is unset,
// OpenSSH for Windows' agent. ctx bounds the connection attempt.
func DialAgent(ctx context.Context, sock string) (*Agent, error) {
	if sock == "" {
		sock = DefaultAgentSocket()
		if sock == "" {
			return nil, errors.New("auth: cannot reach the ssh-agent: SSH_AUTH_SOCK is not set")
		}
	}
	c, err := dialAgentSocket(ctx, sock)
	if err != nil {
		return nil, fmt.Errorf("auth: connecting to ssh-agent: %w", err)
	}
	return NewAgent(c), nil
}

// NewAgent returns an Agent speaking the agent protocol over rw, which it
// owns: Close closes it.
func NewAgent(rw io.ReadWriteCloser) *Agent {
	return &Agent{rw: rw}
}

// Close closes the connection. It does not wait for a request in
// progress, which fails.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		a.closed.Store(true)
		a.closeErr = a.rw.Close()
	})
	return a.closeErr
}

// roundTrip sends one request (type and contents) and returns the reply's
// type and contents. A reply of any failure type is returned as
// ErrAgentFailure.
func (a *Agent) roundTrip(req []byte) (byte, []byte, error) {
	if len(req) > agentMaxMessage {
		return 0, nil, fmt.Errorf("agent request of %d bytes exceeds the %d-byte limit", len(req), agentMaxMessage)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed.Load() {
		return 0, nil, errAgentClosed
	}
	if a.err != nil {
		return 0, nil, a.err
	}
	typ, body, err := a.exchange(req)
	if err != nil {
		if a.closed.Load() {
			err = errAgentClosed
		}
		// The reply may be partly read or still coming: later replies
		// could be taken for answers to later requests.
		a.err = fmt.Errorf("agent connection unusable after an earlier error: %w", err)
		return 0, nil, err
	}
	switch typ {
	case agentFailure, agentSSH2Failure, agentSSHComFailure:
		return 0, nil, ErrAgentFailure
	}
	return typ, body, nil
}

// exchange does the I/O of one round trip; any error leaves the stream
// out of step.
func (a *Agent) exchange(req []byte) (byte, []byte, error) {
	msg := make([]byte, 0, 4+len(req))
	msg = wire.AppendBytes(msg, req)
	if _, err := a.rw.Write(msg); err != nil {
		return 0, nil, fmt.Errorf("writing to agent: %w", err)
	}
	return readAgentReply(a.rw)
}

// readAgentReply reads one framed message, checking its length before
// allocating. Its errors, like roundTrip's, are wrapped by the callers.
func readAgentReply(r io.Reader) (byte, []byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, fmt.Errorf("reading agent reply: %w", err)
	}
	n := uint32(hdr[0])<<24 | uint32(hdr[1])<<16 | uint32(hdr[2])<<8 | uint32(hdr[3])
	if n == 0 {
		return 0, nil, errors.New("agent sent an empty reply")
	}
	if n > agentMaxMessage {
		return 0, nil, fmt.Errorf("agent reply of %d bytes exceeds the %d-byte limit", n, agentMaxMessage)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, fmt.Errorf("reading agent reply: %w", err)
	}
	return body[0], body[1:], nil
}

// List returns the keys the agent holds: plain keys, security keys
// (sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com, which
// the agent signs with through the authenticator) and certificates
// (*kex.Certificate; ssh-add loads key-cert.pub beside a key as an
// identity of its own). Keys of types this package does not support (DSA,
// XMSS...) and blobs that do not parse are left out rather than failing
// the whole list.
func (a *Agent) List() ([]AgentKey, error) {
	typ, body, err := a.roundTrip([]byte{agentRequestIdentities})
	if err != nil {
		return nil, fmt.Errorf("auth: listing agent keys: %w", err)
	}
	if typ != agentIdentitiesAnswer {
		return nil, fmt.Errorf("auth: listing agent keys: unexpected reply message %d", typ)
	}
	return parseAgentIdentities(body)
}

// parseAgentIdentities parses the contents of SSH_AGENT_IDENTITIES_ANSWER:
//
//	uint32 nkeys, then nkeys times: string key blob, string comment
func parseAgentIdentities(body []byte) ([]AgentKey, error) {
	r := wire.NewReader(body)
	n := r.Uint32()
	if r.Err() != nil {
		return nil, fmt.Errorf("auth: malformed agent identities answer: %w", r.Err())
	}
	// Each entry takes at least two length words.
	if uint64(n) > uint64(r.Len()/8) {
		return nil, fmt.Errorf("auth: agent claims %d keys in a %d-byte reply", n, len(body))
	}
	keys := make([]AgentKey, 0, n)
	for i := uint32(0); i < n; i++ {
		blob := r.Bytes()
		comment := r.String()
		if r.Err() != nil {
			return nil, fmt.Errorf("auth: malformed agent identities answer (key %d of %d): %w", i+1, n, r.Err())
		}
		k, err := kex.ParsePublicKey(blob)
		if err != nil {
			continue // unsupported type or a key we would not use
		}
		keys = append(keys, AgentKey{Key: k, Comment: comment})
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("auth: malformed agent identities answer: %w", err)
	}
	return keys, nil
}

// Sign asks the agent to sign data with key using the signature algorithm
// algorithm ("" means the key type's preferred one, as
// kex.SignatureAlgorithmsFor lists them) and returns the signature blob
// (string algorithm || string signature, and for a security key the
// flags and counter the authenticator signed, passed on unchanged).
//
// For a certificate (a *kex.Certificate the agent listed) the request
// names the certificate and algorithm is a certificate algorithm
// (rsa-sha2-512-cert-v01@openssh.com...); the agent signs with the
// certified key, and the signature names the plain algorithm
// (rsa-sha2-512), as a USERAUTH_REQUEST under the certificate algorithm
// carries it. RSA's SHA-2 algorithms, plain or of a certificate, are
// asked for with the agent's SSH_AGENT_RSA_SHA2_256 and _512 flags.
func (a *Agent) Sign(key kex.PublicKey, data []byte, algorithm string) ([]byte, error) {
	if key == nil {
		return nil, errors.New("auth: agent sign: nil key")
	}
	keyType := key.Type()
	if algorithm == "" {
		algs := kex.SignatureAlgorithmsFor(keyType)
		if len(algs) == 0 {
			return nil, fmt.Errorf("auth: agent sign: unsupported key type %q", keyType)
		}
		algorithm = algs[0]
	}
	if kex.KeyTypeForSignatureAlgorithm(algorithm) != keyType {
		return nil, fmt.Errorf("auth: agent sign: algorithm %q cannot be used with a %s key", algorithm, keyType)
	}
	var flags uint32
	switch kex.UnderlyingSignatureAlgorithm(algorithm) {
	case kex.SigAlgoRSASHA256:
		flags = agentFlagRSASHA2256
	case kex.SigAlgoRSASHA512:
		flags = agentFlagRSASHA2512
	}
	blob := key.Marshal()
	req := make([]byte, 0, 1+4+len(blob)+4+len(data)+4)
	req = append(req, agentSignRequest)
	req = wire.AppendBytes(req, blob)
	req = wire.AppendBytes(req, data)
	req = wire.AppendUint32(req, flags)

	typ, body, err := a.roundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("auth: agent sign with %s key %s: %w", keyType, kex.FingerprintSHA256(key), err)
	}
	if typ != agentSignResponse {
		return nil, fmt.Errorf("auth: agent sign: unexpected reply message %d", typ)
	}
	return parseAgentSignResponse(body, kex.UnderlyingSignatureAlgorithm(algorithm))
}

// parseAgentSignResponse parses the contents of SSH_AGENT_SIGN_RESPONSE
// (string signature blob) and checks that the blob is well formed and
// made with algorithm, the signature's own (plain) algorithm. A security
// key's signature carries byte flags || uint32 counter after the
// signature (PROTOCOL.u2f), and a webauthn one string origin || string
// clientData || string extensions besides; nothing else may follow. It
// returns a copy of the blob.
func parseAgentSignResponse(body []byte, algorithm string) ([]byte, error) {
	r := wire.NewReader(body)
	sig := r.Bytes()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("auth: malformed agent sign response: %w", err)
	}
	sr := wire.NewReader(sig)
	got := sr.String()
	sr.Bytes()
	switch got {
	case kex.KeyAlgoSKED25519, kex.KeyAlgoSKECDSA256, kex.SigAlgoWebAuthnSKECDSA256:
		sr.Byte()   // flags
		sr.Uint32() // counter
		if got == kex.SigAlgoWebAuthnSKECDSA256 {
			sr.Bytes() // origin
			sr.Bytes() // clientData
			sr.Bytes() // extensions
		}
	}
	if err := sr.Done(); err != nil {
		return nil, fmt.Errorf("auth: malformed signature from agent: %w", err)
	}
	if got != algorithm {
		if len(got) > 64 {
			got = got[:64]
		}
		return nil, fmt.Errorf("auth: agent returned a %q signature, %q was requested", got, algorithm)
	}
	return append([]byte(nil), sig...), nil
}

// Signers returns a kex.Signer for each key the agent holds (those List
// returns, certificates and security keys included); their Sign methods
// ask the agent, and ignore rand. A certificate's signer offers the
// certificate algorithms (kex.SignatureAlgorithmsFor: for an RSA
// certificate rsa-sha2-512-cert-v01@openssh.com and
// rsa-sha2-256-cert-v01@openssh.com) and makes signatures named by the
// plain algorithm, as kex.NewCertSigner's do.
func (a *Agent) Signers() ([]kex.Signer, error) {
	keys, err := a.List()
	if err != nil {
		return nil, err
	}
	signers := make([]kex.Signer, len(keys))
	for i, k := range keys {
		signers[i] = &agentSigner{agent: a, key: k.Key}
	}
	return signers, nil
}

type agentSigner struct {
	agent *Agent
	key   kex.PublicKey
}

func (s *agentSigner) PublicKey() kex.PublicKey { return s.key }
func (s *agentSigner) Algorithms() []string {
	return kex.SignatureAlgorithmsFor(s.key.Type())
}
func (s *agentSigner) Sign(_ io.Reader, data []byte, algorithm string) ([]byte, error) {
	return s.agent.Sign(s.key, data, algorithm)
}

// Add gives the agent a private key, with a comment and no constraints.
// Supported: ed25519.PrivateKey (or a pointer to one), *ecdsa.PrivateKey
// on P-256, P-384 or P-521, and two-prime *rsa.PrivateKey.
func (a *Agent) Add(key crypto.Signer, comment string) error {
	req, err := marshalAgentAddIdentity(key, comment)
	if err != nil {
		return err
	}
	return a.simpleRequest(req, "adding key to agent")
}

// AddCertificate gives the agent a private key together with an OpenSSH
// certificate of its public key, with a comment and no constraints: an
// identity of its own, listed as the certificate (as ssh-add loads
// key-cert.pub beside a key). The key types are Add's.
func (a *Agent) AddCertificate(key crypto.Signer, cert *kex.Certificate, comment string) error {
	req, err := marshalAgentAddCertificate(key, cert, comment)
	if err != nil {
		return err
	}
	return a.simpleRequest(req, "adding certificate to agent")
}

// marshalAgentAddCertificate builds SSH_AGENTC_ADD_IDENTITY for a
// certificate:
//
//	byte 17, string certificate type, string certificate,
//	private fields, string comment
//
// where the private fields are those of the plain key less what the
// certificate holds: string ENC(A) || string k || ENC(A) for ed25519,
// mpint d for ECDSA, mpint d, iqmp, p, q for RSA (as OpenSSH serializes
// a certificate's private key).
func marshalAgentAddCertificate(key crypto.Signer, cert *kex.Certificate, comment string) ([]byte, error) {
	if cert == nil || cert.Key == nil {
		return nil, errors.New("auth: adding certificate to agent: nil certificate")
	}
	// The plain key's request checks the key and lays out its fields.
	plain, err := marshalAgentAddIdentity(key, "")
	if err != nil {
		return nil, err
	}
	pub, err := kex.NewPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("auth: adding certificate to agent: %w", err)
	}
	if string(pub.Marshal()) != string(cert.Key.Marshal()) {
		return nil, errors.New("auth: adding certificate to agent: the certificate certifies another key")
	}
	r := wire.NewReader(plain[1:])
	r.Bytes() // key type
	switch pub.Type() {
	case kex.KeyAlgoED25519:
		// string ENC(A), string k || ENC(A): both kept.
	case kex.KeyAlgoRSA:
		r.MPInt() // n
		r.MPInt() // e
	default: // ECDSA: string curve, string Q
		r.Bytes()
		r.Bytes()
	}
	if r.Err() != nil {
		return nil, fmt.Errorf("auth: adding certificate to agent: %w", r.Err())
	}
	priv := r.Rest()
	priv = priv[:len(priv)-4] // the empty comment
	req := wire.AppendString([]byte{agentAddIdentity}, cert.Type())
	req = wire.AppendBytes(req, cert.Marshal())
	req = append(req, priv...)
	return wire.AppendString(req, comment), nil
}

// Remove asks the agent to forget key.
func (a *Agent) Remove(key kex.PublicKey) error {
	if key == nil {
		return errors.New("auth: removing key from agent: nil key")
	}
	req := wire.AppendBytes([]byte{agentRemoveIdentity}, key.Marshal())
	return a.simpleRequest(req, "removing key from agent")
}

// RemoveAll asks the agent to forget all its keys.
func (a *Agent) RemoveAll() error {
	return a.simpleRequest([]byte{agentRemoveAllIdentites}, "removing all agent keys")
}

// simpleRequest sends a request whose only good answer is SSH_AGENT_SUCCESS.
func (a *Agent) simpleRequest(req []byte, what string) error {
	typ, _, err := a.roundTrip(req)
	if err != nil {
		return fmt.Errorf("auth: %s: %w", what, err)
	}
	if typ != agentSuccess {
		return fmt.Errorf("auth: %s: unexpected reply message %d", what, typ)
	}
	return nil
}

// marshalAgentAddIdentity builds SSH_AGENTC_ADD_IDENTITY:
//
//	byte 17, string key type, key-type-specific fields, string comment
//
// For ed25519 and ECDSA the fields are the public key's own fields
// followed by the private part, so they start as the public key blob does.
func marshalAgentAddIdentity(key crypto.Signer, comment string) ([]byte, error) {
	if p, ok := key.(*ed25519.PrivateKey); ok {
		if p == nil {
			return nil, errors.New("auth: adding key to agent: nil key")
		}
		key = *p
	}
	// Check before calling Public, which panics on these.
	switch k := key.(type) {
	case nil:
		return nil, errors.New("auth: adding key to agent: nil key")
	case ed25519.PrivateKey:
		if len(k) != ed25519.PrivateKeySize {
			return nil, errors.New("auth: adding key to agent: bad ed25519 private key length")
		}
	case *ecdsa.PrivateKey:
		if k == nil {
			return nil, errors.New("auth: adding key to agent: nil key")
		}
	case *rsa.PrivateKey:
		if k == nil {
			return nil, errors.New("auth: adding key to agent: nil key")
		}
	}
	pub, err := kex.NewPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("auth: adding key to agent: %w", err)
	}
	req := []byte{agentAddIdentity}
	switch k := key.(type) {
	case ed25519.PrivateKey:
		// string ENC(A), string k || ENC(A)
		req = append(req, pub.Marshal()...)
		req = wire.AppendBytes(req, k)
	case *ecdsa.PrivateKey:
		d, err := k.Bytes()
		if err != nil {
			return nil, fmt.Errorf("auth: adding key to agent: %w", err)
		}
		// string curve name, string Q, mpint d
		req = append(req, pub.Marshal()...)
		req = wire.AppendMPIntBytes(req, d)
	case *rsa.PrivateKey:
		if len(k.Primes) != 2 || k.D == nil {
			return nil, errors.New("auth: adding key to agent: only two-prime RSA keys are supported")
		}
		p, q := k.Primes[0], k.Primes[1]
		iqmp := new(big.Int).ModInverse(q, p)
		if iqmp == nil {
			return nil, errors.New("auth: adding key to agent: invalid RSA primes")
		}
		// mpint n, mpint e, mpint d, mpint iqmp, mpint p, mpint q
		req = wire.AppendString(req, kex.KeyAlgoRSA)
		req = wire.AppendMPInt(req, k.N)
		req = wire.AppendMPInt(req, big.NewInt(int64(k.E)))
		req = wire.AppendMPInt(req, k.D)
		req = wire.AppendMPInt(req, iqmp)
		req = wire.AppendMPInt(req, p)
		req = wire.AppendMPInt(req, q)
	default:
		return nil, fmt.Errorf("auth: adding key to agent: unsupported private key type %T", key)
	}
	return wire.AppendString(req, comment), nil
}
