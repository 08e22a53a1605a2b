package corpus

// TestRecordFuzzCorpora runs real SSH sessions (our client and server,
// OpenSSH's ssh, sftp, sshd, ssh-agent and ssh-keygen) and writes what
// they exchanged as seed corpora into each fuzz target's
// testdata/fuzz/<Target>/ directory (seeds_test.go maps the recordings
// onto the targets' input formats). It only runs when asked, from the
// module root:
//
//	RSFTP_RECORD_CORPUS=1 go test -run '^TestRecordFuzzCorpora$' -count=1 ./fuzz/corpus
//
// or scripts/record-corpora.sh. RSFTP_CORPUS_OUT=dir writes the corpora
// under dir instead of the module (dir/<pkg>/testdata/fuzz/<Target>/; a
// relative dir is taken from the module root).
//
// What is recorded: every packet payload in the clear through
// transport.Config.Tap on whichever side is ours, and the raw bytes of
// each TCP connection (version lines and the unencrypted packets up to
// NEWKEYS); sessions between two OpenSSH programs go through a recording
// TCP proxy, of which only the unencrypted part is used.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/internal/sshtest"
	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/sftp"
	"github.com/rsftp/rsftp/transport"
)

// recPassword is the password of the recording servers: the one the auth
// fuzz targets' clients send, so recorded exchanges fit them.
const recPassword = "pw"

// recWireCap bounds the raw bytes kept per direction of a connection;
// only the unencrypted start is used.
const recWireCap = 256 << 10

// recEvent is one packet payload, in the clear, as a Tap saw it.
type recEvent struct {
	fromClient bool
	seq        uint32
	p          []byte
}

// recTap collects the payloads one side of a session sent and received.
type recTap struct {
	client bool // the tap is the client's
	mu     sync.Mutex
	ev     []recEvent
}

func (r *recTap) tap(sent bool, seq uint32, p []byte) {
	e := recEvent{fromClient: sent == r.client, seq: seq, p: bytes.Clone(p)}
	r.mu.Lock()
	r.ev = append(r.ev, e)
	r.mu.Unlock()
}

func (r *recTap) events() []recEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recEvent(nil), r.ev...)
}

// recWire holds the first bytes of each direction of one TCP connection.
type recWire struct {
	mu       sync.Mutex
	c2s, s2c []byte
}

func (w *recWire) add(fromClient bool, b []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	dst := &w.s2c
	if fromClient {
		dst = &w.c2s
	}
	if room := recWireCap - len(*dst); room > 0 {
		*dst = append(*dst, b[:min(len(b), room)]...)
	}
}

func (w *recWire) bytes() (c2s, s2c []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.c2s), bytes.Clone(w.s2c)
}

// recConn records what crosses a connection at one of its ends.
type recConn struct {
	net.Conn
	w      *recWire
	client bool // this end is the client
}

func (c *recConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.w.add(!c.client, p[:n])
	return n, err
}

func (c *recConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.w.add(c.client, p[:n])
	return n, err
}

// recListener records every connection a server accepts.
type recListener struct {
	net.Listener
	sess *recSession
}

func (l *recListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recConn{Conn: c, w: l.sess.wire(), client: false}, nil
}

// recSession is one recorded session: the client and server programs, a
// label for what it did, our side's tap (nil when both ends are
// OpenSSH) and the raw bytes of its connections.
type recSession struct {
	client, server string // "rsftp" or "openssh"
	what           string
	tap            *recTap

	mu    sync.Mutex
	wires []*recWire
	// sftpLabels name the session's SFTP channels in the order they
	// were opened; a channel past the list is named by what. sftpOps,
	// where set, are the operations (sftp's FuzzClientReplies mask) each
	// channel ran.
	sftpLabels []string
	sftpOps    []byte
}

// label names the session's seeds: client-server-what.
func (s *recSession) label() string { return s.client + "-" + s.server + "-" + s.what }

func (s *recSession) wire() *recWire {
	w := new(recWire)
	s.mu.Lock()
	s.wires = append(s.wires, w)
	s.mu.Unlock()
	return w
}

func (s *recSession) allWires() []*recWire {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*recWire(nil), s.wires...)
}

// recFile is a file an OpenSSH tool wrote (or read) for a parser target.
type recFile struct {
	kind  string // privkey, knownhosts, authkeys
	label string
	data  []byte
}

// recSig is a public key blob with a signature made by its private key.
type recSig struct {
	label     string
	blob, sig []byte
}

// recAgentConv is one conversation with OpenSSH's ssh-agent: the
// agent's replies as they came, each framed as on the socket.
type recAgentConv struct {
	label   string
	replies [][]byte
}

// recSSHConfig is an ssh_config file OpenSSH used for a recorded
// session, the destination it was given and the -o option it had.
type recSSHConfig struct {
	label, host, opt string
	data             []byte
}

type recorder struct {
	dir      string
	sessions []*recSession
	files    []recFile
	sigs     []recSig
	agent    []recAgentConv
	configs  []recSSHConfig

	userKeys   []recKey // authorized everywhere
	otherKey   recKey   // authorized nowhere
	harnessKey ed25519.PrivateKey
	harnessKF  string // harnessKey as an OpenSSH key file
	hostKeys   []kex.Signer
	authorized map[string]bool // key blobs our servers accept
}

// recKey is a key pair made by ssh-keygen.
type recKey struct {
	name, path string
	signer     kex.Signer
	pub        []byte // the .pub line
}

func TestRecordFuzzCorpora(t *testing.T) {
	if os.Getenv("RSFTP_RECORD_CORPUS") != "1" {
		t.Skip("records fuzz corpora into testdata; set RSFTP_RECORD_CORPUS=1 (scripts/record-corpora.sh)")
	}
	sshtest.Binary(t, "ssh-keygen")
	r := &recorder{dir: t.TempDir(), authorized: map[string]bool{}}
	r.makeKeys(t)
	t.Run("rsftp-rsftp", r.recordOurs)
	t.Run("openssh-rsftp", r.recordOpenSSHClient)
	t.Run("rsftp-openssh", r.recordOurClientToSshd)
	t.Run("rsftp-internal-sftp", r.recordInternalSFTP)
	t.Run("openssh-openssh", r.recordOpenSSHBoth)
	t.Run("keyscan", r.recordKeyscan)
	t.Run("agent", r.recordAgent)
	t.Run("files", r.recordFiles)

	if os.Getenv("RSFTP_CORPUS_DEBUG") == "1" {
		for _, c := range r.convos() {
			var b strings.Builder
			for _, e := range c.ev {
				fmt.Fprintf(&b, " %s%d", map[bool]string{true: ">", false: "<"}[e.fromClient], e.p[0])
			}
			t.Logf("%s:%s", c.sess.label(), b.String())
		}
	}
	// The corpora go into the module, or under RSFTP_CORPUS_OUT (a
	// relative one is taken from the module root, as before the recorder
	// moved here from the root).
	out := os.Getenv("RSFTP_CORPUS_OUT")
	if out == "" || !filepath.IsAbs(out) {
		out = filepath.Join(recModuleRoot, out)
	}
	report, err := recWriteCorpora(out, r.seeds())
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range report {
		t.Log(line)
	}
}

// keygen runs ssh-keygen to make a key file in r.dir.
func (r *recorder) keygen(t *testing.T, name, typ string, bits int, comment, pass string, extra ...string) string {
	t.Helper()
	p := filepath.Join(r.dir, name)
	args := []string{"-q", "-t", typ, "-C", comment, "-N", pass, "-f", p}
	if bits > 0 {
		args = append(args, "-b", strconv.Itoa(bits))
	}
	args = append(args, extra...)
	if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
	}
	return p
}

