package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
)

// Permissions is what a successful authentication grants. The callbacks
// of ServerConfig fill it in.
type Permissions struct {
	// Extensions carry application data from the callback to the caller.
	Extensions map[string]string
	// ForceCommand, if set, replaces any command the client asks for.
	ForceCommand string
	// KeyComment is the comment of the authorized key that was used.
	KeyComment string
	// KeyOptions, if set, are the options of the authorized_keys line
	// that admitted the key (restrict, no-port-forwarding, no-pty,
	// permitopen and the others, evaluated in order): what a server
	// that offers ptys, forwarding or agents must check before it
	// grants them. Nil when no such line was involved.
	KeyOptions *KeyPermissions
	// Identity names who authenticated, for limits and ownership that
	// must not key on a name the client chose: for a public key its
	// fingerprint as ssh-keygen -l prints it ("SHA256:..."), for a
	// password, keyboard-interactive or none login "user:" and the
	// user name. Serve fills it in when the callback leaves it empty.
	Identity string
	// Recheck, if set, checks again, later, that what authorized this
	// login still does, for a client now at remote: a session resumed
	// on a new connection calls it, and is refused if it returns an
	// error (for a key from an authorized_keys file: the file still
	// lists the key, it has not expired, and its from= admits remote;
	// for a certificate also: it has not expired and its source-address
	// admits remote). Serve adds ServerConfig.RevokedKeys to it. Nil
	// means there is nothing to re-check.
	Recheck func(remote net.Addr) error
	// Certificate is the user certificate that authenticated, nil for a
	// plain key or another method.
	Certificate *kex.Certificate
}

// ConnMetadata describes the connection a callback decides for.
type ConnMetadata struct {
	// User is the user name the client asked for.
	User string
	// RemoteAddr and LocalAddr are the connection's addresses, nil if
	// the Transport given to Serve has no RemoteAddr() or LocalAddr()
	// method (transport.Conn has both).
	RemoteAddr net.Addr
	LocalAddr  net.Addr
}

// ServerConfig configures Serve. A method is offered when its callback is
// set. Callbacks return a nil error to accept; their errors are never sent
// to the client, which only sees USERAUTH_FAILURE.
type ServerConfig struct {
	// PublicKeyCallback decides whether key may log in as user. It is
	// called only for keys with an acceptable type, and for signed
	// requests only after the signature verified. Its result is cached
	// per key for the connection, so a query followed by the signed
	// request calls it once.
	PublicKeyCallback func(user string, key kex.PublicKey) (*Permissions, error)
	// PublicKeyConnCallback is PublicKeyCallback with the connection's
	// metadata, such as the client's address (for authorized_keys
	// from=). Set one of the two, not both.
	PublicKeyConnCallback func(c ConnMetadata, key kex.PublicKey) (*Permissions, error)
	// PasswordCallback checks a password. The slice is zeroed after the
	// callback returns and must not be retained.
	PasswordCallback func(user string, password []byte) (*Permissions, error)
	// KeyboardInteractiveCallback runs a challenge-response exchange
	// (RFC 4256). challenge sends one INFO_REQUEST and returns the
	// answers; it may only be called from the callback's goroutine while
	// the callback runs, and it fails if the client gave up the exchange.
	KeyboardInteractiveCallback func(user string, challenge func(name, instruction string, prompts []string, echo []bool) ([]string, error)) (*Permissions, error)
	// Banner, if set, is sent once before the first reply.
	Banner string
	// MaxAuthTries is the number of failed attempts after which the
	// client is disconnected; 0 means 6.
	MaxAuthTries int
	// AllowedSigAlgs are the publickey signature algorithms accepted
	// (sshd's PubkeyAcceptedAlgorithms), compared exactly: the
	// -cert-v01@openssh.com names admit certificates, the sk- names
	// security keys. Nil means every algorithm package kex supports
	// (never ssh-rsa SHA-1).
	AllowedSigAlgs []string
	// NoneAllowed lets method "none" log in without credentials.
	NoneAllowed bool

	// TrustedUserCAs, if set, admits user certificates signed by its CA
	// keys (sshd's TrustedUserCAKeys and AuthorizedPrincipalsFile). A
	// certificate it refuses is still offered to the public key
	// callback, which may admit it through a cert-authority line of
	// authorized_keys (AuthorizedKeysFile does), as sshd tries
	// authorized_keys after TrustedUserCAKeys.
	TrustedUserCAs *TrustedUserCAs
	// CASignatureAlgorithms are the algorithms a CA's signature on an
	// accepted user certificate may use (sshd's CASignatureAlgorithms);
	// nil means kex.DefaultCASignatureAlgorithms. Serve checks every
	// certificate against them before any callback sees it.
	CASignatureAlgorithms []string
	// RevokedKeys, if set, returns an error for a revoked key (sshd's
	// RevokedKeys; RevokedKeysFile reads a KRL or a key list). It is
	// asked about every public key and certificate before the callbacks,
	// and again by the Permissions' Recheck.
	RevokedKeys func(key kex.PublicKey) error
}

