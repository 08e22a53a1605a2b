package rsftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/internal/connmsg"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/resume"
	"github.com/rsftp/rsftp/transport"
)

// Server defaults, as in OpenSSH where it has one.
const (
	DefaultLoginGraceTime = 2 * time.Minute
	// DefaultMaxUnauthConns is the Full figure of DefaultMaxStartups.
	//
	// Deprecated: use DefaultMaxStartups.
	DefaultMaxUnauthConns     = 100
	DefaultMaxSessionsPerConn = 64
	DefaultMaxWindowBytes     = 1 << 30
	DefaultMaxChannelsPerConn = channel.DefaultMaxChannels
)

// ServerSession is the server's side of one session channel, handed to a
// Handler once the client asked for exec, subsystem or shell. (The
// client's side is channel.Session, from Client.NewSession.)
type ServerSession struct {
	// Channel carries stdin (Read), stdout (Write) and stderr
	// (Channel.Stderr()).
	Channel *channel.Channel
	User    string
	Perms   *auth.Permissions
	// Env holds the environment variables the client sent, as
	// "NAME=value".
	Env []string
	// Command is the exec command; empty for a shell or a subsystem.
	Command string
	// Subsystem is the subsystem name (such as "sftp"); empty otherwise.
	Subsystem  string
	RemoteAddr net.Addr
	// Conn is the connection's transport: algorithms, sequence
	// numbers, strict kex.
	Conn *transport.Conn
	// OriginalCommand is, under a forced command (ServerConfig's
	// ForceCommand, a key's command=, a certificate's force-command),
	// the command the client asked for (SSH_ORIGINAL_COMMAND; for a
	// subsystem its name, empty for a shell); Command then holds the
	// forced one.
	OriginalCommand string
	// Forced says Command is a forced command: it runs even when empty
	// (an empty "shell -c"), where an empty Command would otherwise
	// start a shell.
	Forced bool
	// Pty is the pseudo-terminal the client asked for with pty-req,
	// allocated then; nil without one. Run gives it to the program.
	Pty *PtyRequest
	// ExitSignal, if a handler sets it (such as "TERM"), is reported
	// with exit-signal instead of the exit status, with ExitCoreDumped
	// and ExitMessage (Run sets all three).
	ExitSignal     string
	ExitCoreDumped bool
	ExitMessage    string
	// AgentSocket is the path of the private socket through which
	// programs of this session reach the client's forwarded agent, set
	// when the client asked for agent forwarding and the server granted
	// it; empty otherwise. A shell handler exports it as SSH_AUTH_SOCK.
	AgentSocket string

	state *sessionState // the requests while the handler runs, the pty
}

// Handler serves a session and returns its exit status. The server sends
// EOF, the exit status and CLOSE after it returns. ctx is cancelled when
// the connection ends.
type Handler func(ctx context.Context, s *ServerSession) (exitStatus int)

