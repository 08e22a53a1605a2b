package kex

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"hash"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/ssh"

	"github.com/rsftp/rsftp/internal/sntrup761"
)

func mustHexT(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// refExchangeHash is H = SHA256(string V_C || string V_S || string I_C ||
// string I_S || string K_S || string Q_C || string Q_S || K), assembled
// by hand (RFC 4253 section 8, RFC 5656 section 4, RFC 8731).
func refExchangeHash(method string, m *Magics, ks, qc, qs, k []byte) []byte {
	b := tCat(tString(m.ClientVersion), tString(m.ServerVersion), tString(m.ClientKexInit),
		tString(m.ServerKexInit), tString(ks), tString(qc), tString(qs), k)
	if isSntrup(method) {
		h := sha512.Sum512(b)
		return h[:]
	}
	h := sha256.Sum256(b)
	return h[:]
}

// isSntrup: the methods whose hash is SHA-512.
func isSntrup(method string) bool {
	return method == "sntrup761x25519-sha512" || method == "sntrup761x25519-sha512@openssh.com"
}

// sntrupKeyFromSeed makes the fixed sntrup761 key of a seed's first 32
// bytes (sntrup761.NewKeyFromSeed).
func sntrupKeyFromSeed(t testing.TB, seed []byte) *sntrup761.PrivateKey {
	var k [32]byte
	copy(k[:], seed)
	dk, err := sntrup761.NewKeyFromSeed(k)
	if err != nil {
		t.Fatal(err)
	}
	return dk
}

// refDeriveKey is RFC 4253 section 7.2 written out directly.
func refDeriveKey(newHash func() hash.Hash, k, h []byte, letter byte, sid []byte, n int) []byte {
	x := newHash()
	x.Write(tCat(k, h, []byte{letter}, sid))
	key := x.Sum(nil)
	for len(key) < n {
		y := newHash()
		y.Write(tCat(k, h, key))
		key = append(key, y.Sum(nil)...)
	}
	return key[:n]
}

func testMagics() *Magics {
	return &Magics{
		ClientVersion: []byte("SSH-2.0-rsftp_test"),
		ServerVersion: []byte("SSH-2.0-OpenSSH_9.9"),
		ClientKexInit: append([]byte{20}, bytes.Repeat([]byte{0xc1}, 60)...),
		ServerKexInit: append([]byte{20}, bytes.Repeat([]byte{0x5e}, 70)...),
	}
}

// ---------------------------------------------------------------------
// DeriveKey and the exchange hash against the references.

func TestDeriveKeyReference(t *testing.T) {
	hashes := []struct {
		h crypto.Hash
		f func() hash.Hash
	}{{crypto.SHA1, sha1.New}, {crypto.SHA256, sha256.New}, {crypto.SHA384, sha512.New384}, {crypto.SHA512, sha512.New}}
	k := tMPInt(bytes.Repeat([]byte{0x9c}, 32))
	h := bytes.Repeat([]byte{0x3d}, 32)
	sid := bytes.Repeat([]byte{0x77}, 32)
	for _, hh := range hashes {
		for n := 0; n <= 3*hh.h.Size()+1; n++ {
			for letter := byte('A'); letter <= 'F'; letter++ {
				got := DeriveKey(hh.h, k, h, letter, sid, n)
				want := refDeriveKey(hh.f, k, h, letter, sid, n)
				if len(got) != n || !bytes.Equal(got, want) {
					t.Fatalf("%v n=%d %c: %x, want %x", hh.h, n, letter, got, want)
				}
			}
		}
	}
	// Shorter keys are prefixes of longer ones; letters and session IDs
	// separate the keys.
	long := DeriveKey(crypto.SHA256, k, h, 'C', sid, 100)
	if !bytes.Equal(DeriveKey(crypto.SHA256, k, h, 'C', sid, 40), long[:40]) {
		t.Error("40-byte key is not a prefix of the 100-byte key")
	}
	if bytes.Equal(DeriveKey(crypto.SHA256, k, h, 'D', sid, 32), long[:32]) {
		t.Error("letters C and D give the same key")
	}
	if bytes.Equal(DeriveKey(crypto.SHA256, k, h, 'C', h, 32), long[:32]) {
		t.Error("session ID does not enter the key")
	}
}

func TestExchangeHashReference(t *testing.T) {
	m := testMagics()
	ks := []byte("host key blob")
	qc, qs := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	k := tMPInt(bytes.Repeat([]byte{0x80}, 32))
	h := exchangeHash(crypto.SHA256, m, ks, qc, qs, k)
	if !bytes.Equal(h, refExchangeHash(Curve25519SHA256, m, ks, qc, qs, k)) {
		t.Fatal("exchangeHash differs from the reference")
	}
	// Every input enters H, and moving bytes between fields changes it
	// (the length prefixes are there).
	variants := map[string]func(m *Magics) []byte{
		"V_C": func(m *Magics) []byte {
			m.ClientVersion = append(m.ClientVersion, 'x')
			return exchangeHash(crypto.SHA256, m, ks, qc, qs, k)
		},
		"V_S": func(m *Magics) []byte {
			m.ServerVersion = m.ServerVersion[1:]
			return exchangeHash(crypto.SHA256, m, ks, qc, qs, k)
		},
		"I_C": func(m *Magics) []byte { m.ClientKexInit = nil; return exchangeHash(crypto.SHA256, m, ks, qc, qs, k) },
		"I_S": func(m *Magics) []byte { m.ServerKexInit[5] ^= 1; return exchangeHash(crypto.SHA256, m, ks, qc, qs, k) },
		"K_S": func(m *Magics) []byte { return exchangeHash(crypto.SHA256, m, ks[1:], qc, qs, k) },
		"Q_C": func(m *Magics) []byte { return exchangeHash(crypto.SHA256, m, ks, qs, qs, k) },
		"Q_S": func(m *Magics) []byte { return exchangeHash(crypto.SHA256, m, ks, qc, qc, k) },
		"K":   func(m *Magics) []byte { return exchangeHash(crypto.SHA256, m, ks, qc, qs, k[1:]) },
		"Q_C/Q_S boundary": func(m *Magics) []byte {
			return exchangeHash(crypto.SHA256, m, ks, qc[:31], append([]byte{1}, qs...), k)
		},
		"versions swapped": func(m *Magics) []byte {
			m.ClientVersion, m.ServerVersion = m.ServerVersion, m.ClientVersion
			return exchangeHash(crypto.SHA256, m, ks, qc, qs, k)
		},
	}
	for name, f := range variants {
		mm := testMagics()
		if bytes.Equal(f(mm), h) {
			t.Errorf("changing %s leaves H unchanged", name)
		}
	}
}

// ---------------------------------------------------------------------
// Fixed transcripts (testvectors/data/kex-transcripts.json).

type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

type transcript struct {
	Comment           string              `json:"comment"`
	Method            string              `json:"method"`
	ClientVersion     string              `json:"client_version"`
	ServerVersion     string              `json:"server_version"`
	ClientKexInit     hexBytes            `json:"client_kexinit"`
	ServerKexInit     hexBytes            `json:"server_kexinit"`
	HostKeySeed       hexBytes            `json:"host_key_seed"`
	HostKey           hexBytes            `json:"host_key"`
	ClientX25519      hexBytes            `json:"client_x25519_private"`
	ServerX25519      hexBytes            `json:"server_x25519_private"`
	ClientMLKEMSeed   hexBytes            `json:"client_mlkem_seed"`
	ServerMLKEMRandom hexBytes            `json:"server_mlkem_random"`
	ClientSntrupSeed  hexBytes            `json:"client_sntrup_seed"`
	Init              hexBytes            `json:"init"`
	Reply             hexBytes            `json:"reply"`
	QC                hexBytes            `json:"q_c"`
	QS                hexBytes            `json:"q_s"`
	K                 hexBytes            `json:"k"`
	H                 hexBytes            `json:"h"`
	Signature         hexBytes            `json:"signature"`
	Keys              map[string]hexBytes `json:"keys"`
}

func (v *transcript) magics() *Magics {
	return &Magics{
		ClientVersion: []byte(v.ClientVersion),
		ServerVersion: []byte(v.ServerVersion),
		ClientKexInit: v.ClientKexInit,
		ServerKexInit: v.ServerKexInit,
	}
}

// loadTranscripts reads the computed transcripts and those recorded from
// OpenSSH's sshd (sntrup761x25519, which has no other implementation
// here to compute them with).
func loadTranscripts(t testing.TB) []transcript {
	t.Helper()
	var all []transcript
	for _, name := range []string{"kex-transcripts.json", "kex-sntrup-openssh.json"} {
		b, err := os.ReadFile("../testvectors/data/" + name)
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Source  string       `json:"source"`
			Vectors []transcript `json:"vectors"`
		}
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		all = append(all, f.Vectors...)
	}
	if len(all) < 6 {
		t.Fatalf("%d transcripts", len(all))
	}
	return all
}

