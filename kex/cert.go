package kex

// OpenSSH certificates (PROTOCOL.certkeys, now draft-miller-ssh-cert; the
// security key certificates in PROTOCOL.u2f): parsing, marshalling,
// signing, and the checks a verifier makes (CheckCertificate).

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/rsftp/rsftp/internal/wire"
)

// Certificate key types, and the signature algorithms of RSA certificates
// (ssh-rsa-cert-v01@openssh.com's own name means SHA-1 signatures, which
// are refused, as ssh-rsa's).
const (
	CertAlgoED25519    = "ssh-ed25519-cert-v01@openssh.com"
	CertAlgoECDSA256   = "ecdsa-sha2-nistp256-cert-v01@openssh.com"
	CertAlgoECDSA384   = "ecdsa-sha2-nistp384-cert-v01@openssh.com"
	CertAlgoECDSA521   = "ecdsa-sha2-nistp521-cert-v01@openssh.com"
	CertAlgoRSA        = "ssh-rsa-cert-v01@openssh.com"
	CertAlgoSKED25519  = "sk-ssh-ed25519-cert-v01@openssh.com"
	CertAlgoSKECDSA256 = "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com"

	CertSigAlgoRSASHA256          = "rsa-sha2-256-cert-v01@openssh.com"
	CertSigAlgoRSASHA512          = "rsa-sha2-512-cert-v01@openssh.com"
	CertSigAlgoWebAuthnSKECDSA256 = "webauthn-sk-ecdsa-sha2-nistp256-cert-v01@openssh.com"
)

// Certificate types (the certificate's type field).
const (
	UserCert = 1
	HostCert = 2
)

// MaxCertPrincipals bounds the principals of a certificate, as OpenSSH's
// SSHKEY_CERT_MAX_PRINCIPALS.
const MaxCertPrincipals = 256

// certKeyTypes maps each certificate type to the type of key it
// certifies.
var certKeyTypes = map[string]string{
	CertAlgoED25519:    KeyAlgoED25519,
	CertAlgoECDSA256:   KeyAlgoECDSA256,
	CertAlgoECDSA384:   KeyAlgoECDSA384,
	CertAlgoECDSA521:   KeyAlgoECDSA521,
	CertAlgoRSA:        KeyAlgoRSA,
	CertAlgoSKED25519:  KeyAlgoSKED25519,
	CertAlgoSKECDSA256: KeyAlgoSKECDSA256,
}

// certSigAlgos maps the signature algorithms of certificates (the public
// key algorithm of a USERAUTH_REQUEST, or a host key algorithm) to the
// algorithm of the signature itself, which names the plain algorithm.
var certSigAlgos = map[string]string{
	CertAlgoED25519:               KeyAlgoED25519,
	CertAlgoECDSA256:              KeyAlgoECDSA256,
	CertAlgoECDSA384:              KeyAlgoECDSA384,
	CertAlgoECDSA521:              KeyAlgoECDSA521,
	CertSigAlgoRSASHA256:          SigAlgoRSASHA256,
	CertSigAlgoRSASHA512:          SigAlgoRSASHA512,
	CertAlgoSKED25519:             KeyAlgoSKED25519,
	CertAlgoSKECDSA256:            KeyAlgoSKECDSA256,
	CertSigAlgoWebAuthnSKECDSA256: SigAlgoWebAuthnSKECDSA256,
}

// CertKeyType is the certificate type of a key type
// (ssh-ed25519: ssh-ed25519-cert-v01@openssh.com), "" if it has none.
func CertKeyType(keyType string) string {
	for c, k := range certKeyTypes {
		if k == keyType {
			return c
		}
	}
	return ""
}

// IsCertAlgorithm reports whether name is a certificate key type or a
// certificate signature algorithm.
func IsCertAlgorithm(name string) bool {
	_, t := certKeyTypes[name]
	_, s := certSigAlgos[name]
	return t || s
}

// UnderlyingSignatureAlgorithm is the algorithm a signature made under the
// certificate algorithm algo names (rsa-sha2-512-cert-v01@openssh.com:
// rsa-sha2-512); any other name is returned as it is.
func UnderlyingSignatureAlgorithm(algo string) string {
	if a, ok := certSigAlgos[algo]; ok {
		return a
	}
	return algo
}

// CertSignatureAlgorithm is the certificate variant of a plain signature
// algorithm (rsa-sha2-512: rsa-sha2-512-cert-v01@openssh.com), "" if
// there is none.
func CertSignatureAlgorithm(algo string) string {
	for c, p := range certSigAlgos {
		if p == algo {
			return c
		}
	}
	return ""
}

