// Package agenttest is an ssh-agent for tests: it speaks the agent
// protocol (draft-miller-ssh-agent, now RFC 9987: REQUEST_IDENTITIES and
// SIGN_REQUEST) on a Unix socket or any connection, and signs with the
// kex.Signers it is given. Among them, SecurityKey is a software FIDO
// authenticator: an sk-ssh-ed25519@openssh.com or
// sk-ecdsa-sha2-nistp256@openssh.com key that signs as PROTOCOL.u2f says
// a security key does ("SSH U2F signatures"), asserting the flags it is
// told and counting its signatures. With kex.NewCertSigner it holds
// certificates of such keys too. It lets the client's security key and
// certificate support be tested without hardware, as OpenSSH's own agent
// would serve them.
package agenttest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
)

// Agent protocol numbers (RFC 9987).
const (
	msgFailure           = 5
	msgRequestIdentities = 11
	msgIdentitiesAnswer  = 12
	msgSignRequest       = 13
	msgSignResponse      = 14
	flagRSASHA256        = 2
	flagRSASHA512        = 4
	maxMessage           = 256 << 10
	defaultApplication   = "ssh:"
)

// SecurityKey is a software security key. Its flags are the
// authenticator data flags its next signatures assert
// (kex.SKFlagUserPresent, kex.SKFlagUserVerified: SetFlags); its counter
// is incremented before each signature (Signatures).
type SecurityKey struct {
	typ string
	app string
	ed  ed25519.PrivateKey
	ec  *ecdsa.PrivateKey
	pub kex.PublicKey

	mu      sync.Mutex
	flags   byte
	counter uint32
}

// NewSecurityKey makes a security key of type typ
// (kex.KeyAlgoSKED25519 or kex.KeyAlgoSKECDSA256) for the FIDO
// application "ssh:", asserting user presence.
func NewSecurityKey(typ string) (*SecurityKey, error) {
	k := &SecurityKey{typ: typ, app: defaultApplication, flags: kex.SKFlagUserPresent}
	var blob []byte
	switch typ {
	case kex.KeyAlgoSKED25519:
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		k.ed = priv
		blob = wire.AppendBytes(wire.AppendString(nil, typ), pub)
	case kex.KeyAlgoSKECDSA256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		k.ec = priv
		pk, err := priv.PublicKey.ECDH()
		if err != nil {
			return nil, err
		}
		blob = wire.AppendString(wire.AppendString(nil, typ), "nistp256")
		blob = wire.AppendBytes(blob, pk.Bytes())
	default:
		return nil, fmt.Errorf("agenttest: %s is not a security key type", typ)
	}
	pub, err := kex.ParsePublicKey(wire.AppendString(blob, k.app))
	if err != nil {
		return nil, err
	}
	k.pub = pub
	return k, nil
}

// SetFlags sets the flags the next signatures assert.
func (k *SecurityKey) SetFlags(f byte) {
	k.mu.Lock()
	k.flags = f
	k.mu.Unlock()
}

// Signatures is how many signatures the key has made (its counter).
func (k *SecurityKey) Signatures() uint32 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.counter
}

func (k *SecurityKey) PublicKey() kex.PublicKey { return k.pub }
func (k *SecurityKey) Algorithms() []string     { return []string{k.typ} }

// Sign signs as PROTOCOL.u2f's "SSH U2F signatures": the authenticator
// signs SHA256(application) || flags || counter || SHA256(data) (Ed25519
// over it, or ECDSA P-256 over its SHA-256), and the SSH signature is
// string algorithm || string signature || byte flags || uint32 counter.
func (k *SecurityKey) Sign(_ io.Reader, data []byte, algo string) ([]byte, error) {
	if algo != "" && algo != k.typ {
		return nil, fmt.Errorf("agenttest: cannot make a %s signature with a %s key", algo, k.typ)
	}
	k.mu.Lock()
	k.counter++
	flags, counter := k.flags, k.counter
	k.mu.Unlock()
	ah, mh := sha256.Sum256([]byte(k.app)), sha256.Sum256(data)
	signed := append(append(ah[:], flags), binary.BigEndian.AppendUint32(nil, counter)...)
	signed = append(signed, mh[:]...)
	var raw []byte
	if k.ed != nil {
		raw = ed25519.Sign(k.ed, signed)
	} else {
		d := sha256.Sum256(signed)
		r, s, err := ecdsa.Sign(rand.Reader, k.ec, d[:])
		if err != nil {
			return nil, err
		}
		raw = wire.AppendMPInt(wire.AppendMPInt(nil, r), s)
	}
	sig := wire.AppendBytes(wire.AppendString(nil, k.typ), raw)
	return binary.BigEndian.AppendUint32(append(sig, flags), counter), nil
}

