package kex

// Fuzz targets for everything kex parses from a peer: the client's
// KEX_ECDH_INIT as the server parses it (parseKexInitMsg, then Server),
// the server's KEX_ECDH_REPLY as the client parses it (parseKexReply,
// then HandleReply), public key blobs (ParsePublicKey) and signature
// blobs (parseSignature, each key type's Verify, parseDERSignature).
//
// Each target has a structure-aware mode: the fuzzer supplies the fields
// and the target wraps them in valid SSH string and mpint framing, so
// mutations reach the checks behind the length fields. Where a parse
// accepts, the target checks invariants against independent code (the
// hand-written encoders and hash of the tests, the standard library's
// verifiers, x/crypto's X25519), and that what parses marshals back to
// the same bytes.
//
//	go test ./kex -run '^$' -fuzz '^FuzzParseKexInitMsg$' -fuzztime 60s

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/curve25519"
)

// Fixed client ephemeral keys, so that a committed reply stays a genuine
// reply for the fuzz client.
var (
	fuzzX25519Priv = bytes.Repeat([]byte{0x77}, 32)
	fuzzMLKEMSeed  = bytes.Repeat([]byte{0x3c}, mlkem.SeedSize)
	fuzzSignedData = []byte("data signed by the fuzz targets' test keys")
)

// fuzzMethods are the methods the targets' mode bits 0-1 pick, in a fixed
// order: the committed corpora (and fuzz/corpus's recMethodIndex) name
// them by index. The two sntrup761x25519 names share their code; one
// stands for both.
var fuzzMethods = []string{MLKEM768X25519SHA256, Curve25519SHA256, Curve25519SHA256LibSSH, SNTRUP761X25519SHA512}

type fuzzFixture struct {
	signers []Signer                // one of each testKeys(), same order
	clients map[string]ClientMethod // by method, fixed keys
}

var (
	fuzzFixOnce sync.Once
	fuzzFix     fuzzFixture
)

func fixture(t testing.TB) *fuzzFixture {
	fuzzFixOnce.Do(func() {
		for _, tk := range testKeys() {
			s, err := NewSigner(tk.priv)
			if err != nil {
				panic(err)
			}
			fuzzFix.signers = append(fuzzFix.signers, s)
		}
		fuzzFix.clients = map[string]ClientMethod{}
		for _, m := range SupportedMethods() {
			fuzzFix.clients[m] = fixedClient(t, m, fuzzX25519Priv, fuzzMLKEMSeed)
		}
	})
	return &fuzzFix
}

// qcLen and qsLen are the ephemeral share sizes of a method.
func qcLen(method string) int {
	switch {
	case method == MLKEM768X25519SHA256:
		return mlkem.EncapsulationKeySize768 + 32
	case isSntrup(method):
		return 1158 + 32
	}
	return 32
}

func qsLen(method string) int {
	switch {
	case method == MLKEM768X25519SHA256:
		return mlkem.CiphertextSize768 + 32
	case isSntrup(method):
		return 1039 + 32
	}
	return 32
}

// checkK checks the encoding of K: an mpint of at most 32 bytes of
// magnitude, not zero, for curve25519; a string of a SHA-256 for the
// hybrid.
func checkK(method string, k []byte) error {
	body, rest, ok := tReadString(k)
	if !ok || len(rest) != 0 {
		return fmt.Errorf("K %x is not one string", k)
	}
	if method == MLKEM768X25519SHA256 {
		if len(body) != 32 {
			return fmt.Errorf("hybrid K of %d bytes", len(body))
		}
		return nil
	}
	if isSntrup(method) {
		if len(body) != 64 {
			return fmt.Errorf("sntrup761x25519 K of %d bytes", len(body))
		}
		return nil
	}
	if len(body) == 0 || len(body) > 33 || (len(body) == 33 && body[0] != 0) {
		return fmt.Errorf("curve25519 K mpint of %d bytes", len(body))
	}
	if body[0] == 0 && (len(body) == 1 || body[1]&0x80 == 0) || body[0]&0x80 != 0 {
		return fmt.Errorf("curve25519 K mpint %x not canonical", body)
	}
	return nil
}