// defaultSigAlgs are the publickey signature algorithms accepted by
// default: sshd's default PubkeyAcceptedAlgorithms.
var defaultSigAlgs = []string{
	kex.CertAlgoED25519, kex.CertAlgoECDSA256, kex.CertAlgoECDSA384, kex.CertAlgoECDSA521,
	kex.CertAlgoSKED25519, kex.CertAlgoSKECDSA256, kex.CertSigAlgoWebAuthnSKECDSA256,
	kex.CertSigAlgoRSASHA512, kex.CertSigAlgoRSASHA256,
	kex.KeyAlgoED25519,
	kex.KeyAlgoECDSA256, kex.KeyAlgoECDSA384, kex.KeyAlgoECDSA521,
	kex.KeyAlgoSKED25519, kex.KeyAlgoSKECDSA256, kex.SigAlgoWebAuthnSKECDSA256,
	kex.SigAlgoRSASHA512, kex.SigAlgoRSASHA256,
}

// DefaultPublicKeyAlgorithms are the publickey signature algorithms that
// clients use and servers accept by default, in ssh's order of preference:
// OpenSSH's default PubkeyAcceptedAlgorithms, every one package kex
// supports (never ssh-rsa, SHA-1).
func DefaultPublicKeyAlgorithms() []string { return slices.Clone(defaultSigAlgs) }

// maxPKCache bounds the per-connection cache of PublicKeyCallback results.
const maxPKCache = 64

// status is how the server handled one USERAUTH_REQUEST.
type status int

const (
	stFailure   status = iota // send FAILURE; counts as a failed attempt
	stNoCount                 // send FAILURE; does not count ("none")
	stReplied                 // a reply (PK_OK) was sent already; no FAILURE
	stAbandoned               // the client started over; counts, no FAILURE
	stSuccess
)

type pkResult struct {
	perms *Permissions
	err   error
}

type server struct {
	ctx     context.Context
	t       Transport
	cfg     *ServerConfig
	methods []string
	sigAlgs []string
	pkCB    func(c ConnMetadata, key kex.PublicKey) (*Permissions, error)
	meta    ConnMetadata // User is set once the first request names it

	notes      []string // why the last attempts failed (failed)
	started    bool
	user       string
	service    string
	bannerSent bool
	pkCache    map[string]pkResult
	keyID      string // fingerprint of the key that authenticated, if one did

	// pending is a USERAUTH_REQUEST read while a keyboard-interactive
	// exchange was under way; it is handled next.
	pending []byte
	// fatal is an error the keyboard-interactive challenge ran into
	// (transport, context or protocol); it ends Serve.
	fatal error
}

// tooManyFailures is what OpenSSH sends when MaxAuthTries is reached.
func tooManyFailures() *DisconnectError {
	return &DisconnectError{Reason: wire.DisconnectProtocolError, Message: "Too many authentication failures"}
}

