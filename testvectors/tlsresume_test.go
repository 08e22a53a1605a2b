package testvectors

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"strings"
	"testing"

	"github.com/rsftp/rsftp/resume"
	"github.com/rsftp/rsftp/tlsresume"
)

const (
	tlsResumeFile        = "data/tlsresume-v1.json"
	tlsResumeRecordsFile = "data/tlsresume-records-v1.json"
)

var updateTLSResume = flag.Bool("update-tlsresume", false, "rewrite "+tlsResumeFile+" and "+tlsResumeRecordsFile+" from the reference computation in tlsresume_test.go")

// tlsResumeVector is one session and one reconnection of
// docs/PROTOCOL.tlsresume.md (sections 4 and 7): the exporter secrets of
// the first and the new TLS 1.3 connections, the keys exported from
// them, and the resume exchange on the new connection, framed as
// records.
type tlsResumeVector struct {
	Comment           string `json:"comment"`
	Hash              string `json:"hash"`
	KeyLabel          string `json:"key_label"`
	BindingLabel      string `json:"binding_label"`
	ExporterSecret    Hex    `json:"exporter_secret"`
	NewExporterSecret Hex    `json:"new_exporter_secret"`
	RK                Hex    `json:"rk"`
	Binding           Hex    `json:"new_binding"`
	Handle            Hex    `json:"handle"`
	HoldSeconds       uint32 `json:"hold_seconds"`
	ClientReceived    uint64 `json:"client_received"`
	ServerReceived    uint64 `json:"server_received"`
	EnableRecord      Hex    `json:"enable_record"`
	RequestMAC        Hex    `json:"request_mac"`
	RequestRecord     Hex    `json:"request_record"`
	AcceptMAC         Hex    `json:"accept_mac"`
	AcceptRecord      Hex    `json:"accept_record"`
}

// refExpandLabel is HKDF-Expand-Label of RFC 8446 section 7.1 with
// SHA-256.
func refExpandLabel(secret []byte, label string, context []byte, length int) []byte {
	info := binary.BigEndian.AppendUint16(nil, uint16(length))
	info = append(info, byte(len("tls13 ")+len(label)))
	info = append(info, "tls13 "+label...)
	info = append(info, byte(len(context)))
	info = append(info, context...)
	out, err := hkdf.Expand(sha256.New, secret, string(info), length)
	if err != nil {
		panic(err)
	}
	return out
}

// refExporter is TLS-Exporter(label, context_value, key_length) of RFC
// 8446 section 7.5 from the exporter_master_secret, SHA-256 suites.
func refExporter(secret []byte, label string, context []byte, length int) []byte {
	empty := sha256.Sum256(nil)
	derived := refExpandLabel(secret, label, empty[:], sha256.Size)
	h := sha256.Sum256(context)
	return refExpandLabel(derived, "exporter", h[:], length)
}

// refRecord frames a record: uint32 length, then type and body.
func refRecord(p []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(p))), p...)
}

func refMAC(rk []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, rk)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// refTLSResume computes a vector's outputs from its inputs as the
// document says, without rsftp's code.
func refTLSResume(v *tlsResumeVector) {
	v.RK = refExporter(v.ExporterSecret, v.KeyLabel, nil, 32)
	v.Binding = refExporter(v.NewExporterSecret, v.BindingLabel, nil, 32)
	u32 := func(x uint32) []byte { return binary.BigEndian.AppendUint32(nil, x) }
	u64 := func(x uint64) []byte { return binary.BigEndian.AppendUint64(nil, x) }
	enable := append([]byte{200}, refString(v.Handle)...)
	enable = append(enable, u32(v.HoldSeconds)...)
	enable = append(enable, u32(0)...)
	v.EnableRecord = refRecord(enable)
	v.RequestMAC = refMAC(v.RK, refString([]byte("rsftp-resume-request-v00")), refString(v.Binding), refString(v.Handle), u64(v.ClientReceived))
	req := append([]byte{201}, refString(v.Handle)...)
	req = append(req, u64(v.ClientReceived)...)
	req = append(req, refString(v.RequestMAC)...)
	v.RequestRecord = refRecord(req)
	v.AcceptMAC = refMAC(v.RK, refString([]byte("rsftp-resume-accept-v00")), refString(v.Binding), refString(v.Handle),
		u64(v.ServerReceived), u64(v.ClientReceived))
	acc := append([]byte{202}, u64(v.ServerReceived)...)
	acc = append(acc, u32(v.HoldSeconds)...)
	acc = append(acc, refString(v.AcceptMAC)...)
	v.AcceptRecord = refRecord(acc)
}

