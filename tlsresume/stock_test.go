package tlsresume

import (
	"bufio"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needTool finds a program of Debian's the test runs, skipping without it
// (failing under CI=true, where .ci/run installs it).
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (CI installs it: .ci/run)", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

func caFile(t *testing.T) string {
	f := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: getPKI(t).caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestCurlAgainstListener: curl, a stock TLS client offering h2 and
// http/1.1, gets plain TLS from the listener and its HTTP request is
// answered by net/http's server behind it.
func TestCurlAgainstListener(t *testing.T) {
	curl := needTool(t, "curl")
	ln := loopback(t, []string{"http/1.1"}, nil)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			http.Error(w, "not over *tls.Conn", 500)
			return
		}
		fmt.Fprintf(w, "hello %s over %s", r.URL.Path, r.TLS.NegotiatedProtocol)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	out, err := exec.Command(curl, "-sS", "--max-time", "20", "--cacert", caFile(t), "https://localhost:"+port+"/x").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	if string(out) != "hello /x over http/1.1" {
		t.Fatalf("curl got %q", out)
	}
}

// TestOpenSSLAgainstListener: openssl s_client with an ALPN protocol of
// the application's gets it, verifies the server, and talks to the
// application through the *tls.Conn Accept returned.
func TestOpenSSLAgainstListener(t *testing.T) {
	openssl := needTool(t, "openssl")
	ln := loopback(t, []string{"line"}, nil)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		s, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return
		}
		fmt.Fprintf(c, "echo %T %s", c, s)
	}()
	cmd := exec.Command(openssl, "s_client", "-connect", ln.Addr().String(), "-servername", "localhost",
		"-CAfile", caFile(t), "-verify_return_error", "-alpn", "line", "-quiet")
	cmd.Stdin = strings.NewReader("hello from openssl\n")
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
		}
	}()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl s_client: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "echo *tls.Conn hello from openssl") {
		t.Fatalf("openssl s_client got %q", out)
	}
}
