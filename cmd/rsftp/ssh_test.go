package main

import (
	"bytes"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rsftp/rsftp"
)

// feedAll runs the escape machine over in, byte chunks as given, and
// returns what it sends and the actions in order.
func feedAll(m *escapeMachine, chunks ...string) (string, []escapeAction) {
	var sent []byte
	var acts []escapeAction
	for _, c := range chunks {
		in := []byte(c)
		for len(in) > 0 {
			out, n, act := m.feed(nil, in)
			sent = append(sent, out...)
			in = in[n:]
			if act != escNone {
				acts = append(acts, act)
			}
		}
	}
	return string(sent), acts
}

func TestEscapeMachine(t *testing.T) {
	cases := []struct {
		name   string
		char   int
		chunks []string
		sent   string
		acts   []escapeAction
	}{
		{"start of input", '~', []string{"~."}, "", []escapeAction{escDisconnect}},
		{"after CR", '~', []string{"ls\r~."}, "ls\r", []escapeAction{escDisconnect}},
		{"after LF", '~', []string{"a\n~#"}, "a\n", []escapeAction{escForwards}},
		{"mid-line is text", '~', []string{"a~.b"}, "a~.b", nil},
		{"split across reads", '~', []string{"x\r", "~", "?"}, "x\r", []escapeAction{escHelp}},
		{"tilde tilde sends one", '~', []string{"~~."}, "~.", nil},
		{"unknown sends both", '~', []string{"~x"}, "~x", nil},
		{"unknown then newline", '~', []string{"~\r~."}, "~\r", []escapeAction{escDisconnect}},
		{"escapes in a row", '~', []string{"~?~#~."}, "", []escapeAction{escHelp, escForwards, escDisconnect}},
		{"control-Z", '~', []string{"\r~\x1a"}, "\r", []escapeAction{escSuspend}},
		{"background", '~', []string{"~&"}, "", []escapeAction{escBackground}},
		{"break, rekey, info, verbose", '~', []string{"~B\r~R\r~I\r~v\r~V"}, "\r\r\r\r", []escapeAction{escBreak, escRekey, escInfo, escVerbose, escQuieter}},
		{"reconnect", '~', []string{"~\x12"}, "", []escapeAction{escReconnect}},
		{"command line", '~', []string{"~C"}, "", []escapeAction{escCommand}},
		{"other char", '%', []string{"~.\r%."}, "~.\r", []escapeAction{escDisconnect}},
		{"control char", 0x1d, []string{"\x1d."}, "", []escapeAction{escDisconnect}},
		{"none", noEscapeChar, []string{"~.\r~."}, "~.\r~.", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sent, acts := feedAll(newEscapeMachine(c.char), c.chunks...)
			if sent != c.sent || !cmp.Equal(acts, c.acts) {
				t.Fatalf("sent %q acts %v, want %q %v", sent, acts, c.sent, c.acts)
			}
		})
	}
}

