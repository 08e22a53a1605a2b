package transport

import (
	"errors"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/wire"
)

// TestTransportFailureWithResumeSendsNoDisconnect: once the resume
// extension is in effect, a failure of the transport (an empty packet, a
// message that breaks a key exchange, a key exchange that fails) closes
// the connection without DISCONNECT, which would end the peer's session
// (docs/PROTOCOL.resume.md: DISCONNECT only ends a session on purpose).
// Without the extension the peer is told why, as before.
func TestTransportFailureWithResumeSendsNoDisconnect(t *testing.T) {
	// Each violation is written by the client straight into its output,
	// bypassing the checks of WritePacket.
	violations := map[string]func(c *Conn){
		"empty packet": func(c *Conn) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.sealLocked([]byte{})
			c.flushLocked()
		},
		// (Other messages are allowed inside a re-exchange, as OpenSSH
		// allows them: NEWKEYS before the key exchange is not.)
		"NEWKEYS inside a key exchange": func(c *Conn) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.startKexLocked(false)
			c.sealLocked([]byte{wire.MsgNewKeys})
			c.flushLocked()
		},
		"key exchange that fails": func(c *Conn) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.startKexLocked(false)
			c.sealLocked([]byte{wire.MsgKexECDHInit, 0, 0, 0, 3, 1, 2, 3})
			c.flushLocked()
		},
	}
	// run plays one violation and reports whether the client was told
	// (DISCONNECT from the server) and the error it saw.
	run := func(violate func(*Conn), resume bool) (bool, error) {
		cc, sc := newPair(t, func(c, s *Config) { c.Extensions, s.Extensions = withResume(resume), withResume(resume) })
		got := make(chan error, 1)
		go func() {
			cc.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				if _, err := cc.ReadPacket(); err != nil {
					got <- err
					return
				}
			}
		}()
		go func() {
			for {
				if _, err := sc.ReadPacket(); err != nil {
					return
				}
			}
		}()
		violate(cc)
		err := <-got
		var de *DisconnectError
		return errors.As(err, &de) && de.FromPeer, err
	}
	for name, violate := range violations {
		// With the extension in effect the server must never say
		// DISCONNECT.
		if told, err := run(violate, true); told {
			t.Errorf("%s, resume in effect: the server sent DISCONNECT (%v); it must only close", name, err)
		}
		// Without it the server says why; but its close may reach the
		// client first, as a reset that discards the DISCONNECT in
		// flight (the server closes with the violator's bytes unread),
		// so a few tries are allowed before concluding it never says it.
		var lastErr error
		told := false
		for range 5 {
			if told, lastErr = run(violate, false); told {
				break
			}
		}
		if !told {
			t.Errorf("%s, plain SSH: the server closed without DISCONNECT in 5 tries (%v)", name, lastErr)
		}
	}
}