// fixedClient builds the client side of v's method from v's private keys.
func fixedClient(t testing.TB, method string, x25519Priv, mlkemSeed []byte) ClientMethod {
	t.Helper()
	priv, err := ecdh.X25519().NewPrivateKey(x25519Priv)
	if err != nil {
		t.Fatal(err)
	}
	switch method {
	case Curve25519SHA256, Curve25519SHA256LibSSH:
		return &x25519Client{priv: priv}
	case MLKEM768X25519SHA256:
		dk, err := mlkem.NewDecapsulationKey768(mlkemSeed)
		if err != nil {
			t.Fatal(err)
		}
		return &hybridClient{dk: dk, priv: priv}
	case SNTRUP761X25519SHA512, SNTRUP761X25519SHA512OpenSSH:
		return &sntrupClient{dk: sntrupKeyFromSeed(t, mlkemSeed), priv: priv}
	}
	t.Fatalf("method %q", method)
	return nil
}

func TestTranscriptVectors(t *testing.T) {
	methods := map[string]bool{}
	for i, v := range loadTranscripts(t) {
		methods[v.Method] = true
		// NewClient must pick the same implementation for the method.
		c0, err := NewClient(v.Method, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		seed := v.ClientMLKEMSeed
		if isSntrup(v.Method) {
			seed = v.ClientSntrupSeed
		}
		c := fixedClient(t, v.Method, v.ClientX25519, seed)
		if typeName(c0) != typeName(c) {
			t.Fatalf("vector %d: NewClient(%q) gives %s", i, v.Method, typeName(c0))
		}
		if !bytes.Equal(c.InitMessage(), v.Init) {
			t.Errorf("vector %d (%s): init message differs", i, v.Method)
		}
		res, err := c.HandleReply(v.Reply, v.magics(), KeyAlgoED25519)
		if err != nil {
			t.Fatalf("vector %d (%s): %v", i, v.Method, err)
		}
		if !bytes.Equal(res.K, v.K) {
			t.Errorf("vector %d (%s): K = %x, want %x", i, v.Method, res.K, v.K)
		}
		if !bytes.Equal(res.H, v.H) {
			t.Errorf("vector %d (%s): H = %x, want %x", i, v.Method, res.H, v.H)
		}
		wantHash := crypto.SHA256
		if isSntrup(v.Method) {
			wantHash = crypto.SHA512
		}
		if res.Hash != wantHash || !bytes.Equal(res.Signature, v.Signature) || !bytes.Equal(res.HostKey.Marshal(), v.HostKey) {
			t.Errorf("vector %d (%s): result %+v", i, v.Method, res)
		}
		for letter, want := range v.Keys {
			if got := DeriveKey(res.Hash, res.K, res.H, letter[0], res.H, len(want)); !bytes.Equal(got, want) {
				t.Errorf("vector %d (%s): key %s = %x, want %x", i, v.Method, letter, got, want)
			}
		}
		// The same reply under other magics must fail.
		m := v.magics()
		m.ServerVersion = []byte("SSH-2.0-OpenSSH_9.8")
		if _, err := c.HandleReply(v.Reply, m, KeyAlgoED25519); err == nil {
			t.Errorf("vector %d (%s): accepted with a different V_S", i, v.Method)
		}
		// The server side cannot be replayed (its ephemeral key is
		// random), but it must accept the vector's init message.
		host := ed25519.NewKeyFromSeed(v.HostKeySeed)
		hs, _ := NewSigner(host)
		reply, sres, err := Server(v.Method, rand.Reader, v.Init, v.magics(), hs, "")
		if err != nil {
			t.Fatalf("vector %d (%s): Server: %v", i, v.Method, err)
		}
		cres, err := c.HandleReply(reply, v.magics(), KeyAlgoED25519)
		if err != nil || !bytes.Equal(cres.K, sres.K) || !bytes.Equal(cres.H, sres.H) {
			t.Errorf("vector %d (%s): fixed client with live server: %v", i, v.Method, err)
		}
	}
	for _, m := range SupportedMethods() {
		if !methods[m] {
			t.Errorf("no transcript for %s", m)
		}
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *x25519Client:
		return "x25519Client"
	case *hybridClient:
		return "hybridClient"
	case *sntrupClient:
		return "sntrupClient"
	}
	return "?"
}

// TestServerAgainstReference recomputes K and H of live Server replies
// from the client's fixed private keys with x/crypto/curve25519 and hand
// assembly, and checks the reply layout byte for byte.
func TestServerAgainstReference(t *testing.T) {
	alice := mustHexT(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
	seed := bytes.Repeat([]byte{0x6b}, 64)
	host := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	hs, _ := NewSigner(host)
	ks := tCat(tString([]byte("ssh-ed25519")), tString(host.Public().(ed25519.PublicKey)))
	for _, method := range SupportedMethods() {
		for i := 0; i < 8; i++ {
			m := testMagics()
			c := fixedClient(t, method, alice, seed)
			init := c.InitMessage()
			reply, sres, err := Server(method, rand.Reader, init, m, hs, "")
			if err != nil {
				t.Fatal(err)
			}
			qc, _, _ := tReadString(init[1:])
			// Split the reply by hand.
			if reply[0] != 31 {
				t.Fatalf("reply message number %d", reply[0])
			}
			gotKS, rest, _ := tReadString(reply[1:])
			qs, rest, _ := tReadString(rest)
			sig, rest, ok := tReadString(rest)
			if !ok || len(rest) != 0 || !bytes.Equal(gotKS, ks) {
				t.Fatalf("%s: reply layout", method)
			}
			var k []byte
			switch method {
			case MLKEM768X25519SHA256:
				if len(qs) != 1088+32 {
					t.Fatalf("Q_S of %d bytes", len(qs))
				}
				dk, _ := mlkem.NewDecapsulationKey768(seed)
				kem, err := dk.Decapsulate(qs[:1088])
				if err != nil {
					t.Fatal(err)
				}
				ec, err := curve25519.X25519(alice, qs[1088:])
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(tCat(kem, ec))
				k = tString(sum[:])
			case SNTRUP761X25519SHA512, SNTRUP761X25519SHA512OpenSSH:
				// No other sntrup761 here to check with: the fixed
				// client's own decapsulation (the KEM is checked
				// against OpenSSH by the interop tests).
				if len(qs) != 1039+32 {
					t.Fatalf("Q_S of %d bytes", len(qs))
				}
				kem, err := sntrupKeyFromSeed(t, seed).Decapsulate(qs[:1039])
				if err != nil {
					t.Fatal(err)
				}
				ec, err := curve25519.X25519(alice, qs[1039:])
				if err != nil {
					t.Fatal(err)
				}
				sum := sha512.Sum512(tCat(kem, ec))
				k = tString(sum[:])
			default:
				if len(qs) != 32 {
					t.Fatalf("Q_S of %d bytes", len(qs))
				}
				ec, err := curve25519.X25519(alice, qs)
				if err != nil {
					t.Fatal(err)
				}
				k = tMPInt(ec)
			}
			h := refExchangeHash(method, m, ks, qc, qs, k)
			if !bytes.Equal(sres.K, k) || !bytes.Equal(sres.H, h) {
				t.Fatalf("%s: server K/H differ from the reference:\nK %x\n  %x\nH %x\n  %x", method, sres.K, k, sres.H, h)
			}
			algo, rest, _ := tReadString(sig)
			raw, rest, _ := tReadString(rest)
			if string(algo) != "ssh-ed25519" || len(rest) != 0 || !ed25519.Verify(host.Public().(ed25519.PublicKey), h, raw) {
				t.Fatalf("%s: server signature does not verify under crypto/ed25519", method)
			}
			cres, err := c.HandleReply(reply, m, KeyAlgoED25519)
			if err != nil || !bytes.Equal(cres.K, k) || !bytes.Equal(cres.H, h) {
				t.Fatalf("%s: client: %v", method, err)
			}
		}
	}
}

// ---------------------------------------------------------------------
// Full exchanges in memory.

func TestExchangeAllMethodsAllHostKeys(t *testing.T) {
	allAlgos := []string{"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-256", "rsa-sha2-512", "ssh-rsa", ""}
	for _, method := range SupportedMethods() {
		for _, tk := range testKeys() {
			signer, err := NewSigner(tk.priv)
			if err != nil {
				t.Fatal(err)
			}
			xPub, err := ssh.NewPublicKey(tk.priv.Public())
			if err != nil {
				t.Fatal(err)
			}
			for _, algo := range signer.Algorithms() {
				t.Run(method+"/"+tk.name+"/"+algo, func(t *testing.T) {
					m := testMagics()
					c, err := NewClient(method, rand.Reader)
					if err != nil {
						t.Fatal(err)
					}
					init := c.InitMessage()
					reply, sres, err := Server(method, rand.Reader, init, m, signer, algo)
					if err != nil {
						t.Fatal(err)
					}
					cres, err := c.HandleReply(reply, m, algo)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(cres.K, sres.K) || !bytes.Equal(cres.H, sres.H) {
						t.Fatal("client and server disagree on K or H")
					}
					wantHash := crypto.SHA256
					if isSntrup(method) {
						wantHash = crypto.SHA512
					}
					if cres.Hash != wantHash || sres.Hash != wantHash || len(cres.H) != wantHash.Size() {
						t.Errorf("hash %v/%v, H of %d bytes", cres.Hash, sres.Hash, len(cres.H))
					}
					if !bytes.Equal(cres.Signature, sres.Signature) || !bytes.Equal(cres.HostKey.Marshal(), signer.PublicKey().Marshal()) {
						t.Error("client result has another signature or host key")
					}
					switch method {
					case MLKEM768X25519SHA256:
						if len(cres.K) != 36 || !bytes.Equal(cres.K[:4], []byte{0, 0, 0, 32}) {
							t.Errorf("hybrid K = %x, want a 32-byte string", cres.K)
						}
					case SNTRUP761X25519SHA512, SNTRUP761X25519SHA512OpenSSH:
						if len(cres.K) != 68 || !bytes.Equal(cres.K[:4], []byte{0, 0, 0, 64}) {
							t.Errorf("sntrup761x25519 K = %x, want a 64-byte string", cres.K)
						}
					default:
						if n := len(cres.K); n < 4 || n > 4+33 || int(cres.K[3]) != n-4 {
							t.Errorf("curve25519 K = %x", cres.K)
						}
					}
					// H is what the reference computes from the messages.
					qc, _, _ := tReadString(init[1:])
					ks, rest, _ := tReadString(reply[1:])
					qs, _, _ := tReadString(rest)
					if !bytes.Equal(cres.H, refExchangeHash(method, m, ks, qc, qs, cres.K)) {
						t.Error("H differs from the reference")
					}
					// The signature over H verifies, with us and with x/crypto.
					if err := signer.PublicKey().Verify(cres.H, cres.Signature); err != nil {
						t.Error(err)
					}
					var xs ssh.Signature
					if err := ssh.Unmarshal(cres.Signature, &xs); err != nil {
						t.Fatal(err)
					}
					if xs.Format != algo {
						t.Errorf("signature format %q", xs.Format)
					}
					if err := xPub.Verify(cres.H, &xs); err != nil {
						t.Errorf("x/crypto: %v", err)
					}
					// Any other negotiated algorithm must be refused.
					for _, other := range allAlgos {
						if other == algo {
							continue
						}
						if _, err := c.HandleReply(reply, m, other); err == nil {
							t.Errorf("reply signed with %s accepted as %q", algo, other)
						}
					}
					// Both sides must hash the same magics.
					m2 := testMagics()
					m2.ClientKexInit[3] ^= 0x10
					if _, err := c.HandleReply(reply, m2, algo); err == nil {
						t.Error("reply accepted under a different I_C")
					}
				})
			}
		}
	}
}

// ---------------------------------------------------------------------
// Malicious replies. A test server builds replies whose signature is
// valid over the H a careless client would compute, so that a rejection
// must come from the check under test, not from the signature.

// X25519 inputs whose shared secret is zero for every private key: the
// points of order 1, 2, 4 and 8 and the non-canonical encodings p and
// p + 1 of 0 and 1 (from the list published with Curve25519 and used by
// libsodium and others; the entries with bit 255 set are left out, as
// RFC 7748 masks that bit and they are then ordinary points).
var lowOrderX25519 = []string{
	"0000000000000000000000000000000000000000000000000000000000000000",
	"0100000000000000000000000000000000000000000000000000000000000000",
	"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
}

// The list itself is checked with x/crypto/curve25519.
func TestLowOrderListIsLowOrder(t *testing.T) {
	for _, p := range lowOrderX25519 {
		for i := 0; i < 4; i++ {
			priv := make([]byte, 32)
			rand.Read(priv)
			if out, err := curve25519.X25519(priv, mustHexT(t, p)); err == nil {
				t.Fatalf("%s: x/crypto gives %x", p, out)
			}
		}
	}
}

func signedReply(t testing.TB, method string, signer Signer, algo string, m *Magics, qc, qs, k []byte) []byte {
	t.Helper()
	ks := signer.PublicKey().Marshal()
	sig, err := signer.Sign(rand.Reader, refExchangeHash(method, m, ks, qc, qs, k), algo)
	if err != nil {
		t.Fatal(err)
	}
	return tCat([]byte{31}, tString(ks), tString(qs), tString(sig))
}

// naiveServer is the server half of an exchange for the client's Q_C:
// serverQ is an honest Q_S, honestK the K that goes with it, and zeroK
// the K a client without the low-order check would compute for a
// low-order X25519 share (an all-zero X25519 output).
type naiveServer struct {
	qc, serverQ, honestK, zeroK []byte
}

func newNaiveServer(t testing.TB, method string, init []byte) naiveServer {
	t.Helper()
	qc, _, _ := tReadString(init[1:])
	priv, _ := ecdh.X25519().GenerateKey(rand.Reader)
	zeros := make([]byte, 32)
	switch method {
	case MLKEM768X25519SHA256:
		ek, err := mlkem.NewEncapsulationKey768(qc[:1184])
		if err != nil {
			t.Fatal(err)
		}
		kem, ct := ek.Encapsulate()
		ec, err := curve25519.X25519(priv.Bytes(), qc[1184:])
		if err != nil {
			t.Fatal(err)
		}
		honest := sha256.Sum256(tCat(kem, ec))
		zero := sha256.Sum256(tCat(kem, zeros))
		return naiveServer{qc, tCat(ct, priv.PublicKey().Bytes()), tString(honest[:]), tString(zero[:])}
	case SNTRUP761X25519SHA512, SNTRUP761X25519SHA512OpenSSH:
		ct, kem, err := sntrup761.Encapsulate(rand.Reader, qc[:1158])
		if err != nil {
			t.Fatal(err)
		}
		ec, err := curve25519.X25519(priv.Bytes(), qc[1158:])
		if err != nil {
			t.Fatal(err)
		}
		honest := sha512.Sum512(tCat(kem, ec))
		zero := sha512.Sum512(tCat(kem, zeros))
		return naiveServer{qc, tCat(ct, priv.PublicKey().Bytes()), tString(honest[:]), tString(zero[:])}
	default:
		ec, err := curve25519.X25519(priv.Bytes(), qc)
		if err != nil {
			t.Fatal(err)
		}
		return naiveServer{qc, priv.PublicKey().Bytes(), tMPInt(ec), tMPInt(zeros)}
	}
}

func TestHandleReplyRejects(t *testing.T) {
	for _, method := range SupportedMethods() {
		for _, keyName := range []string{"ed25519", "rsa-2048"} {
			signer := testSigner(t, keyName)
			algo := signer.Algorithms()[0]
			m := testMagics()
			c, _ := NewClient(method, rand.Reader)
			init := c.InitMessage()
			ns := newNaiveServer(t, method, init)
			honest := signedReply(t, method, signer, algo, m, ns.qc, ns.serverQ, ns.honestK)
			if _, err := c.HandleReply(honest, m, algo); err != nil {
				t.Fatalf("%s/%s: honest reply refused: %v", method, keyName, err)
			}
			ks, rest, _ := tReadString(honest[1:])
			qs, rest, _ := tReadString(rest)
			sig, _, _ := tReadString(rest)
			xOff := len(qs) - 32 // where the X25519 share starts

			// Replies that are well signed but carry a bad Q_S, with the K
			// a client that skipped the check would compute.
			badQ := map[string][]byte{
				"empty Q_S":        {},
				"Q_S short by one": qs[:len(qs)-1],
				"Q_S long by one":  append(bytes.Clone(qs), 0),
				"Q_S doubled":      tCat(qs, qs),
			}
			if method == MLKEM768X25519SHA256 || isSntrup(method) {
				badQ["X25519 share only"] = qs[xOff:]
				badQ["ciphertext only"] = qs[:xOff]
			}
			for name, q := range badQ {
				r := signedReply(t, method, signer, algo, m, ns.qc, q, ns.honestK)
				checkRefusedEarly(t, c, r, m, algo, method+"/"+keyName+": "+name)
			}
			for _, p := range lowOrderX25519 {
				q := tCat(qs[:xOff], mustHexT(t, p))
				r := signedReply(t, method, signer, algo, m, ns.qc, q, ns.zeroK)
				checkRefusedEarly(t, c, r, m, algo, method+"/"+keyName+": low-order "+p[:8])
			}

			// Tampering with a signed reply.
			tamper := map[string][]byte{
				"signature byte":       flipAt(honest, len(honest)-1),
				"Q_S X25519 byte":      tCat([]byte{31}, tString(ks), tString(flipAt(qs, xOff+3)), tString(sig)),
				"Q_S first byte":       tCat([]byte{31}, tString(ks), tString(flipAt(qs, 0)), tString(sig)),
				"host key byte":        tCat([]byte{31}, tString(flipAt(ks, len(ks)-2)), tString(qs), tString(sig)),
				"wrong number":         tCat([]byte{30}, honest[1:]),
				"trailing byte":        append(bytes.Clone(honest), 0),
				"trailing string":      tCat(honest, tString(nil)),
				"other host key":       tCat([]byte{31}, tString(testSigner(t, "ecdsa-p256").PublicKey().Marshal()), tString(qs), tString(sig)),
				"signature relabelled": tCat([]byte{31}, tString(ks), tString(qs), tString(relabel(sig, "ssh-rsa"))),
				"empty":                nil,
				"number only":          {31},
			}
			if method == MLKEM768X25519SHA256 || isSntrup(method) {
				// Implicit rejection: a changed ciphertext gives another K.
				tamper["KEM ciphertext byte"] = tCat([]byte{31}, tString(ks), tString(flipAt(qs, 500)), tString(sig))
				tamper["KEM ciphertext last byte"] = tCat([]byte{31}, tString(ks), tString(flipAt(qs, xOff-1)), tString(sig))
			}
			for name, r := range tamper {
				if _, err := c.HandleReply(r, m, algo); err == nil {
					t.Errorf("%s/%s: %s accepted", method, keyName, name)
				}
			}
			// Every truncation fails.
			for i := 0; i < len(honest); i++ {
				if _, err := c.HandleReply(honest[:i], m, algo); err == nil {
					t.Fatalf("%s/%s: reply truncated to %d bytes accepted", method, keyName, i)
				}
			}
			// A host key that does not fit the negotiated algorithm.
			other := "ecdsa-sha2-nistp256"
			if _, err := c.HandleReply(honest, m, other); err == nil {
				t.Errorf("%s/%s: accepted as %s", method, keyName, other)
			}
		}
	}
}

// checkRefusedEarly checks that the client refuses a well-signed reply
// before it gets to the signature.
func checkRefusedEarly(t *testing.T, c ClientMethod, reply []byte, m *Magics, algo, what string) {
	t.Helper()
	_, err := c.HandleReply(reply, m, algo)
	if err == nil {
		t.Errorf("%s: accepted", what)
	} else if strings.Contains(err.Error(), "signature") {
		t.Errorf("%s: refused only by the signature check: %v", what, err)
	}
}

func flipAt(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}

func relabel(sig []byte, algo string) []byte {
	_, rest, _ := tReadString(sig)
	return tCat(tString([]byte(algo)), rest)
}

func TestServerRejects(t *testing.T) {
	signer := testSigner(t, "ed25519")
	m := testMagics()
	for _, method := range SupportedMethods() {
		c, _ := NewClient(method, rand.Reader)
		init := c.InitMessage()
		qc, _, _ := tReadString(init[1:])
		if _, _, err := Server(method, rand.Reader, init, m, signer, ""); err != nil {
			t.Fatalf("%s: honest init refused: %v", method, err)
		}
		xOff := len(qc) - 32
		bad := map[string][]byte{
			"empty":           nil,
			"number only":     {30},
			"wrong number":    tCat([]byte{31}, init[1:]),
			"trailing byte":   append(bytes.Clone(init), 0),
			"Q_C short":       tCat([]byte{30}, tString(qc[:len(qc)-1])),
			"Q_C long":        tCat([]byte{30}, tString(append(bytes.Clone(qc), 0))),
			"Q_C empty":       tCat([]byte{30}, tString(nil)),
			"length too long": tCat([]byte{30, 0xff, 0xff, 0xff, 0xff}, qc),
		}
		for i := 1; i < len(init); i += max(1, len(init)/50) {
			bad["truncated "+itoa(i)] = init[:i]
		}
		for _, p := range lowOrderX25519 {
			bad["low-order "+p[:8]] = tCat([]byte{30}, tString(tCat(qc[:xOff], mustHexT(t, p))))
		}
		if method == MLKEM768X25519SHA256 {
			// Coefficients of 0xfff are >= q: not a valid encapsulation key.
			bad["ML-KEM key not reduced"] = tCat([]byte{30}, tString(tCat(bytes.Repeat([]byte{0xff}, 1184), qc[xOff:])))
			bad["X25519 share only"] = tCat([]byte{30}, tString(qc[xOff:]))
		} else {
			bad["hybrid-sized Q_C"] = tCat([]byte{30}, tString(make([]byte, 1216)))
		}
		for name, in := range bad {
			if reply, _, err := Server(method, rand.Reader, in, m, signer, ""); err == nil {
				t.Errorf("%s: %s accepted (reply of %d bytes)", method, name, len(reply))
			}
		}
		for _, algo := range []string{"rsa-sha2-256", "ssh-rsa", "ecdsa-sha2-nistp256", "nonsense"} {
			if _, _, err := Server(method, rand.Reader, init, m, signer, algo); err == nil {
				t.Errorf("%s: ed25519 host key signed as %s", method, algo)
			}
		}
	}
	c, _ := NewClient(Curve25519SHA256, rand.Reader)
	for _, method := range []string{"diffie-hellman-group14-sha256", "ecdh-sha2-nistp256", "sntrup4591761x25519-sha512@tinyssh.org", "", "curve25519-sha256@libssh.org "} {
		if _, _, err := Server(method, rand.Reader, c.InitMessage(), m, signer, ""); err == nil {
			t.Errorf("Server ran method %q", method)
		}
		if _, err := NewClient(method, rand.Reader); err == nil {
			t.Errorf("NewClient made method %q", method)
		}
	}
}

func TestSupportedMethods(t *testing.T) {
	want := []string{"mlkem768x25519-sha256", "sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com", "curve25519-sha256", "curve25519-sha256@libssh.org"}
	if got := SupportedMethods(); !equalStrings(got, want) {
		t.Errorf("SupportedMethods() = %v, want %v", got, want)
	}
	for _, method := range want {
		c, err := NewClient(method, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		init := c.InitMessage()
		q, _, ok := tReadString(init[1:])
		wantLen := 32
		switch method {
		case MLKEM768X25519SHA256:
			wantLen = 1184 + 32
		case SNTRUP761X25519SHA512, SNTRUP761X25519SHA512OpenSSH:
			wantLen = 1158 + 32
		}
		if init[0] != 30 || !ok || len(q) != wantLen || len(init) != 1+4+wantLen {
			t.Errorf("%s: init message of %d bytes", method, len(init))
		}
		// Two clients never share an ephemeral key.
		c2, _ := NewClient(method, rand.Reader)
		if bytes.Equal(c2.InitMessage(), init) {
			t.Errorf("%s: two clients made the same init message", method)
		}
	}
}

// An sntrup761 client takes the key made ahead when there is one, and
// has the next made: each key serves one exchange.
func TestSntrupSpareKeys(t *testing.T) {
	seen := map[string]bool{}
	for i := range 4 {
		if i > 0 {
			// The spare made after the last exchange is ready.
			deadline := time.Now().Add(10 * time.Second)
			for len(sntrupSpare) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("no spare sntrup761 key made after an exchange")
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		c, err := NewClient(SNTRUP761X25519SHA512, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pk := string(c.(*sntrupClient).dk.PublicKey())
		if seen[pk] {
			t.Fatalf("exchange %d: an sntrup761 key used twice", i)
		}
		seen[pk] = true
	}
}
