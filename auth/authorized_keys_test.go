package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp/kex"
)

// akNeedKeygen skips the test if ssh-keygen is missing, except in CI.
func akNeedKeygen(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("ssh-keygen")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ssh-keygen not found: %v", err)
		}
		t.Skip("ssh-keygen not installed")
	}
	return p
}

// akKeygen makes a key with ssh-keygen and returns its .pub line.
func akKeygen(t testing.TB, dir, name, typ string, extra ...string) string {
	t.Helper()
	akNeedKeygen(t)
	path := filepath.Join(dir, name)
	args := append([]string{"-q", "-t", typ, "-N", "", "-C", name + "@test", "-f", path}, extra...)
	if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(pub))
}

// akEd25519 makes an ed25519 public key in Go.
func akEd25519(t testing.TB) kex.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := kex.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func akECDSA(t testing.TB) kex.PublicKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := kex.NewPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func akSameKey(a, b kex.PublicKey) bool {
	return a != nil && b != nil && string(a.Marshal()) == string(b.Marshal())
}

func TestAuthorizedKeysOptions(t *testing.T) {
	k1, k2, k3 := akEd25519(t), akECDSA(t), akEd25519(t)
	data := fmt.Sprintf(`# comment line

   # indented comment
restrict,command="echo \"a, b\" c",from="10.0.0.0/8,!10.1.2.3",permitopen="h:1,h:2",PTY %s  my key comment  
%s
	no-pty,no-port-forwarding,environment="A=b c" %s trailing
`, kex.MarshalAuthorizedKey(k1), kex.MarshalAuthorizedKey(k2), kex.MarshalAuthorizedKey(k3))
	keys, err := ParseAuthorizedKeys([]byte(data))
	if err != nil {
		t.Fatalf("ParseAuthorizedKeys: %v", err)
	}
	if len(keys) != 3 {
		t.Fatalf("got %d keys, want 3", len(keys))
	}
	a := keys[0]
	if !akSameKey(a.Key, k1) || a.Line != 4 || a.Comment != "my key comment" {
		t.Errorf("key 0: line %d comment %q", a.Line, a.Comment)
	}
	want := []KeyOption{
		{Name: "restrict"},
		{Name: "command", Value: `echo "a, b" c`, HasValue: true},
		{Name: "from", Value: "10.0.0.0/8,!10.1.2.3", HasValue: true},
		{Name: "permitopen", Value: "h:1,h:2", HasValue: true},
		{Name: "pty"},
	}
	if fmt.Sprint(a.Options) != fmt.Sprint(want) {
		t.Errorf("options\n got %+v\nwant %+v", a.Options, want)
	}
	if v, ok := a.Option("Command"); !ok || v != `echo "a, b" c` {
		t.Errorf("Option(command) = %q, %v", v, ok)
	}
	if _, ok := a.Option("no-pty"); ok {
		t.Error("Option(no-pty) found on line without it")
	}
	p := a.Permissions()
	if p.PortForwarding || p.AgentForwarding || p.X11Forwarding || p.UserRC || !p.PTY {
		t.Errorf("restrict,pty permissions: %+v", p)
	}
	if !p.HasCommand || p.Command != `echo "a, b" c` || fmt.Sprint(p.PermitOpen) != "[h:1 h:2]" {
		t.Errorf("permissions: %+v", p)
	}

	b := keys[1]
	if !akSameKey(b.Key, k2) || len(b.Options) != 0 || b.Comment != "" || b.Line != 5 {
		t.Errorf("key 1: %+v", b)
	}
	if p := b.Permissions(); !p.PTY || !p.PortForwarding || p.HasCommand {
		t.Errorf("plain key permissions: %+v", p)
	}

	c := keys[2]
	if !akSameKey(c.Key, k3) || c.Line != 6 || c.Comment != "trailing" {
		t.Errorf("key 2: %+v", c)
	}
	if p := c.Permissions(); p.PTY || p.PortForwarding || !p.AgentForwarding || fmt.Sprint(p.Environment) != "[A=b c]" {
		t.Errorf("no-pty,no-port-forwarding permissions: %+v", p)
	}
}

