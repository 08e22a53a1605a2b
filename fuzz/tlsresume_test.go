package fuzz

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/rsftp/rsftp/resume"
	"github.com/rsftp/rsftp/tlsresume"
)

// FuzzTLSResumeRecords feeds a stream of bytes, as the TLS connection of
// a resumable session delivers them, to the record parser
// (docs/PROTOCOL.tlsresume.md section 3): each record is read with its
// length checked, then its body checked for its type; a record that
// checks out frames back to the bytes it came from, and HELLO and CLOSE
// marshal back to them.
func FuzzTLSResumeRecords(f *testing.F) {
	h := bytes.Repeat([]byte{1}, resume.HandleLen)
	mac := bytes.Repeat([]byte{2}, resume.MACLen)
	var stream []byte
	for _, p := range [][]byte{
		(&tlsresume.Hello{}).Marshal(),
		(&resume.Enable{Handle: h, HoldSeconds: 3600}).Marshal(),
		{tlsresume.RecData, 'h', 'i'},
		{tlsresume.RecEOF},
		{tlsresume.RecPing},
		{tlsresume.RecPong},
		(&resume.Ack{Received: 5}).Marshal(),
		(&resume.Request{Handle: h, Received: 7, MAC: mac}).Marshal(),
		(&resume.Accept{Received: 9, HoldSeconds: 60, MAC: mac}).Marshal(),
		(&resume.Failure{Reason: resume.ReasonBusy, Description: "busy"}).Marshal(),
		(&tlsresume.Close{Reason: tlsresume.ReasonByApplication, Description: "bye"}).Marshal(),
	} {
		rec := tlsresume.AppendRecord(nil, p)
		f.Add(rec)
		stream = append(stream, rec...)
	}
	f.Add(stream)
	f.Add([]byte{0, 0, 0x80, 0x01, tlsresume.RecData})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	buf := make([]byte, tlsresume.MaxRecord)
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for {
			start := len(in) - r.Len()
			p, err := tlsresume.ReadRecord(r, buf)
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, tlsresume.ErrRecord) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(p) == 0 || len(p) > tlsresume.MaxRecord {
				t.Fatalf("a record of %d bytes", len(p))
			}
			consumed := in[start : len(in)-r.Len()]
			if !bytes.Equal(tlsresume.AppendRecord(nil, p), consumed) {
				t.Fatal("the record does not frame back to its bytes")
			}
			if tlsresume.CheckRecord(p) != nil {
				continue
			}
			switch p[0] {
			case tlsresume.RecHello:
				m, _ := tlsresume.ParseHello(p)
				if !bytes.Equal(m.Marshal(), p) {
					t.Fatal("HELLO does not marshal back")
				}
			case tlsresume.RecClose:
				m, _ := tlsresume.ParseClose(p)
				if !bytes.Equal(m.Marshal(), p) {
					t.Fatal("CLOSE does not marshal back")
				}
				_ = (&tlsresume.ClosedError{Reason: m.Reason, Description: m.Description}).Error()
			}
		}
	})
}
