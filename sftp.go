package rsftp

import (
	"context"
	"errors"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/sftp"
	"github.com/rsftp/rsftp/transport"
)

// SFTP opens a session channel, starts the "sftp" subsystem on it and
// returns an SFTP client over it: the usual way to transfer files with a
// Client. ctx bounds the opening, the subsystem request and SFTP's version
// exchange; once SFTP returns, cancelling it has no effect. Closing the
// SFTP client closes its session; Close of the Client ends every session.
// Each call opens a session of its own, and the server may limit how many
// a connection has open (MaxSessionsPerConn on ours, MaxSessions on
// OpenSSH's). The client may open more sessions for a large upload
// (sftp.WithStreams, sftp.TransferOptions.Streams), and closes them
// with itself.
func (c *Client) SFTP(ctx context.Context, opts ...sftp.ClientOption) (*sftp.Client, error) {
	// A large upload may open more sessions like this one (issue 17;
	// sftp.TransferOptions.Streams); the caller's options come after,
	// so sftp.WithStreams(nil) turns that off.
	opts = append([]sftp.ClientOption{sftp.WithStreams(c.SFTP)}, opts...)
	sess, err := c.NewSession(ctx)
	if err != nil {
		return nil, err
	}
	// SFTP's INIT follows the subsystem request without waiting for its
	// answer, as with OpenSSH's sftp: a round trip less (issue 17). A
	// refusal closes the session, which ends NewClient's wait for
	// VERSION, and is the error returned.
	wait, err := sess.StartSubsystem("sftp")
	if err != nil {
		sess.Close()
		return nil, err
	}
	refused := make(chan error, 1)
	go func() {
		// Not under ctx: a caller may end it as soon as SFTP returns,
		// which is no refusal. The answer comes before any data of the
		// subsystem's; closing the channel ends the wait too.
		if err := wait(context.Background()); err != nil {
			refused <- err
			sess.Close()
		}
	}()
	// NewClient closes the channel, and so the session, if it fails.
	sc, err := sftp.NewClient(ctx, sess.Channel(), opts...)
	if err != nil {
		select {
		case rerr := <-refused:
			return nil, rerr
		default:
		}
		return nil, err
	}
	return sc, nil
}

// SFTPHandler returns a Handler that serves SFTP with cfg on each session
// it is given: register it as ServerConfig.Subsystems["sftp"]. cfg is
// shared by the sessions and must not change once the server runs.
//
// If cfg.Logger is set, each session logs to it with the session's user
// and remote address added ("user", "remote"): "sftp session started",
// then "sftp session ended" (a warning with "err" if the session failed;
// with "reason" "connection closed" when the connection ended first).
// A nil Logger is silent. The exit status is 0, or 1 if sftp.Serve
// returned an error (such as a Root that cannot be opened).
func SFTPHandler(cfg *sftp.ServerConfig) Handler {
	return func(ctx context.Context, s *ServerSession) int {
		scfg := cfg
		l := cfg.Logger
		if l != nil {
			l = l.With("user", s.User, "remote", addrString(s.RemoteAddr))
			c := *cfg
			c.Logger = l
			scfg = &c
			l.Info("sftp session started")
		}
		if err := sftp.Serve(ctx, s.Channel, scfg); err != nil {
			if connectionClosed(ctx, err) {
				// The connection ended under the session: a client
				// that closes its connection after its last request
				// often does so before the server reads the channel's
				// EOF. Not a failure of the session.
				if l != nil {
					l.Info("sftp session ended", "reason", "connection closed")
				}
				return 0
			}
			// sftp.Serve logged it, as a warning with "err".
			return 1
		}
		if l != nil {
			l.Info("sftp session ended")
		}
		return 0
	}
}

// connectionClosed reports whether a session's error is its connection's
// normal end: the client's DISCONNECT "by application" (what ssh and our
// client send when they close), or the end of the connection's context.
func connectionClosed(ctx context.Context, err error) bool {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return true
	}
	var de *transport.DisconnectError
	return errors.As(err, &de) && de.FromPeer && de.Reason == wire.DisconnectByApplication
}
