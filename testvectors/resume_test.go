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
// docs/PROTOCOL.resume.md sections 3 and 5.
type resumeVector struct {
	Comment        string `json:"comment"`
	K              Hex    `json:"K"`      // shared secret as encoded in the exchange hash
	H              Hex    `json:"H"`      // first exchange hash = session id
	NewH           Hex    `json:"new_H"`  // exchange hash of the resuming connection
	Handle         Hex    `json:"handle"` // session handle
	ClientReceived uint64 `json:"client_received"`
	ServerReceived uint64 `json:"server_received"`
	RK             Hex    `json:"RK"`
	RequestMAC     Hex    `json:"request_mac"`
	AcceptMAC      Hex    `json:"accept_mac"`
	RequestMsg     Hex    `json:"request_msg"` // the whole RESUME_REQUEST payload
	AcceptMsg      Hex    `json:"accept_msg"`  // RESUME_ACCEPT with hold time 3600
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
	acc = binary.BigEndian.AppendUint32(acc, 3600)
	v.AcceptMsg = append(acc, refString(v.AcceptMAC)...)
}

func hexOf(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func resumeInputs() []resumeVector {
	seq := func(n int, start byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = start + byte(i)
		}
		return b
	}
	return []resumeVector{
		{
			Comment: "curve25519-sha256: K is the mpint of RFC 7748 section 6.1's shared secret; counts zero (resume before anything was exchanged)",
			K:       append([]byte{0, 0, 0, 0x20}, hexOf("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")...),
			H:       seq(32, 0x10), NewH: seq(32, 0x80), Handle: seq(32, 0x40),
		},
		{
			Comment: "counts past 2^32, a 16-byte handle (the minimum)",
			K:       append([]byte{0, 0, 0, 0x21, 0}, bytes.Repeat([]byte{0xff}, 32)...),
			H:       seq(32, 0xa0), NewH: seq(32, 0x01), Handle: seq(16, 0x70),
			ClientReceived: 1<<32 + 17, ServerReceived: 1<<40 + 5,
		},
		{
			Comment: "mlkem768x25519-sha256: K is a string of 32 bytes; a 64-byte handle (the maximum)",
			K:       append([]byte{0, 0, 0, 0x20}, seq(32, 0x33)...),
			H:       seq(32, 0x55), NewH: seq(32, 0x66), Handle: seq(64, 0x00),
			ClientReceived: 123456, ServerReceived: 654321,
		},
	}
}

func TestResumeVectors(t *testing.T) {
	want := resumeInputs()
	for i := range want {
		refResume(&want[i])
	}
	if *updateResume {
		f := File[resumeVector]{
			Source:  "Not published. Computed by refResume in testvectors/resume_test.go (crypto/sha256, crypto/hmac, encoding/binary; no rsftp code) from fixed inputs, after docs/PROTOCOL.resume.md sections 2, 3 and 5. Regenerate with go test ./testvectors -run TestResumeVectors -update-resume.",
			Vectors: want,
		}
		b, _ := json.MarshalIndent(f, "", "  ")
		if err := os.WriteFile(resumeFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := load[resumeVector](resumeFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) != len(want) {
		t.Fatalf("%d vectors in the file, %d computed", len(f.Vectors), len(want))
	}
	for i, v := range f.Vectors {
		w := want[i]
		if !bytes.Equal(v.RK, w.RK) || !bytes.Equal(v.RequestMAC, w.RequestMAC) || !bytes.Equal(v.AcceptMAC, w.AcceptMAC) ||
			!bytes.Equal(v.RequestMsg, w.RequestMsg) || !bytes.Equal(v.AcceptMsg, w.AcceptMsg) {
			t.Fatalf("vector %d: file and reference disagree", i)
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
		if err != nil || !resume.VerifyAccept(rk, v.NewH, v.Handle, acc, v.ClientReceived) || acc.HoldSeconds != 3600 {
			t.Fatalf("vector %d: accept message does not parse and verify: %v", i, err)
		}
	}
}
