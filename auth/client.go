package auth

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
)

// Method is one way for a client to authenticate. Build it with
// PublicKeys, PublicKeySigners, PublicKeysCallback, Password,
// PasswordCallback or KeyboardInteractive.
type Method interface {
	// method is the RFC 4252 method name.
	method() string
	// attempt runs the method once: it sends requests and reads their
	// replies until the server says SUCCESS or FAILURE for the last one.
	attempt(c *client) (outcome, error)
}

// outcome is how one method attempt ended.
type outcome int

const (
	outFailure outcome = iota // the server refused; c.allowed is current
	outSuccess                // USERAUTH_SUCCESS
	outPartial                // partial success: more methods are needed
	outSkipped                // nothing was sent (no usable credential)
)

// maxPartialSuccesses bounds how often a server may answer "partial
// success" before the client gives up.
const maxPartialSuccesses = 8

// ClientConfig configures Authenticate.
type ClientConfig struct {
	// User is the user name to log in as.
	User string
	// Methods are tried in order, each only if the server lists it as a
	// method that can continue.
	Methods []Method
	// Banner, if set, receives USERAUTH_BANNER messages (already made
	// valid UTF-8 but not stripped of terminal controls).
	Banner func(msg string)
	// ServerSigAlgs returns the server's server-sig-algs extension (RFC
	// 8308), nil if it sent none. It is called only after the server's
	// first reply, by which time EXT_INFO has been processed.
	ServerSigAlgs func() []string
	// PublicKeyAlgorithms, if not nil, are the signature algorithms
	// publickey may use, in order of preference (ssh's
	// PubkeyAcceptedAlgorithms; DefaultPublicKeyAlgorithms lists them
	// all). A key none of whose algorithms is listed is not offered, and
	// an RSA key signs with the first listed of rsa-sha2-512 and
	// rsa-sha2-256 that the server accepts.
	PublicKeyAlgorithms []string
}

// NoMethodError is returned by Authenticate when the server refused every
// method the client could offer.
type NoMethodError struct {
	User    string
	Allowed []string // methods the server last said can continue
	Tried   []string // what was tried, such as "publickey with 2 keys"
	Notes   []string // why credentials were skipped or failed locally
}

func (e *NoMethodError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "auth: no supported method succeeded for user %q (server allows ", e.User)
	if len(e.Allowed) == 0 {
		b.WriteString("no methods")
	} else {
		b.WriteString(strings.Join(e.Allowed, ","))
	}
	b.WriteString("; ")
	if len(e.Tried) == 0 {
		b.WriteString("no configured method was usable")
	} else {
		b.WriteString("tried ")
		b.WriteString(strings.Join(e.Tried, ", "))
	}
	b.WriteString(")")
	if len(e.Notes) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(e.Notes, "; "))
	}
	return b.String()
}

// client is the state of one Authenticate call.
type client struct {
	ctx     context.Context
	t       Transport
	cfg     *ClientConfig
	banners int
	allowed []string
	tried   []string
	notes   []string
	// pkDone holds public key blobs that already earned a partial
	// success, so they are not offered again.
	pkDone map[string]bool

	sigAlgs    []string
	sigAlgsSet bool

	// acceptPending says SERVICE_ACCEPT has yet to be read: the first
	// USERAUTH_REQUEST goes out right behind SERVICE_REQUEST, and read
	// takes the accept first.
	acceptPending bool
	// requests counts the USERAUTH_REQUESTs sent.
	requests int
}

// QuietSigner is implemented by signers that can tell whether they sign
// without asking anyone (no passphrase, PIN, touch or confirmation) and
// at the cost of a computation only. Software keys from kex.NewSigner
// do, and certificates of them. For such a key, offered first,
// publickey sends the signed request at once instead of first asking
// whether the server accepts the key (RFC 4252 section 7 allows both):
// a round trip less, and a wrong guess costs a signature. Other signers
// (an agent's, a security key's) are asked about first, as by OpenSSH's
// ssh.
type QuietSigner interface {
	SignsQuietly() bool
}

