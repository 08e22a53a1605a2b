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
	"strconv"
	"strings"

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
// key exchange (order_hostkeyalgs in sshconnect2.c): if a key of the type
// of the first algorithm is known for host and port, algos is returned as
// is; otherwise the algorithms whose key types are known for the host
// move to the front, each group keeping its order. A server with keys of
// several types then presents the one known_hosts holds, where the first
// choice would make Check fail with an *UnknownHostError (ssh-ed25519
// first, only the server's ECDSA key known). rsa-sha2-256 and
// rsa-sha2-512 are of ssh-rsa keys; each ECDSA curve is a type of its
// own. Lines with a marker do not count. The result is a new slice.
func (kh *KnownHosts) HostKeyAlgorithms(host string, port int, algos []string) []string {
	name := KnownHostName(host, port)
	known := make(map[string]bool)
	for i := range kh.entries {
		e := &kh.entries[i]
		if e.Marker == "" && e.matches(name) {
			known[e.Key.Type()] = true
		}
	}
	isKnown := func(algo string) bool {
		t := kex.KeyTypeForSignatureAlgorithm(algo)
		if algo == kex.KeyAlgoRSA {
			t = kex.KeyAlgoRSA
		}
		return t != "" && known[t]
	}
	if len(algos) == 0 || isKnown(algos[0]) {
		return append([]string(nil), algos...)
	}
	var first, last []string
	for _, a := range algos {
		if isKnown(a) {
			first = append(first, a)
		} else {
			last = append(last, a)
		}
	}
	return append(first, last...)
}

// KnownHostsAlgorithms is HostKeyAlgorithms over the known_hosts files
// (those KnownHostsCallback reads; unreadable ones and malformed lines
// are ignored), for transport.Config.HostKeyAlgorithms: nil algos stands
// for transport.DefaultHostKeyAlgorithms' order, which the caller passes.
func KnownHostsAlgorithms(files []string, host string, port int, algos []string) []string {
	kh, _ := LoadKnownHosts(files...)
	return kh.HostKeyAlgorithms(host, port, algos)
}

// Check decides whether key is a valid host key for host and port:
//
//   - *RevokedKeyError if a matching @revoked line has the key (this wins
//     over every other line);
//   - nil if a matching line has the key;
//   - *KeyMismatchError if matching lines have keys of the same type but
//     none is this key: the host key has changed;
//   - *UnknownHostError otherwise, including when only keys of other
//     types are known (its Other field lists them), as ssh(1) does.
//
// @cert-authority lines are ignored, since certificates are not supported.
func (kh *KnownHosts) Check(host string, port int, key kex.PublicKey) error {
	if key == nil {
		return errors.New("auth: no host key to check")
	}
	name := KnownHostName(host, port)
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
				return &RevokedKeyError{Host: name, Port: port, Key: key, Entry: e.KnownKey}
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
		return &KeyMismatchError{Host: name, Port: port, Want: same, Got: key}
	}
	return &UnknownHostError{Host: name, Port: port, Key: key, Other: other}
}

// keyTypeLabel is the short key type name OpenSSH prints ("ED25519").
func keyTypeLabel(k kex.PublicKey) string {
	if k == nil {
		return "unknown"
	}
	switch t := k.Type(); t {
	case kex.KeyAlgoED25519:
		return "ED25519"
	case kex.KeyAlgoRSA:
		return "RSA"
	case kex.KeyAlgoECDSA256, kex.KeyAlgoECDSA384, kex.KeyAlgoECDSA521:
		return "ECDSA"
	default:
		return t
	}
}

func fingerprint(k kex.PublicKey) string {
	if k == nil {
		return "(no key)"
	}
	return kex.FingerprintSHA256(k)
}

// UnknownHostError means no known_hosts line has a key of the presented
// type for the host. Host is the known_hosts name ("[127.0.0.1]:2222").
type UnknownHostError struct {
	Host  string
	Port  int
	Key   kex.PublicKey
	Other []KnownKey // keys of other types known for the host
}

func (e *UnknownHostError) Error() string {
	msg := fmt.Sprintf("no %s key for %s in known_hosts (fingerprint %s)", keyTypeLabel(e.Key), e.Host, fingerprint(e.Key))
	if len(e.Other) > 0 {
		msg += "; keys of other types are known for this host: " + knownKeyList(e.Other)
	}
	return msg
}

// KeyMismatchError means the host is known with other keys of the type
// it presented: the host key has changed, or someone is impersonating the
// host. Host is the known_hosts name.
type KeyMismatchError struct {
	Host string
	Port int
	Want []KnownKey // the offending lines
	Got  kex.PublicKey
}

func (e *KeyMismatchError) Error() string {
	return fmt.Sprintf("REMOTE HOST IDENTIFICATION HAS CHANGED: host key for %s has changed; the %s key sent by the remote host is %s; Offending %s",
		e.Host, keyTypeLabel(e.Got), fingerprint(e.Got), knownKeyList(e.Want))
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
// host. Host is the known_hosts name.
type RevokedKeyError struct {
	Host  string
	Port  int
	Key   kex.PublicKey
	Entry KnownKey // the @revoked line
}

func (e *RevokedKeyError) Error() string {
	return fmt.Sprintf("REVOKED HOST KEY DETECTED: the %s host key for %s (%s) is marked as revoked in %s:%d",
		keyTypeLabel(e.Key), e.Host, fingerprint(e.Key), e.Entry.File, e.Entry.Line)
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
// (for rsftp.ClientConfig.HostKeyCallback). It reads the files on every call,
// so a long-running process sees edits. files[0] is the user's file, where
// keys of new hosts are recorded (hashed if hashNew). Unreadable or
// missing files and malformed lines are ignored, as ssh(1) ignores them.
//
// A revoked or changed key is refused in every mode. An unknown host is
// refused under StrictYes, and under StrictAcceptNew and StrictNo its key
// is added to files[0] and accepted; failing to record it refuses the
// host, so that trust on first use cannot silently repeat.
func KnownHostsCallback(files []string, mode StrictMode, hashNew bool) func(host string, port int, key kex.PublicKey) error {
	files = append([]string(nil), files...)
	return func(host string, port int, key kex.PublicKey) error {
		kh, _ := LoadKnownHosts(files...)
		err := kh.Check(host, port, key)
		var unknown *UnknownHostError
		if err == nil || !errors.As(err, &unknown) {
			if err != nil {
				return fmt.Errorf("Host key verification failed: %w", err)
			}
			return nil
		}
		if mode == StrictYes {
			return fmt.Errorf("Host key verification failed: %w", err)
		}
		if len(files) == 0 {
			return fmt.Errorf("Host key verification failed: %w (no known_hosts file to record it in)", err)
		}
		if aerr := AddKnownHost(files[0], host, port, key, hashNew); aerr != nil {
			return fmt.Errorf("Host key verification failed: %w: %v", err, aerr)
		}
		return nil
	}
}

// DefaultKnownHostsFiles returns ssh(1)'s default UserKnownHostsFile
// (~/.ssh/known_hosts ~/.ssh/known_hosts2) followed by its default
// GlobalKnownHostsFile (/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2).
// The user files are left out if the home directory is unknown; check
// that files[0] is a user file before passing the list to HostKeyCallback.
func DefaultKnownHostsFiles() []string {
	var files []string
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		files = append(files, filepath.Join(home, ".ssh", "known_hosts"), filepath.Join(home, ".ssh", "known_hosts2"))
	}
	return append(files, "/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")
}
