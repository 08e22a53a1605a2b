package auth

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp/kex"
)

// hostCertFor makes a host certificate of key signed by ca for
// principals, valid from an hour ago for an hour; edit changes it before
// it is signed.
func hostCertFor(t testing.TB, key kex.PublicKey, ca kex.Signer, principals []string, edit func(*kex.Certificate)) *kex.Certificate {
	t.Helper()
	return certFor(t, key, ca, func(c *kex.Certificate) {
		c.CertType = kex.HostCert
		c.KeyID = "host " + strings.Join(principals, ",")
		c.ValidPrincipals = principals
		c.Extensions = nil
		if edit != nil {
			edit(c)
		}
	})
}

// TestKnownHostsHostCertificates: a host certificate is accepted through
// a matching @cert-authority line (host patterns, negation, hashed
// names, [host]:port and the bare name for another port) when it is a
// host certificate, valid now, for the host name (principals read as
// patterns), with no critical option; @revoked lines refuse it by its key
// or its CA; otherwise its plain key is checked against the plain lines,
// the errors telling why the certificate was not taken, and Warn told
// when a trusted CA's certificate failed its checks.
func TestKnownHostsHostCertificates(t *testing.T) {
	ca := mustSigner(t, userKeys(t)["ed25519"])
	otherCA := mustSigner(t, userKeys(t)["ecdsa-p256"])
	hkPub, otherKey := akEd25519(t), akEd25519(t)
	caLine := func(hosts string, k kex.PublicKey) string {
		return MarkerCertAuthority + " " + hosts + " " + kex.MarshalAuthorizedKey(k) + "\n"
	}
	ok := func(p ...string) *kex.Certificate { return hostCertFor(t, hkPub, ca, p, nil) }
	now := uint64(time.Now().Unix())
	for _, c := range []struct {
		name       string
		kh         string
		cert       *kex.Certificate
		host       string
		port       int
		want       error  // nil, or the *Error type's zero value pointer
		reason     error  // for a certificate not taken: kex.ErrCert...
		reasonText string // or a part of its text
		warned     bool
	}{
		{"pattern", caLine("*.example.com", ca.PublicKey()), ok("srv.example.com"), "srv.example.com", 22, nil, nil, "", false},
		{"upper-case host", caLine("*.example.com", ca.PublicKey()), ok("srv.example.com"), "SRV.Example.com", 22, nil, nil, "", false},
		{"wildcard principal", caLine("*", ca.PublicKey()), ok("*.example.com"), "a.example.com", 22, nil, nil, "", false},
		{"address", caLine("127.0.0.1", ca.PublicKey()), ok("127.0.0.1", "localhost"), "127.0.0.1", 22, nil, nil, "", false},
		{"host and port", caLine("[srv.example.com]:2222", ca.PublicKey()), ok("srv.example.com"), "srv.example.com", 2222, nil, nil, "", false},
		{"bare name, other port", caLine("*.example.com", ca.PublicKey()), ok("srv.example.com"), "srv.example.com", 2222, nil, nil, "", false},
		{"hashed", caLine(HashHostname("srv.example.com", nil), ca.PublicKey()), ok("srv.example.com"), "srv.example.com", 22, nil, nil, "", false},
		{"second CA line", caLine("*", otherCA.PublicKey()) + caLine("*", ca.PublicKey()), ok("x"), "x", 22, nil, nil, "", false},
		{"negated host", caLine("*.example.com,!bad.example.com", ca.PublicKey()), ok("bad.example.com"), "bad.example.com", 22,
			&UnknownHostError{}, nil, "no @cert-authority line", false},
		{"port line, port 22", caLine("[srv.example.com]:2222", ca.PublicKey()), ok("srv.example.com"), "srv.example.com", 22,
			&UnknownHostError{}, nil, "no @cert-authority line", false},
		{"untrusted CA", caLine("*", otherCA.PublicKey()), ok("x"), "x", 22, &UnknownHostError{}, nil, "no @cert-authority line", false},
		{"no CA line", "", ok("x"), "x", 22, &UnknownHostError{}, nil, "no @cert-authority line", false},
		{"wrong principal", caLine("*", ca.PublicKey()), ok("other.example.com"), "srv.example.com", 22, &UnknownHostError{}, kex.ErrCertPrincipal, "", true},
		{"principal is not a pattern list", caLine("*", ca.PublicKey()), ok("a,srv"), "srv", 22, &UnknownHostError{}, kex.ErrCertPrincipal, "", true},
		{"no principals", caLine("*", ca.PublicKey()), ok(), "x", 22, &UnknownHostError{}, kex.ErrCertNoPrincipals, "", true},
		{"expired", caLine("*", ca.PublicKey()), hostCertFor(t, hkPub, ca, []string{"x"}, func(c *kex.Certificate) {
			c.ValidAfter, c.ValidBefore = now-7200, now-3600
		}), "x", 22, &UnknownHostError{}, kex.ErrCertExpired, "", true},
		{"not yet valid", caLine("*", ca.PublicKey()), hostCertFor(t, hkPub, ca, []string{"x"}, func(c *kex.Certificate) {
			c.ValidAfter = now + 3600
			c.ValidBefore = now + 7200
		}), "x", 22, &UnknownHostError{}, kex.ErrCertNotYetValid, "", true},
		{"user certificate", caLine("*", ca.PublicKey()), certFor(t, hkPub, ca, func(c *kex.Certificate) { c.ValidPrincipals = []string{"x"} }),
			"x", 22, &UnknownHostError{}, kex.ErrCertType, "", true},
		{"critical option", caLine("*", ca.PublicKey()), hostCertFor(t, hkPub, ca, []string{"x"}, func(c *kex.Certificate) {
			c.CriticalOptions = []kex.CertOption{critString("force-command", "true")}
		}), "x", 22, &UnknownHostError{}, kex.ErrCertOptions, "", true},
		// The plain key is known: the fallback accepts it (a trusted
		// CA's invalid certificate is still warned about).
		{"invalid, plain key known", caLine("*", ca.PublicKey()) + "x " + kex.MarshalAuthorizedKey(hkPub) + "\n",
			ok("y"), "x", 22, nil, nil, "", true},
		{"no CA, plain key known", "x " + kex.MarshalAuthorizedKey(hkPub) + "\n", ok("x"), "x", 22, nil, nil, "", false},
		{"no CA, another key known", "x " + kex.MarshalAuthorizedKey(otherKey) + "\n",
			ok("x"), "x", 22, &KeyMismatchError{}, nil, "no @cert-authority line", false},
		{"revoked key", caLine("*", ca.PublicKey()) + MarkerRevoked + " * " + kex.MarshalAuthorizedKey(hkPub) + "\n",
			ok("x"), "x", 22, &RevokedKeyError{}, nil, "", false},
		{"revoked CA", caLine("*", ca.PublicKey()) + MarkerRevoked + " * " + kex.MarshalAuthorizedKey(ca.PublicKey()) + "\n",
			ok("x"), "x", 22, &RevokedKeyError{}, nil, "", false},
		{"revoked elsewhere", caLine("*", ca.PublicKey()) + MarkerRevoked + " y " + kex.MarshalAuthorizedKey(ca.PublicKey()) + "\n",
			ok("x"), "x", 22, nil, nil, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			kh, err := ParseKnownHosts([]byte(c.kh), "kh")
			if err != nil {
				t.Fatal(err)
			}
			var warned []string
			err = kh.check(c.host, c.port, c.cert, &HostKeyChecker{Warn: func(m string) { warned = append(warned, m) }})
			switch want := c.want.(type) {
			case nil:
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
			case *UnknownHostError:
				var e *UnknownHostError
				if !errors.As(err, &e) || e.Cert != c.cert || !bytes.Equal(e.Key.Marshal(), c.cert.Key.Marshal()) {
					t.Fatalf("got %v, want an UnknownHostError of the plain key", err)
				}
				checkReason(t, e.CertErr, c.reason, c.reasonText)
			case *KeyMismatchError:
				var e *KeyMismatchError
				if !errors.As(err, &e) || !bytes.Equal(e.Got.Marshal(), c.cert.Key.Marshal()) {
					t.Fatalf("got %v, want a KeyMismatchError", err)
				}
				checkReason(t, e.CertErr, c.reason, c.reasonText)
			case *RevokedKeyError:
				var e *RevokedKeyError
				if !errors.As(err, &e) || e.Key != kex.PublicKey(c.cert) || !strings.Contains(err.Error(), "REVOKED") {
					t.Fatalf("got %v, want a RevokedKeyError", err)
				}
			default:
				t.Fatalf("bad case %T", want)
			}
			if (len(warned) > 0) != c.warned {
				t.Errorf("warnings %q", warned)
			}
			// Plain Check decides alike.
			if err2 := kh.Check(c.host, c.port, c.cert); (err2 == nil) != (err == nil) {
				t.Errorf("Check: %v, check: %v", err2, err)
			}
		})
	}
}

