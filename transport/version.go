package transport

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Version-exchange bounds (RFC 4253 section 4.2). A line, CR LF included,
// is at most 255 bytes. A server may send other lines before its version;
// we accept at most maxPreambleLines of them so that a peer cannot keep us
// reading forever.
const (
	maxVersionLine   = 255
	maxPreambleLines = 1024
)

// DefaultVersion is the identification string we send.
const DefaultVersion = "SSH-2.0-rsftp_0.1"

// checkVersion validates the identification string we are about to send.
func checkVersion(v string) error {
	if len(v)+2 > maxVersionLine {
		return fmt.Errorf("transport: version %q too long", v)
	}
	if len(v) < 8 || v[:8] != "SSH-2.0-" {
		return fmt.Errorf("transport: version %q does not start with SSH-2.0-", v)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return fmt.Errorf("transport: version %q has a non-printable byte", v)
		}
	}
	return nil
}

// readVersion reads the peer's identification line and returns it without
// CR LF. A client (fromServer true) skips up to maxPreambleLines other lines
// first; a server requires the version as the very first line.
func readVersion(r *bufio.Reader, fromServer bool) ([]byte, error) {
	for i := 0; i <= maxPreambleLines; i++ {
		line, err := readLine(r)
		if err != nil {
			return nil, err
		}
		v, err := checkPeerLine(line, fromServer)
		if v != nil || err != nil {
			return v, err
		}
	}
	return nil, errTooManyPreambleLines
}

var errTooManyPreambleLines = fmt.Errorf("transport: server sent more than %d lines before its version", maxPreambleLines)

// checkPeerLine checks one line of the peer's, without its line ending:
// it returns the line if it is the peer's version, nil and no error if
// it is another line a server may send first (fromServer), and an error
// otherwise.
func checkPeerLine(line []byte, fromServer bool) ([]byte, error) {
	if bytes.HasPrefix(line, []byte("SSH-")) {
		if !bytes.HasPrefix(line, []byte("SSH-2.0-")) && !bytes.HasPrefix(line, []byte("SSH-1.99-")) {
			return nil, fmt.Errorf("transport: peer speaks an unsupported protocol version %q", printable(line))
		}
		for _, c := range line {
			if c < 0x20 || c > 0x7e {
				return nil, fmt.Errorf("transport: peer version %q has a non-printable byte", printable(line))
			}
		}
		return line, nil
	}
	if !fromServer {
		return nil, fmt.Errorf("transport: client sent %q instead of an SSH version line", printable(line))
	}
	return nil, nil
}

// readLine reads one line ending in LF (CR LF or a bare LF), at most
// maxVersionLine bytes long, and returns it without the line ending.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for len(line) <= maxVersionLine {
		c, err := r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if len(line) == 0 {
					return nil, fmt.Errorf("transport: connection closed before the version exchange: %w", io.EOF)
				}
				return nil, fmt.Errorf("transport: connection closed in the middle of the version line: %w", io.ErrUnexpectedEOF)
			}
			return nil, fmt.Errorf("transport: reading version: %w", err)
		}
		if c == '\n' {
			return bytes.TrimSuffix(line, []byte("\r")), nil
		}
		line = append(line, c)
	}
	return nil, fmt.Errorf("transport: version line longer than %d bytes", maxVersionLine)
}

// printable quotes at most 64 bytes of a peer's line for an error message.
func printable(b []byte) string {
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}
