package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rsftp/rsftp/auth"
)

// sshKeywords are the client keywords OpenSSH's ssh_config(5) knows
// (9.x), lowercased. A keyword here that rsftp does not implement draws a
// warning; one not here is an error, as in ssh.
var sshKeywords = map[string]bool{}

func init() {
	for _, k := range strings.Fields(`
addkeystoagent addressfamily batchmode bindaddress bindinterface
canonicaldomains canonicalizefallbacklocal canonicalizehostname
canonicalizemaxdots canonicalizepermittedcnames casignaturealgorithms
certificatefile challengeresponseauthentication channeltimeout checkhostip
ciphers clearallforwardings compression connectionattempts connecttimeout
controlmaster controlpath controlpersist dynamicforward
enableescapecommandline enablesshkeysign escapechar exitonforwardfailure
fingerprinthash forkafterauthentication forwardagent forwardx11
forwardx11timeout forwardx11trusted gatewayports globalknownhostsfile
gssapiauthentication gssapidelegatecredentials hashknownhosts host
hostbasedacceptedalgorithms hostbasedauthentication hostkeyalgorithms
hostkeyalias hostname identitiesonly identityagent identityfile
ignoreunknown include ipqos kbdinteractiveauthentication
kbdinteractivedevices kexalgorithms knownhostscommand localcommand
localforward loglevel logverbose macs match nohostauthenticationforlocalhost
numberofpasswordprompts obscurekeystroketiming passwordauthentication
permitlocalcommand permitremoteopen pkcs11provider port
preferredauthentications proxycommand proxyjump proxyusefdpass
pubkeyacceptedalgorithms pubkeyacceptedkeytypes pubkeyauthentication
rekeylimit remotecommand remoteforward requesttty requiredrsasize
revokedhostkeys securitykeyprovider sendenv serveralivecountmax
serveraliveinterval sessiontype setenv stdinnull streamlocalbindmask
streamlocalbindunlink stricthostkeychecking syslogfacility tag tcpkeepalive
tunnel tunneldevice updatehostkeys user userknownhostsfile verifyhostkeydns
visualhostkey xauthlocation`) {
		sshKeywords[k] = true
	}
}

// implemented are the keywords rsftp acts on.
var implemented = map[string]bool{
	"host": true, "match": true, "hostname": true, "user": true, "port": true,
	"identityfile": true, "identitiesonly": true, "identityagent": true,
	"stricthostkeychecking": true, "userknownhostsfile": true,
	"globalknownhostsfile": true, "hashknownhosts": true, "ciphers": true,
	"macs": true, "kexalgorithms": true, "hostkeyalgorithms": true,
	"connecttimeout": true, "serveraliveinterval": true,
	"serveralivecountmax": true, "batchmode": true, "loglevel": true,
	"passwordauthentication": true, "pubkeyauthentication": true,
	"numberofpasswordprompts": true, "ignoreunknown": true,
}

// multi are keywords whose every occurrence counts (the others: first
// one wins).
var multi = map[string]bool{"identityfile": true}

// sshConfig holds the effective options for one destination, OpenSSH's
// way: the first value seen for a keyword wins, command-line -o options
// are seen before any file.
type sshConfig struct {
	vals     map[string][]string
	warnings []string
	debug    []string
}

func newSSHConfig() *sshConfig { return &sshConfig{vals: map[string][]string{}} }