// Serve runs the server side of RFC 4252 on t: it accepts the
// ssh-userauth service request and answers USERAUTH_REQUESTs until one
// succeeds, returning the user name and the Permissions the callback
// granted. A *DisconnectError result asks the caller to send DISCONNECT
// with its reason and message; on any error the caller closes t. When ctx
// ends (LoginGraceTime) Serve returns an error wrapping ctx.Err().
//
// If t has RemoteAddr() and LocalAddr() methods (transport.Conn has),
// PublicKeyConnCallback sees them in its ConnMetadata.
func Serve(ctx context.Context, t Transport, cfg *ServerConfig) (user string, perms *Permissions, err error) {
	if cfg == nil {
		return "", nil, errors.New("auth: nil ServerConfig")
	}
	s := &server{ctx: ctx, t: t, cfg: cfg, pkCache: make(map[string]pkResult)}
	if a, ok := t.(interface{ RemoteAddr() net.Addr }); ok {
		s.meta.RemoteAddr = a.RemoteAddr()
	}
	if a, ok := t.(interface{ LocalAddr() net.Addr }); ok {
		s.meta.LocalAddr = a.LocalAddr()
	}
	switch {
	case cfg.PublicKeyCallback != nil && cfg.PublicKeyConnCallback != nil:
		return "", nil, errors.New("auth: ServerConfig sets both PublicKeyCallback and PublicKeyConnCallback")
	case cfg.PublicKeyConnCallback != nil:
		s.pkCB = cfg.PublicKeyConnCallback
	case cfg.PublicKeyCallback != nil:
		s.pkCB = func(c ConnMetadata, key kex.PublicKey) (*Permissions, error) {
			return cfg.PublicKeyCallback(c.User, key)
		}
	}
	if s.pkCB != nil || cfg.TrustedUserCAs != nil {
		s.methods = append(s.methods, methodPubkey)
	}
	if cfg.PasswordCallback != nil {
		s.methods = append(s.methods, methodPassword)
	}
	if cfg.KeyboardInteractiveCallback != nil {
		s.methods = append(s.methods, methodKbdInt)
	}
	s.sigAlgs = cfg.AllowedSigAlgs
	if s.sigAlgs == nil {
		s.sigAlgs = defaultSigAlgs
	}
	maxTries := cfg.MaxAuthTries
	if maxTries <= 0 {
		maxTries = defaultMaxAuthTries
	}
	// Requests that do not count as failures (none, accepted publickey
	// queries) are bounded too.
	maxRequests := 4*maxTries + 16

	if err := s.acceptService(); err != nil {
		return "", nil, err
	}
	failures, requests := 0, 0
	for {
		p, err := s.next()
		if err != nil {
			return "", nil, s.unauthenticated(err)
		}
		if p[0] != wire.MsgUserauthRequest {
			if p[0] >= wire.MsgGlobalRequest {
				return "", nil, protocolError("%s before authentication", msgName(p[0]))
			}
			return "", nil, protocolError("unexpected %s during user authentication", msgName(p[0]))
		}
		requests++
		if requests > maxRequests {
			return "", nil, tooManyFailures()
		}
		req, err := parseUserauthRequest(p)
		if err != nil {
			return "", nil, protocolError("malformed USERAUTH_REQUEST")
		}
		if !s.started {
			s.started, s.user, s.service = true, req.User, req.Service
			s.meta.User = req.User
		} else if req.User != s.user || req.Service != s.service {
			// As OpenSSH: a client may not probe several accounts on one
			// connection.
			return "", nil, protocolError("change of username or service not allowed")
		}
		if req.Service != serviceConnection {
			return "", nil, &DisconnectError{Reason: wire.DisconnectServiceNotAvailable, Message: "service not available"}
		}
		if err := s.sendBanner(); err != nil {
			return "", nil, err
		}

		st, perms, err := s.handle(req)
		if err != nil {
			return "", nil, err
		}
		switch st {
		case stSuccess:
			// A copy: the callback may hand out one Permissions to
			// every login.
			p := Permissions{}
			if perms != nil {
				p = *perms
			}
			if p.Identity == "" {
				p.Identity = "user:" + s.user
				if s.keyID != "" {
					p.Identity = s.keyID
				}
			}
			perms = &p
			if err := s.write(marshalUserauthSuccess()); err != nil {
				return "", nil, err
			}
			if a, ok := t.(interface{ SetAuthenticated() }); ok {
				a.SetAuthenticated()
			}
			return s.user, perms, nil
		case stReplied:
			continue
		case stFailure, stAbandoned:
			failures++
			if failures >= maxTries {
				return "", nil, s.unauthenticated(tooManyFailures())
			}
			if st == stAbandoned {
				continue
			}
		}
		if err := s.write(marshalUserauthFailure(&userauthFailure{Methods: s.methods})); err != nil {
			return "", nil, err
		}
	}
}

func (s *server) acceptService() error {
	p, err := s.read()
	if err != nil {
		return err
	}
	if p[0] != wire.MsgServiceRequest {
		if p[0] >= wire.MsgGlobalRequest {
			return protocolError("%s before authentication", msgName(p[0]))
		}
		return protocolError("expected SERVICE_REQUEST, got %s", msgName(p[0]))
	}
	name, err := parseServiceRequest(p)
	if err != nil {
		return protocolError("malformed SERVICE_REQUEST")
	}
	if name != serviceUserauth {
		return &DisconnectError{Reason: wire.DisconnectServiceNotAvailable, Message: "service not available"}
	}
	return s.write(marshalServiceAccept(serviceUserauth))
}

