package main

// What rsftp says when something fails: one line that says what happened
// and what to do, made here, at the tool's boundary, from the error chains
// the libraries return. Their texts stay as they are (programs that embed
// the packages read them, and -v prints the whole chain); userMessage
// finds the known types in a chain with errors.Is and errors.As and says
// it in the user's terms, and what it does not know it passes on with the
// package prefixes and repetitions taken out.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/resume"
	"github.com/rsftp/rsftp/sftp"
	"github.com/rsftp/rsftp/transport"
)

// showErrorChain makes main print an error's whole chain after the
// user's sentence (-v).
var showErrorChain bool

// connectError is a failure to reach, or to log in to, one server: the
// destination, or a jump host on the way to it.
type connectError struct {
	host    string // as the user named it (a jump hop as its list gives it)
	port    int
	user    string
	jump    bool     // a jump host, not the destination
	timeout int      // ConnectTimeout's seconds, if it ran out
	notes   []string // identity files that could not be used, and why
	err     error
}

func (e *connectError) Error() string {
	s := e.err.Error()
	if len(e.notes) > 0 {
		s += " [" + strings.Join(e.notes, "; ") + "]"
	}
	return s
}

func (e *connectError) Unwrap() error { return e.err }

// where names the server for a sentence: "127.0.0.1 port 2222", "jump
// host bastion port 22".
func (e *connectError) where() string {
	s := fmt.Sprintf("%s port %d", e.host, e.port)
	if e.jump {
		s = "jump host " + s
	}
	return s
}

// noTerminalError is a prompt that had no terminal to ask on.
type noTerminalError struct{ what string }

func (e *noTerminalError) Error() string {
	return "no terminal to ask for " + e.what + " on"
}

// hostKeyDeclined is a host key the user did not accept at the prompt.
type hostKeyDeclined struct{ host string }

func (e *hostKeyDeclined) Error() string {
	return fmt.Sprintf("Host key verification failed: the host key of %s was not accepted", e.host)
}

// linkLostError is a command that failed because its connection to a
// server ended under it.
type linkLostError struct {
	host      string // [user@]host as given
	cause     error  // why the connection ended (the multiplexer's error), or nil
	resumable bool   // the session could have resumed (the server offered it)
	err       error
}

func (e *linkLostError) Error() string {
	if e.cause != nil && !errors.Is(e.err, e.cause) {
		return fmt.Sprintf("%v (connection: %v)", e.err, e.cause)
	}
	return e.err.Error()
}

func (e *linkLostError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.err, e.cause}
	}
	return []error{e.err}
}

// continuable carries the command that continues a transfer that
// stopped (an interrupted or failed get, put or cp).
type continuable struct {
	err     error
	command string
}

func (e *continuable) Error() string { return e.err.Error() }
func (e *continuable) Unwrap() error { return e.err }

// keyNotes collects why identity files could not be used while a
// connection authenticates: said with the failure if authentication
// fails, as warnings if it succeeds.
type keyNotes struct {
	mu    sync.Mutex
	notes []string
}

func (k *keyNotes) add(s string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, n := range k.notes {
		if n == s {
			return
		}
	}
	k.notes = append(k.notes, s)
}

func (k *keyNotes) take() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := k.notes
	k.notes = nil
	return n
}

// identityProblem says in one clause why an identity file could not be
// used and what to do about it.
func identityProblem(path string, err error, batch bool) string {
	var nt *noTerminalError
	switch {
	case errors.Is(err, auth.ErrPassphraseRequired) && batch:
		return fmt.Sprintf("key %s needs its passphrase, which BatchMode forbids asking for: add it to the agent first (ssh-add %s)", path, path)
	case errors.As(err, &nt):
		return fmt.Sprintf("key %s needs its passphrase and there is no terminal to ask for it on: add it to the agent (ssh-add %s), or run rsftp in a terminal", path, path)
	case errors.Is(err, auth.ErrIncorrectPassphrase):
		return fmt.Sprintf("key %s: wrong passphrase", path)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("identity file %s does not exist (check -i or IdentityFile)", path)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf("identity file %s is not readable (permission denied)", path)
	}
	return fmt.Sprintf("identity file %s cannot be used: %s", path, plainChain(err))
}

