package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/sftp"
)

// serveOptions are the flags of rsftp serve.
type serveOptions struct {
	listen, root, hostKey, authorizedKeys, events string
	user                                          string
	readOnly, json                                bool

	// Certificates (issue 22): sshd's TrustedUserCAKeys,
	// AuthorizedPrincipalsFile, RevokedKeys and HostCertificate.
	trustedUserCAKeys, authorizedPrincipalsFile, revokedKeys, hostCert string

	hold, idle, loginGrace time.Duration
	clientAlive            time.Duration
	clientAliveMax         int
	maxResumable           int
	maxPerUser             int
	maxRetained            int64
	maxRetainedPerSession  int64
	maxWindowBytes         int64
	maxStartups            rsftp.MaxStartups
	perSourceStartups      int // 0: none
	perSourceBlock         rsftp.NetBlockSize
	maxSessions            int
	maxChannels            int
	maxHandles             int

	// Forwarding (issue 18): what --forwarding allows, and sshd's
	// PermitOpen, PermitListen and GatewayPorts.
	fwdLocal, fwdRemote, fwdAgent bool
	permitOpen, permitListen      []string
	gatewayPorts                  rsftp.GatewayPorts
	streamLocalBindUnlink         bool

	// Shells and commands (issue 18): --shell and --accept-env.
	shell     bool
	acceptEnv []string
}

// defaultServeAcceptEnv is what --accept-env lets clients set unless
// told otherwise: Debian's sshd_config's AcceptEnv.
var defaultServeAcceptEnv = []string{"LANG", "LC_*"}

// Defaults of rsftp serve that differ from the library's (docs/HARDENING.md
// says why): one source may hold at most 5 of the unauthenticated slots
// (half of MaxStartups' start), and an IPv6 /64 counts as one source.
const defaultServePerSourceStartups = 5

var defaultServeNetBlock = rsftp.NetBlockSize{IPv4: 32, IPv6: 64}

// startupsValue is the flag value of --max-startups.
type startupsValue rsftp.MaxStartups

func (v *startupsValue) String() string { return rsftp.MaxStartups(*v).String() }
func (v *startupsValue) Set(s string) error {
	m, err := rsftp.ParseMaxStartups(s)
	if err != nil {
		return err
	}
	*v = startupsValue(m)
	return nil
}

// perSourceValue is the flag value of --per-source-max-startups: a
// positive number or "none" (0).
type perSourceValue int

func (v *perSourceValue) String() string {
	if *v == 0 {
		return "none"
	}
	return strconv.Itoa(int(*v))
}

func (v *perSourceValue) Set(s string) error {
	if s == "none" {
		*v = 0
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return fmt.Errorf("%q: want a positive number or none", s)
	}
	*v = perSourceValue(n)
	return nil
}

// netBlockValue is the flag value of --per-source-net-block-size.
type netBlockValue rsftp.NetBlockSize

func (v *netBlockValue) String() string { return rsftp.NetBlockSize(*v).String() }
func (v *netBlockValue) Set(s string) error {
	b, err := rsftp.ParseNetBlockSize(s)
	if err != nil {
		return err
	}
	*v = netBlockValue(b)
	return nil
}

// parseServeFlags parses the arguments of rsftp serve. With -h it prints
// the flags and their defaults to help and returns flag.ErrHelp; any
// other problem is returned as a one-line error (nothing is printed).
// minRetainedPerSession is the least --max-retained-per-session: above
// what the peer's acknowledgement rules let it leave unacknowledged (256
// KiB of payload, eight 32 KiB packets held as 40 KiB each) with room for
// data to flow while the acknowledgement travels back.
const minRetainedPerSession = 1 << 20