func (s *server) sendBanner() error {
	if s.bannerSent || s.cfg.Banner == "" {
		return nil
	}
	s.bannerSent = true
	msg := s.cfg.Banner
	if len(msg) > maxBannerLen {
		msg = strings.ToValidUTF8(msg[:maxBannerLen], "")
	}
	return s.write(marshalUserauthBanner(msg))
}

func (s *server) write(p []byte) error {
	if err := s.t.WritePacket(p); err != nil {
		return fmt.Errorf("auth: writing: %w", err)
	}
	return nil
}

func (s *server) read() ([]byte, error) {
	p, err := readPacket(s.ctx, s.t)
	if err != nil {
		var de *DisconnectError
		if errors.As(err, &de) {
			return nil, err
		}
		return nil, fmt.Errorf("auth: %w", err)
	}
	if p[0] == wire.MsgDisconnect {
		return nil, disconnected(p)
	}
	return p, nil
}

// next returns the pending request, if any, or reads the next message.
func (s *server) next() ([]byte, error) {
	if p := s.pending; p != nil {
		s.pending = nil
		return p, nil
	}
	return s.read()
}

// handle answers one request. A non-nil error ends Serve.
func (s *server) handle(req *userauthRequest) (status, *Permissions, error) {
	switch req.Method {
	case methodNone:
		if s.cfg.NoneAllowed {
			return stSuccess, &Permissions{}, nil
		}
		return stNoCount, nil, nil
	case methodPubkey:
		if s.pkCB != nil || s.cfg.TrustedUserCAs != nil {
			return s.publicKey(req)
		}
	case methodPassword:
		if s.cfg.PasswordCallback != nil {
			return s.password(req)
		}
	case methodKbdInt:
		if s.cfg.KeyboardInteractiveCallback != nil {
			return s.keyboardInteractive(req)
		}
	}
	return s.failed("method %.40q not offered", req.Method)
}

// maxFailureNotes bounds the reasons kept for the error Serve returns.
const maxFailureNotes = 4

// failed notes why an attempt failed, for the error Serve returns if
// the client never authenticates (as sshd logs each failure: a server's
// operator must be able to tell a refused algorithm from a key not
// authorized), and returns stFailure. Only the last few are kept.
func (s *server) failed(format string, args ...any) (status, *Permissions, error) {
	if len(s.notes) == maxFailureNotes {
		s.notes = s.notes[1:]
	}
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
	return stFailure, nil, nil
}

// unauthenticated adds to err, which ends Serve before any success, who
// was trying and why their attempts failed; a connection the client
// closed says so in words rather than as a read error.
func (s *server) unauthenticated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("auth: connection closed by the client before it authenticated: %w", err)
	}
	if !s.started {
		return err
	}
	if len(s.notes) == 0 {
		return fmt.Errorf("%w (user %q)", err, s.user)
	}
	return fmt.Errorf("%w (user %q; %s)", err, s.user, strings.Join(s.notes, "; "))
}

// publicKeyAllowed decides a key once per connection: RevokedKeys, then
// for a certificate TrustedUserCAs, then the public key callback.
func (s *server) publicKeyAllowed(blob []byte, key kex.PublicKey) (*Permissions, error) {
	if r, ok := s.pkCache[string(blob)]; ok {
		return r.perms, r.err
	}
	perms, err := s.decideKey(key)
	if len(s.pkCache) < maxPKCache {
		s.pkCache[string(blob)] = pkResult{perms, err}
	}
	return perms, err
}

