package main

// The SOCKS server of rsftp ssh -D: SOCKS4 (with 4a's host names) and
// SOCKS5 without authentication (RFC 1928), CONNECT only. Each
// connection it accepts opens a direct-tcpip channel to the host the
// client names. The parsers take bytes and say what they found, need
// more, or refuse; none reads past what a message's own lengths allow,
// and a message that does not fit maxSOCKSMessage is refused.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"
)

// maxSOCKSMessage bounds one message from a SOCKS client: a SOCKS4
// request is 8 bytes, a user id and a host name of up to 255 bytes each
// with their NULs; SOCKS5's greeting is at most 257 bytes and a request
// 262.
const maxSOCKSMessage = 8 + 256 + 256

// maxSOCKSName bounds a SOCKS4 user id and a SOCKS4a host name.
const maxSOCKSName = 255

// errSOCKSShort says that a message is incomplete: read more.
var errSOCKSShort = errors.New("socks: message incomplete")

// socksRequest is what a client asks: a host (a name, or an address
// written out) and a port.
type socksRequest struct {
	version byte // 4 or 5
	host    string
	port    int
}

// SOCKS5 reply codes (RFC 1928 section 6).
const (
	socks5OK                 = 0
	socks5GeneralFailure     = 1
	socks5NotAllowed         = 2
	socks5NetworkUnreachable = 3
	socks5HostUnreachable    = 4
	socks5ConnectionRefused  = 5
	socks5CommandUnsupported = 7
	socks5AddressUnsupported = 8
	socks4Granted            = 0x5a
	socks4Rejected           = 0x5b
	socks5MethodNoAuth       = 0
	socks5MethodNoAcceptable = 0xff
	socksCommandConnect      = 1
	socks5AddressIPv4        = 1
	socks5AddressDomain      = 3
	socks5AddressIPv6        = 4
)

// socksProtocolError is a client's message we refuse; reply, if not
// nil, goes back before the connection is closed.
type socksProtocolError struct {
	msg   string
	reply []byte
}

func (e *socksProtocolError) Error() string { return "socks: " + e.msg }

// parseSOCKS4Request reads a SOCKS4 or 4a request (its first byte, 4,
// included): VN CD DSTPORT DSTIP USERID NUL [HOST NUL]. n is the bytes it
// took.
func parseSOCKS4Request(b []byte) (req socksRequest, n int, err error) {
	refuse := func(msg string) error {
		return &socksProtocolError{msg: msg, reply: marshalSOCKS4Reply(socks4Rejected)}
	}
	if len(b) < 8 {
		return req, 0, errSOCKSShort
	}
	if b[0] != 4 {
		return req, 0, &socksProtocolError{msg: fmt.Sprintf("version %d is not SOCKS4", b[0])}
	}
	if b[1] != socksCommandConnect {
		return req, 0, refuse(fmt.Sprintf("SOCKS4 command %d (only CONNECT is served)", b[1]))
	}
	req.version = 4
	req.port = int(binary.BigEndian.Uint16(b[2:4]))
	ip := binary.BigEndian.Uint32(b[4:8])
	rest := b[8:]
	user := bytes.IndexByte(rest[:min(len(rest), maxSOCKSName+1)], 0)
	if user < 0 {
		if len(rest) > maxSOCKSName {
			return req, 0, refuse("SOCKS4 user id longer than 255 bytes")
		}
		return req, 0, errSOCKSShort
	}
	n = 8 + user + 1
	if ip>>8 == 0 && ip != 0 { // 0.0.0.x with x not 0
		// SOCKS4a: the host name follows the user id.
		rest = b[n:]
		host := bytes.IndexByte(rest[:min(len(rest), maxSOCKSName+1)], 0)
		if host < 0 {
			if len(rest) > maxSOCKSName {
				return req, 0, refuse("SOCKS4a host name longer than 255 bytes")
			}
			return req, 0, errSOCKSShort
		}
		if host == 0 {
			return req, 0, refuse("SOCKS4a host name empty")
		}
		req.host = string(rest[:host])
		n += host + 1
	} else {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], ip)
		req.host = netip.AddrFrom4(a).String()
	}
	if req.port == 0 {
		return req, 0, refuse("port 0")
	}
	return req, n, nil
}

// marshalSOCKS4Reply is a SOCKS4 reply: VN 0, the code, and a port and
// address the client ignores.
func marshalSOCKS4Reply(code byte) []byte {
	return []byte{0, code, 0, 0, 0, 0, 0, 0}
}

// parseSOCKS5Greeting reads SOCKS5's method selection: VER NMETHODS
// METHODS. ok says whether "no authentication" is among the methods.
func parseSOCKS5Greeting(b []byte) (ok bool, n int, err error) {
	if len(b) < 2 {
		return false, 0, errSOCKSShort
	}
	if b[0] != 5 {
		return false, 0, &socksProtocolError{msg: fmt.Sprintf("version %d is not SOCKS5", b[0])}
	}
	m := int(b[1])
	if m == 0 {
		return false, 0, &socksProtocolError{msg: "SOCKS5 greeting with no method", reply: []byte{5, socks5MethodNoAcceptable}}
	}
	if len(b) < 2+m {
		return false, 0, errSOCKSShort
	}
	return bytes.IndexByte(b[2:2+m], socks5MethodNoAuth) >= 0, 2 + m, nil
}

