package main

// rsftp cp: scp's command line over SFTP. Either side of a copy may be
// [user@]host:path, an sftp:// or scp:// URI, or a local path; several
// sources go into a directory; remote sources may hold wildcards, which
// the server's listings expand; ~ and ~user begin remote paths. get and
// put are the same engine with the direction fixed.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/rsftp/rsftp/sftp"
)

// cmdOpt is an option of one command (not one parseFlags knows), with its
// value if it takes one.
type cmdOpt struct {
	letter byte
	val    string
}

// commonWithValue are the letters of the options every client command
// shares (parseFlags) that take a value.
const commonWithValue = "PicFoJ"

// splitOptions separates a command's own single-letter options (own
// without a value, ownVal with one) from the common ones, which it
// returns as separate arguments for parseFlags. It reads the options as
// parseFlags does (bundled, values attached or separate) and stops at the
// first operand or after "--"; long options (--events file) go to the
// common ones as they are.
func splitOptions(args []string, own, ownVal string) (common []string, opts []cmdOpt, operands []string, err error) {
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		if strings.HasPrefix(a, "--") {
			common = append(common, a)
			if a == "--events" && i+1 < len(args) {
				i++
				common = append(common, args[i])
			}
			continue
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			isOwn, ownV, comV := strings.IndexByte(own, c) >= 0, strings.IndexByte(ownVal, c) >= 0, strings.IndexByte(commonWithValue, c) >= 0
			if !ownV && !comV {
				if isOwn {
					opts = append(opts, cmdOpt{letter: c})
				} else {
					common = append(common, "-"+string(c))
				}
				continue
			}
			val := a[j+1:]
			if val == "" {
				if i+1 == len(args) {
					if comV {
						common = append(common, "-"+string(c)) // parseFlags says what is missing
						break
					}
					return nil, nil, nil, optionNeedsValue(c)
				}
				i++
				val = args[i]
			}
			if ownV {
				opts = append(opts, cmdOpt{c, val})
			} else {
				common = append(common, "-"+string(c), val)
			}
			break
		}
	}
	return common, opts, args[i:], nil
}

// parseCommon parses the common options that splitOptions set apart.
func parseCommon(common []string, allowed string) (*commonFlags, error) {
	f, rest, err := parseFlags(common, allowed)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	if len(rest) > 0 {
		return nil, usageErr("unexpected %q among the options", rest[0])
	}
	return f, nil
}

// clientLetters are the common options of get, put, ls and cp.
const clientLetters = "PicFoJqprav"

// endpoint is one operand of get, put or cp.
type endpoint struct {
	arg    string     // as given
	remote bool       // [user@]host:path or a URI
	spec   remoteSpec // user, host and path as given (a local path is in spec.path)
	port   string     // the port of an sftp:// or scp:// URI
}

func (e endpoint) String() string { return e.arg }

// parseEndpoint reads an operand as scp does: an sftp:// or scp:// URI,
// else [user@]host:path when a colon comes before any slash (parseRemote),
// else a local path (./a:b is one).
func parseEndpoint(s string) (endpoint, error) {
	spec, port, ok, err := parseURI(s)
	if err != nil {
		return endpoint{}, usageErr("%v", err)
	}
	if ok {
		return endpoint{arg: s, remote: true, spec: spec, port: port}, nil
	}
	if spec, ok := parseRemote(s); ok {
		return endpoint{arg: s, remote: true, spec: spec}, nil
	}
	if s == "" {
		return endpoint{}, usageErr("an empty path")
	}
	return endpoint{arg: s, spec: remoteSpec{path: s}}, nil
}

