package auth

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
)

// fakeTransport replays scripted packets and discards what is written.
type fakeTransport struct {
	in  [][]byte
	sid []byte
}

func (f *fakeTransport) ReadPacket() ([]byte, error) {
	if len(f.in) == 0 {
		return nil, io.EOF
	}
	p := f.in[0]
	f.in = f.in[1:]
	return p, nil
}

func (f *fakeTransport) WritePacket(p []byte) error {
	if len(p) == 0 {
		return errors.New("empty write")
	}
	return nil
}

func (f *fakeTransport) SessionID() []byte { return f.sid }

// splitPackets cuts fuzz input into packets, each prefixed by a 16-bit
// length.
func splitPackets(data []byte) [][]byte {
	var out [][]byte
	for len(data) >= 2 && len(out) < 200 {
		n := int(binary.BigEndian.Uint16(data))
		data = data[2:]
		if n > len(data) {
			n = len(data)
		}
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

func joinPackets(ps ...[]byte) []byte {
	var b []byte
	for _, p := range ps {
		b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
		b = append(b, p...)
	}
	return b
}

func fuzzSeedRequests() [][]byte {
	seed := ed25519.NewKeyFromSeed(make([]byte, 32))
	s, _ := kex.NewSigner(seed)
	pub := s.PublicKey()
	sid := make([]byte, 32)
	req := func(r userauthRequest) []byte {
		r.User, r.Service = "u", serviceConnection
		return marshalUserauthRequest(&r)
	}
	data := marshalPublickeySignedData(sid, "u", serviceConnection, kex.KeyAlgoED25519, pub.Marshal())
	sig, _ := s.Sign(nil, data, "")
	return [][]byte{
		marshalServiceRequest(serviceUserauth),
		req(userauthRequest{Method: methodNone}),
		req(userauthRequest{Method: methodPubkey, Algorithm: kex.KeyAlgoED25519, PubKey: pub.Marshal()}),
		req(userauthRequest{Method: methodPubkey, Algorithm: kex.KeyAlgoED25519, PubKey: pub.Marshal(), HasSig: true, Signature: sig}),
		req(userauthRequest{Method: methodPassword, Password: []byte("pw")}),
		req(userauthRequest{Method: methodKbdInt}),
		marshalUserauthInfoResponse([]string{"a"}),
		{wire.MsgChannelOpen},
	}
}

// Serve never panics, and never lets in a peer that cannot sign: the
// session identifier is one the fuzzer does not know, the password and
// keyboard-interactive callbacks refuse everything, and "none" is off.
func FuzzServe(f *testing.F) {
	r := fuzzSeedRequests()
	f.Add(joinPackets(r...))
	f.Add(joinPackets(r[0], r[2], r[3]))
	f.Add(joinPackets(r[0], r[5], r[6], r[1]))
	f.Add(joinPackets(r[0], r[1], r[4], r[7]))
	f.Fuzz(func(t *testing.T, data []byte) {
		sid := []byte("a session id the fuzzer cannot sign for, 32 b")
		ft := &fakeTransport{in: splitPackets(data), sid: sid}
		cfg := &ServerConfig{
			PublicKeyCallback: func(string, kex.PublicKey) (*Permissions, error) { return &Permissions{}, nil },
			PasswordCallback:  func(string, []byte) (*Permissions, error) { return nil, errors.New("no") },
			KeyboardInteractiveCallback: func(_ string, ch func(string, string, []string, []bool) ([]string, error)) (*Permissions, error) {
				if _, err := ch("n", "i", []string{"p"}, []bool{false}); err != nil {
					return nil, err
				}
				return nil, errors.New("no")
			},
			Banner: "b",
		}
		user, perms, err := Serve(context.Background(), ft, cfg)
		if err == nil {
			t.Fatalf("Serve let in %q (%+v) without a valid signature", user, perms)
		}
	})
}

// Authenticate never panics or loops on whatever a server sends.
func FuzzAuthenticate(f *testing.F) {
	pkok := marshalUserauthPKOK(kex.KeyAlgoED25519, nil)
	f.Add(joinPackets(marshalServiceAccept(serviceUserauth), failure(false, methodPubkey, methodPassword, methodKbdInt),
		pkok, failure(true, methodPassword), marshalUserauthSuccess()))
	f.Add(joinPackets(marshalServiceAccept(serviceUserauth), marshalUserauthBanner("hi"), failure(false, methodKbdInt),
		marshalUserauthInfoRequest(&userauthInfoRequest{Prompts: []string{"a"}, Echo: []bool{true}}), marshalUserauthSuccess()))
	f.Add(joinPackets(marshalServiceAccept(serviceUserauth), failure(false, methodPassword), []byte{60, 0, 0, 0, 0, 0, 0, 0, 0}))
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	f.Fuzz(func(t *testing.T, data []byte) {
		ft := &fakeTransport{in: splitPackets(data), sid: make([]byte, 32)}
		cfg := &ClientConfig{
			User: "u",
			Methods: []Method{
				PublicKeys(key),
				Password("pw"),
				KeyboardInteractive(func(_, _ string, prompts []string, _ []bool) ([]string, error) {
					return make([]string, len(prompts)), nil
				}),
			},
			Banner:        func(string) {},
			ServerSigAlgs: func() []string { return nil },
		}
		Authenticate(context.Background(), ft, cfg)
	})
}
