package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/rsftp/rsftp/kex"
)

// khKeygenFind runs ssh-keygen -F name -f file and returns the matching
// line numbers, each with its marker ("", "REVOKED" or "CA").
func khKeygenFind(t *testing.T, file, name string) map[int]string {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-F", name, "-f", file).CombinedOutput()
	// ssh-keygen -F exits 1 when nothing is found.
	if err != nil && len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("ssh-keygen -F %s: %v\n%s", name, err, out)
	}
	re := regexp.MustCompile(`(?m)^# Host .* found: line (\d+) ?(\S*)`)
	found := map[int]string{}
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		n, _ := strconv.Atoi(m[1])
		found[n] = m[2]
	}
	return found
}

// khMatching lists every line of kh matching host:port, as khKeygenFind.
func khMatching(kh *KnownHosts, host string, port int) map[int]string {
	name := KnownHostName(host, port)
	found := map[int]string{}
	for _, e := range kh.entries {
		if e.matches(name) {
			found[e.Line] = map[string]string{"": "", MarkerRevoked: "REVOKED", MarkerCertAuthority: "CA"}[e.Marker]
		}
	}
	return found
}

func khLines(ks []KnownKey) []int {
	var n []int
	for _, k := range ks {
		n = append(n, k.Line)
	}
	sort.Ints(n)
	return n
}

