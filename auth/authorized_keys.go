package auth

// OpenSSH authorized_keys files (sshd(8), "AUTHORIZED_KEYS FILE FORMAT")
// and the pattern language of ssh_config(5) "PATTERNS", which known_hosts
// shares.

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rsftp/rsftp/kex"
)

// Limits on key files. Real lines are a few hundred bytes (a 16384-bit RSA
// key is under 3 KiB of base64); these bounds only stop a hostile or
// corrupt file from costing unbounded memory or time.
const (
	keyFileMaxLine   = 64 << 10 // longest line considered
	keyFileMaxErrors = 100      // per-line errors kept; the rest are counted

	authorizedKeysMaxKeys = 100000
	authorizedKeysMaxFile = 16 << 20
)

// ParseError reports one malformed line of an authorized_keys or
// known_hosts file. The line is skipped; the rest of the file is still
// used.
type ParseError struct {
	File string // file name, or "authorized_keys"/"known_hosts" when parsed from memory
	Line int    // 1-based
	Msg  string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s line %d: %s", e.File, e.Line, e.Msg)
}

// lineErrors collects per-line errors up to keyFileMaxErrors.
type lineErrors struct {
	file    string
	errs    []error
	dropped int
}

func (le *lineErrors) add(line int, format string, args ...any) {
	if len(le.errs) >= keyFileMaxErrors {
		le.dropped++
		return
	}
	le.errs = append(le.errs, &ParseError{File: le.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (le *lineErrors) err() error {
	errs := le.errs
	if le.dropped > 0 {
		errs = append(errs[:len(errs):len(errs)], fmt.Errorf("%s: %d more malformed lines not reported", le.file, le.dropped))
	}
	return errors.Join(errs...)
}

// forEachLine calls fn with each line of data (without its line ending)
// that is neither blank nor a comment, after leading blanks. Lines longer
// than keyFileMaxLine are reported and skipped. fn returns false to stop.
func forEachLine(data []byte, le *lineErrors, fn func(n int, line string) bool) {
	for n := 1; len(data) > 0; n++ {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		if len(line) > keyFileMaxLine {
			le.add(n, "line longer than %d bytes", keyFileMaxLine)
			continue
		}
		line = bytes.TrimRight(line, "\r")
		line = bytes.TrimLeft(line, " \t")
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if !fn(n, string(line)) {
			return
		}
	}
}

// nextField splits s at its first run of blanks.
func nextField(s string) (field, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}

// Key type names OpenSSH knows but this package does not implement. Lines
// with these types are skipped without an error, as sshd skips keys it
// was built without.
// Certificates are among them: a certificate listed as a key in
// authorized_keys or known_hosts matches nothing in sshd or ssh (a CA key
// with cert-authority, or @cert-authority, is how they are trusted).
var unsupportedKeyTypes = map[string]bool{
	"ssh-dss":                                     true,
	"ssh-xmss@openssh.com":                        true,
	"ssh-rsa-cert-v01@openssh.com":                true,
	"ssh-dss-cert-v01@openssh.com":                true,
	"ecdsa-sha2-nistp256-cert-v01@openssh.com":    true,
	"ecdsa-sha2-nistp384-cert-v01@openssh.com":    true,
	"ecdsa-sha2-nistp521-cert-v01@openssh.com":    true,
	"ssh-ed25519-cert-v01@openssh.com":            true,
	"sk-ecdsa-sha2-nistp256-cert-v01@openssh.com": true,
	"sk-ssh-ed25519-cert-v01@openssh.com":         true,
	"ssh-xmss-cert-v01@openssh.com":               true,
}

func supportedKeyType(t string) bool {
	switch t {
	case kex.KeyAlgoED25519, kex.KeyAlgoECDSA256, kex.KeyAlgoECDSA384, kex.KeyAlgoECDSA521, kex.KeyAlgoRSA,
		kex.KeyAlgoSKED25519, kex.KeyAlgoSKECDSA256:
		return true
	}
	return false
}

func knownKeyType(t string) bool { return supportedKeyType(t) || unsupportedKeyTypes[t] }

// errSkipKey means a well-formed line whose key type is not implemented.
var errSkipKey = errors.New("unsupported key type")

// parseKeyFields parses "keytype base64 [comment]". It returns errSkipKey
// for a key type OpenSSH knows but kex does not implement.
func parseKeyFields(s string) (kex.PublicKey, string, error) {
	typ, rest := nextField(s)
	b64, comment := nextField(rest)
	if typ == "" {
		return nil, "", errors.New("missing key type")
	}
	if !knownKeyType(typ) {
		return nil, "", fmt.Errorf("unknown key type %s", quoteShort(typ))
	}
	if unsupportedKeyTypes[typ] {
		return nil, "", errSkipKey
	}
	if b64 == "" {
		return nil, "", fmt.Errorf("missing %s key data", typ)
	}
	blob, err := decodeBase64(b64)
	if err != nil {
		return nil, "", fmt.Errorf("malformed base64 in %s key: %v", typ, err)
	}
	k, err := kex.ParsePublicKey(blob)
	if err != nil {
		return nil, "", fmt.Errorf("bad %s key: %v", typ, err)
	}
	if k.Type() != typ {
		return nil, "", fmt.Errorf("key type field %s does not match the key data (%s)", typ, k.Type())
	}
	return k, strings.TrimRight(comment, " \t"), nil
}

// decodeBase64 accepts standard base64 with or without padding.
func decodeBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil && !strings.Contains(s, "=") {
		if b2, err2 := base64.RawStdEncoding.DecodeString(s); err2 == nil {
			return b2, nil
		}
	}
	return b, err
}

// quoteShort quotes s for an error message, truncating long input.
func quoteShort(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}

// KeyOption is one option of an authorized_keys line. Name is lower case
// (option names are case-insensitive); Value has its quotes removed and
// \" unescaped.
type KeyOption struct {
	Name     string
	Value    string
	HasValue bool
}

// AuthorizedKey is one usable line of an authorized_keys file.
type AuthorizedKey struct {
	Key     kex.PublicKey
	Options []KeyOption // in file order
	Comment string
	Line    int // 1-based line number in the file
}

// Option returns the value of the first option called name (compared
// case-insensitively). For a flag such as "no-pty" the value is "".
func (k AuthorizedKey) Option(name string) (value string, ok bool) {
	for _, o := range k.Options {
		if strings.EqualFold(o.Name, name) {
			return o.Value, true
		}
	}
	return "", false
}

// OptionValues returns the values of every option called name, in file
// order (for options that may repeat, such as permitopen or environment).
func (k AuthorizedKey) OptionValues(name string) []string {
	var vs []string
	for _, o := range k.Options {
		if strings.EqualFold(o.Name, name) {
			vs = append(vs, o.Value)
		}
	}
	return vs
}

// KeyPermissions is the effect of an authorized_keys line's options on a
// session, with options applied in order as sshd does: "restrict" turns
// off everything below, and a later "pty" (say) turns that one back on.
type KeyPermissions struct {
	PortForwarding  bool
	AgentForwarding bool
	X11Forwarding   bool
	PTY             bool
	UserRC          bool

	// Command is the forced command; HasCommand tells an empty forced
	// command from none.
	Command    string
	HasCommand bool

	PermitOpen   []string // permitopen="host:port" values; nil means any
	PermitListen []string // permitlisten="[host:]port" values; nil means any
	Environment  []string // environment="NAME=value" values
	Tunnel       string   // tunnel="n", "" if absent

	CertAuthority   bool   // the key is a CA key, not a user key
	Principals      string // principals= of a cert-authority line
	NoTouchRequired bool
	VerifyRequired  bool
}

// Permissions evaluates the line's options.
func (k AuthorizedKey) Permissions() KeyPermissions {
	p := KeyPermissions{PortForwarding: true, AgentForwarding: true, X11Forwarding: true, PTY: true, UserRC: true}
	for _, o := range k.Options {
		switch strings.ToLower(o.Name) {
		case "restrict":
			p.PortForwarding, p.AgentForwarding, p.X11Forwarding, p.PTY, p.UserRC = false, false, false, false, false
		case "port-forwarding":
			p.PortForwarding = true
		case "no-port-forwarding":
			p.PortForwarding = false
		case "agent-forwarding":
			p.AgentForwarding = true
		case "no-agent-forwarding":
			p.AgentForwarding = false
		case "x11-forwarding":
			p.X11Forwarding = true
		case "no-x11-forwarding":
			p.X11Forwarding = false
		case "pty":
			p.PTY = true
		case "no-pty":
			p.PTY = false
		case "user-rc":
			p.UserRC = true
		case "no-user-rc":
			p.UserRC = false
		case "command":
			p.Command, p.HasCommand = o.Value, true
		case "permitopen":
			p.PermitOpen = append(p.PermitOpen, splitOptionList(o.Value)...)
		case "permitlisten":
			p.PermitListen = append(p.PermitListen, splitOptionList(o.Value)...)
		case "environment":
			p.Environment = append(p.Environment, o.Value)
		case "tunnel":
			p.Tunnel = o.Value
		case "cert-authority":
			p.CertAuthority = true
		case "principals":
			p.Principals = o.Value
		case "no-touch-required":
			p.NoTouchRequired = true
		case "verify-required":
			p.VerifyRequired = true
		}
	}
	return p
}

func splitOptionList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Authorized key options sshd(8) documents. An option not listed makes
// the whole line invalid, as in sshd: silently ignoring a misspelt
// restriction would grant more than the file says.
var (
	keyFlagOptions = map[string]bool{
		"agent-forwarding": true, "cert-authority": true, "no-agent-forwarding": true,
		"no-port-forwarding": true, "no-pty": true, "no-user-rc": true,
		"no-x11-forwarding": true, "port-forwarding": true, "pty": true,
		"no-touch-required": true, "verify-required": true, "restrict": true,
		"user-rc": true, "x11-forwarding": true,
	}
	keyValueOptions = map[string]bool{
		"command": true, "environment": true, "expiry-time": true, "from": true,
		"permitlisten": true, "permitopen": true, "principals": true, "tunnel": true,
	}
	// keySingleOptions may appear at most once on a line.
	keySingleOptions = map[string]bool{
		"command": true, "expiry-time": true, "from": true, "principals": true, "tunnel": true,
	}
)

// parseKeyOptions parses the options field at the start of s and returns
// the rest of the line after it.
func parseKeyOptions(s string) ([]KeyOption, string, error) {
	var opts []KeyOption
	i := 0
	for {
		start := i
		for i < len(s) && !strings.ContainsRune(",= \t\"", rune(s[i])) {
			i++
		}
		if i == start {
			return nil, "", fmt.Errorf("empty option name at column %d", i+1)
		}
		o := KeyOption{Name: strings.ToLower(s[start:i])}
		if i < len(s) && s[i] == '=' {
			i++
			if i >= len(s) || s[i] != '"' {
				return nil, "", fmt.Errorf("value of option %s must be in double quotes", quoteShort(o.Name))
			}
			i++
			var v strings.Builder
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) && s[i+1] == '"' {
					v.WriteByte('"')
					i += 2
					continue
				}
				i++
				if c == '"' {
					closed = true
					break
				}
				v.WriteByte(c)
			}
			if !closed {
				return nil, "", fmt.Errorf("missing closing quote in option %s", quoteShort(o.Name))
			}
			o.Value, o.HasValue = v.String(), true
		}
		if err := checkKeyOption(o, opts); err != nil {
			return nil, "", err
		}
		opts = append(opts, o)
		if i >= len(s) {
			return nil, "", errors.New("options but no key")
		}
		switch s[i] {
		case ',':
			i++
		case ' ', '\t':
			return opts, s[i:], nil
		default:
			return nil, "", fmt.Errorf("unexpected %q after option %s", s[i], quoteShort(o.Name))
		}
	}
}