// parseURI reads sftp://[user[;params]@]host[:port][/path] and the same
// with scp://, as OpenSSH 9's parse_uri: user and path %-decoded (and "+"
// a blank, as OpenSSH decodes them), connection parameters after ";"
// ignored, the path relative to the login directory (sftp://h/f is f in
// the home directory, sftp://h//tmp/f is /tmp/f; none is the home
// directory itself), the host possibly [IPv6]. ok is false for anything
// else than these two schemes.
func parseURI(s string) (spec remoteSpec, port string, ok bool, err error) {
	scheme, rest, found := strings.Cut(s, "://")
	if !found || (scheme != "sftp" && scheme != "scp") {
		return remoteSpec{}, "", false, nil
	}
	bad := func(why string) error { return fmt.Errorf("%s is not a valid %s:// URI: %s", s, scheme, why) }
	hostport, p, _ := strings.Cut(rest, "/")
	if at := strings.LastIndexByte(hostport, '@'); at >= 0 {
		userinfo := hostport[:at]
		hostport = hostport[at+1:]
		userinfo, _, _ = strings.Cut(userinfo, ";")
		if userinfo == "" {
			return remoteSpec{}, "", false, bad("the user name is empty")
		}
		if spec.user, err = uriDecode(userinfo); err != nil {
			return remoteSpec{}, "", false, bad(err.Error())
		}
	}
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return remoteSpec{}, "", false, bad("no ] after the address")
		}
		spec.host, hostport = hostport[1:end], hostport[end+1:]
		if hostport != "" && hostport[0] != ':' {
			return remoteSpec{}, "", false, bad("text after ]")
		}
		port = strings.TrimPrefix(hostport, ":")
	} else {
		spec.host, port, _ = strings.Cut(hostport, ":")
	}
	if spec.host == "" {
		return remoteSpec{}, "", false, bad("no host")
	}
	if strings.ContainsFunc(spec.host, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '%' || r == '@' }) {
		return remoteSpec{}, "", false, bad("the host name has characters host names do not")
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return remoteSpec{}, "", false, bad("invalid port " + strconv.Quote(port))
		}
	}
	if p != "" {
		if spec.path, err = uriDecode(p); err != nil {
			return remoteSpec{}, "", false, bad(err.Error())
		}
	}
	return spec, port, true, nil
}

// uriDecode undoes %-encoding as OpenSSH's urldecode does ("+" is a
// blank); a malformed escape or an encoded NUL is an error.
func uriDecode(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			b.WriteByte(' ')
		case '%':
			if i+2 >= len(s) {
				return "", fmt.Errorf("%q ends in the middle of a %%-escape", s)
			}
			n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf("bad %%-escape %q", s[i:i+3])
			}
			if n == 0 {
				return "", errors.New("%00 (a NUL) cannot be in a path")
			}
			b.WriteByte(byte(n))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// remoteConn is one server's connection and SFTP session.
type remoteConn struct {
	s     *session
	c     *sftp.Client
	label string // [user@]host, for messages
}

// conns opens one connection per server a command names, and reuses it.
type conns struct {
	f     *commonFlags
	log   *logger
	opts  []sftp.ClientOption
	m     map[string]*remoteConn
	order []*remoteConn
}

func newConns(f *commonFlags, log *logger, opts []sftp.ClientOption) *conns {
	return &conns{f: f, log: log, opts: opts, m: map[string]*remoteConn{}}
}

// get connects to ep's server, or returns the connection made before.
func (cs *conns) get(ctx context.Context, ep endpoint) (*remoteConn, error) {
	key := ep.spec.user + "@" + ep.spec.host + "#" + ep.port
	if rc, ok := cs.m[key]; ok {
		return rc, nil
	}
	f := cs.f
	if ep.port != "" {
		g := *f
		g.port = ep.port
		f = &g
	}
	spec := remoteSpec{user: ep.spec.user, host: ep.spec.host}
	opts := cs.opts
	if p := aheadPath(ep.spec.path); p != "" {
		// The first thing asked of this server is the path's STAT (a
		// source to download, the target of an upload): it goes with
		// SFTP's INIT, a round trip less (issue 17).
		opts = append(slices.Clone(opts), sftp.StatAhead(p))
	}
	s, c, err := openSFTP(ctx, f, spec, cs.log, opts...)
	if err != nil {
		return nil, err
	}
	label := ep.spec.host
	if ep.spec.user != "" {
		label = ep.spec.user + "@" + label
	}
	rc := &remoteConn{s: s, c: c, label: label}
	cs.m[key] = rc
	cs.order = append(cs.order, rc)
	return rc, nil
}

// aheadPath is the path whose STAT may go with SFTP's INIT for an
// operand's path p: p itself ("." for the login directory), unless it
// needs the server first (a wildcard, a leading ~).
func aheadPath(p string) string {
	if p == "" {
		p = "."
	}
	if _, _, tilde := sftp.SplitTilde(p); tilde || sftp.HasMeta(p) {
		return ""
	}
	return p
}