func signsQuietly(s kex.Signer) bool {
	q, ok := s.(QuietSigner)
	return ok && q.SignsQuietly()
}

// Authenticate runs the client side of RFC 4252 on t: it requests the
// ssh-userauth service, tries "none" and then cfg.Methods in order, and
// returns nil once the server sends USERAUTH_SUCCESS. When ctx ends it
// returns promptly; the caller must then close the transport.
//
// When the first method is publickey, which asks nothing of the user
// before the server answers, it goes first instead of "none", right
// behind the service request without waiting for its answer; for a
// QuietSigner offered first, its signature goes with it. Against a
// server that accepts the key, the whole authentication is then one
// round trip instead of four (issue 17).
func Authenticate(ctx context.Context, t Transport, cfg *ClientConfig) error {
	if cfg == nil {
		return errors.New("auth: nil ClientConfig")
	}
	if len(cfg.User) > maxUserLen || !validName([]byte(cfg.User)) {
		return fmt.Errorf("auth: invalid user name %q", cfg.User)
	}
	c := &client{ctx: ctx, t: t, cfg: cfg, pkDone: make(map[string]bool)}
	if err := c.write(marshalServiceRequest(serviceUserauth)); err != nil {
		return err
	}
	c.acceptPending = true

	done := make([]bool, len(cfg.Methods))
	partials := 0
	known := false // c.allowed is the server's
	if i := slices.IndexFunc(cfg.Methods, func(m Method) bool { return m != nil }); i >= 0 && cfg.Methods[i].method() == methodPubkey {
		// Assumed until the server answers the first request; a
		// FAILURE says what it does accept.
		c.allowed = []string{methodPubkey}
		done[i] = true
		res, err := cfg.Methods[i].attempt(c)
		if err != nil {
			return err
		}
		switch res {
		case outSuccess:
			return c.succeeded()
		case outPartial:
			partials++
			clear(done)
		}
		known = res != outSkipped // else nothing was asked
	}

	if !known {
		// "none": it either logs us in or tells us what the server
		// accepts (RFC 4252 section 5.2).
		if err := c.write(marshalUserauthRequest(&userauthRequest{
			User: cfg.User, Service: serviceConnection, Method: methodNone,
		})); err != nil {
			return err
		}
		p, res, err := c.reply()
		if err != nil {
			return err
		}
		if p != nil {
			return protocolError("unexpected %s in reply to method none", msgName(p[0]))
		}
		if res == outSuccess {
			return c.succeeded()
		}
	}

	for {
		idx := -1
		for i, m := range cfg.Methods {
			if !done[i] && m != nil && slices.Contains(c.allowed, m.method()) {
				idx = i
				break
			}
		}
		if idx < 0 {
			return &NoMethodError{User: cfg.User, Allowed: c.allowed, Tried: c.tried, Notes: c.notes}
		}
		done[idx] = true
		res, err := cfg.Methods[idx].attempt(c)
		if err != nil {
			return err
		}
		switch res {
		case outSuccess:
			return c.succeeded()
		case outPartial:
			partials++
			if partials > maxPartialSuccesses {
				return fmt.Errorf("auth: server asked for more than %d partial successes", maxPartialSuccesses)
			}
			// A new stage: every method may be needed again.
			clear(done)
		}
	}
}

// readAccept reads the SERVICE_ACCEPT of the service request, which
// went out without waiting for it.
func (c *client) readAccept() error {
	c.acceptPending = false
	p, err := c.readMessage()
	if err != nil {
		return err
	}
	if p[0] != wire.MsgServiceAccept {
		return protocolError("expected SERVICE_ACCEPT, got %s", msgName(p[0]))
	}
	name, err := parseServiceAccept(p)
	if err != nil {
		return protocolError("malformed SERVICE_ACCEPT")
	}
	if name != serviceUserauth {
		return protocolError("server accepted service %q, want %q", name, serviceUserauth)
	}
	return nil
}