// userMessage is the one line rsftp prints for err, after "rsftp cmd: ".
func userMessage(err error) string {
	if err == nil {
		return ""
	}
	var (
		cont     *continuable
		pe       *sftp.PartialError
		ll       *linkLostError
		nt       *noTerminalError
		declined *hostKeyDeclined
		unknown  *auth.UnknownHostError
		mismatch *auth.KeyMismatchError
		revoked  *auth.RevokedKeyError
		nomethod *auth.NoMethodError
		tries    *passwordTriesError
		ee       *exitError
	)
	ce := innermostConnectError(err)
	hop := ""
	if ce != nil && ce.jump {
		hop = "jump host " + ce.host + ": "
	}
	switch {
	case errors.As(err, &ee):
		return userMessage(ee.err)
	case errors.As(err, &pe):
		errors.As(err, &cont)
		return partialMessage(err, pe, cont)
	case errors.As(err, &declined):
		return hop + declined.Error() + "; nothing was transferred"
	case errors.As(err, &unknown):
		return hop + unknownHostMessage(unknown, ce)
	case errors.As(err, &mismatch):
		w := mismatch.Want[0]
		return hop + fmt.Sprintf("Host key verification failed: the host key of %s has CHANGED: it sent the %s key %s%s, known_hosts has another at %s:%d; someone may be intercepting the connection, or the server was reinstalled: check with its administrator, then remove the old key with ssh-keygen -R '%s' -f %s",
			mismatch.Host, keyTypeName(mismatch.Got), fingerprintOf(mismatch.Got), certRefusal(mismatch.Cert, mismatch.CertErr), w.File, w.Line, mismatch.Host, w.File)
	case errors.As(err, &revoked):
		return hop + fmt.Sprintf("Host key verification failed: the host key of %s (%s) is marked @revoked in %s:%d; do not connect, and tell the server's administrator",
			revoked.Host, fingerprintOf(revoked.Key), revoked.Entry.File, revoked.Entry.Line)
	case errors.Is(err, auth.ErrKeyRevoked):
		// RevokedHostKeys (a KRL or a key list) refused the host key.
		where := "the server"
		if ce != nil {
			where = ce.host
		}
		return hop + fmt.Sprintf("Host key verification failed: the host key of %s is revoked (%s); do not connect, and tell the server's administrator",
			where, revokedDetail(err))
	case errors.As(err, &nomethod):
		return permissionDenied(nomethod, ce)
	case errors.As(err, &tries):
		who := ""
		if ce != nil {
			who = fmt.Sprintf(" for %s@%s", ce.user, ce.host)
		}
		return fmt.Sprintf("Permission denied%s: %s; check the user name and the password, or use a key", who, tries)
	case errors.As(err, &nt):
		return fmt.Sprintf("cannot ask for %s: there is no terminal; use a key (-i, or ssh-add it to the agent), or run rsftp in a terminal", nt.what)
	case errors.As(err, &ll):
		return linkLostMessage(ll)
	case ce != nil:
		return connectMessage(ce)
	}
	if s, ok := resumeRefusal(err); ok {
		return s + "; start the transfer again (with -a to keep what arrived)"
	}
	if s, ok := pathMessage(err); ok {
		return s
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "listen" {
		return withContext(err, op, listenMessage(op))
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, sftp.ErrInterrupted) {
		return "interrupted"
	}
	return plainChain(err)
}

// innermostConnectError is the connectError of the server that failed:
// the jump host's inside the destination's, if there is one.
func innermostConnectError(err error) *connectError {
	var found *connectError
	for {
		var ce *connectError
		if !errors.As(err, &ce) {
			return found
		}
		found, err = ce, ce.err
	}
}

func fingerprintOf(k kex.PublicKey) string {
	if k == nil {
		return "?"
	}
	return kex.FingerprintSHA256(k)
}

// certRefusal says, for a host that presented a certificate that was
// not accepted (its plain key was checked instead, as ssh does), which
// certificate and why; "" without one.
func certRefusal(c *kex.Certificate, why error) string {
	if c == nil {
		return ""
	}
	s := fmt.Sprintf(" (in a host certificate, ID %q, that was not accepted", c.KeyID)
	if why != nil {
		s += ": " + plainChain(why)
	}
	return s + ")"
}

// revokedDetail is what RevokedHostKeys said of the key, without the
// chain's prefixes: "key listed in FILE (line N)", "certificate serial 7
// by the KRL FILE".
func revokedDetail(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, auth.ErrKeyRevoked.Error()+": "); i >= 0 {
		return msg[i+len(auth.ErrKeyRevoked.Error())+2:]
	}
	return plainChain(err)
}