// get returns the first value of keyword k.
func (c *sshConfig) get(k string) (string, bool) {
	v, ok := c.vals[k]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

func (c *sshConfig) getDefault(k, def string) string {
	if v, ok := c.get(k); ok {
		return v
	}
	return def
}

func (c *sshConfig) all(k string) []string { return c.vals[k] }

// set records a keyword unless it is already set (or appends for multi
// keywords). where names the source for messages.
func (c *sshConfig) set(where, key string, args []string) error {
	k := strings.ToLower(key)
	if !sshKeywords[k] {
		if ign, ok := c.get("ignoreunknown"); ok && auth.MatchPatternList(ign, k) {
			return nil
		}
		return fmt.Errorf("%s: Bad configuration option: %s", where, k)
	}
	if len(args) == 0 {
		return fmt.Errorf("%s: missing argument for %s", where, key)
	}
	if !implemented[k] {
		if err := refuse(k, args); err != nil {
			return fmt.Errorf("%s: %s: %w", where, key, err)
		}
		msg := fmt.Sprintf("%s: %s is not supported by rsftp; ignored", where, key)
		if strings.HasPrefix(where, "/etc/") {
			// The system-wide file is not the user's choice:
			// mention it only when debugging.
			c.debug = append(c.debug, msg)
		} else {
			c.warnings = append(c.warnings, msg)
		}
		return nil
	}
	if err := validate(k, args); err != nil {
		return fmt.Errorf("%s: %s: %w", where, key, err)
	}
	val := strings.Join(args, " ")
	if multi[k] {
		c.vals[k] = append(c.vals[k], val)
		return nil
	}
	if _, ok := c.vals[k]; !ok {
		c.vals[k] = []string{val}
	}
	return nil
}

// refuse returns an error for a keyword rsftp does not implement whose
// omission would make the connection less safe than the configuration
// asks, or send it elsewhere: a ProxyJump ignored connects directly,
// bypassing the bastion; RevokedHostKeys ignored accepts a revoked key.
// Such keywords are errors, not warnings; "none" (and the values that
// ask for nothing) are accepted.
func refuse(k string, args []string) error {
	v := strings.ToLower(args[0])
	switch k {
	case "proxyjump", "proxycommand", "revokedhostkeys", "knownhostscommand", "hostkeyalias",
		"bindaddress", "bindinterface":
		if v == "none" && k != "hostkeyalias" && k != "bindaddress" && k != "bindinterface" {
			return nil
		}
	case "canonicalizehostname":
		if v == "no" || v == "false" {
			return nil
		}
	case "proxyusefdpass":
		if v == "no" || v == "false" {
			return nil
		}
	case "requiredrsasize":
		// rsftp refuses RSA keys under 1024 bits, OpenSSH's default.
		if n, err := strconv.Atoi(args[0]); err == nil && n <= 1024 {
			return nil
		}
	default:
		return nil
	}
	return errors.New("not supported by rsftp, and ignoring it would change how or where the connection is made; remove it, or use ssh")
}

func validate(k string, args []string) error {
	switch k {
	case "port", "connecttimeout", "serveraliveinterval", "serveralivecountmax", "numberofpasswordprompts",
		"stricthostkeychecking", "batchmode", "identitiesonly", "hashknownhosts",
		"passwordauthentication", "pubkeyauthentication", "loglevel":
		// One value only, as in ssh: the value stored is all the
		// arguments joined, which would no longer parse ("Port 22 23").
		if len(args) > 1 {
			return fmt.Errorf("garbage at end of line: %q", strings.Join(args[1:], " "))
		}
	}
	switch k {
	case "port":
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("invalid port %q", args[0])
		}
	case "connecttimeout", "serveraliveinterval", "serveralivecountmax", "numberofpasswordprompts":
		if args[0] == "none" && k == "connecttimeout" {
			return nil
		}
		if n, err := strconv.Atoi(args[0]); err != nil || n < 0 {
			return fmt.Errorf("invalid number %q", args[0])
		}
	case "stricthostkeychecking":
		if _, err := auth.ParseStrictMode(args[0]); err != nil {
			return err
		}
	case "batchmode", "identitiesonly", "hashknownhosts", "passwordauthentication", "pubkeyauthentication":
		switch strings.ToLower(args[0]) {
		case "yes", "no", "true", "false":
		default:
			return fmt.Errorf("expected yes or no, got %q", args[0])
		}
	case "loglevel":
		switch strings.ToUpper(args[0]) {
		case "QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3":
		default:
			return fmt.Errorf("unsupported log level %q", args[0])
		}
	}
	return nil
}

func yes(v string) bool {
	v = strings.ToLower(v)
	return v == "yes" || v == "true"
}

// parseOption parses one -o argument ("Key=Value" or "Key Value").
func (c *sshConfig) parseOption(opt string) error {
	k, args, err := splitConfigLine(opt)
	if err != nil {
		return fmt.Errorf("command-line: %w", err)
	}
	if k == "" {
		return fmt.Errorf("command-line: empty option")
	}
	if lk := strings.ToLower(k); lk == "host" || lk == "match" || lk == "include" {
		return fmt.Errorf("command-line: %s is not allowed in -o", k)
	}
	return c.set("command-line", k, args)
}