// ServerConfig configures a Server.
type ServerConfig struct {
	// HostKeys are the server's host keys (at least one).
	HostKeys []kex.Signer
	// Auth decides who may log in.
	Auth auth.ServerConfig
	// Exec serves "exec" requests (and "shell" with an empty Command).
	// If nil, exec and shell are refused.
	Exec Handler
	// Subsystems serve "subsystem" requests by name.
	Subsystems map[string]Handler
	// AcceptEnv lists the environment variables a client may set with
	// env requests, as sshd's AcceptEnv: patterns with * and ?, such as
	// "LANG" and "LC_*". Nil accepts none (sshd's default).
	AcceptEnv []string
	// ForceCommand, if set, runs instead of whatever exec, shell or
	// subsystem the client asks for (sshd's ForceCommand), through
	// Exec (or the "sftp" subsystem for "internal-sftp"); it wins over a
	// key's command= and a certificate's force-command, which are
	// honoured the same way. ServerSession.OriginalCommand keeps what
	// the client asked for.
	ForceCommand string
	// NoPTY refuses every pty-req (sshd's PermitTTY no). Without it, a
	// pty-req is granted when Exec is set, the system has
	// pseudo-terminals (not Windows), and the key or certificate allows
	// it (no no-pty, restrict or missing permit-pty).
	NoPTY bool
	// AllowTCPForwarding decides direct-tcpip requests (ssh -L) once
	// the authorized_keys line's or certificate's options
	// (no-port-forwarding, restrict, permitopen) and PermitOpen have
	// allowed them; nil refuses all.
	AllowTCPForwarding func(user, host string, port int) bool
	// AllowRemoteForwarding decides tcpip-forward requests (ssh -R):
	// the address as the client wrote it and the port it asks the
	// server to listen on (0: one the server picks), once the options
	// (no-port-forwarding, restrict, permitlisten) and PermitListen
	// have allowed them; nil refuses all. GatewayPorts decides the
	// addresses bound.
	AllowRemoteForwarding func(user, host string, port int) bool
	// AllowStreamLocalForwarding decides Unix socket forwarding once
	// the options (no-port-forwarding, restrict) have allowed it:
	// direct-streamlocal@openssh.com (listen false: the server connects
	// to path) and streamlocal-forward@openssh.com (listen true: it
	// listens at path, which must not exist, with mode 0600). A
	// relative path is taken from the home directory. Nil refuses all.
	AllowStreamLocalForwarding func(user, path string, listen bool) bool
	// AllowAgentForwarding decides auth-agent-req@openssh.com once the
	// options (no-agent-forwarding, restrict; a certificate without
	// permit-agent-forwarding) have allowed it; nil refuses all. A
	// granted session gets a socket in a private directory
	// (ServerSession.AgentSocket), removed when the session ends.
	AllowAgentForwarding func(user string) bool
	// PermitOpen restricts direct-tcpip destinations as sshd's
	// PermitOpen: entries "host:port" or "[IPv6]:port", "*" for any
	// host or any port, hosts compared as written (no lookup). Nil, or
	// "any" alone, permits any destination; "none" alone refuses all.
	// An authorized_keys permitopen= restricts further.
	PermitOpen []string
	// PermitListen restricts tcpip-forward as sshd's PermitListen:
	// entries "[host:]port", a bare port for any address, hosts as
	// patterns (* and ?) matched against the address the client asked
	// for (ssh asks for "localhost" by default), "*" for any port. Nil,
	// or "any" alone, permits any; "none" alone refuses all. An
	// authorized_keys permitlisten= restricts further.
	PermitListen []string
	// GatewayPorts decides which addresses remote forwards bind
	// (sshd's GatewayPorts; default GatewayPortsNo: loopback only).
	GatewayPorts GatewayPorts
	// StreamLocalBindUnlink makes streamlocal-forward replace a Unix
	// socket left at its path (by a server that did not end cleanly,
	// say) instead of refusing, as sshd's StreamLocalBindUnlink; a path
	// that is not a socket is still refused.
	StreamLocalBindUnlink bool
	// MaxForwardsPerConn bounds the listeners a connection holds: its
	// remote TCP and Unix socket forwards and its forwarded agents'
	// sockets; more are refused. Default DefaultMaxForwardsPerConn.
	MaxForwardsPerConn int
	// MaxPendingForwardsPerConn bounds the connections accepted on a
	// connection's listeners whose channels the client has not
	// answered yet (a detached session's wait until it is back);
	// further ones wait in the listen backlog. Default
	// DefaultMaxPendingForwardsPerConn.
	MaxPendingForwardsPerConn int

	// LoginGraceTime bounds everything before authentication succeeds:
	// the version exchange, the key exchange and user authentication
	// (for a resumption, up to its RESUME_REQUEST). A client that has
	// not authenticated by then, however slowly it is sending, is
	// disconnected and its MaxStartups slot freed. Default
	// DefaultLoginGraceTime.
	LoginGraceTime time.Duration
	// MaxStartups bounds connections that have not authenticated yet
	// (or, for a resumption, not sent their RESUME_REQUEST), with
	// OpenSSH's random early drop: see MaxStartups. A refused
	// connection is closed at once. Default DefaultMaxStartups
	// (10:30:100), or MaxUnauthConns if that is set.
	MaxStartups MaxStartups
	// PerSourceMaxStartups bounds the connections counted by
	// MaxStartups that come from one source (an address, or a block of
	// addresses: PerSourceNetBlockSize), whichever limit is lower
	// (OpenSSH's PerSourceMaxStartups). Addresses that are not IP
	// addresses count as one source. Default 0: no per-source limit,
	// as in OpenSSH.
	PerSourceMaxStartups int
	// PerSourceNetBlockSize groups source addresses for
	// PerSourceMaxStartups. Default DefaultNetBlockSize (32:128, each
	// address on its own).
	PerSourceNetBlockSize NetBlockSize
	// MaxUnauthConns, if set, is MaxStartups given as a single number
	// N: a hard cap of N unauthenticated connections (N:100:N), as
	// sshd reads "MaxStartups N". Setting both is an error.
	//
	// Deprecated: use MaxStartups.
	MaxUnauthConns int
	// MaxSessionsPerConn bounds open session channels per connection;
	// more are refused with resource-shortage. Default
	// DefaultMaxSessionsPerConn.
	MaxSessionsPerConn int
	// MaxChannelsPerConn bounds open channels of every type (sessions,
	// direct-tcpip) per connection; more are refused with
	// resource-shortage. It overrides Channel.MaxChannels. Default
	// Channel.MaxChannels if set, else DefaultMaxChannelsPerConn.
	MaxChannelsPerConn int
	// MaxWindowBytes bounds the receive windows of all channels of all
	// connections together (default DefaultMaxWindowBytes, 1 GiB): what
	// clients may send that the server buffers before it is read. Past it
	// new channels get smaller windows, down to one packet. Per
	// connection, Channel.MaxWindowTotal bounds them (default 64 MiB).
	MaxWindowBytes int64

	// ClientAliveInterval, if positive, makes the server probe a plain
	// (not resumable) connection that has sent no packet for that long
	// with keepalive@openssh.com, and close it when ClientAliveCountMax
	// probes in a row go unanswered (OpenSSH's options of the same
	// names): a client that vanished, or one that trickles a packet a
	// byte at a time, does not hold its connection for good. Resumable
	// connections have ResumeServerConfig.IdleTimeout instead, which
	// detaches rather than ends. Default 0: off, as in OpenSSH.
	ClientAliveInterval time.Duration
	// ClientAliveCountMax is how many probes may go unanswered; default
	// 3.
	ClientAliveCountMax int

	// Resume, if set, offers session resumption (docs/PROTOCOL.resume.md):
	// sessions then survive the loss of their connection for the hold
	// time.
	Resume *ResumeServerConfig

	Transport transport.Config
	Channel   channel.Config
	// Logger, if set, receives the server's connection events as
	// structured records, each with the peer's address as "remote": a
	// connection dropped at admission (MaxStartups) or failing its
	// handshake or authentication, a login ("user"), a resumed session, a
	// session that could not be made resumable, a connection ended by an
	// error or by unanswered keepalives. If Logger and Logf are both nil
	// the server is silent, as package sftp is with a nil Logger. Session
	// handlers log on their own (SFTPHandler logs to its
	// sftp.ServerConfig.Logger).
	Logger *slog.Logger
	// Logf is the older form of Logger: one formatted line per connection
	// event ("ssh: <remote>: <event>"). It is called only while Logger is
	// nil: if both are set, Logger wins and Logf gets nothing.
	Logf func(format string, args ...any)
}