// DefaultCASignatureAlgorithms are the algorithms a certificate
// authority's signature may use when the caller names none: sshd's
// default CASignatureAlgorithms (never ssh-rsa's SHA-1).
var DefaultCASignatureAlgorithms = []string{
	KeyAlgoED25519, KeyAlgoECDSA256, KeyAlgoECDSA384, KeyAlgoECDSA521,
	KeyAlgoSKED25519, KeyAlgoSKECDSA256, SigAlgoWebAuthnSKECDSA256,
	SigAlgoRSASHA512, SigAlgoRSASHA256,
}

// CertOption is one critical option or extension: a name and its data,
// the data as encoded in the certificate (for the options OpenSSH
// defines: empty for a flag, a string for a value).
type CertOption struct {
	Name string
	Data []byte
}

// Certificate is an OpenSSH certificate. It is a PublicKey: its Type is
// the certificate type (ssh-ed25519-cert-v01@openssh.com...), Marshal
// the certificate blob, and Verify and CryptoPublicKey those of the
// certified key. Parsing checks only the encoding: CheckCertificate
// decides whether it is valid.
type Certificate struct {
	// Key is the certified key, never itself a certificate.
	Key             PublicKey
	Nonce           []byte
	Serial          uint64
	CertType        uint32 // UserCert or HostCert
	KeyID           string
	ValidPrincipals []string
	// ValidAfter and ValidBefore are seconds since 1970 (UTC): the
	// certificate is valid from ValidAfter until before ValidBefore.
	// ValidBefore 1<<64-1 means forever.
	ValidAfter, ValidBefore uint64
	CriticalOptions         []CertOption
	Extensions              []CertOption
	Reserved                []byte
	// SignatureKey is the certificate authority's key.
	SignatureKey PublicKey
	// Signature is the authority's signature blob (string algorithm ||
	// string signature) over the certificate up to SignatureKey.
	Signature []byte
}

// CertForever is ValidBefore for a certificate that never expires.
const CertForever = 1<<64 - 1

// Type is the certificate key type, from the certified key's type.
func (c *Certificate) Type() string {
	if c.Key == nil {
		return ""
	}
	return CertKeyType(c.Key.Type())
}

func (c *Certificate) CryptoPublicKey() crypto.PublicKey { return c.Key.CryptoPublicKey() }

// Verify checks a signature made by the certified key: its algorithm is
// the plain one (ssh-ed25519, rsa-sha2-512...), whatever the certificate
// algorithm negotiated. It does not check the certificate.
func (c *Certificate) Verify(data, sig []byte) error { return c.Key.Verify(data, sig) }

// Marshal returns the certificate blob, with its signature.
func (c *Certificate) Marshal() []byte {
	return wire.AppendBytes(c.signedBytes(), c.Signature)
}

// signedBytes is what the authority signs: every field up to and with the
// signature key.
func (c *Certificate) signedBytes() []byte {
	b := wire.AppendString(nil, c.Type())
	b = wire.AppendBytes(b, c.Nonce)
	if c.Key != nil {
		b = append(b, keyBody(c.Key)...)
	}
	b = wire.AppendUint64(b, c.Serial)
	b = wire.AppendUint32(b, c.CertType)
	b = wire.AppendString(b, c.KeyID)
	var p []byte
	for _, s := range c.ValidPrincipals {
		p = wire.AppendString(p, s)
	}
	b = wire.AppendBytes(b, p)
	b = wire.AppendUint64(b, c.ValidAfter)
	b = wire.AppendUint64(b, c.ValidBefore)
	b = wire.AppendBytes(b, marshalCertOptions(c.CriticalOptions))
	b = wire.AppendBytes(b, marshalCertOptions(c.Extensions))
	b = wire.AppendBytes(b, c.Reserved)
	var ca []byte
	if c.SignatureKey != nil {
		ca = c.SignatureKey.Marshal()
	}
	return wire.AppendBytes(b, ca)
}

func marshalCertOptions(opts []CertOption) []byte {
	var b []byte
	for _, o := range opts {
		b = wire.AppendString(b, o.Name)
		b = wire.AppendBytes(b, o.Data)
	}
	return b
}