// splitConfigLine splits a config line into keyword and arguments.
// "Key=Value" and "Key Value" are both accepted; arguments may be
// double-quoted.
func splitConfigLine(line string) (string, []string, error) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return "", nil, nil
	}
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return line, nil, nil
	}
	key := line[:i]
	rest := strings.TrimLeft(line[i:], " \t")
	if strings.HasPrefix(rest, "=") {
		rest = strings.TrimLeft(rest[1:], " \t")
	}
	var args []string
	for rest != "" {
		var arg string
		if rest[0] == '"' {
			j := strings.IndexByte(rest[1:], '"')
			if j < 0 {
				return "", nil, fmt.Errorf("unterminated quote")
			}
			arg, rest = rest[1:1+j], rest[2+j:]
		} else {
			j := strings.IndexAny(rest, " \t")
			if j < 0 {
				j = len(rest)
			}
			arg, rest = rest[:j], rest[j:]
		}
		if strings.HasPrefix(arg, "#") {
			break
		}
		args = append(args, arg)
		rest = strings.TrimLeft(rest, " \t")
	}
	return key, args, nil
}

// hostMatches applies a Host line's patterns to the destination alias:
// any positive match, and no negated match.
func hostMatches(patterns []string, host string) bool {
	matched := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		if auth.MatchPattern(strings.ToLower(p), strings.ToLower(host)) {
			if neg {
				return false
			}
			matched = true
		}
	}
	return matched
}

// readFile applies a config file's blocks that match host. A missing
// file is fine unless required (given with -F).
func (c *sshConfig) readFile(path, host string, required bool, depth int) error {
	data, err := os.ReadFile(path)
	if err != nil {
		if !required && os.IsNotExist(err) {
			return nil
		}
		return err
	}
	if depth > 8 {
		return fmt.Errorf("%s: Include nested too deeply", path)
	}
	active := true // lines before the first Host apply to all
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for n := 1; sc.Scan(); n++ {
		where := fmt.Sprintf("%s line %d", path, n)
		k, args, err := splitConfigLine(sc.Text())
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if k == "" {
			continue
		}
		switch strings.ToLower(k) {
		case "host":
			active = hostMatches(args, host)
			continue
		case "match":
			// Only "Match all" is understood. Ignoring another
			// Match block could skip a ProxyJump or host key
			// setting meant for this host: refused.
			if len(args) != 1 || !strings.EqualFold(args[0], "all") {
				return fmt.Errorf("%s: Match %s is not supported by rsftp (only Match all)", where, strings.Join(args, " "))
			}
			active = true
			continue
		case "include":
			if !active {
				continue
			}
			for _, a := range args {
				p := expandHome(a)
				if !filepath.IsAbs(p) {
					p = filepath.Join(filepath.Dir(path), p)
				}
				files, _ := filepath.Glob(p)
				for _, f := range files {
					if err := c.readFile(f, host, false, depth+1); err != nil {
						return err
					}
				}
			}
			continue
		}
		if !active {
			// Still reject misspelt keywords anywhere, as ssh does.
			if !sshKeywords[strings.ToLower(k)] {
				if ign, ok := c.get("ignoreunknown"); !ok || !auth.MatchPatternList(ign, strings.ToLower(k)) {
					return fmt.Errorf("%s: Bad configuration option: %s", where, strings.ToLower(k))
				}
			}
			continue
		}
		if err := c.set(where, k, args); err != nil {
			return err
		}
	}
	return sc.Err()
}

func homeDir() string {
	h, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return h
}

func expandHome(p string) string {
	if p == "~" {
		return homeDir()
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(homeDir(), p[2:])
	}
	return p
}

// expandTokens expands the ssh_config tokens rsftp knows (%% %d %h %u
// %p %r) and a leading ~.
func expandTokens(s, host, remoteUser string, port int) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case '%':
			b.WriteByte('%')
		case 'd':
			b.WriteString(homeDir())
		case 'h':
			b.WriteString(host)
		case 'p':
			b.WriteString(strconv.Itoa(port))
		case 'r':
			b.WriteString(remoteUser)
		case 'u':
			b.WriteString(localUser())
		default:
			b.WriteByte('%')
			b.WriteByte(s[i])
		}
	}
	return expandHome(b.String())
}

func localUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}