func parseServeFlags(args []string, help io.Writer) (*serveOptions, error) {
	o := &serveOptions{}
	fsf := flag.NewFlagSet("serve", flag.ContinueOnError)
	fsf.SetOutput(io.Discard)
	fsf.StringVar(&o.listen, "listen", "127.0.0.1:2222", "address to listen on")
	fsf.StringVar(&o.root, "root", "", "directory the SFTP clients are confined to (required)")
	fsf.StringVar(&o.hostKey, "host-key", "", "host key file (OpenSSH format; an ed25519 key is created if missing) (required)")
	fsf.StringVar(&o.authorizedKeys, "authorized-keys", "", "authorized_keys file (OpenSSH format), re-read at each login; its cert-authority lines (with principals=\"...\") admit user certificates of their CA (required unless --trusted-user-ca-keys)")
	fsf.StringVar(&o.trustedUserCAKeys, "trusted-user-ca-keys", "", "file of CA public keys (OpenSSH's TrustedUserCAKeys), re-read at each login: a user certificate one of them signed logs in if the user name is among its principals (or, with --authorized-principals-file, a principal listed there), it is valid now, and its source-address admits the client; its force-command must be the SFTP server's")
	fsf.StringVar(&o.authorizedPrincipalsFile, "authorized-principals-file", "", "file of principals that may log in (OpenSSH's AuthorizedPrincipalsFile; %u is the user name, %% a percent sign): one principal a line, after authorized_keys options (from=, expiry-time=, command=, restrict...) that then apply; with it the user name need not be a principal (needs --trusted-user-ca-keys)")
	fsf.StringVar(&o.revokedKeys, "revoked-keys", "", "revoked keys (OpenSSH's RevokedKeys): a KRL made by ssh-keygen -k, or public keys one a line; re-read at each login and resumption, it refuses keys, certificates (by serial, key ID, key or CA) and their CAs; unreadable, it refuses every key")
	fsf.StringVar(&o.hostCert, "host-cert", "", "host certificate for --host-key (OpenSSH's HostCertificate, made by ssh-keygen -s CA -h): offered beside the plain host key, so that clients trusting the CA with an @cert-authority line in known_hosts accept the server")
	fsf.BoolVar(&o.readOnly, "read-only", false, "refuse every change to the file system")
	fsf.BoolVar(&o.json, "json", false, "log as JSON instead of text")
	fsf.DurationVar(&o.hold, "hold", time.Hour, "how long a session whose connection was lost is kept for its client to resume it (0 turns resumption off)")
	fsf.DurationVar(&o.idle, "idle-timeout", time.Minute, "a resumable session whose connection brought nothing for this long is detached (its hold time starts)")
	fsf.StringVar(&o.events, "events", "", "append session events (connected, link_lost, resumed, resume_failed, closed) to this file as JSON lines")
	fsf.IntVar(&o.maxResumable, "max-resumable", 4096, "resumable sessions kept at most, attached or not")
	fsf.IntVar(&o.maxPerUser, "max-detached-per-user", 16, "detached sessions kept per user")
	fsf.Int64Var(&o.maxRetained, "max-retained-bytes", 1<<30, "memory all sessions, attached or detached, may hold for resending; writers wait for ACKs past it, and the owner holding more than its share loses its largest detached session")
	fsf.Int64Var(&o.maxRetainedPerSession, "max-retained-per-session", 64<<20, "memory one session may hold for resending (at least 1 MiB)")
	fsf.Int64Var(&o.maxWindowBytes, "max-window-bytes", 1<<30, "receive windows of all channels together (what clients may send before it is read); past it new channels get smaller windows")
	fsf.DurationVar(&o.loginGrace, "login-grace-time", rsftp.DefaultLoginGraceTime, "time a client has to authenticate (OpenSSH's LoginGraceTime)")
	fsf.StringVar(&o.user, "user", "", "the one user name clients may log in as: every key in --authorized-keys logs in as this user, and other names are refused (default: the user running rsftp serve)")
	o.maxStartups = rsftp.DefaultMaxStartups
	fsf.Var((*startupsValue)(&o.maxStartups), "max-startups", "unauthenticated connections at once, as OpenSSH's MaxStartups `start:rate:full`: from start on, a new one is dropped with a probability of rate percent, rising to 100% at full; a single number N is a hard cap of N")
	o.perSourceStartups = defaultServePerSourceStartups
	fsf.Var((*perSourceValue)(&o.perSourceStartups), "per-source-max-startups", "unauthenticated connections at once from one source address or block (OpenSSH's PerSourceMaxStartups; `N` or none)")
	o.perSourceBlock = defaultServeNetBlock
	fsf.Var((*netBlockValue)(&o.perSourceBlock), "per-source-net-block-size", "leading bits of an IPv4 and an IPv6 source address that --per-source-max-startups counts as one source (OpenSSH's PerSourceNetBlockSize; `v4bits:v6bits`)")
	fsf.IntVar(&o.maxSessions, "max-sessions", rsftp.DefaultMaxSessionsPerConn, "session channels per connection (OpenSSH's MaxSessions)")
	fsf.IntVar(&o.maxChannels, "max-channels", rsftp.DefaultMaxChannelsPerConn, "channels of any type per connection")
	fsf.IntVar(&o.maxHandles, "max-handles", sftp.DefaultMaxHandles, "open files and directories per SFTP session")
	fsf.DurationVar(&o.clientAlive, "client-alive-interval", time.Minute, "probe a plain (not resumable) connection silent for this long with a keepalive (OpenSSH's ClientAliveInterval; 0 turns it off)")
	fsf.IntVar(&o.clientAliveMax, "client-alive-count-max", 3, "unanswered keepalives in a row after which the connection is closed (OpenSSH's ClientAliveCountMax)")
	fsf.BoolVar(&o.shell, "shell", false, "also run shells and commands (ssh's shell and exec requests, with a pseudo-terminal when asked for) as the user rsftp serve runs as, never another, with a login environment as sshd builds it (HOME, USER, LOGNAME, SHELL, PATH, TERM, SSH_CONNECTION, SSH_TTY...) in the home directory; a key's command= (or a certificate's force-command) then runs instead of what the client asks, and no-pty or restrict refuse the terminal. --root confines SFTP only. Without --shell, exec, shell and pty requests are refused: SFTP only")
	o.acceptEnv = defaultServeAcceptEnv
	fsf.Func("accept-env", "with --shell, environment variables clients may send (sshd's AcceptEnv): a comma-separated `list` of names or patterns with * and ?, or none (default LANG,LC_*)", func(v string) error {
		if v == "none" {
			o.acceptEnv = nil
			return nil
		}
		var list []string
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if p == "" || strings.ContainsAny(p, "= \t") {
				return fmt.Errorf("%q: want names or patterns without '=' or blanks, separated by commas", v)
			}
			list = append(list, p)
		}
		o.acceptEnv = list
		return nil
	})
	fsf.Func("forwarding", "forwarding clients may ask for, a comma-separated `list` of: local (ssh -L: TCP connections from the server, and to Unix sockets), remote (ssh -R: the server listens on TCP ports and Unix sockets), agent (ssh -A), all, none; authorized_keys options (restrict, no-port-forwarding, no-agent-forwarding, permitopen, permitlisten) and certificates restrict it further (default none)", o.setForwarding)
	fsf.Func("permit-open", "where local forwarding may connect, as sshd's PermitOpen: a comma-separated `list` of host:port or [IPv6]:port, * for any host or any port, hosts compared as written; any or none alone (default any)", func(v string) (err error) {
		o.permitOpen, err = rsftp.ParsePermitOpen(v)
		if err == nil && o.permitOpen == nil {
			err = errors.New("empty list")
		}
		return err
	})
	fsf.Func("permit-listen", "where remote forwarding may listen, as sshd's PermitListen: a comma-separated `list` of [host:]port, host a pattern (* and ?) matched against the address the client asks for (ssh asks for localhost unless told), a bare port any host, * any port; any or none alone (default any)", func(v string) (err error) {
		o.permitListen, err = rsftp.ParsePermitListen(v)
		if err == nil && o.permitListen == nil {
			err = errors.New("empty list")
		}
		return err
	})
	fsf.Func("gateway-ports", "addresses remote forwards listen on (`mode`), as sshd's GatewayPorts: no (loopback only, whatever the client asks), yes (all addresses), clientspecified (what the client asks) (default no)", func(v string) (err error) {
		o.gatewayPorts, err = rsftp.ParseGatewayPorts(v)
		return err
	})
	fsf.BoolVar(&o.streamLocalBindUnlink, "stream-local-bind-unlink", false, "a remote forward to a Unix socket replaces a socket left at its path instead of failing, as sshd's StreamLocalBindUnlink (for gpg-agent's socket, say)")
	if err := fsf.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(help, "usage: rsftp serve --listen addr --root dir --host-key file {--authorized-keys file | --trusted-user-ca-keys file} [flags]")
			fsf.SetOutput(help)
			fsf.PrintDefaults()
			return nil, err
		}
		return nil, flagError(err, fsf, "--")
	}
	if fsf.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fsf.Arg(0))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		zero bool // 0 is allowed
	}{{"hold", o.hold, true}, {"idle-timeout", o.idle, false}, {"login-grace-time", o.loginGrace, false},
		{"client-alive-interval", o.clientAlive, true}} {
		switch {
		case d.v < 0:
			return nil, fmt.Errorf("--%s %v: must not be negative", d.name, d.v)
		case d.v == 0 && !d.zero:
			return nil, fmt.Errorf("--%s 0: must be positive", d.name)
		}
	}
	for _, n := range []struct {
		name string
		v    int64
	}{
		{"max-resumable", int64(o.maxResumable)}, {"max-detached-per-user", int64(o.maxPerUser)},
		{"max-retained-bytes", o.maxRetained}, {"max-retained-per-session", o.maxRetainedPerSession},
		{"max-window-bytes", o.maxWindowBytes},
		{"max-sessions", int64(o.maxSessions)}, {"max-channels", int64(o.maxChannels)},
		{"max-handles", int64(o.maxHandles)}, {"client-alive-count-max", int64(o.clientAliveMax)},
	} {
		if n.v <= 0 {
			return nil, fmt.Errorf("--%s %d: must be positive", n.name, n.v)
		}
	}
	if o.maxRetainedPerSession < minRetainedPerSession {
		return nil, fmt.Errorf("--max-retained-per-session %d: must be at least %d (1 MiB): the client acknowledges every 256 KiB, and a smaller bound would make each 256 KiB wait for its one-second acknowledgement (docs/PROTOCOL.resume.md section 5.5)",
			o.maxRetainedPerSession, minRetainedPerSession)
	}
	if o.user != "" {
		if err := checkUserName(o.user); err != nil {
			return nil, fmt.Errorf("--user %q: %v", o.user, err)
		}
	}
	if o.shell && o.readOnly {
		return nil, errors.New("--read-only cannot hold with --shell: a shell can change whatever the user can")
	}
	if o.authorizedPrincipalsFile != "" {
		if o.trustedUserCAKeys == "" {
			return nil, errors.New("--authorized-principals-file needs --trusted-user-ca-keys (as sshd, it applies to the trusted CAs' certificates)")
		}
		if _, err := auth.AuthorizedPrincipalsFile(o.authorizedPrincipalsFile); err != nil {
			return nil, fmt.Errorf("--authorized-principals-file: %v", err)
		}
	}
	return o, nil
}

