package auth

// OpenSSH known_hosts files (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT") and
// host key checking as ssh(1) does it with StrictHostKeyChecking.

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rsftp/rsftp/kex"
)

// knownHostsMaxFile bounds one known_hosts file read into memory.
const knownHostsMaxFile = 64 << 20

// Markers of known_hosts lines.
const (
	MarkerCertAuthority = "@cert-authority"
	MarkerRevoked       = "@revoked"
)

// hashedHostMagic starts a hashed host name: |1|base64(salt)|base64(hmac).
const hashedHostMagic = "|1|"

// KnownKey is one known_hosts line.
type KnownKey struct {
	Key     kex.PublicKey
	File    string // file it came from ("known_hosts" if parsed from memory)
	Line    int    // 1-based line number
	Marker  string // "", MarkerCertAuthority or MarkerRevoked
	Hosts   string // the host names field as written
	Comment string
}

func (k KnownKey) String() string {
	return fmt.Sprintf("%s key in %s:%d", keyTypeLabel(k.Key), k.File, k.Line)
}

type knownEntry struct {
	KnownKey
	blob     []byte
	patterns string // lower-cased pattern list, if not hashed
	salt     []byte // hashed host name
	hash     []byte
}

func (e *knownEntry) matches(name string) bool {
	if e.salt != nil {
		m := hmac.New(sha1.New, e.salt)
		m.Write([]byte(name))
		return hmac.Equal(m.Sum(nil), e.hash)
	}
	return MatchPatternList(e.patterns, name)
}

// KnownHosts is the parsed contents of one or more known_hosts files.
type KnownHosts struct {
	entries []knownEntry
}

// ParseKnownHosts parses known_hosts data; file names the entries (it
// defaults to "known_hosts"). Malformed lines are skipped and reported in
// the returned error, one *ParseError each; the returned KnownHosts is
// never nil. Lines with key types that OpenSSH knows but this package does
// not implement are skipped silently.
func ParseKnownHosts(data []byte, file string) (*KnownHosts, error) {
	kh := &KnownHosts{}
	err := kh.parse(data, file)
	return kh, err
}

// LoadKnownHosts reads known_hosts files in order. Files that do not
// exist are skipped. The returned KnownHosts is never nil and holds every
// well-formed line that could be read; the error joins read errors and
// per-line *ParseErrors.
func LoadKnownHosts(files ...string) (*KnownHosts, error) {
	kh := &KnownHosts{}
	var errs []error
	for _, f := range files {
		data, err := readKeyFile(f, knownHostsMaxFile)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := kh.parse(data, f); err != nil {
			errs = append(errs, err)
		}
	}
	return kh, errors.Join(errs...)
}

func (kh *KnownHosts) parse(data []byte, file string) error {
	if file == "" {
		file = "known_hosts"
	}
	le := &lineErrors{file: file}
	forEachLine(data, le, func(n int, line string) bool {
		e := knownEntry{KnownKey: KnownKey{File: file, Line: n}}
		field, rest := nextField(line)
		if strings.HasPrefix(field, "@") {
			if field != MarkerCertAuthority && field != MarkerRevoked {
				le.add(n, "unknown marker %s", quoteShort(field))
				return true
			}
			e.Marker = field
			field, rest = nextField(rest)
		}
		if field == "" || rest == "" {
			le.add(n, "missing host names or key")
			return true
		}
		e.Hosts = field
		if strings.HasPrefix(field, "|") {
			salt, hash, err := parseHashedHost(field)
			if err != nil {
				le.add(n, "%v", err)
				return true
			}
			e.salt, e.hash = salt, hash
		} else {
			e.patterns = strings.ToLower(field)
		}
		k, comment, err := parseKeyFields(rest)
		if err == errSkipKey {
			return true
		}
		if err != nil {
			le.add(n, "%v", err)
			return true
		}
		e.Key, e.Comment, e.blob = k, comment, k.Marshal()
		kh.entries = append(kh.entries, e)
		return true
	})
	return le.err()
}

