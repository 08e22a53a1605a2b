// Package rsftp is an SSH client and server stack written from scratch,
// built so that sessions can survive the network (see the resume package).
//
// A client (ExampleDial, with its error checks):
//
//	cfg := &rsftp.ClientConfig{
//		User:            "alice",
//		Auth:            []auth.Method{auth.PublicKeys(signer)},
//		HostKeyCallback: auth.KnownHostsCallback(knownHostsFiles, auth.StrictYes, false),
//	}
//	c, err := rsftp.Dial(ctx, "tcp", "example.org:22", cfg)
//	sess, err := c.NewSession(ctx)
//	out, err := sess.Output(ctx, "uname -a")
//	sc, err := c.SFTP(ctx) // an *sftp.Client on a session of its own
//	err = sc.Download(ctx, "report.csv", "report.csv", sftp.TransferOptions{})
//
// An SFTP server (ExampleSFTPHandler): ServerConfig with host keys,
// authentication and SFTPHandler as the "sftp" subsystem, then
// Server.Serve; ServerConfig.Logger and sftp.ServerConfig.Logger take a
// *slog.Logger (nil is silent). Exec and CommandHandler run commands.
package rsftp

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/internal/netwatch"
	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/resume"
	"github.com/rsftp/rsftp/transport"
)

// HostKeyCallback decides whether to trust a server's host key. host and
// port are as dialled.
type HostKeyCallback func(host string, port int, key kex.PublicKey) error

// ClientConfig configures a client connection.
type ClientConfig struct {
	// User is the name to log in as.
	User string
	// Auth lists the authentication methods to try, in order.
	Auth []auth.Method
	// PublicKeyAlgorithms, if not nil, are the signature algorithms
	// publickey may use, in order of preference (ssh's
	// PubkeyAcceptedAlgorithms; see auth.ClientConfig).
	PublicKeyAlgorithms []string
	// HostKeyCallback is required: it decides whether the server's host
	// key is the expected one (see auth.KnownHostsCallback for known_hosts).
	HostKeyCallback HostKeyCallback
	// Banner, if set, receives the server's authentication banner.
	Banner func(msg string)
	// Transport tunes algorithms and rekeying; HostKeyCallback there is
	// ignored.
	Transport transport.Config
	// Channel tunes windows and packet sizes.
	Channel channel.Config
	// Resume, if set, offers session resumption: the session then
	// survives the loss of its TCP connection (see ResumeConfig).
	Resume *ResumeConfig
}

// Client is an authenticated SSH client connection.
type Client struct {
	mu   sync.Mutex
	conn *transport.Conn // the current connection
	mux  *channel.Mux
	rs   *resume.Session    // nil unless the session is resumable
	sv   *resume.Supervisor // nil unless the session is resumable
	fwd  *clientForwards    // remote forwards and the forwarded agent
}