// Agent is a fake ssh-agent serving the identities added to it.
type Agent struct {
	mu   sync.Mutex
	ids  []identity
	sign []SignRequest
	wg   sync.WaitGroup
}

type identity struct {
	s       kex.Signer
	blob    []byte
	comment string
}

// SignRequest is a SIGN_REQUEST the agent answered (or refused).
type SignRequest struct {
	Key   kex.PublicKey
	Flags uint32
	// Algorithm is the algorithm the agent signed with ("" if refused).
	Algorithm string
}

// New returns an agent with no identities.
func New() *Agent { return &Agent{} }

// Add makes s an identity of the agent: a plain signer, a SecurityKey, or
// a certificate's signer (kex.NewCertSigner), listed under its public
// key (the certificate for the last).
func (a *Agent) Add(s kex.Signer, comment string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ids = append(a.ids, identity{s: s, blob: s.PublicKey().Marshal(), comment: comment})
}

// Requests returns the SIGN_REQUESTs seen so far.
func (a *Agent) Requests() []SignRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]SignRequest(nil), a.sign...)
}

// Listen serves the agent on a new Unix socket in dir until close is
// called; it returns the socket's path (for SSH_AUTH_SOCK or
// IdentityAgent).
func (a *Agent) Listen(dir string) (path string, close func(), err error) {
	path = filepath.Join(dir, "agent.sock")
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return "", nil, err
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				a.Serve(c)
			}()
		}
	}()
	var once sync.Once
	return path, func() { once.Do(func() { l.Close() }) }, nil
}

// Serve answers requests on c until it is closed or sends something that
// is not a well-framed message; it closes c. Requests other than
// REQUEST_IDENTITIES and SIGN_REQUEST get SSH_AGENT_FAILURE.
func (a *Agent) Serve(c io.ReadWriteCloser) {
	defer c.Close()
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n == 0 || n > maxMessage {
			return
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		reply := a.handle(msg)
		if _, err := c.Write(wire.AppendBytes(nil, reply)); err != nil {
			return
		}
	}
}

func (a *Agent) handle(msg []byte) []byte {
	fail := []byte{msgFailure}
	switch msg[0] {
	case msgRequestIdentities:
		a.mu.Lock()
		defer a.mu.Unlock()
		b := wire.AppendUint32([]byte{msgIdentitiesAnswer}, uint32(len(a.ids)))
		for _, id := range a.ids {
			b = wire.AppendBytes(b, id.blob)
			b = wire.AppendString(b, id.comment)
		}
		return b
	case msgSignRequest:
		r := wire.NewReader(msg[1:])
		blob := r.Bytes()
		data := r.Bytes()
		flags := r.Uint32()
		if r.Done() != nil {
			return fail
		}
		sig, algo, err := a.signWith(blob, data, flags)
		key, _ := kex.ParsePublicKey(blob)
		a.mu.Lock()
		a.sign = append(a.sign, SignRequest{Key: key, Flags: flags, Algorithm: algo})
		a.mu.Unlock()
		if err != nil {
			return fail
		}
		return wire.AppendBytes([]byte{msgSignResponse}, sig)
	}
	return fail
}

// signWith signs with the identity whose public key is blob: RSA keys
// (plain or certified) with SHA-256 or SHA-512 as the flags ask, others
// with their one algorithm.
func (a *Agent) signWith(blob, data []byte, flags uint32) ([]byte, string, error) {
	a.mu.Lock()
	var s kex.Signer
	for _, id := range a.ids {
		if bytes.Equal(id.blob, blob) {
			s = id.s
		}
	}
	a.mu.Unlock()
	if s == nil {
		return nil, "", errors.New("no such identity")
	}
	algo := s.Algorithms()[0]
	switch kex.UnderlyingSignatureAlgorithm(algo) {
	case kex.SigAlgoRSASHA512, kex.SigAlgoRSASHA256:
		want := kex.SigAlgoRSASHA512
		if flags&flagRSASHA256 != 0 && flags&flagRSASHA512 == 0 {
			want = kex.SigAlgoRSASHA256
		}
		if kex.IsCertAlgorithm(algo) {
			want = kex.CertSignatureAlgorithm(want)
		}
		algo = want
	}
	sig, err := s.Sign(rand.Reader, data, algo)
	return sig, algo, err
}

// Close waits for the connections the agent serves to end (their peers
// must close them; call the Listen's close first).
func (a *Agent) Close() { a.wg.Wait() }
