package connmsg

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sessionParsers holds one session request's data of each type and its
// parser.
var sessionParsers = []struct {
	m     msg
	parse func([]byte) (msg, error)
}{
	{&PtyRequest{Term: "xterm-256color", Cols: 80, Rows: 24, WidthPx: 640, HeightPx: 480,
		Modes: []TerminalMode{{Opcode: 53, Value: 0}, {Opcode: 1, Value: 3}, {Opcode: 128, Value: 38400}}},
		func(p []byte) (msg, error) { return ParsePtyRequest(p) }},
	{&WindowChange{Cols: 132, Rows: 43, WidthPx: 1, HeightPx: 2}, func(p []byte) (msg, error) { return ParseWindowChange(p) }},
	{&Env{Name: "LANG", Value: "C.UTF-8"}, func(p []byte) (msg, error) { return ParseEnv(p) }},
	{&ExitStatus{Status: 130}, func(p []byte) (msg, error) { return ParseExitStatus(p) }},
	{&ExitSignal{Signal: "SEGV", CoreDumped: true, Message: "segmentation fault", Language: "en"}, func(p []byte) (msg, error) { return ParseExitSignal(p) }},
	{&Signal{Name: "INT"}, func(p []byte) (msg, error) { return ParseSignal(p) }},
	{&Break{Millis: 500}, func(p []byte) (msg, error) { return ParseBreak(p) }},
}

func TestSessionRoundTrip(t *testing.T) {
	for _, tc := range sessionParsers {
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

func TestTerminalModes(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want []TerminalMode
		bad  bool
	}{
		{name: "empty", in: nil},
		{name: "end only", in: []byte{0}},
		{name: "two", in: []byte{53, 0, 0, 0, 1, 1, 0, 0, 0, 3, 0}, want: []TerminalMode{{53, 1}, {1, 3}}},
		{name: "no end", in: []byte{53, 0, 0, 0, 1}, want: []TerminalMode{{53, 1}}},
		{name: "after end ignored", in: []byte{53, 0, 0, 0, 1, 0, 1, 2}, want: []TerminalMode{{53, 1}}},
		{name: "undefined opcode stops", in: []byte{53, 0, 0, 0, 1, 160, 1, 2, 3}, want: []TerminalMode{{53, 1}}},
		{name: "cut argument", in: []byte{53, 0, 0, 0}, bad: true},
	} {
		got, err := ParseTerminalModes(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%s: parsed %v", tc.name, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: %s", tc.name, diff)
		}
	}
	many := bytes.Repeat([]byte{53, 0, 0, 0, 1}, MaxTerminalModes)
	if m, err := ParseTerminalModes(many); err != nil || len(m) != MaxTerminalModes {
		t.Errorf("%d modes: %d parsed, %v", MaxTerminalModes, len(m), err)
	}
	if _, err := ParseTerminalModes(append(many, 53, 0, 0, 0, 1)); err == nil {
		t.Errorf("%d modes parsed", MaxTerminalModes+1)
	}
	// Opcodes that cannot carry an argument are not encoded.
	b := AppendTerminalModes(nil, []TerminalMode{{0, 1}, {200, 1}, {53, 1}})
	if want := []byte{53, 0, 0, 0, 1, 0}; string(b) != string(want) {
		t.Errorf("AppendTerminalModes = %v, want %v", b, want)
	}
}

func TestSessionBounds(t *testing.T) {
	long := strings.Repeat("x", maxNameLen+1)
	if _, err := ParsePtyRequest((&PtyRequest{Term: long}).Marshal()); err == nil {
		t.Error("terminal type past 256 bytes parsed")
	}
	if _, err := ParseEnv((&Env{Name: long}).Marshal()); err == nil {
		t.Error("env name past 256 bytes parsed")
	}
	if _, err := ParseEnv((&Env{Name: "A", Value: strings.Repeat("v", maxEnvValueLen+1)}).Marshal()); err == nil {
		t.Error("env value past the bound parsed")
	}
	for _, e := range []Env{{Name: ""}, {Name: "A=B"}, {Name: "A\x00"}, {Name: "A", Value: "a\x00b"}} {
		if _, err := ParseEnv(e.Marshal()); err == nil {
			t.Errorf("env %q=%q parsed", e.Name, e.Value)
		}
	}
	if _, err := ParseExitSignal((&ExitSignal{Signal: "TERM", Message: strings.Repeat("m", maxExitMessageLen+1)}).Marshal()); err == nil {
		t.Error("exit-signal message past the bound parsed")
	}
	if _, err := ParseSignal((&Signal{Name: long}).Marshal()); err == nil {
		t.Error("signal name past 256 bytes parsed")
	}
}

// FuzzSessionPayloads runs the parsers of the session requests' data on
// arbitrary bytes (what a client sends a server): no panic, and what
// parses marshals to bytes that parse to the same request. (Marshal need
// not give back the input: terminal modes after TTY_OP_END are dropped.)
func FuzzSessionPayloads(f *testing.F) {
	for _, tc := range sessionParsers {
		f.Add(tc.m.Marshal())
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		for _, tc := range sessionParsers {
			m, err := tc.parse(p)
			if err != nil {
				continue
			}
			again, err := tc.parse(m.Marshal())
			if err != nil {
				t.Fatalf("%T does not parse after marshal: %v", m, err)
			}
			if diff := cmp.Diff(m, again); diff != "" {
				t.Fatalf("%T changed through marshal: %s", m, diff)
			}
		}
		if modes, err := ParseTerminalModes(p); err == nil {
			again, err := ParseTerminalModes(AppendTerminalModes(nil, modes))
			if err != nil || !cmp.Equal(modes, again) {
				t.Fatalf("terminal modes %v changed through marshal: %v, %v", modes, again, err)
			}
		}
	})
}
