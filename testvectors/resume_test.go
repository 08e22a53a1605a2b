package testvectors

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/rsftp/rsftp/resume"
)

const resumeFile = "data/resume-v00.json"

var updateResume = flag.Bool("update-resume", false, "rewrite "+resumeFile+" from the reference computation in resume_test.go")

// resumeVector is one set of inputs and outputs of
// docs/PROTOCOL.resume.md sections 4.1 and 6.
type resumeVector struct {
	Comment string `json:"comment"`
	// KexVector, if set, is the index in data/kex-transcripts.json of the
	// first connection's key exchange: K and H are its k and h (and KRaw
	// its X25519 output, for the curve25519 methods). NewKexVector is
	// the transcript whose h is new_H (the new connection's session
	// identifier). Vectors without links use made-up H and new_H.
	KexVector      *int   `json:"kex_vector,omitempty"`
	NewKexVector   *int   `json:"new_kex_vector,omitempty"`
	KRaw           Hex    `json:"k_raw,omitempty"` // X25519 output before its mpint encoding
	K              Hex    `json:"K"`               // shared secret as encoded in the exchange hash
	H              Hex    `json:"H"`               // first exchange hash = session id
	NewH           Hex    `json:"new_H"`           // session id of the resuming connection
	Handle         Hex    `json:"handle"`          // session handle
	HoldSeconds    uint32 `json:"hold_seconds"`    // input: the hold time in RESUME_ACCEPT
	ClientReceived uint64 `json:"client_received"`
	ServerReceived uint64 `json:"server_received"`
	RK             Hex    `json:"RK"`
	RequestMAC     Hex    `json:"request_mac"`
	AcceptMAC      Hex    `json:"accept_mac"`
	RequestMsg     Hex    `json:"request_msg"` // the whole RESUME_REQUEST payload
	AcceptMsg      Hex    `json:"accept_msg"`  // the whole RESUME_ACCEPT payload, with hold_seconds
}

func refResume(v *resumeVector) {
	h := sha256.New()
	h.Write(v.K)
	h.Write(v.H)
	h.Write([]byte("rsftp-resume-v00"))
	h.Write(v.H)
	v.RK = h.Sum(nil)

	m := hmac.New(sha256.New, v.RK)
	m.Write(refString([]byte("rsftp-resume-request-v00")))
	m.Write(refString(v.NewH))
	m.Write(refString(v.Handle))
	m.Write(binary.BigEndian.AppendUint64(nil, v.ClientReceived))
	v.RequestMAC = m.Sum(nil)

	m = hmac.New(sha256.New, v.RK)
	m.Write(refString([]byte("rsftp-resume-accept-v00")))
	m.Write(refString(v.NewH))
	m.Write(refString(v.Handle))
	m.Write(binary.BigEndian.AppendUint64(nil, v.ServerReceived))
	m.Write(binary.BigEndian.AppendUint64(nil, v.ClientReceived))
	v.AcceptMAC = m.Sum(nil)

	req := []byte{201}
	req = append(req, refString(v.Handle)...)
	req = binary.BigEndian.AppendUint64(req, v.ClientReceived)
	v.RequestMsg = append(req, refString(v.RequestMAC)...)
	acc := []byte{202}
	acc = binary.BigEndian.AppendUint64(acc, v.ServerReceived)
	acc = binary.BigEndian.AppendUint32(acc, v.HoldSeconds)
	v.AcceptMsg = append(acc, refString(v.AcceptMAC)...)
}

