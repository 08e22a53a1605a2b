package rsftp_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/internal/agenttest"
	"github.com/rsftp/rsftp/kex"
)

// forwardServer starts a server with cfg whose logins get perms (nil:
// no restrictions) and returns a client logged in to it.
func forwardServer(t *testing.T, cfg *rsftp.ServerConfig, perms func() *auth.Permissions) *rsftp.Client {
	t.Helper()
	cfg.Auth = auth.ServerConfig{PublicKeyCallback: func(string, kex.PublicKey) (*auth.Permissions, error) {
		if perms != nil {
			return perms(), nil
		}
		return &auth.Permissions{}, nil
	}}
	return serveAndDial(t, cfg, testSigner(t))
}

// serveAndDial starts a server with cfg (cfg.Auth set; a host key added)
// on a loopback port and returns a client logged in to it as "alice" with
// userKey, pinned to that host key. The module root's test rigs
// (forwarding, server logs, shells) share it.
func serveAndDial(t *testing.T, cfg *rsftp.ServerConfig, userKey kex.Signer) *rsftp.Client {
	t.Helper()
	hostKey := testSigner(t)
	cfg.HostKeys = []kex.Signer{hostKey}
	srv, err := rsftp.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	c, err := rsftp.Dial(context.Background(), "tcp", l.Addr().String(), &rsftp.ClientConfig{
		User: "alice",
		Auth: []auth.Method{auth.PublicKeySigners(userKey)},
		HostKeyCallback: func(_ string, _ int, key kex.PublicKey) error {
			if !bytes.Equal(key.Marshal(), hostKey.PublicKey().Marshal()) {
				return errors.New("host key mismatch")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// allForwarding is a ServerConfig that allows every kind of forwarding.
func allForwarding() *rsftp.ServerConfig {
	return &rsftp.ServerConfig{
		AllowTCPForwarding:         func(string, string, int) bool { return true },
		AllowRemoteForwarding:      func(string, string, int) bool { return true },
		AllowStreamLocalForwarding: func(string, string, bool) bool { return true },
		AllowAgentForwarding:       func(string) bool { return true },
	}
}

// keyOptions returns the Permissions of an authorized_keys line with the
// given options.
func keyOptions(t *testing.T, opts string) func() *auth.Permissions {
	t.Helper()
	k := testSigner(t)
	line := opts + " " + strings.TrimSpace(kex.MarshalAuthorizedKey(k.PublicKey()))
	aks, err := auth.ParseAuthorizedKeys([]byte(line))
	if err != nil || len(aks) != 1 {
		t.Fatalf("parsing %q: %v", line, err)
	}
	return func() *auth.Permissions {
		kp := aks[0].Permissions()
		return &auth.Permissions{KeyOptions: &kp}
	}
}

// echoAccept serves each connection l accepts by echoing it.
func echoAccept(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			io.Copy(c, c)
			c.Close()
		}()
	}
}

// echoRoundTrip writes msg on c and reads it back (an echo at the far end).
func echoRoundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != msg {
		t.Fatalf("echo: got %q, want %q", got, msg)
	}
}

// sync makes a round trip to the server: the requests sent before it
// have been handled when it returns.
func syncServer(t *testing.T, c *rsftp.Client) {
	t.Helper()
	if _, _, err := c.Mux().SendRequest(context.Background(), "sync@test", true, nil); err != nil {
		t.Fatal(err)
	}
}

func TestListenTCP(t *testing.T) {
	ctx := context.Background()
	c := forwardServer(t, allForwarding(), nil)

	// Port 0: the server picks one, which the listener reports.
	l, err := c.ListenTCP(ctx, "localhost", 0)
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(interface{ String() string }).String()
	_, ps, _ := net.SplitHostPort(port)
	p, _ := strconv.Atoi(ps)
	if p == 0 {
		t.Fatalf("listener address %s has no port", l.Addr())
	}
	go echoAccept(l)
	for i := range 3 {
		tc, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", ps))
		if err != nil {
			t.Fatal(err)
		}
		echoRoundTrip(t, tc, fmt.Sprintf("hello %d through -R 0", i))
		// EOF passes through: the echo ends and closes.
		tc.(*net.TCPConn).CloseWrite()
		if rest, err := io.ReadAll(tc); err != nil || len(rest) != 0 {
			t.Fatalf("after EOF: %q, %v", rest, err)
		}
		tc.Close()
	}
	// The originator's address reaches the client.
	l2, err := c.ListenTCP(ctx, "127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, ps2, _ := net.SplitHostPort(l2.Addr().String())
	tc, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", ps2))
	if err != nil {
		t.Fatal(err)
	}
	fc, err := l2.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fc.RemoteAddr().String(), tc.LocalAddr().String(); got != want {
		t.Errorf("forwarded connection's RemoteAddr %s, want the originator %s", got, want)
	}
	fc.Write([]byte("from the client"))
	buf := make([]byte, 15)
	if _, err := io.ReadFull(tc, buf); err != nil || string(buf) != "from the client" {
		t.Fatalf("read %q, %v", buf, err)
	}
	tc.Close()
	fc.Close()

	// Cancel: the port is free again once the server has the cancel
	// (a later request is answered after it), and a new forward of the
	// same fixed port succeeds.
	l.Close()
	syncServer(t, c)
	if tc, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", ps)); err == nil {
		tc.Close()
		t.Fatalf("port %s still listening after Close", ps)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
	l3, err := c.ListenTCP(ctx, "localhost", p)
	if err != nil {
		t.Fatalf("fixed port %d after cancel: %v", p, err)
	}
	if l3.Addr().String() != net.JoinHostPort("localhost", ps) {
		t.Errorf("fixed port listener address %s", l3.Addr())
	}
	go echoAccept(l3)
	tc, err = net.Dial("tcp", net.JoinHostPort("127.0.0.1", ps))
	if err != nil {
		t.Fatal(err)
	}
	echoRoundTrip(t, tc, "fixed port")
	tc.Close()
	// A second forward of the same port is refused by the client
	// itself; one the server cannot bind is refused by the server.
	if _, err := c.ListenTCP(ctx, "localhost", p); err == nil {
		t.Error("a second ListenTCP of the same port succeeded")
	}
	if _, err := c.ListenTCP(ctx, "127.0.0.1", p); err == nil {
		t.Error("ListenTCP of a port in use succeeded")
	}
	l3.Close()
	l2.Close()
}

func TestListenUnixDialUnix(t *testing.T) {
	ctx := context.Background()
	c := forwardServer(t, allForwarding(), nil)
	dir, err := os.MkdirTemp("", "fw")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "r.sock")

	l, err := c.ListenUnix(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("forwarded socket mode %v, want a socket with 0600", fi.Mode())
	}
	go echoAccept(l)
	uc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	echoRoundTrip(t, uc, "through a forwarded unix socket")
	uc.Close()
	// A path that exists is refused, as sshd without
	// StreamLocalBindUnlink refuses it.
	if _, err := c.ListenUnix(ctx, filepath.Join(dir, ".")); err == nil {
		t.Error("ListenUnix on an existing path succeeded")
	}
	l.Close()
	syncServer(t, c)
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket still there after Close: %v", err)
	}

	// DialUnix: the server connects to a socket on its side.
	target := filepath.Join(dir, "t.sock")
	tl, err := net.Listen("unix", target)
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	go echoAccept(tl)
	dc, err := c.DialUnix(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	echoRoundTrip(t, dc, "direct-streamlocal")
	dc.Close()
	_, err = c.DialUnix(ctx, filepath.Join(dir, "missing.sock"))
	var oe *channel.OpenError
	if !errors.As(err, &oe) || oe.Reason != channel.ConnectFailed {
		t.Errorf("DialUnix to a missing socket: %v, want connect failed", err)
	}
}

// agentLister is an Exec handler that lists the forwarded agent's keys
// through ServerSession.AgentSocket (as a program would through
// SSH_AUTH_SOCK) and writes their comments, and the socket's path.
func agentLister(ctx context.Context, s *rsftp.ServerSession) int {
	if s.AgentSocket == "" {
		fmt.Fprintln(s.Channel, "no agent")
		return 1
	}
	fi, err := os.Stat(filepath.Dir(s.AgentSocket))
	if err != nil || fi.Mode().Perm() != 0o700 {
		fmt.Fprintf(s.Channel, "agent directory: %v %v\n", fi.Mode(), err)
		return 1
	}
	a, err := auth.DialAgent(ctx, s.AgentSocket)
	if err != nil {
		fmt.Fprintln(s.Channel, err)
		return 1
	}
	defer a.Close()
	keys, err := a.List()
	if err != nil {
		fmt.Fprintln(s.Channel, err)
		return 1
	}
	fmt.Fprintln(s.Channel, s.AgentSocket)
	for _, k := range keys {
		fmt.Fprintln(s.Channel, k.Comment)
	}
	return 0
}

func TestForwardAgent(t *testing.T) {
	ctx := context.Background()
	cfg := allForwarding()
	cfg.Exec = agentLister
	c := forwardServer(t, cfg, nil)
	ag := agenttest.New()
	ag.Add(testSigner(t), "forwarded key")
	dial := func(context.Context) (net.Conn, error) {
		a, b := net.Pipe()
		go ag.Serve(b)
		return a, nil
	}
	sess, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ForwardAgent(ctx, sess, dial); err != nil {
		t.Fatal(err)
	}
	out, err := sess.Output(ctx, "list")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || lines[1] != "forwarded key" {
		t.Fatalf("listed through the forwarded agent: %q", out)
	}
	// The socket and its directory go with the session.
	sock := lines[0]
	syncServer(t, c)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Lstat(filepath.Dir(sock)); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent directory %s still there after the session ended", filepath.Dir(sock))
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A session without ForwardAgent has no socket.
	sess2, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := sess2.Output(ctx, "list"); err == nil || !strings.Contains(string(out), "no agent") {
		t.Errorf("a session without agent forwarding: %q, %v", out, err)
	}
}

// refusals: each option or setting that refuses a kind of forwarding.
func TestForwardingRefusals(t *testing.T) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "fw")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go echoAccept(target)
	_, tps, _ := net.SplitHostPort(target.Addr().String())
	tport, _ := strconv.Atoi(tps)
	usock := filepath.Join(dir, "u.sock")
	ul, err := net.Listen("unix", usock)
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	go echoAccept(ul)

	type outcome struct{ local, remote, unixLocal, unixRemote, agent bool }
	all := outcome{true, true, true, true, true}
	none := outcome{}
	tests := []struct {
		name  string
		cfg   func(*rsftp.ServerConfig)
		perms string // authorized_keys options
		want  outcome
	}{
		{"all allowed", nil, "", all},
		{"restrict", nil, "restrict", none},
		{"restrict,port-forwarding", nil, "restrict,port-forwarding", outcome{true, true, true, true, false}},
		{"no-port-forwarding", nil, "no-port-forwarding", outcome{agent: true}},
		{"no-agent-forwarding", nil, "no-agent-forwarding", outcome{true, true, true, true, false}},
		{"permitopen other port", nil, `permitopen="127.0.0.1:1"`, outcome{false, true, true, true, true}},
		{"permitopen this port", nil, `permitopen="127.0.0.1:` + tps + `"`, all},
		{"permitopen any port", nil, `permitopen="127.0.0.1:*"`, all},
		{"permitlisten other", nil, `permitlisten="localhost:1"`, outcome{true, false, true, true, true}},
		{"permitlisten any port", nil, `permitlisten="localhost:*"`, all},
		{"PermitOpen none", func(c *rsftp.ServerConfig) { c.PermitOpen = []string{"none"} }, "", outcome{false, true, true, true, true}},
		{"PermitOpen this", func(c *rsftp.ServerConfig) { c.PermitOpen = []string{"*:" + tps} }, "", all},
		{"PermitListen none", func(c *rsftp.ServerConfig) { c.PermitListen = []string{"none"} }, "", outcome{true, false, true, true, true}},
		{"PermitListen 0", func(c *rsftp.ServerConfig) { c.PermitListen = []string{"0"} }, "", all},
		{"PermitListen loc*:*", func(c *rsftp.ServerConfig) { c.PermitListen = []string{"loc*:*"} }, "", all},
		{"no AllowTCPForwarding", func(c *rsftp.ServerConfig) { c.AllowTCPForwarding = nil }, "", outcome{false, true, true, true, true}},
		{"no AllowRemoteForwarding", func(c *rsftp.ServerConfig) { c.AllowRemoteForwarding = nil }, "", outcome{true, false, true, true, true}},
		{"streamlocal local only", func(c *rsftp.ServerConfig) {
			c.AllowStreamLocalForwarding = func(_, _ string, listen bool) bool { return !listen }
		}, "", outcome{true, true, true, false, true}},
		{"no AllowAgentForwarding", func(c *rsftp.ServerConfig) { c.AllowAgentForwarding = nil }, "", outcome{true, true, true, true, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := allForwarding()
			cfg.Exec = agentLister
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			var perms func() *auth.Permissions
			if tc.perms != "" {
				perms = keyOptions(t, tc.perms)
			}
			c := forwardServer(t, cfg, perms)
			var got outcome
			if fc, err := c.DialTCP(ctx, "127.0.0.1", tport); err == nil {
				echoRoundTrip(t, fc, "local")
				fc.Close()
				got.local = true
			} else if oe := (*channel.OpenError)(nil); !errors.As(err, &oe) || oe.Reason != channel.Prohibited {
				t.Errorf("refused direct-tcpip: %v, want administratively prohibited", err)
			}
			if l, err := c.ListenTCP(ctx, "localhost", 0); err == nil {
				got.remote = true
				l.Close()
			}
			if fc, err := c.DialUnix(ctx, usock); err == nil {
				echoRoundTrip(t, fc, "unix")
				fc.Close()
				got.unixLocal = true
			} else if oe := (*channel.OpenError)(nil); !errors.As(err, &oe) || oe.Reason != channel.Prohibited {
				t.Errorf("refused direct-streamlocal: %v, want administratively prohibited", err)
			}
			rpath := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")[:min(len(tc.name), 20)]+".r")
			if l, err := c.ListenUnix(ctx, rpath); err == nil {
				got.unixRemote = true
				l.Close()
			} else if _, err := os.Lstat(rpath); !os.IsNotExist(err) {
				t.Errorf("refused streamlocal-forward left %s: %v", rpath, err)
			}
			sess, err := c.NewSession(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ag := agenttest.New()
			if err := c.ForwardAgent(ctx, sess, func(context.Context) (net.Conn, error) {
				a, b := net.Pipe()
				go ag.Serve(b)
				return a, nil
			}); err == nil {
				got.agent = true
			}
			out, _ := sess.Output(ctx, "list")
			if got.agent != !strings.Contains(string(out), "no agent") {
				t.Errorf("agent granted %v, but the session says %q", got.agent, out)
			}
			if got != tc.want {
				t.Errorf("granted %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestForwardLimits: a connection holds at most MaxForwardsPerConn
// listeners; cancelling one makes room.
func TestForwardLimits(t *testing.T) {
	ctx := context.Background()
	cfg := allForwarding()
	cfg.MaxForwardsPerConn = 3
	c := forwardServer(t, cfg, nil)
	var ls []net.Listener
	for range 3 {
		l, err := c.ListenTCP(ctx, "localhost", 0)
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	if _, err := c.ListenTCP(ctx, "localhost", 0); err == nil {
		t.Fatal("a fourth forward was granted")
	}
	ls[0].Close()
	if _, err := c.ListenTCP(ctx, "localhost", 0); err != nil {
		t.Fatalf("after a cancel: %v", err)
	}
}

// TestServerConfigPermitLists: malformed lists are NewServer's error.
func TestServerConfigPermitLists(t *testing.T) {
	for _, tc := range []struct {
		open, listen []string
	}{
		{open: []string{"host"}},
		{open: []string{"host:x"}},
		{open: []string{"any", "host:1"}},
		{open: []string{"::1:22"}},
		{listen: []string{"host:99999"}},
		{listen: []string{"none", "1"}},
	} {
		cfg := &rsftp.ServerConfig{HostKeys: []kex.Signer{testSigner(t)}, PermitOpen: tc.open, PermitListen: tc.listen}
		cfg.Auth.NoneAllowed = true
		if _, err := rsftp.NewServer(cfg); err == nil {
			t.Errorf("PermitOpen %q PermitListen %q accepted", tc.open, tc.listen)
		}
	}
	cfg := &rsftp.ServerConfig{HostKeys: []kex.Signer{testSigner(t)}, PermitOpen: []string{"[::1]:22", "*:*", "h:1"}, PermitListen: []string{"8080", "*:*", "[::1]:0"}}
	cfg.Auth.NoneAllowed = true
	if _, err := rsftp.NewServer(cfg); err != nil {
		t.Errorf("good lists refused: %v", err)
	}
}

// TestForwardingCertificate: a certificate's extensions grant port and
// agent forwarding each on its own, as sshd reads them
// (permit-port-forwarding, permit-agent-forwarding).
func TestForwardingCertificate(t *testing.T) {
	ctx := context.Background()
	ca := testSigner(t)
	for _, tc := range []struct {
		ext           []string
		port, agentOK bool
	}{
		{[]string{"permit-agent-forwarding"}, false, true},
		{[]string{"permit-port-forwarding"}, true, false},
		{[]string{"permit-port-forwarding", "permit-agent-forwarding"}, true, true},
		{nil, false, false},
	} {
		key := testSigner(t)
		now := uint64(time.Now().Unix())
		cert := &kex.Certificate{Key: key.PublicKey(), Nonce: []byte("0123456789abcdef"), Serial: 1, CertType: kex.UserCert,
			KeyID: "fwd", ValidPrincipals: []string{"alice"}, ValidAfter: now - 3600, ValidBefore: now + 3600}
		for _, e := range tc.ext {
			cert.Extensions = append(cert.Extensions, kex.CertOption{Name: e})
		}
		if err := cert.SignCert(rand.Reader, ca, ""); err != nil {
			t.Fatal(err)
		}
		cs, err := kex.NewCertSigner(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		cfg := allForwarding()
		cfg.Exec = agentLister
		cfg.Auth = auth.ServerConfig{TrustedUserCAs: &auth.TrustedUserCAs{Keys: []kex.PublicKey{ca.PublicKey()}}}
		c := serveAndDial(t, cfg, cs)
		l, err := c.ListenTCP(ctx, "localhost", 0)
		if (err == nil) != tc.port {
			t.Errorf("extensions %q: ListenTCP: %v", tc.ext, err)
		}
		if err == nil {
			l.Close()
		}
		sess, err := c.NewSession(ctx)
		if err != nil {
			t.Fatal(err)
		}
		err = c.ForwardAgent(ctx, sess, func(context.Context) (net.Conn, error) { return nil, errors.New("unused") })
		if (err == nil) != tc.agentOK {
			t.Errorf("extensions %q: ForwardAgent: %v", tc.ext, err)
		}
		sess.Close()
	}
}

// waitGone polls until check reports the resource gone.
func waitGone(t *testing.T, what string, gone func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !gone() {
		if time.Now().After(deadline) {
			t.Fatalf("%s still there", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestForwardsEndWithConnection: when the connection ends, the server
// closes its listeners and removes its sockets and agent directories.
func TestForwardsEndWithConnection(t *testing.T) {
	ctx := context.Background()
	cfg := allForwarding()
	socks := make(chan string, 1)
	cfg.Exec = func(ctx context.Context, s *rsftp.ServerSession) int {
		socks <- s.AgentSocket
		<-ctx.Done() // until the connection ends
		return 0
	}
	c := forwardServer(t, cfg, nil)
	l, err := c.ListenTCP(ctx, "localhost", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	dir, err := os.MkdirTemp("", "fw")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s")
	if _, err := c.ListenUnix(ctx, path); err != nil {
		t.Fatal(err)
	}
	sess, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ForwardAgent(ctx, sess, func(context.Context) (net.Conn, error) { return nil, io.EOF }); err != nil {
		t.Fatal(err)
	}
	if err := sess.Exec(ctx, "wait"); err != nil {
		t.Fatal(err)
	}
	agentSock := <-socks
	if agentSock == "" {
		t.Fatal("no agent socket")
	}
	c.Close()
	waitGone(t, "the remote forward's port "+port, func() bool {
		tc, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
		if err == nil {
			tc.Close()
		}
		return err != nil
	})
	waitGone(t, "the forwarded socket "+path, func() bool { _, err := os.Lstat(path); return os.IsNotExist(err) })
	waitGone(t, "the agent directory", func() bool { _, err := os.Lstat(filepath.Dir(agentSock)); return os.IsNotExist(err) })
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after the connection ended: %v", err)
	}
}

// TestStreamLocalBindUnlink: a socket left at a path refuses a
// streamlocal-forward there, unless StreamLocalBindUnlink, which replaces
// it; a file of another kind is refused either way.
func TestStreamLocalBindUnlink(t *testing.T) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "fw")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	stale := filepath.Join(dir, "stale.sock")
	sl, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	sl.(*net.UnixListener).SetUnlinkOnClose(false)
	sl.Close()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}

	c := forwardServer(t, allForwarding(), nil)
	if _, err := c.ListenUnix(ctx, stale); err == nil {
		t.Error("ListenUnix over a stale socket succeeded without StreamLocalBindUnlink")
	}
	cfg := allForwarding()
	cfg.StreamLocalBindUnlink = true
	c = forwardServer(t, cfg, nil)
	l, err := c.ListenUnix(ctx, stale)
	if err != nil {
		t.Fatalf("with StreamLocalBindUnlink: %v", err)
	}
	go echoAccept(l)
	uc, err := net.Dial("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	echoRoundTrip(t, uc, "through the replaced socket")
	uc.Close()
	if _, err := c.ListenUnix(ctx, plain); err == nil {
		t.Error("ListenUnix over a regular file succeeded")
	}
	if b, err := os.ReadFile(plain); err != nil || string(b) != "keep" {
		t.Errorf("the regular file: %q, %v", b, err)
	}
}