func (cs *conns) closeAll(ctx context.Context) {
	for _, rc := range cs.order {
		closeSession(ctx, rc.s, rc.c)
	}
}

// progress is the progress line of the first connection (nil before
// any).
func (cs *conns) progress() *progress {
	if len(cs.order) == 0 {
		return nil
	}
	return cs.order[0].s.progress
}

// expandRemote turns a remote path as given into the paths it names:
// "" is the login directory, a leading ~ or ~user is expanded
// (sftp.Client.TildeHome), and a path with wildcards is matched on the
// server (sftp.Client.Glob; no match is an error).
func expandRemote(ctx context.Context, c *sftp.Client, p string) ([]string, error) {
	if p == "" {
		return []string{"."}, nil
	}
	if user, rest, ok := sftp.SplitTilde(p); ok {
		if !sftp.HasMeta(rest) {
			e, err := c.ExpandTilde(p)
			if err != nil {
				return nil, err
			}
			return []string{e}, nil
		}
		home, err := c.TildeHome(user)
		if err != nil {
			return nil, err
		}
		p = strings.TrimSuffix(sftp.GlobEscape(home), "/") + "/" + rest
	}
	if !sftp.HasMeta(p) {
		return []string{p}, nil
	}
	ms, err := c.Glob(ctx, p)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Path
	}
	return out, nil
}

// noMatch says "host:pattern: no match" for a pattern that matched
// nothing (Glob names the pattern only); other errors stay as they are.
func noMatch(arg string, err error) error {
	var nm *sftp.NoMatchError
	if !errors.As(err, &nm) {
		return err
	}
	if nm.Cause != nil {
		return fmt.Errorf("%s: no match (%v)", arg, nm.Cause)
	}
	return fmt.Errorf("%s: no match", arg)
}

// copyRequest is a get, put or cp once its options are read.
type copyRequest struct {
	cmd       string // "get", "put" or "cp"
	f         *commonFlags
	sources   []endpoint
	target    endpoint
	limit     float64 // bytes a second (-l), 0 for none
	follow    bool    // follow symbolic links in recursive copies (scp)
	streams   int     // -X streams=N: sessions a large upload spreads over (0 automatic)
	clientOpt []sftp.ClientOption
}

// copyFailure is a source, or a file or directory inside one, that was
// not copied.
type copyFailure struct {
	path string
	err  error
	top  bool // a source operand itself, not a path inside one
}

// copyRun is the state of one copyRequest under way.
type copyRun struct {
	req    *copyRequest
	cs     *conns
	log    *logger
	note   *resumeNote
	lim    *rateLimiter
	failed []copyFailure
}

// errNotCopied is the error of a copy that went on past failures, each
// named on stderr already.
type errNotCopied struct{ n int }

func (e *errNotCopied) Error() string {
	if e.n == 1 {
		return "1 file or directory was not copied (named above)"
	}
	return fmt.Sprintf("%d files or directories were not copied (named above)", e.n)
}

// runCopy runs a get, put or cp: each source in turn, the failures of one
// (and inside a recursive one) reported at the end, as scp does, with
// exit status 1.
func runCopy(ctx context.Context, req *copyRequest, note *resumeNote) (err error) {
	log := &logger{level: 2}
	cs := newConns(req.f, log, req.clientOpt)
	defer cs.closeAll(ctx)
	defer func() { err = cs.explainLoss(ctx, err) }()
	r := &copyRun{req: req, cs: cs, log: log, note: note}
	if req.limit > 0 {
		r.lim = newRateLimiter(req.limit)
	}
	note.resume = req.f.resume
	tgt, err := r.resolveTarget(ctx)
	if err != nil {
		return err
	}
	for _, src := range req.sources {
		err := r.copySource(ctx, src, tgt)
		if err == nil {
			continue
		}
		if ctx.Err() != nil || errors.Is(err, sftp.ErrInterrupted) || r.fatal(err) {
			return err
		}
		r.failed = append(r.failed, copyFailure{src.arg, err, true})
	}
	if len(r.failed) == 0 {
		return nil
	}
	if len(r.failed) == 1 && r.failed[0].top && len(req.sources) == 1 {
		return r.failed[0].err // the one thing to copy failed: say so, as before
	}
	if p := cs.progress(); p != nil {
		p.stop()
	}
	for _, fl := range r.failed {
		fmt.Fprintf(os.Stderr, "rsftp %s: %s\n", req.cmd, failureText(fl))
	}
	return &errNotCopied{len(r.failed)}
}