// setForwarding reads --forwarding's list.
func (o *serveOptions) setForwarding(v string) error {
	o.fwdLocal, o.fwdRemote, o.fwdAgent = false, false, false
	words := strings.Split(v, ",")
	for _, w := range words {
		switch strings.TrimSpace(w) {
		case "local":
			o.fwdLocal = true
		case "remote":
			o.fwdRemote = true
		case "agent":
			o.fwdAgent = true
		case "all":
			o.fwdLocal, o.fwdRemote, o.fwdAgent = true, true, true
		case "none":
			if len(words) != 1 {
				return errors.New("none must be alone")
			}
		default:
			return fmt.Errorf("%q is not one of local, remote, agent, all, none", w)
		}
	}
	return nil
}

// forwardingConfig sets what --forwarding and its lists allow.
func (o *serveOptions) forwardingConfig(cfg *rsftp.ServerConfig) {
	if o.fwdLocal {
		cfg.AllowTCPForwarding = func(string, string, int) bool { return true }
	}
	if o.fwdRemote {
		cfg.AllowRemoteForwarding = func(string, string, int) bool { return true }
	}
	if o.fwdLocal || o.fwdRemote {
		local, remote := o.fwdLocal, o.fwdRemote
		cfg.AllowStreamLocalForwarding = func(_, _ string, listen bool) bool {
			return listen && remote || !listen && local
		}
	}
	if o.fwdAgent {
		cfg.AllowAgentForwarding = func(string) bool { return true }
	}
	cfg.PermitOpen, cfg.PermitListen, cfg.GatewayPorts = o.permitOpen, o.permitListen, o.gatewayPorts
	cfg.StreamLocalBindUnlink = o.streamLocalBindUnlink
}