func parseHashedHost(s string) (salt, hash []byte, err error) {
	rest, ok := strings.CutPrefix(s, hashedHostMagic)
	if !ok {
		return nil, nil, fmt.Errorf("unknown hashed host name format %s", quoteShort(s))
	}
	s64, h64, ok := strings.Cut(rest, "|")
	if !ok {
		return nil, nil, errors.New("malformed hashed host name")
	}
	salt, err1 := base64.StdEncoding.DecodeString(s64)
	hash, err2 := base64.StdEncoding.DecodeString(h64)
	if err1 != nil || err2 != nil || len(salt) != sha1.Size || len(hash) != sha1.Size {
		return nil, nil, errors.New("malformed hashed host name")
	}
	return salt, hash, nil
}

// KnownHostName is the name known_hosts stores for a host and port, as
// OpenSSH writes it: the lower-cased host for port 22 (or 0), otherwise
// "[host]:port".
func KnownHostName(host string, port int) string {
	host = strings.ToLower(host)
	if len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	if port == 0 || port == 22 {
		return host
	}
	return "[" + host + "]:" + strconv.Itoa(port)
}

// Lookup returns the host keys (lines without a marker) whose host
// patterns match host and port, in file order.
func (kh *KnownHosts) Lookup(host string, port int) []KnownKey {
	name := KnownHostName(host, port)
	var out []KnownKey
	for i := range kh.entries {
		e := &kh.entries[i]
		if e.Marker == "" && e.matches(name) {
			out = append(out, e.KnownKey)
		}
	}
	return out
}

// HostKeyAlgorithms orders algos, host key signature algorithms in a
// client's order of preference, as OpenSSH's ssh does before its first
// key exchange (order_hostkeyalgs in sshconnect2.c): if a key of the
// plain type of the first algorithm is known for host and port, algos is
// kept as it is; otherwise the algorithms whose key types are known for
// the host move to the front, each group keeping its order, and so do the
// certificate algorithms (-cert-v01@openssh.com) when an @cert-authority
// line matches the host. Unlike ssh, when no @cert-authority line
// matches, the certificate algorithms then go after all the plain ones:
// such a certificate would be checked as its plain key anyway, and the
// plain algorithm first is what a server without a certificate prefers,
// which a guessed first kex packet needs to be right. A server with keys of several types then
// presents the one known_hosts holds, where the first choice would make
// Check fail with an *UnknownHostError (ssh-ed25519 first, only the
// server's ECDSA key known), and one with a host certificate presents it
// to a client that trusts a CA for the host. rsa-sha2-256 and
// rsa-sha2-512 are of ssh-rsa keys; each ECDSA curve is a type of its
// own; a certificate algorithm's plain type is the certified key's.
// Plain keys count only under the host's known_hosts name (with its
// port, as in ssh); @cert-authority lines also under the host's name
// without a port, since Check looks there too. @revoked lines do not
// count. algos is not changed: pass WithCertAlgorithms(algos) for the
// certificate algorithms to be offered at all. The result is a new
// slice.
func (kh *KnownHosts) HostKeyAlgorithms(host string, port int, algos []string) []string {
	name := KnownHostName(host, port)
	known := make(map[string]bool)
	ca := false
	for i := range kh.entries {
		e := &kh.entries[i]
		switch {
		case e.Marker == "" && e.matches(name):
			known[e.Key.Type()] = true
		case e.Marker == MarkerCertAuthority && (e.matches(name) || port != 0 && port != 22 && e.matches(KnownHostName(host, 0))):
			ca = true
		}
	}
	isKnown := func(algo string) bool {
		t := plainKeyType(algo)
		return t != "" && known[t]
	}
	out := slices.Clone(algos)
	if len(algos) > 0 && !isKnown(algos[0]) {
		var first, last []string
		for _, a := range algos {
			if ca && kex.IsCertAlgorithm(a) || isKnown(a) {
				first = append(first, a)
			} else {
				last = append(last, a)
			}
		}
		out = append(first, last...)
	}
	if !ca {
		// Nothing could check a host certificate (Check would take its
		// plain key): the certificate algorithms go last, and the plain
		// key is asked for by name. A server without a certificate
		// then prefers the client's first algorithm, which a guessed
		// kex packet needs (RFC 4253 section 7; issue 17).
		plain := slices.DeleteFunc(slices.Clone(out), kex.IsCertAlgorithm)
		certs := slices.DeleteFunc(out, func(a string) bool { return !kex.IsCertAlgorithm(a) })
		out = append(plain, certs...)
	}
	return out
}