// fatal reports whether err must end the whole command: a usage error,
// or a connection that stopped working.
func (r *copyRun) fatal(err error) bool {
	var ee *exitError
	if errors.As(err, &ee) {
		return true
	}
	for _, rc := range r.cs.order {
		if rc.c.Err() != nil {
			return true
		}
	}
	return false
}

// failureText names a path that was not copied and why, without saying
// the path twice.
func failureText(fl copyFailure) string {
	var pe *fs.PathError
	if errors.As(fl.err, &pe) && (pe.Path == fl.path || strings.Contains(fl.path, pe.Path)) && errors.Unwrap(fl.err) == pe.Err {
		return fmt.Sprintf("%s: %s: %v", sanitize(fl.path), pe.Op, pe.Err)
	}
	msg := fl.err.Error()
	if strings.Contains(msg, fl.path) {
		return sanitize(msg)
	}
	return fmt.Sprintf("%s: %s", sanitize(fl.path), sanitize(msg))
}

// copyTarget is the destination once resolved.
type copyTarget struct {
	ep    endpoint
	rc    *remoteConn // remote only
	path  string      // local path, or remote path with ~ expanded
	isDir bool        // it is an existing directory
	attrs *sftp.Attrs // remote only: as Stat found it (zero if it does not exist)
}

func (t *copyTarget) label() string {
	if t.rc == nil {
		return t.path
	}
	return t.ep.arg
}

// resolveTarget connects to the target's server if it is remote, and
// finds out whether it is a directory: with several sources it must be
// one ("Not a directory", as scp says).
func (r *copyRun) resolveTarget(ctx context.Context) (*copyTarget, error) {
	t := &copyTarget{ep: r.req.target}
	if !t.ep.remote {
		t.path = t.ep.spec.path
		if fi, err := os.Stat(t.path); err == nil && fi.IsDir() {
			t.isDir = true
		}
	} else {
		rc, err := r.cs.get(ctx, t.ep)
		if err != nil {
			return nil, err
		}
		t.rc = rc
		r.note.setProgress(rc.s.progress)
		t.path = t.ep.spec.path
		if t.path == "" {
			t.path = "."
		}
		if t.path, err = rc.c.ExpandTilde(t.path); err != nil {
			return nil, err
		}
		a, err := rc.c.Stat(t.path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", t.ep.arg, err)
		}
		if err != nil {
			a = &sftp.Attrs{}
		}
		t.attrs, t.isDir = a, a.FileMode().IsDir()
	}
	if len(r.req.sources) > 1 && !t.isDir {
		return nil, fmt.Errorf("%s: Not a directory (the target of several sources must be an existing directory)", t.ep.arg)
	}
	return t, nil
}

func (r *copyRun) options() sftp.TransferOptions {
	o := sftp.TransferOptions{
		Recursive:            r.req.f.recursive,
		PreserveTimesAndMode: r.req.f.preserve,
		Resume:               r.req.f.resume,
		FollowLinks:          r.req.follow,
		Streams:              r.req.streams,
		Skip: func(p string, err error) {
			r.failed = append(r.failed, copyFailure{path: p, err: err})
		},
	}
	if p := r.cs.progress(); p != nil {
		o.Progress = progressFunc(p, r.log, r.note)
	}
	if r.lim != nil {
		o.Throttle = r.lim.wait
	}
	return o
}