func khWrite(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestKnownHostName(t *testing.T) {
	tests := []struct {
		host string
		port int
		want string
	}{
		{"Example.COM", 22, "example.com"},
		{"example.com", 0, "example.com"},
		{"127.0.0.1", 2222, "[127.0.0.1]:2222"},
		{"::1", 22, "::1"},
		{"::1", 2200, "[::1]:2200"},
		{"[::1]", 2200, "[::1]:2200"},
	}
	for _, tt := range tests {
		if got := KnownHostName(tt.host, tt.port); got != tt.want {
			t.Errorf("KnownHostName(%q, %d) = %q, want %q", tt.host, tt.port, got, tt.want)
		}
	}
}

// TestKnownHostsLookupPatterns checks pattern matching, and cross-checks
// every query against ssh-keygen -F when it is available.
func TestKnownHostsLookupPatterns(t *testing.T) {
	ka, kb, kc := akEd25519(t), akECDSA(t), akEd25519(t)
	a, b, c := kex.MarshalAuthorizedKey(ka), kex.MarshalAuthorizedKey(kb), kex.MarshalAuthorizedKey(kc)
	data := strings.Join([]string{
		"# known hosts",                           // 1
		"*.example.com,!bad.example.com " + a,     // 2
		"[127.0.0.1]:2222 " + b + " comment here", // 3
		"127.0.0.1,localhost " + a,                // 4
		"host? " + c,                              // 5
		"[*.x.org]:* " + a,                        // 6
		"@revoked * " + c,                         // 7
		"@cert-authority *.ca.org " + b,           // 8
		"MixedCase.Org " + b,                      // 9
		"[::1]:2200,::1 " + c,                     // 10
		"!*.example.com,*.com " + c,               // 11
	}, "\n") + "\n"
	dir := t.TempDir()
	path := filepath.Join(dir, "known_hosts")
	khWrite(t, path, data)
	kh, err := LoadKnownHosts(path, filepath.Join(dir, "missing"))
	if err != nil {
		t.Fatalf("LoadKnownHosts: %v", err)
	}
	tests := []struct {
		host string
		port int
		want []int // Lookup lines (no markers)
	}{
		{"www.example.com", 22, []int{2}},
		{"bad.example.com", 22, nil},
		{"www.example.com", 2222, nil},
		{"127.0.0.1", 2222, []int{3}},
		{"127.0.0.1", 22, []int{4}},
		{"LOCALHOST", 22, []int{4}},
		{"host1", 22, []int{5}},
		{"host12", 22, nil},
		{"a.x.org", 99, []int{6}},
		{"a.x.org", 22, nil},
		{"a.ca.org", 22, nil},
		{"mixedcase.org", 22, []int{9}},
		{"::1", 2200, []int{10}},
		{"::1", 22, []int{10}},
		{"foo.com", 22, []int{11}},
		{"nowhere", 22, nil},
	}
	haveKeygen := false
	if _, err := exec.LookPath("ssh-keygen"); err == nil {
		haveKeygen = true
	} else if os.Getenv("CI") == "true" {
		t.Fatal("ssh-keygen not found")
	}
	for _, tt := range tests {
		got := khLines(kh.Lookup(tt.host, tt.port))
		if fmt.Sprint(got) != fmt.Sprint(tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
			t.Errorf("Lookup(%q, %d) = lines %v, want %v", tt.host, tt.port, got, tt.want)
		}
		if haveKeygen {
			ours := khMatching(kh, tt.host, tt.port)
			theirs := khKeygenFind(t, path, KnownHostName(tt.host, tt.port))
			if fmt.Sprint(ours) != fmt.Sprint(theirs) {
				t.Errorf("%s:%d: we match %v, ssh-keygen -F matches %v", tt.host, tt.port, ours, theirs)
			}
		}
	}
	ks := kh.Lookup("127.0.0.1", 2222)
	if len(ks) != 1 || ks[0].File != path || ks[0].Comment != "comment here" || ks[0].Hosts != "[127.0.0.1]:2222" || !akSameKey(ks[0].Key, kb) {
		t.Errorf("Lookup entry: %+v", ks)
	}
}

func TestKnownHostsHashed(t *testing.T) {
	akNeedKeygen(t)
	ka, kb := akEd25519(t), akECDSA(t)
	a, b := kex.MarshalAuthorizedKey(ka), kex.MarshalAuthorizedKey(kb)
	dir := t.TempDir()
	path := filepath.Join(dir, "known_hosts")
	khWrite(t, path, fmt.Sprintf("server.example.com,10.0.0.5 %s\n[127.0.0.1]:2222 %s\nwild* %s\n", a, b, a))
	if out, err := exec.Command("ssh-keygen", "-H", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -H: %v\n%s", err, out)
	}
	data, _ := os.ReadFile(path)
	if n := strings.Count(string(data), "|1|"); n != 3 {
		t.Fatalf("ssh-keygen -H wrote %d hashed names:\n%s", n, data)
	}
	kh, err := LoadKnownHosts(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		host string
		port int
		key  kex.PublicKey
	}{{"server.example.com", 22, ka}, {"SERVER.example.com", 22, ka}, {"10.0.0.5", 22, ka}, {"127.0.0.1", 2222, kb}} {
		ks := kh.Lookup(q.host, q.port)
		if len(ks) != 1 || !akSameKey(ks[0].Key, q.key) || !strings.HasPrefix(ks[0].Hosts, "|1|") {
			t.Errorf("Lookup(%s, %d) = %+v", q.host, q.port, ks)
		}
		if err := kh.Check(q.host, q.port, q.key); err != nil {
			t.Errorf("Check(%s, %d): %v", q.host, q.port, err)
		}
	}
	for _, q := range []struct {
		host string
		port int
	}{{"server.example.com", 2222}, {"127.0.0.1", 22}, {"10.0.0.6", 22}, {"wil", 22}, {"example.com", 22}} {
		if ks := kh.Lookup(q.host, q.port); len(ks) != 0 {
			t.Errorf("Lookup(%s, %d) = %+v, want none", q.host, q.port, ks)
		}
	}
	// The wildcard line stays unhashed (ssh-keygen refuses to hash it).
	if ks := kh.Lookup("wildcard", 2); len(ks) != 0 {
		t.Errorf("wildcard with port matched: %+v", ks)
	}
	if ks := kh.Lookup("wildx", 22); len(ks) != 1 {
		t.Errorf("unhashed wildcard line: %+v", ks)
	}

	// HashHostname reproduces ssh-keygen's hash given the same salt.
	first := strings.Fields(strings.Split(string(data), "\n")[0])[0]
	salt, _, err := parseHashedHost(first)
	if err != nil {
		t.Fatal(err)
	}
	if got := HashHostname("server.example.com", salt); got != first {
		t.Errorf("HashHostname = %s, ssh-keygen wrote %s", got, first)
	}
}

func TestHashHostname(t *testing.T) {
	h1, h2 := HashHostname("host", nil), HashHostname("host", nil)
	if h1 == h2 {
		t.Error("two random salts gave the same hash")
	}
	salt, hash, err := parseHashedHost(h1)
	if err != nil || len(salt) != 20 || len(hash) != 20 {
		t.Fatalf("parseHashedHost(%s): %v", h1, err)
	}
	e := knownEntry{salt: salt, hash: hash}
	if !e.matches("host") || e.matches("host2") {
		t.Error("hashed entry matching")
	}
}

func TestKnownHostsCheck(t *testing.T) {
	ka, kb, kc, kd := akEd25519(t), akEd25519(t), akECDSA(t), akEd25519(t)
	dir := t.TempDir()
	user := filepath.Join(dir, "known_hosts")
	global := filepath.Join(dir, "ssh_known_hosts")
	khWrite(t, user, strings.Join([]string{
		"# user file",
		"[127.0.0.1]:2222 " + kex.MarshalAuthorizedKey(ka),
		"other.example " + kex.MarshalAuthorizedKey(kc),
		"@revoked *.example " + kex.MarshalAuthorizedKey(kd),
		"both.example " + kex.MarshalAuthorizedKey(kb),
	}, "\n")) // no trailing newline
	khWrite(t, global, "both.example "+kex.MarshalAuthorizedKey(kd)+"\n"+"rotated.example "+kex.MarshalAuthorizedKey(ka)+"\n")
	kh, err := LoadKnownHosts(user, global)
	if err != nil {
		t.Fatal(err)
	}

	if err := kh.Check("127.0.0.1", 2222, ka); err != nil {
		t.Errorf("known key: %v", err)
	}

	// Same type, different key: changed.
	err = kh.Check("127.0.0.1", 2222, kb)
	var mm *KeyMismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("changed key: %v", err)
	}
	if mm.Host != "[127.0.0.1]:2222" || mm.Port != 2222 || len(mm.Want) != 1 || mm.Want[0].Line != 2 || mm.Want[0].File != user || !akSameKey(mm.Got, kb) {
		t.Errorf("mismatch error fields: %+v", mm)
	}
	msg := err.Error()
	for _, s := range []string{"Offending ED25519 key in " + user + ":2", kex.FingerprintSHA256(kb), "[127.0.0.1]:2222"} {
		if !strings.Contains(msg, s) {
			t.Errorf("mismatch message %q lacks %q", msg, s)
		}
	}
	if w := mm.Warning(); !strings.Contains(w, "REMOTE HOST IDENTIFICATION HAS CHANGED") || !strings.Contains(w, fmt.Sprintf("ssh-keygen -f %q -R %q", user, "[127.0.0.1]:2222")) {
		t.Errorf("warning:\n%s", w)
	}

	// Only a key of another type known: unknown, with the other listed.
	err = kh.Check("other.example", 22, ka)
	var uh *UnknownHostError
	if !errors.As(err, &uh) || len(uh.Other) != 1 || uh.Other[0].Line != 3 {
		t.Fatalf("other-type key: %v", err)
	}
	if !strings.Contains(err.Error(), "no ED25519 key for other.example in known_hosts (fingerprint "+kex.FingerprintSHA256(ka)+")") {
		t.Errorf("unknown message: %v", err)
	}

	// Not known at all.
	err = kh.Check("127.0.0.1", 22, ka)
	if !errors.As(err, &uh) || uh.Host != "127.0.0.1" || len(uh.Other) != 0 || !akSameKey(uh.Key, ka) {
		t.Errorf("unknown host: %v", err)
	}

	// Revoked, even though the global file lists it for the host.
	err = kh.Check("both.example", 22, kd)
	var rk *RevokedKeyError
	if !errors.As(err, &rk) || rk.Entry.Line != 4 || rk.Entry.File != user || rk.Entry.Marker != MarkerRevoked {
		t.Fatalf("revoked key: %v", err)
	}
	if !strings.Contains(err.Error(), "revoked") || !strings.Contains(err.Error(), user+":4") {
		t.Errorf("revoked message: %v", err)
	}
	// The revocation only covers hosts matching its pattern.
	if err := kh.Check("elsewhere.org", 22, kd); !errors.As(err, &uh) {
		t.Errorf("revocation applied outside its pattern: %v", err)
	}

	// A key in either file is good, even if the other file has another
	// key of the same type for the host.
	if err := kh.Check("both.example", 22, kb); err != nil {
		t.Errorf("key from user file: %v", err)
	}
	if err := kh.Check("rotated.example", 22, ka); err != nil {
		t.Errorf("key from global file: %v", err)
	}
	if err := kh.Check("rotated.example", 22, kb); !errors.As(err, &mm) || mm.Want[0].File != global || mm.Want[0].Line != 2 {
		t.Errorf("mismatch in global file: %v", err)
	}
	if err := kh.Check("x", 22, nil); err == nil {
		t.Error("nil key accepted")
	}
}