// checkUserName refuses names no client could send sensibly.
func checkUserName(name string) error {
	if len(name) > 256 {
		return errors.New("longer than 256 bytes")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return errors.New("has control characters")
		}
	}
	return nil
}

// servingUser is the one user name rsftp serve accepts: --user, else the
// name of the user running it.
func (o *serveOptions) servingUser() (string, error) {
	if o.user != "" {
		return o.user, nil
	}
	u, err := user.Current()
	if err != nil || u.Username == "" {
		return "", fmt.Errorf("cannot tell which user runs rsftp serve (%v): name the user clients log in as with --user", err)
	}
	return loginName(u.Username), nil // DOMAIN\user made a login name on Windows
}

// sftpOnlyKey refuses, without --shell, an authorized_keys line whose
// forced command is not the SFTP server's: rsftp serve then runs nothing
// else, so any other
// forced command (command="/bin/false", say) means the key may not use
// SFTP. Arguments are refused too: sftp-server's -R (read-only), -P and
// -p restrict what a session may do, and rsftp serve would ignore them.
func sftpOnlyKey(k *auth.AuthorizedKey) error {
	cmd, ok := k.Option("command")
	if !ok {
		return nil
	}
	return sftpOnlyCommand(cmd)
}

func sftpOnlyCommand(cmd string) error {
	f := strings.Fields(cmd)
	if len(f) == 1 && (f[0] == "internal-sftp" || path.Base(f[0]) == "sftp-server") {
		return nil
	}
	return fmt.Errorf("forced command %q refused: rsftp serve serves only SFTP, and admits only command=\"internal-sftp\" or a path to sftp-server, without arguments", cmd)
}

