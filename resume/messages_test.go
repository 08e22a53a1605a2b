package resume

import (
	"bytes"
	"crypto"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMessagesRoundTrip(t *testing.T) {
	h := bytes.Repeat([]byte{7}, HandleLen)
	m := bytes.Repeat([]byte{9}, MACLen)
	cases := []struct {
		msg   interface{ Marshal() []byte }
		parse func([]byte) (any, error)
	}{
		{&Enable{Handle: h, HoldSeconds: 3600, Flags: 0}, func(b []byte) (any, error) { return ParseEnable(b) }},
		{&Request{Handle: h, Received: 1<<40 + 3, MAC: m}, func(b []byte) (any, error) { return ParseRequest(b) }},
		{&Accept{Received: 12, HoldSeconds: 60, MAC: m}, func(b []byte) (any, error) { return ParseAccept(b) }},
		{&Failure{Reason: ReasonBusy, Description: "try later"}, func(b []byte) (any, error) { return ParseFailure(b) }},
		{&Ack{Received: 1<<64 - 1}, func(b []byte) (any, error) { return ParseAck(b) }},
	}
	for _, tc := range cases {
		b := tc.msg.Marshal()
		got, err := tc.parse(b)
		if err != nil {
			t.Fatalf("%T: %v", tc.msg, err)
		}
		if diff := cmp.Diff(tc.msg, got); diff != "" {
			t.Fatalf("%T round trip: %s", tc.msg, diff)
		}
		// Every truncation and any trailing byte is rejected.
		for i := 0; i < len(b); i++ {
			if _, err := tc.parse(b[:i]); err == nil {
				t.Fatalf("%T truncated to %d bytes parsed", tc.msg, i)
			}
		}
		if _, err := tc.parse(append(bytes.Clone(b), 0)); err == nil {
			t.Fatalf("%T with a trailing byte parsed", tc.msg)
		}
	}
}

func TestMessageFieldBounds(t *testing.T) {
	mac := make([]byte, MACLen)
	for _, n := range []int{0, MinHandleLen - 1, MaxHandleLen + 1, 1 << 16} {
		b := (&Request{Handle: make([]byte, n), MAC: mac}).Marshal()
		if _, err := ParseRequest(b); err == nil {
			t.Errorf("handle of %d bytes accepted", n)
		}
	}
	for _, n := range []int{0, 16, MACLen + 1} {
		b := (&Accept{MAC: make([]byte, n)}).Marshal()
		if _, err := ParseAccept(b); err == nil {
			t.Errorf("MAC of %d bytes accepted", n)
		}
	}
	b := (&Failure{Reason: 1}).Marshal()
	b = append(b[:5], 0, 0, 1, 1) // description length 257, no bytes
	if _, err := ParseFailure(b); err == nil {
		t.Error("oversized failure description accepted")
	}
	if _, err := ParseFailure(append([]byte{MsgFailure, 0, 0, 0, 1, 0, 0, 0, 2}, 0xff, 0xfe)); err == nil {
		t.Error("non-UTF-8 description accepted")
	}
	if _, err := ParseAck([]byte{MsgEnable, 0, 0, 0, 0, 0, 0, 0, 0}); err == nil {
		t.Error("wrong message number accepted")
	}
}

func TestMACsBindEverything(t *testing.T) {
	rk, err := DeriveKey(crypto.SHA256, []byte("K"), []byte("H-first"))
	if err != nil {
		t.Fatal(err)
	}
	handle := bytes.Repeat([]byte{1}, HandleLen)
	newH := []byte("H-of-the-new-connection")
	req := &Request{Handle: handle, Received: 10, MAC: RequestMAC(rk, newH, handle, 10)}
	if !VerifyRequest(rk, newH, req) {
		t.Fatal("valid request rejected")
	}
	// A request replayed on another connection, or altered, fails.
	if VerifyRequest(rk, []byte("H-of-another-connection"), req) {
		t.Fatal("request replayed on another connection verified")
	}
	for _, bad := range []*Request{
		{Handle: handle, Received: 11, MAC: req.MAC},
		{Handle: bytes.Repeat([]byte{2}, HandleLen), Received: 10, MAC: req.MAC},
	} {
		if VerifyRequest(rk, newH, bad) {
			t.Fatalf("altered request %+v verified", bad)
		}
	}
	otherRK, _ := DeriveKey(crypto.SHA256, []byte("K2"), []byte("H-first"))
	if VerifyRequest(otherRK, newH, req) {
		t.Fatal("request verified under another session's key")
	}
	acc := &Accept{Received: 5, MAC: AcceptMAC(rk, newH, handle, 5, 10)}
	if !VerifyAccept(rk, newH, handle, acc, 10) {
		t.Fatal("valid accept rejected")
	}
	if VerifyAccept(rk, newH, handle, acc, 9) || VerifyAccept(rk, []byte("x"), handle, acc, 10) {
		t.Fatal("accept verified for another request or connection")
	}
	// The request and accept MACs differ even over equal inputs.
	if bytes.Equal(RequestMAC(rk, newH, handle, 0), AcceptMAC(rk, newH, handle, 0, 0)[:MACLen]) {
		t.Fatal("request and accept MACs coincide")
	}
}

func TestCountInRange(t *testing.T) {
	for _, c := range []struct {
		n, acked, sent uint64
		ok             bool
	}{
		{5, 5, 9, true}, {9, 5, 9, true}, {4, 5, 9, false}, {10, 5, 9, false},
		{0, 0, 0, true}, {1, 0, 0, false}, {1<<64 - 1, 0, 1<<64 - 2, false},
	} {
		if got := CountInRange(c.n, c.acked, c.sent); got != c.ok {
			t.Errorf("CountInRange(%d, %d, %d) = %v", c.n, c.acked, c.sent, got)
		}
	}
}

func TestDeriveKeyRejectsEmpty(t *testing.T) {
	if _, err := DeriveKey(crypto.SHA256, nil, []byte("H")); err == nil {
		t.Fatal("empty K accepted")
	}
}