// stdVerify checks a signature blob over data with the standard library
// directly, sharing no code with Verify: the blob is split with the
// tests' own reader, ECDSA goes through VerifyASN1, RSA through
// VerifyPKCS1v15 with the hash the algorithm names.
func stdVerify(k PublicKey, data, blob []byte) error {
	algoB, rest, ok := tReadString(blob)
	if !ok {
		return errors.New("no algorithm")
	}
	raw, rest, ok := tReadString(rest)
	if !ok || len(rest) != 0 {
		return errors.New("malformed blob")
	}
	algo := string(algoB)
	switch pub := k.CryptoPublicKey().(type) {
	case ed25519.PublicKey:
		if algo != KeyAlgoED25519 || len(raw) != ed25519.SignatureSize || len(pub) != ed25519.PublicKeySize {
			return fmt.Errorf("ed25519: algo %q, %d-byte signature", algo, len(raw))
		}
		if !ed25519.Verify(pub, data, raw) {
			return errors.New("ed25519.Verify refuses it")
		}
	case *ecdsa.PublicKey:
		if algo != k.Type() {
			return fmt.Errorf("ecdsa: algo %q for a %s key", algo, k.Type())
		}
		rb, rest, ok1 := tReadString(raw)
		sb, rest, ok2 := tReadString(rest)
		if !ok1 || !ok2 || len(rest) != 0 || len(rb) > 0 && rb[0]&0x80 != 0 || len(sb) > 0 && sb[0]&0x80 != 0 {
			return errors.New("ecdsa: malformed r, s")
		}
		der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(rb), new(big.Int).SetBytes(sb)})
		if err != nil {
			return err
		}
		var d []byte
		switch pub.Curve {
		case elliptic.P256():
			h := sha256.Sum256(data)
			d = h[:]
		default:
			h := crypto.SHA384
			if pub.Curve == elliptic.P521() {
				h = crypto.SHA512
			}
			x := h.New()
			x.Write(data)
			d = x.Sum(nil)
		}
		if !ecdsa.VerifyASN1(pub, d, der) {
			return errors.New("ecdsa.VerifyASN1 refuses it")
		}
	case *rsa.PublicKey:
		var h crypto.Hash
		switch algo {
		case SigAlgoRSASHA256:
			h = crypto.SHA256
		case SigAlgoRSASHA512:
			h = crypto.SHA512
		default:
			return fmt.Errorf("rsa: algo %q", algo)
		}
		n := (pub.N.BitLen() + 7) / 8
		if len(raw) > n {
			return errors.New("rsa: signature longer than the modulus")
		}
		raw = append(make([]byte, n-len(raw)), raw...)
		x := h.New()
		x.Write(data)
		if err := rsa.VerifyPKCS1v15(pub, h, x.Sum(nil), raw); err != nil {
			return err
		}
	default:
		return fmt.Errorf("key of type %T", pub)
	}
	return nil
}