// Dial connects to addr, runs the key exchange, verifies the host key,
// authenticates and returns a Client. ctx bounds all of that; once Dial
// returns, cancelling ctx has no effect on the connection.
func Dial(ctx context.Context, network, addr string, cfg *ClientConfig) (*Client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("ssh: dial %s: %w", addr, err)
	}
	c, err := NewClient(ctx, nc, addr, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// resumeExtension describes the session resumption extension
// (docs/PROTOCOL.resume.md) to the transport: its KEXINIT names, its
// messages, and that a failure of a connection must not end the session
// with DISCONNECT.
var resumeExtension = transport.Extension{
	Client: resume.ClientKexName, Server: resume.ServerKexName,
	FirstMsg: resume.MsgEnable, LastMsg: resume.MsgAck,
	QuietFailures: true,
}

// withResumeExtension returns a copy of exts with the resume extension if
// on and without it otherwise: ClientConfig.Resume and ServerConfig.Resume
// decide, not the transport configuration.
func withResumeExtension(exts []transport.Extension, on bool) []transport.Extension {
	out := slices.DeleteFunc(slices.Clone(exts), func(e transport.Extension) bool {
		return e.Client == resume.ClientKexName
	})
	if on {
		out = append(out, resumeExtension)
	}
	return out
}

// NewClient runs the SSH handshake and authentication over an existing
// connection. addr names the server for the host key check.
func NewClient(ctx context.Context, nc net.Conn, addr string, cfg *ClientConfig) (*Client, error) {
	if cfg.HostKeyCallback == nil {
		return nil, errors.New("ssh: ClientConfig.HostKeyCallback is nil: refusing to connect without a way to check the host key")
	}
	host, port := splitHostPort(addr)
	tc := cfg.Transport
	tc.HostKeyCallback = func(key kex.PublicKey) error { return cfg.HostKeyCallback(host, port, key) }
	tc.Extensions = withResumeExtension(tc.Extensions, cfg.Resume != nil)
	conn, err := transport.NewClientConn(ctx, nc, &tc)
	if err != nil {
		return nil, fmt.Errorf("ssh: handshake with %s: %w", addr, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	err = auth.Authenticate(ctx, conn, &auth.ClientConfig{
		User:    cfg.User,
		Methods: cfg.Auth,
		Banner:  cfg.Banner,
		ServerSigAlgs: func() []string {
			return conn.ServerSigAlgs()
		},
		PublicKeyAlgorithms: cfg.PublicKeyAlgorithms,
	})
	if !stop() {
		conn.Close()
		return nil, fmt.Errorf("ssh: authenticating to %s: %w", addr, ctx.Err())
	}
	if err != nil {
		var de *auth.DisconnectError
		if errors.As(err, &de) {
			conn.Disconnect(de.Reason, de.Message)
		} else {
			conn.Close()
		}
		return nil, fmt.Errorf("ssh: %s: %w", addr, err)
	}
	conn.SetAuthenticated()
	c := &Client{conn: conn, fwd: newClientForwards()}
	chcfg := cfg.Channel
	if chcfg.MaxWindowTotal == 0 {
		// A client's windows are its own choice (its downloads grow
		// them with the round trip), not a peer's: a server's bound
		// would starve parallel transfers.
		chcfg.MaxWindowTotal = DefaultClientMaxWindowTotal
	}
	if !conn.Negotiated(resume.ClientKexName) {
		c.mux = channel.NewMux(conn, &chcfg, c.fwd.register)
		c.fwd.start(c.mux)
		return c, nil
	}
	// The server sends RESUME_ENABLE right after USERAUTH_SUCCESS.
	stop = context.AfterFunc(ctx, func() { conn.Close() })
	p, err := conn.ReadPacket()
	if !stop() {
		return nil, fmt.Errorf("ssh: waiting for %s's RESUME_ENABLE: %w", addr, ctx.Err())
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ssh: %s: resume: %w", addr, err)
	}
	// Transport messages (IGNORE, DEBUG, EXT_INFO, PING) were handled
	// inside ReadPacket; anything else in place of RESUME_ENABLE, or an
	// ENABLE that does not parse, is a protocol error.
	if p[0] != resume.MsgEnable {
		err = fmt.Errorf("the server sent message %d instead of RESUME_ENABLE", p[0])
	}
	var rs *resume.Session
	var rk []byte
	if err == nil {
		rk, err = resume.Key(conn)
	}
	if err == nil {
		rs, err = resume.EnableClient(conn, rk, p)
	}
	if err != nil {
		conn.Disconnect(wire.DisconnectProtocolError, err.Error())
		return nil, fmt.Errorf("ssh: %s: resume: %w", addr, err)
	}
	if rs.Hold() == 0 {
		// The server will not keep this session: plain SSH.
		c.mux = channel.NewMux(notResumable{conn}, &chcfg, c.fwd.register)
		c.fwd.start(c.mux)
		return c, nil
	}
	c.rs = rs
	c.mux = channel.NewMux(rs, &chcfg, c.fwd.register)
	c.fwd.start(c.mux)
	// Reconnections must meet the very host key this connection
	// checked, not merely one the callback would accept: a permissive
	// callback would otherwise let a man in the middle answer a
	// resumption (with RESUME_FAILURE, ending the session).
	rtc := tc
	rtc.HostKeyCallback = pinnedHostKey(addr, conn.HostKey())
	c.sv = c.supervise(cfg.Resume, rtc, nc.RemoteAddr().Network(), addr)
	return c, nil
}

func (c *Client) setConn(conn *transport.Conn) {
	c.mu.Lock()
	c.conn = conn
	c.mu.Unlock()
}

// Resumable reports whether the session survives the loss of its
// connection (both sides support resumption and the server keeps it).
func (c *Client) Resumable() bool { return c.rs != nil }

// ResumeStatus is a copy of a resumable session's state, as
// Client.ResumeStatus reads it: changing it changes nothing.
type ResumeStatus struct {
	// Handle is the session's handle (a copy); Session its first 8
	// bytes in hex, as the server's events (Event.Session) name it.
	Handle  []byte
	Session string
	// State is Attached while the session runs on a connection,
	// Detached while it has none (reconnecting), Closed once it ended.
	State resume.State
	// Hold is how long the server keeps the session after a lost
	// connection, as it announced.
	Hold time.Duration
	// Stats are the session's counters: messages sent, acknowledged and
	// received, retained bytes, connections, resends.
	Stats resume.Stats
	// Err is why the session ended; nil unless State is Closed.
	Err error
}

// ResumeStatus reports the state of a resumable session; ok is false
// when the session is not resumable (see Resumable). The fields are read
// one after another, not as one snapshot: a session that changes state
// meanwhile may show the counters of just before or just after. The
// session itself stays inside the Client: its writes would bypass the
// multiplexer.
func (c *Client) ResumeStatus() (st ResumeStatus, ok bool) {
	if c.rs == nil {
		return ResumeStatus{}, false
	}
	h := c.rs.Handle()
	st = ResumeStatus{
		Handle:  h,
		Session: hex.EncodeToString(h[:min(8, len(h))]),
		State:   c.rs.State(),
		Hold:    c.rs.Hold(),
		Stats:   c.rs.Stats(),
	}
	if st.State == resume.Closed {
		st.Err = c.rs.Err()
	}
	return st, true
}

// Reconnect drops the current connection and reconnects at once (a
// manual trigger, such as rsftp's SIGUSR2). It does nothing unless the
// session is resumable.
func (c *Client) Reconnect() {
	if c.sv != nil {
		c.sv.Trigger()
	}
}

func splitHostPort(addr string) (string, int) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 22
	}
	port, err := strconv.Atoi(ps)
	if err != nil {
		return host, 22
	}
	return host, port
}

// Transport exposes the current transport connection (sequence numbers,
// algorithms, rekeying). It changes when a resumable session reconnects.
func (c *Client) Transport() *transport.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn
}