func (r *recorder) loadKey(t *testing.T, name, p string) recKey {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := auth.ParsePrivateKey(data, nil)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	s, err := kex.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(p + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return recKey{name: name, path: p, signer: s, pub: pub}
}

// makeKeys makes the user and host keys of the recordings with
// ssh-keygen, and the auth fuzz targets' fixed ed25519 key as a key file.
func (r *recorder) makeKeys(t *testing.T) {
	for _, k := range []struct {
		name, typ string
		bits      int
		comment   string
	}{
		{"id_ed25519", "ed25519", 0, "alice@rec.example"},
		{"id_ecdsa256", "ecdsa", 256, "bob@rec.example"},
		{"id_ecdsa384", "ecdsa", 384, "carol with spaces <carol@rec.example>"},
		{"id_ecdsa521", "ecdsa", 521, ""},
		{"id_rsa2048", "rsa", 2048, "dave@rec.example"},
	} {
		p := r.keygen(t, k.name, k.typ, k.bits, k.comment, "")
		r.userKeys = append(r.userKeys, r.loadKey(t, k.name, p))
	}
	r.otherKey = r.loadKey(t, "id_other", r.keygen(t, "id_other", "rsa", 3072, "mallory@rec.example", ""))
	for _, k := range r.userKeys {
		r.authorized[string(k.signer.PublicKey().Marshal())] = true
	}
	r.harnessKey = ed25519.NewKeyFromSeed(make([]byte, 32))
	pem, err := auth.MarshalPrivateKey(r.harnessKey, "fuzz-harness-key", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.harnessKF = filepath.Join(r.dir, "id_harness")
	if err := os.WriteFile(r.harnessKF, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	hs, _ := kex.NewSigner(r.harnessKey)
	r.authorized[string(hs.PublicKey().Marshal())] = true
	for _, h := range []struct {
		typ  string
		bits int
	}{{"ed25519", 0}, {"ecdsa", 256}, {"rsa", 2048}} {
		name := "host_" + h.typ
		r.hostKeys = append(r.hostKeys, r.loadKey(t, name, r.keygen(t, name, h.typ, h.bits, "rec host key", "")).signer)
	}
}

// recHarnessTree makes the tree sftp's FuzzServerPackets serves (root/f,
// root/dir, root/out -> outside, root/link -> dir), so that recorded
// SFTP requests name what that target has.
func recHarnessTree(t *testing.T) string {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	os.MkdirAll(filepath.Join(root, "dir"), 0o755)
	os.MkdirAll(outside, 0o755)
	os.WriteFile(filepath.Join(root, "f"), []byte("file content"), 0o644)
	os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644)
	os.Symlink(outside, filepath.Join(root, "out"))
	os.Symlink("dir", filepath.Join(root, "link"))
	return root
}

type recServer struct {
	srv  *rsftp.Server
	addr string
	port int
	root string
}

// ourServer starts our server for one session. With tapServer the
// session records on the server's side (taps and accepted connections).
func (r *recorder) ourServer(t *testing.T, sess *recSession, tapServer bool, mod func(*rsftp.ServerConfig)) *recServer {
	t.Helper()
	root := recHarnessTree(t)
	cfg := &rsftp.ServerConfig{
		HostKeys: r.hostKeys,
		Auth: auth.ServerConfig{
			PublicKeyCallback: func(user string, key kex.PublicKey) (*auth.Permissions, error) {
				if r.authorized[string(key.Marshal())] {
					return &auth.Permissions{}, nil
				}
				return nil, errors.New("not authorized")
			},
			PasswordCallback: func(user string, pw []byte) (*auth.Permissions, error) {
				if string(pw) == recPassword {
					return &auth.Permissions{}, nil
				}
				return nil, errors.New("wrong password")
			},
			KeyboardInteractiveCallback: func(user string, ch func(string, string, []string, []bool) ([]string, error)) (*auth.Permissions, error) {
				ans, err := ch("rsftp recording", "Answer with the password.", []string{"Password: ", "Favourite colour: "}, []bool{false, true})
				if err != nil {
					return nil, err
				}
				if len(ans) == 2 && ans[0] == recPassword {
					return &auth.Permissions{}, nil
				}
				return nil, errors.New("wrong answers")
			},
			Banner: "rsftp corpus recording server\r\n",
		},
		Exec: rsftp.CommandHandler("/bin/sh"),
		Subsystems: map[string]rsftp.Handler{"sftp": func(ctx context.Context, s *rsftp.ServerSession) int {
			if err := sftp.Serve(ctx, s.Channel, &sftp.ServerConfig{Root: root}); err != nil {
				return 1
			}
			return 0
		}},
		AllowTCPForwarding: func(string, string, int) bool { return true },
		Logf:               func(string, ...any) {},
		Resume:             &rsftp.ResumeServerConfig{Hold: time.Minute},
	}
	if tapServer {
		cfg.Transport.Tap = sess.tap.tap
	}
	if mod != nil {
		mod(cfg)
	}
	srv, err := rsftp.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener = l
	if tapServer {
		ln = &recListener{Listener: l, sess: sess}
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &recServer{srv: srv, addr: l.Addr().String(), port: l.Addr().(*net.TCPAddr).Port, root: root}
}

func (r *recorder) newSession(client, server, what string, tapClient bool) *recSession {
	s := &recSession{client: client, server: server, what: what, tap: &recTap{client: tapClient}}
	r.sessions = append(r.sessions, s)
	return s
}

// ourClient connects our client, recording on its side.
func (r *recorder) ourClient(t *testing.T, sess *recSession, addr, user string, mod func(*rsftp.ClientConfig)) *rsftp.Client {
	t.Helper()
	cfg := &rsftp.ClientConfig{
		User:            user,
		Auth:            []auth.Method{auth.PublicKeys(r.harnessKey)},
		HostKeyCallback: func(string, int, kex.PublicKey) error { return nil },
		Banner:          func(string) {},
		Transport:       transport.Config{Tap: sess.tap.tap},
	}
	if mod != nil {
		mod(cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rsftp.NewClient(ctx, &recConn{Conn: nc, w: sess.wire(), client: true}, addr, cfg)
	if err != nil {
		nc.Close()
		t.Fatalf("%s: %v", sess.label(), err)
	}
	return c
}

// recExec runs cmd in a new session channel with stdin, optionally
// after an env request, and returns stdout, stderr and Wait's error.
func recExec(c *rsftp.Client, cmd, stdin string, env bool) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := c.NewSession(ctx)
	if err != nil {
		return "", "", err
	}
	defer s.Close()
	if env {
		s.Setenv(ctx, "RSFTP_REC", "recorded session")
	}
	stdout, stderr := s.Stdout(), s.Stderr()
	if err := s.Exec(ctx, cmd); err != nil {
		return "", "", err
	}
	var wg sync.WaitGroup
	var out, errb bytes.Buffer
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(&out, stdout) }()
	go func() { defer wg.Done(); io.Copy(&errb, stderr) }()
	in := s.Stdin()
	io.WriteString(in, stdin)
	in.Close()
	wg.Wait()
	return out.String(), errb.String(), s.Wait()
}

// recEcho serves TCP connections that echo what they get until EOF.
func recEcho(t *testing.T) (string, int) { return "127.0.0.1", forwardTarget(t) }

// recTCP sends msg through a direct-tcpip channel to the echo server and
// reads it back.
func recTCP(c *rsftp.Client, host string, port int, msg string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := c.DialTCP(ctx, host, port)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, got); err != nil {
		return err
	}
	if string(got) != msg {
		return fmt.Errorf("echo returned %q", got)
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		io.Copy(io.Discard, conn)
	}
	return nil
}

// recSFTP opens an SFTP channel on subsystem name, runs ops on it and
// closes it; sess.sftpLabels gets label.
func recSFTP(t *testing.T, sess *recSession, c *rsftp.Client, subsystem, label string, ops func(sc *sftp.Client) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Subsystem(ctx, subsystem); err != nil {
		t.Fatal(err)
	}
	sess.mu.Lock()
	sess.sftpLabels = append(sess.sftpLabels, label)
	sess.mu.Unlock()
	sc, err := sftp.NewClient(ctx, s.Channel())
	if err != nil {
		t.Fatal(err)
	}
	if err := ops(sc); err != nil {
		t.Errorf("sftp %s: %v", label, err)
	}
	sc.Close()
	s.Close()
}

// recText is printable file content (it quotes compactly in a seed).
func recText(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "line %04d of a file moved through a recorded SFTP session\n", i)
	}
	return b.Bytes()[:n]
}