// plainKeyType is the plain key type of a host key algorithm:
// ssh-ed25519 for ssh-ed25519-cert-v01@openssh.com, ssh-rsa for
// rsa-sha2-512 and ssh-rsa (SHA-1) alike; "" if unknown.
func plainKeyType(algo string) string {
	switch algo {
	case kex.KeyAlgoRSA, certAlgoRSA:
		return kex.KeyAlgoRSA
	}
	return kex.KeyTypeForSignatureAlgorithm(kex.UnderlyingSignatureAlgorithm(algo))
}

// WithCertAlgorithms returns algos with, in front, the certificate
// algorithm of each of its algorithms that has one
// (ssh-ed25519-cert-v01@openssh.com for ssh-ed25519,
// rsa-sha2-512-cert-v01@openssh.com for rsa-sha2-512), in algos' order,
// as OpenSSH's default HostKeyAlgorithms lists them; names already in
// algos are not repeated. Ordered by HostKeyAlgorithms, the certificate
// algorithms go first for a host an @cert-authority line covers, and last
// otherwise: a host certificate the client cannot check falls back to
// its plain key (Check). The result is a new slice.
func WithCertAlgorithms(algos []string) []string {
	var out []string
	for _, a := range algos {
		if c := kex.CertSignatureAlgorithm(a); c != "" && !slices.Contains(algos, c) && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return append(out, algos...)
}

// KnownHostsAlgorithms is HostKeyAlgorithms over the known_hosts files
// (those KnownHostsCallback reads; unreadable ones and malformed lines
// are ignored), for transport.Config.HostKeyAlgorithms: nil algos stands
// for transport.DefaultHostKeyAlgorithms' order, which the caller passes.
func KnownHostsAlgorithms(files []string, host string, port int, algos []string) []string {
	kh, _ := LoadKnownHosts(files...)
	return kh.HostKeyAlgorithms(host, port, algos)
}

// Check decides whether key is a valid host key for host and port, as
// ssh(1) does (check_host_key in sshconnect.c):
//
//   - *RevokedKeyError if a matching @revoked line has the key (this wins
//     over every other line);
//   - nil if a matching line has the key;
//   - *KeyMismatchError if matching lines have keys of the same type but
//     none is this key: the host key has changed;
//   - *UnknownHostError otherwise, including when only keys of other
//     types are known (its Other field lists them), as ssh(1) does.
//
// A host certificate (a *kex.Certificate) is accepted if a matching
// @cert-authority line has its CA key and it is valid for the host
// (CheckHostCertificate: a host certificate, valid now, host among its
// principals, no critical options); it is refused if a matching @revoked
// line has its key or its CA key. Otherwise its plain key is checked as
// above, and the errors say why the certificate was not accepted.
//
// When the port is neither 22 nor 0 and nothing is known under
// "[host]:port", the lines for the bare host name are consulted too, as
// ssh does ("checking without port identifier"): an @cert-authority line
// for *.example.com then covers port 2222.
func (kh *KnownHosts) Check(host string, port int, key kex.PublicKey) error {
	return kh.check(host, port, key, &HostKeyChecker{})
}

// check is Check with the certificate options of c (its Files, Mode and
// revocation files are the caller's business).
func (kh *KnownHosts) check(host string, port int, key kex.PublicKey, c *HostKeyChecker) error {
	if key == nil {
		return errors.New("auth: no host key to check")
	}
	err := kh.checkName(KnownHostName(host, port), port, host, key, c, true)
	var unknown *UnknownHostError
	if errors.As(err, &unknown) && port != 0 && port != 22 {
		// Quietly: a certificate refused under this name was reported
		// by the first pass.
		err2 := kh.checkName(KnownHostName(host, 0), port, host, key, c, false)
		var revoked *RevokedKeyError
		if err2 == nil || errors.As(err2, &revoked) {
			return err2
		}
	}
	return err
}

// checkName checks key against the lines that match the known_hosts name
// name; host is the name the connection was made to (a certificate's
// principals must cover it).
func (kh *KnownHosts) checkName(name string, port int, host string, key kex.PublicKey, c *HostKeyChecker, warn bool) error {
	cert, _ := key.(*kex.Certificate)
	var certErr error
	if cert != nil {
		if cert.Key == nil || cert.SignatureKey == nil {
			return errors.New("auth: incomplete host certificate")
		}
		keyBlob, caBlob := cert.Key.Marshal(), cert.SignatureKey.Marshal()
		var ca *knownEntry
		for i := range kh.entries {
			e := &kh.entries[i]
			if e.Marker == "" || !e.matches(name) {
				continue
			}
			if e.Marker == MarkerRevoked && (bytes.Equal(e.blob, keyBlob) || bytes.Equal(e.blob, caBlob)) {
				return &RevokedKeyError{Host: name, Port: port, Key: key, Entry: e.KnownKey}
			}
			if e.Marker == MarkerCertAuthority && ca == nil && bytes.Equal(e.blob, caBlob) {
				ca = e
			}
		}
		if ca == nil {
			certErr = fmt.Errorf("no @cert-authority line for %s has its CA key (%s %s)", name, keyTypeLabel(cert.SignatureKey), fingerprint(cert.SignatureKey))
		} else if certErr = CheckHostCertificate(cert, host, c.certCheck()); certErr == nil {
			return nil
		} else if warn && c.Warn != nil {
			c.Warn(fmt.Sprintf("host certificate for %s (CA in %s:%d) not accepted: %v; checking its plain key against known_hosts instead",
				name, ca.File, ca.Line, certErr))
		}
		// As ssh: the certificate's plain key, checked as any host key.
		key = cert.Key
	}
	blob := key.Marshal()
	var found bool
	var same, other []KnownKey
	for i := range kh.entries {
		e := &kh.entries[i]
		if !e.matches(name) {
			continue
		}
		switch e.Marker {
		case MarkerRevoked:
			if bytes.Equal(e.blob, blob) {
				return &RevokedKeyError{Host: name, Port: port, Key: key, Entry: e.KnownKey, Cert: cert}
			}
		case "":
			switch {
			case bytes.Equal(e.blob, blob):
				found = true
			case e.Key.Type() == key.Type():
				same = append(same, e.KnownKey)
			default:
				other = append(other, e.KnownKey)
			}
		}
	}
	switch {
	case found:
		return nil
	case len(same) > 0:
		return &KeyMismatchError{Host: name, Port: port, Want: same, Got: key, Cert: cert, CertErr: certErr}
	}
	return &UnknownHostError{Host: name, Port: port, Key: key, Other: other, Cert: cert, CertErr: certErr}
}

// HostCertCheck says what CheckHostCertificate checks beyond what it
// always does.
type HostCertCheck struct {
	// Now is the time to check the validity window at; zero means now.
	Now time.Time
	// CASignatureAlgorithms are the algorithms the CA's signature may
	// use (ssh_config's CASignatureAlgorithms); nil means
	// kex.DefaultCASignatureAlgorithms.
	CASignatureAlgorithms []string
}

// CheckHostCertificate checks that cert is a host certificate valid for
// host, as ssh(1) checks one whose CA an @cert-authority line trusts
// (sshkey_cert_check_host): the CA's signature (of an allowed algorithm)
// verifies, it is of type host, valid now, it has principals and one of
// them, read as a wildcard pattern ('*' and '?', case-sensitive), matches
// host (lower-cased, without brackets: the name connected to, or the
// HostKeyAlias), and it has no critical options. It does not decide
// whether the CA is trusted. Errors are *kex.CertError (errors.Is with
// kex.ErrCertExpired...).
func CheckHostCertificate(cert *kex.Certificate, host string, o HostCertCheck) error {
	if err := kex.CheckCertificate(cert, kex.CertCheck{Type: kex.HostCert, Now: o.Now, CASignatureAlgorithms: o.CASignatureAlgorithms}); err != nil {
		return err
	}
	host = strings.ToLower(host)
	if len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	for _, p := range cert.ValidPrincipals {
		if MatchPattern(p, host) {
			return nil
		}
	}
	return &kex.CertError{KeyID: cert.KeyID, Serial: cert.Serial, Reason: kex.ErrCertPrincipal,
		Msg: fmt.Sprintf("%v: %s not in %s", kex.ErrCertPrincipal, quoteShort(host), quoteShort(strings.Join(cert.ValidPrincipals, ",")))}
}

// keyTypeLabel is the short key type name OpenSSH prints ("ED25519").
func keyTypeLabel(k kex.PublicKey) string {
	if k == nil {
		return "unknown"
	}
	if c, ok := k.(*kex.Certificate); ok {
		return keyTypeLabel(c.Key) + "-CERT"
	}
	switch t := k.Type(); t {
	case kex.KeyAlgoED25519:
		return "ED25519"
	case kex.KeyAlgoRSA:
		return "RSA"
	case kex.KeyAlgoECDSA256, kex.KeyAlgoECDSA384, kex.KeyAlgoECDSA521:
		return "ECDSA"
	case kex.KeyAlgoSKED25519:
		return "ED25519-SK"
	case kex.KeyAlgoSKECDSA256:
		return "ECDSA-SK"
	default:
		return t
	}
}

// fingerprint is a key's SHA-256 fingerprint; a certificate's is its
// key's, as OpenSSH prints it.
func fingerprint(k kex.PublicKey) string {
	if c, ok := k.(*kex.Certificate); ok && c.Key != nil {
		k = c.Key
	}
	if k == nil {
		return "(no key)"
	}
	return kex.FingerprintSHA256(k)
}

// UnknownHostError means no known_hosts line has a key of the presented
// type for the host. Host is the known_hosts name ("[127.0.0.1]:2222").
//
// For a host certificate that was not accepted, Key is its plain key (the
// key to record, as ssh records it), Cert the certificate and CertErr why
// it was not accepted.
type UnknownHostError struct {
	Host    string
	Port    int
	Key     kex.PublicKey
	Other   []KnownKey // keys of other types known for the host
	Cert    *kex.Certificate
	CertErr error
}

func (e *UnknownHostError) Error() string {
	msg := fmt.Sprintf("no %s key for %s in known_hosts (fingerprint %s)", keyTypeLabel(e.Key), e.Host, fingerprint(e.Key))
	if len(e.Other) > 0 {
		msg += "; keys of other types are known for this host: " + knownKeyList(e.Other)
	}
	return msg + certNote(e.Cert, e.CertErr)
}

// certNote says why a host certificate was not accepted.
func certNote(c *kex.Certificate, err error) string {
	if c == nil {
		return ""
	}
	msg := fmt.Sprintf("; the host presented a certificate (ID %s, serial %d) of that key", quoteShort(c.KeyID), c.Serial)
	if err != nil {
		msg += ", not accepted: " + err.Error()
	}
	return msg
}

// KeyMismatchError means the host is known with other keys of the type
// it presented: the host key has changed, or someone is impersonating the
// host. Host is the known_hosts name.
// For a host certificate that was not accepted, Got is its plain key,
// Cert the certificate and CertErr why it was not accepted.
type KeyMismatchError struct {
	Host    string
	Port    int
	Want    []KnownKey // the offending lines
	Got     kex.PublicKey
	Cert    *kex.Certificate
	CertErr error
}

func (e *KeyMismatchError) Error() string {
	return fmt.Sprintf("REMOTE HOST IDENTIFICATION HAS CHANGED: host key for %s has changed; the %s key sent by the remote host is %s; Offending %s",
		e.Host, keyTypeLabel(e.Got), fingerprint(e.Got), knownKeyList(e.Want)) + certNote(e.Cert, e.CertErr)
}

// Warning is the multi-line warning ssh(1) prints for a changed key.
func (e *KeyMismatchError) Warning() string {
	var b strings.Builder
	b.WriteString("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n")
	b.WriteString("@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n")
	b.WriteString("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n")
	b.WriteString("IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n")
	b.WriteString("Someone could be eavesdropping on you right now (man-in-the-middle attack)!\n")
	b.WriteString("It is also possible that a host key has just been changed.\n")
	fmt.Fprintf(&b, "The fingerprint for the %s key sent by the remote host is\n%s.\n", keyTypeLabel(e.Got), fingerprint(e.Got))
	b.WriteString("Please contact your system administrator.\n")
	for _, w := range e.Want {
		fmt.Fprintf(&b, "Offending %s\n", w)
		fmt.Fprintf(&b, "  remove with:\n  ssh-keygen -f %q -R %q\n", w.File, e.Host)
	}
	fmt.Fprintf(&b, "Host key for %s has changed and you have requested strict checking.\n", e.Host)
	b.WriteString("Host key verification failed.\n")
	return b.String()
}

// RevokedKeyError means the presented key is marked @revoked for the
// host. Host is the known_hosts name. For a host certificate, Key is the
// certificate when the @revoked line has its key or its CA key, and its
// plain key (with Cert set) when the certificate was not accepted and its
// plain key is revoked.
type RevokedKeyError struct {
	Host  string
	Port  int
	Key   kex.PublicKey
	Entry KnownKey // the @revoked line
	Cert  *kex.Certificate
}

func (e *RevokedKeyError) Error() string {
	what := fmt.Sprintf("the %s host key for %s (%s)", keyTypeLabel(e.Key), e.Host, fingerprint(e.Key))
	if c, ok := e.Key.(*kex.Certificate); ok {
		what = fmt.Sprintf("the host certificate for %s (ID %s, serial %d, key %s, CA %s %s): its key or its CA key",
			e.Host, quoteShort(c.KeyID), c.Serial, fingerprint(c.Key), keyTypeLabel(c.SignatureKey), fingerprint(c.SignatureKey))
	}
	return fmt.Sprintf("REVOKED HOST KEY DETECTED: %s is marked as revoked in %s:%d", what, e.Entry.File, e.Entry.Line)
}

func knownKeyList(ks []KnownKey) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = k.String()
	}
	return strings.Join(s, ", ")
}