func checkKeyOption(o KeyOption, prev []KeyOption) error {
	switch {
	case keyFlagOptions[o.Name]:
		if o.HasValue {
			return fmt.Errorf("option %s takes no value", o.Name)
		}
		return nil
	case !keyValueOptions[o.Name]:
		return fmt.Errorf("unknown option %s", quoteShort(o.Name))
	case !o.HasValue:
		return fmt.Errorf("option %s needs a value", o.Name)
	}
	if keySingleOptions[o.Name] {
		for _, p := range prev {
			if p.Name == o.Name {
				return fmt.Errorf("multiple %s options", o.Name)
			}
		}
	}
	switch o.Name {
	case "from":
		return checkFromList(o.Value)
	case "expiry-time":
		_, err := parseExpiryTime(o.Value)
		return err
	case "environment":
		if i := strings.IndexByte(o.Value, '='); i <= 0 {
			return fmt.Errorf("environment %s is not NAME=value", quoteShort(o.Value))
		}
	case "permitopen", "permitlisten":
		if len(splitOptionList(o.Value)) == 0 {
			return fmt.Errorf("empty %s", o.Name)
		}
	case "tunnel":
		if o.Value != "any" {
			if _, err := strconv.ParseUint(o.Value, 10, 31); err != nil {
				return fmt.Errorf("invalid tunnel %s", quoteShort(o.Value))
			}
		}
	}
	return nil
}

