package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/internal/sshtest"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/transport"
)

// TestQueryParse: -Q is answered at once, with no destination, as ssh
// does; a term it does not know is an error naming the way to the list.
func TestQueryParse(t *testing.T) {
	a, err := parseSSHArgs([]string{"-Q", "kex"})
	if err != nil || a.query != "kex" {
		t.Fatalf("-Q kex: %+v, %v", a, err)
	}
	if a, err := parseSSHArgs([]string{"-vQcipher"}); err != nil || a.query != "cipher" {
		t.Fatalf("-vQcipher: %+v, %v", a, err)
	}
	if _, err := parseSSHArgs([]string{"-Q"}); err == nil {
		t.Fatal("-Q without a term was taken")
	}
	if _, err := queryAlgorithms("ciphers-typo"); err == nil || !strings.Contains(err.Error(), "-Q help") {
		t.Fatalf("an unknown term: %v", err)
	}
	for _, term := range queryTerms {
		names, err := queryAlgorithms(term)
		if err != nil {
			t.Errorf("-Q %s: %v", term, err)
		}
		if len(names) == 0 && term != "kex-gss" {
			t.Errorf("-Q %s lists nothing", term)
		}
	}
}

// TestQueryListsWhatIsAccepted: what -Q lists for a feature is what the
// options that take it accept, so that a name copied from the list into
// -c, -m or ssh_config works.
func TestQueryListsWhatIsAccepted(t *testing.T) {
	check := func(term string, supported []string, what string) {
		t.Helper()
		names, err := queryAlgorithms(term)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := algorithmList(strings.Join(names, ","), supported, what); err != nil {
			t.Errorf("-Q %s lists a name %s refuses: %v", term, what, err)
		}
	}
	check("cipher", transport.SupportedCiphers(), "cipher")
	check("Ciphers", transport.SupportedCiphers(), "cipher")
	check("cipher-auth", transport.SupportedCiphers(), "cipher")
	check("mac", transport.SupportedMACs(), "mac")
	check("kex", kex.SupportedMethods(), "kex")
	check("KexAlgorithms", kex.SupportedMethods(), "kex")
	check("HostKeyAlgorithms", auth.WithCertAlgorithms(transport.DefaultHostKeyAlgorithms), "host key")
	check("PubkeyAcceptedAlgorithms", auth.DefaultPublicKeyAlgorithms(), "public key")
	check("key-ca-sign", kex.DefaultCASignatureAlgorithms, "CA signature algorithm")
	// Every signature algorithm we accept for public keys is a key-sig.
	keySig, _ := queryAlgorithms("key-sig")
	for _, a := range auth.DefaultPublicKeyAlgorithms() {
		if !slices.Contains(keySig, a) {
			t.Errorf("-Q key-sig lacks %s", a)
		}
	}
}

// TestQueryAgainstOpenSSH: each name rsftp lists is one OpenSSH's ssh
// lists for the same term (a name ssh does not know would be a typo or an
// invention), and rsftp knows every term ssh's -Q help does but those
// it has nothing for.
func TestQueryAgainstOpenSSH(t *testing.T) {
	ssh := sshtest.Binary(t, "ssh")
	query := func(term string) []string {
		out, err := exec.Command(ssh, "-Q", term).Output()
		if err != nil {
			return nil // a term this ssh does not know (key-ca-sign before 9.4)
		}
		return strings.Fields(string(out))
	}
	for _, term := range query("help") {
		ours, err := queryAlgorithms(term)
		if err != nil {
			t.Errorf("ssh -Q %s works, rsftp ssh -Q %s: %v", term, term, err)
			continue
		}
		theirs := query(term)
		for _, n := range ours {
			if term == "kex" && strings.HasPrefix(n, "mlkem768x25519") && !slices.Contains(theirs, n) {
				continue // OpenSSH 9.9 and later
			}
			if n == kex.CertSigAlgoWebAuthnSKECDSA256 {
				// A signature name of certificates that rsftp's
				// publickey accepts (auth.DefaultPublicKeyAlgorithms)
				// and ssh 9.2 does not list.
				continue
			}
			if !slices.Contains(theirs, n) {
				t.Errorf("rsftp ssh -Q %s lists %s, which ssh -Q %s does not", term, n, term)
			}
		}
	}
}