// checkKeyInvariants checks a parsed public key against its blob.
func checkKeyInvariants(k PublicKey, blob []byte) error {
	switch k := k.(type) {
	case *Certificate:
		return checkCertInvariants(k, blob) // cert_fuzz_test.go
	case SKPublicKey:
		return checkSKInvariants(k, blob)
	}
	if !bytes.Equal(k.Marshal(), blob) {
		return fmt.Errorf("%s key marshals to %x, parsed from %x", k.Type(), k.Marshal(), blob)
	}
	typ, _, _ := tReadString(blob)
	if string(typ) != k.Type() {
		return fmt.Errorf("blob names %q, key is %s", typ, k.Type())
	}
	switch pub := k.CryptoPublicKey().(type) {
	case ed25519.PublicKey:
		if k.Type() != KeyAlgoED25519 || len(pub) != ed25519.PublicKeySize {
			return fmt.Errorf("ed25519 key of %d bytes typed %s", len(pub), k.Type())
		}
	case *ecdsa.PublicKey:
		want := map[string]elliptic.Curve{KeyAlgoECDSA256: elliptic.P256(), KeyAlgoECDSA384: elliptic.P384(), KeyAlgoECDSA521: elliptic.P521()}[k.Type()]
		if want == nil || pub.Curve != want {
			return fmt.Errorf("%s key on curve %v", k.Type(), pub.Curve)
		}
		if _, err := pub.ECDH(); err != nil {
			return fmt.Errorf("%s key not on its curve: %v", k.Type(), err)
		}
	case *rsa.PublicKey:
		if k.Type() != KeyAlgoRSA || pub.N.BitLen() < minRSABits || pub.N.BitLen() > maxRSABits ||
			pub.E < 3 || pub.E&1 == 0 {
			return fmt.Errorf("rsa key of %d bits, e %d", pub.N.BitLen(), pub.E)
		}
	default:
		return fmt.Errorf("key of type %T", pub)
	}
	again, err := NewPublicKey(k.CryptoPublicKey())
	if err != nil || !bytes.Equal(again.Marshal(), blob) {
		return fmt.Errorf("NewPublicKey of the parsed %s key: %v", k.Type(), err)
	}
	if fp := FingerprintSHA256(k); !strings.HasPrefix(fp, "SHA256:") || len(fp) != len("SHA256:")+43 {
		return fmt.Errorf("fingerprint %q", fp)
	}
	if ak := MarshalAuthorizedKey(k); ak != k.Type()+" "+base64.StdEncoding.EncodeToString(blob) {
		return fmt.Errorf("authorized key line %q", ak)
	}
	algos := SignatureAlgorithmsFor(k.Type())
	if len(algos) == 0 {
		return fmt.Errorf("no signature algorithms for %s", k.Type())
	}
	for _, a := range algos {
		if KeyTypeForSignatureAlgorithm(a) != k.Type() {
			return fmt.Errorf("%s maps to %s, not %s", a, KeyTypeForSignatureAlgorithm(a), k.Type())
		}
	}
	return nil
}