// parseExpiryTime parses YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z]: local time,
// or UTC with the Z.
func parseExpiryTime(s string) (time.Time, error) {
	loc := time.Local
	v := s
	if strings.HasSuffix(v, "Z") || strings.HasSuffix(v, "z") {
		loc, v = time.UTC, v[:len(v)-1]
	}
	var layout string
	switch len(v) {
	case 8:
		layout = "20060102"
	case 12:
		layout = "200601021504"
	case 14:
		layout = "20060102150405"
	default:
		return time.Time{}, fmt.Errorf("invalid expiry-time %s", quoteShort(s))
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return time.Time{}, fmt.Errorf("invalid expiry-time %s", quoteShort(s))
		}
	}
	t, err := time.ParseInLocation(layout, v, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid expiry-time %s", quoteShort(s))
	}
	return t, nil
}

// checkFromList validates a from= pattern list: CIDR entries must be
// well formed with no bits set beyond the mask.
func checkFromList(list string) error {
	if strings.TrimSpace(list) == "" {
		return errors.New("empty from= pattern list")
	}
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimPrefix(strings.TrimSpace(p), "!")
		if p == "" {
			return fmt.Errorf("empty pattern in from=%s", quoteShort(list))
		}
		if strings.Contains(p, "/") {
			if _, err := parseCIDR(p); err != nil {
				return err
			}
		}
	}
	return nil
}