func checkReason(t *testing.T, got, want error, text string) {
	t.Helper()
	if got == nil {
		t.Fatal("no reason given for the certificate")
	}
	if want != nil && !errors.Is(got, want) {
		t.Errorf("reason %v, want %v", got, want)
	}
	if text != "" && !strings.Contains(got.Error(), text) {
		t.Errorf("reason %q, want it to say %q", got, text)
	}
}

// TestHostKeyCheckerCertificates: HostKeyChecker with a HostKeyAlias'
// name, CASignatureAlgorithms, a clock, and trust on first use of a host
// whose certificate it cannot check: the plain key is what gets recorded,
// and is accepted from then on.
func TestHostKeyCheckerCertificates(t *testing.T) {
	ca := mustSigner(t, userKeys(t)["ecdsa-p256"])
	hk := mustSigner(t, userKeys(t)["ed25519"])
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	khWrite(t, kh, MarkerCertAuthority+" alias.example "+kex.MarshalAuthorizedKey(ca.PublicKey())+"\n")
	cert := hostCertFor(t, hk.PublicKey(), ca, []string{"alias.example"}, nil)

	c := &HostKeyChecker{Files: []string{kh}}
	if err := c.Check("alias.example", 22, cert); err != nil {
		t.Fatalf("alias: %v", err)
	}
	c.CASignatureAlgorithms = []string{kex.KeyAlgoED25519}
	if err := c.Check("alias.example", 22, cert); err == nil || !strings.HasPrefix(err.Error(), "Host key verification failed") ||
		!errors.Is(errors.Unwrap(err).(*UnknownHostError).CertErr, kex.ErrCertCA) {
		t.Fatalf("CA algorithm not allowed: %v", err)
	}
	c.CASignatureAlgorithms = nil
	c.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if err := c.Check("alias.example", 22, cert); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("later: %v", err)
	}
	c.Now = nil

	// accept-new with a certificate of an unknown CA records its key.
	other := hostCertFor(t, hk.PublicKey(), mustSigner(t, userKeys(t)["rsa2048"]), []string{"new.example"}, nil)
	c.Mode = StrictAcceptNew
	if err := c.Check("new.example", 2200, other); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(kh)
	if !strings.Contains(string(data), "[new.example]:2200 "+kex.MarshalAuthorizedKey(hk.PublicKey())) || strings.Contains(string(data), "cert-v01") {
		t.Fatalf("recorded:\n%s", data)
	}
	c.Mode = StrictYes
	if err := c.Check("new.example", 2200, other); err != nil {
		t.Errorf("the recorded key: %v", err)
	}
	if err := c.Check("new.example", 2200, hk.PublicKey()); err != nil {
		t.Errorf("the plain key itself: %v", err)
	}
}

