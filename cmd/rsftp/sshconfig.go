package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rsftp/rsftp/auth"
)

// sshKeywords are the client keywords OpenSSH's ssh_config(5) knows
// (9.x), lowercased. A keyword here that rsftp does not implement draws a
// warning (or an error, see refuse); one not here is an error, as in ssh.
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
	"host": true, "match": true, "include": true, "hostname": true, "user": true, "port": true,
	"identityfile": true, "identitiesonly": true, "identityagent": true,
	"stricthostkeychecking": true, "userknownhostsfile": true,
	"globalknownhostsfile": true, "hashknownhosts": true, "ciphers": true,
	"macs": true, "kexalgorithms": true, "hostkeyalgorithms": true,
	"connecttimeout": true, "serveraliveinterval": true,
	"serveralivecountmax": true, "batchmode": true, "loglevel": true,
	"passwordauthentication": true, "pubkeyauthentication": true,
	"numberofpasswordprompts": true, "ignoreunknown": true,
	"preferredauthentications": true, "kbdinteractiveauthentication": true, "challengeresponseauthentication": true,
	"proxyjump": true, "proxycommand": true, "proxyusefdpass": true,
	"hostkeyalias": true, "tag": true, "addressfamily": true, "bindaddress": true,
	"canonicalizehostname": true, "canonicaldomains": true, "canonicalizemaxdots": true,
	"canonicalizefallbacklocal": true, "canonicalizepermittedcnames": true,
	"requiredrsasize": true, "pubkeyacceptedalgorithms": true, "pubkeyacceptedkeytypes": true,
	"certificatefile": true, "revokedhostkeys": true, "casignaturealgorithms": true,
	// rsftp ssh's (ssh.go); the file commands have no use for them, as
	// OpenSSH's sftp and scp clear forwardings and ask for no terminal.
	"localforward": true, "remoteforward": true, "dynamicforward": true,
	"clearallforwardings": true, "exitonforwardfailure": true, "gatewayports": true,
	"forwardagent": true, "requesttty": true, "sessiontype": true, "stdinnull": true,
	"remotecommand": true, "escapechar": true, "sendenv": true, "setenv": true,
}

// multi are keywords whose every occurrence counts (the others: first
// one wins).
var multi = map[string]bool{"identityfile": true, "certificatefile": true,
	"localforward": true, "remoteforward": true, "dynamicforward": true, "sendenv": true}

// fileList are keywords whose arguments are each a file name: their value
// is the list (the first line that sets them wins, as for the others).
// SetEnv's NAME=VALUE words are kept the same way.
var fileList = map[string]bool{"userknownhostsfile": true, "globalknownhostsfile": true, "revokedhostkeys": true,
	"setenv": true}

// rawValue are keywords whose value is the rest of the line as written
// (quotes and all), as ssh keeps commands.
var rawValue = map[string]bool{"proxycommand": true, "proxyjump": true, "localcommand": true,
	"remotecommand": true, "knownhostscommand": true}

// sshConfig holds the effective options for one destination, OpenSSH's
// way: the first value seen for a keyword wins, command-line -o options
// are seen before any file.
type sshConfig struct {
	vals     map[string][]string
	warnings []string
	debug    []string
	said     map[string]bool // messages already recorded (a final pass repeats lines)
}

func newSSHConfig() *sshConfig {
	return &sshConfig{vals: map[string][]string{}, said: map[string]bool{}}
}

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

func (c *sshConfig) warn(msg string, systemWide bool) {
	if c.said[msg] {
		return
	}
	c.said[msg] = true
	if systemWide {
		// The system-wide file is not the user's choice: mention it
		// only when debugging.
		c.debug = append(c.debug, msg)
	} else {
		c.warnings = append(c.warnings, msg)
	}
}

