package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	xssh "golang.org/x/crypto/ssh"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
)

// kfNeedTool returns the path of an OpenSSH tool, skipping the test when
// it is missing (failing instead when CI=true).
func kfNeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required when CI=true: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

// kfRun runs a command and fails the test with its output on error.
func kfRun(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(kfNeedTool(t, name), args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.Bytes())
	}
	return out.Bytes()
}

// kfKeygen runs ssh-keygen -t typ with extra args, writing into dir/name,
// and returns the private key file's contents and the public key line.
func kfKeygen(t testing.TB, dir, name, typ, comment string, extra ...string) (priv []byte, pubLine string) {
	t.Helper()
	path := filepath.Join(dir, name)
	args := append([]string{"-q", "-t", typ, "-C", comment, "-f", path}, extra...)
	if !contains(extra, "-N") {
		args = append(args, "-N", "")
	}
	kfRun(t, "ssh-keygen", args...)
	priv, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return priv, strings.TrimSpace(string(pub))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// kfPubLine renders a public key as "type base64".
func kfPubLine(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	blob, typ, err := publicKeyBlob(pub)
	if err != nil {
		t.Fatal(err)
	}
	return typ + " " + base64.StdEncoding.EncodeToString(blob)
}

// firstTwoFields keeps "type base64" of an OpenSSH public key line.
func firstTwoFields(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 {
		return line
	}
	return f[0] + " " + f[1]
}

// kfCheckSigns makes sure the signer's private half matches its public half.
func kfCheckSigns(t testing.TB, s crypto.Signer) {
	t.Helper()
	msg := []byte("rsftp private key test")
	switch pub := s.Public().(type) {
	case ed25519.PublicKey:
		sig, err := s.Sign(rand.Reader, msg, crypto.Hash(0))
		if err != nil || !ed25519.Verify(pub, msg, sig) {
			t.Fatalf("ed25519 signature does not verify (err %v)", err)
		}
	case *ecdsa.PublicKey:
		h := sha256.Sum256(msg)
		sig, err := s.Sign(rand.Reader, h[:], crypto.SHA256)
		if err != nil || !ecdsa.VerifyASN1(pub, h[:], sig) {
			t.Fatalf("ECDSA signature does not verify (err %v)", err)
		}
	case *rsa.PublicKey:
		h := sha256.Sum256(msg)
		sig, err := s.Sign(rand.Reader, h[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig); err != nil {
			t.Fatalf("RSA signature does not verify: %v", err)
		}
	default:
		t.Fatalf("unexpected public key type %T", pub)
	}
}

// rsaKeyOnce shares one ssh-keygen RSA key between tests: generating RSA
// keys is the slow part on a busy machine.
var rsaKeyOnce struct {
	sync.Once
	priv []byte
	pub  string
	dir  string
}

func kfRSAKey(t *testing.T) ([]byte, string) {
	t.Helper()
	kfNeedTool(t, "ssh-keygen")
	rsaKeyOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rsftp-rsa")
		if err != nil {
			t.Fatal(err)
		}
		rsaKeyOnce.dir = dir
		rsaKeyOnce.priv, rsaKeyOnce.pub = kfKeygen(t, dir, "id_rsa", "rsa", "rsa key", "-b", "2048")
		os.RemoveAll(dir)
	})
	if rsaKeyOnce.priv == nil {
		t.Fatal("RSA key generation failed earlier")
	}
	return rsaKeyOnce.priv, rsaKeyOnce.pub
}