// copySource copies one operand (each path its wildcards match) to the
// target.
func (r *copyRun) copySource(ctx context.Context, src endpoint, t *copyTarget) error {
	if !src.remote {
		if t.rc == nil {
			return r.copyLocal(ctx, src.spec.path, t)
		}
		return r.upload(ctx, src.spec.path, t)
	}
	rc, err := r.cs.get(ctx, src)
	if err != nil {
		return err
	}
	if r.note.prog == nil {
		r.note.setProgress(rc.s.progress)
	}
	paths, err := expandRemote(ctx, rc.c, src.spec.path)
	if err != nil {
		return noMatch(src.arg, err)
	}
	if len(paths) > 1 && !t.isDir {
		return fmt.Errorf("%s matches %d paths, but the target %s is not a directory", src.arg, len(paths), t.label())
	}
	for _, p := range paths {
		var err error
		if t.rc == nil {
			err = r.download(ctx, rc, p, t, len(paths) == 1 && len(r.req.sources) == 1)
		} else {
			err = r.crossload(ctx, rc, p, t)
		}
		if err == nil {
			continue
		}
		if len(paths) == 1 || ctx.Err() != nil || errors.Is(err, sftp.ErrInterrupted) || r.fatal(err) {
			return err
		}
		r.failed = append(r.failed, copyFailure{path: p, err: err})
	}
	return nil
}

// download copies the remote path p of rc to the local target. single
// says it is the command's only source path (an interrupted get then
// says which file to continue).
func (r *copyRun) download(ctx context.Context, rc *remoteConn, p string, t *copyTarget, single bool) error {
	st, err := rc.c.Stat(p)
	if err != nil {
		return err
	}
	if st.FileMode().IsDir() && !r.req.f.recursive {
		return fmt.Errorf("%s is a directory (use -r)", p)
	}
	local := t.path
	if t.isDir {
		base := path.Base(strings.TrimRight(p, "/"))
		if !sftp.ValidName(base) {
			// ".", "/", "~": the directory's own name. Download does not
			// add a name to a local directory for such paths.
			real, err := rc.c.RealPath(p)
			if err != nil {
				return err
			}
			if base = path.Base(real); !sftp.ValidName(base) {
				return fmt.Errorf("cannot derive a local name from %q", p)
			}
			local = filepath.Join(t.path, base)
		}
		// Otherwise Download adds the name itself.
		if single && !st.FileMode().IsDir() {
			r.note.mu.Lock()
			r.note.single = filepath.Join(t.path, base)
			r.note.mu.Unlock()
		}
	} else if single && !st.FileMode().IsDir() {
		r.note.mu.Lock()
		r.note.single = local
		r.note.mu.Unlock()
	}
	o := r.options()
	o.Attrs = st // stat once
	return rc.c.Download(ctx, p, local, o)
}

// upload copies the local path to the remote target.
func (r *copyRun) upload(ctx context.Context, local string, t *copyTarget) error {
	fi, err := os.Stat(local)
	if err != nil {
		return err
	}
	if fi.IsDir() && !r.req.f.recursive {
		return fmt.Errorf("%s is a directory (use -r)", local)
	}
	remote := t.path
	if t.isDir {
		base := filepath.Base(filepath.Clean(local))
		if !sftp.ValidName(base) {
			// "." or "/": the directory's own name (Upload would not add
			// one).
			if abs, err := filepath.Abs(local); err == nil {
				base = filepath.Base(abs)
			}
			if !sftp.ValidName(base) {
				return fmt.Errorf("cannot derive a remote name from %q", local)
			}
			remote = path.Join(t.path, base)
		}
	}
	o := r.options()
	if remote == t.path {
		o.Attrs = t.attrs // stat once
	}
	return t.rc.c.Upload(ctx, local, remote, o)
}

// crossload copies the remote path p of src to the remote target,
// through this machine.
func (r *copyRun) crossload(ctx context.Context, src *remoteConn, p string, t *copyTarget) error {
	st, err := src.c.Stat(p)
	if err != nil {
		return err
	}
	if st.FileMode().IsDir() && !r.req.f.recursive {
		return fmt.Errorf("%s is a directory (use -r)", p)
	}
	dst := t.path
	if t.isDir {
		if base := path.Base(strings.TrimRight(p, "/")); !sftp.ValidName(base) {
			real, err := src.c.RealPath(p)
			if err != nil {
				return err
			}
			if base = path.Base(real); !sftp.ValidName(base) {
				return fmt.Errorf("cannot derive a name from %q", p)
			}
			dst = path.Join(t.path, base)
		}
	}
	return sftp.Crossload(ctx, src.c, p, t.rc.c, dst, r.options())
}

// copyLocal copies between two local paths as scp does: it runs cp(1),
// with -r and -p as given.
func (r *copyRun) copyLocal(ctx context.Context, src string, t *copyTarget) error {
	args := []string{}
	if r.req.f.recursive {
		args = append(args, "-r")
	}
	if r.req.f.preserve {
		args = append(args, "-p")
	}
	args = append(args, "--", src, t.path)
	cmd := exec.CommandContext(ctx, "cp", args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cp %s %s: %v", src, t.path, err)
	}
	return nil
}

