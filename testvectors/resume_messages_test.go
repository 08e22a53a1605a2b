package testvectors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rsftp/rsftp/resume"
)

const resumeMessagesFile = "data/resume-messages-v00.json"

// resumeMessageVector is one encoding of RESUME_ENABLE, RESUME_FAILURE or
// ACK (docs/PROTOCOL.resume.md section 3): its fields, and the whole
// payload. Invalid vectors are encodings a receiver must reject.
type resumeMessageVector struct {
	Comment     string  `json:"comment"`
	Name        string  `json:"name"` // RESUME_ENABLE, RESUME_FAILURE or ACK
	Number      byte    `json:"number"`
	Valid       bool    `json:"valid"`
	Handle      Hex     `json:"handle,omitempty"`
	HoldSeconds *uint32 `json:"hold_seconds,omitempty"`
	Flags       *uint32 `json:"flags,omitempty"`
	Reason      *uint32 `json:"reason,omitempty"`
	ReasonName  string  `json:"reason_name,omitempty"`
	Description *string `json:"description,omitempty"`
	Received    *uint64 `json:"received,omitempty"`
	Msg         Hex     `json:"msg"`
}

func u32(v uint32) *uint32 { return &v }
func u64(v uint64) *uint64 { return &v }
func str(v string) *string { return &v }

// refResumeMessage encodes a vector's fields as RFC 4251 and section 3 of
// the document say, without package resume.
func refResumeMessage(v *resumeMessageVector) {
	b := []byte{v.Number}
	switch v.Name {
	case "RESUME_ENABLE":
		b = append(b, refString(v.Handle)...)
		b = binary.BigEndian.AppendUint32(b, *v.HoldSeconds)
		b = binary.BigEndian.AppendUint32(b, *v.Flags)
	case "RESUME_FAILURE":
		b = binary.BigEndian.AppendUint32(b, *v.Reason)
		b = append(b, refString([]byte(*v.Description))...)
	case "ACK":
		b = binary.BigEndian.AppendUint64(b, *v.Received)
	default:
		panic("unknown message " + v.Name)
	}
	v.Msg = b
}

func resumeMessageInputs() []resumeMessageVector {
	seq := func(n int, start byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = start + byte(i)
		}
		return b
	}
	enable := func(comment string, handle []byte, hold, flags uint32, valid bool) resumeMessageVector {
		return resumeMessageVector{Comment: comment, Name: "RESUME_ENABLE", Number: 200, Valid: valid,
			Handle: handle, HoldSeconds: u32(hold), Flags: u32(flags)}
	}
	failure := func(comment string, reason uint32, name, desc string, valid bool) resumeMessageVector {
		return resumeMessageVector{Comment: comment, Name: "RESUME_FAILURE", Number: 203, Valid: valid,
			Reason: u32(reason), ReasonName: name, Description: str(desc)}
	}
	ack := func(comment string, n uint64) resumeMessageVector {
		return resumeMessageVector{Comment: comment, Name: "ACK", Number: 204, Valid: true, Received: u64(n)}
	}
	vs := []resumeMessageVector{
		enable("a resumable session: 32-byte handle, hold time one hour", seq(32, 0x40), 3600, 0, true),
		enable("hold time 0: the server will not keep this session (over its session limit, the RESOURCE_SHORTAGE path); the connection is plain SSH", seq(32, 0xe0), 0, 0, true),
		enable("hold time 1 s, the least a resumable session announces; a 16-byte handle (the minimum)", seq(16, 0x01), 1, 0, true),
		enable("flags with bits the receiver does not know: ignored; a 64-byte handle (the maximum)", seq(64, 0x80), 86400, 0x80000001, true),
		enable("invalid: a 15-byte handle", seq(15, 0x01), 3600, 0, false),
		enable("invalid: a 65-byte handle", seq(65, 0x01), 3600, 0, false),
		failure("SESSION_UNKNOWN", resume.ReasonSessionUnknown, "SESSION_UNKNOWN", "no such session", true),
		failure("AUTH_FAILED", resume.ReasonAuthFailed, "AUTH_FAILED", "request does not authenticate", true),
		failure("COUNT_OUT_OF_RANGE", resume.ReasonCountOutOfRange, "COUNT_OUT_OF_RANGE", "received count 9 out of range: 10 acknowledged, 12 sent", true),
		failure("SESSION_CLOSED", resume.ReasonSessionClosed, "SESSION_CLOSED", "session closed: the key that authenticated it is no longer authorized", true),
		failure("RESOURCE_SHORTAGE", resume.ReasonResourceShortage, "RESOURCE_SHORTAGE", "", true),
		failure("BUSY", resume.ReasonBusy, "BUSY", "a resumption of this session is in progress", true),
		failure("a reason code this version does not define: the client treats it as a failed attempt and retries; a UTF-8 description of 256 bytes (the most)", 77, "", strings.Repeat("é", 128), true),
		failure("invalid: a description of 257 bytes", resume.ReasonBusy, "BUSY", strings.Repeat("x", 257), false),
		ack("nothing received yet", 0),
		ack("256 counted messages received: the message rule's first ACK", 256),
		ack("a count past 2^40", 1<<40+5),
		ack("the largest count", 1<<64-1),
	}
	for i := range vs {
		refResumeMessage(&vs[i])
	}
	// Encodings no field set can describe.
	vs = append(vs,
		resumeMessageVector{Comment: "invalid: ACK with a trailing byte", Name: "ACK", Number: 204, Msg: append(vs[len(vs)-1].Msg[:9:9], 0)},
		resumeMessageVector{Comment: "invalid: ACK with a 32-bit count", Name: "ACK", Number: 204, Msg: []byte{204, 0, 0, 1, 0}},
		resumeMessageVector{Comment: "invalid: RESUME_FAILURE (BUSY) whose description is not UTF-8", Name: "RESUME_FAILURE", Number: 203, Msg: []byte{203, 0, 0, 0, 6, 0, 0, 0, 2, 0xff, 0xfe}},
		resumeMessageVector{Comment: "invalid: RESUME_ENABLE without its flags", Name: "RESUME_ENABLE", Number: 200, Msg: vs[0].Msg[:len(vs[0].Msg)-4]},
	)
	return vs
}

