package testvectors

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rsftp/rsftp/internal/sshtest"
	"github.com/rsftp/rsftp/kex"
)

const skSigFile = "data/keys-sk-sshsig.json"

var updateSK = flag.Bool("update-sk", false, "rewrite "+skSigFile+" with new keys and signatures from refSKAuthenticator (needs ssh-keygen, which must verify each)")

// skVector is a security key and an SSHSIG signature it made, with the
// flags and counter the authenticator signed.
type skVector struct {
	Comment       string `json:"comment"`
	AuthorizedKey string `json:"authorized_key"`
	Namespace     string `json:"namespace"`
	Message       Hex    `json:"message"`
	Flags         byte   `json:"flags"`
	Counter       uint32 `json:"counter"`
	Origin        string `json:"origin,omitempty"`
	SSHSig        string `json:"sshsig"`
}

const skSigSource = "Not published. Made by refSKAuthenticator in testvectors/sk_test.go, a software " +
	"authenticator written from OpenSSH's PROTOCOL.u2f (crypto/ed25519, crypto/ecdsa, crypto/sha256, " +
	"encoding/binary; no rsftp code), as SSHSIG signatures (PROTOCOL.sshsig) over the message, and each " +
	"checked with OpenSSH 9.2p1's ssh-keygen -Y check-novalidate when made (and again by " +
	"TestSKVectorsWithSSHKeygen where ssh-keygen is installed). Keys are random and discarded; " +
	"regenerate with go test ./testvectors -run TestSKSignatureVectors -update-sk."

// refSKAuthenticator signs as a FIDO authenticator does for OpenSSH.
type refSKAuthenticator struct {
	typ string
	ed  ed25519.PrivateKey
	ec  *ecdsa.PrivateKey
	app string
}