// FuzzParseKexInitMsg is the server's side of the exchange: the client's
// SSH_MSG_KEX_ECDH_INIT (byte 30 || string Q_C) through parseKexInitMsg
// and Server, for each method and each host key kind. mode: bits 0-1 the
// method, bits 2-4 the host key, bits 5-6 its signature algorithm, bit 7
// set means data is Q_C alone and the target frames it (the fuzzer then
// never has to get the length right).
func FuzzParseKexInitMsg(f *testing.F) {
	fx := fixture(f)
	for mi, method := range fuzzMethods {
		init := fx.clients[method].InitMessage()
		for ki := range fx.signers {
			f.Add(uint8(mi|ki<<2), init)
		}
		f.Add(uint8(mi|0x80), init[5:])
		f.Add(uint8(mi|0x80), init[5:len(init)-1])              // a byte short
		f.Add(uint8(mi|0x80), append(bytes.Clone(init[5:]), 9)) // a byte long
		f.Add(uint8(mi), append(bytes.Clone(init), 0))          // trailing byte
	}
	for _, p := range lowOrderX25519 {
		f.Add(uint8(0x80), mustHexT(f, p))
	}
	f.Add(uint8(0), []byte{30, 0xff, 0xff, 0xff, 0xff})
	f.Add(uint8(0), []byte{31, 0, 0, 0, 0})
	m := testMagics()
	f.Fuzz(func(t *testing.T, mode uint8, data []byte) {
		fx := fixture(t)
		methods := fuzzMethods
		method := methods[int(mode&3)%len(methods)]
		signer := fx.signers[int(mode>>2&7)%len(fx.signers)]
		algos := signer.Algorithms()
		algo := algos[int(mode>>5&3)%len(algos)]
		init := data
		if mode&0x80 != 0 {
			init = tCat([]byte{30}, tString(data))
		}

		qc, perr := parseKexInitMsg(init)
		if perr == nil && !bytes.Equal(tCat([]byte{30}, tString(qc)), init) {
			t.Fatalf("parseKexInitMsg(%x) = %x, which does not frame back", init, qc)
		}
		if mode&0x80 != 0 && (perr != nil || !bytes.Equal(qc, data)) {
			t.Fatalf("a framed Q_C does not parse back: %v", perr)
		}

		reply, res, err := Server(method, rand.Reader, init, m, signer, algo)
		if err != nil {
			if reply != nil || res != nil {
				t.Fatalf("Server failed (%v) but returned a reply", err)
			}
			return
		}
		if perr != nil {
			t.Fatalf("Server accepted an init parseKexInitMsg refuses (%v)", perr)
		}
		if len(qc) != qcLen(method) {
			t.Fatalf("%s: Server accepted a %d-byte Q_C", method, len(qc))
		}
		rep, err := parseKexReply(reply)
		if err != nil {
			t.Fatalf("our own reply does not parse: %v", err)
		}
		if !bytes.Equal(tCat([]byte{31}, tString(rep.HostKey), tString(rep.Q), tString(rep.Signature)), reply) {
			t.Fatal("reply does not frame back")
		}
		if !bytes.Equal(rep.HostKey, signer.PublicKey().Marshal()) || !bytes.Equal(res.HostKey.Marshal(), rep.HostKey) {
			t.Fatal("reply carries another host key")
		}
		if len(rep.Q) != qsLen(method) {
			t.Fatalf("%s: Q_S of %d bytes", method, len(rep.Q))
		}
		wantHash := crypto.SHA256
		if isSntrup(method) {
			wantHash = crypto.SHA512
		}
		if !bytes.Equal(rep.Signature, res.Signature) || res.Hash != wantHash {
			t.Fatal("result does not match the reply")
		}
		if err := checkK(method, res.K); err != nil {
			t.Fatal(err)
		}
		if h := refExchangeHash(method, m, rep.HostKey, qc, rep.Q, res.K); !bytes.Equal(h, res.H) {
			t.Fatalf("H = %x, reference %x", res.H, h)
		}
		if a, _, _ := tReadString(rep.Signature); string(a) != algo {
			t.Fatalf("signed with %q, asked for %s", a, algo)
		}
		if err := stdVerify(signer.PublicKey(), res.H, rep.Signature); err != nil {
			t.Fatalf("reply signature (%s): %v", algo, err)
		}
		// Round trip: the fixed client whose init this is reaches the
		// same K and H from the reply.
		for cm, c := range fx.clients {
			if qcLen(cm) != qcLen(method) || !bytes.Equal(c.InitMessage(), init) {
				continue
			}
			cres, err := c.HandleReply(reply, m, algo)
			if err != nil {
				t.Fatalf("%s client refuses the %s server's reply: %v", cm, method, err)
			}
			if !bytes.Equal(cres.K, res.K) || !bytes.Equal(cres.H, res.H) {
				t.Fatal("client and server disagree on K or H")
			}
		}
	})
}

// replyAlgos are the host key signature algorithms FuzzParseKexReply
// negotiates, including two that must never verify.
var replyAlgos = []string{
	KeyAlgoED25519, KeyAlgoECDSA256, KeyAlgoECDSA384, KeyAlgoECDSA521,
	SigAlgoRSASHA256, SigAlgoRSASHA512, KeyAlgoRSA, "ssh-dss",
}