func TestKnownHostsMalformed(t *testing.T) {
	good := kex.MarshalAuthorizedKey(akEd25519(t))
	ec := kex.MarshalAuthorizedKey(akECDSA(t))
	_, ecBlob, _ := strings.Cut(ec, " ")
	lines := []struct {
		text string
		err  string
	}{
		{"good1 " + good, ""},
		{"@frob host " + good, "unknown marker"},
		{"hostonly", "missing host names or key"},
		{"@revoked", "missing host names or key"},
		{"host frob-type AAAA", "unknown key type"},
		{"host ssh-ed25519 ***", "malformed base64"},
		{"host ssh-ed25519 " + ecBlob, "key type field ssh-ed25519 does not match"},
		{"|1|abc|def " + good, "malformed hashed host name"},
		{"|2|abc|def " + good, "unknown hashed host name format"},
		{"|1|" + strings.Repeat("A", 28) + " " + good, "malformed hashed host name"},
		{"host ssh-dss AAAAB3NzaC1kc3M", ""},
		{"@cert-authority *.example ssh-ed25519-cert-v01@openssh.com AAAA", ""},
		{"", ""},
		{"  # comment", ""},
		{"good2 " + good + " a comment\r", ""},
		{"host ssh-ed25519", "missing ssh-ed25519 key data"},
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.text + "\n")
	}
	kh, err := ParseKnownHosts([]byte(b.String()), "")
	if kh == nil || len(kh.entries) != 2 || kh.entries[1].Line != 15 || kh.entries[1].Comment != "a comment" {
		t.Fatalf("entries: %+v", kh)
	}
	if err == nil {
		t.Fatal("no error for malformed lines")
	}
	msg := err.Error()
	for i, l := range lines {
		prefix := fmt.Sprintf("known_hosts line %d: ", i+1)
		if l.err == "" {
			if strings.Contains(msg, prefix) {
				t.Errorf("line %d (%.40q) reported but should not be", i+1, l.text)
			}
			continue
		}
		if !strings.Contains(msg, prefix+l.err) {
			t.Errorf("line %d (%.40q): want %q in\n%s", i+1, l.text, prefix+l.err, msg)
		}
	}

	// LoadKnownHosts names the file and still returns good lines.
	dir := t.TempDir()
	path := filepath.Join(dir, "kh")
	khWrite(t, path, b.String())
	kh, err = LoadKnownHosts(path)
	if len(kh.Lookup("good1", 22)) != 1 || err == nil || !strings.Contains(err.Error(), path+" line 2: unknown marker") {
		t.Errorf("LoadKnownHosts: %v", err)
	}
	// A directory cannot be read: an error, but not fatal.
	kh, err = LoadKnownHosts(dir, path)
	if err == nil || len(kh.Lookup("good2", 22)) != 1 {
		t.Errorf("LoadKnownHosts(dir): %v", err)
	}
}

