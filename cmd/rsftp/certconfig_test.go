package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/transport"
)

// TestConfigCertificateKeywords: CertificateFile accumulates (repeats
// dropped, first the command line's) with ~, %-tokens and ${VAR}
// expanded as IdentityFile's; RevokedHostKeys takes files, expanded
// alike, or none alone; CASignatureAlgorithms is an algorithm list
// checked at parse time. None of them draws a warning any more.
func TestConfigCertificateKeywords(t *testing.T) {
	hc, err := resolveIn(t, `
Host web
  HostName %h.example
  User alice
  CertificateFile ~/certs/%r@%h-cert.pub
  CertificateFile ${KEYDIR}/c.pub
  CertificateFile ~/certs/%r@%h-cert.pub
  RevokedHostKeys ~/revoked.krl %d/more/%h
  CASignatureAlgorithms -rsa-sha2-256
`, lookupRequest{hostArg: "web", options: []string{"CertificateFile=/first.pub"}}, func(e *configEnv) {
		e.getenv = func(k string) (string, bool) { return "/env/" + k, k == "KEYDIR" }
	})
	if err != nil {
		t.Fatal(err)
	}
	home := hc.env.home
	if got, want := hc.cfg.all("certificatefile"), []string{"/first.pub", home + "/certs/alice@web.example-cert.pub", "/env/KEYDIR/c.pub"}; !slices.Equal(got, want) {
		t.Errorf("CertificateFile %q, want %q", got, want)
	}
	if got := strings.Join(hc.cfg.all("revokedhostkeys"), " "); got != home+"/revoked.krl "+home+"/more/web.example" {
		t.Errorf("RevokedHostKeys %q", got)
	}
	if len(hc.cfg.warnings) != 0 {
		t.Errorf("warnings %q", hc.cfg.warnings)
	}
	algs, err := caSignatureAlgorithms(hc.cfg.getDefault("casignaturealgorithms", ""))
	if err != nil || slices.Contains(algs, kex.SigAlgoRSASHA256) || !slices.Contains(algs, kex.KeyAlgoED25519) {
		t.Errorf("CASignatureAlgorithms %v, %v", algs, err)
	}
	chk, err := newHostKeyChecker(hc.cfg, nil, auth.StrictYes, false, &logger{})
	if err != nil || len(chk.RevokedHostKeys) != 2 || !slices.Equal(chk.CASignatureAlgorithms, algs) {
		t.Errorf("checker %+v, %v", chk, err)
	}

	for _, bad := range []string{"CASignatureAlgorithms ssh-rsa", "CASignatureAlgorithms ssh-dss,ssh-ed25519",
		"RevokedHostKeys none /x", "CertificateFile a b", "CertificateFile ~/%z"} {
		if _, err := resolveIn(t, bad+"\n", lookupRequest{hostArg: "x"}, nil); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	if hc, err := resolveIn(t, "RevokedHostKeys none\n", lookupRequest{hostArg: "x"}, nil); err != nil {
		t.Error(err)
	} else if chk, _ := newHostKeyChecker(hc.cfg, nil, auth.StrictYes, false, &logger{}); chk.RevokedHostKeys != nil {
		t.Errorf("RevokedHostKeys none: %q", chk.RevokedHostKeys)
	}
}

// TestHostKeyAlgorithmsWithCertificates: the tool's default host key
// algorithms are ssh's, certificate algorithms first; an @cert-authority
// line for the host keeps them first where a known plain key of another
// type would have put that type first; "-" removes one, and a full list
// may name them.
func TestHostKeyAlgorithmsWithCertificates(t *testing.T) {
	dir := t.TempDir()
	ecPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := kex.NewPublicKey(&ecPriv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ca := ccTestSigner(t).PublicKey()
	kh := filepath.Join(dir, "known_hosts")
	writeTestFile(t, kh, "ec.example "+kex.MarshalAuthorizedKey(ec)+"\n@cert-authority *.corp "+kex.MarshalAuthorizedKey(ca)+"\nx.corp "+kex.MarshalAuthorizedKey(ec)+"\n")
	cfg := func(opts ...string) *sshConfig {
		c := newSSHConfig()
		for _, o := range append([]string{"UserKnownHostsFile=" + kh, "GlobalKnownHostsFile=none"}, opts...) {
			if err := c.parseOption(o); err != nil {
				t.Fatal(err)
			}
		}
		return c
	}
	def := auth.WithCertAlgorithms(transport.DefaultHostKeyAlgorithms)
	if !kex.IsCertAlgorithm(def[0]) || def[0] != kex.CertAlgoED25519 {
		t.Fatalf("defaults %v", def)
	}
	// With no CA for the host, the certificate algorithms go after the
	// plain ones.
	got, err := hostKeyAlgorithms(cfg(), "unknown.example", 22)
	half := len(def) / 2
	if err != nil || !slices.Equal(got[:half], def[half:]) || !slices.Equal(got[half:], def[:half]) {
		t.Errorf("nothing known: %v, %v", got, err)
	}
	got, _ = hostKeyAlgorithms(cfg(), "ec.example", 22)
	if got[0] != kex.KeyAlgoECDSA256 || got[half] != kex.CertAlgoECDSA256 {
		t.Errorf("ECDSA key known: %v", got)
	}
	got, _ = hostKeyAlgorithms(cfg(), "x.corp", 22)
	if !kex.IsCertAlgorithm(got[0]) || got[0] != kex.CertAlgoED25519 || kex.IsCertAlgorithm(got[len(def)/2]) || got[len(def)/2] != kex.KeyAlgoECDSA256 {
		t.Errorf("CA line and an ECDSA key: %v", got)
	}
	got, _ = hostKeyAlgorithms(cfg("HostKeyAlgorithms=-"+kex.CertAlgoED25519), "x.corp", 22)
	if slices.Contains(got, kex.CertAlgoED25519) || !kex.IsCertAlgorithm(got[0]) {
		t.Errorf("minus: %v", got)
	}
	got, err = hostKeyAlgorithms(cfg("HostKeyAlgorithms="+kex.CertSigAlgoRSASHA512+","+kex.SigAlgoRSASHA512), "x", 22)
	if err != nil || !slices.Equal(got, []string{kex.CertSigAlgoRSASHA512, kex.SigAlgoRSASHA512}) {
		t.Errorf("full list: %v, %v", got, err)
	}
}

// TestOrderIdentities: the order publicKeyMethod offers keys in:
// CertificateFile's certificates; the agent's identities of identity
// files and the certificates beside those files whose key the agent
// holds; the agent's other identities (not with IdentitiesOnly); the
// other identity files; certificates before plain keys in each group,
// each key once. A certificate whose key nothing holds is reported.
func TestOrderIdentities(t *testing.T) {
	ca := ccTestSigner(t)
	mk := func() (kex.Signer, *kex.Certificate) {
		s := ccTestSigner(t)
		c := &kex.Certificate{Key: s.PublicKey(), CertType: kex.UserCert, KeyID: "c", ValidPrincipals: []string{"u"},
			ValidBefore: kex.CertForever}
		if err := c.SignCert(rand.Reader, ca, ""); err != nil {
			t.Fatal(err)
		}
		return s, c
	}
	agentOnly, agentOnlyCert := mk()
	fileInAgent, fileInAgentCert := mk() // the agent has the key; the certificate is beside the file
	fileOnly, fileOnlyCert := mk()
	cfKey, cfCert := mk() // CertificateFile's, its key an identity file
	_, orphanCert := mk() // CertificateFile's, no key anywhere
	cs := func(c *kex.Certificate, s kex.Signer) kex.Signer {
		x, err := kex.NewCertSigner(c, s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	agent := []kex.Signer{agentOnly, fileInAgent, cs(agentOnlyCert, agentOnly)}
	lazy := func(s kex.Signer) *lazyKey { return &lazyKey{path: "f", pub: s.PublicKey()} }
	files := []*fileIdentity{
		{path: "a", key: lazy(fileOnly), cert: fileOnlyCert},
		{path: "b", key: lazy(fileInAgent), cert: fileInAgentCert},
		{path: "c", key: lazy(cfKey)},
	}
	certs := []*certFile{{path: "cf", cert: cfCert}, {path: "orphan", cert: orphanCert}}
	names := map[string]string{}
	for n, k := range map[string]kex.PublicKey{"agentOnly": agentOnly.PublicKey(), "agentOnlyCert": agentOnlyCert,
		"fileInAgent": fileInAgent.PublicKey(), "fileInAgentCert": fileInAgentCert, "fileOnly": fileOnly.PublicKey(),
		"fileOnlyCert": fileOnlyCert, "cfKey": cfKey.PublicKey(), "cfCert": cfCert} {
		names[string(k.Marshal())] = n
	}
	for _, c := range []struct {
		only bool
		want string
	}{
		{false, "cfCert fileInAgentCert fileInAgent agentOnlyCert agentOnly fileOnlyCert fileOnly cfKey"},
		{true, "cfCert fileInAgentCert fileInAgent fileOnlyCert fileOnly cfKey"},
	} {
		var reported []string
		got := orderIdentities(agent, files, certs, c.only, &logger{}, func(p string, err error) { reported = append(reported, p) })
		var order []string
		for _, s := range got {
			order = append(order, names[string(s.PublicKey().Marshal())])
		}
		if strings.Join(order, " ") != c.want {
			t.Errorf("IdentitiesOnly=%v: %s\nwant %s", c.only, strings.Join(order, " "), c.want)
		}
		if c.only == false && !slices.Equal(reported, []string{"orphan"}) {
			t.Errorf("reported %q", reported)
		}
	}
}

func ccTestSigner(t *testing.T) kex.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := kex.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