func tlsResumeInputs() []tlsResumeVector {
	seq := func(n int, start byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = start + byte(i*7)
		}
		return b
	}
	base := func(comment string) tlsResumeVector {
		return tlsResumeVector{Comment: comment, Hash: "SHA-256", KeyLabel: "EXPERIMENTAL rsftp tls-resume key v1",
			BindingLabel: "EXPORTER-Channel-Binding", ExporterSecret: seq(32, 0x11), NewExporterSecret: seq(32, 0x91),
			Handle: seq(32, 0x40), HoldSeconds: 3600}
	}
	a := base("first reconnection: nothing received yet on either side")
	b := base("counts on both sides, hold time one day")
	b.ClientReceived, b.ServerReceived, b.HoldSeconds = 1234, 567, 86400
	c := base("counts at 2^64-1 and 2^32; another new connection")
	c.ClientReceived, c.ServerReceived, c.NewExporterSecret = 1<<64-1, 1<<32, seq(32, 0x03)
	return []tlsResumeVector{a, b, c}
}

func TestTLSResumeVectors(t *testing.T) {
	vs := tlsResumeInputs()
	for i := range vs {
		refTLSResume(&vs[i])
	}
	if *updateTLSResume {
		writeVectors(t, tlsResumeFile, "Not published. Computed by refTLSResume in tlsresume_test.go (crypto/hkdf, crypto/hmac; no rsftp code) from docs/PROTOCOL.tlsresume.md sections 3, 4 and 7.", vs)
	}
	f, err := load[tlsResumeVector](tlsResumeFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) != len(vs) {
		t.Fatalf("%d vectors in the file, %d computed", len(f.Vectors), len(vs))
	}
	for i, v := range f.Vectors {
		want := vs[i]
		if !bytes.Equal(v.RK, want.RK) || !bytes.Equal(v.Binding, want.Binding) || !bytes.Equal(v.RequestRecord, want.RequestRecord) ||
			!bytes.Equal(v.AcceptRecord, want.AcceptRecord) || !bytes.Equal(v.EnableRecord, want.EnableRecord) {
			t.Fatalf("vector %d: the file differs from the reference computation", i)
		}
		if v.KeyLabel != tlsresume.KeyLabel || v.BindingLabel != tlsresume.BindingLabel {
			t.Fatalf("vector %d: labels %q, %q; the package uses %q, %q", i, v.KeyLabel, v.BindingLabel, tlsresume.KeyLabel, tlsresume.BindingLabel)
		}
		// The package's MACs and framing.
		if got := resume.RequestMAC(v.RK, v.Binding, v.Handle, v.ClientReceived); !bytes.Equal(got, v.RequestMAC) {
			t.Fatalf("vector %d: request MAC %x, want %x", i, got, v.RequestMAC)
		}
		if got := resume.AcceptMAC(v.RK, v.Binding, v.Handle, v.ServerReceived, v.ClientReceived); !bytes.Equal(got, v.AcceptMAC) {
			t.Fatalf("vector %d: accept MAC %x, want %x", i, got, v.AcceptMAC)
		}
		req := (&resume.Request{Handle: v.Handle, Received: v.ClientReceived, MAC: v.RequestMAC}).Marshal()
		acc := (&resume.Accept{Received: v.ServerReceived, HoldSeconds: v.HoldSeconds, MAC: v.AcceptMAC}).Marshal()
		en := (&resume.Enable{Handle: v.Handle, HoldSeconds: v.HoldSeconds}).Marshal()
		for _, x := range []struct {
			name     string
			msg, rec []byte
		}{{"REQUEST", req, v.RequestRecord}, {"ACCEPT", acc, v.AcceptRecord}, {"ENABLE", en, v.EnableRecord}} {
			if got := tlsresume.AppendRecord(nil, x.msg); !bytes.Equal(got, x.rec) {
				t.Fatalf("vector %d: %s record %x, want %x", i, x.name, got, x.rec)
			}
			p, err := tlsresume.ReadRecord(bytes.NewReader(x.rec), make([]byte, tlsresume.MaxRecord))
			if err != nil || tlsresume.CheckRecord(p) != nil {
				t.Fatalf("vector %d: %s record does not parse: %v %v", i, x.name, err, tlsresume.CheckRecord(p))
			}
		}
		// Replay onto another connection does not verify.
		r, _ := resume.ParseRequest(req)
		if resume.VerifyRequest(v.RK, refExporter(v.ExporterSecret, v.BindingLabel, nil, 32), r) {
			t.Fatalf("vector %d: the request verifies with the first connection's binding", i)
		}
	}
}

// tlsRecordVector is one record as it travels inside TLS (section 3):
// length, type, body. Invalid ones must be refused by a receiver.
type tlsRecordVector struct {
	Comment string `json:"comment"`
	Name    string `json:"name"`
	Valid   bool   `json:"valid"`
	Record  Hex    `json:"record"`
}