func (s *server) decideKey(key kex.PublicKey) (*Permissions, error) {
	revoked := s.cfg.RevokedKeys
	if revoked != nil {
		if err := revoked(key); err != nil {
			return nil, err
		}
	}
	var perms *Permissions
	var err error
	cert, _ := key.(*kex.Certificate)
	switch {
	case cert != nil && s.cfg.TrustedUserCAs != nil:
		perms, err = s.cfg.TrustedUserCAs.Authorize(s.meta, cert)
		if err != nil && s.pkCB != nil {
			p2, err2 := s.pkCB(s.meta, key)
			if err2 == nil {
				perms, err = p2, nil
			} else {
				err = fmt.Errorf("%v; %v", err, err2)
			}
		}
	case s.pkCB != nil:
		perms, err = s.pkCB(s.meta, key)
	default:
		err = errors.New("only certificates of trusted CAs are accepted")
	}
	if err != nil || revoked == nil {
		return perms, err
	}
	// A copy whose Recheck asks RevokedKeys again: a key revoked while
	// its session was detached does not resume it.
	p := Permissions{}
	if perms != nil {
		p = *perms
	}
	inner := p.Recheck
	p.Recheck = func(remote net.Addr) error {
		if err := revoked(key); err != nil {
			return err
		}
		if inner != nil {
			return inner(remote)
		}
		return nil
	}
	return &p, nil
}

// keyName names a key for failure notes: its fingerprint, and for a
// certificate its ID, serial and CA.
func keyName(key kex.PublicKey) string {
	if c, ok := key.(*kex.Certificate); ok {
		ca := "?"
		if c.SignatureKey != nil {
			ca = c.SignatureKey.Type() + " " + kex.FingerprintSHA256(c.SignatureKey)
		}
		return fmt.Sprintf("%s certificate ID %.60q serial %d CA %s", kex.FingerprintSHA256(c.Key), c.KeyID, c.Serial, ca)
	}
	return kex.FingerprintSHA256(key)
}

func (s *server) publicKey(req *userauthRequest) (status, *Permissions, error) {
	key, err := kex.ParsePublicKey(req.PubKey)
	if err != nil {
		return s.failed("publickey %.40q: unsupported or malformed key", req.Algorithm)
	}
	if !slices.Contains(s.sigAlgs, req.Algorithm) {
		return s.failed("publickey: signature algorithm %.40q not accepted (accepted: %s)", req.Algorithm, strings.Join(s.sigAlgs, ","))
	}
	if kex.KeyTypeForSignatureAlgorithm(req.Algorithm) != key.Type() {
		return s.failed("publickey: algorithm %.40q does not fit a %s key", req.Algorithm, key.Type())
	}
	if cert, ok := key.(*kex.Certificate); ok {
		// Whatever callback decides, only a sound user certificate of
		// an accepted CA algorithm goes on: its signature verifies, its
		// window holds, it names principals and no unknown critical
		// option. Which CA is trusted, and for which principal, the
		// callbacks decide.
		if err := kex.CheckCertificate(cert, kex.CertCheck{Type: kex.UserCert, CASignatureAlgorithms: s.cfg.CASignatureAlgorithms}); err != nil {
			return s.failed("publickey %s: %v", req.Algorithm, err)
		}
	}
	if !req.HasSig {
		// A query (RFC 4252 section 7): say whether the key would do.
		// It never authenticates.
		if _, err := s.publicKeyAllowed(req.PubKey, key); err != nil {
			return s.failed("publickey %s %s: %v", req.Algorithm, keyName(key), err)
		}
		if err := s.write(marshalUserauthPKOK(req.Algorithm, req.PubKey)); err != nil {
			return 0, nil, err
		}
		return stReplied, nil, nil
	}
	// The signature names the plain algorithm of a certificate's
	// (rsa-sha2-512 under rsa-sha2-512-cert-v01@openssh.com).
	sigAlgo, err := parseSignatureAlgorithm(req.Signature)
	if err != nil || sigAlgo != kex.UnderlyingSignatureAlgorithm(req.Algorithm) {
		return s.failed("publickey %s: signature of another algorithm (%.40q)", req.Algorithm, sigAlgo)
	}
	data := marshalPublickeySignedData(s.t.SessionID(), req.User, req.Service, req.Algorithm, req.PubKey)
	sk, err := kex.VerifyDetails(key, data, req.Signature)
	if err != nil {
		return s.failed("publickey %s %s: bad signature", req.Algorithm, keyName(key))
	}
	perms, err := s.publicKeyAllowed(req.PubKey, key)
	if err != nil {
		return s.failed("publickey %s %s: %v", req.Algorithm, keyName(key), err)
	}
	if sk != nil {
		// A security key's flags, judged as sshd judges them: user
		// presence unless no-touch-required (authorized_keys, and a
		// certificate's extension), user verification if
		// verify-required.
		var noTouch, verify bool
		if perms != nil && perms.KeyOptions != nil {
			noTouch, verify = perms.KeyOptions.NoTouchRequired, perms.KeyOptions.VerifyRequired
		}
		if !noTouch && sk.Flags&kex.SKFlagUserPresent == 0 {
			return s.failed("publickey %s %s: user presence (authenticator touch) required but not asserted (flags %#02x, counter %d)", req.Algorithm, keyName(key), sk.Flags, sk.Counter)
		}
		if verify && sk.Flags&kex.SKFlagUserVerified == 0 {
			return s.failed("publickey %s %s: user verification (verify-required) not asserted (flags %#02x, counter %d)", req.Algorithm, keyName(key), sk.Flags, sk.Counter)
		}
	}
	if c, ok := key.(*kex.Certificate); ok {
		key = c.Key // the identity is the certified key, whichever certificate it holds now
	}
	s.keyID = kex.FingerprintSHA256(key)
	return stSuccess, perms, nil
}