func TestParseStrictMode(t *testing.T) {
	for s, want := range map[string]StrictMode{
		"yes": StrictYes, "YES": StrictYes, "true": StrictYes, "ask": StrictYes,
		"accept-new": StrictAcceptNew, "Accept-New": StrictAcceptNew,
		"no": StrictNo, "off": StrictNo, "false": StrictNo,
	} {
		got, err := ParseStrictMode(s)
		if err != nil || got != want {
			t.Errorf("ParseStrictMode(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "maybe", "accept"} {
		if _, err := ParseStrictMode(s); err == nil {
			t.Errorf("ParseStrictMode(%q) accepted", s)
		}
	}
	if StrictAcceptNew.String() != "accept-new" {
		t.Error(StrictAcceptNew.String())
	}
}

func TestKnownHostsCallbackAcceptNew(t *testing.T) {
	ka, kb, kc := akEd25519(t), akEd25519(t), akECDSA(t)
	for _, hash := range []bool{false, true} {
		t.Run(fmt.Sprintf("hash=%v", hash), func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "sub", ".ssh", "known_hosts")
			global := filepath.Join(dir, "global")
			cb := KnownHostsCallback([]string{file, global}, StrictAcceptNew, hash)

			if err := cb("127.0.0.1", 2222, ka); err != nil {
				t.Fatalf("first connection: %v", err)
			}
			st, err := os.Stat(file)
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("known_hosts: %v %v", st, err)
			}
			if st, err := os.Stat(filepath.Dir(file)); err != nil || st.Mode().Perm() != 0o700 {
				t.Errorf("known_hosts dir: %v %v", st, err)
			}
			data, _ := os.ReadFile(file)
			if hash != strings.HasPrefix(string(data), "|1|") || strings.Count(string(data), "\n") != 1 || !strings.HasSuffix(string(data), kex.MarshalAuthorizedKey(ka)+"\n") {
				t.Errorf("written line: %q", data)
			}
			if !hash && !strings.HasPrefix(string(data), "[127.0.0.1]:2222 ") {
				t.Errorf("written line: %q", data)
			}
			if _, err := exec.LookPath("ssh-keygen"); err == nil {
				found := khKeygenFind(t, file, "[127.0.0.1]:2222")
				if len(found) != 1 || found[1] != "" {
					t.Errorf("ssh-keygen -F finds %v in %q", found, data)
				}
				if found := khKeygenFind(t, file, "127.0.0.1"); len(found) != 0 {
					t.Errorf("ssh-keygen -F 127.0.0.1 finds %v", found)
				}
			} else if os.Getenv("CI") == "true" {
				t.Fatal("ssh-keygen not found")
			}

			// Known now; a changed key is refused; no line added.
			if err := cb("127.0.0.1", 2222, ka); err != nil {
				t.Errorf("second connection: %v", err)
			}
			err = cb("127.0.0.1", 2222, kb)
			var mm *KeyMismatchError
			if !errors.As(err, &mm) || !strings.HasPrefix(err.Error(), "Host key verification failed: ") || !strings.Contains(err.Error(), file+":1") {
				t.Errorf("changed key: %v", err)
			}
			// Another key type for a known host is added (as ssh does).
			if err := cb("127.0.0.1", 2222, kc); err != nil {
				t.Errorf("other key type: %v", err)
			}
			// A file lacking its final newline gets one before the new line.
			f, _ := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString("# no newline")
			f.Close()
			if err := cb("example.com", 22, kb); err != nil {
				t.Errorf("third host: %v", err)
			}
			kh, err := LoadKnownHosts(file)
			if err != nil {
				t.Fatalf("reload: %v", err)
			}
			if len(kh.entries) != 3 || kh.entries[2].Line != 4 || len(kh.Lookup("example.com", 22)) != 1 {
				t.Errorf("entries after additions: %+v", kh.entries)
			}
			// Keys in the other (global) file are honoured, not re-added.
			khWrite(t, global, "global.example "+kex.MarshalAuthorizedKey(ka)+"\n")
			if err := cb("global.example", 22, ka); err != nil {
				t.Errorf("global key: %v", err)
			}
			if kh, _ := LoadKnownHosts(file); len(kh.entries) != 3 {
				t.Error("key from global file added to user file")
			}
		})
	}
}

