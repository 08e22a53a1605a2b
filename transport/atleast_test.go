package transport

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// atLeastSource hands out a stream, recording each read's min, and
// returning (0, nil) once from ReadAtLeast at the end of the stream, as
// a channel whose data ended does, before Read says io.EOF.
type atLeastSource struct {
	data  []byte
	mins  []int
	reads int
	ended bool
}

func (s *atLeastSource) Read(p []byte) (int, error) {
	s.reads++
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.data[:min(len(s.data), 1000)])
	s.data = s.data[n:]
	return n, nil
}

func (s *atLeastSource) ReadAtLeast(p []byte, m int) (int, error) {
	s.mins = append(s.mins, m)
	if len(s.data) == 0 && !s.ended {
		s.ended = true
		return 0, nil
	}
	n := copy(p, s.data[:min(len(s.data), max(m, 1000))])
	s.data = s.data[n:]
	return n, nil
}

// TestFillAsksForTheRestOfThePacket: once a packet's length is known, a
// reader that can wait for min bytes is asked for the rest of the packet,
// so that a connection over a channel wakes once per packet of its own;
// the packets arrive intact, and the end of its data reads as the
// connection's end in the middle of a packet, as with Read.
func TestFillAsksForTheRestOfThePacket(t *testing.T) {
	key := make([]byte, 64)
	send, err := newChaChaCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	recv, _ := newChaChaCipher(key)
	out := outbound{direction: direction{cipher: send}}
	in := newInbound()
	in.cipher = recv
	var stream []byte
	payloads := [][]byte{bytes.Repeat([]byte{1}, 100<<10), bytes.Repeat([]byte{2}, 10), bytes.Repeat([]byte{3}, 200<<10)}
	for _, p := range payloads {
		stream = out.seal(stream, p)
	}
	last := out.seal(nil, []byte("cut short"))
	src := &atLeastSource{data: append(stream, last[:len(last)-3]...)}
	for i, want := range payloads {
		for {
			p, err := in.next()
			if err == errNeedMore {
				if err := in.fill(src); err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p, want) {
				t.Fatalf("packet %d differs", i)
			}
			break
		}
		if i == 0 {
			// One Read for its length (1000 bytes), then one
			// ReadAtLeast for all the rest of it.
			if len(src.mins) != 1 || src.mins[0] < 99<<10 || src.reads != 1 {
				t.Fatalf("the 100 KiB packet took %d Reads and ReadAtLeasts of %v; want 1 Read and one for the rest", src.reads, src.mins)
			}
		}
	}
	var ferr error
	for ferr == nil {
		if _, err := in.next(); err != errNeedMore {
			t.Fatalf("the cut packet decoded: %v", err)
		}
		ferr = in.fill(src)
	}
	if !errors.Is(ferr, io.ErrUnexpectedEOF) {
		t.Fatalf("the end of the data in a packet: %v, want io.ErrUnexpectedEOF", ferr)
	}
}
