package testvectors

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"hash"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/curve25519"

	"github.com/rsftp/rsftp/kex"
)

var updateKex = flag.Bool("update-kex", false, "rewrite "+kexTranscriptFile+" from the reference computation in kex_test.go")

const (
	sshKDFFile        = "data/kex-sshkdf-cavs.txt"
	kexTranscriptFile = "data/kex-transcripts.json"
)

// ---------------------------------------------------------------------
// Reference SSH encodings and computations, written from RFC 4251,
// RFC 4253, RFC 8731 and draft-ietf-sshm-mlkem-hybrid-kex with nothing
// but encoding/binary and the hash packages, so that they share no code
// with package kex or internal/wire.

func refString(b []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
	return append(out, b...)
}

// refMPInt encodes an unsigned big-endian magnitude as an RFC 4251 mpint.
func refMPInt(mag []byte) []byte {
	i := 0
	for i < len(mag) && mag[i] == 0 {
		i++
	}
	mag = mag[i:]
	if len(mag) > 0 && mag[0] >= 0x80 {
		mag = append([]byte{0}, mag...)
	}
	return refString(mag)
}

// refExchangeHash is H = SHA256(string V_C || string V_S || string I_C ||
// string I_S || string K_S || string Q_C || string Q_S || K), K encoded.
func refExchangeHash(vc, vs, ic, is, ks, qc, qs, k []byte) []byte {
	var buf []byte
	for _, f := range [][]byte{vc, vs, ic, is, ks, qc, qs} {
		buf = append(buf, refString(f)...)
	}
	buf = append(buf, k...)
	h := sha256.Sum256(buf)
	return h[:]
}

// refDeriveKey is RFC 4253 section 7.2, written as the RFC states it:
// K1 = HASH(K || H || X || session_id), Kn = HASH(K || H || K1 || ... ||
// Kn-1), key = K1 || K2 || ... truncated.
func refDeriveKey(newHash func() hash.Hash, k, h []byte, letter byte, sessionID []byte, n int) []byte {
	first := newHash()
	first.Write(bytes.Join([][]byte{k, h, {letter}, sessionID}, nil))
	key := first.Sum(nil)
	for len(key) < n {
		next := newHash()
		next.Write(bytes.Join([][]byte{k, h, key}, nil))
		key = append(key, next.Sum(nil)...)
	}
	return key[:n]
}

// ---------------------------------------------------------------------
// NIST CAVP SSH KDF vectors.

type sshKDFGroup struct {
	line         int
	hashName     string
	hash         crypto.Hash
	newHash      func() hash.Hash
	k, h, sid    []byte
	outputs      map[byte][]byte
	outputLetter []byte
}

func loadSSHKDF(t *testing.T) []*sshKDFGroup {
	t.Helper()
	f, err := os.Open(sshKDFFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var groups []*sshKDFGroup
	var g *sshKDFGroup
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "["):
			g = &sshKDFGroup{line: n, hashName: strings.Trim(line, "[]"), outputs: map[byte][]byte{}}
			switch g.hashName {
			case "SHA-1":
				g.hash, g.newHash = crypto.SHA1, sha1.New
			case "SHA-256":
				g.hash, g.newHash = crypto.SHA256, sha256.New
			case "SHA-512":
				g.hash, g.newHash = crypto.SHA512, sha512.New
			default:
				t.Fatalf("%s:%d: unknown hash %q", sshKDFFile, n, g.hashName)
			}
			groups = append(groups, g)
			continue
		}
		name, val, ok := strings.Cut(line, " = ")
		if !ok || g == nil {
			t.Fatalf("%s:%d: cannot parse %q", sshKDFFile, n, line)
		}
		b, err := hex.DecodeString(val)
		if err != nil {
			t.Fatalf("%s:%d: %v", sshKDFFile, n, err)
		}
		switch name {
		case "K":
			g.k = b
		case "H":
			g.h = b
		case "session_id":
			g.sid = b
		case "A", "B", "C", "D", "E", "F":
			g.outputs[name[0]] = b
			g.outputLetter = append(g.outputLetter, name[0])
		default:
			t.Fatalf("%s:%d: unknown field %q", sshKDFFile, n, name)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return groups
}