// set records a keyword unless it is already set (or appends for multi
// keywords). where names the source for messages; args are the line's
// words, raw the rest of the line after the keyword as written.
func (c *sshConfig) set(where, key string, args []string, raw string) error {
	k := strings.ToLower(key)
	if !sshKeywords[k] && !rsftpKeywords[k] { // rsftp's own: helper_client.go
		if ign, ok := c.get("ignoreunknown"); ok && auth.MatchPatternList(ign, k) {
			return nil
		}
		return fmt.Errorf("%s: Bad configuration option: %s", where, k)
	}
	if k == "challengeresponseauthentication" {
		k = "kbdinteractiveauthentication" // its old name, as in ssh
	}
	if len(args) == 0 {
		return fmt.Errorf("%s: missing argument for %s", where, key)
	}
	if err := refuse(k, args); err != nil {
		return fmt.Errorf("%s: %s: %w", where, key, err)
	}
	if !implemented[k] {
		c.warn(fmt.Sprintf("%s: %s is not supported by rsftp; ignored", where, key), strings.HasPrefix(where, auth.SystemSSHDir()+string(filepath.Separator)))
		return nil
	}
	if err := validate(k, args); err != nil {
		return fmt.Errorf("%s: %s: %w", where, key, err)
	}
	if fileList[k] {
		// Each argument is a file, as written (a quoted one may hold
		// blanks): kept apart, never joined and split again.
		if _, ok := c.vals[k]; !ok {
			c.vals[k] = append([]string(nil), args...)
		}
		return nil
	}
	val := strings.Join(args, " ")
	if rawValue[k] {
		val = raw
	}
	switch k {
	case "proxyjump":
		// ssh's parse_jump: the rest of the line to a '#'; a
		// ProxyJump sets ProxyCommand to none, and neither applies
		// once the other is set ("none" included).
		if i := strings.IndexByte(val, '#'); i >= 0 {
			val = val[:i]
		}
		val = strings.TrimRight(val, " \t")
		if !strings.EqualFold(val, "none") {
			if _, err := parseJumpList(val, false); err != nil {
				return fmt.Errorf("%s: invalid ProxyJump %q: %w", where, val, err)
			}
			if _, ok := c.vals["proxycommand"]; ok {
				return nil
			}
		}
		if _, ok := c.vals["proxyjump"]; !ok {
			c.vals[k] = []string{val}
		}
		return nil
	case "proxycommand":
		if j, ok := c.get("proxyjump"); ok && !strings.EqualFold(j, "none") {
			return nil
		}
	case "identityfile", "certificatefile":
		for _, v := range c.vals[k] {
			if v == val {
				return nil // ssh's add_identity_file drops repeats, as add_certificate_file
			}
		}
	}
	if k == "sendenv" {
		// Each pattern counts on its own, and a "-pattern" takes back
		// those before it (applied in order: sendEnvNames).
		c.vals[k] = append(c.vals[k], args...)
		return nil
	}
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
// asks, or send it elsewhere: a KnownHostsCommand ignored lets
// StrictHostKeyChecking=accept-new take a key the command would have
// refused. Such keywords are errors, not warnings; "none" (and the values
// that ask for nothing) pass.
func refuse(k string, args []string) error {
	v := strings.ToLower(args[0])
	switch k {
	case "knownhostscommand":
		if v == "none" {
			return nil
		}
	case "bindinterface":
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
		"passwordauthentication", "pubkeyauthentication", "loglevel", "hostname", "user",
		"hostkeyalias", "tag", "addressfamily", "bindaddress", "canonicalizehostname",
		"canonicalizemaxdots", "canonicalizefallbacklocal", "proxyusefdpass", "certificatefile", "casignaturealgorithms":
		// One value only, as in ssh: the value stored is all the
		// arguments joined, which would no longer parse ("Port 22 23").
		if len(args) > 1 {
			return fmt.Errorf("garbage at end of line: %q", strings.Join(args[1:], " "))
		}
	}
	switch k {
	case resumeHelperKeyword:
		return validateResumeHelper(args)
	case "port":
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("invalid port %q", args[0])
		}
	case "connecttimeout", "serveraliveinterval", "serveralivecountmax", "numberofpasswordprompts", "canonicalizemaxdots":
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
	case "batchmode", "identitiesonly", "hashknownhosts", "passwordauthentication", "pubkeyauthentication",
		"canonicalizefallbacklocal", "proxyusefdpass":
		switch strings.ToLower(args[0]) {
		case "yes", "no", "true", "false":
		default:
			return fmt.Errorf("expected yes or no, got %q", args[0])
		}
	case "kbdinteractiveauthentication", "preferredauthentications":
		if len(args) > 1 {
			return fmt.Errorf("garbage at end of line: %q", strings.Join(args[1:], " "))
		}
		if k == "kbdinteractiveauthentication" {
			switch strings.ToLower(args[0]) {
			case "yes", "no", "true", "false":
			default:
				return fmt.Errorf("expected yes or no, got %q", args[0])
			}
		}
	case "canonicalizehostname":
		switch strings.ToLower(args[0]) {
		case "yes", "no", "true", "false", "always":
		default:
			return fmt.Errorf("expected yes, no or always, got %q", args[0])
		}
	case "addressfamily":
		switch strings.ToLower(args[0]) {
		case "any", "inet", "inet6":
		default:
			return fmt.Errorf("expected any, inet or inet6, got %q", args[0])
		}
	case "loglevel":
		switch strings.ToUpper(args[0]) {
		case "QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3":
		default:
			return fmt.Errorf("unsupported log level %q", args[0])
		}
	case "casignaturealgorithms":
		if _, err := caSignatureAlgorithms(args[0]); err != nil {
			return err
		}
	case "localforward", "remoteforward", "dynamicforward":
		kind := map[string]byte{"localforward": 'L', "remoteforward": 'R', "dynamicforward": 'D'}[k]
		spec, err := configForwardSpec(kind, args)
		if err != nil {
			return err
		}
		if _, err := parseForward(kind, spec); err != nil {
			return err
		}
	case "clearallforwardings", "exitonforwardfailure", "gatewayports", "stdinnull":
		if len(args) > 1 {
			return fmt.Errorf("garbage at end of line: %q", strings.Join(args[1:], " "))
		}
		switch strings.ToLower(args[0]) {
		case "yes", "no", "true", "false":
		default:
			return fmt.Errorf("expected yes or no, got %q", args[0])
		}
	case "requesttty":
		switch strings.ToLower(args[0]) {
		case "yes", "no", "true", "false", "force", "auto":
		default:
			return fmt.Errorf("expected yes, no, force or auto, got %q", args[0])
		}
	case "sessiontype":
		switch strings.ToLower(args[0]) {
		case "none", "subsystem", "default":
		default:
			return fmt.Errorf("expected none, subsystem or default, got %q", args[0])
		}
	case "escapechar":
		if _, ok := parseEscapeChar(args[0]); !ok || len(args) > 1 {
			return fmt.Errorf("bad escape character %q (one character, ^X or none)", strings.Join(args, " "))
		}
	case "sendenv":
		for _, a := range args {
			if a == "" || strings.Contains(a, "=") {
				return fmt.Errorf("invalid environment name %q", a)
			}
		}
	case "setenv":
		for _, a := range args {
			if i := strings.IndexByte(a, '='); i <= 0 {
				return fmt.Errorf("invalid SetEnv %q (want NAME=VALUE)", a)
			}
		}
	case "canonicaldomains", "userknownhostsfile", "globalknownhostsfile", "revokedhostkeys":
		for i, a := range args {
			if strings.EqualFold(a, "none") && (i > 0 || len(args) > 1) {
				return errors.New(`"none" must appear alone`)
			}
		}
	case "canonicalizepermittedcnames":
		for _, a := range args {
			if strings.EqualFold(a, "none") {
				if len(args) > 1 {
					return errors.New(`"none" must appear alone`)
				}
				continue
			}
			if a == "*" {
				continue
			}
			if i := strings.IndexByte(a, ':'); i < 0 || i == len(a)-1 {
				return fmt.Errorf("invalid permitted CNAME %q (want source_domains:target_domains)", a)
			}
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
	k, args, raw, err := splitConfigLine(opt)
	if err != nil {
		return fmt.Errorf("command-line: %w", err)
	}
	if k == "" {
		return fmt.Errorf("command-line: empty option")
	}
	if lk := strings.ToLower(k); lk == "host" || lk == "match" || lk == "include" {
		return fmt.Errorf("command-line: %s is not allowed in -o", k)
	}
	return c.set("command-line", k, args, raw)
}

// splitConfigLine splits a config line into keyword and arguments, as
// ssh's strdelim and argv_split do: "Key=Value" and "Key Value" are both
// accepted; arguments may be quoted with double or single quotes (also
// in the middle of a word), a backslash escapes a quote, a backslash or
// (outside quotes) a blank, and a word starting with '#' ends the line.
// raw is the rest of the line after the keyword as written, for the
// keywords whose value is a command.
func splitConfigLine(line string) (key string, args []string, raw string, err error) {
	line = strings.Trim(line, " \t\r\n\f")
	if line == "" || strings.HasPrefix(line, "#") {
		return "", nil, "", nil
	}
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return line, nil, "", nil
	}
	key = line[:i]
	rest := strings.TrimLeft(line[i:], " \t")
	if strings.HasPrefix(rest, "=") {
		rest = strings.TrimLeft(rest[1:], " \t")
	}
	args, err = argvSplit(rest)
	return key, args, rest, err
}

// argvSplit is ssh's argv_split with comments ending the line.
func argvSplit(s string) ([]string, error) {
	var args []string
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' || s[i] == '\t' {
			continue
		}
		if s[i] == '#' {
			break
		}
		var arg []byte
		var quote byte
		for ; i < len(s); i++ {
			ch := s[i]
			switch {
			case ch == '\\' && i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '"' || s[i+1] == '\\' || (quote == 0 && s[i+1] == ' ')):
				i++
				arg = append(arg, s[i])
				continue
			case quote == 0 && (ch == ' ' || ch == '\t'):
			case quote == 0 && (ch == '"' || ch == '\''):
				quote = ch
				continue
			case quote != 0 && ch == quote:
				quote = 0
				continue
			default:
				arg = append(arg, ch)
				continue
			}
			break
		}
		if quote != 0 {
			return nil, errors.New("unterminated quote")
		}
		args = append(args, string(arg))
	}
	return args, nil
}