func (c *client) succeeded() error {
	if a, ok := c.t.(interface{ SetAuthenticated() }); ok {
		a.SetAuthenticated()
	}
	return nil
}

func (c *client) write(p []byte) error {
	if err := c.ctx.Err(); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if err := c.t.WritePacket(p); err != nil {
		return fmt.Errorf("auth: writing: %w", err)
	}
	if p[0] == wire.MsgUserauthRequest {
		c.requests++
	}
	return nil
}

// read returns the next message that is not a banner, passing banners to
// the callback; the SERVICE_ACCEPT still due comes first.
func (c *client) read() ([]byte, error) {
	if c.acceptPending {
		if err := c.readAccept(); err != nil {
			return nil, err
		}
	}
	return c.readMessage()
}

// readMessage is read after the service was accepted.
func (c *client) readMessage() ([]byte, error) {
	for {
		p, err := readPacket(c.ctx, c.t)
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
		if p[0] != wire.MsgUserauthBanner {
			return p, nil
		}
		c.banners++
		if c.banners > maxBanners {
			return nil, protocolError("more than %d banners", maxBanners)
		}
		msg, err := parseUserauthBanner(p)
		if err != nil {
			return nil, protocolError("malformed USERAUTH_BANNER")
		}
		if c.cfg.Banner != nil {
			c.cfg.Banner(msg)
		}
	}
}

// reply reads the server's answer to a USERAUTH_REQUEST. SUCCESS and
// FAILURE are decoded into the outcome (FAILURE updates c.allowed);
// a method specific message (60 to 79) is returned for the method to
// decode, with p non-nil. Anything else is a protocol error.
func (c *client) reply() (p []byte, res outcome, err error) {
	p, err = c.read()
	if err != nil {
		return nil, 0, err
	}
	switch m := p[0]; {
	case m == wire.MsgUserauthSuccess:
		if err := parseUserauthSuccess(p); err != nil {
			return nil, 0, protocolError("malformed USERAUTH_SUCCESS")
		}
		return nil, outSuccess, nil
	case m == wire.MsgUserauthFailure:
		f, err := parseUserauthFailure(p)
		if err != nil {
			return nil, 0, protocolError("malformed USERAUTH_FAILURE")
		}
		c.allowed = f.Methods
		if f.PartialSuccess {
			return nil, outPartial, nil
		}
		return nil, outFailure, nil
	case m >= msgUserauthFirstMethodSpec && m <= msgUserauthLastMethodSpec:
		return p, 0, nil
	}
	return nil, 0, protocolError("unexpected %s during user authentication", msgName(p[0]))
}

// note records why something was skipped, once.
func (c *client) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	if !slices.Contains(c.notes, n) {
		c.notes = append(c.notes, n)
	}
}

// disconnected turns a DISCONNECT that a Transport handed up (ours turns
// it into an error itself) into an error.
func disconnected(p []byte) error {
	d, err := parseDisconnect(p)
	if err != nil {
		return protocolError("malformed DISCONNECT")
	}
	return &peerDisconnected{d}
}

func (c *client) serverSigAlgs() []string {
	if !c.sigAlgsSet {
		c.sigAlgsSet = true
		if c.cfg.ServerSigAlgs != nil {
			c.sigAlgs = c.cfg.ServerSigAlgs()
		}
	}
	return c.sigAlgs
}