func TestKnownHostsCallbackStrict(t *testing.T) {
	akNeedKeygen(t)
	ka, kb, kr := akEd25519(t), akEd25519(t), akEd25519(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "known_hosts")

	strict := KnownHostsCallback([]string{file}, StrictYes, false)
	err := strict("127.0.0.1", 2222, ka)
	want := "Host key verification failed: no ED25519 key for [127.0.0.1]:2222 in known_hosts (fingerprint " + kex.FingerprintSHA256(ka) + ")"
	var uh *UnknownHostError
	if err == nil || err.Error() != want || !errors.As(err, &uh) {
		t.Errorf("strict unknown: %v\nwant %s", err, want)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Error("StrictYes wrote known_hosts")
	}

	// Files are re-read on every call.
	if err := AddKnownHost(file, "127.0.0.1", 2222, ka, true); err != nil {
		t.Fatal(err)
	}
	if err := strict("127.0.0.1", 2222, ka); err != nil {
		t.Errorf("strict known: %v", err)
	}

	no := KnownHostsCallback([]string{file}, StrictNo, false)
	for name, cb := range map[string]func(string, int, kex.PublicKey) error{"yes": strict, "no": no} {
		var mm *KeyMismatchError
		if err := cb("127.0.0.1", 2222, kb); !errors.As(err, &mm) {
			t.Errorf("mode %s, changed key: %v", name, err)
		}
	}
	if err := no("new.example", 22, kb); err != nil {
		t.Errorf("StrictNo unknown: %v", err)
	}

	// Revoked keys are refused in every mode, and not added.
	f, _ := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "@revoked * %s\n", kex.MarshalAuthorizedKey(kr))
	f.Close()
	for _, mode := range []StrictMode{StrictYes, StrictAcceptNew, StrictNo} {
		var rk *RevokedKeyError
		if err := KnownHostsCallback([]string{file}, mode, false)("fresh.example", 22, kr); !errors.As(err, &rk) {
			t.Errorf("mode %v, revoked key: %v", mode, err)
		}
	}
	if kh, _ := LoadKnownHosts(file); len(kh.Lookup("fresh.example", 22)) != 0 {
		t.Error("revoked key was recorded")
	}

	// ssh-keygen -R removes the host; then it is unknown again.
	if out, err := exec.Command("ssh-keygen", "-R", "[127.0.0.1]:2222", "-f", file).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -R: %v\n%s", err, out)
	}
	if err := strict("127.0.0.1", 2222, ka); !errors.As(err, &uh) {
		t.Errorf("after ssh-keygen -R: %v", err)
	}
	if err := strict("new.example", 22, kb); err != nil {
		t.Errorf("other host after ssh-keygen -R: %v", err)
	}

	// Nowhere to record a new key.
	if err := KnownHostsCallback(nil, StrictAcceptNew, false)("h", 22, ka); err == nil {
		t.Error("accept-new with no files accepted")
	}
	// Unwritable location: refused.
	blocker := filepath.Join(dir, "blocker")
	khWrite(t, blocker, "")
	if err := KnownHostsCallback([]string{filepath.Join(blocker, "known_hosts")}, StrictAcceptNew, false)("h", 22, ka); err == nil {
		t.Error("accept-new that could not record the key accepted")
	}
}