// SignCert sets c.SignatureKey to the authority's key and signs c with
// algorithm algo ("" for the authority's first). c.Key must be set.
func (c *Certificate) SignCert(rand io.Reader, authority Signer, algo string) error {
	if c.Key == nil {
		return errors.New("kex: certificate without a key")
	}
	if _, ok := c.Key.(*Certificate); ok {
		return errors.New("kex: a certificate cannot certify a certificate")
	}
	if _, ok := authority.PublicKey().(*Certificate); ok {
		return errors.New("kex: a certificate cannot sign a certificate")
	}
	c.SignatureKey = authority.PublicKey()
	sig, err := authority.Sign(rand, c.signedBytes(), algo)
	if err != nil {
		return err
	}
	c.Signature = sig
	return nil
}

// ParseCertificate parses a certificate blob.
func ParseCertificate(blob []byte) (*Certificate, error) {
	k, err := ParsePublicKey(blob)
	if err != nil {
		return nil, err
	}
	c, ok := k.(*Certificate)
	if !ok {
		return nil, fmt.Errorf("kex: a %s key is not a certificate", k.Type())
	}
	return c, nil
}

// parseCertificate reads the rest of a certificate of type typ (r has read
// the type name). Every length is checked against what remains; the
// principals are bounded by MaxCertPrincipals; strings OpenSSH reads as C
// strings (key ID, principals, option names) may not contain NUL bytes.
func parseCertificate(typ string, r *wire.Reader) (*Certificate, error) {
	bad := func(format string, args ...any) (*Certificate, error) {
		return nil, fmt.Errorf("kex: malformed %s: %s", typ, fmt.Sprintf(format, args...))
	}
	c := &Certificate{}
	c.Nonce = bytes.Clone(r.Bytes())
	if r.Err() != nil {
		return bad("%v", r.Err())
	}
	key, err := parseKeyBody(certKeyTypes[typ], r)
	if err != nil {
		return nil, fmt.Errorf("kex: %s: certified key: %w", typ, err)
	}
	c.Key = key
	c.Serial = r.Uint64()
	c.CertType = r.Uint32()
	keyID := r.Bytes()
	principals := r.Bytes()
	c.ValidAfter = r.Uint64()
	c.ValidBefore = r.Uint64()
	crit := r.Bytes()
	exts := r.Bytes()
	c.Reserved = bytes.Clone(r.Bytes())
	caBlob := r.Bytes()
	c.Signature = bytes.Clone(r.Bytes())
	if err := r.Done(); err != nil {
		return bad("%v", err)
	}
	if c.CertType != UserCert && c.CertType != HostCert {
		return bad("unknown certificate type %d", c.CertType)
	}
	if bytes.IndexByte(keyID, 0) >= 0 {
		return bad("key ID contains a NUL byte")
	}
	c.KeyID = string(keyID)
	pr := wire.NewReader(principals)
	for pr.Len() > 0 {
		if len(c.ValidPrincipals) == MaxCertPrincipals {
			return bad("more than %d principals", MaxCertPrincipals)
		}
		p := pr.Bytes()
		if pr.Err() != nil {
			return bad("principals: %v", pr.Err())
		}
		if bytes.IndexByte(p, 0) >= 0 {
			return bad("a principal contains a NUL byte")
		}
		c.ValidPrincipals = append(c.ValidPrincipals, string(p))
	}
	if c.CriticalOptions, err = parseCertOptions(crit); err != nil {
		return bad("critical options: %v", err)
	}
	if c.Extensions, err = parseCertOptions(exts); err != nil {
		return bad("extensions: %v", err)
	}
	ca, err := ParsePublicKey(caBlob)
	if err != nil {
		return nil, fmt.Errorf("kex: %s: signature key: %w", typ, err)
	}
	if _, ok := ca.(*Certificate); ok {
		// PROTOCOL.certkeys: chained certificates are not supported.
		return nil, fmt.Errorf("kex: %s: signed by a certificate (%s), not a plain CA key", typ, ca.Type())
	}
	c.SignatureKey = ca
	if _, _, err := splitSignature(c.Signature); err != nil {
		return bad("signature: %v", err)
	}
	return c, nil
}

// parseCertOptions reads a sequence of (string name, string data).
func parseCertOptions(b []byte) ([]CertOption, error) {
	var opts []CertOption
	r := wire.NewReader(b)
	for r.Len() > 0 {
		name := r.Bytes()
		data := r.Bytes()
		if r.Err() != nil {
			return nil, r.Err()
		}
		if bytes.IndexByte(name, 0) >= 0 {
			return nil, errors.New("an option name contains a NUL byte")
		}
		opts = append(opts, CertOption{Name: string(name), Data: bytes.Clone(data)})
	}
	return opts, nil
}