func hexOf(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// resumeInputs are the fixed inputs of data/resume-v00.json. The first
// three use made-up exchange hashes; the others take K and H from the
// key exchange transcripts of data/kex-transcripts.json (which
// TestKexTranscripts pins), so that an implementer can run one transcript
// end to end: kex, then RK, then the MACs.
func resumeInputs(t *testing.T) []resumeVector {
	seq := func(n int, start byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = start + byte(i)
		}
		return b
	}
	kf, err := load[KexTranscript](kexTranscriptFile)
	if err != nil {
		t.Fatal(err)
	}
	linked := func(first, second int, v resumeVector) resumeVector {
		if first >= len(kf.Vectors) || second >= len(kf.Vectors) {
			t.Fatalf("kex transcript %d or %d missing", first, second)
		}
		k1, k2 := kf.Vectors[first], kf.Vectors[second]
		v.KexVector, v.NewKexVector = &first, &second
		v.K, v.H, v.NewH = k1.K, k1.H, k2.H
		if k1.Method != "mlkem768x25519-sha256" {
			v.KRaw = k1.X25519Shared
		}
		return v
	}
	return []resumeVector{
		{
			Comment: "curve25519-sha256: K is the mpint of RFC 7748 section 6.1's shared secret; counts zero (resume before anything was exchanged)",
			K:       append([]byte{0, 0, 0, 0x20}, hexOf("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")...),
			H:       seq(32, 0x10), NewH: seq(32, 0x80), Handle: seq(32, 0x40), HoldSeconds: 3600,
		},
		{
			Comment: "counts past 2^32, a 16-byte handle (the minimum); K is an mpint with a 0x00 byte before a magnitude whose top bit is set",
			K:       append([]byte{0, 0, 0, 0x21, 0}, bytes.Repeat([]byte{0xff}, 32)...),
			H:       seq(32, 0xa0), NewH: seq(32, 0x01), Handle: seq(16, 0x70), HoldSeconds: 3600,
			ClientReceived: 1<<32 + 17, ServerReceived: 1<<40 + 5,
		},
		{
			Comment: "mlkem768x25519-sha256: K is a string of 32 bytes; a 64-byte handle (the maximum)",
			K:       append([]byte{0, 0, 0, 0x20}, seq(32, 0x33)...),
			H:       seq(32, 0x55), NewH: seq(32, 0x66), Handle: seq(64, 0x00), HoldSeconds: 3600,
			ClientReceived: 123456, ServerReceived: 654321,
		},
		linked(1, 0, resumeVector{
			Comment: "first connection: kex transcript 1 (curve25519-sha256@libssh.org), whose X25519 output k_raw starts with a zero byte: K is the mpint of 31 bytes without it (length 0x1f), and RK hashes that encoding, not the 32 raw bytes; new connection: kex transcript 0; hold time 1 s (the least a resumable session announces)",
			Handle:  seq(32, 0xc0), HoldSeconds: 1,
			ClientReceived: 7, ServerReceived: 5,
		}),
		linked(2, 3, resumeVector{
			Comment: "first connection: kex transcript 2 (curve25519-sha256), whose X25519 output has its top bit set: K is the mpint of 33 bytes with a leading 0x00; new connection: kex transcript 3 (a different method on the new connection: RK keeps the first connection's); hold time 86400 s",
			Handle:  seq(32, 0x20), HoldSeconds: 86400,
			ClientReceived: 300, ServerReceived: 1 << 20,
		}),
		linked(3, 1, resumeVector{
			Comment: "first connection: kex transcript 3 (mlkem768x25519-sha256, K a string); new connection: kex transcript 1; hold time 2^32-1 s",
			Handle:  seq(48, 0x90), HoldSeconds: 1<<32 - 1,
			ClientReceived: 0, ServerReceived: 42,
		}),
	}
}

const resumeSource = "Not published. Computed by refResume in testvectors/resume_test.go (crypto/sha256, crypto/hmac, encoding/binary; no rsftp code) " +
	"from fixed inputs, after docs/PROTOCOL.resume.md sections 3, 4.1 and 6; kex_vector and new_kex_vector name the transcripts of data/kex-transcripts.json " +
	"whose k and h (first connection) and h (new connection) are used. Regenerate with go test ./testvectors -run TestResumeVectors -update-resume."