// hostMatches applies a Host line's patterns to name as ssh does: any
// positive match, and no negated match; case-sensitive (ssh's
// match_pattern: "Host web" does not apply to "WEB").
func hostMatches(patterns []string, name string) bool {
	matched := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		if auth.MatchPattern(p, name) {
			if neg {
				return false
			}
			matched = true
		}
	}
	return matched
}

// matchList is ssh's match_pattern_list: comma-separated patterns, each
// maybe negated; true if one matches and no negated one does. fold
// lower-cases both sides (host names), else the match is exact (user
// names).
func matchList(list, s string, fold bool) bool {
	if fold {
		return auth.MatchPatternList(list, s)
	}
	return hostMatches(strings.Split(list, ","), s) // the same rule, case kept
}

// configEnv is what a lookup reads of the machine besides the files:
// replaceable, so that tests and fuzzing run no command and read no file
// of the machine they run on.
type configEnv struct {
	home      string // ~ and %d
	userDir   string // where relative Include paths of user files are anchored (~/.ssh)
	systemDir string // the same for system files (/etc/ssh)
	localUser string // %u, Match localuser
	uid       string // %i
	thisHost  string // %l (%L is its first label)
	// exec runs a Match exec command: true if it exits 0.
	exec func(cmd string) (bool, error)
	// lookup resolves a name for CanonicalizeHostname: its canonical
	// name (after CNAMEs) if it has addresses, else an error.
	lookup func(name string) (string, error)
	// addrs lists the machine's addresses (Match localnetwork).
	addrs func() ([]netip.Addr, error)
	// getenv reads ${NAME} in paths.
	getenv func(string) (string, bool)
	// checkPerm refuses a user config file that others may write.
	checkPerm func(path string) error
}