// TestSSHKDFCAVS runs kex.DeriveKey, and the reference loop above, against
// the NIST CAVP SSH KDF vectors.
func TestSSHKDFCAVS(t *testing.T) {
	groups := loadSSHKDF(t)
	count := 0
	extended := 0
	for _, g := range groups {
		// The CAVS K is already an mpint: check the length prefix, so a
		// transcription slip in K shows up here rather than as a KDF error.
		if len(g.k) < 5 || int(binary.BigEndian.Uint32(g.k)) != len(g.k)-4 {
			t.Fatalf("%s:%d: K is not a well-formed mpint", sshKDFFile, g.line)
		}
		if len(g.h) != g.hash.Size() || len(g.sid) != g.hash.Size() {
			t.Fatalf("%s:%d: H or session_id is not %d bytes", sshKDFFile, g.line, g.hash.Size())
		}
		if len(g.outputLetter) != 6 {
			t.Fatalf("%s:%d: %d outputs, want A to F", sshKDFFile, g.line, len(g.outputLetter))
		}
		for _, letter := range g.outputLetter {
			want := g.outputs[letter]
			ref := refDeriveKey(g.newHash, g.k, g.h, letter, g.sid, len(want))
			if !bytes.Equal(ref, want) {
				t.Errorf("%s:%d %s %c: the reference derives %x, the vector says %x (transcription error?)", sshKDFFile, g.line, g.hashName, letter, ref, want)
			}
			got := kex.DeriveKey(g.hash, g.k, g.h, letter, g.sid, len(want))
			if !bytes.Equal(got, want) {
				t.Errorf("%s:%d %s %c: DeriveKey = %x, want %x", sshKDFFile, g.line, g.hashName, letter, got, want)
			}
			count++
			if len(want) > g.hash.Size() {
				extended++
			}
		}
	}
	// 9 groups of 6; 6 outputs (the SHA-1 3DES keys) need the extension.
	if count != 54 || extended != 6 {
		t.Errorf("ran %d vectors, %d needing the extension step; want 54 and 6", count, extended)
	}
}

// ---------------------------------------------------------------------
// RFC 7748 section 6.1.