func sshString(b []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

func sshMPInt(b []byte) []byte {
	b = bytes.TrimLeft(b, "\x00")
	if len(b) > 0 && b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return sshString(b)
}

// publicBlob: string type || (string key | string curve || string point)
// || string application.
func (a *refSKAuthenticator) publicBlob() []byte {
	if a.ed != nil {
		return bytes.Join([][]byte{sshString([]byte(a.typ)), sshString(a.ed.Public().(ed25519.PublicKey)), sshString([]byte(a.app))}, nil)
	}
	pt := elliptic.Marshal(elliptic.P256(), a.ec.X, a.ec.Y) //nolint:staticcheck // the SEC 1 encoding, written out independently
	return bytes.Join([][]byte{sshString([]byte(a.typ)), sshString([]byte("nistp256")), sshString(pt), sshString([]byte(a.app))}, nil)
}

// sign returns the SSH signature blob over msg. With an origin it is a
// webauthn-sk-ecdsa-sha2-nistp256@openssh.com signature over a
// clientData that carries msg as its challenge.
func (a *refSKAuthenticator) sign(msg []byte, flags byte, counter uint32, origin string) ([]byte, error) {
	var msgHash [32]byte
	var clientData []byte
	if origin != "" {
		clientData = []byte(`{"type":"webauthn.get","challenge":"` + base64.RawURLEncoding.EncodeToString(msg) +
			`","origin":"` + origin + `","crossOrigin":false}`)
		msgHash = sha256.Sum256(clientData)
	} else {
		msgHash = sha256.Sum256(msg)
	}
	appHash := sha256.Sum256([]byte(a.app))
	signed := bytes.Join([][]byte{appHash[:], {flags}, binary.BigEndian.AppendUint32(nil, counter), msgHash[:]}, nil)
	tail := append([]byte{flags}, binary.BigEndian.AppendUint32(nil, counter)...)
	if a.ed != nil {
		return bytes.Join([][]byte{sshString([]byte(a.typ)), sshString(ed25519.Sign(a.ed, signed)), tail}, nil), nil
	}
	d := sha256.Sum256(signed)
	r, s, err := ecdsa.Sign(rand.Reader, a.ec, d[:])
	if err != nil {
		return nil, err
	}
	raw := append(sshMPInt(r.Bytes()), sshMPInt(s.Bytes())...)
	if origin == "" {
		return bytes.Join([][]byte{sshString([]byte(a.typ)), sshString(raw), tail}, nil), nil
	}
	return bytes.Join([][]byte{sshString([]byte("webauthn-sk-ecdsa-sha2-nistp256@openssh.com")), sshString(raw), tail,
		sshString([]byte(origin)), sshString(clientData), sshString(nil)}, nil), nil
}

// armorSSHSig wraps a signature of msg in SSHSIG (sha512) and armors it.
func armorSSHSig(pub, msg []byte, namespace string, sign func(signed []byte) ([]byte, error)) (string, error) {
	h := sha512.Sum512(msg)
	signed := bytes.Join([][]byte{[]byte("SSHSIG"), sshString([]byte(namespace)), sshString(nil), sshString([]byte("sha512")), sshString(h[:])}, nil)
	sig, err := sign(signed)
	if err != nil {
		return "", err
	}
	blob := bytes.Join([][]byte{[]byte("SSHSIG"), binary.BigEndian.AppendUint32(nil, 1), sshString(pub),
		sshString([]byte(namespace)), sshString(nil), sshString([]byte("sha512")), sshString(sig)}, nil)
	b64 := base64.StdEncoding.EncodeToString(blob)
	var out strings.Builder
	out.WriteString("-----BEGIN SSH SIGNATURE-----\n")
	for len(b64) > 70 {
		out.WriteString(b64[:70] + "\n")
		b64 = b64[70:]
	}
	out.WriteString(b64 + "\n-----END SSH SIGNATURE-----\n")
	return out.String(), nil
}

func makeSKVectors(t *testing.T) []skVector {
	msg := []byte("rsftp security key test message\n")
	var vs []skVector
	for _, c := range []struct {
		typ     string
		flags   byte
		counter uint32
		origin  string
	}{
		{"sk-ssh-ed25519@openssh.com", 0x01, 1, ""},
		{"sk-ssh-ed25519@openssh.com", 0x05, 0xffffffff, ""},
		{"sk-ssh-ed25519@openssh.com", 0x00, 7, ""},
		{"sk-ecdsa-sha2-nistp256@openssh.com", 0x01, 1, ""},
		{"sk-ecdsa-sha2-nistp256@openssh.com", 0x05, 0x80000000, ""},
		{"sk-ecdsa-sha2-nistp256@openssh.com", 0x00, 0, ""},
		{"sk-ecdsa-sha2-nistp256@openssh.com", 0x01, 42, "https://rsftp.example"},
	} {
		a := &refSKAuthenticator{typ: c.typ, app: "ssh:"}
		var err error
		if strings.HasPrefix(c.typ, "sk-ssh-ed25519") {
			_, a.ed, err = ed25519.GenerateKey(rand.Reader)
		} else {
			a.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		}
		if err != nil {
			t.Fatal(err)
		}
		armored, err := armorSSHSig(a.publicBlob(), msg, "rsftp-sk-test", func(signed []byte) ([]byte, error) {
			return a.sign(signed, c.flags, c.counter, c.origin)
		})
		if err != nil {
			t.Fatal(err)
		}
		what := c.typ
		if c.origin != "" {
			what = "webauthn-sk-ecdsa-sha2-nistp256@openssh.com"
		}
		vs = append(vs, skVector{
			Comment:       what + " signature made by refSKAuthenticator; verified by ssh-keygen -Y check-novalidate -n rsftp-sk-test",
			AuthorizedKey: c.typ + " " + base64.StdEncoding.EncodeToString(a.publicBlob()),
			Namespace:     "rsftp-sk-test", Message: msg, Flags: c.flags, Counter: c.counter, Origin: c.origin, SSHSig: armored,
		})
	}
	return vs
}

// checkWithSSHKeygen has ssh-keygen verify an SSHSIG signature.
func checkWithSSHKeygen(t *testing.T, kg string, v skVector) {
	t.Helper()
	dir := t.TempDir()
	sig := filepath.Join(dir, "sig")
	if err := os.WriteFile(sig, []byte(v.SSHSig), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kg, "-Y", "check-novalidate", "-n", v.Namespace, "-s", sig)
	cmd.Stdin = bytes.NewReader(v.Message)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Good") {
		t.Errorf("ssh-keygen refuses %s: %v\n%s", v.Comment, err, out)
	}
}