func TestPrivateKeyOpenSSHUnencrypted(t *testing.T) {
	kfNeedTool(t, "ssh-keygen")
	dir := t.TempDir()
	type gen struct {
		name, typ string
		args      []string
	}
	for _, g := range []gen{
		{"ed25519", "ed25519", nil},
		{"p256", "ecdsa", []string{"-b", "256"}},
		{"p384", "ecdsa", []string{"-b", "384"}},
		{"p521", "ecdsa", []string{"-b", "521"}},
		{"rsa", "rsa", nil},
	} {
		t.Run(g.name, func(t *testing.T) {
			var priv []byte
			var pub string
			if g.typ == "rsa" {
				priv, pub = kfRSAKey(t)
			} else {
				priv, pub = kfKeygen(t, dir, g.name, g.typ, "comment for "+g.name, g.args...)
			}
			s, comment, err := ParsePrivateKey(priv, nil)
			if err != nil {
				t.Fatal(err)
			}
			wantComment := "comment for " + g.name
			if g.typ == "rsa" {
				wantComment = "rsa key"
			}
			if comment != wantComment {
				t.Errorf("comment %q, want %q", comment, wantComment)
			}
			if got, want := kfPubLine(t, s.Public()), firstTwoFields(pub); got != want {
				t.Errorf("public key\n got %s\nwant %s", got, want)
			}
			kfCheckSigns(t, s)
		})
	}
}

// TestPrivateKeyOpenSSHEncrypted decrypts keys ssh-keygen protected with
// each cipher it offers for key files; this is also the end-to-end check
// of bcrypt_pbkdf against OpenSSH's.
func TestPrivateKeyOpenSSHEncrypted(t *testing.T) {
	kfNeedTool(t, "ssh-keygen")
	dir := t.TempDir()
	ciphers := []string{"", cipherAES256CTR, cipherAES128CTR, cipherAES192CTR,
		cipherAES256CBC, cipherAES128CBC, cipherAES256GCM, cipherAES128GCM, cipherChaChaPoly}
	for _, c := range ciphers {
		name := c
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			args := []string{"-N", "sekrit pass", "-a", "4"}
			if c != "" {
				args = append(args, "-Z", c)
			}
			priv, pub := kfKeygen(t, dir, "k-"+name, "ed25519", "enc "+name, args...)
			if c != "" {
				// Make sure ssh-keygen really used the cipher asked for.
				blk, _ := pem.Decode(priv)
				r := wire.NewReader(blk.Bytes[len(opensshKeyMagic):])
				if got := r.String(); got != c {
					t.Fatalf("ssh-keygen wrote cipher %q, want %q", got, c)
				}
			}
			if _, _, err := ParsePrivateKey(priv, nil); !errors.Is(err, ErrPassphraseRequired) {
				t.Errorf("nil passphrase: err = %v, want ErrPassphraseRequired", err)
			}
			for _, wrong := range []string{"", "sekrit pasS", "wrong"} {
				if _, _, err := ParsePrivateKey(priv, []byte(wrong)); !errors.Is(err, ErrIncorrectPassphrase) {
					t.Errorf("passphrase %q: err = %v, want ErrIncorrectPassphrase", wrong, err)
				}
			}
			s, comment, err := ParsePrivateKey(priv, []byte("sekrit pass"))
			if err != nil {
				t.Fatal(err)
			}
			if comment != "enc "+name {
				t.Errorf("comment %q", comment)
			}
			if got, want := kfPubLine(t, s.Public()), firstTwoFields(pub); got != want {
				t.Errorf("public key\n got %s\nwant %s", got, want)
			}
			kfCheckSigns(t, s)
		})
	}
}