// logConn reports an event of the connection from remote: to Logger as
// msg with the remote address and attrs, or else to Logf as the line
// format and args make after "ssh: <remote>: " (the lines Logf had before
// Logger existed), or nowhere.
func (s *Server) logConn(remote net.Addr, level slog.Level, msg string, attrs []any, format string, args ...any) {
	if l := s.cfg.Logger; l != nil {
		ctx := context.Background()
		if l.Enabled(ctx, level) {
			l.Log(ctx, level, msg, append([]any{"remote", addrString(remote)}, attrs...)...)
		}
		return
	}
	if s.cfg.Logf != nil {
		s.cfg.Logf("ssh: %v: "+format, append([]any{remote}, args...)...)
	}
}

// addrString is a.String(), or "" for no address.
func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// Server accepts SSH connections.
type Server struct {
	cfg     ServerConfig
	unauth  *startupLimiter
	ctx     context.Context
	cancel  context.CancelFunc
	mu      sync.Mutex
	lns     map[net.Listener]struct{}
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
	closing bool
	resumes *resume.Registry // nil unless cfg.Resume
	// budget counts what sessions retain for resending; windows the
	// channels' receive windows.
	budget, windows *resume.Budget
}

// NewServer checks cfg and returns a Server.
func NewServer(cfg *ServerConfig) (*Server, error) {
	if len(cfg.HostKeys) == 0 {
		return nil, errors.New("ssh: ServerConfig has no host keys")
	}
	if cfg.Auth.PublicKeyCallback == nil && cfg.Auth.PublicKeyConnCallback == nil && cfg.Auth.TrustedUserCAs == nil &&
		cfg.Auth.PasswordCallback == nil && cfg.Auth.KeyboardInteractiveCallback == nil && !cfg.Auth.NoneAllowed {
		return nil, errors.New("ssh: ServerConfig.Auth has no authentication callback: nobody could log in")
	}
	switch {
	case cfg.LoginGraceTime < 0:
		return nil, errors.New("ssh: ServerConfig.LoginGraceTime is negative")
	case cfg.MaxUnauthConns < 0:
		return nil, errors.New("ssh: ServerConfig.MaxUnauthConns is negative")
	case cfg.MaxUnauthConns > 0 && cfg.MaxStartups != (MaxStartups{}):
		return nil, errors.New("ssh: ServerConfig sets both MaxStartups and MaxUnauthConns (deprecated): set MaxStartups only")
	case cfg.PerSourceMaxStartups < 0:
		return nil, errors.New("ssh: ServerConfig.PerSourceMaxStartups is negative")
	case cfg.MaxSessionsPerConn < 0:
		return nil, errors.New("ssh: ServerConfig.MaxSessionsPerConn is negative")
	case cfg.MaxChannelsPerConn < 0:
		return nil, errors.New("ssh: ServerConfig.MaxChannelsPerConn is negative")
	case cfg.ClientAliveInterval < 0:
		return nil, errors.New("ssh: ServerConfig.ClientAliveInterval is negative")
	case cfg.ClientAliveCountMax < 0:
		return nil, errors.New("ssh: ServerConfig.ClientAliveCountMax is negative")
	case cfg.MaxForwardsPerConn < 0:
		return nil, errors.New("ssh: ServerConfig.MaxForwardsPerConn is negative")
	case cfg.MaxPendingForwardsPerConn < 0:
		return nil, errors.New("ssh: ServerConfig.MaxPendingForwardsPerConn is negative")
	case cfg.GatewayPorts < GatewayPortsNo || cfg.GatewayPorts > GatewayPortsClientSpecified:
		return nil, fmt.Errorf("ssh: ServerConfig.GatewayPorts %d is not one of the GatewayPorts constants", int(cfg.GatewayPorts))
	}
	if err := checkPermitList(cfg.PermitOpen, false); err != nil {
		return nil, fmt.Errorf("ssh: ServerConfig.PermitOpen: %w", err)
	}
	if err := checkPermitList(cfg.PermitListen, true); err != nil {
		return nil, fmt.Errorf("ssh: ServerConfig.PermitListen: %w", err)
	}
	s := &Server{cfg: *cfg, lns: map[net.Listener]struct{}{}, conns: map[net.Conn]struct{}{}}
	if s.cfg.LoginGraceTime == 0 {
		s.cfg.LoginGraceTime = DefaultLoginGraceTime
	}
	switch {
	case s.cfg.MaxUnauthConns > 0:
		s.cfg.MaxStartups = MaxStartups{Start: s.cfg.MaxUnauthConns, Rate: 100, Full: s.cfg.MaxUnauthConns}
	case s.cfg.MaxStartups == (MaxStartups{}):
		s.cfg.MaxStartups = DefaultMaxStartups
	}
	if err := s.cfg.MaxStartups.check(); err != nil {
		return nil, fmt.Errorf("ssh: ServerConfig.%w", err)
	}
	if s.cfg.PerSourceNetBlockSize == (NetBlockSize{}) {
		s.cfg.PerSourceNetBlockSize = DefaultNetBlockSize
	}
	if err := s.cfg.PerSourceNetBlockSize.check(); err != nil {
		return nil, fmt.Errorf("ssh: ServerConfig.%w", err)
	}
	if s.cfg.MaxSessionsPerConn == 0 {
		s.cfg.MaxSessionsPerConn = DefaultMaxSessionsPerConn
	}
	if s.cfg.MaxChannelsPerConn == 0 {
		s.cfg.MaxChannelsPerConn = DefaultMaxChannelsPerConn
		if s.cfg.Channel.MaxChannels > 0 {
			s.cfg.MaxChannelsPerConn = s.cfg.Channel.MaxChannels
		}
	}
	s.cfg.Channel.MaxChannels = s.cfg.MaxChannelsPerConn
	s.cfg.Transport.HostKeys = cfg.HostKeys
	// What peers can make the server hold is counted in two budgets:
	// what sessions retain for resending (sent, unacknowledged), and the
	// receive windows granted (what peers may send). Kept apart so that
	// windows granted ahead never starve the retention of replies.
	limit := int64(1 << 30)
	if cfg.Resume != nil && cfg.Resume.MaxRetainedBytes > 0 {
		limit = cfg.Resume.MaxRetainedBytes
	}
	s.budget = &resume.Budget{Limit: limit}
	if s.cfg.MaxWindowBytes < 0 {
		return nil, errors.New("ssh: ServerConfig.MaxWindowBytes is negative")
	}
	wlimit := s.cfg.MaxWindowBytes
	if wlimit == 0 {
		wlimit = DefaultMaxWindowBytes
	}
	s.windows = &resume.Budget{Limit: wlimit}
	if s.cfg.Channel.Budget == nil {
		s.cfg.Channel.Budget = s.windows
	}
	if cfg.Resume != nil {
		s.cfg.Transport.Extensions = withResumeExtension(s.cfg.Transport.Extensions, true)
		s.resumes = &resume.Registry{Hold: cfg.Resume.Hold, MaxSessions: cfg.Resume.MaxSessions,
			MaxDetachedPerUser: cfg.Resume.MaxDetachedPerUser, MaxRetainedPerSession: cfg.Resume.MaxRetainedPerSession,
			Budget: s.budget, IdleTimeout: cfg.Resume.IdleTimeout, Events: cfg.Resume.Events}
	}
	s.unauth = newStartupLimiter(s.cfg.MaxStartups, s.cfg.PerSourceMaxStartups, s.cfg.PerSourceNetBlockSize)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Serve accepts connections on l until Close. It returns nil after
// Close, else the accept error.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return errors.New("ssh: server closed")
	}
	s.lns[l] = struct{}{}
	s.mu.Unlock()
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("ssh: accept: %w", err)
		}
		delay = 0
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.ServeConn(nc)
		}()
	}
}