// TestSKSignatureVectors verifies the security key vectors with kex: the
// key parses and re-encodes, the signature verifies over the SSHSIG
// signed data with the recorded flags and counter, Verify requires the
// presence flag, and no signature verifies with a byte changed.
func TestSKSignatureVectors(t *testing.T) {
	if *updateSK {
		kg := sshtest.Binary(t, "ssh-keygen")
		vs := makeSKVectors(t)
		for _, v := range vs {
			checkWithSSHKeygen(t, kg, v)
		}
		if t.Failed() {
			t.Fatal("not writing vectors ssh-keygen refuses")
		}
		b, err := json.MarshalIndent(File[skVector]{Source: skSigSource, Vectors: vs}, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(skSigFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := load[skVector](skSigFile)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	for i, v := range f.Vectors {
		typ, b64, _ := strings.Cut(v.AuthorizedKey, " ")
		blob, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := kex.ParsePublicKey(blob)
		if err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		if pub.Type() != typ || kex.MarshalAuthorizedKey(pub) != v.AuthorizedKey {
			t.Errorf("vector %d: %s, %q", i, pub.Type(), kex.MarshalAuthorizedKey(pub))
		}
		sk := pub.(kex.SKPublicKey)
		sigPub, sigBlob, signed := parseSSHSig(t, v.SSHSig, v.Namespace, v.Message)
		if !bytes.Equal(sigPub, blob) {
			t.Fatalf("vector %d: SSHSIG names another key", i)
		}
		d, err := sk.VerifySK(signed, sigBlob)
		if err != nil {
			t.Fatalf("vector %d (%s): %v", i, v.Comment, err)
		}
		types[d.Algorithm] = true
		if d.Flags != v.Flags || d.Counter != v.Counter || d.Origin != v.Origin {
			t.Errorf("vector %d: flags %#x counter %d origin %q; recorded %#x %d %q", i, d.Flags, d.Counter, d.Origin, v.Flags, v.Counter, v.Origin)
		}
		if err := pub.Verify(signed, sigBlob); (err == nil) != (v.Flags&kex.SKFlagUserPresent != 0) {
			t.Errorf("vector %d: Verify %v with flags %#x", i, err, v.Flags)
		}
		flipEach(sigBlob, func(pos int, c []byte) {
			if _, err := sk.VerifySK(signed, c); err == nil {
				t.Errorf("vector %d: signature with byte %d changed verifies", i, pos)
			}
		})
	}
	if len(types) != 3 {
		t.Errorf("vectors cover %d signature algorithms, want 3", len(types))
	}
}

// TestSKVectorsWithSSHKeygen has OpenSSH verify the committed vectors.
func TestSKVectorsWithSSHKeygen(t *testing.T) {
	kg := sshtest.Binary(t, "ssh-keygen")
	f, err := load[skVector](skSigFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range f.Vectors {
		checkWithSSHKeygen(t, kg, v)
	}
}

// TestOpenSSHRegressSKVectors verifies the security key SSHSIG
// signatures of OpenSSH's own regression tests
// (regress/unittests/sshsig/testdata: ed25519_sk, ecdsa_sk,
// ecdsa_sk_webauthn, made with OpenSSH's sk-dummy authenticator), read
// from an openssh-portable tree named by RSFTP_OPENSSH_SRC; they are not
// copied here. Without it the test skips.
func TestOpenSSHRegressSKVectors(t *testing.T) {
	src := os.Getenv("RSFTP_OPENSSH_SRC")
	if src == "" {
		t.Skip("RSFTP_OPENSSH_SRC (an openssh-portable source tree) not set")
	}
	dir := filepath.Join(src, "regress", "unittests", "sshsig", "testdata")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	msg := read("signed-data")
	ns := strings.TrimSpace(string(read("namespace")))
	for _, name := range []string{"ed25519_sk", "ecdsa_sk", "ecdsa_sk_webauthn"} {
		f := strings.Fields(string(read(name + ".pub")))
		blob, err := base64.StdEncoding.DecodeString(f[1])
		if err != nil {
			t.Fatal(err)
		}
		pub, err := kex.ParsePublicKey(blob)
		if err != nil {
			t.Fatalf("%s.pub: %v", name, err)
		}
		sigPub, sigBlob, signed := parseSSHSig(t, string(read(name+".sig")), ns, msg)
		if !bytes.Equal(sigPub, blob) {
			t.Fatalf("%s.sig names another key", name)
		}
		d, err := pub.(kex.SKPublicKey).VerifySK(signed, sigBlob)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: %s, flags %#x, counter %d, origin %q", name, d.Algorithm, d.Flags, d.Counter, d.Origin)
		if _, err := pub.(kex.SKPublicKey).VerifySK(msg, sigBlob); err == nil {
			t.Errorf("%s verifies over the bare message", name)
		}
	}
}
