package auth

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp/kex"
)

// TestServeIdentity: Serve fills Permissions.Identity with what
// authenticated, never a name the client chose alone: a public key's
// fingerprint as ssh-keygen -l prints it, "user:" and the name for a
// password login. An Identity the callback set is kept, and a callback
// that hands one Permissions to every login does not see it changed.
func TestServeIdentity(t *testing.T) {
	k := userKeys(t)["ed25519"]
	fp := kex.FingerprintSHA256(pubOf(t, k))
	shared := &Permissions{KeyComment: "shared"}
	for _, tc := range []struct {
		name   string
		cfg    *ServerConfig
		method Method
		want   string
	}{
		{"publickey", &ServerConfig{PublicKeyCallback: func(string, kex.PublicKey) (*Permissions, error) { return shared, nil }},
			PublicKeys(k), fp},
		{"publickey, nil permissions", &ServerConfig{PublicKeyCallback: func(string, kex.PublicKey) (*Permissions, error) { return nil, nil }},
			PublicKeys(k), fp},
		{"publickey, callback's identity", &ServerConfig{PublicKeyCallback: func(string, kex.PublicKey) (*Permissions, error) {
			return &Permissions{Identity: "account:42"}, nil
		}}, PublicKeys(k), "account:42"},
		{"password", &ServerConfig{PasswordCallback: func(string, []byte) (*Permissions, error) { return shared, nil }},
			Password("pw"), "user:mallory7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc, sc := connPair(t)
			res := startServe(t, sc, tc.cfg)
			if err := authenticate(cc, &ClientConfig{User: "mallory7", Methods: []Method{tc.method}}); err != nil {
				t.Fatal(err)
			}
			r := waitServe(t, res)
			if r.err != nil || r.perms == nil || r.perms.Identity != tc.want {
				t.Fatalf("Serve = %+v; want Identity %q", r, tc.want)
			}
			if shared.Identity != "" {
				t.Fatalf("Serve wrote Identity %q into the callback's shared Permissions", shared.Identity)
			}
		})
	}
}

// TestServeConnMetadata: PublicKeyConnCallback sees the user name and
// the connection's addresses (what from= needs); setting both public
// key callbacks is an error, not a silent choice.
func TestServeConnMetadata(t *testing.T) {
	k := userKeys(t)["ed25519"]
	cc, sc := connPair(t)
	var got ConnMetadata
	res := startServe(t, sc, &ServerConfig{PublicKeyConnCallback: func(c ConnMetadata, key kex.PublicKey) (*Permissions, error) {
		got = c
		return nil, nil
	}})
	if err := authenticate(cc, &ClientConfig{User: "alice", Methods: []Method{PublicKeys(k)}}); err != nil {
		t.Fatal(err)
	}
	if r := waitServe(t, res); r.err != nil {
		t.Fatal(r.err)
	}
	if got.User != "alice" || got.RemoteAddr == nil || got.RemoteAddr.String() != sc.RemoteAddr().String() ||
		got.LocalAddr == nil || got.LocalAddr.String() != sc.LocalAddr().String() {
		t.Fatalf("callback saw %+v; want user alice, remote %v, local %v", got, sc.RemoteAddr(), sc.LocalAddr())
	}

	_, sc2 := connPair(t)
	cb := func(string, kex.PublicKey) (*Permissions, error) { return nil, nil }
	ccb := func(ConnMetadata, kex.PublicKey) (*Permissions, error) { return nil, nil }
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := Serve(ctx, sc2, &ServerConfig{PublicKeyCallback: cb, PublicKeyConnCallback: ccb}); err == nil || !strings.Contains(err.Error(), "both") {
		t.Fatalf("both callbacks set: %v", err)
	}
}

// akFile writes an authorized_keys file and returns its path.
func akFile(t *testing.T, dir, content string) string {
	t.Helper()
	p := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func tcp(s string) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		panic(err)
	}
	return a
}