// Mux exposes the channel multiplexer.
func (c *Client) Mux() *channel.Mux { return c.mux }

// NewSession opens a session channel.
func (c *Client) NewSession(ctx context.Context) (*channel.Session, error) {
	return c.mux.NewSession(ctx)
}

// DialTCP opens a direct-tcpip channel to host:port as seen from the
// server (local port forwarding).
func (c *Client) DialTCP(ctx context.Context, host string, port int) (net.Conn, error) {
	return c.mux.DialTCP(ctx, host, port)
}

// Close ends the session: DISCONNECT on the current connection. A
// resumable session that is detached just ends (the server learns it at
// the end of its hold time).
func (c *Client) Close() error {
	c.mux.Close()
	err := c.Transport().Close()
	if c.sv != nil {
		<-c.sv.Done() // its last event is out
	}
	return err
}

// Wait blocks until the connection ends and returns why.
func (c *Client) Wait() error { return c.mux.Wait() }

// DefaultClientMaxWindowTotal bounds the receive windows of a client's
// channels together (channel.Config.MaxWindowTotal) unless set: four
// downloads whose windows grew to channel.MaxGrownWindow.
const DefaultClientMaxWindowTotal = 4 * channel.MaxGrownWindow

// pinnedHostKey accepts only the host key want (docs/PROTOCOL.resume.md:
// a reconnection presents the first connection's host key).
func pinnedHostKey(addr string, want kex.PublicKey) func(kex.PublicKey) error {
	blob := want.Marshal()
	return func(key kex.PublicKey) error {
		if !bytes.Equal(key.Marshal(), blob) {
			return fmt.Errorf("ssh: %s presented a %s host key on reconnection, not the %s key of the session's first connection", addr, key.Type(), want.Type())
		}
		return nil
	}
}

// notResumable is the connection of a session the server announced with
// hold time 0 (docs/PROTOCOL.resume.md section 4.2): the extension was
// negotiated, so messages 200-204 are known, and none is allowed any
// more; one ends the connection with DISCONNECT PROTOCOL_ERROR instead of
// reaching the multiplexer, which would ignore it.
type notResumable struct{ *transport.Conn }

func (n notResumable) ReadPacket() ([]byte, error) {
	p, err := n.Conn.ReadPacket()
	if err == nil && resume.IsResumeMessage(p[0]) {
		err = fmt.Errorf("ssh: resume message %d on a session that is not resumable", p[0])
		n.Conn.Disconnect(wire.DisconnectProtocolError, err.Error())
		return nil, err
	}
	return p, err
}