// HashHostname returns the hashed form of a known_hosts host name,
// "|1|base64(salt)|base64(HMAC-SHA1(salt, host))", as ssh-keygen -H and
// HashKnownHosts write it. host is hashed as given, so pass the result of
// KnownHostName. A nil or empty salt is replaced by 20 random bytes;
// OpenSSH only reads 20-byte salts.
func HashHostname(host string, salt []byte) string {
	if len(salt) == 0 {
		salt = make([]byte, sha1.Size)
		if _, err := rand.Read(salt); err != nil {
			panic("auth: crypto/rand failed: " + err.Error())
		}
	}
	m := hmac.New(sha1.New, salt)
	m.Write([]byte(host))
	return hashedHostMagic + base64.StdEncoding.EncodeToString(salt) + "|" + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// AddKnownHost appends a line for host, port and key to file, hashing the
// host name if hash is set. The parent directory is created (0700) and
// the file too (0600) if missing. The line is written with one append,
// preceded by a newline if the file does not end with one.
func AddKnownHost(file string, host string, port int, key kex.PublicKey, hash bool) error {
	if key == nil {
		return errors.New("auth: no key to add to known_hosts")
	}
	if c, ok := key.(*kex.Certificate); ok {
		key = c.Key // known_hosts holds plain keys, as ssh records them
	}
	name := KnownHostName(host, port)
	if name == "" || strings.ContainsAny(name, " \t\r\n,#") || strings.HasPrefix(name, "@") || strings.HasPrefix(name, "|") || strings.HasPrefix(name, "!") {
		return fmt.Errorf("auth: cannot add host name %s to known_hosts", quoteShort(name))
	}
	if hash {
		name = HashHostname(name, nil)
	}
	line := name + " " + kex.MarshalAuthorizedKey(key) + "\n"
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("auth: adding host key: %w", err)
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("auth: adding host key: %w", err)
	}
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], st.Size()-1); err == nil && last[0] != '\n' {
			line = "\n" + line
		}
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("auth: adding host key to %s: %w", file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("auth: adding host key to %s: %w", file, err)
	}
	return nil
}