func parseCIDR(p string) (netip.Prefix, error) {
	pfx, err := netip.ParsePrefix(p)
	if err != nil || pfx.Addr().Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR %s in from=", quoteShort(p))
	}
	if pfx.Masked() != pfx {
		return netip.Prefix{}, fmt.Errorf("CIDR %s in from= has host bits set", quoteShort(p))
	}
	return pfx, nil
}

// ParseAuthorizedKeys parses an authorized_keys file. It returns every
// usable key, and an error joining one *ParseError per malformed line
// (for example "authorized_keys line 3: unknown option ..."), which a
// caller may log and otherwise ignore: malformed lines are skipped, as
// sshd skips them. Blank and # lines are ignored, as are keys of types
// that OpenSSH knows but this package does not implement (ssh-dss) and
// certificates (which authorize nothing as keys of their own: a
// cert-authority line trusts a CA); lines with options sshd does not know
// are rejected whole.
func ParseAuthorizedKeys(data []byte) ([]AuthorizedKey, error) {
	return parseAuthorizedKeys(data, "authorized_keys")
}

func parseAuthorizedKeys(data []byte, file string) ([]AuthorizedKey, error) {
	le := &lineErrors{file: file}
	var keys []AuthorizedKey
	forEachLine(data, le, func(n int, line string) bool {
		if len(keys) >= authorizedKeysMaxKeys {
			le.add(n, "more than %d keys; the rest of the file is ignored", authorizedKeysMaxKeys)
			return false
		}
		var opts []KeyOption
		if first, _ := nextField(line); !knownKeyType(first) {
			if !strings.ContainsAny(first, ",=\"") && !keyFlagOptions[strings.ToLower(first)] && !keyValueOptions[strings.ToLower(first)] {
				le.add(n, "unknown key type or option %s", quoteShort(first))
				return true
			}
			var err error
			opts, line, err = parseKeyOptions(line)
			if err != nil {
				le.add(n, "%v", err)
				return true
			}
		}
		k, comment, err := parseKeyFields(line)
		if err == errSkipKey {
			return true
		}
		if err != nil {
			le.add(n, "%v", err)
			return true
		}
		keys = append(keys, AuthorizedKey{Key: k, Options: opts, Comment: comment, Line: n})
		return true
	})
	return keys, le.err()
}

// LoadAuthorizedKeys reads and parses an authorized_keys file. Errors
// about single lines name the file; see ParseAuthorizedKeys.
func LoadAuthorizedKeys(path string) ([]AuthorizedKey, error) {
	data, err := readKeyFile(path, authorizedKeysMaxFile)
	if err != nil {
		return nil, err
	}
	return parseAuthorizedKeys(data, path)
}

// readKeyFile reads at most max bytes of a file, failing if it is longer.
func readKeyFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: file larger than %d bytes", path, max)
	}
	return data, nil
}

// Allows reports whether the key may be used now, from remoteAddr: it
// checks the from="pattern-list" options against the client's IP address
// (sshd with UseDNS=no, its default, matches from= patterns against the
// address only) and expiry-time. It returns nil if the key may be used.
func (k AuthorizedKey) Allows(remoteAddr net.Addr) error {
	for _, o := range k.Options {
		switch strings.ToLower(o.Name) {
		case "expiry-time":
			t, err := parseExpiryTime(o.Value)
			if err != nil {
				return err
			}
			if !time.Now().Before(t) {
				return fmt.Errorf("auth: key at line %d expired at %s", k.Line, t.Format(time.RFC3339))
			}
		case "from":
			ip, ok := addrIP(remoteAddr)
			if !ok {
				return fmt.Errorf("auth: key at line %d has from=%s but the client address is unknown", k.Line, quoteShort(o.Value))
			}
			ok, err := matchFromList(o.Value, ip)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("auth: key at line %d is not allowed from %s (from=%s)", k.Line, ip, quoteShort(o.Value))
			}
		}
	}
	return nil
}

// addrIP extracts the IP address of a network address.
func addrIP(a net.Addr) (netip.Addr, bool) {
	var ip net.IP
	switch a := a.(type) {
	case nil:
		return netip.Addr{}, false
	case *net.TCPAddr:
		if a == nil {
			return netip.Addr{}, false
		}
		ip = a.IP
	case *net.UDPAddr:
		if a == nil {
			return netip.Addr{}, false
		}
		ip = a.IP
	case *net.IPAddr:
		if a == nil {
			return netip.Addr{}, false
		}
		ip = a.IP
	default:
		s := a.String()
		if h, _, err := net.SplitHostPort(s); err == nil {
			s = h
		}
		addr, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Addr{}, false
		}
		return addr.WithZone("").Unmap(), true
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}