// sftpOnlyPermissions is sftpOnlyKey for what a certificate grants (its
// force-command merged with a principals line's command=).
func sftpOnlyPermissions(p *auth.Permissions) error {
	if p.KeyOptions != nil && p.KeyOptions.HasCommand {
		return sftpOnlyCommand(p.KeyOptions.Command)
	}
	return nil
}

// authConfig is how rsftp serve authenticates, for the user name userName
// only: public keys listed in the authorized_keys file (re-read at each
// login and each resumption's Recheck), with their expiry-time, from= and
// command= honoured, and user certificates signed by a CA of
// --trusted-user-ca-keys (with --authorized-principals-file) or of a
// cert-authority line; --revoked-keys refuses what it lists.
func (o *serveOptions) authConfig(userName string, log *slog.Logger) auth.ServerConfig {
	var akf *auth.AuthorizedKeysFile
	if o.authorizedKeys != "" {
		akf = &auth.AuthorizedKeysFile{Path: o.authorizedKeys, Check: sftpOnlyKey}
		if o.shell {
			akf.Check = nil // any forced command runs, through the shell
		}
	}
	var trusted *auth.TrustedUserCAs
	if o.trustedUserCAKeys != "" {
		trusted = &auth.TrustedUserCAs{KeysFile: o.trustedUserCAKeys, Check: sftpOnlyPermissions}
		if o.shell {
			trusted.Check = nil
		}
		if o.authorizedPrincipalsFile != "" {
			// parseServeFlags checked the pattern.
			trusted.AuthorizedPrincipals, _ = auth.AuthorizedPrincipalsFile(o.authorizedPrincipalsFile)
		}
	}
	cfg := auth.ServerConfig{
		PublicKeyConnCallback: func(c auth.ConnMetadata, key kex.PublicKey) (*auth.Permissions, error) {
			remote := ""
			if c.RemoteAddr != nil {
				remote = c.RemoteAddr.String()
			}
			if c.User != userName {
				log.Warn("login refused: rsftp serve accepts only its own user name", "user", c.User, "serving_user", userName, "remote", remote)
				return nil, fmt.Errorf("user name %q is not %q", c.User, userName)
			}
			cert, _ := key.(*kex.Certificate)
			var errs []error
			// As sshd: TrustedUserCAKeys first, then authorized_keys.
			if cert != nil && trusted != nil {
				p, err := trusted.Authorize(c, cert)
				if err == nil {
					logCert(log, "certificate accepted", c.User, remote, cert, o.trustedUserCAKeys, nil)
					return p, nil
				}
				errs = append(errs, err)
			}
			if akf != nil {
				p, err := akf.Authorize(c, key)
				if err == nil {
					if cert != nil {
						logCert(log, "certificate accepted", c.User, remote, cert, o.authorizedKeys, nil)
					}
					return p, nil
				}
				errs = append(errs, err)
			}
			if len(errs) == 0 {
				errs = append(errs, errors.New("only certificates of the trusted user CAs are accepted"))
			}
			err := errs[0]
			if len(errs) == 2 {
				err = fmt.Errorf("%w; %w", errs[0], errs[1])
			}
			if cert != nil {
				logCert(log, "certificate refused", c.User, remote, cert, "", err)
			} else {
				log.Warn("key refused", "user", c.User, "remote", remote, "key", kex.FingerprintSHA256(key), "err", err)
			}
			return nil, err
		},
	}
	if o.revokedKeys != "" {
		cfg.RevokedKeys = auth.RevokedKeysFile(o.revokedKeys)
	}
	return cfg
}