const resumeMessagesSource = "Not published. Computed by refResumeMessage in testvectors/resume_messages_test.go (encoding/binary; no rsftp code) " +
	"from fixed fields, after docs/PROTOCOL.resume.md section 3; the last four are hand-made invalid encodings. " +
	"Regenerate with go test ./testvectors -run TestResumeMessageVectors -update-resume."

func TestResumeMessageVectors(t *testing.T) {
	want := resumeMessageInputs()
	if *updateResume {
		writeVectors(t, resumeMessagesFile, resumeMessagesSource, want)
	}
	f, err := load[resumeMessageVector](resumeMessagesFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) != len(want) {
		t.Fatalf("%d vectors in the file, %d computed", len(f.Vectors), len(want))
	}
	names := map[uint32]string{1: "SESSION_UNKNOWN", 2: "AUTH_FAILED", 3: "COUNT_OUT_OF_RANGE", 4: "SESSION_CLOSED", 5: "RESOURCE_SHORTAGE", 6: "BUSY"}
	for i, v := range f.Vectors {
		fb, _ := json.Marshal(v)
		wb, _ := json.Marshal(want[i])
		if !bytes.Equal(fb, wb) {
			t.Fatalf("vector %d: file and reference disagree:\nfile %s\nref  %s", i, fb, wb)
		}
		if len(v.Msg) == 0 || v.Msg[0] != v.Number {
			t.Fatalf("vector %d: message number", i)
		}
		switch v.Name {
		case "RESUME_ENABLE":
			m, err := resume.ParseEnable(v.Msg)
			if !v.Valid {
				if err == nil {
					t.Fatalf("vector %d (%s): ParseEnable accepted it", i, v.Comment)
				}
				continue
			}
			if err != nil || !bytes.Equal(m.Handle, v.Handle) || m.HoldSeconds != *v.HoldSeconds || m.Flags != *v.Flags {
				t.Fatalf("vector %d: ParseEnable %+v, %v", i, m, err)
			}
			if got := (&resume.Enable{Handle: v.Handle, HoldSeconds: *v.HoldSeconds, Flags: *v.Flags}).Marshal(); !bytes.Equal(got, v.Msg) {
				t.Fatalf("vector %d: Enable.Marshal %x, want %x", i, got, v.Msg)
			}
		case "RESUME_FAILURE":
			m, err := resume.ParseFailure(v.Msg)
			if !v.Valid {
				if err == nil {
					t.Fatalf("vector %d (%s): ParseFailure accepted it", i, v.Comment)
				}
				continue
			}
			if err != nil || m.Reason != *v.Reason || m.Description != *v.Description {
				t.Fatalf("vector %d: ParseFailure %+v, %v", i, m, err)
			}
			if names[m.Reason] != v.ReasonName {
				t.Fatalf("vector %d: reason %d is named %q", i, m.Reason, v.ReasonName)
			}
			if got := (&resume.Failure{Reason: *v.Reason, Description: *v.Description}).Marshal(); !bytes.Equal(got, v.Msg) {
				t.Fatalf("vector %d: Failure.Marshal %x, want %x", i, got, v.Msg)
			}
		case "ACK":
			m, err := resume.ParseAck(v.Msg)
			if !v.Valid {
				if err == nil {
					t.Fatalf("vector %d (%s): ParseAck accepted it", i, v.Comment)
				}
				continue
			}
			if err != nil || m.Received != *v.Received {
				t.Fatalf("vector %d: ParseAck %+v, %v", i, m, err)
			}
			if got := (&resume.Ack{Received: *v.Received}).Marshal(); !bytes.Equal(got, v.Msg) {
				t.Fatalf("vector %d: Ack.Marshal %x, want %x", i, got, v.Msg)
			}
		default:
			t.Fatalf("vector %d: unknown message %q", i, v.Name)
		}
	}
	// The numbers and codes of section 3 and the IANA tables.
	if resume.MsgEnable != 200 || resume.MsgRequest != 201 || resume.MsgAccept != 202 || resume.MsgFailure != 203 || resume.MsgAck != 204 {
		t.Fatal("message numbers differ from the document")
	}
	for code, name := range map[uint32]uint32{1: resume.ReasonSessionUnknown, 2: resume.ReasonAuthFailed, 3: resume.ReasonCountOutOfRange,
		4: resume.ReasonSessionClosed, 5: resume.ReasonResourceShortage, 6: resume.ReasonBusy} {
		if code != name {
			t.Fatalf("reason %d differs from the document", code)
		}
	}
	if resume.ClientKexName != "resume-c-v00@rsftp.org" || resume.ServerKexName != "resume-s-v00@rsftp.org" {
		t.Fatal("negotiation names differ from the document")
	}
}