// splitSignature reads a signature blob's algorithm and body; what
// follows (a security key's flags and counter) is left to the key's
// Verify.
func splitSignature(sig []byte) (algo string, raw []byte, err error) {
	r := wire.NewReader(sig)
	algo = r.String()
	raw = r.Bytes()
	return algo, raw, r.Err()
}

// CertPermissions are a user certificate's critical options and
// extensions as sshd reads them (auth-options.c). Flags of extensions
// grant; their absence denies.
type CertPermissions struct {
	// ForceCommand is the force-command critical option;
	// HasForceCommand tells an empty one from none.
	ForceCommand    string
	HasForceCommand bool
	// SourceAddress is the source-address critical option: a
	// comma-separated list of addresses and CIDR blocks ("" if absent).
	SourceAddress string
	// VerifyRequired: signatures of a security key must assert user
	// verification (the verify-required critical option).
	VerifyRequired bool

	NoTouchRequired       bool // no-touch-required
	PermitX11Forwarding   bool // permit-X11-forwarding
	PermitAgentForwarding bool // permit-agent-forwarding
	PermitPortForwarding  bool // permit-port-forwarding
	PermitPTY             bool // permit-pty
	PermitUserRC          bool // permit-user-rc

	// UnknownExtensions are the names of extensions that were ignored.
	UnknownExtensions []string
}