// logCert logs a certificate's fate as sshd does: its ID, serial, key and
// CA.
func logCert(log *slog.Logger, msg, user, remote string, cert *kex.Certificate, via string, err error) {
	attrs := []any{"user", user, "remote", remote, "key_id", cert.KeyID, "serial", cert.Serial,
		"key", kex.FingerprintSHA256(cert.Key), "ca", cert.SignatureKey.Type() + " " + kex.FingerprintSHA256(cert.SignatureKey)}
	if err != nil {
		log.Warn(msg, append(attrs, "err", err)...)
		return
	}
	log.Info(msg, append(attrs, "via", via)...)
}

// serverConfig returns the server configuration the flags set: limits and
// resumption (nil if --hold 0). The caller adds keys, authentication,
// the SFTP subsystem, logging and the resumption events.
func (o *serveOptions) serverConfig() *rsftp.ServerConfig {
	cfg := &rsftp.ServerConfig{
		LoginGraceTime:        o.loginGrace,
		MaxStartups:           o.maxStartups,
		PerSourceMaxStartups:  o.perSourceStartups,
		PerSourceNetBlockSize: o.perSourceBlock,
		MaxSessionsPerConn:    o.maxSessions,
		MaxChannelsPerConn:    o.maxChannels,
		MaxWindowBytes:        o.maxWindowBytes,

		ClientAliveInterval: o.clientAlive,
		ClientAliveCountMax: o.clientAliveMax,
	}
	if o.hold > 0 {
		cfg.Resume = &rsftp.ResumeServerConfig{Hold: o.hold, IdleTimeout: o.idle, MaxSessions: o.maxResumable,
			MaxDetachedPerUser: o.maxPerUser, MaxRetainedBytes: o.maxRetained,
			MaxRetainedPerSession: int(min(o.maxRetainedPerSession, 1<<40))}
	}
	o.forwardingConfig(cfg)
	if o.shell {
		cfg.Exec = rsftp.ShellHandler(rsftp.ShellConfig{})
		cfg.AcceptEnv = o.acceptEnv
	}
	return cfg
}

// sftpConfig is the configuration of the SFTP sessions; SFTPHandler adds
// each session's user and address to l.
func (o *serveOptions) sftpConfig(l *slog.Logger) *sftp.ServerConfig {
	return &sftp.ServerConfig{Root: o.root, ReadOnly: o.readOnly, MaxHandles: o.maxHandles, Logger: l}
}

// serveGCPercent is rsftp serve's GOGC, unless the environment sets one.
// The server's heap is mostly buffers the collector does not scan
// (messages retained for resending, input buffers that channel data is
// queued in, file data on its way), so a collection costs it little,
// while Go's default of 100 lets the heap grow to twice what is in use
// before it collects. Measured on the 2-core development VM (issue 17,
// under load from others' builds): over eight 1 GiB transfers of
// scripts/bench-sftp.sh's kind (get and put, both ciphers), peak RSS was
// 82-89 MiB at 100 and 51-59 MiB at 50, and the server's CPU time per
// GiB did not move (aes128-gcm get 0.72 s at both, put 0.86 and 0.87 s;
// medians of 4).
const serveGCPercent = 50