// matchFromList matches an address against a from= list: entries with a
// slash are CIDR blocks, others are wildcard patterns matched against the
// address's text form; a matching negated entry denies outright.
func matchFromList(list string, ip netip.Addr) (bool, error) {
	s := ip.String()
	matched := false
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		var m bool
		if strings.Contains(p, "/") {
			pfx, err := parseCIDR(p)
			if err != nil {
				return false, err
			}
			m = pfx.Contains(ip)
		} else {
			m = MatchPattern(strings.ToLower(p), s)
		}
		if m && neg {
			return false, nil
		}
		matched = matched || m
	}
	return matched, nil
}

// AuthorizedKeysCallback returns a function that finds key among keys by
// comparing wire blobs. It returns the matching line so the caller can
// apply its options (Allows, Permissions). Lines marked cert-authority
// are never matched: such a key may only sign certificates, as in sshd.
// The user argument is not consulted; keys are already one user's.
func AuthorizedKeysCallback(keys []AuthorizedKey) func(user string, key kex.PublicKey) (*AuthorizedKey, bool) {
	type entry struct {
		blob []byte
		key  AuthorizedKey
	}
	entries := make([]entry, 0, len(keys))
	for _, k := range keys {
		if k.Key == nil {
			continue
		}
		if _, ca := k.Option("cert-authority"); ca {
			continue
		}
		k.Options = append([]KeyOption(nil), k.Options...)
		entries = append(entries, entry{blob: k.Key.Marshal(), key: k})
	}
	return func(user string, key kex.PublicKey) (*AuthorizedKey, bool) {
		if key == nil {
			return nil, false
		}
		blob := key.Marshal()
		for i := range entries {
			if bytes.Equal(entries[i].blob, blob) {
				k := entries[i].key
				return &k, true
			}
		}
		return nil, false
	}
}

// MatchPattern reports whether s matches an OpenSSH wildcard pattern,
// where '*' matches any run of bytes (including none) and '?' matches one
// byte. Matching is case-sensitive; it takes time proportional to
// len(pattern)*len(s) at worst.
func MatchPattern(pattern, s string) bool {
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			starP, starI = p, i
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case starP >= 0:
			starI++
			p, i = starP+1, starI
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// MatchPatternList matches s against a comma-separated list of patterns,
// each optionally negated with a leading '!'. It is true if some pattern
// matches and no negated pattern does: a matching negated pattern makes
// the whole list fail. Matching is case-insensitive, as for host names in
// OpenSSH. Blanks around entries are ignored.
func MatchPatternList(list, s string) (matched bool) {
	s = strings.ToLower(s)
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		if MatchPattern(strings.ToLower(p), s) {
			if neg {
				return false
			}
			matched = true
		}
	}
	return matched
}

// AuthorizedKeysFile authorizes public keys with an authorized_keys
// file that it re-reads at every login, as sshd does, and it honours the
// options of the line that lists the key: a key past its expiry-time, or
// used from an address its from= does not admit, is refused; the other
// options are recorded in the Permissions (KeyOptions, and ForceCommand
// for command=) for the server to apply, and Check may refuse what the
// server cannot honour. A key listed on several lines is admitted by the
// first line that admits it, as in sshd.
//
// A user certificate is admitted by a cert-authority line whose key signed
// it, as in sshd: the line's expiry-time and from= hold, the certificate
// is valid (kex.CheckCertificate: signature, type, validity window,
// critical options), its source-address admits the client, and it lists
// the user name among its principals, or, if the line has principals="a,b",
// one of those names (each compared whole: a certificate principal "a,b"
// matches neither). The line's options and the certificate's are merged
// as sshd merges them: a flag (pty, port forwarding...) is granted only
// if both grant it, verify-required if either asks, and a forced command
// on both must be the same.
type AuthorizedKeysFile struct {
	// Path is the file's name.
	Path string
	// Check, if set, is called with a line that lists the key once its
	// expiry-time and from= passed; an error refuses the line. (rsftp
	// serve, which offers only SFTP, refuses a forced command other
	// than the SFTP server's.) For a certificate the line is the CA's,
	// with the certificate's force-command as its command= if the line
	// has none.
	Check func(k *AuthorizedKey) error
	// CASignatureAlgorithms are the algorithms a CA's signature on a
	// certificate may use; nil means kex.DefaultCASignatureAlgorithms.
	CASignatureAlgorithms []string
	// Now returns the time certificates are checked at; nil means
	// time.Now.
	Now func() time.Time
}