// recSFTPOps are the SFTP operations our client records, by label; p maps
// a name in the fuzz target's tree to a path for the server at hand.
func recSFTPOps(p func(string) string) []struct {
	label string
	ops   func(sc *sftp.Client) error
} {
	return []struct {
		label string
		ops   func(sc *sftp.Client) error
	}{
		{"sftp-ls", func(sc *sftp.Client) error {
			if _, err := sc.RealPath("."); err != nil {
				return err
			}
			sc.HomeDir()
			if _, err := sc.ReadDir(p(".")); err != nil {
				return err
			}
			sc.ReadDir(p("link"))
			sc.Stat(p("f"))
			sc.Lstat(p("link"))
			sc.ReadLink(p("link"))
			sc.Stat(p("missing"))
			sc.StatVFS(p("."))
			return nil
		}},
		{"sftp-get", func(sc *sftp.Client) error {
			f, err := sc.Open(p("f"))
			if err != nil {
				return err
			}
			f.Stat()
			io.ReadAll(f)
			f.Seek(5, io.SeekStart)
			f.Read(make([]byte, 4))
			f.Close()
			sc.HashRange(p("f"), 0, 0)
			sc.Open(p("out/secret"))
			return nil
		}},
		{"sftp-put", func(sc *sftp.Client) error {
			f, err := sc.Create(p("dir/new.txt"))
			if err != nil {
				return err
			}
			if _, err := f.Write(recText(6000)); err != nil {
				return err
			}
			f.Sync()
			f.Chmod(0o640)
			f.Truncate(5000)
			if err := f.Close(); err != nil {
				return err
			}
			sc.Chtimes(p("dir/new.txt"), time.Unix(1700000000, 0), time.Unix(1700000000, 0))
			sc.Chmod(p("dir/new.txt"), 0o600)
			return nil
		}},
		{"sftp-mkdir", func(sc *sftp.Client) error {
			if err := sc.Mkdir(p("made"), 0o755); err != nil {
				return err
			}
			sc.MkdirAll(p("made/a/b"), 0o700)
			sc.Mkdir(p("made"), 0o755) // exists
			return nil
		}},
		{"sftp-rename", func(sc *sftp.Client) error {
			if err := sc.Rename(p("dir/new.txt"), p("made/renamed.txt")); err != nil {
				return err
			}
			sc.PosixRename(p("made/renamed.txt"), p("made/posix.txt"))
			sc.Hardlink(p("made/posix.txt"), p("made/hard.txt"))
			return nil
		}},
		{"sftp-symlink", func(sc *sftp.Client) error {
			if err := sc.Symlink("posix.txt", p("made/sym")); err != nil {
				return err
			}
			sc.ReadLink(p("made/sym"))
			sc.Lstat(p("made/sym"))
			sc.Symlink("../outside", p("made/escape"))
			sc.ExpandPath("~/made")
			return nil
		}},
		{"sftp-remove", func(sc *sftp.Client) error {
			for _, n := range []string{"made/sym", "made/escape", "made/hard.txt", "made/posix.txt"} {
				sc.Remove(p(n))
			}
			sc.RemoveDirectory(p("made/a/b"))
			sc.RemoveDirectory(p("made/a"))
			if err := sc.RemoveDirectory(p("made")); err != nil {
				return err
			}
			sc.Remove(p("missing"))
			return nil
		}},
	}
}

