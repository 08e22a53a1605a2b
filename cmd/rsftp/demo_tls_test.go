package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestDemoTLS runs rsftp demo -tls with a small file and two cuts: the
// TLS download is verified, both outages resumed, the figure written.
func TestDemoTLS(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "demo.svg")
	var stdout, stderr bytes.Buffer
	err := demo([]string{"-tls", "-size", "4MiB", "-cuts", "2", "-outage", "300ms", "-latency", "1ms",
		"-bandwidth", "20MB", "-svg", svg, "-q"}, &stdout, &stderr)
	out := stdout.String()
	if err != nil {
		t.Fatalf("demo -tls: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	t.Logf("stdout:\n%s", out)
	for _, re := range []string{
		`(?m)^rsftp demo: TLS download of 4\.0 MiB`,
		`(?m)^session: +TLS 1\.3, .*ALPN "demo"`,
		`(?m)^verified: +SHA-256 [0-9a-f]{64} matches$`,
		`(?m)^ +1 +blackhole +.* ms +[0-9]+ +[0-9]+ ms +`,
		`(?m)^ +2 +reset +.* ms +[0-9]+ +[0-9]+ ms +`,
		`(?m)^reconnects: 2 `,
		`(?m)^figure: +` + regexp.QuoteMeta(svg),
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("stdout does not match %s", re)
		}
	}
	data, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"TLS download", "cut 1 (blackhole)", "cut 2 (reset)", "polyline"} {
		if !bytes.Contains(data, []byte(s)) {
			t.Errorf("the SVG lacks %q", s)
		}
	}
}