// cpLetters are scp's options that rsftp cp reads itself: without a
// value, and with one.
const (
	cpLetters    = "346ABCORsT"
	cpValLetters = "DlSX"
)

// readCopyOptions reads the options of get, put or cp: the common ones
// with parseFlags, the others (scp's) here.
func readCopyOptions(cmd string, args []string) (*copyRequest, []string, error) {
	own, ownVal := "", ""
	if cmd == "cp" {
		own, ownVal = cpLetters, cpValLetters
	} else {
		ownVal = "lX"
	}
	common, opts, operands, err := splitOptions(args, own, ownVal)
	if err != nil {
		return nil, nil, usageErr("%v", err)
	}
	f, err := parseCommon(common, clientLetters)
	if err != nil {
		return nil, nil, err
	}
	req := &copyRequest{cmd: cmd, f: f, follow: cmd == "cp"}
	for _, o := range opts {
		switch o.letter {
		case '3', 's', 'T':
			// -3: copies between two servers go through this machine
			// anyway; -s: SFTP is the only protocol; -T: SFTP has no
			// file name checks to turn off.
		case 'A':
			// Agent forwarding matters only to scp -R, which is refused.
		case '4':
			f.options = append(f.options, "AddressFamily=inet")
		case '6':
			f.options = append(f.options, "AddressFamily=inet6")
		case 'B':
			f.options = append(f.options, "BatchMode=yes")
		case 'C':
			f.options = append(f.options, "Compression=yes")
		case 'O':
			return nil, nil, usageErr("-O (the legacy scp protocol) is not supported: rsftp cp speaks SFTP, as scp does by default since OpenSSH 9.0")
		case 'R':
			return nil, nil, usageErr("-R (the first server copies to the second itself) is not supported: rsftp cp copies between two servers through this machine, as scp does by default (-3)")
		case 'S':
			return nil, nil, usageErr("-S program is not supported: rsftp uses its own SSH client (-J and -o ProxyCommand=... choose the way to the server)")
		case 'D':
			return nil, nil, usageErr("-D sftp_server_path is not supported: rsftp cp reaches SFTP servers over SSH only")
		case 'l':
			if req.limit, err = parseLimit(o.val); err != nil {
				return nil, nil, usageErr("%v", err)
			}
		case 'X':
			if v, ok := strings.CutPrefix(o.val, "streams="); ok {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 || n > sftp.MaxStreams {
					return nil, nil, usageErr("invalid number of streams %q (0 for automatic, 1 to %d)", v, sftp.MaxStreams)
				}
				req.streams = n
				continue
			}
			opt, err := parseSFTPOption(o.val)
			if err != nil {
				return nil, nil, usageErr("%v", err)
			}
			req.clientOpt = append(req.clientOpt, opt...)
		}
	}
	return req, operands, nil
}

// parseSFTPOption reads scp's -X: buffer=bytes (the size of each READ
// and WRITE, default 32768) or nrequests=n (how many may be outstanding,
// default 64). readCopyOptions reads rsftp's own streams=n (how many
// SFTP sessions of the connection a large upload spreads over; 0, the
// default, chooses by the server's window, 1 is one session).
func parseSFTPOption(s string) ([]sftp.ClientOption, error) {
	k, v, _ := strings.Cut(s, "=")
	n, err := strconv.Atoi(v)
	switch k {
	case "buffer":
		if err != nil || n < 1 || n > sftp.MaxReadWrite {
			return nil, fmt.Errorf("invalid buffer size %q (1 to %d bytes)", v, sftp.MaxReadWrite)
		}
		return []sftp.ClientOption{sftp.ReadSize(n), sftp.WriteSize(n)}, nil
	case "nrequests":
		if err != nil || n < 1 || n > 4096 {
			return nil, fmt.Errorf("invalid number of requests %q (1 to 4096)", v)
		}
		return []sftp.ClientOption{sftp.MaxInflight(n)}, nil
	}
	return nil, fmt.Errorf("invalid -X option %q (buffer=bytes or nrequests=n)", s)
}
