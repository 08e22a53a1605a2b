package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lookupRequest is a destination and what the command line says about it,
// which ssh applies before any file (the first value wins).
type lookupRequest struct {
	hostArg    string   // the destination as given
	user       string   // user@host, or a jump hop's user
	port       string   // -P, or a jump hop's port
	jump       string   // -J, or the hops before a jump hop
	options    []string // -o
	identities []string // -i
	cipher     string   // -c
	logLevel   string   // from -q or -v
	configFile string   // -F ("" for ~/.ssh/config and /etc/ssh/ssh_config)
	// command and sessionType are what Match command and sessiontype see:
	// "sftp" and "subsystem" unless set (rsftp ssh sets its own).
	command, sessionType string
}

// hostConfig is the configuration resolved for one destination, as ssh
// resolves it before connecting (ssh -G prints the same).
type hostConfig struct {
	cfg          *sshConfig
	req          lookupRequest
	env          *configEnv
	hostArg      string // %n
	hostname     string // %h: HostName (tokens expanded), lower-cased, canonicalized
	port         int
	user         string // %r
	jump         string // the ProxyJump in effect (tokens not expanded), or ""
	proxyCommand string // the ProxyCommand in effect (tokens not expanded), or ""
	// identityFiles are the IdentityFile values as written (what ssh -G
	// prints); cfg holds them expanded.
	identityFiles []string
}

// resolveHost reads the configuration for a destination as ssh does:
// the command line first, then -F's file or ~/.ssh/config and
// /etc/ssh/ssh_config; then HostName, canonicalization
// (CanonicalizeHostname) and, if that is on or a Match final asked for
// it, a final pass over the files in which Host lines match the host name
// and Match canonical and final hold.
func resolveHost(req lookupRequest, env *configEnv) (*hostConfig, error) {
	if !validHostname(req.hostArg) {
		return nil, fmt.Errorf("hostname %q contains invalid characters", req.hostArg)
	}
	if req.user != "" && !validUser(req.user) {
		return nil, fmt.Errorf("remote username %q contains invalid characters", req.user)
	}
	cfg := newSSHConfig()
	if req.user != "" {
		cfg.vals["user"] = []string{req.user}
	}
	if req.jump != "" {
		for _, o := range req.options {
			k, args, _, _ := splitConfigLine(o)
			switch strings.ToLower(k) {
			case "proxycommand":
				if len(args) > 0 && !strings.EqualFold(args[0], "none") {
					return nil, errors.New("cannot give -J with ProxyCommand")
				}
			case "proxyjump":
				return nil, errors.New("give one -J, or -o ProxyJump, not both (use commas to separate jump hops)")
			}
		}
		if !strings.EqualFold(req.jump, "none") {
			hops, err := parseJumpList(req.jump, true)
			if err != nil {
				return nil, fmt.Errorf("invalid -J argument %q: %w", req.jump, err)
			}
			_ = hops
		}
		cfg.vals["proxyjump"] = []string{req.jump}
	}
	for _, o := range req.options {
		if err := cfg.parseOption(o); err != nil {
			return nil, err
		}
	}
	for _, id := range req.identities {
		if err := cfg.set("command-line", "IdentityFile", []string{id}, id); err != nil {
			return nil, err
		}
	}
	for _, kv := range [][2]string{{"Port", req.port}, {"Ciphers", req.cipher}, {"LogLevel", req.logLevel}} {
		if kv[1] != "" {
			if err := cfg.set("command-line", kv[0], []string{kv[1]}, kv[1]); err != nil {
				return nil, err
			}
		}
	}

	p := &pass{env: env, hostArg: req.hostArg, host: req.hostArg, command: "sftp", sessionType: "subsystem"}
	if req.sessionType != "" {
		p.command, p.sessionType = req.command, req.sessionType
	}
	if err := cfg.readFiles(req.configFile, p); err != nil {
		return nil, err
	}

	host := req.hostArg
	if h, ok := cfg.get("hostname"); ok {
		var err error
		if host, err = expandHostname(h, req.hostArg); err != nil {
			return nil, fmt.Errorf("HostName %q: %w", h, err)
		}
	}
	_, addrErr := netip.ParseAddr(strings.Trim(host, "[]"))
	isAddr := addrErr == nil
	if !isAddr {
		host = strings.ToLower(host)
	}
	canon := strings.ToLower(cfg.getDefault("canonicalizehostname", "no"))
	canonOn := canon != "no" && canon != "false"
	direct := isNone(cfg.getDefault("proxyjump", "")) && isNone(cfg.getDefault("proxycommand", ""))
	if canonOn && !isAddr && (direct || canon == "always") {
		var err error
		if host, err = canonicalize(host, cfg, env); err != nil {
			return nil, err
		}
	}
	if canonOn || p.wantFinal {
		cfg.vals["hostname"] = []string{host}
		final := &pass{env: env, hostArg: req.hostArg, host: host, final: true, command: p.command, sessionType: p.sessionType}
		if err := cfg.readFiles(req.configFile, final); err != nil {
			return nil, err
		}
	}

	hc := &hostConfig{cfg: cfg, req: req, env: env, hostArg: req.hostArg, hostname: host}
	hc.port, _ = strconv.Atoi(cfg.getDefault("port", "22"))
	hc.user = cfg.getDefault("user", env.localUser)
	if j := cfg.getDefault("proxyjump", ""); !isNone(j) {
		hc.jump = j
	}
	if pc := cfg.getDefault("proxycommand", ""); !isNone(pc) {
		hc.proxyCommand = pc
	}
	hc.identityFiles = append([]string(nil), cfg.all("identityfile")...)
	if err := hc.expandPaths(); err != nil {
		return nil, err
	}
	return hc, nil
}