func TestAddKnownHostRejectsBadNames(t *testing.T) {
	file := filepath.Join(t.TempDir(), "kh")
	k := akEd25519(t)
	for _, h := range []string{"", "a b", "a,b", "a\nb", "@revoked", "|1|x", "!x", "#x"} {
		if err := AddKnownHost(file, h, 22, k, false); err == nil {
			t.Errorf("AddKnownHost(%q) accepted", h)
		}
	}
	if err := AddKnownHost(file, "ok", 22, nil, false); err == nil {
		t.Error("nil key accepted")
	}
}

func TestDefaultKnownHostsFiles(t *testing.T) {
	t.Setenv("HOME", "/home/someone")
	got := DefaultKnownHostsFiles()
	want := []string{"/home/someone/.ssh/known_hosts", "/home/someone/.ssh/known_hosts2", "/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("DefaultKnownHostsFiles() = %v", got)
	}
}

func FuzzParseKnownHosts(f *testing.F) {
	k := kex.MarshalAuthorizedKey(akEd25519(f))
	// A host certificate whose CA the seeds' @cert-authority lines name:
	// Check runs the certificate's paths (CA lines, @revoked of its key
	// or CA, the fall back to its plain key) on whatever parses.
	ca := mustSigner(f, userKeys(f)["ed25519"])
	cert := hostCertFor(f, akECDSA(f), ca, []string{"*.x", "127.0.0.1"}, nil)
	caLine := kex.MarshalAuthorizedKey(ca.PublicKey())
	f.Add([]byte("host,!bad,*.x " + k + " c\n"))
	f.Add([]byte("@revoked * " + k + "\n@cert-authority *.a " + k))
	f.Add([]byte(HashHostname("[127.0.0.1]:2222", nil) + " " + k + "\n"))
	f.Add([]byte("|1|AAAA|BBBB " + k + "\n#\n\n[h]:22 ssh-rsa AAAAB3NzaC1yc2E\r\n"))
	f.Add([]byte("@cert-authority *.x,!b.x " + caLine + "\n@revoked [127.0.0.1]:* " + caLine + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kh, _ := ParseKnownHosts(data, "fuzz")
		for _, host := range []string{"a.x", "127.0.0.1"} {
			for _, port := range []int{22, 2222} {
				if err := kh.Check(host, port, cert); err != nil {
					_ = err.Error()
				}
				algos := WithCertAlgorithms([]string{kex.KeyAlgoED25519, kex.KeyAlgoECDSA256})
				if got := kh.HostKeyAlgorithms(host, port, algos); len(got) != len(algos) {
					t.Fatalf("HostKeyAlgorithms changed the list's length: %v", got)
				}
			}
		}
		for _, e := range kh.entries {
			if e.Key == nil {
				t.Fatal("nil key")
			}
			for _, host := range []string{"host", "127.0.0.1", "a.x"} {
				_ = kh.Lookup(host, 22)
				_ = kh.Lookup(host, 2222)
				if err := kh.Check(host, 2222, e.Key); err != nil {
					_ = err.Error()
				}
			}
		}
	})
}