func (s *server) password(req *userauthRequest) (status, *Permissions, error) {
	defer clear(req.Password)
	defer clear(req.NewPassword)
	if req.ChangePassword || len(req.Password) > maxPasswordLen {
		// Password changes are not supported.
		return stFailure, nil, nil
	}
	pw := bytes.Clone(req.Password)
	if pw == nil {
		pw = []byte{}
	}
	defer clear(pw)
	perms, err := s.cfg.PasswordCallback(s.user, pw)
	if err != nil {
		return s.failed("password: %v", err)
	}
	return stSuccess, perms, nil
}

var errKbdIntAbandoned = errors.New("auth: client abandoned keyboard-interactive")

func (s *server) keyboardInteractive(req *userauthRequest) (status, *Permissions, error) {
	rounds := 0
	finished := false
	challenge := func(name, instruction string, prompts []string, echo []bool) ([]string, error) {
		switch {
		case finished:
			return nil, errors.New("auth: keyboard-interactive challenge used after its callback returned")
		case s.fatal != nil:
			return nil, s.fatal
		case s.pending != nil:
			return nil, errKbdIntAbandoned
		}
		rounds++
		if rounds > maxKbdIntRounds {
			return nil, fmt.Errorf("auth: more than %d keyboard-interactive rounds", maxKbdIntRounds)
		}
		if len(prompts) > maxKbdIntPrompts {
			return nil, fmt.Errorf("auth: %d keyboard-interactive prompts, at most %d", len(prompts), maxKbdIntPrompts)
		}
		if len(name) > maxKbdIntFieldLen || len(instruction) > maxKbdIntFieldLen {
			return nil, errors.New("auth: keyboard-interactive name or instruction too long")
		}
		for _, p := range prompts {
			if len(p) > maxKbdIntFieldLen {
				return nil, errors.New("auth: keyboard-interactive prompt too long")
			}
		}
		if err := s.write(marshalUserauthInfoRequest(&userauthInfoRequest{
			Name: name, Instruction: instruction, Prompts: prompts, Echo: echo,
		})); err != nil {
			s.fatal = err
			return nil, err
		}
		p, err := s.read()
		if err != nil {
			s.fatal = err
			return nil, err
		}
		switch p[0] {
		case msgUserauthInfoResponse:
			answers, err := parseUserauthInfoResponse(p)
			if err != nil {
				s.fatal = protocolError("malformed USERAUTH_INFO_RESPONSE")
				return nil, s.fatal
			}
			clear(p)
			if len(answers) != len(prompts) {
				s.fatal = protocolError("%d keyboard-interactive answers to %d prompts", len(answers), len(prompts))
				return nil, s.fatal
			}
			return answers, nil
		case wire.MsgUserauthRequest:
			// The client gave up on this exchange and starts another
			// attempt (RFC 4256 section 3.4 lets it).
			s.pending = bytes.Clone(p)
			return nil, errKbdIntAbandoned
		}
		if p[0] >= wire.MsgGlobalRequest {
			s.fatal = protocolError("%s before authentication", msgName(p[0]))
		} else {
			s.fatal = protocolError("unexpected %s during keyboard-interactive", msgName(p[0]))
		}
		return nil, s.fatal
	}
	perms, err := s.cfg.KeyboardInteractiveCallback(s.user, challenge)
	finished = true
	switch {
	case s.fatal != nil:
		return 0, nil, s.fatal
	case s.pending != nil:
		return stAbandoned, nil, nil
	case err != nil:
		return s.failed("keyboard-interactive: %v", err)
	}
	return stSuccess, perms, nil
}
