package fuzz

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/internal/connmsg"
	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/resume"
)

// FuzzPublicKey parses a key blob and verifies an arbitrary signature
// with it: errors are fine, panics are not, and a parsed key must marshal
// back to the same blob.
func FuzzPublicKey(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(bytes.NewReader(make([]byte, 64)))
	k, _ := kex.NewPublicKey(pub)
	s, _ := kex.NewSigner(priv)
	sig, _ := s.Sign(nil, []byte("data"), "")
	f.Add(k.Marshal(), sig)
	f.Add(wire.AppendString(nil, "ecdsa-sha2-nistp256"), []byte{})
	f.Add(wire.AppendString(nil, "ssh-rsa"), wire.AppendString(nil, "rsa-sha2-256"))
	f.Fuzz(func(t *testing.T, blob, sig []byte) {
		k, err := kex.ParsePublicKey(blob)
		if err != nil {
			return
		}
		if !bytes.Equal(k.Marshal(), blob) {
			t.Fatalf("%s key does not marshal back to its blob", k.Type())
		}
		k.Verify([]byte("data"), sig)
		kex.FingerprintSHA256(k)
		kex.MarshalAuthorizedKey(k)
	})
}

// FuzzChannelMessages runs every channel message parser; what parses must
// marshal to bytes that parse to the same message.
func FuzzChannelMessages(f *testing.F) {
	f.Add((&connmsg.ChannelOpen{Type: "session", Sender: 1, Window: 2, MaxPacket: 3}).Marshal())
	f.Add((&connmsg.OpenConfirm{Recipient: 1, Sender: 2, Window: 3, MaxPacket: 4}).Marshal())
	f.Add((&connmsg.OpenFailure{Recipient: 1, Reason: 2, Message: "m"}).Marshal())
	f.Add((&connmsg.WindowAdjust{Recipient: 1, Bytes: 2}).Marshal())
	f.Add((&connmsg.Data{Recipient: 1, Data: []byte("d")}).Marshal())
	f.Add((&connmsg.Data{Recipient: 1, Extended: true, Code: 1, Data: []byte("d")}).Marshal())
	f.Add((&connmsg.ChannelRequest{Recipient: 1, Type: "exec", WantReply: true, Payload: []byte("x")}).Marshal())
	f.Add((&connmsg.GlobalRequest{Name: "tcpip-forward", WantReply: true}).Marshal())
	f.Add((&connmsg.EOF{Recipient: 9}).Marshal())
	f.Fuzz(func(t *testing.T, p []byte) {
		type msg interface{ Marshal() []byte }
		check := func(m msg, err error, parse func([]byte) (msg, error)) {
			if err != nil {
				return
			}
			again, err := parse(m.Marshal())
			if err != nil {
				t.Fatalf("%T does not parse after marshal: %v", m, err)
			}
			if diff := cmp.Diff(m, again); diff != "" {
				t.Fatalf("%T changed through marshal: %s", m, diff)
			}
		}
		wrap := func(f func([]byte) (msg, error)) func([]byte) (msg, error) { return f }
		parsers := []func([]byte) (msg, error){
			wrap(func(b []byte) (msg, error) { return connmsg.ParseChannelOpen(b) }),
			wrap(func(b []byte) (msg, error) { return connmsg.ParseOpenConfirm(b) }),
			wrap(func(b []byte) (msg, error) { return connmsg.ParseOpenFailure(b) }),
			wrap(func(b []byte) (msg, error) { return connmsg.ParseWindowAdjust(b) }),
			wrap(func(b []byte) (msg, error) { m, err := connmsg.ParseData(b); return &m, err }),
			wrap(func(b []byte) (msg, error) { return connmsg.ParseEOF(b) }),
			wrap(func(b []byte) (msg, error) { return connmsg.ParseClose(b) }),
			wrap(func(b []byte) (msg, error) { return connmsg.ParseChannelRequest(b) }),
			wrap(func(b []byte) (msg, error) { return connmsg.ParseChannelSuccess(b) }),
			wrap(func(b []byte) (msg, error) { return connmsg.ParseChannelFailure(b) }),
			wrap(func(b []byte) (msg, error) { return connmsg.ParseGlobalRequest(b) }),
			wrap(func(b []byte) (msg, error) { return connmsg.ParseRequestSuccess(b) }),
		}
		for _, parse := range parsers {
			m, err := parse(p)
			check(m, err, parse)
		}
		connmsg.ParseDirectTCPIP(p)
	})
}

// FuzzPrivateKey parses private key files, with and without a
// passphrase. The bcrypt KDF's rounds come from the file, so the parser
// must bound them before spending time.
func FuzzPrivateKey(f *testing.F) {
	f.Add([]byte("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB\n-----END OPENSSH PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN OPENSSH PRIVATE KEY-----\n-----END OPENSSH PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		auth.ParsePrivateKey(data, nil)
		auth.ParsePrivateKey(data, []byte("pass"))
	})
}

// FuzzResumeMessages runs every reconnection message parser (the parsers
// a server runs on bytes from a client that has not authenticated yet):
// no panic; what parses marshals back to the same bytes; a parsed request
// never verifies under a key it was not made with.
func FuzzResumeMessages(f *testing.F) {
	h := bytes.Repeat([]byte{1}, resume.HandleLen)
	mac := bytes.Repeat([]byte{2}, resume.MACLen)
	f.Add((&resume.Enable{Handle: h, HoldSeconds: 3600}).Marshal())
	f.Add((&resume.Request{Handle: h, Received: 7, MAC: mac}).Marshal())
	f.Add((&resume.Accept{Received: 9, HoldSeconds: 60, MAC: mac}).Marshal())
	f.Add((&resume.Failure{Reason: resume.ReasonBusy, Description: "busy"}).Marshal())
	f.Add((&resume.Ack{Received: 1 << 33}).Marshal())
	rk := bytes.Repeat([]byte{3}, 32)
	f.Fuzz(func(t *testing.T, p []byte) {
		type msg interface{ Marshal() []byte }
		check := func(m msg, err error) {
			if err != nil {
				return
			}
			if !bytes.Equal(m.Marshal(), p) {
				t.Fatalf("%T does not marshal back to its bytes", m)
			}
		}
		e, err := resume.ParseEnable(p)
		check(e, err)
		r, err := resume.ParseRequest(p)
		check(r, err)
		if err == nil && resume.VerifyRequest(rk, []byte("H"), r) {
			t.Fatal("a fuzzed request verified")
		}
		a, err := resume.ParseAccept(p)
		check(a, err)
		fl, err := resume.ParseFailure(p)
		check(fl, err)
		if err == nil {
			_ = fl.Error()
		}
		ack, err := resume.ParseAck(p)
		check(ack, err)
	})
}