// HostKeyAlgorithms orders a client's host key algorithms as OpenSSH's
// order_hostkeyalgs does: verbatim if the first one's key type is known
// for the host and port, else the known types first, each group in its
// order; RSA's SHA-2 algorithms are of ssh-rsa keys, ECDSA curves are
// types of their own, marked lines do not count.
func TestKnownHostsHostKeyAlgorithms(t *testing.T) {
	ed, ec, rs := akEd25519(t), akECDSA(t), pubOf(t, userKeys(t)["rsa2048"])
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec384, err := kex.NewPublicKey(&p384.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	line := func(host string, k kex.PublicKey) string { return host + " " + kex.MarshalAuthorizedKey(k) + "\n" }
	data := line("[127.0.0.1]:2222", ec) +
		"@revoked [127.0.0.1]:2222 " + kex.MarshalAuthorizedKey(rs) + "\n" +
		"@cert-authority [127.0.0.1]:2222 " + kex.MarshalAuthorizedKey(ed) + "\n" +
		line("127.0.0.1", ed) +
		line("multi.example", rs) + line("multi.example", ed) +
		line("p384.example", ec384) +
		line("rsa.example", rs) +
		line(HashHostname(KnownHostName("hashed.example", 2200), nil), ec)
	kh, err := ParseKnownHosts([]byte(data), "")
	if err != nil {
		t.Fatal(err)
	}
	const (
		ed25519 = kex.KeyAlgoED25519
		p256    = kex.KeyAlgoECDSA256
		p384n   = kex.KeyAlgoECDSA384
		p521    = kex.KeyAlgoECDSA521
		rsa512  = kex.SigAlgoRSASHA512
		rsa256  = kex.SigAlgoRSASHA256
	)
	def := []string{ed25519, p256, p384n, p521, rsa512, rsa256}
	for _, c := range []struct {
		host  string
		port  int
		algos []string
		want  []string
	}{
		// Only the ECDSA key is known ([host]:port form): it goes first.
		{"127.0.0.1", 2222, def, []string{p256, ed25519, p384n, p521, rsa512, rsa256}},
		{"hashed.example", 2200, def, []string{p256, ed25519, p384n, p521, rsa512, rsa256}},
		// Port 22 has its own line, of the first type: as is.
		{"127.0.0.1", 22, def, def},
		{"multi.example", 22, def, def},
		// The first is unknown: both known types go first.
		{"multi.example", 22, []string{p256, ed25519, p384n, rsa256}, []string{ed25519, rsa256, p256, p384n}},
		{"p384.example", 22, def, []string{p384n, ed25519, p256, p521, rsa512, rsa256}},
		{"rsa.example", 22, def, []string{rsa512, rsa256, ed25519, p256, p384n, p521}},
		{"rsa.example", 22, []string{ed25519, kex.KeyAlgoRSA}, []string{kex.KeyAlgoRSA, ed25519}},
		// Nothing known (another port, another host): as is.
		{"127.0.0.1", 2223, def, def},
		{"unknown.example", 22, def, def},
		{"unknown.example", 22, nil, nil},
	} {
		in := slices.Clone(c.algos)
		got := kh.HostKeyAlgorithms(c.host, c.port, in)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s port %d, %v: got %v, want %v", c.host, c.port, c.algos, got, c.want)
		}
		if !slices.Equal(in, c.algos) {
			t.Errorf("%s port %d: the input was changed to %v", c.host, c.port, in)
		}
	}

	// Over files, user and global, missing ones skipped.
	dir := t.TempDir()
	user, global := filepath.Join(dir, "known_hosts"), filepath.Join(dir, "global")
	khWrite(t, global, line("[files.example]:2022", rs))
	got := KnownHostsAlgorithms([]string{user, global}, "files.example", 2022, def)
	if want := []string{rsa512, rsa256, ed25519, p256, p384n, p521}; !slices.Equal(got, want) {
		t.Errorf("KnownHostsAlgorithms: got %v, want %v", got, want)
	}
}