// realEnv is the machine's configEnv.
func realEnv() *configEnv {
	home := homeDir()
	e := &configEnv{
		home:      home,
		userDir:   filepath.Join(home, ".ssh"),
		systemDir: auth.SystemSSHDir(),
		localUser: localUser(),
		uid:       strconv.Itoa(os.Getuid()),
		exec:      execInShell,
		lookup:    lookupCanonical,
		addrs:     localAddrs,
		getenv:    os.LookupEnv,
		checkPerm: checkConfigPerm,
	}
	e.thisHost, _ = os.Hostname()
	return e
}

// execInShell runs cmd as ssh's Match exec does: with the user's shell
// ($SHELL, else /bin/sh) and -c (on Windows cmd.exe /c: shellCommand),
// stdin and stdout on the null device, stderr passed through. Exit status
// 0 is true, another is false; a command killed by a signal is an error.
func execInShell(cmd string) (bool, error) {
	c := shellCommand(cmd)
	c.Stderr = os.Stderr
	err := c.Run()
	if err == nil {
		return true, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		return false, nil
	}
	return false, err
}

func userShell() string {
	if sh := os.Getenv("SHELL"); sh != "" {
		return sh
	}
	return "/bin/sh"
}

func lookupCanonical(name string) (string, error) {
	ctx := context.Background()
	if _, err := net.DefaultResolver.LookupHost(ctx, name); err != nil {
		return "", err
	}
	cname, err := net.DefaultResolver.LookupCNAME(ctx, name)
	if err != nil {
		return name, nil
	}
	return cname, nil
}