// FuzzParseKexReply is the client's side: the server's
// SSH_MSG_KEX_ECDH_REPLY (byte 31 || string K_S || string Q_S || string
// signature) through parseKexReply and HandleReply of a client with fixed
// keys. mode: bits 0-1 the method, bits 2-4 the negotiated signature
// algorithm (replyAlgos), bit 7 set means hostKey is the whole payload;
// otherwise the target frames hostKey, q and sig. The seeds are genuine
// replies for every method and host key, which the client accepts; an
// accepted reply must satisfy every check an honest one does, recomputed
// independently (x/crypto's X25519, the reference exchange hash, the
// standard library's verifiers).
func FuzzParseKexReply(f *testing.F) {
	fx := fixture(f)
	m := testMagics()
	for mi, method := range fuzzMethods {
		init := fx.clients[method].InitMessage()
		for _, s := range fx.signers {
			for _, algo := range s.Algorithms() {
				ai := 0
				for i, a := range replyAlgos {
					if a == algo {
						ai = i
					}
				}
				reply, _, err := Server(method, rand.Reader, init, m, s, algo)
				if err != nil {
					f.Fatal(err)
				}
				rep, _ := parseKexReply(reply)
				f.Add(uint8(mi|ai<<2), rep.HostKey, rep.Q, rep.Signature)
				if ai == 0 {
					f.Add(uint8(mi|0x80), reply, []byte(nil), []byte(nil))
					f.Add(uint8(mi), rep.HostKey, rep.Q[:len(rep.Q)-1], rep.Signature)
					f.Add(uint8(mi), rep.HostKey, append(bytes.Clone(rep.Q), 0), rep.Signature)
					f.Add(uint8(mi), rep.HostKey, rep.Q, rep.Signature[:len(rep.Signature)-1])
					f.Add(uint8(mi|6<<2), rep.HostKey, rep.Q, rep.Signature) // ssh-rsa negotiated
				}
			}
		}
	}
	for _, p := range lowOrderX25519 {
		f.Add(uint8(0), ed25519Blob(make([]byte, 32)), mustHexT(f, p), sigBlob(KeyAlgoED25519, make([]byte, 64)))
	}
	f.Fuzz(func(t *testing.T, mode uint8, hostKey, q, sig []byte) {
		fx := fixture(t)
		methods := fuzzMethods
		method := methods[int(mode&3)%len(methods)]
		algo := replyAlgos[mode>>2&7]
		reply := hostKey
		if mode&0x80 == 0 {
			reply = tCat([]byte{31}, tString(hostKey), tString(q), tString(sig))
		}
		rep, perr := parseKexReply(reply)
		if perr == nil && !bytes.Equal(tCat([]byte{31}, tString(rep.HostKey), tString(rep.Q), tString(rep.Signature)), reply) {
			t.Fatal("parsed reply does not frame back")
		}
		if mode&0x80 == 0 && (perr != nil || !bytes.Equal(rep.HostKey, hostKey) || !bytes.Equal(rep.Q, q) || !bytes.Equal(rep.Signature, sig)) {
			t.Fatalf("a framed reply does not parse back: %v", perr)
		}

		c := fx.clients[method]
		res, err := c.HandleReply(reply, m, algo)
		if err != nil {
			if res != nil {
				t.Fatalf("HandleReply failed (%v) but returned a result", err)
			}
			return
		}
		if perr != nil {
			t.Fatalf("HandleReply accepted a reply parseKexReply refuses (%v)", perr)
		}
		if algo == KeyAlgoRSA || algo == "ssh-dss" {
			t.Fatalf("accepted a reply with %s negotiated", algo)
		}
		if len(rep.Q) != qsLen(method) {
			t.Fatalf("%s: accepted a %d-byte Q_S", method, len(rep.Q))
		}
		if res.HostKey.Type() != KeyTypeForSignatureAlgorithm(algo) {
			t.Fatalf("%s host key accepted for %s", res.HostKey.Type(), algo)
		}
		if err := checkKeyInvariants(res.HostKey, rep.HostKey); err != nil {
			t.Fatal(err)
		}
		if a, _, _ := tReadString(rep.Signature); string(a) != algo {
			t.Fatalf("accepted a %q signature for %s", a, algo)
		}
		// K from x/crypto's X25519 (and ML-KEM decapsulation for the hybrid).
		var k []byte
		switch method {
		case MLKEM768X25519SHA256:
			dk, err := mlkem.NewDecapsulationKey768(fuzzMLKEMSeed)
			if err != nil {
				t.Fatal(err)
			}
			kem, err := dk.Decapsulate(rep.Q[:mlkem.CiphertextSize768])
			if err != nil {
				t.Fatal(err)
			}
			ec, err := curve25519.X25519(fuzzX25519Priv, rep.Q[mlkem.CiphertextSize768:])
			if err != nil {
				t.Fatalf("accepted a low-order X25519 share: %v", err)
			}
			h := sha256.Sum256(tCat(kem, ec))
			k = tString(h[:])
		case SNTRUP761X25519SHA512, SNTRUP761X25519SHA512OpenSSH:
			// The fixed key's own decapsulation: there is no other
			// sntrup761 to check with here (interop tests check it
			// against OpenSSH).
			kem, err := sntrupKeyFromSeed(t, fuzzMLKEMSeed).Decapsulate(rep.Q[:1039])
			if err != nil {
				t.Fatal(err)
			}
			ec, err := curve25519.X25519(fuzzX25519Priv, rep.Q[1039:])
			if err != nil {
				t.Fatalf("accepted a low-order X25519 share: %v", err)
			}
			h := sha512.Sum512(tCat(kem, ec))
			k = tString(h[:])
		default:
			ec, err := curve25519.X25519(fuzzX25519Priv, rep.Q)
			if err != nil {
				t.Fatalf("accepted a low-order X25519 share: %v", err)
			}
			k = tMPInt(ec)
		}
		if !bytes.Equal(k, res.K) {
			t.Fatalf("K = %x, reference %x", res.K, k)
		}
		qcBody, _, _ := tReadString(c.InitMessage()[1:])
		if h := refExchangeHash(method, m, rep.HostKey, qcBody, rep.Q, res.K); !bytes.Equal(h, res.H) {
			t.Fatalf("H = %x, reference %x", res.H, h)
		}
		if err := stdVerify(res.HostKey, res.H, rep.Signature); err != nil {
			t.Fatalf("accepted a host key signature the standard library refuses: %v", err)
		}
		if !bytes.Equal(res.Signature, rep.Signature) {
			t.Fatal("result carries another signature")
		}
	})
}