// recordOurs records our client with our server.
func (r *recorder) recordOurs(t *testing.T) {
	echoHost, echoPort := recEcho(t)
	run := func(what string, mod func(*rsftp.ServerConfig), cmod func(*rsftp.ClientConfig), body func(t *testing.T, sess *recSession, c *rsftp.Client)) {
		t.Run(what, func(t *testing.T) {
			sess := r.newSession("rsftp", "rsftp", what, true)
			srv := r.ourServer(t, sess, false, mod)
			c := r.ourClient(t, sess, srv.addr, "rec", cmod)
			defer c.Close()
			body(t, sess, c)
		})
	}
	run("exec", nil, nil, func(t *testing.T, sess *recSession, c *rsftp.Client) {
		out, errs, err := recExec(c, "cat; echo to-stderr >&2; exit 3", "hello from stdin\n", true)
		if out != "hello from stdin\n" || !strings.Contains(errs, "to-stderr") || err == nil {
			t.Errorf("exec: %q %q %v", out, errs, err)
		}
		recExec(c, "echo $RSFTP_REC", "", true)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Mux().SendRequest(ctx, "keepalive@openssh.com", true, nil)
		c.Mux().SendRequest(ctx, "tcpip-forward", true, wire.AppendUint32(wire.AppendString(nil, "127.0.0.1"), 0))
	})
	run("sftp", nil, nil, func(t *testing.T, sess *recSession, c *rsftp.Client) {
		for _, o := range recSFTPOps(func(n string) string { return path.Join("/", n) }) {
			recSFTP(t, sess, c, "sftp", o.label, o.ops)
		}
	})
	run("direct-tcpip", nil, nil, func(t *testing.T, sess *recSession, c *rsftp.Client) {
		if err := recTCP(c, echoHost, echoPort, "through a direct-tcpip channel\n"); err != nil {
			t.Error(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if conn, err := c.DialTCP(ctx, "127.0.0.1", 1); err == nil { // refused by the kernel
			conn.Close()
		}
	})
	run("rekey", nil, nil, func(t *testing.T, sess *recSession, c *rsftp.Client) {
		if err := recTCP(c, echoHost, echoPort, "before the rekey\n"); err != nil {
			t.Error(err)
		}
		if err := c.Transport().Rekey(); err != nil {
			t.Error(err)
		}
		c.Transport().SendPing([]byte("rec ping"))
		if out, _, _ := recExec(c, "cat", string(recText(3000)), false); len(out) != 3000 {
			t.Errorf("after the rekey: %d bytes", len(out))
		}
	})
	run("password", nil, func(cfg *rsftp.ClientConfig) {
		cfg.Auth = []auth.Method{auth.PublicKeySigners(r.otherKey.signer), auth.Password("wrong"), auth.Password(recPassword)}
	}, func(t *testing.T, sess *recSession, c *rsftp.Client) {
		recExec(c, "true", "", false)
	})
	run("kbdint", nil, func(cfg *rsftp.ClientConfig) {
		cfg.Auth = []auth.Method{auth.KeyboardInteractive(func(name, instr string, prompts []string, echo []bool) ([]string, error) {
			ans := make([]string, len(prompts))
			if len(ans) > 0 {
				ans[0] = recPassword
			}
			for i := 1; i < len(ans); i++ {
				ans[i] = "blue"
			}
			return ans, nil
		})}
	}, func(t *testing.T, sess *recSession, c *rsftp.Client) {
		recExec(c, "true", "", false)
	})
	run("pubkeys", nil, func(cfg *rsftp.ClientConfig) {
		var ss []kex.Signer
		ss = append(ss, r.otherKey.signer)
		for _, k := range r.userKeys {
			ss = append(ss, k.signer)
		}
		cfg.Auth = []auth.Method{auth.PublicKeySigners(ss...)}
	}, func(t *testing.T, sess *recSession, c *rsftp.Client) {
		recExec(c, "true", "", false)
	})
	t.Run("resume", func(t *testing.T) {
		sess := r.newSession("rsftp", "rsftp", "resume", true)
		srv := r.ourServer(t, sess, false, func(cfg *rsftp.ServerConfig) { cfg.Exec = recEchoHandler })
		resumed := make(chan struct{}, 4)
		c := r.ourClient(t, sess, srv.addr, "rec", func(cfg *rsftp.ClientConfig) {
			cfg.Resume = &rsftp.ResumeConfig{
				Redial: func(ctx context.Context) (net.Conn, error) {
					var d net.Dialer
					nc, err := d.DialContext(ctx, "tcp", srv.addr)
					if err != nil {
						return nil, err
					}
					return &recConn{Conn: nc, w: sess.wire(), client: true}, nil
				},
				AliveInterval:  300 * time.Millisecond,
				NoNetworkWatch: true,
				Events: func(e rsftp.Event) {
					if e.Kind == rsftp.EventResumed {
						resumed <- struct{}{}
					}
				},
			}
		})
		defer c.Close()
		if !c.Resumable() {
			t.Fatal("session not resumable")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		s, err := c.NewSession(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stdout := s.Stdout()
		if err := s.Exec(ctx, "echo"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(stdout)
		echo := func(line string) {
			io.WriteString(s.Stdin(), line+"\n")
			got, err := br.ReadString('\n')
			if err != nil || got != line+"\n" {
				t.Errorf("echo %q: %q %v", line, got, err)
			}
		}
		for i := range 300 { // past the ACK-every-256-messages rule
			echo(fmt.Sprintf("before the cut %d", i))
		}
		time.Sleep(700 * time.Millisecond) // an idle ping or two
		c.Reconnect()
		select {
		case <-resumed:
		case <-time.After(15 * time.Second):
			t.Fatal("no resumption")
		}
		for i := range 20 {
			echo(fmt.Sprintf("after the cut %d", i))
		}
		s.Stdin().Close()
		s.Wait()
	})

	// A resumption the server refuses: the client comes back to another
	// server, which does not know the session.
	t.Run("resume-unknown", func(t *testing.T) {
		sess := r.newSession("rsftp", "rsftp", "resume-unknown", true)
		srv := r.ourServer(t, sess, false, func(cfg *rsftp.ServerConfig) { cfg.Exec = recEchoHandler })
		other := r.ourServer(t, sess, false, nil)
		events := make(chan rsftp.EventKind, 16)
		c := r.ourClient(t, sess, srv.addr, "rec", func(cfg *rsftp.ClientConfig) {
			cfg.Resume = &rsftp.ResumeConfig{
				Redial: func(ctx context.Context) (net.Conn, error) {
					var d net.Dialer
					nc, err := d.DialContext(ctx, "tcp", other.addr)
					if err != nil {
						return nil, err
					}
					return &recConn{Conn: nc, w: sess.wire(), client: true}, nil
				},
				NoNetworkWatch: true,
				Events: func(e rsftp.Event) {
					select {
					case events <- e.Kind:
					default:
					}
				},
			}
		})
		defer c.Close()
		recExec(c, "", "some input\n", false)
		c.Reconnect()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case k := <-events:
				if k == rsftp.EventResumeFailed || k == rsftp.EventClosed {
					return
				}
			case <-deadline:
				t.Fatal("the resumption neither failed nor ended")
			}
		}
	})
}

// recEchoHandler copies stdin to stdout until EOF.
func recEchoHandler(ctx context.Context, s *rsftp.ServerSession) int {
	io.Copy(s.Channel, s.Channel)
	return 0
}

// sshConfig writes an ssh_config for OpenSSH in dir with a Host block for
// host, and keeps it as a FuzzSSHConfig seed.
func (r *recorder) sshConfig(t *testing.T, dir, label, host, opt string, lines ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# ssh_config of the recorded session %s\n", label)
	fmt.Fprintf(&b, "Host %s\n", host)
	for _, l := range lines {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	b.WriteString("\nHost *\n    ConnectTimeout 10\n    ServerAliveCountMax 3\n    LogLevel ERROR\n")
	p := filepath.Join(dir, "ssh_config")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	r.configs = append(r.configs, recSSHConfig{label: label, host: host, opt: opt, data: []byte(b.String())})
	return p
}

// recRunOpenSSH runs an OpenSSH client program with a deadline.
func recRunOpenSSH(t *testing.T, dir, bin string, args []string, stdin string, env ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, bin, args...)
	c.Dir = dir
	c.Stdin = strings.NewReader(stdin)
	c.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	return out.String(), err
}

// recordOpenSSHClient records OpenSSH's ssh and sftp with our server.
func (r *recorder) recordOpenSSHClient(t *testing.T) {
	sshBin := sshtest.Binary(t, "ssh")
	sftpBin := sshtest.Binary(t, "sftp")
	echoHost, echoPort := recEcho(t)
	askpass := filepath.Join(r.dir, "askpass.sh")
	os.WriteFile(askpass, []byte("#!/bin/sh\ncase \"$1\" in *olour*) echo blue;; *) echo "+recPassword+";; esac\n"), 0o700)
	type run struct {
		what   string
		bin    string
		key    string   // IdentityFile, relative to the session directory
		lines  []string // more ssh_config lines
		opt    string   // one -o option
		args   []string // after the destination
		stdin  string
		env    []string
		prep   func(dir string) []string // extra command-line arguments before the destination
		expect string
	}
	batch := func(dir, name, text string) []string {
		os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600)
		return []string{"-b", name}
	}
	runs := []run{
		{what: "exec", bin: sshBin, key: "harness", lines: []string{"SetEnv RSFTP_REC=openssh", "SendEnv LANG"},
			args: []string{"cat; echo to-stderr >&2; exit 3"}, stdin: "hello from stdin\n", expect: "hello from stdin"},
		{what: "exec-keepalive", bin: sshBin, key: "id_ed25519", opt: "ServerAliveInterval=1",
			args: []string{"sleep 2.2; echo kept alive"}, expect: "kept alive"},
		{what: "exec-pty", bin: sshBin, key: "id_ecdsa384", lines: []string{"RequestTTY force"},
			args: []string{"echo with a pty request"}, expect: "PTY allocation request failed"}, // our server has no ptys
		{what: "exec-ecdsa", bin: sshBin, key: "id_ecdsa256",
			lines: []string{"HostKeyAlgorithms ecdsa-sha2-nistp256", "Ciphers aes256-gcm@openssh.com", "KexAlgorithms curve25519-sha256@libssh.org"},
			args:  []string{"echo ecdsa"}, expect: "ecdsa"},
		{what: "exec-rsa", bin: sshBin, key: "id_rsa2048",
			lines: []string{"HostKeyAlgorithms rsa-sha2-256", "PubkeyAcceptedAlgorithms rsa-sha2-256", "Ciphers aes128-ctr", "MACs hmac-sha2-256-etm@openssh.com"},
			args:  []string{"echo rsa"}, expect: "rsa"},
		{what: "exec-p521", bin: sshBin, key: "id_ecdsa521",
			lines: []string{"HostKeyAlgorithms rsa-sha2-512", "Ciphers aes128-gcm@openssh.com", "Compression no"},
			args:  []string{"echo p521"}, expect: "p521"},
		{what: "password", bin: sshBin, lines: []string{"BatchMode no", "PreferredAuthentications password", "PubkeyAuthentication no", "NumberOfPasswordPrompts 1"},
			args: []string{"echo password"}, env: []string{"SSH_ASKPASS=" + askpass, "SSH_ASKPASS_REQUIRE=force"}, expect: "password"},
		{what: "kbdint", bin: sshBin, lines: []string{"BatchMode no", "PreferredAuthentications keyboard-interactive", "PubkeyAuthentication no"},
			args: []string{"echo kbdint"}, env: []string{"SSH_ASKPASS=" + askpass, "SSH_ASKPASS_REQUIRE=force"}, expect: "kbdint"},
		{what: "direct-tcpip", bin: sshBin, key: "harness",
			prep:  func(string) []string { return []string{"-W", net.JoinHostPort(echoHost, strconv.Itoa(echoPort))} },
			stdin: "through ssh -W\n", expect: "through ssh -W"},
		{what: "rekey", bin: sshBin, key: "harness", lines: []string{"RekeyLimit 32K"},
			args: []string{"wc -c"}, stdin: string(recText(150000)), expect: "150000"},
		{what: "sftp-ls", bin: sftpBin, key: "harness", prep: func(dir string) []string {
			return batch(dir, "batch", "pwd\nls\nls -la /\nls -l link\ncd dir\nls\ncd /\nls -n f\ndf -h /\n")
		}},
		{what: "sftp-get", bin: sftpBin, key: "harness", prep: func(dir string) []string {
			return batch(dir, "batch", "get /f got\nget -p f got-p\nreget /f got\n-get /missing\n-get /out/secret\n")
		}},
		{what: "sftp-put", bin: sftpBin, key: "harness", prep: func(dir string) []string {
			os.WriteFile(filepath.Join(dir, "local.txt"), recText(9000), 0o644)
			os.WriteFile(filepath.Join(dir, "part.txt"), recText(3000), 0o644)
			return batch(dir, "batch", "put local.txt /dir/put.txt\nput -p local.txt /dir/put-p.txt\nput part.txt /dir/part.txt\nreput local.txt /dir/part.txt\nchmod 600 /dir/put.txt\nls -l /dir\n")
		}},
		{what: "sftp-mkdir", bin: sftpBin, key: "harness", prep: func(dir string) []string {
			return batch(dir, "batch", "mkdir /made\n-mkdir /made\nmkdir made/sub\nls /made\n")
		}},
		{what: "sftp-rename", bin: sftpBin, key: "harness", prep: func(dir string) []string {
			os.WriteFile(filepath.Join(dir, "local.txt"), recText(500), 0o644)
			return batch(dir, "batch", "put local.txt /r1\nrename /r1 /r2\nln /r2 /r3\n-rename /r2 /r3\nrm /r2\nrm /r3\n")
		}},
		{what: "sftp-symlink", bin: sftpBin, key: "harness", prep: func(dir string) []string {
			return batch(dir, "batch", "symlink /f /sym\nln -s dir /sym2\nls -l /sym /sym2\n-symlink ../outside /escape\nrm /sym\nrm /sym2\n")
		}},
		{what: "sftp-remove", bin: sftpBin, key: "harness", prep: func(dir string) []string {
			os.WriteFile(filepath.Join(dir, "local.txt"), recText(100), 0o644)
			return batch(dir, "batch", "mkdir /gone\nput local.txt /gone/x\nrm /gone/x\nrmdir /gone\n-rm /missing\n-rmdir /dir/none\n")
		}},
		{what: "sftp-chown", bin: sftpBin, key: "id_ed25519", prep: func(dir string) []string {
			return batch(dir, "batch", "-chgrp 0 /f\n-chown 0 /f\nchmod 644 /f\nlumask 022\nlls\nprogress\nversion\n")
		}},
	}
	for _, rn := range runs {
		t.Run(rn.what, func(t *testing.T) {
			client := "openssh"
			sess := r.newSession(client, "rsftp", rn.what, false)
			srv := r.ourServer(t, sess, true, nil)
			dir := t.TempDir()
			host := "rec-" + rn.what
			lines := []string{"HostName 127.0.0.1", "Port " + strconv.Itoa(srv.port), "User rec",
				"UserKnownHostsFile known_hosts", "GlobalKnownHostsFile /dev/null",
				"StrictHostKeyChecking accept-new", "IdentityAgent none"}
			if len(r.configs)%2 == 0 {
				lines = append(lines, "HashKnownHosts yes")
			} else {
				lines = append(lines, "HashKnownHosts no")
			}
			if rn.key != "" {
				kf := r.harnessKF
				if rn.key != "harness" {
					kf = filepath.Join(r.dir, rn.key)
				}
				data, _ := os.ReadFile(kf)
				os.WriteFile(filepath.Join(dir, "id_key"), data, 0o600)
				lines = append(lines, "IdentityFile id_key", "IdentitiesOnly yes")
			}
			if !slices.Contains(rn.lines, "BatchMode no") {
				lines = append(lines, "BatchMode yes")
			}
			lines = append(lines, rn.lines...)
			cfg := r.sshConfig(t, dir, sess.label(), host, rn.opt, lines...)
			args := []string{"-F", cfg}
			if rn.opt != "" {
				args = append(args, "-o", rn.opt)
			}
			if rn.prep != nil {
				args = append(args, rn.prep(dir)...)
			}
			args = append(args, host)
			args = append(args, rn.args...)
			out, err := recRunOpenSSH(t, dir, rn.bin, args, rn.stdin, rn.env...)
			wantErr := rn.what == "exec" || rn.what == "exec-pty"
			if (err != nil) != wantErr || !strings.Contains(out, rn.expect) {
				t.Errorf("%s %v: %v\n%s", filepath.Base(rn.bin), args, err, out)
			}
			time.Sleep(100 * time.Millisecond) // let the server see the end
			srv.srv.Close()
			if kh, err := os.ReadFile(filepath.Join(dir, "known_hosts")); err == nil && len(kh) > 0 {
				r.files = append(r.files, recFile{kind: "knownhosts", label: "openssh-written-" + rn.what, data: kh})
			}
		})
	}
}

// recordOurClientToSshd records our client with Debian's sshd and its
// sftp-server.
func (r *recorder) recordOurClientToSshd(t *testing.T) {
	sftpServer := sshtest.Binary(t, "sftp-server")
	sftpRoot := recHarnessTree(t)
	banner := filepath.Join(r.dir, "sshd_banner")
	os.WriteFile(banner, []byte("Debian sshd, recorded for rsftp's fuzz corpora\n"), 0o644)
	hs, _ := kex.NewSigner(r.harnessKey)
	var ak strings.Builder
	fmt.Fprintf(&ak, "# keys of the corpus recording\n")
	fmt.Fprintf(&ak, "from=\"127.0.0.1,::1\",no-agent-forwarding,no-X11-forwarding %s fuzz-harness-key\n", kex.MarshalAuthorizedKey(hs.PublicKey()))
	for i, k := range r.userKeys {
		switch i {
		case 1:
			ak.WriteString("restrict,pty,port-forwarding ")
		case 2:
			ak.WriteString(`command="echo forced",no-pty `)
		}
		ak.Write(k.pub)
	}
	sshd := sshtest.StartSshd(t, ak.String(),
		"Subsystem rec-sftp "+sftpServer+" -d "+sftpRoot,
		"Banner "+banner,
		"AllowTcpForwarding yes",
	)
	r.files = append(r.files, recFile{kind: "authkeys", label: "sshd-accepted", data: []byte(ak.String())})
	user := sshtest.User(t)
	echoHost, echoPort := recEcho(t)
	run := func(what string, cmod func(*rsftp.ClientConfig), body func(t *testing.T, sess *recSession, c *rsftp.Client)) {
		t.Run(what, func(t *testing.T) {
			sess := r.newSession("rsftp", "openssh", what, true)
			c := r.ourClient(t, sess, sshd.Addr(), user, cmod)
			defer c.Close()
			body(t, sess, c)
		})
	}
	run("exec", nil, func(t *testing.T, sess *recSession, c *rsftp.Client) {
		out, errs, err := recExec(c, "cat; echo to-stderr >&2; exit 3", "hello from stdin\n", true)
		if out != "hello from stdin\n" || !strings.Contains(errs, "to-stderr") || err == nil {
			t.Errorf("exec: %q %q %v", out, errs, err)
		}
		recExec(c, "echo $RSFTP_REC", "", true)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Mux().SendRequest(ctx, "keepalive@openssh.com", true, nil)
		ok, reply, _ := c.Mux().SendRequest(ctx, "tcpip-forward", true, wire.AppendUint32(wire.AppendString(nil, "127.0.0.1"), 0))
		if ok && len(reply) >= 4 {
			port := wire.NewReader(reply).Uint32()
			c.Mux().SendRequest(ctx, "cancel-tcpip-forward", true, wire.AppendUint32(wire.AppendString(nil, "127.0.0.1"), port))
		}
		c.Mux().SendRequest(ctx, "no-more-sessions@openssh.com", false, nil)
		if _, err := c.NewSession(ctx); err == nil {
			t.Log("sshd opened a session after no-more-sessions")
		}
	})
	run("sftp", nil, func(t *testing.T, sess *recSession, c *rsftp.Client) {
		for _, o := range recSFTPOps(func(n string) string { return n }) {
			recSFTP(t, sess, c, "rec-sftp", o.label, o.ops)
		}
	})
	run("direct-tcpip", nil, func(t *testing.T, sess *recSession, c *rsftp.Client) {
		if err := recTCP(c, echoHost, echoPort, "through sshd's direct-tcpip\n"); err != nil {
			t.Error(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if conn, err := c.DialTCP(ctx, "127.0.0.1", 1); err == nil {
			conn.Close()
		}
	})
	run("rekey", nil, func(t *testing.T, sess *recSession, c *rsftp.Client) {
		if out, _, _ := recExec(c, "cat", "before the rekey\n", false); out != "before the rekey\n" {
			t.Errorf("before the rekey: %q", out)
		}
		if err := c.Transport().Rekey(); err != nil {
			t.Error(err)
		}
		if out, _, _ := recExec(c, "cat", string(recText(3000)), false); len(out) != 3000 {
			t.Errorf("after the rekey: %d bytes", len(out))
		}
	})
	run("pubkeys", func(cfg *rsftp.ClientConfig) {
		ss := []kex.Signer{r.otherKey.signer}
		for _, k := range r.userKeys[2:] {
			ss = append(ss, k.signer)
		}
		cfg.Auth = []auth.Method{auth.PublicKeySigners(ss...)}
	}, func(t *testing.T, sess *recSession, c *rsftp.Client) {
		out, _, _ := recExec(c, "echo not run", "", false)
		if !strings.Contains(out, "forced") {
			t.Errorf("command= not in effect: %q", out)
		}
	})
	run("ecdsa-hostkey", func(cfg *rsftp.ClientConfig) {
		cfg.Auth = []auth.Method{auth.PublicKeySigners(r.userKeys[4].signer)}
		cfg.Transport.HostKeyAlgorithms = []string{kex.SigAlgoRSASHA512, kex.KeyAlgoED25519}
		cfg.Transport.KexAlgorithms = []string{kex.Curve25519SHA256}
		cfg.Transport.Ciphers = []string{"aes128-ctr"}
		cfg.Transport.MACs = []string{"hmac-sha2-512"}
	}, func(t *testing.T, sess *recSession, c *rsftp.Client) {
		recExec(c, "true", "", false)
	})
}

// The operations of sftp's FuzzClientReplies, by bit of its mask, in
// its order: recordInternalSFTP runs the same requests against OpenSSH's
// internal-sftp so that the recorded replies answer them one by one.
const (
	recOpNames = 1 << iota
	recOpStat
	recOpReadDir
	recOpRead
	recOpExtensions
	recOpWrite
	recOpDownload
)

func recFuzzOps(ctx context.Context, c *sftp.Client, ops byte, dir string) {
	if ops&recOpNames != 0 {
		c.RealPath(".")
		c.HomeDir()
		c.ExpandPath("~/x")
	}
	if ops&recOpStat != 0 {
		c.Stat("/f")
		c.Lstat("/l")
		c.ReadLink("/l")
	}
	if ops&recOpReadDir != 0 {
		c.ReadDir("/d")
	}
	if ops&recOpRead != 0 {
		if f, err := c.Open("/f"); err == nil {
			f.WriteTo(io.Discard)
			f.ReadAt(make([]byte, 200), 7)
			f.Stat()
			if _, err := f.Seek(-10, io.SeekEnd); err == nil {
				f.Read(make([]byte, 100))
			}
			f.Close()
		}
	}
	if ops&recOpExtensions != 0 {
		c.StatVFS("/")
		c.HashRange("/f", 0, 1<<20)
		c.UserHomeDir("u")
		c.MkdirAll("/a/b", 0o755)
	}
	if ops&recOpWrite != 0 {
		if f, err := c.Create("/w"); err == nil {
			f.Write(bytes.Repeat([]byte("w"), 100))
			f.ReadFrom(bytes.NewReader(make([]byte, 300)))
			f.Truncate(5)
			f.Sync()
			f.Close()
		}
		c.Rename("/w", "/w2")
		c.PosixRename("/w2", "/w3")
		c.Symlink("w3", "/l2")
		c.Hardlink("/w3", "/w4")
		c.Chmod("/w4", 0o600)
		c.Remove("/w4")
	}
	if ops&recOpDownload != 0 {
		os.Mkdir(filepath.Join(dir, "dl"), 0o755)
		c.Download(ctx, "/d", filepath.Join(dir, "dl", "out"), sftp.TransferOptions{Recursive: true, PreserveTimesAndMode: true})
		resumed := filepath.Join(dir, "resumed")
		os.WriteFile(resumed, []byte("0123456789"), 0o644)
		c.Download(ctx, "/f", resumed, sftp.TransferOptions{Resume: true})
	}
}

// recordInternalSFTP records OpenSSH's internal-sftp, chrooted into the
// tree sftp's FuzzClientReplies assumes, answering the requests that
// target's client makes for each of its operation masks.
func (r *recorder) recordInternalSFTP(t *testing.T) {
	// sshd wants a chroot whose every component is root's and writable
	// by no one else: not under /tmp.
	if os.Getuid() != 0 {
		t.Skip("a chroot for sshd needs root")
	}
	root, err := os.MkdirTemp("/run", "rsftp-corpus-")
	if err != nil {
		t.Skip(err)
	}
	defer os.RemoveAll(root)
	os.Chmod(root, 0o755)
	os.MkdirAll(filepath.Join(root, "d", "sub"), 0o755)
	os.WriteFile(filepath.Join(root, "f"), []byte(strings.Repeat("0123456789abcdef", 19)), 0o644)
	os.WriteFile(filepath.Join(root, "d", "x"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(root, "d", "sub", "y"), []byte("y"), 0o644)
	os.Symlink("f", filepath.Join(root, "l"))
	user := sshtest.User(t)
	hs, _ := kex.NewSigner(r.harnessKey)
	sshd := sshtest.StartSshd(t, kex.MarshalAuthorizedKey(hs.PublicKey())+"\n",
		"Match User "+user, "ChrootDirectory "+root, "ForceCommand internal-sftp")
	sess := r.newSession("rsftp", "openssh", "internal-sftp", true)
	c := r.ourClient(t, sess, sshd.Addr(), user, nil)
	defer c.Close()
	names := map[byte]string{recOpNames: "names", recOpStat: "stat", recOpReadDir: "readdir", recOpRead: "read",
		recOpExtensions: "extensions", recOpWrite: "write", recOpDownload: "download", 0x7f: "all"}
	for _, ops := range []byte{recOpNames, recOpStat, recOpReadDir, recOpRead, recOpExtensions, recOpWrite, recOpDownload, 0x7f} {
		func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s, err := c.NewSession(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Subsystem(ctx, "sftp"); err != nil {
				t.Fatal(err)
			}
			sess.mu.Lock()
			sess.sftpLabels = append(sess.sftpLabels, "internal-sftp-ops-"+names[ops])
			sess.sftpOps = append(sess.sftpOps, ops)
			sess.mu.Unlock()
			sc, err := sftp.NewClient(ctx, s.Channel(), sftp.MaxInflight(8), sftp.ReadSize(64), sftp.WriteSize(64))
			if err != nil {
				t.Fatal(err)
			}
			recFuzzOps(ctx, sc, ops, t.TempDir())
			sc.Close()
		}()
		// What the write operations made goes, so that each mask starts
		// from the same tree.
		for _, n := range []string{"a", "w", "w2", "w3", "w4", "l2"} {
			os.RemoveAll(filepath.Join(root, n))
		}
	}
}

// recProxy relays TCP connections to target, recording each.
func recProxy(t *testing.T, sess *recSession, target string) int {
	return serveLoopbackTCP(t, func(c net.Conn) {
		up, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		defer up.Close()
		w := sess.wire()
		rc := &recConn{Conn: c, w: w, client: false}
		done := make(chan struct{})
		go func() { io.Copy(up, rc); up.(*net.TCPConn).CloseWrite(); close(done) }()
		io.Copy(rc, up)
		c.(*net.TCPConn).CloseWrite()
		<-done
	})
}

// recordOpenSSHBoth records ssh with sshd through a proxy: only the
// unencrypted start of each connection is of use.
func (r *recorder) recordOpenSSHBoth(t *testing.T) {
	sshBin := sshtest.Binary(t, "ssh")
	hs, _ := kex.NewSigner(r.harnessKey)
	sshd := sshtest.StartSshd(t, kex.MarshalAuthorizedKey(hs.PublicKey())+"\n")
	user := sshtest.User(t)
	for _, v := range []struct{ what, opt string }{
		{"exec", ""},
		{"exec-curve25519", "KexAlgorithms=curve25519-sha256"},
		{"exec-ecdh-p256", "KexAlgorithms=ecdh-sha2-nistp256"},
	} {
		t.Run(v.what, func(t *testing.T) {
			sess := r.newSession("openssh", "openssh", v.what, false)
			sess.tap = nil
			port := recProxy(t, sess, sshd.Addr())
			dir := t.TempDir()
			data, _ := os.ReadFile(r.harnessKF)
			os.WriteFile(filepath.Join(dir, "id_key"), data, 0o600)
			cfg := r.sshConfig(t, dir, sess.label(), "rec-sshd", v.opt, "HostName 127.0.0.1", "Port "+strconv.Itoa(port),
				"User "+user, "IdentityFile id_key", "IdentitiesOnly yes", "IdentityAgent none", "BatchMode yes",
				"UserKnownHostsFile known_hosts", "GlobalKnownHostsFile /dev/null", "StrictHostKeyChecking accept-new", "HashKnownHosts yes")
			args := []string{"-F", cfg}
			if v.opt != "" {
				args = append(args, "-o", v.opt)
			}
			args = append(args, "rec-sshd", "echo done")
			if out, err := recRunOpenSSH(t, dir, sshBin, args, ""); err != nil || !strings.Contains(out, "done") {
				t.Errorf("ssh: %v\n%s", err, out)
			}
			if kh, err := os.ReadFile(filepath.Join(dir, "known_hosts")); err == nil && len(kh) > 0 {
				r.files = append(r.files, recFile{kind: "knownhosts", label: "openssh-written-sshd", data: kh})
			}
		})
	}
}

// recordKeyscan runs ssh-keyscan against our server and sshd: real
// known_hosts lines, and the start of one connection per host key type.
func (r *recorder) recordKeyscan(t *testing.T) {
	bin := sshtest.Binary(t, "ssh-keyscan")
	sess := r.newSession("openssh", "rsftp", "keyscan", false)
	srv := r.ourServer(t, sess, true, nil)
	sshd := sshtest.StartSshd(t, "")
	for _, v := range []struct {
		label string
		port  int
		args  []string
	}{
		{"keyscan-rsftp", srv.port, nil},
		{"keyscan-rsftp-hashed", srv.port, []string{"-H", "-t", "ed25519,ecdsa"}},
		{"keyscan-sshd", sshd.Port, []string{"-t", "rsa,ecdsa,ed25519"}},
		{"keyscan-sshd-hashed", sshd.Port, []string{"-H"}},
	} {
		args := append([]string{"-T", "5", "-p", strconv.Itoa(v.port)}, v.args...)
		args = append(args, "127.0.0.1")
		out, err := exec.Command(bin, args...).Output()
		if err != nil || len(out) == 0 {
			t.Errorf("ssh-keyscan %v: %v", args, err)
			continue
		}
		r.files = append(r.files, recFile{kind: "knownhosts", label: v.label, data: out})
	}
	time.Sleep(100 * time.Millisecond)
	srv.srv.Close()
}

// recordAgent records OpenSSH's ssh-agent answering our agent client and
// OpenSSH's ssh-add and ssh.
func (r *recorder) recordAgent(t *testing.T) {
	agentBin := sshtest.Binary(t, "ssh-agent")
	addBin := sshtest.Binary(t, "ssh-add")
	sshBin := sshtest.Binary(t, "ssh")
	dir, err := os.MkdirTemp("", "recagent")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "agent.sock")
	agent := exec.Command(agentBin, "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { agent.Process.Kill(); agent.Wait() }()
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i > 200 {
			t.Fatal("ssh-agent did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	env := "SSH_AUTH_SOCK=" + sock
	add := func(args ...string) {
		c := exec.Command(addBin, args...)
		c.Env = append(os.Environ(), env)
		if out, err := c.CombinedOutput(); err != nil {
			t.Errorf("ssh-add %v: %v\n%s", args, err, out)
		}
	}
	add(r.userKeys[0].path)
	add("-t", "3600", r.userKeys[1].path, r.userKeys[3].path)
	add(r.userKeys[4].path)

	// The proxy: each connection's replies, split into frames.
	psock := filepath.Join(dir, "proxy.sock")
	l, err := net.Listen("unix", psock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var mu sync.Mutex
	var convs []*recAgentConv
	var wg sync.WaitGroup
	label := "agent"
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conv := &recAgentConv{label: label}
			convs = append(convs, conv)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				up, err := net.Dial("unix", sock)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { io.Copy(up, c); up.(*net.UnixConn).CloseWrite() }()
				br := bufio.NewReader(up)
				for {
					var hdr [4]byte
					if _, err := io.ReadFull(br, hdr[:]); err != nil {
						return
					}
					n := int(hdr[0])<<24 | int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
					if n > 1<<20 {
						return
					}
					frame := make([]byte, 4+n)
					copy(frame, hdr[:])
					if _, err := io.ReadFull(br, frame[4:]); err != nil {
						return
					}
					mu.Lock()
					conv.replies = append(conv.replies, frame)
					mu.Unlock()
					if _, err := c.Write(frame); err != nil {
						return
					}
				}
			}()
		}
	}()
	setLabel := func(s string) {
		mu.Lock()
		label = s
		mu.Unlock()
	}

	// Our client, first in the order FuzzAgentReply drives it: List,
	// Sign (ed25519), List; then every key and algorithm, and a key the
	// agent does not hold.
	setLabel("openssh-agent-rsftp-client")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := auth.DialAgent(ctx, psock)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := a.List()
	if err != nil || len(keys) == 0 {
		t.Fatalf("agent list: %d keys, %v", len(keys), err)
	}
	data := []byte("data signed by ssh-agent for the corpus")
	if _, err := a.Sign(r.userKeys[0].signer.PublicKey(), data, ""); err != nil {
		t.Error(err)
	}
	a.List()
	for _, k := range keys {
		for _, algo := range kex.SignatureAlgorithmsFor(k.Key.Type()) {
			sig, err := a.Sign(k.Key, data, algo)
			if err != nil {
				t.Errorf("agent sign %s: %v", algo, err)
				continue
			}
			r.sigs = append(r.sigs, recSig{label: "openssh-agent", blob: k.Key.Marshal(), sig: sig})
		}
	}
	a.Sign(r.otherKey.signer.PublicKey(), data, "")
	a.Close()

	// OpenSSH's own clients of the agent.
	setLabel("openssh-agent-ssh-add")
	for _, args := range [][]string{{"-l"}, {"-L"}, {"-d", r.userKeys[3].path}, {"-l", "-E", "md5"}} {
		c := exec.Command(addBin, args...)
		c.Env = append(os.Environ(), "SSH_AUTH_SOCK="+psock)
		c.Run()
	}
	setLabel("openssh-agent-ssh")
	sess := r.newSession("openssh", "rsftp", "agent-auth", false)
	srv := r.ourServer(t, sess, true, nil)
	sdir := t.TempDir()
	cfg := r.sshConfig(t, sdir, sess.label(), "rec-agent", "", "HostName 127.0.0.1", "Port "+strconv.Itoa(srv.port), "User rec",
		"IdentityAgent "+psock, "BatchMode yes", "UserKnownHostsFile /dev/null", "StrictHostKeyChecking no", "ForwardAgent no")
	if out, err := recRunOpenSSH(t, sdir, sshBin, []string{"-F", cfg, "rec-agent", "echo via agent"}, ""); err != nil || !strings.Contains(out, "via agent") {
		t.Errorf("ssh with the agent: %v\n%s", err, out)
	}
	time.Sleep(100 * time.Millisecond)
	srv.srv.Close()
	l.Close()
	wg.Wait()
	mu.Lock()
	for _, c := range convs {
		if len(c.replies) > 0 {
			r.agent = append(r.agent, *c)
		}
	}
	mu.Unlock()
}

// recordFiles makes key, known_hosts and authorized_keys files with
// ssh-keygen (and OpenSSH's own formats), and ssh-keygen -Y signatures.
func (r *recorder) recordFiles(t *testing.T) {
	kg := sshtest.Binary(t, "ssh-keygen")
	add := func(kind, label string, data []byte) {
		r.files = append(r.files, recFile{kind: kind, label: label, data: data})
	}
	for _, k := range append(r.userKeys, r.otherKey) {
		data, _ := os.ReadFile(k.path)
		add("privkey", "ssh-keygen-"+strings.TrimPrefix(k.name, "id_"), data)
	}
	hk, _ := os.ReadFile(r.harnessKF)
	add("privkey", "rsftp-marshal-ed25519", hk)
	// With a passphrase ("pass", which FuzzPrivateKey tries), at the
	// default bcrypt rounds and at a few.
	for _, k := range []struct {
		name, typ string
		bits      int
		extra     []string
	}{
		{"ed25519-pass", "ed25519", 0, nil},
		{"ecdsa256-pass-a2", "ecdsa", 256, []string{"-a", "2"}},
		{"ecdsa521-pass-a3", "ecdsa", 521, []string{"-a", "3"}},
		{"rsa2048-pass-a2", "rsa", 2048, []string{"-a", "2"}},
	} {
		p := r.keygen(t, "pk_"+k.name, k.typ, k.bits, "passphrase key "+k.name, "pass", k.extra...)
		data, _ := os.ReadFile(p)
		add("privkey", "ssh-keygen-"+k.name, data)
	}
	// Older formats ssh-keygen still writes.
	for _, k := range []struct {
		name, typ string
		bits      int
		format    string
	}{
		{"rsa2048-pem", "rsa", 2048, "PEM"},
		{"ecdsa256-pem", "ecdsa", 256, "PEM"},
		{"ecdsa384-pkcs8", "ecdsa", 384, "PKCS8"},
	} {
		p := r.keygen(t, "pk_"+k.name, k.typ, k.bits, "", "", "-m", k.format)
		data, _ := os.ReadFile(p)
		add("privkey-other", "ssh-keygen-"+k.name, data)
	}
	// A key whose comment ssh-keygen changed, and one re-encrypted.
	cp := filepath.Join(r.dir, "pk_recomment")
	data, _ := os.ReadFile(r.userKeys[1].path)
	os.WriteFile(cp, data, 0o600)
	exec.Command(kg, "-q", "-c", "-C", "new comment after ssh-keygen -c", "-f", cp).Run()
	exec.Command(kg, "-q", "-p", "-N", "pass", "-a", "2", "-f", cp).Run()
	data, _ = os.ReadFile(cp)
	add("privkey", "ssh-keygen-ecdsa256-recommented-pass", data)

	// ssh-keygen -Y signatures.
	msg := filepath.Join(r.dir, "signed.txt")
	os.WriteFile(msg, []byte("a file signed by ssh-keygen -Y sign\n"), 0o644)
	for _, k := range r.userKeys {
		if out, err := exec.Command(kg, "-q", "-Y", "sign", "-f", k.path, "-n", "file", msg).CombinedOutput(); err != nil {
			t.Errorf("ssh-keygen -Y sign: %v\n%s", err, out)
			continue
		}
		armored, _ := os.ReadFile(msg + ".sig")
		os.Remove(msg + ".sig")
		blob, sig, err := recParseSSHSig(armored)
		if err != nil {
			t.Errorf("%s: %v", k.name, err)
			continue
		}
		r.sigs = append(r.sigs, recSig{label: "ssh-keygen-sshsig", blob: blob, sig: sig})
	}

	// authorized_keys: the .pub lines as ssh-keygen wrote them, then
	// with options, one style per file.
	var plain bytes.Buffer
	for _, k := range append(r.userKeys, r.otherKey) {
		plain.Write(k.pub)
	}
	add("authkeys", "ssh-keygen-pub", plain.Bytes())
	pub := func(i int) string { return strings.TrimSpace(string(r.userKeys[i].pub)) }
	ca := r.loadKey(t, "ca", r.keygen(t, "ca_key", "ed25519", 0, "rec user CA", ""))
	caPub := strings.TrimSpace(string(ca.pub))
	for _, v := range []struct{ label, text string }{
		{"options-from-command", fmt.Sprintf("from=\"10.0.0.0/8,127.0.0.1,!10.1.1.1\",command=\"echo \\\"forced\\\"; exit 7\",no-pty %s\n%s\n", pub(0), pub(1))},
		{"options-restrict", fmt.Sprintf("restrict,pty,port-forwarding,permitopen=\"127.0.0.1:22\",permitopen=\"[::1]:2222\",permitlisten=\"localhost:8080\" %s\n", pub(2))},
		{"options-cert-authority", fmt.Sprintf("cert-authority,principals=\"alice,bob\" %s\n# a comment line\n\n%s\n", caPub, pub(3))},
		{"options-environment", fmt.Sprintf("environment=\"RSFTP_A=1\",environment=\"LANG=C.UTF-8\",expiry-time=\"20991231\",no-agent-forwarding,no-X11-forwarding,no-user-rc,tunnel=\"0\" %s\n", pub(4))},
		{"options-mixed", fmt.Sprintf("no-port-forwarding,from=\"*.example.org,!bad.example.org\" %s\ncommand=\"internal-sftp\",restrict %s\nverify-required %s\n", pub(0), pub(4), pub(1))},
	} {
		add("authkeys", v.label, []byte(v.text))
	}
	// Certificates: ssh-keygen -s; the -cert.pub line and a principal
	// file line are what a user would paste.
	certKey := r.userKeys[0].path
	if out, err := exec.Command(kg, "-q", "-s", ca.path, "-I", "rec-cert", "-n", "alice,bob", "-V", "+52w", certKey+".pub").CombinedOutput(); err == nil {
		certLine, _ := os.ReadFile(certKey + "-cert.pub")
		add("authkeys", "ssh-keygen-cert", certLine)
		add("knownhosts", "cert-line", append([]byte("@cert-authority * "), certLine...))
	} else {
		t.Logf("ssh-keygen -s: %v\n%s", err, out)
	}

	// known_hosts with markers, patterns and negations around real keys,
	// then the same file hashed by ssh-keygen -H.
	hostPub := func(i int) string {
		return kex.MarshalAuthorizedKey(r.hostKeys[i].PublicKey())
	}
	khText := fmt.Sprintf("# known_hosts for the corpus\n"+
		"rec.example,198.51.100.7 %s\n"+
		"[rec.example]:2222,[198.51.100.7]:2222 %s\n"+
		"*.rec.example,!bad.rec.example %s comment here\n"+
		"192.0.2.?,!192.0.2.9 %s\n"+
		"@cert-authority *.rec.example,!legacy.rec.example %s\n"+
		"@revoked * %s\n"+
		"\n"+
		"[127.0.0.1]:2200 %s\n",
		hostPub(0), hostPub(1), hostPub(2), hostPub(0), caPub, strings.TrimSpace(string(r.otherKey.pub)), hostPub(2))
	add("knownhosts", "patterns-markers", []byte(khText))
	kh := filepath.Join(r.dir, "known_hosts_hash")
	os.WriteFile(kh, []byte(khText), 0o600)
	if out, err := exec.Command(kg, "-H", "-f", kh).CombinedOutput(); err != nil {
		t.Errorf("ssh-keygen -H: %v\n%s", err, out)
	}
	hashed, _ := os.ReadFile(kh)
	add("knownhosts", "ssh-keygen-H", hashed)
	// ssh-keygen -R edits a file in place.
	exec.Command(kg, "-R", "rec.example", "-f", kh).Run()
	removed, _ := os.ReadFile(kh)
	add("knownhosts", "ssh-keygen-R", removed)
	// Check that OpenSSH reads what we wrote.
	if out, err := exec.Command(kg, "-F", "[rec.example]:2222", "-f", filepath.Join(r.dir, "known_hosts_hash.old")).CombinedOutput(); err != nil {
		t.Logf("ssh-keygen -F on the unhashed file: %v\n%s", err, out)
	}

	// ssh_config: Debian's own (less its Include of /etc, which the
	// target skips).
	if data, err := os.ReadFile("/etc/ssh/ssh_config"); err == nil {
		var b bytes.Buffer
		for _, line := range strings.SplitAfter(string(data), "\n") {
			if !strings.HasPrefix(strings.TrimSpace(strings.ToLower(line)), "include") {
				b.WriteString(line)
			}
		}
		r.configs = append(r.configs, recSSHConfig{label: "debian-etc-ssh_config", host: "rec.example", data: b.Bytes()})
	}
}

// recParseSSHSig extracts the public key and signature of an armored
// SSHSIG (ssh-keygen -Y sign).
func recParseSSHSig(armored []byte) (blob, sig []byte, err error) {
	var b64 strings.Builder
	for _, line := range strings.Split(string(armored), "\n") {
		if line != "" && !strings.HasPrefix(line, "-----") {
			b64.WriteString(strings.TrimSpace(line))
		}
	}
	raw, err := base64.StdEncoding.DecodeString(b64.String())
	if err != nil {
		return nil, nil, err
	}
	if !bytes.HasPrefix(raw, []byte("SSHSIG")) {
		return nil, nil, errors.New("no SSHSIG magic")
	}
	rd := wire.NewReader(raw[6:])
	rd.Uint32()
	blob = rd.Bytes()
	rd.Bytes() // namespace
	rd.Bytes() // reserved
	rd.Bytes() // hash
	sig = rd.Bytes()
	return blob, sig, rd.Done()
}