func tlsRecordInputs() []tlsRecordVector {
	rec := func(comment, name string, valid bool, p []byte) tlsRecordVector {
		return tlsRecordVector{Comment: comment, Name: name, Valid: valid, Record: refRecord(p)}
	}
	raw := func(comment, name string, b []byte) tlsRecordVector {
		return tlsRecordVector{Comment: comment, Name: name, Record: b}
	}
	u32 := func(x uint32) []byte { return binary.BigEndian.AppendUint32(nil, x) }
	closeRec := func(reason uint32, desc string) []byte {
		return append(append([]byte{2}, u32(reason)...), refString([]byte(desc))...)
	}
	data := make([]byte, 1+32763)
	data[0] = 94
	for i := 1; i < len(data); i++ {
		data[i] = byte(i)
	}
	return []tlsRecordVector{
		rec("HELLO, flags 0", "HELLO", true, []byte{1, 0, 0, 0, 0}),
		rec("HELLO with flags the receiver does not know: ignored", "HELLO", true, []byte{1, 0x80, 0, 0, 1}),
		rec("CLOSE by application (11)", "CLOSE", true, closeRec(11, "closed by application")),
		rec("CLOSE, protocol error (2), description of 256 bytes (the maximum)", "CLOSE", true, closeRec(2, strings.Repeat("x", 256))),
		rec("PING", "PING", true, []byte{3}),
		rec("PONG", "PONG", true, []byte{4}),
		rec("DATA of one byte", "DATA", true, []byte{94, 'a'}),
		rec("EOF", "EOF", true, []byte{96}),
		rec("DATA of 32763 bytes, the most: the framed record is 32768 bytes, two full TLS records", "DATA", true, data),
		rec("ACK of 2^64-1 records", "ACK", true, append([]byte{204}, binary.BigEndian.AppendUint64(nil, 1<<64-1)...)),
		rec("FAILURE, SESSION_UNKNOWN", "FAILURE", true, append(append([]byte{203}, u32(1)...), refString([]byte("no such session"))...)),
		raw("length 0", "", u32(0)),
		raw("length 32765, one past the most (DATA of 32764 bytes)", "", append(u32(32765), append(data, 0)...)),
		raw("length 2^32-1 (checked before anything is read or allocated)", "", u32(1<<32-1)),
		rec("DATA with no data", "DATA", false, []byte{94}),
		rec("PING with a body", "PING", false, []byte{3, 0}),
		rec("EOF with a body", "EOF", false, []byte{96, 0}),
		rec("HELLO of 3 flag bytes", "HELLO", false, []byte{1, 0, 0, 0}),
		rec("HELLO with a trailing byte", "HELLO", false, []byte{1, 0, 0, 0, 0, 0}),
		rec("CLOSE with a description of 257 bytes", "CLOSE", false, closeRec(11, strings.Repeat("x", 257))),
		rec("CLOSE with a description that is not UTF-8", "CLOSE", false, closeRec(11, "\xff\xfe")),
		rec("CLOSE whose description runs past the record", "CLOSE", false, append(append([]byte{2}, u32(11)...), 0, 0, 0, 9, 'a')),
		rec("unknown type 5", "", false, []byte{5}),
		rec("type 0", "", false, []byte{0}),
		rec("REQUEST with a MAC of 31 bytes", "REQUEST", false, append(append(append([]byte{201}, refString(make([]byte, 32))...), make([]byte, 8)...), refString(make([]byte, 31))...)),
	}
}

func TestTLSResumeRecordVectors(t *testing.T) {
	vs := tlsRecordInputs()
	if *updateTLSResume {
		writeVectors(t, tlsResumeRecordsFile, "Not published. Written by tlsRecordInputs in tlsresume_test.go (encoding/binary) from docs/PROTOCOL.tlsresume.md section 3.", vs)
	}
	f, err := load[tlsRecordVector](tlsResumeRecordsFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) != len(vs) {
		t.Fatalf("%d vectors in the file, %d computed", len(f.Vectors), len(vs))
	}
	buf := make([]byte, tlsresume.MaxRecord)
	for i, v := range f.Vectors {
		if !bytes.Equal(v.Record, vs[i].Record) {
			t.Fatalf("vector %d (%s): the file differs from tlsRecordInputs", i, v.Comment)
		}
		p, err := tlsresume.ReadRecord(bytes.NewReader(v.Record), buf)
		if err == nil {
			err = tlsresume.CheckRecord(p)
		}
		if v.Valid != (err == nil) {
			t.Fatalf("vector %d (%s): valid %v, got %v", i, v.Comment, v.Valid, err)
		}
		if !v.Valid {
			continue
		}
		if got := tlsresume.AppendRecord(nil, p); !bytes.Equal(got, v.Record) {
			t.Fatalf("vector %d: framed again %x", i, got)
		}
		var again []byte
		switch v.Name {
		case "HELLO":
			m, _ := tlsresume.ParseHello(p)
			again = m.Marshal()
		case "CLOSE":
			m, _ := tlsresume.ParseClose(p)
			again = m.Marshal()
		default:
			again = p
		}
		if !bytes.Equal(again, p) {
			t.Fatalf("vector %d (%s): marshalled again %x, want %x", i, v.Comment, again, p)
		}
	}
}