func unknownHostMessage(u *auth.UnknownHostError, ce *connectError) string {
	s := fmt.Sprintf("Host key verification failed: %s is not in known_hosts (its %s key is %s)", u.Host, keyTypeName(u.Key), fingerprintOf(u.Key))
	if len(u.Other) > 0 {
		var kinds []string
		for _, o := range u.Other {
			kinds = append(kinds, keyTypeName(o.Key))
		}
		s = fmt.Sprintf("Host key verification failed: known_hosts has no %s key for %s, only its %s key (it sent the %s key %s)", keyTypeName(u.Key), u.Host, strings.Join(kinds, ", "), keyTypeName(u.Key), fingerprintOf(u.Key))
	}
	if u.Cert != nil {
		// Trusting the plain key would not be what the configuration
		// asks: its @cert-authority line is what should have matched.
		return s + certRefusal(u.Cert, u.CertErr) + "; check the host certificate with the server's administrator, or the @cert-authority line in known_hosts"
	}
	return s + "; if that fingerprint is the server's, accept it by connecting once from a terminal without BatchMode (or add it to ~/.ssh/known_hosts)"
}

// permissionDenied is an authentication that failed: which user at which
// server, what was tried, and what to check.
func permissionDenied(e *auth.NoMethodError, ce *connectError) string {
	who := e.User
	if ce != nil {
		who = fmt.Sprintf("%s@%s", e.User, ce.host)
		if ce.jump {
			who += " (jump host)"
		}
	}
	s := "Permission denied for " + who
	var libNotes []string
	for _, n := range e.Notes {
		if n != "publickey: no usable key" {
			libNotes = append(libNotes, n)
		}
	}
	var notes []string
	if ce != nil {
		notes = ce.notes
	}
	switch {
	case len(notes) > 0 && len(e.Tried) == 0:
		return s + ": " + strings.Join(notes, "; ")
	case len(notes) > 0:
		s += fmt.Sprintf(" (tried %s): %s", strings.Join(e.Tried, ", "), strings.Join(notes, "; "))
		return s
	case len(libNotes) > 0:
		s += " (" + strings.Join(libNotes, "; ") + ")"
	}
	allows := func(m string) bool {
		for _, a := range e.Allowed {
			if a == m {
				return true
			}
		}
		return false
	}
	switch {
	case len(e.Tried) > 0:
		s += fmt.Sprintf(": the server refused %s", strings.Join(e.Tried, ", "))
		if allows("publickey") {
			s += "; check that your public key is in its authorized_keys, or name the right key with -i"
		} else {
			s += "; check the user name and the password"
		}
	case allows("publickey"):
		s += ": no key to offer; name one with -i (or IdentityFile), or add one to the agent with ssh-add"
	case allows("password") || allows("keyboard-interactive"):
		s += fmt.Sprintf(": the server wants %s, which was not tried (BatchMode, PreferredAuthentications or PasswordAuthentication forbid it); run rsftp in a terminal without BatchMode, or use a key", strings.Join(e.Allowed, " or "))
	default:
		s += fmt.Sprintf(": the server accepts only %s, which rsftp does not do", strings.Join(e.Allowed, ", "))
	}
	return s
}