func isNone(v string) bool { return v == "" || strings.EqualFold(v, "none") }

// readFiles reads -F's file, or ~/.ssh/config then /etc/ssh/ssh_config,
// for one pass.
func (c *sshConfig) readFiles(configFile string, p *pass) error {
	if configFile != "" {
		if configFile == "none" {
			return nil
		}
		path, err := tildeExpand(configFile, p.env.home)
		if err != nil {
			return err
		}
		return c.readFile(path, p, true, true, false)
	}
	if err := c.readFile(filepath.Join(p.env.userDir, "config"), p, true, false, true); err != nil {
		return err
	}
	return c.readFile(filepath.Join(p.env.systemDir, "ssh_config"), p, false, false, false)
}

// canonicalize is ssh's resolve_canonicalize for a name (not an
// address): a name with a trailing dot is looked up as it is; one with at
// most CanonicalizeMaxDots dots is tried with each of CanonicalDomains
// appended; the first that resolves is the host name, or, if
// CanonicalizePermittedCNAMEs allows it, the name its CNAME points to.
// Nothing found: the name stays (CanonicalizeFallbackLocal yes) or that
// is an error.
func canonicalize(host string, cfg *sshConfig, env *configEnv) (string, error) {
	lookup := env.lookup
	if lookup == nil {
		return host, nil
	}
	follow := func(name, cname string) string {
		cname = strings.TrimSuffix(cname, ".")
		if cname == "" || strings.EqualFold(cname, name) {
			return name
		}
		for _, rule := range strings.Fields(cfg.getDefault("canonicalizepermittedcnames", "")) {
			src, dst, ok := strings.Cut(strings.ToLower(rule), ":")
			if rule == "*" {
				src, dst, ok = "*", "*", true
			}
			if ok && matchList(src, name, true) && matchList(dst, cname, true) {
				return strings.ToLower(cname)
			}
		}
		return name
	}
	if strings.HasSuffix(host, ".") {
		if cname, err := lookup(host); err == nil {
			return follow(strings.TrimSuffix(host, "."), cname), nil
		}
	} else {
		maxDots, _ := strconv.Atoi(cfg.getDefault("canonicalizemaxdots", "1"))
		if strings.Count(host, ".") > maxDots {
			return host, nil
		}
		for _, d := range strings.Fields(cfg.getDefault("canonicaldomains", "")) {
			if strings.EqualFold(d, "none") {
				break
			}
			full := host + "." + d
			if cname, err := lookup(full + "."); err == nil {
				return follow(full, cname), nil
			}
		}
	}
	if !yes(cfg.getDefault("canonicalizefallbacklocal", "yes")) {
		return "", fmt.Errorf("Could not resolve host %q (CanonicalizeHostname, CanonicalDomains %s)", host, cfg.getDefault("canonicaldomains", "none"))
	}
	return host, nil
}

// tokens are the values of the %-tokens for this destination.
func (hc *hostConfig) tokens() tokenValues {
	return tokenValues{
		host: hc.hostname, hostArg: hc.hostArg, port: strconv.Itoa(hc.port), user: hc.user,
		keyAlias: hc.cfg.getDefault("hostkeyalias", hc.hostArg), jumpHost: jumpHostToken(hc.jump), env: hc.env,
	}
}

// expandPath is ssh's treatment of a file name in IdentityFile,
// CertificateFile, UserKnownHostsFile, RevokedHostKeys, IdentityAgent: ~
// first, then %-tokens and ${VAR}.
func (hc *hostConfig) expandPath(s string) (string, error) {
	p, err := tildeExpand(s, hc.env.home)
	if err != nil {
		return "", err
	}
	return expandWith(p, hc.tokens(), pathTokens, true)
}