func TestAuthorizedKeysFromAllows(t *testing.T) {
	k := akEd25519(t)
	line := func(from string) AuthorizedKey {
		t.Helper()
		keys, err := ParseAuthorizedKeys([]byte(`from="` + from + `" ` + kex.MarshalAuthorizedKey(k)))
		if err != nil || len(keys) != 1 {
			t.Fatalf("from=%q: %v (%d keys)", from, err, len(keys))
		}
		return keys[0]
	}
	tcp := func(s string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(s), Port: 40000} }
	tests := []struct {
		from string
		addr net.Addr
		ok   bool
	}{
		{"10.0.0.0/8", tcp("10.9.8.7"), true},
		{"10.0.0.0/8", tcp("11.0.0.1"), false},
		{"10.0.0.0/8,!10.1.2.3", tcp("10.1.2.3"), false},
		{"!10.1.2.3,10.0.0.0/8", tcp("10.1.2.3"), false},
		{"!10.1.2.3,10.0.0.0/8", tcp("10.1.2.4"), true},
		{"!10.1.0.0/16,*", tcp("10.1.200.1"), false},
		{"!10.1.0.0/16,*", tcp("192.0.2.1"), true},
		{"!10.1.0.0/16", tcp("192.0.2.1"), false}, // no positive match
		{"192.0.2.*", tcp("192.0.2.44"), true},
		{"192.0.2.?", tcp("192.0.2.44"), false},
		{"192.0.2.?", tcp("192.0.2.4"), true},
		{"127.0.0.1", tcp("::ffff:127.0.0.1"), true}, // IPv4-mapped
		{"2001:db8::/32", tcp("2001:db8::1"), true},
		{"2001:db8::/32", tcp("2001:db9::1"), false},
		{"2001:db8::/32", tcp("10.0.0.1"), false},
		{"*.example.com", tcp("10.0.0.1"), false}, // no DNS
		{"10.0.0.0/8", &net.UDPAddr{IP: net.ParseIP("10.0.0.1")}, true},
		{"10.0.0.0/8", akAddr("10.0.0.1:22"), true},
		{"10.0.0.0/8", akAddr("garbage"), false},
		{"10.0.0.0/8", nil, false},
		{"10.0.0.0/8", (*net.TCPAddr)(nil), false},
	}
	for _, tt := range tests {
		err := line(tt.from).Allows(tt.addr)
		if (err == nil) != tt.ok {
			t.Errorf("from=%q Allows(%v) = %v, want ok=%v", tt.from, tt.addr, err, tt.ok)
		}
	}
	// No from= at all: any address, even none.
	keys, _ := ParseAuthorizedKeys([]byte(kex.MarshalAuthorizedKey(k)))
	if err := keys[0].Allows(nil); err != nil {
		t.Errorf("plain key Allows(nil) = %v", err)
	}
}

type akAddr string

func (a akAddr) Network() string { return "test" }
func (a akAddr) String() string  { return string(a) }

func TestAuthorizedKeysExpiry(t *testing.T) {
	k := kex.MarshalAuthorizedKey(akEd25519(t))
	past := time.Now().Add(-48*time.Hour).UTC().Format("20060102") + "Z"
	future := time.Now().Add(48*time.Hour).UTC().Format("200601021504") + "Z"
	data := fmt.Sprintf("expiry-time=%q %s\nexpiry-time=%q %s\nexpiry-time=\"2020\" %s\n", past, k, future, k, k)
	keys, err := ParseAuthorizedKeys([]byte(data))
	if len(keys) != 2 || err == nil || !strings.Contains(err.Error(), "authorized_keys line 3: invalid expiry-time") {
		t.Fatalf("got %d keys, err %v", len(keys), err)
	}
	if err := keys[0].Allows(nil); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired key Allows = %v", err)
	}
	if err := keys[1].Allows(nil); err != nil {
		t.Errorf("unexpired key Allows = %v", err)
	}
}

