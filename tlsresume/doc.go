// Package tlsresume is the TLS half of session resumption: a net.Conn
// over TLS 1.3 that survives lost connections, address changes and
// suspends, each byte delivered once and in order, against a server
// built with it, and plain TLS against everyone else
// (docs/PROTOCOL.tlsresume.md).
//
// The mode is negotiated in the TLS handshake through ALPN: the client
// offers each of its application protocols paired with the marker
// "rsftp-resume/1" before the protocols themselves; a server that knows
// the mode picks a pair, a stock one a plain protocol. Inside TLS, the
// application's bytes travel in records of this package (DATA), counted,
// retained until acknowledged and resent after a reconnection by package
// resume, the same machinery as the SSH extension's: its Session,
// Registry, Supervisor, Budget and events. The resume key is exported
// from the first connection's TLS keying material; a reconnection is a
// full TLS handshake, verified as the first was and with the same server
// key, and then a resume request whose MAC covers the new connection's
// tls-exporter channel binding (RFC 9266).
//
// Dial returns a *Conn, which stays the same object across
// reconnections. A Listener's Accept returns new sessions only (*Conn),
// or a *tls.Conn for a client without the mode; reconnections are
// absorbed into the sessions they resume.
package tlsresume
