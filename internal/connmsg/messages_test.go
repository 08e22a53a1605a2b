package connmsg

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rsftp/rsftp/internal/wire"
)

type msg interface{ Marshal() []byte }

// parsers holds one message of each type and its parser.
var parsers = []struct {
	m     msg
	parse func([]byte) (msg, error)
}{
	{&GlobalRequest{Name: "tcpip-forward", WantReply: true, Payload: []byte("x")}, func(p []byte) (msg, error) { return ParseGlobalRequest(p) }},
	{&RequestSuccess{Payload: []byte{0, 0, 0, 22}}, func(p []byte) (msg, error) { return ParseRequestSuccess(p) }},
	{&ChannelOpen{Type: "session", Sender: 1, Window: 2, MaxPacket: 3, Extra: []byte("e")}, func(p []byte) (msg, error) { return ParseChannelOpen(p) }},
	{&OpenConfirm{Recipient: 1, Sender: 2, Window: 3, MaxPacket: 4, Extra: []byte("e")}, func(p []byte) (msg, error) { return ParseOpenConfirm(p) }},
	{&OpenFailure{Recipient: 1, Reason: 2, Message: "no", Language: "en"}, func(p []byte) (msg, error) { return ParseOpenFailure(p) }},
	{&WindowAdjust{Recipient: 1, Bytes: 2}, func(p []byte) (msg, error) { return ParseWindowAdjust(p) }},
	{&Data{Recipient: 1, Data: []byte("d")}, func(p []byte) (msg, error) { m, err := ParseData(p); return &m, err }},
	{&Data{Recipient: 1, Extended: true, Code: ExtendedDataStderr, Data: []byte("d")}, func(p []byte) (msg, error) { m, err := ParseData(p); return &m, err }},
	{&EOF{Recipient: 1}, func(p []byte) (msg, error) { return ParseEOF(p) }},
	{&Close{Recipient: 1}, func(p []byte) (msg, error) { return ParseClose(p) }},
	{&ChannelSuccess{Recipient: 1}, func(p []byte) (msg, error) { return ParseChannelSuccess(p) }},
	{&ChannelFailure{Recipient: 1}, func(p []byte) (msg, error) { return ParseChannelFailure(p) }},
	{&ChannelRequest{Recipient: 1, Type: "exec", WantReply: true, Payload: []byte("ls")}, func(p []byte) (msg, error) { return ParseChannelRequest(p) }},
	{&DirectTCPIP{Host: "example.com", Port: 22, OriginAddr: "127.0.0.1", OriginPort: 5000}, func(p []byte) (msg, error) { return ParseDirectTCPIP(p) }},
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range parsers {
		got, err := tc.parse(tc.m.Marshal())
		if err != nil {
			t.Fatalf("%T: %v", tc.m, err)
		}
		if diff := cmp.Diff(tc.m, got); diff != "" {
			t.Errorf("%T changed through marshal and parse: %s", tc.m, diff)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range parsers {
		p := tc.m.Marshal()
		if _, ok := tc.m.(*DirectTCPIP); !ok {
			// Every parser checks the message number: an empty
			// payload and another message's are refused.
			if _, err := tc.parse(nil); err == nil {
				t.Errorf("%T: empty payload parsed", tc.m)
			}
			other := append([]byte{wire.MsgIgnore}, p[1:]...)
			if _, err := tc.parse(other); err == nil {
				t.Errorf("%T: message number %d parsed", tc.m, other[0])
			}
		}
		// Each truncation fails, except where the last field is the
		// rest of the payload (request data, open extra data).
		for n := 1; n < len(p); n++ {
			if _, err := tc.parse(p[:n]); err == nil && !restLast(tc.m) {
				t.Errorf("%T: truncated to %d of %d bytes parsed", tc.m, n, len(p))
			}
		}
		if !restLast(tc.m) {
			if _, err := tc.parse(append(p, 0)); err == nil {
				t.Errorf("%T: trailing byte parsed", tc.m)
			}
		}
	}
}

// restLast reports whether m's last field takes the rest of the payload.
func restLast(m msg) bool {
	switch m.(type) {
	case *GlobalRequest, *RequestSuccess, *ChannelOpen, *OpenConfirm, *ChannelRequest, *OpenFailure:
		// OpenFailure: an omitted language tag is accepted.
		return true
	}
	return false
}

func TestNamesBounded(t *testing.T) {
	long := strings.Repeat("x", maxNameLen+1)
	if _, err := ParseChannelOpen((&ChannelOpen{Type: long, MaxPacket: 1}).Marshal()); err == nil {
		t.Error("channel type past 256 bytes parsed")
	}
	if _, err := ParseGlobalRequest((&GlobalRequest{Name: long}).Marshal()); err == nil {
		t.Error("global request name past 256 bytes parsed")
	}
	if _, err := ParseChannelRequest((&ChannelRequest{Type: long}).Marshal()); err == nil {
		t.Error("request type past 256 bytes parsed")
	}
	if _, err := ParseDirectTCPIP((&DirectTCPIP{Host: long}).Marshal()); err == nil {
		t.Error("host past 256 bytes parsed")
	}
	if _, err := ParseDirectTCPIP((&DirectTCPIP{Host: "h", Port: 65536}).Marshal()); err == nil {
		t.Error("port 65536 parsed")
	}
}