// parseSOCKS5Request reads a SOCKS5 request: VER CMD RSV ATYP DST.ADDR
// DST.PORT.
func parseSOCKS5Request(b []byte) (req socksRequest, n int, err error) {
	refuse := func(code byte, msg string) error {
		return &socksProtocolError{msg: msg, reply: marshalSOCKS5Reply(code)}
	}
	if len(b) < 5 {
		return req, 0, errSOCKSShort
	}
	if b[0] != 5 {
		return req, 0, &socksProtocolError{msg: fmt.Sprintf("request version %d is not SOCKS5", b[0])}
	}
	if b[2] != 0 {
		return req, 0, refuse(socks5GeneralFailure, "SOCKS5 request's reserved byte is not 0")
	}
	req.version = 5
	var addrLen, off int
	switch b[3] {
	case socks5AddressIPv4:
		addrLen, off = 4, 4
	case socks5AddressIPv6:
		addrLen, off = 16, 4
	case socks5AddressDomain:
		addrLen, off = int(b[4]), 5
		if addrLen == 0 {
			return req, 0, refuse(socks5GeneralFailure, "SOCKS5 host name empty")
		}
	default:
		return req, 0, refuse(socks5AddressUnsupported, fmt.Sprintf("SOCKS5 address type %d", b[3]))
	}
	n = off + addrLen + 2
	if len(b) < n {
		return req, 0, errSOCKSShort
	}
	if b[1] != socksCommandConnect {
		return req, 0, refuse(socks5CommandUnsupported, fmt.Sprintf("SOCKS5 command %d (only CONNECT is served)", b[1]))
	}
	addr := b[off : off+addrLen]
	switch b[3] {
	case socks5AddressIPv4:
		req.host = netip.AddrFrom4([4]byte(addr)).String()
	case socks5AddressIPv6:
		req.host = netip.AddrFrom16([16]byte(addr)).String()
	default:
		if bytes.IndexByte(addr, 0) >= 0 {
			return req, 0, refuse(socks5GeneralFailure, "SOCKS5 host name holds a NUL")
		}
		req.host = string(addr)
	}
	req.port = int(binary.BigEndian.Uint16(b[off+addrLen:]))
	if req.port == 0 {
		return req, 0, refuse(socks5GeneralFailure, "port 0")
	}
	return req, n, nil
}

// marshalSOCKS5Reply is a SOCKS5 reply with the code and a bound address
// of 0.0.0.0:0 (the server's side of the connection is not ours to say).
func marshalSOCKS5Reply(code byte) []byte {
	return []byte{5, code, 0, socks5AddressIPv4, 0, 0, 0, 0, 0, 0}
}

// socksReader gathers a client's bytes until a parser has a whole
// message, never holding more than maxSOCKSMessage.
type socksReader struct {
	c   net.Conn
	buf []byte
}

// next parses the next message with parse, reading more as it asks.
func socksNext[T any](r *socksReader, parse func([]byte) (T, int, error)) (T, error) {
	for {
		v, n, err := parse(r.buf)
		if err == nil {
			r.buf = r.buf[n:]
			return v, nil
		}
		if err != errSOCKSShort {
			return v, err
		}
		if len(r.buf) >= maxSOCKSMessage {
			return v, &socksProtocolError{msg: "message too long"}
		}
		var tmp [maxSOCKSMessage]byte
		m, rerr := r.c.Read(tmp[:maxSOCKSMessage-len(r.buf)])
		r.buf = append(r.buf, tmp[:m]...)
		if rerr != nil && m == 0 {
			if rerr == io.EOF {
				rerr = io.ErrUnexpectedEOF
			}
			return v, fmt.Errorf("socks: reading the request: %w", rerr)
		}
	}
}

// socksHandshakeTimeout bounds a client's handshake.
const socksHandshakeTimeout = 30 * time.Second

// socksHandshake reads a client's request and returns it with a reply
// function that answers it (success true once the channel is open) and
// the bytes the client sent beyond the request (the first of its data,
// to pass on).
func socksHandshake(c net.Conn) (req socksRequest, reply func(ok bool) error, extra []byte, err error) {
	c.SetDeadline(time.Now().Add(socksHandshakeTimeout))
	defer c.SetDeadline(time.Time{})
	r := &socksReader{c: c}
	fail := func(err error) (socksRequest, func(bool) error, []byte, error) {
		var pe *socksProtocolError
		if errors.As(err, &pe) && pe.reply != nil {
			c.Write(pe.reply)
		}
		return socksRequest{}, nil, nil, err
	}
	first, err := socksNext(r, func(b []byte) (byte, int, error) {
		if len(b) == 0 {
			return 0, 0, errSOCKSShort
		}
		return b[0], 0, nil
	})
	if err != nil {
		return fail(err)
	}
	switch first {
	case 4:
		req, err = socksNext(r, parseSOCKS4Request)
		if err != nil {
			return fail(err)
		}
		return req, func(ok bool) error {
			code := byte(socks4Granted)
			if !ok {
				code = socks4Rejected
			}
			_, err := c.Write(marshalSOCKS4Reply(code))
			return err
		}, r.buf, nil
	case 5:
		noAuth, err := socksNext(r, parseSOCKS5Greeting)
		if err != nil {
			return fail(err)
		}
		if !noAuth {
			c.Write([]byte{5, socks5MethodNoAcceptable})
			return fail(&socksProtocolError{msg: "the client offers no method without authentication"})
		}
		if _, err := c.Write([]byte{5, socks5MethodNoAuth}); err != nil {
			return fail(err)
		}
		req, err = socksNext(r, parseSOCKS5Request)
		if err != nil {
			return fail(err)
		}
		return req, func(ok bool) error {
			code := byte(socks5OK)
			if !ok {
				code = socks5ConnectionRefused
			}
			_, err := c.Write(marshalSOCKS5Reply(code))
			return err
		}, r.buf, nil
	}
	return fail(&socksProtocolError{msg: fmt.Sprintf("version %d is neither SOCKS4 nor SOCKS5", first)})
}

// socksTarget is req's host:port as messages write it.
func (r socksRequest) target() string { return hostPort(r.host, r.port) }