// StrictMode is ssh_config's StrictHostKeyChecking.
type StrictMode int

const (
	// StrictYes refuses hosts whose key is not already known.
	StrictYes StrictMode = iota
	// StrictAcceptNew records the key of an unknown host and accepts it.
	StrictAcceptNew
	// StrictNo behaves like StrictAcceptNew here: changed and revoked
	// keys are still refused (ssh(1) would connect with password and
	// keyboard-interactive authentication disabled instead).
	StrictNo
)

func (m StrictMode) String() string {
	switch m {
	case StrictYes:
		return "yes"
	case StrictAcceptNew:
		return "accept-new"
	case StrictNo:
		return "no"
	}
	return "StrictMode(" + strconv.Itoa(int(m)) + ")"
}

// ParseStrictMode parses a StrictHostKeyChecking value, case-insensitive:
// yes/true, accept-new, no/off/false. "ask" is taken as yes, since there
// is nobody to ask.
func ParseStrictMode(s string) (StrictMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "yes", "true", "ask":
		return StrictYes, nil
	case "accept-new":
		return StrictAcceptNew, nil
	case "no", "off", "false":
		return StrictNo, nil
	}
	return StrictYes, fmt.Errorf("auth: unknown StrictHostKeyChecking value %s", quoteShort(s))
}