// pubKeyTypes are the key formats, in mode order for FuzzParsePublicKey.
var pubKeyTypes = []string{KeyAlgoED25519, KeyAlgoECDSA256, KeyAlgoECDSA384, KeyAlgoECDSA521, KeyAlgoRSA}

// FuzzParsePublicKey parses public key blobs of every format
// (ParsePublicKey). mode bits 0-2: 0 ssh-ed25519 (a is the key), 1-3
// ecdsa-sha2-nistp256/384/521 (a is the point; bit 6 set: b is the curve
// name), 4 ssh-rsa with a and b as e and n in mpint form, 5 the same with
// a and b taken as raw mpint bodies, 6-7 a is the whole blob. Bit 5 set
// appends b as trailing bytes. What parses must marshal back to the blob,
// have a sane size and point, survive NewPublicKey, and agree with the
// standard library on any signature it verifies.
func FuzzParsePublicKey(f *testing.F) {
	fx := fixture(f)
	for _, s := range fx.signers {
		blob := s.PublicKey().Marshal()
		f.Add(uint8(6), blob, []byte(nil))
		sig, err := s.Sign(rand.Reader, fuzzSignedData, "")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(7), blob, sig)
		_, rest, _ := tReadString(blob)
		switch s.PublicKey().Type() {
		case KeyAlgoED25519:
			key, _, _ := tReadString(rest)
			f.Add(uint8(0), key, sig)
			f.Add(uint8(0), key[:31], sig)
		case KeyAlgoRSA:
			e, rest, _ := tReadString(rest)
			n, _, _ := tReadString(rest)
			f.Add(uint8(5), e, n)
			f.Add(uint8(4), []byte{3}, n)
			f.Add(uint8(4), []byte{1, 0, 1}, n[:64])
		default:
			_, rest, _ := tReadString(rest)
			pt, _, _ := tReadString(rest)
			ti := 1
			for i, tn := range pubKeyTypes {
				if tn == s.PublicKey().Type() {
					ti = i
				}
			}
			f.Add(uint8(ti), pt, []byte(nil))
			f.Add(uint8(ti|0x40), pt, []byte("nistp999"))
			c := bytes.Clone(pt)
			c[0] = 2 // compressed form
			f.Add(uint8(ti), c[:1+(len(pt)-1)/2], []byte(nil))
		}
	}
	f.Add(uint8(0), append([]byte{1}, make([]byte, 31)...), append(sigBlob(KeyAlgoED25519, append([]byte{1}, make([]byte, 63)...)), 0)) // small-order key
	f.Fuzz(func(t *testing.T, mode uint8, a, b []byte) {
		var blob []byte
		switch kind := mode & 7; kind {
		case 0:
			blob = tCat(tString([]byte(KeyAlgoED25519)), tString(a))
		case 1, 2, 3:
			typ := pubKeyTypes[kind]
			curve := []byte(strings.TrimPrefix(typ, "ecdsa-sha2-"))
			if mode&0x40 != 0 {
				curve = b
			}
			blob = tCat(tString([]byte(typ)), tString(curve), tString(a))
		case 4:
			blob = tCat(tString([]byte(KeyAlgoRSA)), tMPInt(a), tMPInt(b))
		case 5:
			blob = tCat(tString([]byte(KeyAlgoRSA)), tString(a), tString(b))
		default:
			blob = a
		}
		if mode&0x20 != 0 && mode&7 < 4 {
			blob = tCat(blob, b)
		}
		k, err := ParsePublicKey(blob)
		if err != nil {
			if k != nil {
				t.Fatalf("ParsePublicKey failed (%v) but returned a key", err)
			}
			return
		}
		if err := checkKeyInvariants(k, blob); err != nil {
			t.Fatal(err)
		}
		// b as a signature over fixed data: whatever Verify accepts,
		// the standard library must accept too (with a certificate's
		// key; security keys sign another format, FuzzSKSignature).
		vk := k
		if c, ok := k.(*Certificate); ok {
			vk = c.Key
		}
		if _, sk := vk.(SKPublicKey); !sk && k.Verify(fuzzSignedData, b) == nil {
			if err := stdVerify(vk, fuzzSignedData, b); err != nil {
				t.Fatalf("%s: Verify accepts a signature the standard library refuses: %v", k.Type(), err)
			}
		}
	})
}