// connectMessage is a failure to reach a server, or one that ended the
// connection before the login completed.
func connectMessage(ce *connectError) string {
	err := ce.err
	var dns *net.DNSError
	var td *transport.DisconnectError
	var ad *auth.DisconnectError
	switch {
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return fmt.Sprintf("cannot resolve host name %q%s: no such host; check its spelling (or its HostName in ssh_config)", dns.Name, jumpNote(ce))
		}
		return fmt.Sprintf("cannot resolve host name %q%s (%s); check the network and the DNS settings", dns.Name, jumpNote(ce), dns.Err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("cannot connect to %s: connection refused; check the port (-P) and that an SSH server runs there", ce.where())
	case ce.timeout > 0:
		return fmt.Sprintf("cannot connect to %s: no answer within ConnectTimeout (%d s); check the host name and the network", ce.where(), ce.timeout)
	case errors.Is(err, syscall.ETIMEDOUT) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("cannot connect to %s: timed out; check the host name and the network", ce.where())
	case errors.Is(err, syscall.EHOSTUNREACH):
		return fmt.Sprintf("cannot connect to %s: no route to host; check the address and the network", ce.where())
	case errors.Is(err, syscall.ENETUNREACH):
		return fmt.Sprintf("cannot connect to %s: the network is unreachable; check this machine's network connection", ce.where())
	case errors.Is(err, context.Canceled):
		return fmt.Sprintf("connecting to %s was interrupted", ce.where())
	case errors.As(err, &td) && td.FromPeer:
		return fmt.Sprintf("%s ended the connection: %q; its log says more", ce.where(), sanitize(td.Message))
	case errors.As(err, &ad):
		return fmt.Sprintf("%s ended the connection during login: %q; its log says more", ce.where(), sanitize(ad.Message))
	case lostConnection(err):
		how := "closed"
		if errors.Is(err, syscall.ECONNRESET) {
			how = "reset"
		}
		return fmt.Sprintf("%s %s the connection before the login completed; check that an SSH server listens there and accepts this client (its log says why)", ce.where(), how)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Sprintf("cannot connect to %s: %s", ce.where(), errnoWords(op.Err))
	}
	if s, ok := pathMessage(err); ok {
		return s
	}
	return fmt.Sprintf("%s: %s", ce.where(), plainChain(err))
}

func jumpNote(ce *connectError) string {
	if ce.jump {
		return " (a jump host)"
	}
	return ""
}

// lostConnection reports an error that means the connection ended: the
// peer closed or reset it, or it broke.
func lostConnection(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, transport.ErrClosed) || errors.Is(err, channel.ErrClosed) || errors.Is(err, sftp.ErrClientClosed)
}

// linkCause says in a few words how a connection ended.
func linkCause(err error) string {
	var td *transport.DisconnectError
	switch {
	case err == nil:
		return "closed"
	case errors.As(err, &td) && td.FromPeer:
		return fmt.Sprintf("the server disconnected: %q", sanitize(td.Message))
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED):
		return "connection broken"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "closed in the middle of a message"
	case errors.Is(err, io.EOF):
		return "closed by the other end"
	case errors.Is(err, syscall.ETIMEDOUT) || errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	case errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
		return "the network became unreachable"
	}
	if s, ok := resumeRefusal(err); ok {
		return s
	}
	return plainChain(err)
}