// pickAlgorithm chooses the signature algorithm to use with s. For RSA it
// is rsa-sha2-512 or rsa-sha2-256, whichever the server lists first in our
// order (rsa-sha2-512 when it lists nothing), and never ssh-rsa (SHA-1);
// for an RSA certificate it is rsa-sha2-512-cert-v01@openssh.com or
// rsa-sha2-256-cert-v01@openssh.com by the same rule, the server's list
// naming either the certificate algorithm or the plain one (OpenSSH's
// sshd lists only plain names; ssh's key_sig_algorithm matches the plain
// name). Other keys and certificates have one algorithm, their type's.
//
// ClientConfig.PublicKeyAlgorithms, if set, narrows the choice and orders
// the RSA algorithms.
func (c *client) pickAlgorithm(s kex.Signer) (string, error) {
	have := s.Algorithms()
	typ := s.PublicKey().Type()
	accepted := c.cfg.PublicKeyAlgorithms
	allowed := func(a string) bool { return accepted == nil || slices.Contains(accepted, a) }
	var prefs []string
	switch typ {
	case kex.KeyAlgoRSA:
		prefs = []string{kex.SigAlgoRSASHA512, kex.SigAlgoRSASHA256}
	case certAlgoRSA:
		prefs = []string{kex.CertSigAlgoRSASHA512, kex.CertSigAlgoRSASHA256}
	default:
		found := false
		for _, a := range have {
			if kex.KeyTypeForSignatureAlgorithm(a) == typ {
				if allowed(a) {
					return a, nil
				}
				found = true
			}
		}
		if found {
			return "", fmt.Errorf("%s is not among the accepted algorithms (PubkeyAcceptedAlgorithms)", typ)
		}
		return "", fmt.Errorf("no signature algorithm for a %s key", typ)
	}
	if accepted != nil {
		prefs = slices.DeleteFunc(prefs, func(a string) bool { return !allowed(a) })
		slices.SortStableFunc(prefs, func(a, b string) int {
			return slices.Index(accepted, a) - slices.Index(accepted, b)
		})
		if len(prefs) == 0 {
			return "", errors.New("none of its algorithms (rsa-sha2-512, rsa-sha2-256) is among the accepted ones (PubkeyAcceptedAlgorithms)")
		}
	}
	server := c.serverSigAlgs()
	for _, a := range prefs {
		if !slices.Contains(have, a) {
			continue
		}
		if server == nil || slices.Contains(server, a) || slices.Contains(server, kex.UnderlyingSignatureAlgorithm(a)) {
			return a, nil
		}
	}
	if server == nil {
		return "", errors.New("the RSA key can sign only with SHA-1 (ssh-rsa), which is not used")
	}
	return "", fmt.Errorf("server-sig-algs (%s) has no RSA SHA-2 algorithm this key can use",
		strings.Join(server, ","))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// publickey (RFC 4252 section 7).

type publicKeyMethod struct {
	signers []kex.Signer
	errs    []string // keys PublicKeys could not use
	cb      func() ([]kex.Signer, error)
}

// PublicKeys authenticates with private keys (ed25519, ECDSA or RSA).
// For a key with an OpenSSH certificate, use PublicKeySigners with
// CertificateSigner.
func PublicKeys(keys ...crypto.Signer) Method {
	m := &publicKeyMethod{}
	for _, k := range keys {
		if k == nil {
			continue
		}
		s, err := kex.NewSigner(k)
		if err != nil {
			m.errs = append(m.errs, fmt.Sprintf("publickey: %T key unusable: %v", k, err))
			continue
		}
		m.signers = append(m.signers, s)
	}
	return m
}

// PublicKeySigners authenticates with signers, such as an agent's keys
// (Agent.Signers, certificates and security keys included) or a key with
// its certificate (CertificateSigner). They are offered in order; a
// certificate is offered under its certificate algorithms
// (ssh-ed25519-cert-v01@openssh.com, rsa-sha2-512-cert-v01@openssh.com or
// rsa-sha2-256-cert-v01@openssh.com as server-sig-algs allows), and a
// security key's signature, flags and counter included, is sent as its
// signer made it. To offer a certificate and then its plain key, as ssh
// does, list both.
func PublicKeySigners(signers ...kex.Signer) Method {
	m := &publicKeyMethod{}
	for _, s := range signers {
		if s != nil {
			m.signers = append(m.signers, s)
		}
	}
	return m
}

// CertificateSigner pairs a private key with an OpenSSH user certificate
// of its public key (read with LoadCertificate from the key's -cert.pub,
// or from the CA's tooling), for PublicKeySigners: the signer presents
// the certificate and signs with the key (kex.NewCertSigner). It fails if
// the certificate certifies another key, or is not a user certificate.
// Whether the certificate is valid (principals, validity, CA) is the
// server's to decide.
func CertificateSigner(key crypto.Signer, cert *kex.Certificate) (kex.Signer, error) {
	if key == nil || cert == nil {
		return nil, errors.New("auth: CertificateSigner: missing key or certificate")
	}
	if cert.CertType != kex.UserCert {
		return nil, fmt.Errorf("auth: certificate ID %s is not a user certificate", quoteShort(cert.KeyID))
	}
	s, err := kex.NewSigner(key)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	cs, err := kex.NewCertSigner(cert, s)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return cs, nil
}

// PublicKeysCallback authenticates with the signers cb returns; it is
// called when the method is tried. An error from cb skips the method.
func PublicKeysCallback(cb func() ([]kex.Signer, error)) Method {
	return &publicKeyMethod{cb: cb}
}

func (m *publicKeyMethod) method() string { return methodPubkey }

func (m *publicKeyMethod) attempt(c *client) (outcome, error) {
	for _, e := range m.errs {
		c.note("%s", e)
	}
	signers := m.signers
	if m.cb != nil {
		s, err := m.cb()
		if err != nil {
			c.note("publickey: getting keys: %v", err)
			return outSkipped, nil
		}
		signers = s
	}
	offered := 0
	defer func() {
		if offered > 0 {
			c.tried = append(c.tried, "publickey with "+plural(offered, "key", "keys"))
		} else {
			c.note("publickey: no usable key")
		}
	}()
	for _, s := range signers {
		if s == nil {
			continue
		}
		if err := c.ctx.Err(); err != nil {
			return 0, fmt.Errorf("auth: %w", err)
		}
		pub := s.PublicKey()
		blob := pub.Marshal()
		if c.pkDone[string(blob)] {
			continue
		}
		if t := pub.Type(); c.acceptPending && (t == kex.KeyAlgoRSA || t == certAlgoRSA) {
			// An RSA key's algorithm depends on server-sig-algs, in the
			// EXT_INFO that comes before the server's first reply:
			// wait for that reply.
			if err := c.readAccept(); err != nil {
				return 0, err
			}
		}
		algo, err := c.pickAlgorithm(s)
		if err != nil {
			c.note("publickey: skipped %s %s: %v", pub.Type(), kex.FingerprintSHA256(pub), err)
			continue
		}
		offered++
		res, err := c.tryKey(s, algo, blob, c.requests == 0 && signsQuietly(s))
		if err != nil {
			return 0, err
		}
		switch res {
		case outSuccess:
			return outSuccess, nil
		case outPartial:
			c.pkDone[string(blob)] = true
			return outPartial, nil
		}
		if !slices.Contains(c.allowed, methodPubkey) {
			break // the server no longer accepts public keys
		}
	}
	if offered == 0 {
		return outSkipped, nil
	}
	return outFailure, nil
}

// tryKey asks whether the server accepts the key, and if it does signs
// and sends the real request. With direct it sends the signed request
// at once (a QuietSigner's, as the first request): if signing fails, it
// asks first as usual.
func (c *client) tryKey(s kex.Signer, algo string, blob []byte, direct bool) (outcome, error) {
	req := &userauthRequest{
		User: c.cfg.User, Service: serviceConnection, Method: methodPubkey,
		Algorithm: algo, PubKey: blob,
	}
	if direct {
		if sig, err := c.sign(s, algo, blob); err == nil {
			req.HasSig, req.Signature = true, sig
			return c.sendSigned(req)
		}
	}
	if err := c.write(marshalUserauthRequest(req)); err != nil {
		return 0, err
	}
	p, res, err := c.reply()
	if err != nil {
		return 0, err
	}
	if p == nil {
		// FAILURE: not this key. SUCCESS to a query is not what RFC 4252
		// says a server does, but it is the server's decision to make.
		return res, nil
	}
	if p[0] != msgUserauthPKOK {
		return 0, protocolError("unexpected %s in reply to a publickey query", msgName(p[0]))
	}
	okAlgo, okBlob, err := parseUserauthPKOK(p)
	if err != nil {
		return 0, protocolError("malformed USERAUTH_PK_OK")
	}
	if string(okBlob) != string(blob) || !sameKeyFamily(okAlgo, algo) {
		return 0, protocolError("USERAUTH_PK_OK for a key or algorithm that was not offered")
	}
	// okAlgo may name another algorithm of the same key (node ssh2's
	// server answers a rsa-sha2-512 query with ssh-rsa): the signature
	// is made with the algorithm asked for, which the server checks.
	sig, err := c.sign(s, algo, blob)
	if err != nil {
		c.note("publickey: signing with %s %s: %v", s.PublicKey().Type(), kex.FingerprintSHA256(s.PublicKey()), err)
		return outFailure, nil
	}
	req.HasSig = true
	req.Signature = sig
	return c.sendSigned(req)
}

// sign signs a publickey request of the key blob with algo.
func (c *client) sign(s kex.Signer, algo string, blob []byte) ([]byte, error) {
	data := marshalPublickeySignedData(c.t.SessionID(), c.cfg.User, serviceConnection, algo, blob)
	sig, err := s.Sign(rand.Reader, data, algo)
	if err == nil {
		var got string
		got, err = parseSignatureAlgorithm(sig)
		// Under a certificate the signature names the plain algorithm.
		if want := kex.UnderlyingSignatureAlgorithm(algo); err == nil && got != want {
			err = fmt.Errorf("signer made a %s signature, want %s", got, want)
		}
	}
	return sig, err
}

// sendSigned sends a signed publickey request and reads its answer.
func (c *client) sendSigned(req *userauthRequest) (outcome, error) {
	if err := c.write(marshalUserauthRequest(req)); err != nil {
		return 0, err
	}
	p, res, err := c.reply()
	if err != nil {
		return 0, err
	}
	if p != nil {
		return 0, protocolError("unexpected %s in reply to a signed publickey request", msgName(p[0]))
	}
	return res, nil
}

// sameKeyFamily reports whether two public key algorithm names are the
// same, or name signature algorithms of one key type: ssh-rsa,
// rsa-sha2-256 and rsa-sha2-512 are all of an RSA key. RFC 4252 section
// 7 has PK_OK repeat the algorithm of the query, but some servers (node
// ssh2's, GitHub's once) answer an rsa-sha2-* query with ssh-rsa.
// OpenSSH's ssh compares only the key types the names stand for
// (input_userauth_pk_ok), and MINA SSHD and asyncssh accept it too; so
// does tryKey, as the key blob must still be the one offered. The same
// holds for RSA certificates: ssh-rsa-cert-v01@openssh.com and the
// rsa-sha2-*-cert-v01@openssh.com names kex maps to it.
func sameKeyFamily(a, b string) bool {
	if a == b {
		return true
	}
	family := func(name string) string {
		// The SHA-1 names, which kex maps to no key type.
		if name == kex.KeyAlgoRSA || name == certAlgoRSA {
			return name
		}
		return kex.KeyTypeForSignatureAlgorithm(name)
	}
	fa := family(a)
	return fa != "" && fa == family(b)
}

// certAlgoRSA is the key type of OpenSSH's RSA certificates.
const certAlgoRSA = "ssh-rsa-cert-v01@openssh.com"

// password (RFC 4252 section 8).

type passwordMethod struct {
	cb func() (string, error)
}

// Password authenticates with a fixed password.
func Password(pw string) Method {
	return &passwordMethod{cb: func() (string, error) { return pw, nil }}
}

// PasswordCallback authenticates with the password cb returns, asked for
// when the method is tried. An error from cb ends Authenticate.
func PasswordCallback(cb func() (string, error)) Method {
	return &passwordMethod{cb: cb}
}

func (m *passwordMethod) method() string { return methodPassword }

func (m *passwordMethod) attempt(c *client) (outcome, error) {
	pw, err := m.cb()
	if err != nil {
		return 0, fmt.Errorf("auth: password callback: %w", err)
	}
	pwb := []byte(pw)
	msg := marshalUserauthRequest(&userauthRequest{
		User: c.cfg.User, Service: serviceConnection, Method: methodPassword, Password: pwb,
	})
	clear(pwb)
	err = c.write(msg)
	clear(msg)
	if err != nil {
		return 0, err
	}
	p, res, err := c.reply()
	if err != nil {
		return 0, err
	}
	if p == nil {
		c.tried = append(c.tried, "password")
		return res, nil
	}
	if p[0] != msgUserauthPasswdChangereq {
		return 0, protocolError("unexpected %s in reply to a password request", msgName(p[0]))
	}
	prompt, err := parseUserauthPasswdChangereq(p)
	if err != nil {
		return 0, protocolError("malformed USERAUTH_PASSWD_CHANGEREQ")
	}
	// Changing passwords is not supported: the password counts as
	// refused, and the server still waits for another request.
	c.tried = append(c.tried, "password (server requires a password change)")
	c.note("password: the password has expired and must be changed (server says %q)", prompt)
	return outFailure, nil
}

// keyboard-interactive (RFC 4256).

type keyboardInteractiveMethod struct {
	cb func(name, instruction string, prompts []string, echo []bool) ([]string, error)
}

// KeyboardInteractive answers the server's prompts with cb. It is called
// once per INFO_REQUEST, also for requests with no prompts (which only
// carry a name and instruction to show). An error from cb ends
// Authenticate.
func KeyboardInteractive(cb func(name, instruction string, prompts []string, echo []bool) ([]string, error)) Method {
	return &keyboardInteractiveMethod{cb: cb}
}

func (m *keyboardInteractiveMethod) method() string { return methodKbdInt }

func (m *keyboardInteractiveMethod) attempt(c *client) (outcome, error) {
	if err := c.write(marshalUserauthRequest(&userauthRequest{
		User: c.cfg.User, Service: serviceConnection, Method: methodKbdInt,
	})); err != nil {
		return 0, err
	}
	for rounds := 0; ; rounds++ {
		p, res, err := c.reply()
		if err != nil {
			return 0, err
		}
		if p == nil {
			c.tried = append(c.tried, "keyboard-interactive")
			return res, nil
		}
		if p[0] != msgUserauthInfoRequest {
			return 0, protocolError("unexpected %s during keyboard-interactive", msgName(p[0]))
		}
		if rounds >= maxKbdIntRounds {
			return 0, protocolError("more than %d keyboard-interactive rounds", maxKbdIntRounds)
		}
		req, err := parseUserauthInfoRequest(p)
		if err != nil {
			return 0, protocolError("malformed USERAUTH_INFO_REQUEST")
		}
		answers, err := m.cb(req.Name, req.Instruction, req.Prompts, req.Echo)
		if err != nil {
			return 0, fmt.Errorf("auth: keyboard-interactive callback: %w", err)
		}
		if len(answers) != len(req.Prompts) {
			return 0, fmt.Errorf("auth: keyboard-interactive callback gave %d answers to %d prompts",
				len(answers), len(req.Prompts))
		}
		msg := marshalUserauthInfoResponse(answers)
		err = c.write(msg)
		clear(msg)
		if err != nil {
			return 0, err
		}
	}
}
