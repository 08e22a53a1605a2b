package main

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzSOCKSParsers feeds the SOCKS parsers of rsftp ssh -D arbitrary
// client bytes: no panic; a message parsed whole is within the input,
// names a host and a port, and any prefix of it is "short", never
// parsed nor refused; a refusal carries a reply of the right version.
func FuzzSOCKSParsers(f *testing.F) {
	f.Add([]byte{4, 1, 0, 80, 1, 2, 3, 4, 'u', 0})
	f.Add(append([]byte{4, 1, 1, 187, 0, 0, 0, 9, 0}, "example.org\x00"...))
	f.Add([]byte{5, 2, 0, 2})
	f.Add(append([]byte{5, 1, 0, 3, 4}, "host\x00\x50"...))
	f.Add([]byte{5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 22})
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(name string, req socksRequest, n int, err error, parse func([]byte) error) {
			if err != nil {
				if pe, ok := err.(*socksProtocolError); ok && pe.reply != nil && len(b) > 0 {
					if want := map[byte]byte{4: 0, 5: 5}[b[0]]; pe.reply[0] != want && !(name == "5greet") {
						t.Fatalf("%s: reply %v to version %d", name, pe.reply, b[0])
					}
				}
				return
			}
			if n <= 0 || n > len(b) {
				t.Fatalf("%s: took %d of %d bytes", name, n, len(b))
			}
			if name != "5greet" && (req.host == "" || req.port <= 0 || req.port > 65535 || len(req.host) > 255 || bytes.IndexByte([]byte(req.host), 0) >= 0) {
				t.Fatalf("%s: %+v", name, req)
			}
			for i := range n {
				if err := parse(b[:i]); err != errSOCKSShort {
					t.Fatalf("%s: prefix of %d bytes of a whole message: %v", name, i, err)
				}
			}
		}
		req, n, err := parseSOCKS4Request(b)
		check("4", req, n, err, p4)
		req, n, err = parseSOCKS5Request(b)
		check("5", req, n, err, p5)
		_, n, err = parseSOCKS5Greeting(b)
		check("5greet", socksRequest{}, n, err, p5g)
	})
}

// FuzzEscapeMachine feeds the escape machine typed bytes, whole and one
// byte at a time: both give the same bytes to send and the same actions;
// nothing is sent that was not typed; with escapes off, all of it goes.
func FuzzEscapeMachine(f *testing.F) {
	f.Add([]byte("ls\r~.~?"), byte('~'))
	f.Add([]byte("~~~\r~#\n~&x"), byte('~'))
	f.Add([]byte("\x1d.\r\x1d\x1d"), byte(0x1d))
	f.Fuzz(func(t *testing.T, in []byte, esc byte) {
		char := int(esc)
		if esc == 0xff {
			char = noEscapeChar
		}
		whole, wacts := feedAll(newEscapeMachine(char), string(in))
		var chunks []string
		for _, c := range in {
			chunks = append(chunks, string([]byte{c}))
		}
		single, sacts := feedAll(newEscapeMachine(char), chunks...)
		if whole != single || !cmp.Equal(wacts, sacts) {
			t.Fatalf("whole %q %v, bytewise %q %v", whole, wacts, single, sacts)
		}
		if len(whole) > len(in) {
			t.Fatalf("sent %d bytes of %d typed", len(whole), len(in))
		}
		if char == noEscapeChar && (whole != string(in) || len(wacts) != 0) {
			t.Fatalf("escapes off: sent %q, acts %v", whole, wacts)
		}
		if char != noEscapeChar && bytes.IndexByte(in, esc) < 0 && (whole != string(in) || len(wacts) != 0) {
			t.Fatalf("no escape character typed: sent %q, acts %v", whole, wacts)
		}
	})
}