func TestAuthorizedKeysMalformed(t *testing.T) {
	good := kex.MarshalAuthorizedKey(akEd25519(t))
	ec := kex.MarshalAuthorizedKey(akECDSA(t))
	_, ecBlob, _ := strings.Cut(ec, " ")
	_, edBlob, _ := strings.Cut(good, " ")
	lines := []struct {
		text string
		err  string // "" for a good or silently skipped line
	}{
		{good + " ok1", ""},
		{"ssh-ed25519 !!!notbase64", "malformed base64"},
		{"ssh-ed25519 " + ecBlob, "does not match"},
		{"ssh-ed25519", "missing ssh-ed25519 key data"},
		{"ssh-ed25519 " + edBlob[:20], "bad ssh-ed25519 key"},
		{"bogus-option " + good, "unknown key type or option"},
		{"bogus-option,no-pty " + good, "unknown option"},
		{"frob-key AAAA comment", "unknown key type or option \"frob-key\""},
		{"no-pty=\"x\" " + good, "takes no value"},
		{"command " + good, "needs a value"},
		{"command=unquoted " + good, "double quotes"},
		{`command="never closed ` + good, "missing closing quote"},
		{`command="a",command="b" ` + good, "multiple command"},
		{`from="10.0.0.1/8" ` + good, "host bits"},
		{`from="10.0.0.0/33" ` + good, "invalid CIDR"},
		{`from="" ` + good, "empty from"},
		{"no-pty", "options but no key"},
		{"no-pty,, " + good, "empty option name"},
		{"no-pty" + `"x" ` + good, "unexpected"},
		{"no-pty frob-key AAAA", "unknown key type"},
		{"ssh-dss AAAAB3NzaC1kc3MAAACBAP", ""},                                           // known, unsupported: skipped
		{"no-pty sk-ssh-ed25519@openssh.com AAAA", "bad sk-ssh-ed25519@openssh.com key"}, // supported since issue 22
		{"ssh-ed25519-cert-v01@openssh.com AAAA cert", ""},                               // idem
		{"environment=\"NOEQUALS\" " + good, "NAME=value"},
		{"tunnel=\"x\" " + good, "invalid tunnel"},
		{"\r", ""},
		{"#" + good, ""},
		{"  \t" + good + " ok2\r", ""},
		{strings.Repeat("A", keyFileMaxLine+1), "longer than"},
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.text + "\n")
	}
	keys, err := ParseAuthorizedKeys([]byte(b.String()))
	if len(keys) != 2 || keys[0].Comment != "ok1" || keys[1].Comment != "ok2" || keys[1].Line != 28 {
		t.Errorf("keys: %+v", keys)
	}
	if err == nil {
		t.Fatal("no error for malformed lines")
	}
	msg := err.Error()
	for i, l := range lines {
		prefix := fmt.Sprintf("authorized_keys line %d: ", i+1)
		if l.err == "" {
			if strings.Contains(msg, prefix) {
				t.Errorf("line %d (%.40q) reported but should not be", i+1, l.text)
			}
			continue
		}
		if !strings.Contains(msg, prefix+"") {
			t.Errorf("line %d (%.40q) not reported", i+1, l.text)
			continue
		}
		for _, e := range strings.Split(msg, "\n") {
			if strings.HasPrefix(e, prefix) && !strings.Contains(e, l.err) {
				t.Errorf("line %d: error %q does not mention %q", i+1, e, l.err)
			}
		}
	}
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 2 || pe.File != "authorized_keys" {
		t.Errorf("errors.As ParseError: %+v", pe)
	}
}

func TestAuthorizedKeysLimits(t *testing.T) {
	var b strings.Builder
	for i := 0; i < keyFileMaxErrors+50; i++ {
		b.WriteString("junk-option junk\n")
	}
	keys, err := ParseAuthorizedKeys([]byte(b.String()))
	if len(keys) != 0 || err == nil || !strings.Contains(err.Error(), "50 more malformed lines") {
		t.Errorf("keys %d, err tail: %.200s", len(keys), err)
	}
	if n := strings.Count(err.Error(), "authorized_keys line"); n != keyFileMaxErrors {
		t.Errorf("%d line errors reported, want %d", n, keyFileMaxErrors)
	}
}

func TestAuthorizedKeysCallback(t *testing.T) {
	k1, k2, k3 := akEd25519(t), akECDSA(t), akEd25519(t)
	data := fmt.Sprintf("%s one\ncert-authority %s ca\nno-pty %s three\n",
		kex.MarshalAuthorizedKey(k1), kex.MarshalAuthorizedKey(k2), kex.MarshalAuthorizedKey(k3))
	keys, err := ParseAuthorizedKeys([]byte(data))
	if err != nil || len(keys) != 3 {
		t.Fatal(err, len(keys))
	}
	cb := AuthorizedKeysCallback(keys)
	if ak, ok := cb("u", k1); !ok || ak.Comment != "one" {
		t.Errorf("k1: %v %v", ak, ok)
	}
	if ak, ok := cb("u", k3); !ok || ak.Comment != "three" || ak.Permissions().PTY {
		t.Errorf("k3: %v %v", ak, ok)
	}
	if _, ok := cb("u", k2); ok {
		t.Error("cert-authority key accepted as a user key")
	}
	if _, ok := cb("u", akEd25519(t)); ok {
		t.Error("unlisted key accepted")
	}
	if _, ok := cb("u", nil); ok {
		t.Error("nil key accepted")
	}
	// The callback must not see later changes to the caller's slice.
	keys[0].Options = append(keys[0].Options, KeyOption{Name: "no-pty"})
	if ak, _ := cb("u", k1); len(ak.Options) != 0 {
		t.Error("callback aliases the caller's slice")
	}
}