// ResumeConfig turns on session resumption for a client
// (docs/PROTOCOL.resume.md). With a server that does not offer it the
// connection is plain SSH.
type ResumeConfig struct {
	// Redial opens a new connection to the server for a reconnection
	// attempt. If nil, the client dials the address it was given again,
	// resolving the name anew (a DNS change is followed).
	Redial func(ctx context.Context) (net.Conn, error)
	// AliveInterval and AliveCountMax detect a dead link that gives no
	// error (a blackhole): after AliveInterval without a packet from the
	// server the client pings it, and after AliveCountMax such intervals
	// it drops the connection and reconnects. Defaults 1 s and 3.
	AliveInterval time.Duration
	AliveCountMax int
	// MinBackoff and MaxBackoff bound the wait between attempts, which
	// doubles from MinBackoff with 25 % jitter. Defaults 50 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one attempt (connect, key exchange, resume).
	// Default 10 s.
	AttemptTimeout time.Duration
	// NoNetworkWatch turns off watching the system's addresses and routes
	// (Linux netlink): by default a change that moves the route to the
	// server to another source address reconnects at once, and one that
	// happens while detached retries at once.
	NoNetworkWatch bool
	// Events, if set, receives each change of the session's connection.
	// It is called from the client's goroutine and must not block.
	Events func(Event)
}

// ErrHoldExpired ends a client's session when the server's hold time ran
// out before a reconnection succeeded.
var ErrHoldExpired = resume.ErrHoldExpired

// supervise starts the resume.Supervisor of the client's session: the
// policy of rc, and a Redial that dials the server again (rc.Redial, or
// network and addr, resolving the name anew) and runs the key exchange
// with tc, whose host key callback accepts only the first connection's
// key.
func (c *Client) supervise(rc *ResumeConfig, tc transport.Config, network, addr string) *resume.Supervisor {
	dial := rc.Redial
	if dial == nil {
		dial = func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
	}
	cfg := resume.SupervisorConfig{
		Redial: func(ctx context.Context) (resume.Transport, error) {
			nc, err := dial(ctx)
			if err != nil {
				return nil, fmt.Errorf("connect: %w", err)
			}
			conn, err := transport.NewClientConn(ctx, nc, &tc)
			if err != nil {
				nc.Close()
				return nil, fmt.Errorf("handshake: %w", err)
			}
			if !conn.Negotiated(resume.ClientKexName) {
				conn.Close()
				return nil, errors.New("the server no longer offers session resumption")
			}
			return conn, nil
		},
		Attached: func(t resume.Transport) {
			conn := t.(*transport.Conn)
			conn.SetAuthenticated()
			c.setConn(conn)
		},
		AliveInterval:  rc.AliveInterval,
		AliveCountMax:  rc.AliveCountMax,
		Probe:          func(t resume.Transport) { c.probe(t.(*transport.Conn), rc) },
		MinBackoff:     rc.MinBackoff,
		MaxBackoff:     rc.MaxBackoff,
		AttemptTimeout: rc.AttemptTimeout,
		Remote:         addr,
		Events:         rc.Events,
	}
	var watcher *netwatch.Watcher
	if !rc.NoNetworkWatch {
		if w, err := netwatch.New(); err == nil {
			watcher = w
			cfg.PathChanges = w.Changes()
			cfg.PathChanged = func(t resume.Transport) bool {
				conn := t.(*transport.Conn)
				return netwatch.PathChanged(conn.LocalAddr(), conn.RemoteAddr())
			}
		}
	}
	sv := resume.Supervise(c.rs, c.Transport(), cfg)
	if watcher != nil {
		go func() {
			<-sv.Done()
			watcher.Close()
		}()
	}
	return sv
}

// probe asks the server for an answer: ping@openssh.com where it offers
// it, else a keepalive@openssh.com global request with want-reply, which
// every server answers (with REQUEST_FAILURE if it does not know it). A
// server that does not advertise ping would otherwise hear nothing from
// an idle client, which would take its silence for a dead link every few
// seconds. The request is a connection-layer message, counted and
// resent like any other; probe waits for its reply (bounded), so that
// one is outstanding at a time.
func (c *Client) probe(conn *transport.Conn, rc *ResumeConfig) {
	if _, ok := conn.ExtInfo("ping@openssh.com"); ok {
		conn.SendPing(nil)
		return
	}
	interval, count := rc.AliveInterval, rc.AliveCountMax
	if interval <= 0 {
		interval = time.Second
	}
	if count <= 0 {
		count = 3
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(count+1)*interval)
	defer cancel()
	c.mux.SendRequest(ctx, "keepalive@openssh.com", true, nil)
}