// expandPaths replaces the file names of IdentityFile, CertificateFile,
// UserKnownHostsFile, RevokedHostKeys, GlobalKnownHostsFile and
// IdentityAgent with their expansions, which is what connect reads.
func (hc *hostConfig) expandPaths() error {
	c := hc.cfg
	for i, id := range c.vals["identityfile"] {
		p, err := hc.expandPath(id)
		if err != nil {
			return fmt.Errorf("IdentityFile %s: %w", id, err)
		}
		c.vals["identityfile"][i] = p
	}
	for i, cf := range c.vals["certificatefile"] {
		p, err := hc.expandPath(cf)
		if err != nil {
			return fmt.Errorf("CertificateFile %s: %w", cf, err)
		}
		c.vals["certificatefile"][i] = p
	}
	// Each file of these lists is expanded on its own (a quoted name
	// may hold blanks); GlobalKnownHostsFile takes ~ but no tokens.
	for _, kw := range [][2]string{{"userknownhostsfile", "UserKnownHostsFile"}, {"revokedhostkeys", "RevokedHostKeys"}, {"globalknownhostsfile", "GlobalKnownHostsFile"}} {
		files := c.all(kw[0])
		if len(files) == 0 || strings.EqualFold(files[0], "none") {
			continue
		}
		out := make([]string, len(files))
		for i, f := range files {
			var err error
			if kw[0] == "globalknownhostsfile" {
				out[i], err = tildeExpand(f, hc.env.home)
			} else {
				out[i], err = hc.expandPath(f)
			}
			if err != nil {
				return fmt.Errorf("%s %s: %w", kw[1], f, err)
			}
		}
		c.vals[kw[0]] = out
	}
	if v, ok := c.get("identityagent"); ok && v != "none" && v != "SSH_AUTH_SOCK" {
		var p string
		var err error
		if strings.HasPrefix(v, "$") && !strings.HasPrefix(v, "${") {
			// The legacy form: an environment variable's name.
			p = os.Getenv(v[1:])
			if p == "" {
				p = "none"
			}
		} else if p, err = hc.expandPath(v); err != nil {
			return fmt.Errorf("IdentityAgent %s: %w", v, err)
		}
		c.vals["identityagent"] = []string{p}
	}
	return nil
}

// jumpHop is one hop of a ProxyJump or -J list.
type jumpHop struct {
	user, host, port string
}

func (h jumpHop) String() string {
	s := h.host
	if strings.Contains(s, ":") {
		s = "[" + s + "]"
	}
	if h.user != "" {
		s = h.user + "@" + s
	}
	if h.port != "" {
		s += ":" + h.port
	}
	return s
}

// parseJumpList parses [user@]host[:port] or ssh://[user@]host[:port]
// hops separated by commas, as ssh's parse_jump. strict (a -J argument)
// also refuses host and user names unsafe in a shell, as ssh does.
func parseJumpList(s string, strict bool) ([]jumpHop, error) {
	var hops []jumpHop
	for _, part := range strings.Split(s, ",") {
		h, err := parseJumpHop(part)
		if err != nil {
			return nil, err
		}
		if strict && (!validHostname(h.host) || (h.user != "" && !validUser(h.user))) {
			return nil, fmt.Errorf("invalid characters in %q", part)
		}
		hops = append(hops, h)
	}
	return hops, nil
}

func parseJumpHop(s string) (jumpHop, error) {
	var h jumpHop
	rest := s
	if u, ok := strings.CutPrefix(s, "ssh://"); ok {
		rest = strings.TrimSuffix(u, "/")
		if at := strings.IndexByte(rest, '@'); at >= 0 {
			h.user, rest = rest[:at], rest[at+1:]
			h.user, _, _ = strings.Cut(h.user, ";")
			if h.user == "" {
				return h, fmt.Errorf("empty user name in %q", s)
			}
		}
	} else if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		h.user, rest = rest[:at], rest[at+1:]
		if h.user == "" {
			return h, fmt.Errorf("empty user name in %q", s)
		}
	}
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return h, fmt.Errorf("unclosed [ in %q", s)
		}
		h.host, rest = rest[1:end], rest[end+1:]
		if rest != "" && !strings.HasPrefix(rest, ":") {
			return h, fmt.Errorf("junk after ] in %q", s)
		}
		rest = strings.TrimPrefix(rest, ":")
	} else if c := strings.IndexByte(rest, ':'); c >= 0 {
		h.host, rest = rest[:c], rest[c+1:]
	} else {
		h.host, rest = rest, ""
	}
	if h.host == "" {
		return h, fmt.Errorf("no host in %q", s)
	}
	if rest != "" {
		if n, err := strconv.Atoi(rest); err != nil || n < 1 || n > 65535 {
			return h, fmt.Errorf("invalid port in %q", s)
		}
		h.port = rest
	}
	return h, nil
}