func localAddrs() ([]netip.Addr, error) {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out, nil
}

// pass is one reading of the configuration files for a destination, as
// ssh's process_config_files: the first, and the final one that ssh makes
// after canonicalizing the host name, or when a Match final asks for it.
type pass struct {
	env     *configEnv
	hostArg string // the destination as given (Match originalhost, %n)
	host    string // what Host lines match: hostArg, in the final pass the host name
	final   bool
	// wantFinal records a Match final (not negated): a final pass follows.
	wantFinal bool
	// command and sessionType are what Match command and sessiontype
	// see: rsftp runs the sftp subsystem, as ssh does for sftp.
	command, sessionType string
}

// maxIncludeDepth bounds nested Includes (ssh allows 16; a glob that
// includes its own file multiplies the work at each level).
const maxIncludeDepth = 8

// readFile applies a config file's blocks that match the destination of
// p. A missing file is fine unless required (given with -F). userConf
// says whether it is the user's file (Include paths relative to ~/.ssh)
// or the system's (relative to /etc/ssh); checkPerm refuses a file that
// others could write.
func (c *sshConfig) readFile(path string, p *pass, userConf, required, checkPerm bool) error {
	active := true
	return c.readFileDepth(path, p, userConf, required, checkPerm, &active, false, 0)
}