// attemptCause says in a few words why a reconnection attempt failed.
func attemptCause(err error) string {
	var dns *net.DNSError
	switch {
	case err == nil:
		return "?"
	case errors.As(err, &dns):
		return fmt.Sprintf("cannot resolve host name %q", dns.Name)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	}
	return linkCause(err)
}

// resumeRefusal says why a session could not be resumed, if that is what
// err is.
func resumeRefusal(err error) (string, bool) {
	var f *resume.Failure
	switch {
	case errors.Is(err, resume.ErrHoldExpired):
		return "the connection was lost for longer than the server holds a session", true
	case errors.As(err, &f):
		why := ""
		switch f.Reason {
		case resume.ReasonSessionUnknown:
			why = "it was restarted, or dropped it"
		case resume.ReasonSessionClosed:
			why = "it closed it"
		case resume.ReasonAuthFailed:
			why = "the session's key did not match"
		case resume.ReasonResourceShortage, resume.ReasonBusy:
			why = "it is short of room for sessions"
		case resume.ReasonCountOutOfRange:
			why = "the two sides disagree on what was sent"
		default:
			why = sanitize(f.Description)
		}
		return fmt.Sprintf("the server no longer holds the session (%s)", why), true
	case strings.Contains(err.Error(), "the server no longer offers session resumption"):
		return "the server no longer offers session resumption", true
	}
	return "", false
}

// lostAndRefused says that the connection to host was lost and the
// session could not resume, if that is what err says.
func lostAndRefused(host string, err error) (string, bool) {
	if errors.Is(err, resume.ErrHoldExpired) {
		return fmt.Sprintf("the connection to %s was lost for longer than the server holds a session", host), true
	}
	if s, ok := resumeRefusal(err); ok {
		return fmt.Sprintf("the connection to %s was lost and %s", host, s), true
	}
	return "", false
}

// linkLostMessage is a command whose connection ended under it.
func linkLostMessage(ll *linkLostError) string {
	if s, ok := lostAndRefused(ll.host, ll); ok {
		return s + "; run the command again"
	}
	cause := ll.cause
	if cause == nil {
		cause = ll.err
	}
	s := fmt.Sprintf("the connection to %s was lost (%s)", ll.host, linkCause(cause))
	if !ll.resumable {
		s += "; the session could not resume it (--no-resume, or a server without resumption): run the command again"
	} else {
		s += "; run the command again"
	}
	return s
}

// partialMessage is a transfer that stopped part way: why, what was kept,
// and the command that continues it.
func partialMessage(err error, pe *sftp.PartialError, cont *continuable) string {
	why := transferCause(err, pe)
	var kept string
	if pe.Op == "download" {
		kept = fmt.Sprintf("the first %d bytes (%s) of %s are in %s", pe.Done, human(float64(pe.Done)), sanitize(pe.Src), pe.Dst)
	} else {
		kept = fmt.Sprintf("the server has the first %d bytes (%s) of %s in %s", pe.Done, human(float64(pe.Done)), pe.Src, sanitize(pe.Dst))
	}
	next := "to continue, run the command again with -a"
	if cont != nil {
		next = "to continue: " + cont.command
	}
	return fmt.Sprintf("%s of %s stopped: %s; %s; %s", pe.Op, sanitize(pe.Src), why, kept, next)
}

// transferCause says why a transfer stopped.
func transferCause(err error, pe *sftp.PartialError) string {
	var ll *linkLostError
	if errors.As(err, &ll) {
		if s, ok := lostAndRefused(ll.host, ll); ok {
			return s
		}
		cause := ll.cause
		if cause == nil {
			cause = ll.err
		}
		s := fmt.Sprintf("the connection to %s was lost (%s)", ll.host, linkCause(cause))
		if !ll.resumable {
			s += " and the session was not resumable"
		}
		return s
	}
	if s, ok := resumeRefusal(pe.Err); ok {
		return s
	}
	if errors.Is(pe.Err, sftp.ErrInterrupted) || errors.Is(pe.Err, context.Canceled) {
		return "interrupted"
	}
	if lostConnection(pe.Err) {
		return "the connection was lost (" + linkCause(pe.Err) + ")"
	}
	if s, ok := pathMessage(pe.Err); ok {
		return s
	}
	return plainChain(pe.Err)
}