func (f *AuthorizedKeysFile) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// Authorize is a ServerConfig.PublicKeyConnCallback. Its Permissions
// carry the key's fingerprint as Identity (for a certificate, its key's),
// and a Recheck that looks the key up again: it fails once the file no
// longer lists the key (or its CA), once the key has expired, or if its
// from= does not admit the new address; for a certificate also once it
// has expired or its source-address does not admit the new address.
func (f *AuthorizedKeysFile) Authorize(c ConnMetadata, key kex.PublicKey) (*Permissions, error) {
	if key == nil {
		return nil, errors.New("auth: no key")
	}
	if cert, ok := key.(*kex.Certificate); ok {
		p, err := f.lookupCert(c.User, cert, c.RemoteAddr)
		if err != nil {
			return nil, err
		}
		p.Recheck = func(remote net.Addr) error {
			_, err := f.lookupCert(c.User, cert, remote)
			return err
		}
		return p, nil
	}
	ak, err := f.lookup(key, c.RemoteAddr)
	if err != nil {
		return nil, err
	}
	kp := ak.Permissions()
	p := &Permissions{KeyComment: ak.Comment, KeyOptions: &kp, Identity: kex.FingerprintSHA256(key)}
	if kp.HasCommand {
		p.ForceCommand = kp.Command
	}
	p.Recheck = func(remote net.Addr) error {
		_, err := f.lookup(key, remote)
		return err
	}
	return p, nil
}

// lookup reads the file and returns the first line that lists key and
// admits it now from remote, or why none does.
func (f *AuthorizedKeysFile) lookup(key kex.PublicKey, remote net.Addr) (*AuthorizedKey, error) {
	keys, err := LoadAuthorizedKeys(f.Path)
	if len(keys) == 0 && err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	blob := key.Marshal()
	var refusal error
	for i := range keys {
		k := &keys[i]
		if k.Key == nil || !bytes.Equal(k.Key.Marshal(), blob) {
			continue
		}
		if _, ca := k.Option("cert-authority"); ca {
			continue
		}
		err := k.Allows(remote)
		if err == nil && f.Check != nil {
			if err = f.Check(k); err != nil {
				err = fmt.Errorf("auth: key at line %d: %w", k.Line, err)
			}
		}
		if err == nil {
			return k, nil
		}
		if refusal == nil {
			refusal = fmt.Errorf("%s: %w", f.Path, err)
		}
	}
	if refusal != nil {
		return nil, refusal
	}
	return nil, fmt.Errorf("auth: key %s is not in %s", kex.FingerprintSHA256(key), f.Path)
}

// lookupCert reads the file and returns the Permissions of the first
// cert-authority line whose key signed cert and that admits it for user,
// now, from remote; or why none does.
func (f *AuthorizedKeysFile) lookupCert(user string, cert *kex.Certificate, remote net.Addr) (*Permissions, error) {
	keys, err := LoadAuthorizedKeys(f.Path)
	if len(keys) == 0 && err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if cert.SignatureKey == nil {
		return nil, errors.New("auth: certificate without a CA key")
	}
	ca := cert.SignatureKey.Marshal()
	var refusal error
	for i := range keys {
		k := &keys[i]
		if _, isCA := k.Option("cert-authority"); !isCA || k.Key == nil || !bytes.Equal(k.Key.Marshal(), ca) {
			continue
		}
		p, err := f.admitCert(k, user, cert, remote)
		if err == nil {
			return p, nil
		}
		if refusal == nil {
			refusal = fmt.Errorf("%s: CA key at line %d: %w", f.Path, k.Line, err)
		}
	}
	if refusal != nil {
		return nil, refusal
	}
	return nil, fmt.Errorf("auth: certificate ID %s: its CA %s is not a cert-authority in %s",
		quoteShort(cert.KeyID), kex.FingerprintSHA256(cert.SignatureKey), f.Path)
}

// admitCert decides one cert-authority line for cert, as sshd's
// auth_check_authkey_line.
func (f *AuthorizedKeysFile) admitCert(k *AuthorizedKey, user string, cert *kex.Certificate, remote net.Addr) (*Permissions, error) {
	if err := k.Allows(remote); err != nil {
		return nil, err
	}
	principal := user
	if list, ok := k.Option("principals"); ok {
		principal = "" // the list decides, not the user name
		if !matchPrincipalsOption(list, cert.ValidPrincipals) {
			return nil, fmt.Errorf("certificate ID %s lists none of principals=%s", quoteShort(cert.KeyID), quoteShort(list))
		}
	}
	if err := kex.CheckCertificate(cert, kex.CertCheck{Type: kex.UserCert, Principal: principal, Now: f.now(),
		CASignatureAlgorithms: f.CASignatureAlgorithms}); err != nil {
		return nil, err
	}
	certKP, err := certKeyPermissions(cert, remote)
	if err != nil {
		return nil, err
	}
	kp, err := mergeKeyPermissions(k.Permissions(), certKP)
	if err != nil {
		return nil, err
	}
	if f.Check != nil {
		eff := *k
		eff.Options = append([]KeyOption(nil), k.Options...)
		if _, has := k.Option("command"); !has && certKP.HasCommand {
			eff.Options = append(eff.Options, KeyOption{Name: "command", Value: certKP.Command, HasValue: true})
		}
		if err := f.Check(&eff); err != nil {
			return nil, err
		}
	}
	p := &Permissions{KeyComment: k.Comment, KeyOptions: &kp, Identity: kex.FingerprintSHA256(cert.Key), Certificate: cert}
	if kp.HasCommand {
		p.ForceCommand = kp.Command
	}
	return p, nil
}