// ServeConn serves one connection and returns when it ends.
func (s *Server) ServeConn(nc net.Conn) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.conns[nc] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, nc)
		s.mu.Unlock()
		nc.Close()
	}()
	release, err := s.unauth.admit(nc.RemoteAddr())
	if err != nil {
		s.logConn(nc.RemoteAddr(), slog.LevelWarn, "connection dropped", []any{"err", err}, "%v; dropped", err)
		return
	}
	user, perms, conn, resumed, err := s.handshake(nc)
	release()
	if err != nil {
		s.logConn(nc.RemoteAddr(), slog.LevelInfo, "handshake failed", []any{"err", err}, "%v", err)
		return
	}
	if resumed != nil {
		// The session's own goroutine (that of its first connection)
		// serves it; this one only keeps the connection registered
		// until the session leaves it.
		s.logConn(nc.RemoteAddr(), slog.LevelInfo, "session resumed", []any{"session", fmt.Sprintf("%x", resumed.Handle()[:4])}, "resumed session %x", resumed.Handle()[:4])
		det, _ := resumed.Detached()
		select {
		case <-det:
		case <-resumed.Done():
		}
		return
	}
	s.logConn(nc.RemoteAddr(), slog.LevelInfo, "authenticated", []any{"user", user}, "authenticated as %q", user)
	var pc channel.PacketConn = conn
	if conn.Negotiated(resume.ServerKexName) && s.resumes != nil {
		rs, err := s.enableResume(conn, user, perms)
		if err != nil {
			s.logConn(nc.RemoteAddr(), slog.LevelWarn, "enabling resumption failed", []any{"err", err}, "%v", err)
			conn.Close()
			return
		}
		if rs != nil {
			pc = rs
		} else {
			pc = notResumable{conn} // hold 0: plain SSH
		}
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	sc := &serverConn{s: s, ctx: ctx, user: user, perms: perms, conn: conn, remote: nc.RemoteAddr()}
	sc.fwd = newServerForwards(sc)
	// Register before the first packet is read: a client may open its
	// session in the same flight as its last auth message.
	var sessions, forwards, streamlocals <-chan *channel.NewChannel
	var globals <-chan *channel.Request
	mux := channel.NewMux(pc, &s.cfg.Channel, func(m *channel.Mux) {
		sessions = m.HandleChannelOpen("session")
		forwards = m.HandleChannelOpen("direct-tcpip")
		streamlocals = m.HandleChannelOpen(connmsg.ChanDirectStreamLocal)
		globals = m.GlobalRequests()
	})
	sc.mux = mux
	stop := context.AfterFunc(ctx, func() { mux.Close() })
	defer stop()
	if _, resumable := pc.(*resume.Session); !resumable && s.cfg.ClientAliveInterval > 0 {
		go sc.clientAlive()
	}
	// This goroutine serves what the client opens and asks until the
	// multiplexer ends (it closes the three channels): one goroutine per
	// connection, not one per kind of request.
	sc.accept(globals, sessions, forwards, streamlocals)
	// The session has ended for good (a detached one keeps its
	// listeners): they close, their sockets are removed.
	sc.fwd.closeAll()
	if err := mux.Wait(); err != nil && !errors.Is(err, io.EOF) {
		s.logConn(nc.RemoteAddr(), slog.LevelInfo, "connection ended", []any{"err", err}, "connection ended: %v", err)
	}
}