func mustASN1(t *testing.T, v any) []byte {
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sigAlgos are the signature algorithm names FuzzParseSignature puts in
// front of the raw signature; index 7 means the fuzzer's own name.
var sigAlgos = []string{
	KeyAlgoED25519, KeyAlgoECDSA256, KeyAlgoECDSA384, KeyAlgoECDSA521,
	SigAlgoRSASHA256, SigAlgoRSASHA512, KeyAlgoRSA,
}

// FuzzParseSignature verifies signature blobs (parseSignature, then each
// key type's Verify) with one fixed key of every kind over fixed data.
// mode: bits 0-2 the key (testKeys order), bits 3-5 the algorithm name
// (sigAlgos, 7: name), bit 6 for ECDSA keys: raw is split in two and
// framed as mpints r and s; bit 7: raw is the whole blob. When raw is
// not the whole blob, the key also signs raw and must verify that
// signature (a marshal/verify round trip). raw also goes through
// parseDERSignature, which must accept any strict DER ECDSA-Sig-Value
// (what encoding/asn1 reads and marshals back to the same bytes) with the
// values encoding/asn1 reads.
func FuzzParseSignature(f *testing.F) {
	fx := fixture(f)
	for ki, s := range fx.signers {
		for _, algo := range s.Algorithms() {
			ai := 0
			for i, a := range sigAlgos {
				if a == algo {
					ai = i
				}
			}
			sig, err := s.Sign(rand.Reader, fuzzSignedData, algo)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(ki|0x80), "", sig)
			_, rest, _ := tReadString(sig)
			raw, _, _ := tReadString(rest)
			f.Add(uint8(ki|ai<<3), "", raw)
			f.Add(uint8(ki|7<<3), algo+"-cert-v01@openssh.com", raw)
			if strings.HasPrefix(algo, "ecdsa") {
				r, rest, _ := tReadString(raw)
				ss, _, _ := tReadString(rest)
				f.Add(uint8(ki|ai<<3|0x40), "", tCat(r, ss))
				der, _ := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(r), new(big.Int).SetBytes(ss)})
				f.Add(uint8(ki|ai<<3), "", der)
			}
			if algo == SigAlgoRSASHA256 {
				f.Add(uint8(ki|6<<3), "", raw)      // ssh-rsa (SHA-1) label
				f.Add(uint8(ki|ai<<3), "", raw[1:]) // leading byte stripped
			}
		}
	}
	f.Fuzz(func(t *testing.T, mode uint8, name string, raw []byte) {
		fx := fixture(t)
		s := fx.signers[int(mode&7)%len(fx.signers)]
		k := s.PublicKey()
		algo := name
		if i := int(mode >> 3 & 7); i < len(sigAlgos) {
			algo = sigAlgos[i]
		}
		var blob []byte
		switch {
		case mode&0x80 != 0:
			blob = raw
		case mode&0x40 != 0 && strings.HasPrefix(k.Type(), "ecdsa"):
			h := len(raw) / 2
			blob = tCat(tString([]byte(algo)), tString(tCat(tMPInt(raw[:h]), tMPInt(raw[h:]))))
		default:
			blob = tCat(tString([]byte(algo)), tString(raw))
		}

		if pa, praw, err := parseSignature(blob, algo); err == nil {
			if pa != algo || !bytes.Equal(tCat(tString([]byte(pa)), tString(praw)), blob) {
				t.Fatal("parseSignature result does not frame back")
			}
		} else if mode&0x80 == 0 {
			t.Fatalf("a framed signature does not split: %v", err)
		}

		if err := k.Verify(fuzzSignedData, blob); err == nil {
			a, _, _ := tReadString(blob)
			if KeyTypeForSignatureAlgorithm(string(a)) != k.Type() || string(a) == KeyAlgoRSA {
				t.Fatalf("%s key verified a %q signature", k.Type(), a)
			}
			if err := stdVerify(k, fuzzSignedData, blob); err != nil {
				t.Fatalf("%s: Verify accepts a signature the standard library refuses: %v", k.Type(), err)
			}
		}

		if r, s, err := parseDERSignature(raw); err == nil && (r.Sign() < 0 || s.Sign() < 0) {
			t.Fatalf("parseDERSignature gave negative values %v, %v", r, s)
		}
		// encoding/asn1 tolerates trailing elements inside a SEQUENCE:
		// strict DER is what marshals back to the same bytes.
		var v struct{ R, S *big.Int }
		if rest, err := asn1.Unmarshal(raw, &v); err == nil && len(rest) == 0 && v.R.Sign() >= 0 && v.S.Sign() >= 0 &&
			bytes.Equal(mustASN1(t, v), raw) {
			r, s, err := parseDERSignature(raw)
			if err != nil || r.Cmp(v.R) != 0 || s.Cmp(v.S) != 0 {
				t.Fatalf("strict DER %x: parseDERSignature gives %v, %v, %v; asn1 %v, %v", raw, r, s, err, v.R, v.S)
			}
		}

		// Round trip: what the key signs, it verifies.
		if mode&0x80 == 0 && KeyTypeForSignatureAlgorithm(algo) == k.Type() && algo != KeyAlgoRSA {
			sig, err := s.Sign(rand.Reader, raw, algo)
			if err != nil {
				t.Fatalf("signing with %s: %v", algo, err)
			}
			if err := k.Verify(raw, sig); err != nil {
				t.Fatalf("%s signature does not verify: %v", algo, err)
			}
			if err := stdVerify(k, raw, sig); err != nil {
				t.Fatalf("%s signature refused by the standard library: %v", algo, err)
			}
		}
	})
}