// pathMessage says what went wrong with a file: the server's refusal (a
// STATUS in an fs.PathError or os.LinkError) or this system's.
func pathMessage(err error) (string, bool) {
	var se *sftp.StatusError
	var le *os.LinkError
	var pe *fs.PathError
	var errno syscall.Errno
	switch {
	case errors.As(err, &le) && errors.As(le.Err, &se):
		return withContext(err, le, fmt.Sprintf("the server could not %s %q to %q: %s", opWords(le.Op), sanitize(le.Old), sanitize(le.New), statusWords(se))), true
	case errors.As(err, &pe) && errors.As(pe.Err, &se):
		if se.Code == sftp.StatusNoSuchFile {
			return withContext(err, pe, fmt.Sprintf("%s: no such file or directory on the server (a relative path starts in the login directory)", sanitize(pe.Path))), true
		}
		return withContext(err, pe, fmt.Sprintf("the server could not %s %s: %s", opWords(pe.Op), sanitize(pe.Path), statusWords(se))), true
	case errors.As(err, &pe) && errors.As(pe.Err, &errno):
		return withContext(err, pe, localPathMessage(pe, errno)), true
	case errors.As(err, &se):
		return "the server said: " + statusWords(se), true
	}
	return "", false
}

// withContext puts before sentence, which says what inner says, what err
// adds before inner's text ("--authorized-keys: " before a file's
// error), without the packages' prefixes.
func withContext(err, inner error, sentence string) string {
	outer, in := err.Error(), inner.Error()
	if outer == in || !strings.HasSuffix(outer, in) {
		return sentence
	}
	prefix := strings.TrimSuffix(strings.TrimSuffix(outer, in), ": ")
	if prefix == "" {
		return sentence
	}
	var parts []string
	for _, p := range strings.Split(prefix, ": ") {
		if !slices.Contains(packageNames, p) {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return sentence
	}
	return strings.Join(parts, ": ") + ": " + sentence
}

func localPathMessage(pe *fs.PathError, errno syscall.Errno) string {
	switch errno {
	case syscall.ENOENT:
		return fmt.Sprintf("%s: no such file or directory on this machine", pe.Path)
	case syscall.EACCES, syscall.EPERM:
		return fmt.Sprintf("cannot %s %s: permission denied; check its permissions (and its directory's), or choose another path", opWords(pe.Op), pe.Path)
	case syscall.ENOSPC, syscall.EDQUOT:
		return fmt.Sprintf("cannot write %s: %s; free some space, then continue with -a", pe.Path, errno)
	case syscall.EROFS:
		return fmt.Sprintf("cannot write %s: the file system is read-only; choose another path", pe.Path)
	case syscall.ENOTDIR:
		return fmt.Sprintf("%s: a part of this path is not a directory", pe.Path)
	case syscall.EISDIR:
		return fmt.Sprintf("%s is a directory", pe.Path)
	}
	return fmt.Sprintf("cannot %s %s: %s", opWords(pe.Op), pe.Path, errno)
}

// opWords says an operation's name (as fs.PathError and the sftp client
// give it) in words.
func opWords(op string) string {
	switch op {
	case "stat", "lstat", "realpath", "readlink":
		return "look up"
	case "opendir", "readdir", "closedir":
		return "list"
	case "mkdir":
		return "create the directory"
	case "rmdir":
		return "remove the directory"
	case "setstat", "chmod", "chtimes", "utimes":
		return "set the times or mode of"
	case "sync", "fsync":
		return "save"
	case "statvfs":
		return "tell the free space of"
	case "symlink":
		return "make the link"
	}
	return op
}

// statusWords is a STATUS's meaning, with the server's message when it
// says more than the code's name.
func statusWords(se *sftp.StatusError) string {
	var t string
	switch se.Code {
	case sftp.StatusNoSuchFile:
		t = "no such file or directory"
	case sftp.StatusPermissionDenied:
		t = "permission denied"
	case sftp.StatusOpUnsupported:
		t = "the server does not support this"
	case sftp.StatusEOF:
		t = "end of file"
	default:
		t = strings.ToLower(fx2txt(se.Code))
	}
	if m := strings.TrimSpace(se.Message); m != "" && !strings.HasPrefix(strings.ToLower(m), t) && !strings.EqualFold(m, fx2txt(se.Code)) {
		if se.Code == sftp.StatusFailure {
			return sanitize(m)
		}
		t += " (" + sanitize(m) + ")"
	}
	return t
}

// errnoWords is a system error's text, or err's.
func errnoWords(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return plainChain(err)
}

// packageNames are the prefixes ("transport: ") the packages put before
// their errors, which mean nothing to a user.
var packageNames = []string{"ssh", "transport", "auth", "sftp", "resume", "channel", "kex"}

// plainChain is an error chain's text without the packages' prefixes,
// without a part that repeats the one before it ("reading: reading:"),
// and with the bare "EOF", "unexpected EOF" and "context canceled" at its
// end said in words (or dropped after a part that says it already).
func plainChain(err error) string {
	s := err.Error()
	var parts []string
	for _, p := range strings.Split(s, ": ") {
		if slices.Contains(packageNames, p) || len(parts) > 0 && parts[len(parts)-1] == p {
			continue
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return s
	}
	words := map[string]string{
		"EOF":              "the connection was closed",
		"unexpected EOF":   "the connection was closed in the middle of a message",
		"context canceled": "interrupted",
	}
	if w, ok := words[parts[len(parts)-1]]; ok {
		if prev := strings.ToLower(strings.Join(parts[:len(parts)-1], " ")); strings.Contains(prev, "closed") || strings.Contains(prev, "interrupted") {
			parts = parts[:len(parts)-1]
		} else {
			parts[len(parts)-1] = w
		}
	}
	return strings.Join(parts, ": ")
}

// explainLoss puts why the connection ended beside an error that a lost
// connection caused (a channel or SFTP session closed under the command):
// a linkLostError naming the server, with the multiplexer's error as its
// cause. Other errors, and those of an interrupted command, are returned
// as they are.
func (cs *conns) explainLoss(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil || !lostConnection(err) {
		return err
	}
	var ll *linkLostError
	if errors.As(err, &ll) {
		return err
	}
	// The SFTP session may fail a moment before the connection's
	// reader says why: wait for that a little.
	deadline := time.Now().Add(linkLossWait)
	for {
		for _, rc := range cs.order {
			select {
			case <-rc.s.client.Mux().Done():
				return &linkLostError{host: rc.label, cause: rc.s.client.Wait(), resumable: rc.s.client.Resumable(), err: err}
			default:
			}
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// linkLossWait bounds how long explainLoss waits for a connection's end
// to be known.
const linkLossWait = 200 * time.Millisecond

// listenMessage says why a server could not listen (after "--listen
// ADDR: ").
func listenMessage(op *net.OpError) string {
	var dns *net.DNSError
	switch {
	case errors.Is(op.Err, syscall.EADDRINUSE):
		return "the address is in use (by another server: an rsftp serve, sshd?); stop it, or choose another port"
	case errors.Is(op.Err, syscall.EACCES):
		return "permission denied (ports below 1024 need privileges); choose a port above 1023"
	case errors.Is(op.Err, syscall.EADDRNOTAVAIL):
		return "no network interface of this machine has that address"
	case errors.As(op.Err, &dns):
		return fmt.Sprintf("cannot resolve %q", dns.Name)
	}
	return plainChain(op.Err)
}