// TestAuthorizedKeysFileOptions: issue 14 item 7. The options of the line
// that lists a key are honoured, not only parsed: a key past its
// expiry-time, or used from an address its from= does not admit, is
// refused; Check sees the line and may refuse it; the other options reach
// Permissions (KeyOptions, ForceCommand). A key listed twice is admitted
// by the first line that admits it.
func TestAuthorizedKeysFileOptions(t *testing.T) {
	key := pubOf(t, userKeys(t)["ed25519"])
	line := kex.MarshalAuthorizedKey(key)
	dir := t.TempDir()
	from := ConnMetadata{User: "u", RemoteAddr: tcp("192.0.2.7:50000")}
	for _, tc := range []struct {
		name, file string
		refused    string // "" if admitted
	}{
		{"plain", line + " laptop\n", ""},
		{"expired", `expiry-time="20000101" ` + line + "\n", "expired"},
		{"not yet expired", `expiry-time="29991231" ` + line + "\n", ""},
		{"from matches", `from="192.0.2.0/24,!192.0.2.8" ` + line + "\n", ""},
		{"from does not match", `from="198.51.100.*" ` + line + "\n", "not allowed from 192.0.2.7"},
		{"from negated", `from="192.0.2.*,!192.0.2.7" ` + line + "\n", "not allowed from 192.0.2.7"},
		{"second line admits", `from="10.0.0.1" ` + line + "\n" + `restrict,from="192.0.2.7" ` + line + " second\n", ""},
		{"cert-authority only", `cert-authority ` + line + "\n", "not in"},
		{"absent", "# nothing\n", "not in"},
		{"forced command refused by Check", `command="/bin/false" ` + line + "\n", "no commands here"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &AuthorizedKeysFile{Path: akFile(t, dir, tc.file), Check: func(k *AuthorizedKey) error {
				if _, ok := k.Option("command"); ok {
					return errors.New("no commands here")
				}
				return nil
			}}
			p, err := f.Authorize(from, key)
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused != "" && err == nil:
				t.Fatalf("admitted: %+v", p)
			case tc.refused != "" && !strings.Contains(err.Error(), tc.refused):
				t.Fatalf("refused with %q, want it to say %q", err, tc.refused)
			}
		})
	}

	// Options reach the Permissions.
	f := &AuthorizedKeysFile{Path: akFile(t, dir, `restrict,pty,command="internal-sftp",permitopen="h:1" `+line+" tagged\n")}
	p, err := f.Authorize(from, key)
	if err != nil {
		t.Fatal(err)
	}
	ko := p.KeyOptions
	if ko == nil || ko.PortForwarding || ko.AgentForwarding || ko.X11Forwarding || !ko.PTY || ko.UserRC ||
		len(ko.PermitOpen) != 1 || p.ForceCommand != "internal-sftp" || p.KeyComment != "tagged" {
		t.Fatalf("permissions %+v, key options %+v", p, ko)
	}
	if p.Identity != kex.FingerprintSHA256(key) || !strings.HasPrefix(p.Identity, "SHA256:") {
		t.Fatalf("Identity %q, want the key's fingerprint", p.Identity)
	}

	// No address, from=: refused rather than the restriction ignored.
	f = &AuthorizedKeysFile{Path: akFile(t, dir, `from="192.0.2.7" `+line+"\n")}
	if _, err := f.Authorize(ConnMetadata{User: "u"}, key); err == nil {
		t.Fatal("from= with no client address: admitted")
	}
	// A missing file refuses.
	f = &AuthorizedKeysFile{Path: filepath.Join(dir, "missing")}
	if _, err := f.Authorize(from, key); err == nil {
		t.Fatal("no file: admitted")
	}
}

// TestAuthorizedKeysFileRecheck: the Recheck an authorization returns
// re-reads the file (issue 14 item 7: a resumption re-checks the key that
// authenticated the session): it passes while the line still admits the
// key, and fails once the key is removed, has expired, is refused by
// Check, or its from= does not admit the new address.
func TestAuthorizedKeysFileRecheck(t *testing.T) {
	key := pubOf(t, userKeys(t)["ed25519"])
	other := pubOf(t, newEd25519(t))
	line := kex.MarshalAuthorizedKey(key)
	dir := t.TempDir()
	path := akFile(t, dir, `from="192.0.2.0/24" `+line+"\n"+kex.MarshalAuthorizedKey(other)+"\n")
	f := &AuthorizedKeysFile{Path: path, Check: func(k *AuthorizedKey) error {
		if _, ok := k.Option("command"); ok {
			return errors.New("forced command")
		}
		return nil
	}}
	p, err := f.Authorize(ConnMetadata{User: "u", RemoteAddr: tcp("192.0.2.7:1")}, key)
	if err != nil {
		t.Fatal(err)
	}
	if p.Recheck == nil {
		t.Fatal("no Recheck")
	}
	if err := p.Recheck(tcp("192.0.2.99:2")); err != nil {
		t.Fatalf("unchanged file, an address from= admits: %v", err)
	}
	if err := p.Recheck(tcp("198.51.100.1:2")); err == nil {
		t.Fatal("an address from= does not admit: passed")
	}
	for _, tc := range []struct{ name, file string }{
		{"removed", kex.MarshalAuthorizedKey(other) + "\n"},
		{"expired", `expiry-time="20000101",from="192.0.2.0/24" ` + line + "\n"},
		{"refused by Check", `command="/bin/false" ` + line + "\n"},
		{"file gone", ""},
	} {
		if tc.file == "" {
			os.Remove(path)
		} else {
			akFile(t, dir, tc.file)
		}
		if err := p.Recheck(tcp("192.0.2.7:1")); err == nil {
			t.Errorf("key %s: Recheck passed", tc.name)
		}
	}
	akFile(t, dir, line+"\n")
	if err := p.Recheck(tcp("203.0.113.5:1")); err != nil {
		t.Fatalf("key listed again without from=: %v", err)
	}
}