// Permissions decodes a user certificate's options. It fails, as sshd
// refuses such a certificate, on an unknown critical option, a critical
// option given twice, an option whose data is not what it should be (a
// flag with data, a value that is not one string), and a source-address
// that is not a list of addresses and CIDR blocks.
func (c *Certificate) Permissions() (*CertPermissions, error) {
	p := &CertPermissions{}
	str := func(o CertOption) (string, error) {
		r := wire.NewReader(o.Data)
		v := r.Bytes()
		if err := r.Done(); err != nil {
			return "", fmt.Errorf("kex: certificate option %s: %w", printable(o.Name), err)
		}
		if bytes.IndexByte(v, 0) >= 0 {
			return "", fmt.Errorf("kex: certificate option %s contains a NUL byte", printable(o.Name))
		}
		return string(v), nil
	}
	flag := func(o CertOption, f *bool) error {
		if len(o.Data) != 0 {
			return fmt.Errorf("kex: certificate option %s corrupt (extra data)", printable(o.Name))
		}
		*f = true
		return nil
	}
	seen := map[string]bool{}
	for _, o := range c.CriticalOptions {
		if seen[o.Name] {
			return nil, fmt.Errorf("kex: certificate has multiple %s critical options", printable(o.Name))
		}
		seen[o.Name] = true
		var err error
		switch o.Name {
		case "force-command":
			p.ForceCommand, err = str(o)
			p.HasForceCommand = true
		case "source-address":
			if p.SourceAddress, err = str(o); err == nil {
				_, err = ParseSourceAddress(p.SourceAddress)
			}
		case "verify-required":
			err = flag(o, &p.VerifyRequired)
		default:
			err = fmt.Errorf("kex: certificate critical option %s is not supported", printable(o.Name))
		}
		if err != nil {
			return nil, err
		}
	}
	for _, o := range c.Extensions {
		var f *bool
		switch o.Name {
		case "no-touch-required":
			f = &p.NoTouchRequired
		case "permit-X11-forwarding":
			f = &p.PermitX11Forwarding
		case "permit-agent-forwarding":
			f = &p.PermitAgentForwarding
		case "permit-port-forwarding":
			f = &p.PermitPortForwarding
		case "permit-pty":
			f = &p.PermitPTY
		case "permit-user-rc":
			f = &p.PermitUserRC
		default:
			p.UnknownExtensions = append(p.UnknownExtensions, o.Name)
			continue
		}
		if err := flag(o, f); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// ParseSourceAddress parses a source-address list: comma-separated IPv4
// or IPv6 addresses and CIDR blocks, with no blanks, no empty entries and
// no host bits beyond a block's mask (as OpenSSH's addr_match_cidr_list).
func ParseSourceAddress(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, e := range strings.Split(list, ",") {
		if e == "" {
			return nil, fmt.Errorf("kex: empty entry in source-address %s", printable(list))
		}
		if len(e) > 46+3 || strings.Trim(e, "0123456789abcdefABCDEF.:/") != "" {
			return nil, fmt.Errorf("kex: invalid source-address entry %s", printable(e))
		}
		var pfx netip.Prefix
		if strings.Contains(e, "/") {
			var err error
			if pfx, err = netip.ParsePrefix(e); err != nil {
				return nil, fmt.Errorf("kex: invalid source-address entry %s", printable(e))
			}
			if pfx.Masked() != pfx {
				return nil, fmt.Errorf("kex: source-address entry %s has host bits set", printable(e))
			}
		} else {
			a, err := netip.ParseAddr(e)
			if err != nil {
				return nil, fmt.Errorf("kex: invalid source-address entry %s", printable(e))
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, pfx)
	}
	return out, nil
}

// SourceAddressAllows reports whether a source-address list admits addr.
func SourceAddressAllows(list string, addr netip.Addr) (bool, error) {
	pfxs, err := ParseSourceAddress(list)
	if err != nil {
		return false, err
	}
	addr = addr.WithZone("").Unmap()
	for _, p := range pfxs {
		if p.Contains(addr) {
			return true, nil
		}
	}
	return false, nil
}

// Reasons CheckCertificate gives, for errors.Is.
var (
	ErrCertNotYetValid  = errors.New("certificate not yet valid")
	ErrCertExpired      = errors.New("certificate expired")
	ErrCertPrincipal    = errors.New("name is not a listed principal")
	ErrCertNoPrincipals = errors.New("certificate lacks principal list")
	ErrCertType         = errors.New("wrong certificate type")
	ErrCertSignature    = errors.New("certificate signature invalid")
	ErrCertCA           = errors.New("certificate authority not acceptable")
	ErrCertOptions      = errors.New("certificate options refused")
)

// CertCheck says what CheckCertificate checks.
type CertCheck struct {
	// Type is UserCert or HostCert.
	Type uint32
	// Principal, if not "", must be one of the certificate's principals
	// (compared byte for byte: a principal "a,b" is matched only by the
	// name "a,b").
	Principal string
	// AllowNoPrincipals accepts a certificate with no principals as
	// valid for any name, as OpenSSH did before 10.3: a CA that left the
	// list out by mistake then signs for everyone. Off, such a
	// certificate is refused.
	AllowNoPrincipals bool
	// Now is the time to check the validity window at; zero means now.
	Now time.Time
	// CASignatureAlgorithms are the algorithms the authority's signature
	// may use; nil means DefaultCASignatureAlgorithms.
	CASignatureAlgorithms []string
}

// CheckCertificate checks that c is a certificate a verifier may accept,
// in this order: the authority's key is a plain key (not a certificate),
// its signature uses an allowed algorithm and verifies, the type is
// o.Type, the validity window holds o.Now (ValidAfter <= now <
// ValidBefore, compared as unsigned 64-bit numbers; a window that ends
// before it starts is refused), the principals list is not empty and
// lists o.Principal, and the critical options are all known (a host
// certificate may have none). It does not decide whether the authority is
// trusted: the caller compares c.SignatureKey with its CA keys.
func CheckCertificate(c *Certificate, o CertCheck) error {
	fail := func(reason error, format string, args ...any) error {
		msg := reason.Error()
		if format != "" {
			msg += ": " + fmt.Sprintf(format, args...)
		}
		return &CertError{KeyID: c.KeyID, Serial: c.Serial, Reason: reason, Msg: msg}
	}
	if c.Key == nil || c.SignatureKey == nil {
		return fail(ErrCertSignature, "incomplete certificate")
	}
	if _, ok := c.Key.(*Certificate); ok {
		return fail(ErrCertCA, "the certified key is a certificate")
	}
	if ca, ok := c.SignatureKey.(*Certificate); ok {
		return fail(ErrCertCA, "signed by a certificate (%s), not a plain CA key", ca.Type())
	}
	algo, _, err := splitSignature(c.Signature)
	if err != nil {
		return fail(ErrCertSignature, "malformed signature")
	}
	allowed := o.CASignatureAlgorithms
	if allowed == nil {
		allowed = DefaultCASignatureAlgorithms
	}
	if !slices.Contains(allowed, algo) {
		return fail(ErrCertCA, "signature algorithm %s not allowed (allowed: %s)", printable(algo), strings.Join(allowed, ","))
	}
	if KeyTypeForSignatureAlgorithm(algo) != c.SignatureKey.Type() {
		return fail(ErrCertSignature, "a %s signature by a %s key", printable(algo), c.SignatureKey.Type())
	}
	// A security key CA's flags are not judged, as OpenSSH does not.
	if _, err := VerifyDetails(c.SignatureKey, c.signedBytes(), c.Signature); err != nil {
		return fail(ErrCertSignature, "%v", err)
	}
	if c.CertType != o.Type {
		want := "user"
		if o.Type == HostCert {
			want = "host"
		}
		return fail(ErrCertType, "not a %s certificate", want)
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	if c.ValidBefore < c.ValidAfter {
		return fail(ErrCertExpired, "valid before (%s) precedes valid after (%s)", certTime(c.ValidBefore), certTime(c.ValidAfter))
	}
	// A clock before 1970 is before every window, as in sshd.
	if now.Unix() < 0 || uint64(now.Unix()) < c.ValidAfter {
		return fail(ErrCertNotYetValid, "valid after %s", certTime(c.ValidAfter))
	}
	if uint64(now.Unix()) >= c.ValidBefore {
		return fail(ErrCertExpired, "valid before %s", certTime(c.ValidBefore))
	}
	if len(c.ValidPrincipals) == 0 {
		if !o.AllowNoPrincipals {
			return fail(ErrCertNoPrincipals, "")
		}
	} else if o.Principal != "" && !slices.Contains(c.ValidPrincipals, o.Principal) {
		return fail(ErrCertPrincipal, "%s not in %s", printable(o.Principal), printable(strings.Join(c.ValidPrincipals, ",")))
	}
	if o.Type == HostCert {
		if len(c.CriticalOptions) != 0 {
			return fail(ErrCertOptions, "host certificate with critical option %s", printable(c.CriticalOptions[0].Name))
		}
	} else if _, err := c.Permissions(); err != nil {
		return fail(ErrCertOptions, "%v", err)
	}
	return nil
}

// certTime formats a validity bound: UTC time, or "forever" for the
// largest value; bounds beyond what time.Time holds are printed as
// numbers (never converted to a negative int64).
func certTime(t uint64) string {
	switch {
	case t == CertForever:
		return "forever"
	case t > 1<<62:
		return fmt.Sprintf("%d", t)
	}
	return time.Unix(int64(t), 0).UTC().Format(time.RFC3339)
}

// CertError is why CheckCertificate refused a certificate. Reason is one
// of the ErrCert... values (errors.Is works on a CertError).
type CertError struct {
	KeyID  string
	Serial uint64
	Reason error
	Msg    string
}

func (e *CertError) Error() string {
	return fmt.Sprintf("certificate ID %s (serial %d) invalid: %s", printable(e.KeyID), e.Serial, e.Msg)
}

func (e *CertError) Unwrap() error { return e.Reason }

// NewCertSigner pairs a certificate with the signer of its key: its
// PublicKey is the certificate, its Algorithms the certificate's
// (rsa-sha2-512-cert-v01@openssh.com...), and its signatures those of
// the key, named by the plain algorithm, as a host key or a userauth
// request under a certificate algorithm needs them.
func NewCertSigner(cert *Certificate, s Signer) (Signer, error) {
	if cert == nil || cert.Key == nil || s == nil {
		return nil, errors.New("kex: NewCertSigner: missing certificate or signer")
	}
	if !bytes.Equal(cert.Key.Marshal(), s.PublicKey().Marshal()) {
		return nil, errors.New("kex: the certificate certifies another key than the signer's")
	}
	return &certSigner{cert: cert, s: s}, nil
}

type certSigner struct {
	cert *Certificate
	s    Signer
}

func (c *certSigner) PublicKey() PublicKey { return c.cert }

// SignsQuietly is the key's (auth.QuietSigner).
func (c *certSigner) SignsQuietly() bool {
	q, ok := c.s.(interface{ SignsQuietly() bool })
	return ok && q.SignsQuietly()
}

func (c *certSigner) Algorithms() []string {
	var out []string
	for _, a := range c.s.Algorithms() {
		if ca := CertSignatureAlgorithm(a); ca != "" {
			out = append(out, ca)
		}
	}
	return out
}

func (c *certSigner) Sign(rand io.Reader, data []byte, algo string) ([]byte, error) {
	if algo == "" {
		algos := c.Algorithms()
		if len(algos) == 0 {
			return nil, errors.New("kex: no certificate signature algorithm")
		}
		algo = algos[0]
	}
	if KeyTypeForSignatureAlgorithm(algo) != c.cert.Type() {
		return nil, fmt.Errorf("kex: cannot make a %s signature with a %s", algo, c.cert.Type())
	}
	return c.s.Sign(rand, data, UnderlyingSignatureAlgorithm(algo))
}