func TestResumeVectors(t *testing.T) {
	want := resumeInputs(t)
	for i := range want {
		refResume(&want[i])
	}
	if *updateResume {
		writeVectors(t, resumeFile, resumeSource, want)
	}
	f, err := load[resumeVector](resumeFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) != len(want) {
		t.Fatalf("%d vectors in the file, %d computed", len(f.Vectors), len(want))
	}
	kf, err := load[KexTranscript](kexTranscriptFile)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range f.Vectors {
		w := want[i]
		fb, _ := json.Marshal(v)
		wb, _ := json.Marshal(w)
		if !bytes.Equal(fb, wb) {
			t.Fatalf("vector %d: file and reference disagree:\nfile %s\nref  %s", i, fb, wb)
		}
		// The links: K and H are those of the named transcripts.
		if v.KexVector != nil {
			k1, k2 := kf.Vectors[*v.KexVector], kf.Vectors[*v.NewKexVector]
			if !bytes.Equal(v.K, k1.K) || !bytes.Equal(v.H, k1.H) || !bytes.Equal(v.NewH, k2.H) {
				t.Fatalf("vector %d: K, H or new_H is not that of kex transcripts %d and %d", i, *v.KexVector, *v.NewKexVector)
			}
			if v.KRaw != nil && !bytes.Equal(refMPInt(v.KRaw), v.K) {
				t.Fatalf("vector %d: K is not the mpint of k_raw", i)
			}
		}
		if v.KRaw != nil && v.KRaw[0] == 0 {
			// The trap the vector is for: hashing the raw bytes, or
			// an mpint that keeps the zero, gives another key.
			for _, wrongK := range [][]byte{v.KRaw, refString(v.KRaw)} {
				if wrong, _ := resume.DeriveKey(crypto.SHA256, wrongK, v.H); bytes.Equal(wrong, v.RK) {
					t.Fatalf("vector %d: RK does not depend on the encoding of K", i)
				}
			}
		}
		// The implementation against the file.
		rk, err := resume.DeriveKey(crypto.SHA256, v.K, v.H)
		if err != nil || !bytes.Equal(rk, v.RK) {
			t.Fatalf("vector %d: DeriveKey %x, want %x (%v)", i, rk, v.RK, err)
		}
		if got := resume.RequestMAC(rk, v.NewH, v.Handle, v.ClientReceived); !bytes.Equal(got, v.RequestMAC) {
			t.Fatalf("vector %d: RequestMAC %x, want %x", i, got, v.RequestMAC)
		}
		if got := resume.AcceptMAC(rk, v.NewH, v.Handle, v.ServerReceived, v.ClientReceived); !bytes.Equal(got, v.AcceptMAC) {
			t.Fatalf("vector %d: AcceptMAC %x, want %x", i, got, v.AcceptMAC)
		}
		req, err := resume.ParseRequest(v.RequestMsg)
		if err != nil || !resume.VerifyRequest(rk, v.NewH, req) || req.Received != v.ClientReceived {
			t.Fatalf("vector %d: request message does not parse and verify: %v", i, err)
		}
		if got := (&resume.Request{Handle: v.Handle, Received: v.ClientReceived, MAC: v.RequestMAC}).Marshal(); !bytes.Equal(got, v.RequestMsg) {
			t.Fatalf("vector %d: Request.Marshal %x, want %x", i, got, v.RequestMsg)
		}
		acc, err := resume.ParseAccept(v.AcceptMsg)
		if err != nil || !resume.VerifyAccept(rk, v.NewH, v.Handle, acc, v.ClientReceived) || acc.HoldSeconds != v.HoldSeconds {
			t.Fatalf("vector %d: accept message does not parse and verify: %v", i, err)
		}
		if got := (&resume.Accept{Received: v.ServerReceived, HoldSeconds: v.HoldSeconds, MAC: v.AcceptMAC}).Marshal(); !bytes.Equal(got, v.AcceptMsg) {
			t.Fatalf("vector %d: Accept.Marshal %x, want %x", i, got, v.AcceptMsg)
		}
		// The accept MAC does not cover the hold time (section 8 of
		// the document): another hold verifies all the same.
		other := *acc
		other.HoldSeconds ^= 1
		if !resume.VerifyAccept(rk, v.NewH, v.Handle, &other, v.ClientReceived) {
			t.Fatalf("vector %d: the accept MAC depends on the hold time; the document says it does not", i)
		}
		// Replay on another connection, or reflection of the request
		// as an answer, does not verify.
		if resume.VerifyRequest(rk, v.H, req) {
			t.Fatalf("vector %d: the request verifies under another session id", i)
		}
		if hmac.Equal(v.RequestMAC, resume.AcceptMAC(rk, v.NewH, v.Handle, v.ClientReceived, v.ClientReceived)) {
			t.Fatalf("vector %d: request and accept MACs coincide", i)
		}
	}
}

// writeVectors rewrites a data file from computed vectors.
func writeVectors[V any](t *testing.T, name, source string, vectors []V) {
	t.Helper()
	b, err := json.MarshalIndent(File[V]{Source: source, Vectors: vectors}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