// TestHostKeyCheckerRevokedHostKeys: RevokedHostKeys files, a KRL made by
// ssh-keygen -k (revoking by serial, by key ID and a plain key) and a
// list of keys (a host key, a CA), refuse what they list and nothing
// else; a missing file refuses every host, as in ssh.
func TestHostKeyCheckerRevokedHostKeys(t *testing.T) {
	kg := akNeedKeygen(t)
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(kg, args...).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
		}
	}
	key := func(name string) string {
		p := filepath.Join(dir, name)
		run("-q", "-t", "ed25519", "-N", "", "-f", p)
		return p
	}
	ca, revokedKey := key("ca"), key("revoked_host")
	hostCert := func(name string, opts ...string) *kex.Certificate {
		p := key(name)
		run(append(append([]string{"-q", "-s", ca, "-h", "-n", "srv.example"}, opts...), p+".pub")...)
		c, err := LoadCertificate(p + "-cert.pub")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	good := hostCert("good", "-I", "good", "-z", "1")
	bySerial := hostCert("serial", "-I", "by-serial", "-z", "7")
	byID := hostCert("id", "-I", "bad-host", "-z", "2")
	spec := filepath.Join(dir, "spec")
	revokedPub, _ := os.ReadFile(revokedKey + ".pub")
	khWrite(t, spec, "serial: 7\nid: bad-host\n")
	krl := filepath.Join(dir, "krl")
	run("-k", "-f", krl, "-s", ca+".pub", spec)
	run("-k", "-u", "-f", krl, revokedKey+".pub")
	caPub, _ := os.ReadFile(ca + ".pub")
	list := filepath.Join(dir, "list")
	khWrite(t, list, "# revoked\n"+string(revokedPub))
	caList := filepath.Join(dir, "ca_list")
	khWrite(t, caList, string(caPub))
	kh := filepath.Join(dir, "known_hosts")
	revokedPlain, _, err := ParsePublicKeyFile(revokedPub)
	if err != nil {
		t.Fatal(err)
	}
	khWrite(t, kh, MarkerCertAuthority+" * "+string(caPub)+"srv.example "+string(revokedPub))

	for _, c := range []struct {
		name    string
		revoked []string
		key     kex.PublicKey
		ok      bool
	}{
		{"KRL, good", []string{krl}, good, true},
		{"KRL, serial", []string{krl}, bySerial, false},
		{"KRL, key ID", []string{krl}, byID, false},
		{"KRL, plain key", []string{krl}, revokedPlain, false},
		{"list, plain key", []string{list}, revokedPlain, false},
		{"list, good", []string{list}, good, true},
		{"list of the CA", []string{list, caList}, good, false},
		{"missing file", []string{filepath.Join(dir, "nope")}, good, false},
		{"none", nil, bySerial, true},
	} {
		err := (&HostKeyChecker{Files: []string{kh}, RevokedHostKeys: c.revoked}).Check("srv.example", 22, c.key)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "Host key verification failed") {
			t.Errorf("%s: %v", c.name, err)
		}
		if err != nil && c.name != "missing file" && !errors.Is(err, ErrKeyRevoked) {
			t.Errorf("%s: %v is not ErrKeyRevoked", c.name, err)
		}
	}
}