// runServe is an SFTP server; --shell adds shells and commands (with
// ptys), --forwarding forwarding, each as the user it runs as. Every key logs in as one user name (--user, else the
// user running it); other names are refused.
func runServe(ctx context.Context, args []string) error {
	o, err := parseServeFlags(args, os.Stdout) // -h: the usage, on stdout
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
	if o.root == "" || o.hostKey == "" || o.authorizedKeys == "" && o.trustedUserCAKeys == "" {
		return usageErr("serve needs --root, --host-key and --authorized-keys (or --trusted-user-ca-keys)")
	}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, nil)
	if o.json {
		h = slog.NewJSONHandler(os.Stderr, nil)
	}
	log := slog.New(h)

	userName, err := o.servingUser()
	if err != nil {
		return err
	}
	if fi, err := os.Stat(o.root); err != nil || !fi.IsDir() {
		return fmt.Errorf("--root %s is not a directory", o.root)
	}
	hostKey, created, err := loadOrCreateHostKey(o.hostKey)
	if errors.Is(err, auth.ErrPassphraseRequired) {
		return fmt.Errorf("--host-key %s is encrypted: a host key must have no passphrase (ssh-keygen -p -N '' -f %s removes it, or omit the file to have rsftp create one)", o.hostKey, o.hostKey)
	}
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		return fmt.Errorf("--host-key: %w", err) // the error names the file
	} else if err != nil {
		return fmt.Errorf("--host-key %s: %w", o.hostKey, err)
	}
	fp := kex.FingerprintSHA256(hostKey.PublicKey())
	if created {
		fmt.Fprintf(os.Stderr, "created host key %s\n", o.hostKey)
	}
	fmt.Fprintf(os.Stderr, "host key fingerprint %s (%s)\n", fp, hostKey.PublicKey().Type())
	hostKeys, err := o.hostKeys(hostKey, log)
	if err != nil {
		return err
	}
	for _, f := range []struct{ flag, path string }{{"authorized-keys", o.authorizedKeys}, {"trusted-user-ca-keys", o.trustedUserCAKeys}} {
		if f.path == "" {
			continue
		}
		if _, err := auth.LoadAuthorizedKeys(f.path); err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				return fmt.Errorf("--%s: %w", f.flag, err)
			}
			log.Warn("key file has lines that were skipped", "file", f.path, "err", err)
		}
	}
	if o.revokedKeys != "" {
		// Unreadable, it would refuse every key: say so now.
		if err := auth.RevokedKeysFile(o.revokedKeys)(hostKey.PublicKey()); err != nil && !errors.Is(err, auth.ErrKeyRevoked) {
			return fmt.Errorf("--revoked-keys: %w", err)
		}
	}

	events, err := openEventLog(o.events)
	if err != nil {
		return err
	}
	defer events.close()
	cfg := o.serveConfig(hostKey, userName, log)
	cfg.HostKeys = hostKeys // with the host certificate, if any
	if cfg.Resume != nil {
		cfg.Resume.Events = func(e rsftp.Event) {
			events.write(e)
			attrs := []any{"event", string(e.Kind)}
			if e.User != "" {
				attrs = append(attrs, "user", e.User)
			}
			if e.Remote != "" {
				attrs = append(attrs, "remote", e.Remote)
			}
			if e.Session != "" {
				attrs = append(attrs, "session", e.Session)
			}
			if e.Kind == rsftp.EventResumed {
				attrs = append(attrs, "offline", e.Offline, "handshake", e.Handshake, "resent_bytes", e.Retransmitted)
			}
			if e.Err != nil {
				attrs = append(attrs, "err", e.Err)
			}
			log.Info("resumable session", attrs...)
		}
		fmt.Fprintf(os.Stderr, "sessions survive lost connections for %v (--hold)\n", o.hold)
	}
	srv, err := rsftp.NewServer(cfg)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", o.listen, err)
	}
	log.Info("listening", "addr", l.Addr().String(), "root", o.root, "host_key", fp, "user", userName)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	err = srv.Serve(l)
	if ctx.Err() != nil {
		log.Info("shutting down")
		return nil
	}
	return err
}