// KnownHostsCallback returns a host key check against known_hosts files
// (for rsftp.ClientConfig.HostKeyCallback): HostKeyChecker's Check with
// those files, mode and hashNew, and no revocation files.
func KnownHostsCallback(files []string, mode StrictMode, hashNew bool) func(host string, port int, key kex.PublicKey) error {
	c := &HostKeyChecker{Files: append([]string(nil), files...), Mode: mode, HashNew: hashNew}
	return c.Check
}

// HostKeyChecker checks host keys as ssh(1) does (verify_host_key in
// sshconnect.c): against RevokedHostKeys first, then the known_hosts
// files (KnownHosts.Check, host certificates and their CAs included),
// and under StrictHostKeyChecking's mode. Its Check method is a
// rsftp.ClientConfig.HostKeyCallback. It reads the files on every call,
// so a long-running process sees edits. Files[0] is the user's file,
// where keys of new hosts are recorded (hashed if HashNew). Unreadable or
// missing known_hosts files and malformed lines are ignored, as ssh(1)
// ignores them.
//
// A revoked or changed key is refused in every mode. An unknown host is
// refused under StrictYes, and under StrictAcceptNew and StrictNo its key
// is added to Files[0] and accepted; failing to record it refuses the
// host, so that trust on first use cannot silently repeat. A host
// certificate that is not accepted (no @cert-authority line for its CA,
// or invalid) counts as its plain key, which is what gets recorded.
type HostKeyChecker struct {
	Files   []string
	Mode    StrictMode
	HashNew bool
	// RevokedHostKeys are ssh_config's RevokedHostKeys: files each an
	// OpenSSH KRL (ssh-keygen -k) or a list of public keys
	// (RevokedKeysFile reads them). A key they revoke is refused, and
	// so is a certificate revoked by serial, key ID, key or CA; a file
	// that cannot be read or parsed refuses every host, as in ssh.
	RevokedHostKeys []string
	// CASignatureAlgorithms are the algorithms a host certificate's CA
	// signature may use (ssh_config's CASignatureAlgorithms); nil means
	// kex.DefaultCASignatureAlgorithms.
	CASignatureAlgorithms []string
	// Now returns the time host certificates are checked at; nil
	// means time.Now.
	Now func() time.Time
	// Warn, if set, is told when a host certificate whose CA an
	// @cert-authority line trusts fails its checks (expired, another
	// host's...) and the plain key is checked instead, as ssh prints it.
	Warn func(msg string)
}