// matchPrincipalsOption reports whether a principals="..." list names one
// of the certificate's principals. Each entry is compared whole with each
// principal, so a principal holding a comma ("alice,root") can never match
// (CVE-2026-35414: OpenSSH before 10.3 split the certificate's principal
// as a list too). As sshd, an empty entry ends the list.
func matchPrincipalsOption(list string, principals []string) bool {
	for _, entry := range strings.Split(list, ",") {
		if entry == "" {
			return false
		}
		for _, p := range principals {
			if p == entry {
				return true
			}
		}
	}
	return false
}

// certKeyPermissions reads a user certificate's options as
// KeyPermissions and checks its source-address against remote.
func certKeyPermissions(cert *kex.Certificate, remote net.Addr) (KeyPermissions, error) {
	cp, err := cert.Permissions()
	if err != nil {
		return KeyPermissions{}, err
	}
	if cp.SourceAddress != "" {
		ip, ok := addrIP(remote)
		if !ok {
			return KeyPermissions{}, fmt.Errorf("certificate ID %s has source-address %s but the client address is unknown", quoteShort(cert.KeyID), quoteShort(cp.SourceAddress))
		}
		ok, err := kex.SourceAddressAllows(cp.SourceAddress, ip)
		if err != nil {
			return KeyPermissions{}, err
		}
		if !ok {
			return KeyPermissions{}, fmt.Errorf("certificate ID %s is not allowed from %s (source-address %s)", quoteShort(cert.KeyID), ip, quoteShort(cp.SourceAddress))
		}
	}
	return KeyPermissions{
		PortForwarding:  cp.PermitPortForwarding,
		AgentForwarding: cp.PermitAgentForwarding,
		X11Forwarding:   cp.PermitX11Forwarding,
		PTY:             cp.PermitPTY,
		UserRC:          cp.PermitUserRC,
		Command:         cp.ForceCommand,
		HasCommand:      cp.HasForceCommand,
		NoTouchRequired: cp.NoTouchRequired,
		VerifyRequired:  cp.VerifyRequired,
	}, nil
}

// mergeKeyPermissions combines the options of a line (authorized_keys or
// authorized principals: primary) with a certificate's, as sshd's
// sshauthopt_merge: flags that grant must be granted by both,
// verify-required by either; lists (permitopen, permitlisten,
// environment) and tunnel come from the line; a forced command given by
// both must be the same. cert-authority and principals do not carry over.
func mergeKeyPermissions(primary, cert KeyPermissions) (KeyPermissions, error) {
	m := primary
	m.PortForwarding = primary.PortForwarding && cert.PortForwarding
	m.AgentForwarding = primary.AgentForwarding && cert.AgentForwarding
	m.X11Forwarding = primary.X11Forwarding && cert.X11Forwarding
	m.PTY = primary.PTY && cert.PTY
	m.UserRC = primary.UserRC && cert.UserRC
	m.NoTouchRequired = primary.NoTouchRequired && cert.NoTouchRequired
	m.VerifyRequired = primary.VerifyRequired || cert.VerifyRequired
	m.CertAuthority, m.Principals = false, ""
	switch {
	case primary.HasCommand && cert.HasCommand:
		if primary.Command != cert.Command {
			return KeyPermissions{}, fmt.Errorf("forced command options do not match (%s, certificate %s)", quoteShort(primary.Command), quoteShort(cert.Command))
		}
	case cert.HasCommand:
		m.Command, m.HasCommand = cert.Command, true
	}
	return m, nil
}

// AuthorizedPrincipal is one line of an authorized principals file
// (sshd's AuthorizedPrincipalsFile): a principal name, after options as
// authorized_keys has them.
type AuthorizedPrincipal struct {
	Principal string
	Options   []KeyOption
	Line      int
}

// Permissions evaluates the line's options, as AuthorizedKey.Permissions.
func (p AuthorizedPrincipal) Permissions() KeyPermissions {
	return AuthorizedKey{Options: p.Options}.Permissions()
}