// TestAuthorizedKeysSSHKeygen reads keys made by ssh-keygen and checks the
// fingerprints against ssh-keygen -l.
func TestAuthorizedKeysSSHKeygen(t *testing.T) {
	akNeedKeygen(t)
	dir := t.TempDir()
	var b strings.Builder
	types := [][]string{{"ed25519"}, {"ecdsa", "-b", "256"}, {"ecdsa", "-b", "384"}, {"ecdsa", "-b", "521"}, {"rsa", "-b", "2048"}}
	for i, ty := range types {
		pub := akKeygen(t, dir, fmt.Sprintf("k%d", i), ty[0], ty[1:]...)
		if i%2 == 1 {
			pub = `command="/bin/true",no-pty ` + pub
		}
		b.WriteString(pub + "\n")
	}
	path := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadAuthorizedKeys(path)
	if err != nil || len(keys) != len(types) {
		t.Fatalf("LoadAuthorizedKeys: %v, %d keys", err, len(keys))
	}
	out, err := exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -l: %v\n%s", err, out)
	}
	fps := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(fps) != len(keys) {
		t.Fatalf("ssh-keygen -l printed %d lines", len(fps))
	}
	cb := AuthorizedKeysCallback(keys)
	for i, k := range keys {
		if f := strings.Fields(fps[i]); len(f) < 2 || f[1] != kex.FingerprintSHA256(k.Key) {
			t.Errorf("key %d: fingerprint %s, ssh-keygen says %q", i, kex.FingerprintSHA256(k.Key), fps[i])
		}
		if k.Comment != fmt.Sprintf("k%d@test", i) {
			t.Errorf("key %d comment %q", i, k.Comment)
		}
		if got, ok := cb("u", k.Key); !ok || got.Line != i+1 {
			t.Errorf("callback for key %d: %v %v", i, got, ok)
		}
	}
	if _, ok := keys[1].Option("command"); !ok {
		t.Error("options lost")
	}

	if _, err := LoadAuthorizedKeys(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("\n\nssh-ed25519 AAAA\n"), 0o600)
	if _, err := LoadAuthorizedKeys(bad); err == nil || !strings.Contains(err.Error(), bad+" line 3: ") {
		t.Errorf("bad file error %v does not name file and line", err)
	}
}

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		p, s string
		want bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "anything", true},
		{"?", "", false},
		{"?", "a", true},
		{"a*b", "ab", true},
		{"a*b", "axxb", true},
		{"a*b", "axxbc", false},
		{"a*b*c", "abbbcbc", true},
		{"*.example.com", "www.example.com", true},
		{"*.example.com", "example.com", false},
		{"host?", "host1", true},
		{"host?", "host12", false},
		{"Host", "host", false},
		{"[127.0.0.1]:*", "[127.0.0.1]:2222", true},
		{"**a", "bbba", true},
		{strings.Repeat("*a", 30) + "b", strings.Repeat("a", 100), false},
	}
	for _, tt := range tests {
		if got := MatchPattern(tt.p, tt.s); got != tt.want {
			t.Errorf("MatchPattern(%q, %q) = %v", tt.p, tt.s, got)
		}
	}
}

func TestMatchPatternList(t *testing.T) {
	tests := []struct {
		list, s string
		want    bool
	}{
		{"a,b,c", "b", true},
		{"a,b,c", "d", false},
		{"*.example.com,!bad.example.com", "good.example.com", true},
		{"*.example.com,!bad.example.com", "bad.example.com", false},
		{"!bad.example.com,*.example.com", "bad.example.com", false},
		{"!bad.example.com", "good.example.com", false},
		{"*.EXAMPLE.com", "Www.Example.COM", true},
		{"a, b", "b", true},
		{"", "", true},
		{"!*", "x", false},
	}
	for _, tt := range tests {
		if got := MatchPatternList(tt.list, tt.s); got != tt.want {
			t.Errorf("MatchPatternList(%q, %q) = %v", tt.list, tt.s, got)
		}
	}
}

func FuzzParseAuthorizedKeys(f *testing.F) {
	k := kex.MarshalAuthorizedKey(akEd25519(f))
	f.Add([]byte(k + " c\n"))
	f.Add([]byte(`restrict,command="a\"b,c",from="10.0.0.0/8,!10.1.1.1" ` + k + "\n"))
	f.Add([]byte(`expiry-time="20300101Z",permitopen="h:1" ` + k))
	f.Add([]byte("# c\n\nssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQ\nno-pty"))
	f.Add([]byte(`command="\`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, _ := ParseAuthorizedKeys(data)
		cb := AuthorizedKeysCallback(keys)
		addr := &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3)}
		for _, k := range keys {
			if k.Key == nil {
				t.Fatal("nil key returned")
			}
			_ = k.Allows(addr)
			_ = k.Permissions()
			if _, ok := cb("u", k.Key); !ok {
				if _, ca := k.Option("cert-authority"); !ca {
					t.Fatal("parsed key not found by callback")
				}
			}
		}
	})
}
