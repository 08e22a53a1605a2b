package rsftp

import (
	"context"

	"github.com/rsftp/rsftp/sftp"
)

// SFTP opens a session channel, starts the "sftp" subsystem on it and
// returns an SFTP client over it: the usual way to transfer files with a
// Client. ctx bounds the opening, the subsystem request and SFTP's version
// exchange; once SFTP returns, cancelling it has no effect. Closing the
// SFTP client closes its session; Close of the Client ends every session.
// Each call opens a session of its own, and the server may limit how many
// a connection has open (MaxSessionsPerConn on ours, MaxSessions on
// OpenSSH's).
func (c *Client) SFTP(ctx context.Context, opts ...sftp.ClientOption) (*sftp.Client, error) {
	sess, err := c.NewSession(ctx)
	if err != nil {
		return nil, err
	}
	if err := sess.Subsystem(ctx, "sftp"); err != nil {
		sess.Close()
		return nil, err
	}
	// NewClient closes the channel, and so the session, if it fails.
	return sftp.NewClient(ctx, sess.Channel(), opts...)
}

// SFTPHandler returns a Handler that serves SFTP with cfg on each session
// it is given: register it as ServerConfig.Subsystems["sftp"]. cfg is
// shared by the sessions and must not change once the server runs.
//
// If cfg.Logger is set, each session logs to it with the session's user
// and remote address added ("user", "remote"): "sftp session started",
// then "sftp session ended" (a warning with "err" if the session failed).
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
			if l != nil {
				l.Warn("sftp session ended", "err", err)
			}
			return 1
		}
		if l != nil {
			l.Info("sftp session ended")
		}
		return 0
	}
}