// handshake runs the key exchange and then either user authentication
// or, if the client's first message is RESUME_REQUEST, the resumption of
// a session (returned as resumed).
func (s *Server) handshake(nc net.Conn) (user string, perms *auth.Permissions, conn *transport.Conn, resumed *resume.Session, err error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.LoginGraceTime)
	defer cancel()
	conn, err = transport.NewServerConn(ctx, nc, &s.cfg.Transport)
	if err != nil {
		return "", nil, nil, nil, err
	}
	// The timer must not read conn itself: auth.Serve also returns when
	// ctx ends, and the returns below set conn (a named result) to nil
	// while the timer's goroutine may not have used it yet.
	tc := conn
	stop := context.AfterFunc(ctx, func() {
		tc.Disconnect(2, "authentication timed out")
	})
	var t auth.Transport = conn
	if conn.Negotiated(resume.ServerKexName) && s.resumes != nil {
		p, err := conn.ReadPacket()
		if err != nil {
			stop()
			conn.Close()
			return "", nil, nil, nil, err
		}
		if p[0] == resume.MsgRequest {
			stop()
			// The resend of an accepted resumption goes to a client
			// that may not read: the grace time bounds it as it bounds
			// an authentication. Then the connection is dropped
			// without DISCONNECT: the session only detaches, and its
			// unauthenticated slot is freed.
			abort := context.AfterFunc(ctx, func() { tc.Abort() })
			rs, err := s.resumes.Resume(conn, p)
			abort()
			if err != nil {
				var f *resume.Failure
				if errors.As(err, &f) {
					return "", nil, nil, nil, fmt.Errorf("resume refused: %w", err)
				}
				return "", nil, nil, nil, fmt.Errorf("resume: %w", err)
			}
			conn.SetAuthenticated()
			return "", nil, nil, rs, nil
		}
		t = &firstPacket{Conn: conn, p: p}
	}
	user, perms, err = auth.Serve(ctx, t, &s.cfg.Auth)
	if !stop() {
		return "", nil, nil, nil, fmt.Errorf("authentication not finished within %v", s.cfg.LoginGraceTime)
	}
	if err != nil {
		var de *auth.DisconnectError
		if errors.As(err, &de) {
			conn.Disconnect(de.Reason, de.Message)
		} else {
			conn.Close()
		}
		return "", nil, nil, nil, err
	}
	conn.SetAuthenticated()
	return user, perms, conn, nil, nil
}

