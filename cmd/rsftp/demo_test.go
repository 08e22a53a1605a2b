package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDemo runs rsftp demo in-process with a small file and two cuts (a
// blackhole, then a reset): it must verify the download, report both
// outages as resumed, and write a well-formed SVG.
func TestDemo(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "demo.svg")
	var stdout, stderr bytes.Buffer
	err := demo([]string{"-size", "4MiB", "-cuts", "2", "-outage", "300ms", "-latency", "1ms",
		"-bandwidth", "20MB", "-svg", svg, "-q"}, &stdout, &stderr)
	out := stdout.String()
	if err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	t.Logf("stdout:\n%s", out)
	if stderr.Len() != 0 {
		t.Errorf("-q, yet stderr has:\n%s", stderr.String())
	}
	for _, re := range []string{
		`(?m)^verified: +SHA-256 [0-9a-f]{64} matches$`,
		`(?m)^ +1 +blackhole +.* ms +[0-9]+ +[0-9]+ ms +`,
		`(?m)^ +2 +reset +.* ms +[0-9]+ +[0-9]+ ms +`,
		`(?m)^reconnects: 2 `,
		`(?m)^ACKs: +the client sent [0-9]+`,
		`(?m)^figure: +` + regexp.QuoteMeta(svg),
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("stdout does not match %s", re)
		}
	}
	if strings.Contains(out, "only ") {
		t.Errorf("not every cut happened")
	}

	f, err := os.Open(svg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := xml.NewDecoder(f)
	var elems []string
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			elems = append(elems, se.Name.Local)
		}
	}
	if len(elems) == 0 || elems[0] != "svg" {
		t.Fatalf("the SVG's root is not <svg>: %v", elems[:min(len(elems), 3)])
	}
	data, _ := os.ReadFile(svg)
	for _, s := range []string{"cut 1 (blackhole)", "cut 2 (reset)", "polyline"} {
		if !bytes.Contains(data, []byte(s)) {
			t.Errorf("the SVG lacks %q", s)
		}
	}
}

// TestDemoLiveOutput: without -q the events appear on stderr as lines
// (stderr is not a terminal here), and -svg "" writes no figure.
func TestDemoLiveOutput(t *testing.T) {
	t.Chdir(t.TempDir())
	var stdout, stderr bytes.Buffer
	err := demo([]string{"-size", "2MiB", "-cuts", "1", "-outage", "100ms", "-latency", "1ms",
		"-bandwidth", "0", "-svg", ""}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	live := stderr.String()
	t.Logf("stderr:\n%s", live)
	for _, s := range []string{"cut 1 (blackhole)", "link lost (blackhole)", "resumed after"} {
		if !strings.Contains(live, s) {
			t.Errorf("stderr lacks %q", s)
		}
	}
	if strings.Contains(live, "\r") || strings.Contains(live, "\x1b") {
		t.Errorf("terminal control characters on a non-terminal stderr: %q", live)
	}
	if strings.Contains(stdout.String(), "figure:") {
		t.Errorf("-svg \"\" still wrote a figure")
	}
	if ents, _ := os.ReadDir("."); len(ents) != 0 {
		t.Errorf("files left in the working directory: %v", ents)
	}
}

func TestDemoFlags(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"4MiB", 4 << 20}, {"4M", 4 << 20}, {"40MB", 40e6}, {"40MB/s", 40e6}, {"1.5KiB", 1536},
		{"123", 123}, {"0", 0}, {"2 GiB", 2 << 30}, {"10kB", 10000},
	} {
		got, err := parseBytes(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "MiB", "4 parsecs", "-1", "1e400"} {
		if v, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) = %d, want an error", in, v)
		}
	}
	for _, args := range [][]string{
		{"-size", "0"}, {"-cuts", "-1"}, {"-c", "rot13"}, {"extra"}, {"-bandwidth", "fast"},
	} {
		err := demo(args, io.Discard, io.Discard)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("demo %q = %v, want a usage error", args, err)
		}
	}
	var b byteSize = 64 << 20
	if b.String() != "64MiB" {
		t.Errorf("byteSize(64 MiB).String() = %q", b.String())
	}
}

func TestTimes(t *testing.T) {
	for n, want := range map[int]string{1: "once", 2: "twice", 3: "3 times", 0: "0 times"} {
		if got := times(n); got != want {
			t.Errorf("times(%d) = %q, want %q", n, got, want)
		}
	}
}