// Allows checks the line's expiry-time and from= for remote, and refuses
// cert-authority and principals=, which mean nothing here (sshd denies
// such a line).
func (p AuthorizedPrincipal) Allows(remote net.Addr) error {
	k := AuthorizedKey{Options: p.Options, Line: p.Line}
	if _, ok := k.Option("cert-authority"); ok {
		return fmt.Errorf("auth: principal at line %d: cert-authority is not valid in a principals file", p.Line)
	}
	if _, ok := k.Option("principals"); ok {
		return fmt.Errorf("auth: principal at line %d: principals= is not valid in a principals file", p.Line)
	}
	return k.Allows(remote)
}

// ParseAuthorizedPrincipals parses an authorized principals file: one
// principal a line, optionally after options (`command="internal-sftp"
// alice`); blank and # lines are ignored. Malformed lines are skipped and
// reported in the error, as ParseAuthorizedKeys does.
func ParseAuthorizedPrincipals(data []byte) ([]AuthorizedPrincipal, error) {
	return parseAuthorizedPrincipals(data, "authorized_principals")
}

func parseAuthorizedPrincipals(data []byte, file string) ([]AuthorizedPrincipal, error) {
	le := &lineErrors{file: file}
	var out []AuthorizedPrincipal
	forEachLine(data, le, func(n int, line string) bool {
		if len(out) >= authorizedKeysMaxKeys {
			le.add(n, "more than %d principals; the rest of the file is ignored", authorizedKeysMaxKeys)
			return false
		}
		line = strings.TrimRight(line, " \t")
		p := AuthorizedPrincipal{Line: n, Principal: line}
		if strings.ContainsAny(line, " \t") {
			opts, rest, err := parseKeyOptions(line)
			if err != nil {
				le.add(n, "%v", err)
				return true
			}
			name := strings.TrimLeft(rest, " \t")
			if name == "" || strings.ContainsAny(name, " \t") {
				le.add(n, "want options and one principal, got %s", quoteShort(line))
				return true
			}
			p.Options, p.Principal = opts, name
		}
		out = append(out, p)
		return true
	})
	return out, le.err()
}

// LoadAuthorizedPrincipals reads and parses an authorized principals file.
func LoadAuthorizedPrincipals(path string) ([]AuthorizedPrincipal, error) {
	data, err := readKeyFile(path, authorizedKeysMaxFile)
	if err != nil {
		return nil, err
	}
	return parseAuthorizedPrincipals(data, path)
}

// revokedKeysMaxFile bounds a revoked keys file (a KRL of a large CA's
// serials is bigger than any authorized_keys).
const revokedKeysMaxFile = 64 << 20

// ErrKeyRevoked is the error RevokedKeysFile returns for a revoked key.
var ErrKeyRevoked = errors.New("auth: key revoked")

// RevokedKeysFile returns a ServerConfig.RevokedKeys check that reads path
// at each call, as sshd's RevokedKeys: an OpenSSH KRL (ssh-keygen -k;
// kex.ParseKRL) or a list of public keys, one a line. A certificate is
// revoked if the KRL revokes it (by serial, key ID, its key or its CA
// key), or if the list names its key or its CA key. A file that cannot be
// read, or a KRL that does not parse, revokes every key, as sshd then
// refuses every public key.
func RevokedKeysFile(path string) func(key kex.PublicKey) error {
	return func(key kex.PublicKey) error {
		data, err := readKeyFile(path, revokedKeysMaxFile)
		if err != nil {
			return fmt.Errorf("auth: revoked keys file unreadable, refusing every key: %w", err)
		}
		krl, err := kex.ParseKRL(data)
		switch {
		case err == nil:
			if krl.IsRevoked(key) {
				return fmt.Errorf("%w: %s by the KRL %s", ErrKeyRevoked, revokedWhat(key), path)
			}
			return nil
		case !errors.Is(err, kex.ErrNotKRL):
			return fmt.Errorf("auth: revoked keys file %s, refusing every key: %w", path, err)
		}
		keys, _ := parseAuthorizedKeys(data, path) // malformed lines are skipped, as sshd skips them
		check := []kex.PublicKey{key}
		if c, ok := key.(*kex.Certificate); ok {
			check = []kex.PublicKey{c.Key, c.SignatureKey}
		}
		for _, k := range keys {
			for _, c := range check {
				if c != nil && bytes.Equal(k.Key.Marshal(), c.Marshal()) {
					return fmt.Errorf("%w: %s listed in %s (line %d)", ErrKeyRevoked, revokedWhat(c), path, k.Line)
				}
			}
		}
		return nil
	}
}

func revokedWhat(k kex.PublicKey) string {
	if c, ok := k.(*kex.Certificate); ok {
		return fmt.Sprintf("certificate ID %s (serial %d, key %s)", quoteShort(c.KeyID), c.Serial, kex.FingerprintSHA256(c.Key))
	}
	return "key " + kex.FingerprintSHA256(k)
}