// serveConfig is the whole server rsftp serve runs, but for the
// resumption events: the limits and resumption the flags set, the host
// key, authentication (authConfig) and the SFTP subsystem, logging to
// log.
func (o *serveOptions) serveConfig(hostKey kex.Signer, userName string, log *slog.Logger) *rsftp.ServerConfig {
	cfg := o.serverConfig()
	cfg.HostKeys = []kex.Signer{hostKey}
	cfg.Auth = o.authConfig(userName, log)
	// Each SFTP session logs with its user and address.
	cfg.Subsystems = map[string]rsftp.Handler{"sftp": rsftp.SFTPHandler(o.sftpConfig(log))}
	cfg.Logger = log
	return cfg
}

// loadOrCreateHostKey reads an OpenSSH private key, or creates an ed25519
// one (and its .pub) if the file does not exist.
func loadOrCreateHostKey(path string) (kex.Signer, bool, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		k, _, err := auth.ParsePrivateKey(data, nil)
		if err != nil {
			return nil, false, err
		}
		s, err := kex.NewSigner(k)
		return s, false, err
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, err
	}
	host, _ := os.Hostname()
	pem, err := auth.MarshalPrivateKey(priv, "rsftp@"+host, nil)
	if err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, err
	}
	if _, err := f.Write(pem); err != nil {
		f.Close()
		os.Remove(path)
		return nil, false, err
	}
	if err := f.Close(); err != nil {
		return nil, false, err
	}
	s, err := kex.NewSigner(priv)
	if err != nil {
		return nil, false, err
	}
	pub := kex.MarshalAuthorizedKey(s.PublicKey())
	os.WriteFile(path+".pub", []byte(pub+" rsftp@"+host+"\n"), 0o644)
	return s, true, nil
}

// hostKeys are the host key and, with --host-cert, the signer that
// presents its certificate.
func (o *serveOptions) hostKeys(hostKey kex.Signer, log *slog.Logger) ([]kex.Signer, error) {
	keys := []kex.Signer{hostKey}
	if o.hostCert != "" {
		cs, err := loadHostCert(o.hostCert, hostKey, log)
		if err != nil {
			return nil, err
		}
		keys = append(keys, cs)
	}
	return keys, nil
}

// loadHostCert reads a host certificate (an OpenSSH -cert.pub file) for
// hostKey and returns the signer that presents it: the transport then
// offers its -cert-v01@openssh.com algorithms beside the plain key's and
// sends the certificate as the host key to a client that picks one.
func loadHostCert(path string, hostKey kex.Signer, log *slog.Logger) (kex.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--host-cert: %w", err)
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return nil, fmt.Errorf("--host-cert %s: not a certificate file (type base64 [comment])", path)
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return nil, fmt.Errorf("--host-cert %s: %w", path, err)
	}
	cert, err := kex.ParseCertificate(blob)
	if err != nil {
		return nil, fmt.Errorf("--host-cert %s: %w", path, err)
	}
	if cert.Type() != f[0] {
		return nil, fmt.Errorf("--host-cert %s: type field %s does not match the certificate (%s)", path, f[0], cert.Type())
	}
	if cert.CertType != kex.HostCert {
		return nil, fmt.Errorf("--host-cert %s: a user certificate, not a host certificate (ssh-keygen -h signs host keys)", path)
	}
	cs, err := kex.NewCertSigner(cert, hostKey)
	if err != nil {
		return nil, fmt.Errorf("--host-cert %s: %w (of --host-key %s)", path, err, kex.FingerprintSHA256(hostKey.PublicKey()))
	}
	// Clients judge the rest; an operator should hear of it now.
	if err := kex.CheckCertificate(cert, kex.CertCheck{Type: kex.HostCert}); err != nil {
		log.Warn("host certificate will be refused by clients", "file", path, "err", err)
	}
	fmt.Fprintf(os.Stderr, "host certificate ID %q (serial %d) for %s, signed by CA %s\n", cert.KeyID, cert.Serial,
		strings.Join(cert.ValidPrincipals, ","), kex.FingerprintSHA256(cert.SignatureKey))
	return cs, nil
}