func TestPrivateKeyEncryptedRSAAndECDSA(t *testing.T) {
	kfNeedTool(t, "ssh-keygen")
	dir := t.TempDir()
	priv, pub := kfKeygen(t, dir, "ec", "ecdsa", "ec enc", "-b", "384", "-N", "pw", "-a", "2")
	s, _, err := ParsePrivateKey(priv, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := kfPubLine(t, s.Public()), firstTwoFields(pub); got != want {
		t.Errorf("ecdsa public key mismatch")
	}
	kfCheckSigns(t, s)

	// Re-encrypt the shared RSA key with ssh-keygen -p.
	rsaPriv, rsaPub := kfRSAKey(t)
	path := filepath.Join(dir, "rsa")
	if err := os.WriteFile(path, rsaPriv, 0o600); err != nil {
		t.Fatal(err)
	}
	kfRun(t, "ssh-keygen", "-q", "-p", "-P", "", "-N", "rsapw", "-a", "2", "-f", path)
	enc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, _, err = ParsePrivateKey(enc, []byte("rsapw"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := kfPubLine(t, s.Public()), firstTwoFields(rsaPub); got != want {
		t.Errorf("rsa public key mismatch")
	}
	kfCheckSigns(t, s)
}

// TestPrivateKeyPEMForms reads keys that ssh-keygen exports as PKCS #1,
// SEC 1 and PKCS #8, plus the stdlib's own encodings.
func TestPrivateKeyPEMForms(t *testing.T) {
	kfNeedTool(t, "ssh-keygen")
	dir := t.TempDir()
	for _, c := range []struct{ typ, format, block string }{
		{"ecdsa", "PEM", "EC PRIVATE KEY"},
		{"ecdsa", "PKCS8", "PRIVATE KEY"},
		{"rsa", "PEM", "RSA PRIVATE KEY"},
		{"rsa", "PKCS8", "PRIVATE KEY"},
	} {
		t.Run(c.typ+"-"+c.format, func(t *testing.T) {
			var priv []byte
			var pub string
			path := filepath.Join(dir, c.typ+c.format)
			if c.typ == "rsa" {
				priv, pub = kfRSAKey(t)
				if err := os.WriteFile(path, priv, 0o600); err != nil {
					t.Fatal(err)
				}
			} else {
				_, pub = kfKeygen(t, dir, c.typ+c.format, c.typ, "x")
			}
			// Rewrite the key in the requested PEM flavour.
			kfRun(t, "ssh-keygen", "-q", "-p", "-P", "", "-N", "", "-m", c.format, "-f", path)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(data, []byte("BEGIN "+c.block+"-----")) {
				t.Fatalf("ssh-keygen did not write a %s block:\n%s", c.block, data[:40])
			}
			s, comment, err := ParsePrivateKey(data, nil)
			if err != nil {
				t.Fatal(err)
			}
			if comment != "" {
				t.Errorf("comment %q for a PEM key", comment)
			}
			if got, want := kfPubLine(t, s.Public()), firstTwoFields(pub); got != want {
				t.Errorf("public key mismatch\n got %s\nwant %s", got, want)
			}
			kfCheckSigns(t, s)
		})
	}

	// Ed25519 in PKCS #8 and EC with a leading EC PARAMETERS block, from
	// the stdlib.
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	der, err := x509.MarshalPKCS8PrivateKey(edPriv)
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := ParsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !edPriv.Equal(s) {
		t.Error("ed25519 PKCS #8 key changed")
	}
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ = x509.MarshalECPrivateKey(ecPriv)
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}})
	data := append(params, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})...)
	if s, _, err = ParsePrivateKey(data, nil); err != nil {
		t.Fatal(err)
	} else if !ecPriv.Equal(s) {
		t.Error("EC key changed")
	}

	// Rejected forms.
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	der, _ = x509.MarshalECPrivateKey(p224)
	for name, data := range map[string][]byte{
		"P-224":       pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}),
		"legacy enc":  pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00000000000000000000000000000000"}, Bytes: []byte{1, 2, 3}}),
		"pkcs8 enc":   pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}),
		"certificate": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}),
		"no pem":      []byte("ssh-ed25519 AAAA"),
		"empty":       nil,
	} {
		if _, _, err := ParsePrivateKey(data, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestMarshalPrivateKeyOpenSSH writes keys and has ssh-keygen read them.
func TestMarshalPrivateKeyOpenSSH(t *testing.T) {
	kfNeedTool(t, "ssh-keygen")
	dir := t.TempDir()
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	rsaPEM, _ := kfRSAKey(t)
	rsaKey, _, err := ParsePrivateKey(rsaPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]crypto.Signer{"ed25519": edKey, "p256": p256, "p521": p521, "rsa": rsaKey}
	for name, k := range keys {
		for _, pass := range []string{"", "marshal pass"} {
			t.Run(name+"/"+map[bool]string{true: "plain", false: "encrypted"}[pass == ""], func(t *testing.T) {
				data, err := MarshalPrivateKey(k, "comment "+name, []byte(pass))
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(dir, name+map[bool]string{true: "", false: "-enc"}[pass == ""])
				if err := os.WriteFile(path, data, 0o600); err != nil {
					t.Fatal(err)
				}
				want := kfPubLine(t, k.Public())
				got := kfRun(t, "ssh-keygen", "-y", "-P", pass, "-f", path)
				if firstTwoFields(string(got)) != want {
					t.Errorf("ssh-keygen -y says %q, want %q", got, want)
				}
				if pass != "" {
					// ssh-keygen must refuse a wrong passphrase, proving
					// the file really is encrypted.
					cmd := exec.Command(kfNeedTool(t, "ssh-keygen"), "-y", "-P", "nope", "-f", path)
					if out, err := cmd.CombinedOutput(); err == nil {
						t.Errorf("ssh-keygen accepted a wrong passphrase: %s", out)
					}
				}
				// Our reader, and x/crypto's, agree.
				s, comment, err := ParsePrivateKey(data, []byte(pass))
				if err != nil {
					t.Fatal(err)
				}
				if comment != "comment "+name || kfPubLine(t, s.Public()) != want {
					t.Errorf("round trip changed the key or comment (%q)", comment)
				}
				var xk any
				if pass == "" {
					xk, err = xssh.ParseRawPrivateKey(data)
				} else {
					xk, err = xssh.ParseRawPrivateKeyWithPassphrase(data, []byte(pass))
				}
				if err != nil {
					t.Fatalf("x/crypto/ssh: %v", err)
				}
				if xs, ok := xk.(crypto.Signer); !ok || kfPubLine(t, xs.Public()) != want {
					t.Errorf("x/crypto/ssh read a different key")
				}
			})
		}
	}
	if _, err := MarshalPrivateKey(struct{ crypto.Signer }{edKey}, "", nil); err == nil {
		t.Error("wrapped signer accepted")
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if _, err := MarshalPrivateKey(p224, "", nil); err == nil {
		t.Error("P-224 accepted")
	}
}

// kfBlob builds an openssh-key-v1 body around a hand-made private section.
func kfBlob(cipherName, kdf string, kdfOpts, pub, priv []byte, nKeys uint32) []byte {
	b := []byte(opensshKeyMagic)
	b = wire.AppendString(b, cipherName)
	b = wire.AppendString(b, kdf)
	b = wire.AppendBytes(b, kdfOpts)
	b = wire.AppendUint32(b, nKeys)
	b = wire.AppendBytes(b, pub)
	return wire.AppendBytes(b, priv)
}

func kfPEM(body []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemOpenSSH, Bytes: body})
}

func TestPrivateKeyMalformed(t *testing.T) {
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	pub, _, _ := publicKeyBlob(edKey.Public())
	section := func(c1, c2 uint32, mutate func([]byte) []byte) []byte {
		p := wire.AppendUint32(nil, c1)
		p = wire.AppendUint32(p, c2)
		p = wire.AppendString(p, keyTypeED25519)
		p = wire.AppendBytes(p, edKey[32:])
		k := append([]byte(nil), edKey...)
		if mutate != nil {
			k = mutate(k)
		}
		p = wire.AppendBytes(p, k)
		p = wire.AppendString(p, "c")
		for i := 1; len(p)%8 != 0; i++ {
			p = append(p, byte(i))
		}
		return p
	}
	good := kfBlob("none", "none", nil, pub, section(7, 7, nil), 1)
	if _, c, err := ParsePrivateKey(kfPEM(good), nil); err != nil || c != "c" {
		t.Fatalf("hand-built key rejected: %v", err)
	}
	badPad := section(7, 7, nil)
	badPad[len(badPad)-1] = 9
	other, _, _ := publicKeyBlob(ed25519.PublicKey(make([]byte, 32)))
	bcryptOpts := func(saltLen int, rounds uint32) []byte {
		o := wire.AppendBytes(nil, make([]byte, saltLen))
		return wire.AppendUint32(o, rounds)
	}
	for name, body := range map[string][]byte{
		"check mismatch":  kfBlob("none", "none", nil, pub, section(7, 8, nil), 1),
		"bad padding":     kfBlob("none", "none", nil, pub, badPad, 1),
		"two keys":        kfBlob("none", "none", nil, pub, section(7, 7, nil), 2),
		"zero keys":       kfBlob("none", "none", nil, pub, section(7, 7, nil), 0),
		"wrong pub":       kfBlob("none", "none", nil, other, section(7, 7, nil), 1),
		"bad seed":        kfBlob("none", "none", nil, pub, section(7, 7, func(k []byte) []byte { k[0] ^= 1; return k }), 1),
		"short priv":      kfBlob("none", "none", nil, pub, section(7, 7, func(k []byte) []byte { return k[:63] }), 1),
		"unknown cipher":  kfBlob("3des-cbc", "bcrypt", bcryptOpts(16, 1), pub, make([]byte, 64), 1),
		"unknown kdf":     kfBlob("aes256-ctr", "scrypt", nil, pub, make([]byte, 64), 1),
		"none with kdf":   kfBlob("none", "bcrypt", nil, pub, section(7, 7, nil), 1),
		"huge rounds":     kfBlob("aes256-ctr", "bcrypt", bcryptOpts(16, 1<<30), pub, make([]byte, 64), 1),
		"zero rounds":     kfBlob("aes256-ctr", "bcrypt", bcryptOpts(16, 0), pub, make([]byte, 64), 1),
		"empty salt":      kfBlob("aes256-ctr", "bcrypt", bcryptOpts(0, 1), pub, make([]byte, 64), 1),
		"huge salt":       kfBlob("aes256-ctr", "bcrypt", bcryptOpts(4096, 1), pub, make([]byte, 64), 1),
		"unaligned":       kfBlob("aes256-ctr", "bcrypt", bcryptOpts(16, 1), pub, make([]byte, 60), 1),
		"empty section":   kfBlob("none", "none", nil, pub, nil, 1),
		"gcm missing tag": kfBlob(cipherAES256GCM, "bcrypt", bcryptOpts(16, 1), pub, make([]byte, 64), 1),
		"trailing":        append(good[:len(good):len(good)], 0),
		"bad magic":       append([]byte("openssh-key-v2\x00"), good[len(opensshKeyMagic):]...),
	} {
		_, _, err := ParsePrivateKey(kfPEM(body), []byte("pass"))
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if name == "huge rounds" && !strings.Contains(err.Error(), "rounds") {
			t.Errorf("%s: unhelpful error %v", name, err)
		}
	}
	// Every truncation of a valid key is an error, not a panic.
	for i := range good {
		if _, _, err := ParsePrivateKey(kfPEM(good[:i]), nil); err == nil {
			t.Errorf("truncation to %d bytes accepted", i)
		}
	}
}

func FuzzParsePrivateKey(f *testing.F) {
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	data, err := MarshalPrivateKey(edKey, "fuzz", nil)
	if err != nil {
		f.Fatal(err)
	}
	blk, _ := pem.Decode(data)
	f.Add(blk.Bytes)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	data, _ = MarshalPrivateKey(p256, "fuzz", nil)
	blk, _ = pem.Decode(data)
	f.Add(blk.Bytes)
	f.Fuzz(func(t *testing.T, body []byte) {
		s, _, err := ParsePrivateKey(kfPEM(body), nil)
		if err == nil && s == nil {
			t.Fatal("nil signer without error")
		}
		// The public key read without decrypting is the key's.
		pub, perr := PrivateKeyPublicKey(kfPEM(body))
		if err == nil {
			want, werr := kex.NewPublicKey(s.Public())
			if perr != nil || werr != nil || !bytes.Equal(pub.Marshal(), want.Marshal()) {
				t.Fatalf("PrivateKeyPublicKey: %v, %v", perr, werr)
			}
		}
		// The same bytes as a public key file.
		if k, _, err := ParsePublicKeyFile(body); err == nil && k == nil {
			t.Fatal("nil key without error")
		}
	})
}