// RetentionBudget counts what resumable sessions retain for resending
// (ResumeServerConfig.MaxRetainedBytes).
func (s *Server) RetentionBudget() *resume.Budget { return s.budget }

// WindowBudget counts the receive windows the server's channels granted
// (ServerConfig.MaxWindowBytes), unless ServerConfig.Channel.Budget names
// another.
func (s *Server) WindowBudget() *resume.Budget { return s.windows }

// Close stops all listeners and connections. Resumable sessions end
// first, each client told with a DISCONNECT on the connection its
// session runs on, so that it does not reconnect to a server that has
// gone.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closing = true
	for l := range s.lns {
		l.Close()
	}
	s.mu.Unlock()
	// Resumable sessions end first, with a DISCONNECT on the connections
	// they run on: their clients must not take the connection's close
	// for a lost link and reconnect, for the hold time, to a server
	// that has gone (and a session left detached would keep its
	// connection's goroutines, and Close, waiting).
	if s.resumes != nil {
		s.resumes.Close()
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

type serverConn struct {
	s      *Server
	ctx    context.Context
	user   string
	perms  *auth.Permissions
	mux    *channel.Mux
	conn   *transport.Conn
	remote net.Addr

	mu       sync.Mutex
	sessions int

	fwd *serverForwards // remote forwards and forwarded agents
}

// accept serves the client's global requests, session channels,
// direct-tcpip and direct-streamlocal channels until all are closed.
func (sc *serverConn) accept(reqs <-chan *channel.Request, sessions, forwards, streamlocals <-chan *channel.NewChannel) {
	for reqs != nil || sessions != nil || forwards != nil || streamlocals != nil {
		select {
		case r, ok := <-reqs:
			if !ok {
				reqs = nil
				continue
			}
			// Forwarding requests are served in order, each answered
			// before the next is read: a forward's first
			// forwarded-tcpip open comes after its reply.
			// keepalive@openssh.com and anything unknown get the
			// standard failure reply.
			sc.globalRequest(r)
		case nc, ok := <-streamlocals:
			if !ok {
				streamlocals = nil
				continue
			}
			sc.directStreamLocal(nc)
		case nc, ok := <-sessions:
			if !ok {
				sessions = nil
				continue
			}
			sc.acceptSession(nc)
		case nc, ok := <-forwards:
			if !ok {
				forwards = nil
				continue
			}
			sc.acceptForward(nc)
		}
	}
}

func (sc *serverConn) acceptSession(nc *channel.NewChannel) {
	sc.mu.Lock()
	if sc.sessions >= sc.s.cfg.MaxSessionsPerConn {
		sc.mu.Unlock()
		nc.Reject(channel.ResourceShortage, "too many sessions")
		return
	}
	sc.sessions++
	sc.mu.Unlock()
	c, err := nc.Accept()
	if err != nil {
		sc.doneSession()
		return
	}
	go sc.serveSession(c)
}

func (sc *serverConn) doneSession() {
	sc.mu.Lock()
	sc.sessions--
	sc.mu.Unlock()
}

func (sc *serverConn) acceptForward(nc *channel.NewChannel) {
	host, port, err := nc.DirectTCPIP()
	if err != nil {
		nc.Reject(channel.ConnectFailed, "malformed direct-tcpip request")
		return
	}
	if !sc.allowDirectTCPIP(host, port) {
		sc.refuse("direct-tcpip "+listenAddr(host, port), errProhibited)
		nc.Reject(channel.Prohibited, "port forwarding is disabled")
		return
	}
	go channel.ServeDirectTCPIP(sc.ctx, nc, host, port)
}

// clientAlive probes a silent plain connection with keepalive@openssh.com
// and closes it after ClientAliveCountMax unanswered probes in a row.
// Any packet from the client counts as an answer.
func (sc *serverConn) clientAlive() {
	interval := sc.s.cfg.ClientAliveInterval
	maxMissed := sc.s.cfg.ClientAliveCountMax
	if maxMissed <= 0 {
		maxMissed = 3
	}
	wd := resume.NewWatchdog(sc.conn, resume.WatchdogConfig{
		Interval: interval,
		Probes:   maxMissed,
		// The reply (success or failure) arrives as a packet, which is
		// what the watchdog counts.
		Probe: func() {
			ctx, cancel := context.WithTimeout(sc.ctx, interval)
			defer cancel()
			sc.mux.SendRequest(ctx, "keepalive@openssh.com", true, nil)
		},
		Lost: func(time.Duration) {
			sc.s.logConn(sc.remote, slog.LevelInfo, "closing: keepalives unanswered", []any{"keepalives", maxMissed, "interval", interval},
				"client did not answer %d keepalives %v apart; closing", maxMissed, interval)
			sc.conn.Abort()
			sc.mux.Close()
		},
	})
	<-sc.mux.Done()
	wd.Stop()
}

// ResumeServerConfig turns on session resumption for a server.
type ResumeServerConfig struct {
	// Hold is how long a session whose connection was lost is kept for
	// its client to resume it (default resume.DefaultHold, one hour).
	Hold time.Duration
	// MaxSessions bounds resumable sessions, attached or not (default
	// 4096). Past it a new session may take the place of a detached
	// session of the owner with the most sessions, if that owner has
	// more than the new session's own; else the new session is plain SSH.
	MaxSessions int
	// MaxDetachedPerUser bounds the detached sessions of one owner (the
	// authenticated identity, auth.Permissions.Identity: for a key, its
	// fingerprint) (default 16); past it the owner's oldest goes.
	MaxDetachedPerUser int
	// MaxRetainedBytes bounds the memory that peers can make the server
	// hold, across all connections (default 1 GiB): what sessions,
	// attached or detached, retain for resending, and the channels'
	// receive windows. Writers of channel data wait for room; an owner
	// holding more than its share loses its largest detached sessions
	// first (resume.Registry).
	MaxRetainedBytes int64
	// MaxRetainedPerSession bounds what one session retains
	// (default resume.DefaultRetention, 64 MiB).
	MaxRetainedPerSession int
	// IdleTimeout detaches a session whose connection brought nothing
	// for that long (default 60 s): a client that vanished without a
	// FIN or RST then starts the hold timer. rsftp clients ping once a
	// second when they hear nothing, so a live one is never idle.
	IdleTimeout time.Duration
	// Events, if set, receives each change of a resumable session:
	// connected, link_lost, resumed, resume_failed, closed. It must not
	// block.
	Events func(Event)
}

// firstPacket hands a packet read ahead back to the next reader: the
// server reads the client's first message after the key exchange to tell
// a resumption from a new login.
type firstPacket struct {
	*transport.Conn
	p []byte
}

func (f *firstPacket) ReadPacket() ([]byte, error) {
	if p := f.p; p != nil {
		f.p = nil
		return p, nil
	}
	return f.Conn.ReadPacket()
}

// ResumeStats reports the server's resumable sessions: how many are
// kept, how many are detached, and the bytes they retain for resending.
// It is zero when resume is off.
func (s *Server) ResumeStats() resume.RegistryStats {
	if s.resumes == nil {
		return resume.RegistryStats{}
	}
	return s.resumes.Stats()
}

// enableResume makes a newly authenticated connection's session
// resumable, owned by the key that authenticated it
// (auth.Permissions.Identity) and rechecked on each resumption. If the
// server keeps no more sessions the registry says so to the client (hold
// time 0) and it returns nil: the connection is plain SSH.
func (s *Server) enableResume(conn *transport.Conn, user string, perms *auth.Permissions) (*resume.Session, error) {
	owner := resume.Owner{ID: "user:" + user, Name: user}
	if perms != nil {
		if perms.Identity != "" {
			owner.ID = perms.Identity
		}
		owner.Recheck = perms.Recheck
	}
	rk, err := resume.Key(conn)
	if err != nil {
		return nil, err
	}
	rs, err := s.resumes.Offer(conn, rk, owner)
	if errors.Is(err, resume.ErrTooManySessions) {
		s.logConn(conn.RemoteAddr(), slog.LevelInfo, "session not resumable", []any{"err", err}, "%v", err)
		return nil, nil
	}
	return rs, err
}