func TestParseEscapeChar(t *testing.T) {
	for in, want := range map[string]int{"~": '~', "none": noEscapeChar, "^]": 0x1d, "^A": 1, "%": '%'} {
		if got, ok := parseEscapeChar(in); !ok || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "ab", "^\x01", "~~"} {
		if _, ok := parseEscapeChar(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
	if escapeName(0x1d) != "^]" || escapeName('~') != "~" {
		t.Errorf("escapeName: %q %q", escapeName(0x1d), escapeName('~'))
	}
}

func TestParseForward(t *testing.T) {
	t.Setenv("RSFTP_FWD_PORT", "7000")
	cases := []struct {
		kind byte
		spec string
		want forwardSpec
	}{
		{'L', "8080:example.org:80", forwardSpec{listenPort: 8080, connectHost: "example.org", connectPort: 80}},
		{'L', "127.0.0.1:8080:example.org:80", forwardSpec{bindHost: "127.0.0.1", bindSet: true, listenPort: 8080, connectHost: "example.org", connectPort: 80}},
		{'L', "*:8080:db:5432", forwardSpec{bindHost: "*", bindSet: true, listenPort: 8080, connectHost: "db", connectPort: 5432}},
		{'L', ":8080:db:5432", forwardSpec{bindHost: "", bindSet: true, listenPort: 8080, connectHost: "db", connectPort: 5432}},
		{'L', "[::1]:8080:[2001:db8::1]:22", forwardSpec{bindHost: "::1", bindSet: true, listenPort: 8080, connectHost: "2001:db8::1", connectPort: 22}},
		{'L', "8080:/run/app.sock", forwardSpec{listenPort: 8080, connectPath: "/run/app.sock"}},
		{'L', "/tmp/l.sock:db:5432", forwardSpec{listenPath: "/tmp/l.sock", connectHost: "db", connectPort: 5432}},
		{'L', "/tmp/l.sock:/run/r.sock", forwardSpec{listenPath: "/tmp/l.sock", connectPath: "/run/r.sock"}},
		{'L', "localhost:8080:/run/r.sock", forwardSpec{bindHost: "localhost", bindSet: true, listenPort: 8080, connectPath: "/run/r.sock"}},
		{'L', "${RSFTP_FWD_PORT}:h:ssh", forwardSpec{listenPort: 7000, connectHost: "h", connectPort: 22}},
		{'L', `8080:we\:ird:80`, forwardSpec{listenPort: 8080, connectHost: "we:ird", connectPort: 80}},
		{'R', "0:localhost:80", forwardSpec{connectHost: "localhost", connectPort: 80}},
		{'R', "9000", forwardSpec{listenPort: 9000}},
		{'R', "0.0.0.0:9000", forwardSpec{bindHost: "0.0.0.0", bindSet: true, listenPort: 9000}},
		{'R', "/tmp/r.sock:/tmp/l.sock", forwardSpec{listenPath: "/tmp/r.sock", connectPath: "/tmp/l.sock"}},
		{'D', "1080", forwardSpec{listenPort: 1080}},
		{'D', "localhost:1080", forwardSpec{bindHost: "localhost", bindSet: true, listenPort: 1080}},
		{'D', "[::1]:1080", forwardSpec{bindHost: "::1", bindSet: true, listenPort: 1080}},
	}
	for _, c := range cases {
		got, err := parseForward(c.kind, c.spec)
		c.want.kind = c.kind
		if err != nil || got != c.want {
			t.Errorf("-%c %s: %+v %v, want %+v", c.kind, c.spec, got, err, c.want)
		}
	}
	for _, bad := range []struct {
		kind byte
		spec string
	}{
		{'L', ""}, {'L', "8080"}, {'L', "8080:host"}, {'L', "0:host:80"}, {'L', "8080:host:0"},
		{'L', "8080:host:99999"}, {'L', "a:b:c:d:e"}, {'L', "[::1:8080:h:80"}, {'L', "[::1]x:8080:h:80"},
		{'L', "8080::80"}, {'L', "${RSFTP_NOT_SET_ANYWHERE}:h:80"}, {'L', "8080:h:80\\"},
		{'L', "8080:/" + strings.Repeat("x", 200)}, {'L', "8080:" + strings.Repeat("h", 1100) + ":80"},
		{'D', "0"}, {'D', "1080:h:80"}, {'D', "a:b:c"}, {'D', "nosuchservice-xyz"},
		{'R', "8080:host"}, {'R', "-1:h:80"},
	} {
		if f, err := parseForward(bad.kind, bad.spec); err == nil {
			t.Errorf("-%c %q accepted: %+v", bad.kind, bad.spec, f)
		}
	}
	f, _ := parseForward('L', "8080:db:5432")
	if s := f.String(); s != "local forward localhost:8080 -> db:5432" {
		t.Errorf("String: %q", s)
	}
	f, _ = parseForward('R', "[::]:0:/run/x.sock")
	if s := f.String(); s != "remote forward [::]:0 (on the server) -> /run/x.sock" {
		t.Errorf("String: %q", s)
	}
	if a := forwardListenAddrs(forwardSpec{listenPort: 80}, false); !cmp.Equal(a, []string{"127.0.0.1:80", "[::1]:80"}) {
		t.Errorf("loopback: %v", a)
	}
	if a := forwardListenAddrs(forwardSpec{listenPort: 80}, true); !cmp.Equal(a, []string{":80"}) {
		t.Errorf("GatewayPorts: %v", a)
	}
	if a := forwardListenAddrs(forwardSpec{listenPort: 80, bindHost: "*", bindSet: true}, false); !cmp.Equal(a, []string{":80"}) {
		t.Errorf("*: %v", a)
	}
}

func TestParseSSHArgs(t *testing.T) {
	a, err := parseSSHArgs([]string{"-tt", "-p2222", "-L", "8080:h:80", "alice@host", "-A", "-o", "SendEnv=LANG", "ls", "-l", "/tmp"})
	if err != nil {
		t.Fatal(err)
	}
	if a.dest != (remoteSpec{user: "alice", host: "host"}) || a.f.port != "2222" || !cmp.Equal(a.command, []string{"ls", "-l", "/tmp"}) {
		t.Fatalf("%+v", a)
	}
	if !cmp.Equal(a.f.options, []string{"ForwardAgent=yes", "RequestTTY=force", "SendEnv=LANG"}) || len(a.forwards) != 1 {
		t.Fatalf("options %q forwards %v", a.f.options, a.forwards)
	}
	a, err = parseSSHArgs([]string{"-l", "bob", "-NT", "ssh://carol@[::1]:2200"})
	if err != nil {
		t.Fatal(err)
	}
	if a.dest != (remoteSpec{user: "bob", host: "::1"}) || a.f.port != "2200" || !cmp.Equal(a.f.options, []string{"SessionType=none", "RequestTTY=no"}) {
		t.Fatalf("-l and a URI: %+v %q", a.dest, a.f.options)
	}
	a, err = parseSSHArgs([]string{"host", "--", "-v"})
	if err != nil || !cmp.Equal(a.command, []string{"-v"}) || a.f.verbose != 0 {
		t.Fatalf("-- before the command: %+v %v", a, err)
	}
	for _, bad := range [][]string{
		{}, {"-p"}, {"-p", "x", "host"}, {"-X", "host"}, {"-f", "host"}, {"-L", "8080", "host"},
		{"-e", "ab", "host"}, {"-o", "Nonsense=1", "host"}, {"-W", "nohostport", "host"}, {"-Z", "host"},
		{"-S", "/tmp/ctl", "host"}, {"--bogus", "host"}, {"ssh://h/path"}, {"@host"},
	} {
		if _, err := parseSSHArgs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSSHOptionsFromConfig(t *testing.T) {
	cfg := newSSHConfig()
	for _, line := range []string{
		"LocalForward 8080 db:5432", "LocalForward 9090 /run/x.sock", "DynamicForward 1080", "RemoteForward 9000 localhost:80",
		"RemoteForward 9001", "ExitOnForwardFailure yes", "SendEnv LANG LC_*", "SendEnv -LC_ALL", "SetEnv A=1 B=2",
		"SetEnv C=3", "EscapeChar ^]", "RequestTTY force", "ForwardAgent yes", "StdinNull yes", "GatewayPorts yes",
	} {
		if err := cfg.parseOption(line); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
	}
	a, _ := parseSSHArgs([]string{"-L", "1:h:2", "host"})
	t.Setenv("SSH_AUTH_SOCK", "/tmp/agent.sock")
	o, err := resolveSSHOptions(cfg, a)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.forwards) != 6 || o.forwards[0].listenPort != 1 || o.forwards[1].connectHost != "db" || o.forwards[2].connectPath != "/run/x.sock" ||
		o.forwards[3].kind != 'R' || o.forwards[5].kind != 'D' || !o.forwards[4].dynamic() {
		t.Fatalf("forwards: %+v", o.forwards)
	}
	if !o.exitOnFwd || !o.stdinNull || !o.gateway || o.escape != 0x1d || o.requestTTY != "force" || o.agent != "/tmp/agent.sock" {
		t.Fatalf("options: %+v", o)
	}
	if !cmp.Equal(o.setEnv, []string{"A=1", "B=2"}) {
		t.Fatalf("SetEnv (the first line wins, as ssh): %q", o.setEnv)
	}
	env := sendEnvNames(o.sendEnv, []string{"LANG=C", "LC_ALL=C", "LC_TIME=x", "HOME=/root"})
	if !cmp.Equal(env, []string{"LANG=C", "LC_TIME=x"}) {
		// -LC_ALL takes back only a pattern LC_ALL matches: LC_* stays,
		// as ssh's rm_env.
		if !cmp.Equal(env, []string{"LANG=C", "LC_ALL=C", "LC_TIME=x"}) {
			t.Fatalf("SendEnv: %q", env)
		}
	}
	cfg = newSSHConfig()
	cfg.parseOption("ClearAllForwardings yes")
	cfg.parseOption("LocalForward 8080 db:5432")
	if o, _ := resolveSSHOptions(cfg, a); len(o.forwards) != 0 {
		t.Fatalf("ClearAllForwardings: %v", o.forwards)
	}
	cfg = newSSHConfig()
	cfg.parseOption("RemoteCommand uptime")
	if _, err := resolveSSHOptions(cfg, &sshArgs{command: []string{"ls"}}); err == nil {
		t.Fatal("a command and RemoteCommand both accepted")
	}
	if o, err := resolveSSHOptions(cfg, &sshArgs{}); err != nil || o.command != "uptime" {
		t.Fatalf("RemoteCommand: %+v %v", o, err)
	}
	for _, bad := range []string{"LocalForward 8080", "LocalForward 0 h:80", "DynamicForward 1080 x", "RequestTTY maybe",
		"SessionType shell", "EscapeChar ab", "SendEnv A=B", "SetEnv NOEQUALS", "ExitOnForwardFailure perhaps"} {
		if err := newSSHConfig().parseOption(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestWantPTY(t *testing.T) {
	for _, c := range []struct {
		tty, typ, cmd string
		stdinTTY      bool
		pty, warn     bool
	}{
		{"auto", "default", "", true, true, false},
		{"auto", "default", "ls", true, false, false},
		{"auto", "default", "", false, false, true},
		{"auto", "subsystem", "sftp", true, false, false},
		{"yes", "default", "ls", true, true, false},
		{"yes", "default", "ls", false, false, true},
		{"force", "default", "ls", false, true, false},
		{"no", "default", "", true, false, false},
		{"force", "none", "", true, false, false},
	} {
		pty, warn := wantPTY(&sshOptions{requestTTY: c.tty, sessionType: c.typ, command: c.cmd}, c.stdinTTY)
		if pty != c.pty || warn != c.warn {
			t.Errorf("%+v: pty %v warn %v", c, pty, warn)
		}
	}
}

func TestParseSOCKS(t *testing.T) {
	// SOCKS4: 1.2.3.4:80, user "u".
	req, n, err := parseSOCKS4Request([]byte{4, 1, 0, 80, 1, 2, 3, 4, 'u', 0, 'x'})
	if err != nil || n != 10 || req.host != "1.2.3.4" || req.port != 80 {
		t.Fatalf("SOCKS4: %+v %d %v", req, n, err)
	}
	// SOCKS4a: a name after the user id.
	req, n, err = parseSOCKS4Request(append([]byte{4, 1, 1, 187, 0, 0, 0, 9, 0}, "example.org\x00"...))
	if err != nil || n != 21 || req.host != "example.org" || req.port != 443 {
		t.Fatalf("SOCKS4a: %+v %d %v", req, n, err)
	}
	ok, n, err := parseSOCKS5Greeting([]byte{5, 2, 2, 0})
	if !ok || n != 4 || err != nil {
		t.Fatalf("greeting: %v %d %v", ok, n, err)
	}
	req, n, err = parseSOCKS5Request([]byte{5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 22})
	if err != nil || n != 22 || req.host != "::1" || req.port != 22 {
		t.Fatalf("SOCKS5 IPv6: %+v %d %v", req, n, err)
	}
	req, _, err = parseSOCKS5Request(append([]byte{5, 1, 0, 3, 4}, "host\x00\x50"...))
	if err != nil || req.host != "host" || req.port != 80 {
		t.Fatalf("SOCKS5 name: %+v %v", req, err)
	}
	// Every prefix of a valid message is short, never an error.
	for _, whole := range [][]byte{
		{4, 1, 0, 80, 1, 2, 3, 4, 'u', 0},
		append([]byte{4, 1, 1, 187, 0, 0, 0, 9, 0}, "example.org\x00"...),
		append([]byte{5, 1, 0, 3, 4}, "host\x00\x50"...),
	} {
		for i := range whole {
			var err error
			if whole[0] == 4 {
				_, _, err = parseSOCKS4Request(whole[:i])
			} else {
				_, _, err = parseSOCKS5Request(whole[:i])
			}
			if err != errSOCKSShort {
				t.Fatalf("%d bytes of %v: %v", i, whole, err)
			}
		}
	}
	bad := []struct {
		name  string
		parse func([]byte) error
		in    []byte
		reply []byte
	}{
		{"4 bind", p4, []byte{4, 2, 0, 80, 1, 2, 3, 4, 0}, marshalSOCKS4Reply(socks4Rejected)},
		{"4 port 0", p4, []byte{4, 1, 0, 0, 1, 2, 3, 4, 0}, marshalSOCKS4Reply(socks4Rejected)},
		{"4 long user", p4, append([]byte{4, 1, 0, 80, 1, 2, 3, 4}, bytes.Repeat([]byte{'u'}, 300)...), marshalSOCKS4Reply(socks4Rejected)},
		{"4a long host", p4, append([]byte{4, 1, 0, 80, 0, 0, 0, 1, 0}, bytes.Repeat([]byte{'h'}, 300)...), marshalSOCKS4Reply(socks4Rejected)},
		{"4a empty host", p4, []byte{4, 1, 0, 80, 0, 0, 0, 1, 0, 0}, marshalSOCKS4Reply(socks4Rejected)},
		{"5 no methods", p5g, []byte{5, 0}, []byte{5, socks5MethodNoAcceptable}},
		{"5 version", p5, []byte{4, 1, 0, 1, 1, 2, 3, 4, 0, 80}, nil},
		{"5 udp", p5, []byte{5, 3, 0, 1, 1, 2, 3, 4, 0, 80}, marshalSOCKS5Reply(socks5CommandUnsupported)},
		{"5 atyp", p5, []byte{5, 1, 0, 9, 1, 2, 3, 4, 0, 80}, marshalSOCKS5Reply(socks5AddressUnsupported)},
		{"5 reserved", p5, []byte{5, 1, 7, 1, 1, 2, 3, 4, 0, 80}, marshalSOCKS5Reply(socks5GeneralFailure)},
		{"5 empty name", p5, []byte{5, 1, 0, 3, 0, 0, 80}, marshalSOCKS5Reply(socks5GeneralFailure)},
		{"5 NUL in name", p5, []byte{5, 1, 0, 3, 2, 'a', 0, 0, 80}, marshalSOCKS5Reply(socks5GeneralFailure)},
		{"5 port 0", p5, []byte{5, 1, 0, 1, 1, 2, 3, 4, 0, 0}, marshalSOCKS5Reply(socks5GeneralFailure)},
	}
	for _, c := range bad {
		err := c.parse(c.in)
		var pe *socksProtocolError
		if !errors.As(err, &pe) || !bytes.Equal(pe.reply, c.reply) {
			t.Errorf("%s: %v (reply %v, want %v)", c.name, err, pe, c.reply)
		}
	}
}

func p4(b []byte) error  { _, _, err := parseSOCKS4Request(b); return err }
func p5(b []byte) error  { _, _, err := parseSOCKS5Request(b); return err }
func p5g(b []byte) error { _, _, err := parseSOCKS5Greeting(b); return err }

// TestSOCKSHandshake: the server side over a pipe, with the request in
// pieces and the first data right behind it; a client that never ends
// its user id is refused at the bound, not read forever.
func TestSOCKSHandshake(t *testing.T) {
	c, s := net.Pipe()
	defer c.Close()
	type result struct {
		req   socksRequest
		extra []byte
		err   error
	}
	res := make(chan result, 1)
	go func() {
		req, reply, extra, err := socksHandshake(s)
		if err == nil {
			err = reply(true)
		}
		res <- result{req, extra, err}
	}()
	c.Write([]byte{5, 1})
	c.Write([]byte{0})
	var sel [2]byte
	if _, err := c.Read(sel[:]); err != nil || sel != [2]byte{5, 0} {
		t.Fatalf("selection %v %v", sel, err)
	}
	go c.Write(append([]byte{5, 1, 0, 3, 1, 'h', 0, 80}, "GET"...))
	var rep [10]byte
	if _, err := readFull(c, rep[:]); err != nil || rep[1] != socks5OK {
		t.Fatalf("reply %v %v", rep, err)
	}
	r := <-res
	if r.err != nil || r.req.target() != "h:80" {
		t.Fatalf("%+v", r)
	}
	if string(r.extra) != "GET" {
		// The data may come in a later read: then it stays in the
		// connection for the splice.
		if len(r.extra) != 0 {
			t.Fatalf("extra %q", r.extra)
		}
	}

	c, s = net.Pipe()
	defer c.Close()
	go func() {
		_, _, _, err := socksHandshake(s)
		res <- result{err: err}
		s.Close()
	}()
	go func() {
		c.Write([]byte{4, 1, 0, 80, 1, 2, 3, 4})
		for range 10 {
			if _, err := c.Write(bytes.Repeat([]byte{'u'}, 100)); err != nil {
				return
			}
		}
	}()
	var reply [8]byte
	readFull(c, reply[:])
	select {
	case r := <-res:
		if r.err == nil || reply[1] != socks4Rejected {
			t.Fatalf("an endless user id: %v, reply %v", r.err, reply)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an endless user id was read on")
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestVTTracker(t *testing.T) {
	for _, c := range []struct {
		in   string
		rest bool
	}{
		{"plain", true}, {"\x1b", false}, {"\x1b[", false}, {"\x1b[1;2", false}, {"\x1b[1;2H", true},
		{"\x1b]0;title", false}, {"\x1b]0;title\x07", true}, {"\x1b]0;t\x1b", false}, {"\x1b]0;t\x1b\\", true},
		{"\xc3", false}, {"\xc3\xa9", true}, {"\xe2\x82", false}, {"\xe2\x82\xac", true}, {"\x1b(", false}, {"\x1b(B", true},
		{"\x1bP1$r", false}, {"\x1b7", true}, {"\x1b[\x18", true},
	} {
		var v vtTracker
		// One byte at a time must agree with all at once.
		v.feed([]byte(c.in))
		var w vtTracker
		for i := range len(c.in) {
			w.feed([]byte{c.in[i]})
		}
		if v.atRest() != c.rest || w.atRest() != c.rest {
			t.Errorf("%q: at rest %v (bytewise %v), want %v", c.in, v.atRest(), w.atRest(), c.rest)
		}
	}
	// A title waits for the output to rest.
	var b bytes.Buffer
	o := &termOut{w: &b}
	o.Write([]byte("abc\x1b[3"))
	o.control("\x1b]2;T\x07")
	if b.String() != "abc\x1b[3" {
		t.Fatalf("written inside a sequence: %q", b.String())
	}
	o.Write([]byte("1mdef"))
	if b.String() != "abc\x1b[31mdef\x1b]2;T\x07" {
		t.Fatalf("after: %q", b.String())
	}
	if s := noticeTitle("alice@host", 12*time.Second, 59*time.Minute, 3); s != "rsftp: alice@host: link lost 12s ago, reconnecting (try 3); the server holds the session 59m0s more" {
		t.Fatalf("title: %q", s)
	}
	if s := titleText("a\x07b\x1bc"); s != "abc" {
		t.Fatalf("titleText: %q", s)
	}
}

// TestNoticeTitle: a lost link pushes the title and shows the notice in
// it, refreshed while reconnecting; a resumption puts the title back
// (user@host, then a pop of the title stack); nothing else is written.
func TestNoticeTitle(t *testing.T) {
	var b bytes.Buffer
	out := &termOut{w: &b}
	n := newNotice(out, "alice@host", &logger{})
	now := time.Now()
	n.event(rsftp.Event{Kind: rsftp.EventLinkLost, Time: now, HoldLeft: time.Hour})
	got := b.String()
	if !strings.HasPrefix(got, "\x1b[22;2t\x1b]2;rsftp: alice@host: link lost 0s ago, reconnecting; the server holds the session 1h0m more\x07") {
		t.Fatalf("on link_lost: %q", got)
	}
	b.Reset()
	n.event(rsftp.Event{Kind: rsftp.EventReconnecting, Time: now.Add(2 * time.Second), Attempt: 2, HoldLeft: time.Hour - 2*time.Second})
	if got := b.String(); !strings.Contains(got, "link lost 2s ago, reconnecting (try 2)") || strings.Contains(got, "22;2t") {
		t.Fatalf("on reconnecting: %q", got)
	}
	b.Reset()
	n.event(rsftp.Event{Kind: rsftp.EventResumed, Time: now.Add(3 * time.Second), Offline: 3 * time.Second})
	if got := b.String(); got != "\x1b]2;alice@host\x07\x1b[23;2t" {
		t.Fatalf("on resumed: %q", got)
	}
	b.Reset()
	n.close()
	if b.Len() != 0 {
		t.Fatalf("close after resuming wrote %q", b.String())
	}
}

// TestSSHMatchSessionType: Match command and sessiontype see rsftp ssh's
// command and kind of session, as ssh's, while the file commands stay a
// "sftp" subsystem.
func TestSSHMatchSessionType(t *testing.T) {
	cfg := `
Match sessiontype shell
  Port 1
Match sessiontype exec command "make *"
  Port 2
Match sessiontype none
  Port 3
Match command sftp sessiontype subsystem
  Port 4
`
	for _, c := range []struct {
		command, sessionType string
		port                 int
	}{{"", "shell", 1}, {"make test", "exec", 2}, {"", "none", 3}, {"", "", 4}} {
		hc, err := resolveIn(t, cfg, lookupRequest{hostArg: "h", command: c.command, sessionType: c.sessionType}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if hc.port != c.port {
			t.Errorf("%q %q: port %d, want %d", c.command, c.sessionType, hc.port, c.port)
		}
	}
}

// TestForwarderCancel: ~C's -KL and -KD find a forward by its port (and
// its bind address when given) and close its listeners; ~# lists what
// remains; an unknown one is an error.
func TestForwarderCancel(t *testing.T) {
	fw := newForwarder(t.Context(), nil, &logger{}, false)
	defer fw.close()
	lp, dp := e2eFreePort(t), e2eFreePort(t)
	l, _ := parseForward('L', strconv.Itoa(lp)+":db:5432")
	d, _ := parseForward('D', "127.0.0.1:"+strconv.Itoa(dp))
	if err := fw.start(l); err != nil {
		t.Fatal(err)
	}
	if err := fw.start(d); err != nil {
		t.Fatal(err)
	}
	if s := fw.list(time.Now()); !strings.Contains(s, "local forward localhost:"+strconv.Itoa(lp)+" -> db:5432") || !strings.Contains(s, "dynamic forward (SOCKS) 127.0.0.1:"+strconv.Itoa(dp)) {
		t.Fatalf("list: %q", s)
	}
	if err := fw.cancel('D', "[::1]:"+strconv.Itoa(dp)); err == nil {
		t.Fatal("-KD with another bind address cancelled 127.0.0.1's")
	}
	if err := fw.cancel('R', strconv.Itoa(lp)); err == nil {
		t.Fatal("-KR cancelled a local forward")
	}
	if err := fw.cancel('L', strconv.Itoa(lp)); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(lp)); err == nil {
		c.Close()
		t.Fatal("the cancelled forward still listens")
	}
	if err := fw.cancel('D', "127.0.0.1:"+strconv.Itoa(dp)); err != nil {
		t.Fatal(err)
	}
	if s := fw.list(time.Now()); s != "No forwards and no forwarded connections.\r\n" {
		t.Fatalf("list after: %q", s)
	}
}