func (c *HostKeyChecker) certCheck() HostCertCheck {
	o := HostCertCheck{CASignatureAlgorithms: c.CASignatureAlgorithms}
	if c.Now != nil {
		o.Now = c.Now()
	}
	return o
}

// Check decides on the host key key that host, port presented: nil to
// accept it; an error that starts "Host key verification failed" to
// refuse it, wrapping a *RevokedKeyError, *KeyMismatchError,
// *UnknownHostError or the revocation file's error.
func (c *HostKeyChecker) Check(host string, port int, key kex.PublicKey) error {
	if key == nil {
		return errors.New("Host key verification failed: no host key")
	}
	for _, f := range c.RevokedHostKeys {
		if err := RevokedKeysFile(f)(key); err != nil {
			return fmt.Errorf("Host key verification failed: %s host key %s: %w", keyTypeLabel(key), fingerprint(key), err)
		}
	}
	kh, _ := LoadKnownHosts(c.Files...)
	err := kh.check(host, port, key, c)
	var unknown *UnknownHostError
	if err == nil || !errors.As(err, &unknown) {
		if err != nil {
			return fmt.Errorf("Host key verification failed: %w", err)
		}
		return nil
	}
	if c.Mode == StrictYes {
		return fmt.Errorf("Host key verification failed: %w", err)
	}
	if len(c.Files) == 0 {
		return fmt.Errorf("Host key verification failed: %w (no known_hosts file to record it in)", err)
	}
	if aerr := AddKnownHost(c.Files[0], host, port, unknown.Key, c.HashNew); aerr != nil {
		return fmt.Errorf("Host key verification failed: %w: %v", err, aerr)
	}
	return nil
}

// DefaultKnownHostsFiles returns ssh(1)'s default UserKnownHostsFile
// (~/.ssh/known_hosts ~/.ssh/known_hosts2) followed by its default
// GlobalKnownHostsFile (/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2;
// on Windows in %ProgramData%\ssh: SystemSSHDir).
// The user files are left out if the home directory is unknown; check
// that files[0] is a user file before passing the list to HostKeyCallback.
func DefaultKnownHostsFiles() []string {
	var files []string
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		files = append(files, filepath.Join(home, ".ssh", "known_hosts"), filepath.Join(home, ".ssh", "known_hosts2"))
	}
	return append(files, filepath.Join(SystemSSHDir(), "ssh_known_hosts"), filepath.Join(SystemSSHDir(), "ssh_known_hosts2"))
}
