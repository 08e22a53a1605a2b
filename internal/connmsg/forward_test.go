package connmsg

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// forwardParsers holds one of each forwarding payload and its parser.
var forwardParsers = []struct {
	m     msg
	parse func([]byte) (msg, error)
}{
	{&TCPIPForward{Host: "localhost", Port: 8080}, func(p []byte) (msg, error) { return ParseTCPIPForward(p) }},
	{&TCPIPForwardReply{Port: 40000}, func(p []byte) (msg, error) { return ParseTCPIPForwardReply(p) }},
	{&ForwardedTCPIP{Host: "localhost", Port: 8080, OriginAddr: "10.0.0.1", OriginPort: 5555}, func(p []byte) (msg, error) { return ParseForwardedTCPIP(p) }},
	{&StreamLocalForward{Path: "/tmp/s.sock"}, func(p []byte) (msg, error) { return ParseStreamLocalForward(p) }},
	{&DirectStreamLocal{Path: "/run/s.sock", Reserved: "", Reserved2: 0}, func(p []byte) (msg, error) { return ParseDirectStreamLocal(p) }},
	{&ForwardedStreamLocal{Path: "/tmp/s.sock"}, func(p []byte) (msg, error) { return ParseForwardedStreamLocal(p) }},
}

func TestForwardRoundTripAndRejects(t *testing.T) {
	for _, tc := range forwardParsers {
		p := tc.m.Marshal()
		got, err := tc.parse(p)
		if err != nil {
			t.Fatalf("%T: %v", tc.m, err)
		}
		if diff := cmp.Diff(tc.m, got); diff != "" {
			t.Errorf("%T changed through marshal and parse: %s", tc.m, diff)
		}
		for n := 0; n < len(p); n++ {
			if _, err := tc.parse(p[:n]); err == nil {
				t.Errorf("%T: truncated to %d of %d bytes parsed", tc.m, n, len(p))
			}
		}
		if _, err := tc.parse(append(p, 0)); err == nil {
			t.Errorf("%T: trailing byte parsed", tc.m)
		}
	}
}

func TestForwardBounds(t *testing.T) {
	long := strings.Repeat("x", maxNameLen+1)
	bad := []struct {
		what string
		p    []byte
		fn   func([]byte) error
	}{
		{"host past 256 bytes", (&TCPIPForward{Host: long}).Marshal(), func(p []byte) error { _, err := ParseTCPIPForward(p); return err }},
		{"port 65536", (&TCPIPForward{Port: 65536}).Marshal(), func(p []byte) error { _, err := ParseTCPIPForward(p); return err }},
		{"reply port 0", (&TCPIPForwardReply{}).Marshal(), func(p []byte) error { _, err := ParseTCPIPForwardReply(p); return err }},
		{"reply port 65536", (&TCPIPForwardReply{Port: 65536}).Marshal(), func(p []byte) error { _, err := ParseTCPIPForwardReply(p); return err }},
		{"origin port 65536", (&ForwardedTCPIP{OriginPort: 65536}).Marshal(), func(p []byte) error { _, err := ParseForwardedTCPIP(p); return err }},
		{"empty path", (&StreamLocalForward{}).Marshal(), func(p []byte) error { _, err := ParseStreamLocalForward(p); return err }},
		{"path past 256 bytes", (&StreamLocalForward{Path: long}).Marshal(), func(p []byte) error { _, err := ParseStreamLocalForward(p); return err }},
		{"path with NUL", (&DirectStreamLocal{Path: "/a\x00b"}).Marshal(), func(p []byte) error { _, err := ParseDirectStreamLocal(p); return err }},
		{"reserved past 256 bytes", (&ForwardedStreamLocal{Path: "/s", Reserved: long}).Marshal(), func(p []byte) error { _, err := ParseForwardedStreamLocal(p); return err }},
	}
	for _, b := range bad {
		if err := b.fn(b.p); err == nil {
			t.Errorf("%s parsed", b.what)
		}
	}
}

// FuzzForwardPayloads runs every forwarding payload parser: no panic, and
// what parses marshals to bytes that parse to the same payload, and to
// the very bytes it was parsed from.
func FuzzForwardPayloads(f *testing.F) {
	for _, tc := range forwardParsers {
		f.Add(tc.m.Marshal())
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		for _, tc := range forwardParsers {
			m, err := tc.parse(p)
			if err != nil {
				continue
			}
			b := m.Marshal()
			if !bytes.Equal(b, p) {
				t.Fatalf("%T marshals to %x, parsed from %x", m, b, p)
			}
			again, err := tc.parse(b)
			if err != nil {
				t.Fatalf("%T does not parse after marshal: %v", m, err)
			}
			if diff := cmp.Diff(m, again); diff != "" {
				t.Fatalf("%T changed through marshal: %s", m, diff)
			}
		}
	})
}