func TestRFC7748X25519(t *testing.T) {
	alicePriv := mustHex(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
	alicePub := mustHex(t, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
	bobPriv := mustHex(t, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
	bobPub := mustHex(t, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
	shared := mustHex(t, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")

	a, err := ecdh.X25519().NewPrivateKey(alicePriv)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ecdh.X25519().NewPrivateKey(bobPriv)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.PublicKey().Bytes(), alicePub) || !bytes.Equal(b.PublicKey().Bytes(), bobPub) {
		t.Fatal("crypto/ecdh public keys differ from RFC 7748")
	}
	s1, err := a.ECDH(b.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	s2, err := b.ECDH(a.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s1, shared) || !bytes.Equal(s2, shared) {
		t.Fatalf("crypto/ecdh shared secrets %x, %x; want %x", s1, s2, shared)
	}
	// x/crypto/curve25519 is a second implementation for the reference.
	s3, err := curve25519.X25519(alicePriv, bobPub)
	if err != nil || !bytes.Equal(s3, shared) {
		t.Fatalf("x/crypto/curve25519: %x, %v", s3, err)
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ---------------------------------------------------------------------
// Fixed-transcript key exchanges.

// KexTranscript is one complete server reply computed from fixed private
// keys: everything that enters the exchange hash, H, the host key's
// signature, and keys derived from K and H (session_id = H).
type KexTranscript struct {
	Comment       string `json:"comment"`
	Method        string `json:"method"`
	ClientVersion string `json:"client_version"`
	ServerVersion string `json:"server_version"`
	ClientKexInit Hex    `json:"client_kexinit"`
	ServerKexInit Hex    `json:"server_kexinit"`
	// HostKeySeed is an ed25519 seed; HostKey its public key blob K_S.
	HostKeySeed Hex `json:"host_key_seed"`
	HostKey     Hex `json:"host_key"`
	// X25519 private keys and their shared secret.
	ClientX25519 Hex `json:"client_x25519_private"`
	ServerX25519 Hex `json:"server_x25519_private"`
	X25519Shared Hex `json:"x25519_shared"`
	// ML-KEM-768: the client's 64-byte seed (d || z), the server's 32
	// bytes of encapsulation randomness, and the KEM shared secret.
	ClientMLKEMSeed   Hex `json:"client_mlkem_seed,omitempty"`
	ServerMLKEMRandom Hex `json:"server_mlkem_random,omitempty"`
	MLKEMShared       Hex `json:"mlkem_shared,omitempty"`
	// ClientSntrupSeed keys the ChaCha8 stream that the client's
	// sntrup761 key generation reads (recorded transcripts only).
	ClientSntrupSeed Hex `json:"client_sntrup_seed,omitempty"`
	// Init and Reply are the whole payloads of messages 30 and 31.
	Init      Hex `json:"init"`
	Reply     Hex `json:"reply"`
	QC        Hex `json:"q_c"`
	QS        Hex `json:"q_s"`
	K         Hex `json:"k"`
	H         Hex `json:"h"`
	Signature Hex `json:"signature"`
	// Keys holds DeriveKey(SHA-256, K, H, letter, H, n) for letters A to F
	// (n = 16, 16, 64, 64, 32, 32: the 64-byte keys need the extension).
	Keys map[string]Hex `json:"keys"`
}

// kexKeyLengths are the lengths of KexTranscript.Keys.
var kexKeyLengths = map[string]int{"A": 16, "B": 16, "C": 64, "D": 64, "E": 32, "F": 32}

// RFC 8032 section 7.1 TEST 1 secret key: the host key of every transcript.
const rfc8032Test1Seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"

// RFC 7748 section 6.1 private keys.
const (
	rfc7748Alice = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
	rfc7748Bob   = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
)

func refKexInit(cookie byte, kexAlgos string) []byte {
	b := []byte{20}
	b = append(b, bytes.Repeat([]byte{cookie}, 16)...)
	for _, l := range []string{
		kexAlgos, "ssh-ed25519",
		"chacha20-poly1305@openssh.com", "chacha20-poly1305@openssh.com",
		"hmac-sha2-256", "hmac-sha2-256", "none", "none", "", "",
	} {
		b = append(b, refString([]byte(l))...)
	}
	b = append(b, 0)             // first_kex_packet_follows
	return append(b, 0, 0, 0, 0) // reserved
}

// refTranscript computes a transcript from its fixed inputs (method,
// versions, KEXINITs, host key seed, private keys, ML-KEM seed and
// randomness) without package kex.
func refTranscript(in KexTranscript) (KexTranscript, error) {
	out := in
	host := ed25519.NewKeyFromSeed(in.HostKeySeed)
	out.HostKey = append(refString([]byte("ssh-ed25519")), refString(host.Public().(ed25519.PublicKey))...)

	cpub, err := curve25519.X25519(in.ClientX25519, curve25519.Basepoint)
	if err != nil {
		return out, err
	}
	spub, err := curve25519.X25519(in.ServerX25519, curve25519.Basepoint)
	if err != nil {
		return out, err
	}
	out.X25519Shared, err = curve25519.X25519(in.ClientX25519, spub)
	if err != nil {
		return out, err
	}
	switch in.Method {
	case "curve25519-sha256", "curve25519-sha256@libssh.org":
		out.QC, out.QS = cpub, spub
		out.K = refMPInt(out.X25519Shared)
	case "mlkem768x25519-sha256":
		dk, err := mlkem.NewDecapsulationKey768(in.ClientMLKEMSeed)
		if err != nil {
			return out, err
		}
		kemShared, ct, err := mlkemtest.Encapsulate768(dk.EncapsulationKey(), in.ServerMLKEMRandom)
		if err != nil {
			return out, err
		}
		dec, err := dk.Decapsulate(ct)
		if err != nil || !bytes.Equal(dec, kemShared) {
			return out, fmt.Errorf("ML-KEM decapsulation disagrees: %v", err)
		}
		out.MLKEMShared = kemShared
		out.QC = append(dk.EncapsulationKey().Bytes(), cpub...)
		out.QS = append(ct, spub...)
		sum := sha256.Sum256(append(append([]byte(nil), kemShared...), out.X25519Shared...))
		out.K = refString(sum[:])
	default:
		return out, fmt.Errorf("unknown method %q", in.Method)
	}
	out.Init = append([]byte{30}, refString(out.QC)...)
	out.H = refExchangeHash([]byte(in.ClientVersion), []byte(in.ServerVersion), in.ClientKexInit, in.ServerKexInit, out.HostKey, out.QC, out.QS, out.K)
	out.Signature = append(refString([]byte("ssh-ed25519")), refString(ed25519.Sign(host, out.H))...)
	out.Reply = []byte{31}
	for _, f := range [][]byte{out.HostKey, out.QS, out.Signature} {
		out.Reply = append(out.Reply, refString(f)...)
	}
	out.Keys = map[string]Hex{}
	for letter, n := range kexKeyLengths {
		out.Keys[letter] = refDeriveKey(sha256.New, out.K, out.H, letter[0], out.H, n)
	}
	return out, nil
}

// kexVectorKey returns the first of a deterministic series of X25519
// private keys whose shared secret with peerPub satisfies ok.
func kexVectorKey(label string, peerPub []byte, ok func(shared []byte) bool) []byte {
	for i := 0; ; i++ {
		priv := sha256.Sum256([]byte(fmt.Sprintf("rsftp kex vector %s %d", label, i)))
		shared, err := curve25519.X25519(priv[:], peerPub)
		if err == nil && ok(shared) {
			return priv[:]
		}
	}
}

func kexTranscriptInputs(t *testing.T) []KexTranscript {
	bobPub, err := curve25519.X25519(mustHex(t, rfc7748Bob), curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	base := KexTranscript{
		ClientVersion: "SSH-2.0-rsftp_kat",
		ServerVersion: "SSH-2.0-OpenSSH_9.9",
		ClientKexInit: refKexInit(0x11, "mlkem768x25519-sha256,curve25519-sha256,curve25519-sha256@libssh.org,kex-strict-c-v00@openssh.com"),
		ServerKexInit: refKexInit(0x22, "mlkem768x25519-sha256,curve25519-sha256,curve25519-sha256@libssh.org,kex-strict-s-v00@openssh.com"),
		HostKeySeed:   mustHex(t, rfc8032Test1Seed),
		ServerX25519:  mustHex(t, rfc7748Bob),
	}
	var seed [64]byte
	var random [32]byte
	for i := range seed {
		seed[i] = byte(i)
	}
	for i := range random {
		random[i] = 0xa0 + byte(i)
	}

	v1 := base
	v1.Comment = "curve25519-sha256: RFC 7748 section 6.1 Alice (client) and Bob (server); K = mpint of the RFC 7748 shared secret"
	v1.Method = "curve25519-sha256"
	v1.ClientX25519 = mustHex(t, rfc7748Alice)

	v2 := base
	v2.Comment = "curve25519-sha256@libssh.org: client key chosen so the X25519 output starts with 0x00 0x0X (the mpint K drops the zero byte: 31 bytes)"
	v2.Method = "curve25519-sha256@libssh.org"
	v2.ClientX25519 = kexVectorKey("leading-zero", bobPub, func(s []byte) bool { return s[0] == 0 && s[1] < 0x80 })

	v3 := base
	v3.Comment = "curve25519-sha256: client key chosen so the X25519 output has its top bit set (the mpint K gains a 0x00 byte: 33 bytes)"
	v3.Method = "curve25519-sha256"
	v3.ClientX25519 = kexVectorKey("high-bit", bobPub, func(s []byte) bool { return s[0] >= 0x80 })

	v4 := base
	v4.Comment = "mlkem768x25519-sha256: ML-KEM-768 from seed 00..3f and encapsulation randomness a0..bf, X25519 RFC 7748 Alice (client) and Bob (server)"
	v4.Method = "mlkem768x25519-sha256"
	v4.ClientX25519 = mustHex(t, rfc7748Alice)
	v4.ClientMLKEMSeed = seed[:]
	v4.ServerMLKEMRandom = random[:]

	return []KexTranscript{v1, v2, v3, v4}
}

const kexTranscriptSource = "Not published. Computed by refTranscript in testvectors/kex_test.go " +
	"(encoding/binary, crypto/sha256, x/crypto/curve25519, crypto/ed25519, crypto/mlkem with " +
	"crypto/mlkem/mlkemtest for derandomized encapsulation; no rsftp code) from fixed inputs: " +
	"RFC 7748 section 6.1 X25519 keys, the RFC 8032 section 7.1 TEST 1 ed25519 key as host key, " +
	"hand-built KEXINIT payloads. Regenerate with go test ./testvectors -run TestKexTranscripts -update-kex."

func TestKexTranscripts(t *testing.T) {
	var want []KexTranscript
	for _, in := range kexTranscriptInputs(t) {
		v, err := refTranscript(in)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, v)
	}
	if *updateKex {
		b, err := json.MarshalIndent(File[KexTranscript]{Source: kexTranscriptSource, Vectors: want}, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(kexTranscriptFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := load[KexTranscript](kexTranscriptFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) != len(want) {
		t.Fatalf("%s holds %d vectors, the reference makes %d", kexTranscriptFile, len(f.Vectors), len(want))
	}
	for i, v := range f.Vectors {
		// The file must be what the reference computes.
		fb, _ := json.Marshal(v)
		wb, _ := json.Marshal(want[i])
		if !bytes.Equal(fb, wb) {
			t.Errorf("vector %d (%s) differs from the reference computation:\nfile %s\nref  %s", i, v.Method, fb, wb)
		}
		checkTranscriptShape(t, i, v)
		checkTranscriptWithKex(t, i, v)
	}
}

// checkTranscriptShape checks properties of each vector that do not
// depend on the reference code.
func checkTranscriptShape(t *testing.T, i int, v KexTranscript) {
	t.Helper()
	if !bytes.Equal(v.HostKeySeed, mustHex(t, rfc8032Test1Seed)) {
		t.Errorf("vector %d: host key is not RFC 8032 TEST 1", i)
	}
	// RFC 8032 TEST 1 public key.
	wantKS := append(refString([]byte("ssh-ed25519")), refString(mustHex(t, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"))...)
	if !bytes.Equal(v.HostKey, wantKS) {
		t.Errorf("vector %d: K_S is not the RFC 8032 TEST 1 public key", i)
	}
	switch v.Method {
	case "curve25519-sha256", "curve25519-sha256@libssh.org":
		if len(v.QC) != 32 || len(v.QS) != 32 {
			t.Errorf("vector %d: Q_C/Q_S of %d/%d bytes", i, len(v.QC), len(v.QS))
		}
		if n := int(binary.BigEndian.Uint32(v.K)); n != len(v.K)-4 {
			t.Errorf("vector %d: K length prefix %d for %d bytes", i, n, len(v.K)-4)
		}
		body := v.K[4:]
		switch {
		case v.X25519Shared[0] == 0:
			if len(body) >= 32 || body[0] == 0 {
				t.Errorf("vector %d: leading zero kept in K", i)
			}
		case v.X25519Shared[0] >= 0x80:
			if len(body) != 33 || body[0] != 0 || !bytes.Equal(body[1:], v.X25519Shared) {
				t.Errorf("vector %d: K = %x for a high-bit secret", i, v.K)
			}
		default:
			if !bytes.Equal(body, v.X25519Shared) {
				t.Errorf("vector %d: K = %x", i, v.K)
			}
		}
	case "mlkem768x25519-sha256":
		if len(v.QC) != 1184+32 || len(v.QS) != 1088+32 || len(v.K) != 4+32 {
			t.Errorf("vector %d: Q_C/Q_S/K of %d/%d/%d bytes", i, len(v.QC), len(v.QS), len(v.K))
		}
	}
	if v.Method == "curve25519-sha256" && bytes.Equal(v.ClientX25519, mustHex(t, rfc7748Alice)) {
		if !bytes.Equal(v.X25519Shared, mustHex(t, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")) {
			t.Errorf("vector %d: shared secret is not RFC 7748's", i)
		}
	}
}

// checkTranscriptWithKex runs the parts of package kex that its exported
// API lets a fixed transcript reach: host key parsing, signature
// verification and key derivation. (kex/kex_test.go runs the client's
// HandleReply on the same file with the fixed private keys.)
func checkTranscriptWithKex(t *testing.T, i int, v KexTranscript) {
	t.Helper()
	hk, err := kex.ParsePublicKey(v.HostKey)
	if err != nil {
		t.Fatalf("vector %d: %v", i, err)
	}
	if !bytes.Equal(hk.Marshal(), v.HostKey) {
		t.Errorf("vector %d: host key does not round-trip", i)
	}
	if err := hk.Verify(v.H, v.Signature); err != nil {
		t.Errorf("vector %d: %v", i, err)
	}
	bad := bytes.Clone(v.H)
	bad[0] ^= 1
	if hk.Verify(bad, v.Signature) == nil {
		t.Errorf("vector %d: signature verifies over a different H", i)
	}
	for letter, n := range kexKeyLengths {
		got := kex.DeriveKey(crypto.SHA256, v.K, v.H, letter[0], v.H, n)
		if !bytes.Equal(got, v.Keys[letter]) {
			t.Errorf("vector %d: DeriveKey %s = %x, want %x", i, letter, got, v.Keys[letter])
		}
	}
}