func (c *sshConfig) readFileDepth(path string, p *pass, userConf, required, checkPerm bool, active *bool, neverMatch bool, depth int) error {
	if depth > maxIncludeDepth {
		return fmt.Errorf("%s: Include nested too deeply", path)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() && depth > 0 {
		return nil // a directory an Include's glob matched: no lines
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if !required && os.IsNotExist(err) {
			return nil
		}
		return err
	}
	if checkPerm && p.env.checkPerm != nil {
		if err := p.env.checkPerm(path); err != nil {
			return err
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for n := 1; sc.Scan(); n++ {
		where := fmt.Sprintf("%s line %d", path, n)
		k, args, raw, err := splitConfigLine(sc.Text())
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if k == "" {
			continue
		}
		switch strings.ToLower(k) {
		case "host":
			if len(args) == 0 {
				return fmt.Errorf("%s: Host needs at least one pattern", where)
			}
			*active = !neverMatch && hostMatches(args, p.host)
			continue
		case "match":
			m, err := c.evalMatch(args, p, neverMatch)
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			*active = !neverMatch && m
			continue
		case "include":
			if len(args) == 0 {
				return fmt.Errorf("%s: Include needs a file", where)
			}
			oactive := *active
			for _, a := range args {
				f, err := c.includePath(a, p, userConf)
				if err != nil {
					return fmt.Errorf("%s: %w", where, err)
				}
				files, _ := filepath.Glob(f)
				for _, inc := range files {
					if err := c.readFileDepth(inc, p, userConf, false, true, active, neverMatch || !oactive, depth+1); err != nil {
						return err
					}
					// Match in an included file does not
					// change the including file's state.
					*active = oactive
				}
			}
			continue
		}
		if !*active {
			// Still reject misspelt keywords anywhere, as ssh does.
			if !sshKeywords[strings.ToLower(k)] {
				if ign, ok := c.get("ignoreunknown"); !ok || !auth.MatchPatternList(ign, strings.ToLower(k)) {
					return fmt.Errorf("%s: Bad configuration option: %s", where, strings.ToLower(k))
				}
			}
			continue
		}
		if err := c.set(where, k, args, raw); err != nil {
			return err
		}
	}
	return sc.Err()
}

// includePath expands an Include argument as ssh does: %-tokens and
// ${VAR}, ~ in user files only, a relative path under ~/.ssh (user
// files) or /etc/ssh (system files).
func (c *sshConfig) includePath(a string, p *pass, userConf bool) (string, error) {
	f, err := c.expand(a, p, matchTokens, true)
	if err != nil {
		return "", fmt.Errorf("Include %s: %w", a, err)
	}
	if strings.HasPrefix(f, "~") {
		if !userConf {
			return "", fmt.Errorf("bad include path %s (~ is for user files)", f)
		}
		if f, err = tildeExpand(f, p.env.home); err != nil {
			return "", err
		}
	} else if !filepath.IsAbs(f) {
		dir := p.env.systemDir
		if userConf {
			dir = p.env.userDir
		}
		f = filepath.Join(dir, f)
	}
	return f, nil
}

// matchHost is the host name Match host and the tokens of Match exec
// see: in the first pass the HostName so far (its %h expanded) or the
// destination; in the final pass the host name.
func (c *sshConfig) matchHost(p *pass) string {
	h, ok := c.get("hostname")
	if !ok {
		return p.hostArg
	}
	if p.final {
		return h
	}
	if e, err := expandHostname(h, p.hostArg); err == nil {
		return e
	}
	return h
}

// evalMatch evaluates a Match line's criteria as ssh's match_cfg_line:
// all, canonical, final, exec, host, originalhost, user, localuser,
// localnetwork, tagged, version, command, sessiontype, each negated by
// '!'; all must hold. dryRun (an Include read only to check it) runs no
// command.
func (c *sshConfig) evalMatch(args []string, p *pass, dryRun bool) (bool, error) {
	result := true
	attributes := 0
	for i := 0; i < len(args); i++ {
		attrib := args[i]
		negate := strings.HasPrefix(attrib, "!")
		if negate {
			attrib = attrib[1:]
		}
		name := strings.ToLower(attrib)
		if name == "all" {
			if attributes > 1 || i+1 < len(args) {
				return false, fmt.Errorf("'%s' cannot be combined with other Match attributes", args[i])
			}
			if result {
				result = !negate
			}
			return result, nil
		}
		attributes++
		if name == "canonical" || name == "final" {
			if name == "final" && !negate {
				p.wantFinal = true
			}
			if p.final == negate {
				result = false
			}
			continue
		}
		var arg string
		if k, v, ok := strings.Cut(attrib, "="); ok {
			name, arg = strings.ToLower(k), v
		} else {
			if i+1 >= len(args) {
				return false, fmt.Errorf("missing argument for Match '%s'", args[i])
			}
			i++
			arg = args[i]
		}
		if arg == "" && name != "tagged" && name != "command" {
			return false, fmt.Errorf("Missing Match criteria for %s", name)
		}
		var r bool
		switch name {
		case "host":
			r = matchList(arg, c.matchHost(p), true)
		case "originalhost":
			r = matchList(arg, p.hostArg, true)
		case "user":
			r = matchList(arg, c.getDefault("user", p.env.localUser), false)
		case "localuser":
			r = matchList(arg, p.env.localUser, false)
		case "localnetwork":
			var err error
			if r, err = matchLocalNetwork(arg, p.env); err != nil {
				return false, err
			}
		case "tagged":
			tag := c.getDefault("tag", "")
			if tag == "" {
				r = arg == ""
			} else {
				r = matchList(arg, tag, false)
			}
		case "version":
			// Not OpenSSH: a block for some OpenSSH release is
			// not for rsftp.
			r = matchList(arg, "rsftp", false)
		case "command":
			if p.command == "" {
				r = arg == ""
			} else {
				r = matchList(arg, p.command, false)
			}
		case "sessiontype":
			r = matchList(arg, p.sessionType, false)
		case "exec":
			cmd, err := c.expand(arg, p, matchTokens, false)
			if err != nil {
				return false, fmt.Errorf("Match exec %q: %w", arg, err)
			}
			if !result || dryRun {
				continue // ssh runs no command once the line failed
			}
			if p.env.exec == nil {
				return false, errors.New("Match exec: running commands is not allowed here")
			}
			if r, err = p.env.exec(cmd); err != nil {
				return false, fmt.Errorf("Match exec %q: %w", cmd, err)
			}
		default:
			return false, fmt.Errorf("Unsupported Match attribute %s", name)
		}
		if r == negate {
			result = false
		}
	}
	if attributes == 0 {
		return false, errors.New("One or more attributes required for Match")
	}
	return result, nil
}

// matchLocalNetwork is true if one of the machine's addresses is in one
// of the CIDR blocks of list (comma-separated, '!' negates one).
func matchLocalNetwork(list string, env *configEnv) (bool, error) {
	type block struct {
		p   netip.Prefix
		neg bool
	}
	var blocks []block
	for _, s := range strings.Split(list, ",") {
		neg := strings.HasPrefix(s, "!")
		if neg {
			s = s[1:]
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return false, fmt.Errorf("Match localnetwork: invalid address block %q", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		blocks = append(blocks, block{p.Masked(), neg})
	}
	if env.addrs == nil {
		return false, nil
	}
	addrs, err := env.addrs()
	if err != nil {
		return false, nil
	}
	for _, a := range addrs {
		in, out := false, false
		for _, b := range blocks {
			if b.p.Contains(a) {
				if b.neg {
					out = true
				} else {
					in = true
				}
			}
		}
		if in && !out {
			return true, nil
		}
	}
	return false, nil
}

// tokenSet names the %-tokens a keyword takes (ssh_config(5), TOKENS).
type tokenSet int

const (
	hostnameTokens tokenSet = iota // HostName: %h (the destination) and %%
	proxyTokens                    // ProxyCommand, ProxyJump: %h %k %n %p %r
	matchTokens                    // Match exec, Include: %C %L %d %h %i %j %k %l %n %p %r %u
	pathTokens                     // IdentityFile, UserKnownHostsFile, IdentityAgent...: the same
)

// tokenValues are the values of the %-tokens for a destination.
type tokenValues struct {
	host, hostArg, port, user, keyAlias, jumpHost string
	env                                           *configEnv
}

func (t tokenValues) value(ch byte, set tokenSet) (string, bool) {
	switch set {
	case hostnameTokens:
		if ch == 'h' {
			return t.host, true
		}
		return "", false
	case proxyTokens:
		switch ch {
		case 'h':
			return t.host, true
		case 'k':
			return t.keyAlias, true
		case 'n':
			return t.hostArg, true
		case 'p':
			return t.port, true
		case 'r':
			return t.user, true
		}
		return "", false
	}
	switch ch {
	case 'C':
		// ssh's %C: SHA-1 of %l%h%p%r%j, in hex.
		sum := sha1.Sum([]byte(t.env.thisHost + t.host + t.port + t.user + t.jumpHost))
		return hex.EncodeToString(sum[:]), true
	case 'L':
		short, _, _ := strings.Cut(t.env.thisHost, ".")
		return short, true
	case 'd':
		return t.env.home, true
	case 'h':
		return t.host, true
	case 'i':
		return t.env.uid, true
	case 'j':
		return t.jumpHost, true
	case 'k':
		return t.keyAlias, true
	case 'l':
		return t.env.thisHost, true
	case 'n':
		return t.hostArg, true
	case 'p':
		return t.port, true
	case 'r':
		return t.user, true
	case 'u':
		return t.env.localUser, true
	}
	return "", false
}

// expandWith is ssh's percent_expand (and, with dollar, its
// percent_dollar_expand: ${NAME} from the environment). An unknown
// token, a lone % at the end or an unset variable is an error, as in
// ssh.
func expandWith(s string, t tokenValues, set tokenSet, dollar bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case dollar && s[i] == '$' && i+1 < len(s) && s[i+1] == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated ${ in %q", s)
			}
			name := s[i+2 : i+2+end]
			getenv := os.LookupEnv
			if t.env != nil && t.env.getenv != nil {
				getenv = t.env.getenv
			}
			v, ok := getenv(name)
			if name == "" || !ok {
				return "", fmt.Errorf("environment variable ${%s} is not set", name)
			}
			b.WriteString(v)
			i += 2 + end
		case s[i] != '%':
			b.WriteByte(s[i])
		case i+1 == len(s):
			return "", fmt.Errorf("%q ends with a lone %%", s)
		default:
			i++
			if s[i] == '%' {
				b.WriteByte('%')
				continue
			}
			v, ok := t.value(s[i], set)
			if !ok {
				return "", fmt.Errorf("unknown token %%%c in %q", s[i], s)
			}
			b.WriteString(v)
		}
	}
	return b.String(), nil
}

// expandHostname expands HostName's tokens (%h, %%).
func expandHostname(h, hostArg string) (string, error) {
	return expandWith(h, tokenValues{host: hostArg}, hostnameTokens, false)
}

// expand expands s with the tokens of the configuration so far, as ssh
// does while reading it (Match exec, Include).
func (c *sshConfig) expand(s string, p *pass, set tokenSet, dollar bool) (string, error) {
	host := c.matchHost(p)
	alias := c.getDefault("hostkeyalias", host)
	return expandWith(s, tokenValues{
		host: host, hostArg: p.hostArg, port: c.getDefault("port", "22"),
		user: c.getDefault("user", p.env.localUser), keyAlias: alias,
		jumpHost: jumpHostToken(c.getDefault("proxyjump", "")), env: p.env,
	}, set, dollar)
}

// jumpHostToken is %j: the host of the last jump hop (the one that
// connects to the destination), or empty.
func jumpHostToken(j string) string {
	if j == "" || strings.EqualFold(j, "none") {
		return ""
	}
	hops, err := parseJumpList(j, false)
	if err != nil || len(hops) == 0 {
		return ""
	}
	return hops[len(hops)-1].host
}

// tildeExpand expands a leading ~ or ~user.
func tildeExpand(p, home string) (string, error) {
	if !strings.HasPrefix(p, "~") {
		return p, nil
	}
	name, rest, _ := strings.Cut(p[1:], "/")
	dir := home
	if name != "" {
		u, err := user.Lookup(name)
		if err != nil {
			return "", fmt.Errorf("no such user %q in %s", name, p)
		}
		dir = u.HomeDir
	}
	if rest == "" {
		return dir, nil
	}
	return filepath.Join(dir, rest), nil
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

// localUser: sysconfig_unix.go, sysconfig_windows.go.

// validHostname is ssh's ssh_valid_hostname: a name given on the command
// line that would be unsafe in a ProxyCommand's shell is refused.
func validHostname(s string) bool {
	if strings.HasPrefix(s, "-") {
		return false
	}
	for _, r := range s {
		if strings.ContainsRune("'`\"$\\;&<>|(){},", r) || r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f' || r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// validUser is ssh's ssh_valid_ruser.
func validUser(s string) bool {
	if strings.HasPrefix(s, "-") {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch < 0x20 || ch == 0x7f || strings.IndexByte("'`\";&<>|(){}", ch) >= 0 {
			return false
		}
		if (ch == ' ' || ch == '\t') && i+1 < len(s) && s[i+1] == '-' {
			return false
		}
		if ch == '\\' && i+1 == len(s) {
			return false
		}
	}
	return true
}
