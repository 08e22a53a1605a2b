package e2e

// Our client with certificates and security keys held by an agent,
// against Debian's sshd (issue 22): OpenSSH's ssh-agent holding keys and
// the certificates ssh-add loaded beside them, and a fake agent's
// software security keys.

import (
	"context"
	"crypto/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/internal/agenttest"
	"github.com/rsftp/rsftp/internal/sshtest"
	"github.com/rsftp/rsftp/kex"
)

// startSSHAgent runs OpenSSH's ssh-agent on a socket in a short
// directory, stopped when the test ends.
func startSSHAgent(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rsftp-e2e-agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "agent.sock")
	cmd := exec.Command(sshtest.Binary(t, "ssh-agent"), "-D", "-a", sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return sock
		}
		if time.Now().After(deadline) {
			t.Fatal("ssh-agent did not start")
		}
	}
}

// agentSigners lists the agent's identities of type typ.
func agentSigners(sock, typ string) auth.Method {
	return auth.PublicKeysCallback(func() ([]kex.Signer, error) {
		a, err := auth.DialAgent(context.Background(), sock)
		if err != nil {
			return nil, err
		}
		all, err := a.Signers()
		var out []kex.Signer
		for _, s := range all {
			if s.PublicKey().Type() == typ {
				out = append(out, s)
			}
		}
		return out, err
	})
}

// TestInteropAgentCertificatesWithSshd: ssh-add loads keys and the
// key-cert.pub beside each into OpenSSH's ssh-agent; our client logs in
// to Debian's sshd, which trusts the CA (TrustedUserCAKeys) and no key,
// with each certificate signed through the agent (RSA's under
// rsa-sha2-512-cert-v01@openssh.com), and sshd logs the certificate's ID.
// (Debian's sshd lists every algorithm in server-sig-algs whatever its
// PubkeyAcceptedAlgorithms, so the choice of rsa-sha2-256-cert-v01 is
// tested against our server: auth's TestAgentCertificatesOpenSSH.)
func TestInteropAgentCertificatesWithSshd(t *testing.T) {
	me := sshtest.User(t)
	lab := &certLab{t: t, kg: sshtest.Binary(t, "ssh-keygen"), dir: t.TempDir()}
	ca := lab.key("ca", "ed25519")
	sock := startSSHAgent(t)
	for _, typ := range []string{"ed25519", "ecdsa", "rsa"} {
		k := lab.key("id_"+typ, typ)
		lab.keygen("-q", "-s", ca, "-I", "agent-"+typ, "-n", me, "-V", "-5m:+1h", k+".pub")
		c := exec.Command(sshtest.Binary(t, "ssh-add"), "-q", k)
		c.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("ssh-add: %v\n%s", err, out)
		}
	}
	for _, c := range []struct {
		name, typ, id string
		sshdExtra     []string
	}{
		{"ed25519", kex.CertAlgoED25519, "agent-ed25519", nil},
		{"ecdsa", kex.CertAlgoECDSA256, "agent-ecdsa", nil},
		{"rsa", kex.CertAlgoRSA, "agent-rsa", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			sshd := sshtest.StartSshd(t, "", append([]string{"TrustedUserCAKeys " + ca + ".pub"}, c.sshdExtra...)...)
			cfg := clientConfigFor(t, loadSigner(t, sshd.HostKey).PublicKey(), nil, func(cc *rsftp.ClientConfig) {
				cc.User = me
				cc.Auth = []auth.Method{agentSigners(sock, c.typ)}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cl, err := rsftp.Dial(ctx, "tcp", sshd.Addr(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			cl.Close()
			for deadline := time.Now().Add(5 * time.Second); !strings.Contains(sshd.Log(), "ID "+c.id); time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("sshd does not log certificate %s:\n%s", c.id, sshd.Log())
				}
			}
		})
	}
}

// TestInteropAgentSecurityKeysWithSshd: a fake agent's software security
// keys (sk-ssh-ed25519, and an sk-ecdsa-sha2-nistp256 certificate) log
// our client in to Debian's sshd, which verifies the signatures the agent
// made, flags and counter as the authenticator set them; without user
// presence sshd refuses, and with no-touch-required it admits.
func TestInteropAgentSecurityKeysWithSshd(t *testing.T) {
	me := sshtest.User(t)
	lab := &certLab{t: t, kg: sshtest.Binary(t, "ssh-keygen"), dir: t.TempDir()}
	caPath := lab.key("ca", "ed25519")
	ca := loadSigner(t, caPath)
	ed, err := agenttest.NewSecurityKey(kex.KeyAlgoSKED25519)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := agenttest.NewSecurityKey(kex.KeyAlgoSKECDSA256)
	if err != nil {
		t.Fatal(err)
	}
	now := uint64(time.Now().Unix())
	cert := &kex.Certificate{Key: ec.PublicKey(), CertType: kex.UserCert, KeyID: "sk-ecdsa-cert", Serial: 12,
		ValidPrincipals: []string{me}, ValidAfter: now - 60, ValidBefore: now + 3600,
		Extensions: []kex.CertOption{{Name: "permit-pty"}}}
	if err := cert.SignCert(rand.Reader, ca, ""); err != nil {
		t.Fatal(err)
	}
	cs, err := kex.NewCertSigner(cert, ec)
	if err != nil {
		t.Fatal(err)
	}
	ag := agenttest.New()
	ag.Add(ed, "sk ed25519")
	ag.Add(cs, "sk ecdsa certificate")
	dir, err := os.MkdirTemp("", "rsftp-e2e-skagent")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock, stop, err := ag.Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, c := range []struct {
		name, typ, ak string
		key           *agenttest.SecurityKey
		flags         byte
		ok            bool
	}{
		{"sk-ed25519", kex.KeyAlgoSKED25519, "", ed, kex.SKFlagUserPresent, true},
		{"sk-ed25519 untouched", kex.KeyAlgoSKED25519, "", ed, 0, false},
		{"sk-ed25519 untouched, no-touch-required", kex.KeyAlgoSKED25519, "no-touch-required ", ed, 0, true},
		{"sk-ecdsa certificate", kex.CertAlgoSKECDSA256, "", ec, kex.SKFlagUserPresent, true},
		{"sk-ecdsa certificate untouched", kex.CertAlgoSKECDSA256, "", ec, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			sshd := sshtest.StartSshd(t, c.ak+kex.MarshalAuthorizedKey(ed.PublicKey())+"\n", "TrustedUserCAKeys "+caPath+".pub")
			c.key.SetFlags(c.flags)
			before := c.key.Signatures()
			cfg := clientConfigFor(t, loadSigner(t, sshd.HostKey).PublicKey(), nil, func(cc *rsftp.ClientConfig) {
				cc.User = me
				cc.Auth = []auth.Method{agentSigners(sock, c.typ)}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cl, err := rsftp.Dial(ctx, "tcp", sshd.Addr(), cfg)
			if err == nil {
				cl.Close()
			}
			if (err == nil) != c.ok {
				t.Fatalf("logged in: %v (%v)", err == nil, err)
			}
			if c.key.Signatures() == before {
				t.Error("the security key did not sign")
			}
		})
	}
}