// TestKnownHostsHostKeyAlgorithmsCertificates: with an @cert-authority
// line for the host (under its [host]:port name or, for another port,
// its bare name), the certificate algorithms go first, as ssh orders
// them; without one they stay where they are, unless a plain key of the
// first one's type is known. WithCertAlgorithms puts each algorithm's
// certificate variant in front, as OpenSSH's default list does.
func TestKnownHostsHostKeyAlgorithmsCertificates(t *testing.T) {
	const (
		ed       = kex.KeyAlgoED25519
		p256     = kex.KeyAlgoECDSA256
		rsa512   = kex.SigAlgoRSASHA512
		edCert   = kex.CertAlgoED25519
		p256Cert = kex.CertAlgoECDSA256
		rsaCert  = kex.CertSigAlgoRSASHA512
	)
	plain := []string{ed, p256, rsa512}
	all := WithCertAlgorithms(plain)
	if want := []string{edCert, p256Cert, rsaCert, ed, p256, rsa512}; !slices.Equal(all, want) {
		t.Fatalf("WithCertAlgorithms: %v", all)
	}
	if got := WithCertAlgorithms([]string{p256Cert, ed, p256}); !slices.Equal(got, []string{edCert, p256Cert, ed, p256}) {
		t.Errorf("WithCertAlgorithms keeps a listed one where it is: %v", got)
	}
	ca, ec := akEd25519(t), akECDSA(t)
	kh, err := ParseKnownHosts([]byte(
		MarkerCertAuthority+" *.corp.example "+kex.MarshalAuthorizedKey(ca)+"\n"+
			MarkerCertAuthority+" [lab.example]:2200 "+kex.MarshalAuthorizedKey(ca)+"\n"+
			"ec.example "+kex.MarshalAuthorizedKey(ec)+"\n"+
			"ec.corp.example "+kex.MarshalAuthorizedKey(ec)+"\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		host  string
		port  int
		algos []string
		want  []string
	}{
		{"a.corp.example", 22, all, all},
		{"a.corp.example", 22, []string{ed, edCert, p256Cert}, []string{edCert, p256Cert, ed}},
		{"a.corp.example", 2222, []string{ed, edCert}, []string{edCert, ed}},
		{"lab.example", 2200, []string{ed, p256, rsaCert}, []string{rsaCert, ed, p256}},
		{"lab.example", 22, []string{ed, p256, rsaCert}, []string{ed, p256, rsaCert}},
		{"lab.example", 22, []string{rsaCert, ed, p256}, []string{ed, p256, rsaCert}},
		// No CA: the certificate algorithms go after the plain ones (ssh
		// would count them as their plain types: p256Cert, p256,
		// edCert, rsaCert, ed, rsa512).
		{"ec.example", 22, all, []string{p256, ed, rsa512, p256Cert, edCert, rsaCert}},
		{"other.example", 22, all, []string{ed, p256, rsa512, edCert, p256Cert, rsaCert}},
		// A CA and a plain key of another type.
		{"ec.corp.example", 22, all, []string{edCert, p256Cert, rsaCert, p256, ed, rsa512}},
		{"ec.corp.example", 22, []string{rsa512, ed, p256, edCert}, []string{p256, edCert, rsa512, ed}},
	} {
		if got := kh.HostKeyAlgorithms(c.host, c.port, c.algos); !slices.Equal(got, c.want) {
			t.Errorf("%s:%d %v: got %v, want %v", c.host, c.port, c.algos, got, c.want)
		}
	}
}
