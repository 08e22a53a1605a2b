package testvectors

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/rsftp/rsftp/resume"
)

const resumeCountingFile = "data/resume-counting-v00.json"

// countingEvent is one message a side sends (docs/PROTOCOL.resume.md
// section 5): its number if it is counted, whether it reaches the peer,
// and, for an ACK, the count it carries. Events are listed in the order
// each side sends; a message from one side and one from the other are in
// no particular order (each direction is counted on its own). A CUT ends
// the connection; messages after it are written while the session is
// detached.
type countingEvent struct {
	From      string  `json:"from,omitempty"` // "client" or "server"; none for CUT
	Msg       string  `json:"msg"`
	Type      byte    `json:"type,omitempty"`   // message number
	Size      int     `json:"size,omitempty"`   // payload bytes, the message number included
	Number    *uint64 `json:"number,omitempty"` // set for counted messages
	Delivered bool    `json:"delivered"`
	Ack       *uint64 `json:"ack,omitempty"` // the count an ACK carries
	// AckDue: with this message the receiver's unacknowledged counted
	// messages reach 256, or their bytes 256 KiB: it owes an ACK now.
	AckDue bool   `json:"ack_due,omitempty"`
	Note   string `json:"note,omitempty"`
}

// countingSide is one side's counts when the client reconnects.
type countingSide struct {
	Sent     uint64 `json:"sent"`
	Acked    uint64 `json:"acked"` // the highest count the peer acknowledged, as this side knows it
	Received uint64 `json:"received"`
}

type countingVector struct {
	Comment string          `json:"comment"`
	Events  []countingEvent `json:"events"`
	Client  countingSide    `json:"client"`
	Server  countingSide    `json:"server"`
	// RequestCount is the client's received count in RESUME_REQUEST,
	// AcceptCount the server's in RESUME_ACCEPT; each side then resends
	// its retained messages from the peer's count on, in order.
	RequestCount  uint64   `json:"request_count"`
	AcceptCount   uint64   `json:"accept_count"`
	ServerResends []uint64 `json:"server_resends"`
	ClientResends []uint64 `json:"client_resends"`
}

// Thresholds of the acknowledgement rule, written here from the document
// (not taken from package resume).
const (
	refAckBytes    = 256 * 1024
	refAckMessages = 256
)

// refCounting computes numbers, ACK counts, due ACKs and the resumption
// from a vector's events, as the document states them, with plain
// integers.
func refCounting(v *countingVector) error {
	type side struct {
		sent, acked, received uint64
		lastAck               uint64 // count of our last ACK
		unackedBytes          int
	}
	sides := map[string]*side{"client": {}, "server": {}}
	peer := map[string]string{"client": "server", "server": "client"}
	cut := false
	for i := range v.Events {
		e := &v.Events[i]
		e.Number, e.Ack, e.AckDue = nil, nil, false
		if e.Msg == "CUT" {
			cut = true
			continue
		}
		me, other := sides[e.From], sides[peer[e.From]]
		if cut && e.Delivered {
			return fmt.Errorf("event %d delivered after the cut", i)
		}
		switch {
		case e.Type == 204: // ACK
			n := me.received
			e.Ack = &n
			me.lastAck, me.unackedBytes = n, 0
			if e.Delivered {
				if n < other.acked {
					return fmt.Errorf("event %d: ACK goes backwards", i)
				}
				other.acked = n
			}
		case e.Type >= 80 && e.Type <= 127:
			n := me.sent
			e.Number = &n
			me.sent++
			if e.Delivered {
				other.received++
				other.unackedBytes += e.Size
				e.AckDue = other.unackedBytes >= refAckBytes || other.received-other.lastAck >= refAckMessages
			}
		}
	}
	c, s := sides["client"], sides["server"]
	v.Client = countingSide{c.sent, c.acked, c.received}
	v.Server = countingSide{s.sent, s.acked, s.received}
	v.RequestCount, v.AcceptCount = c.received, s.received
	if v.RequestCount < s.acked || v.RequestCount > s.sent || v.AcceptCount < c.acked || v.AcceptCount > c.sent {
		return fmt.Errorf("a count out of range")
	}
	v.ServerResends, v.ClientResends = []uint64{}, []uint64{}
	for n := v.RequestCount; n < s.sent; n++ {
		v.ServerResends = append(v.ServerResends, n)
	}
	for n := v.AcceptCount; n < c.sent; n++ {
		v.ClientResends = append(v.ClientResends, n)
	}
	return nil
}

func ev(from, msg string, typ byte, size int, delivered bool, note string) countingEvent {
	return countingEvent{From: from, Msg: msg, Type: typ, Size: size, Delivered: delivered, Note: note}
}

func ackEv(from string, delivered bool, note string) countingEvent {
	return ev(from, "ACK", 204, 9, delivered, note)
}

var cutEv = countingEvent{Msg: "CUT", Note: "the connection is lost; the client reconnects and sends RESUME_REQUEST"}

func resumeCountingInputs() []countingVector {
	const c, s = "client", "server"
	session := countingVector{
		Comment: "an SFTP session: a CHANNEL_OPEN pipelined behind the last USERAUTH_REQUEST, a global request, an ACK before a WINDOW_ADJUST, a re-exchange during which a message is written, messages and an ACK lost with the connection, and messages written while detached",
		Events: []countingEvent{
			ev(c, "USERAUTH_REQUEST", 50, 412, true, "not counted: counting starts after authentication"),
			ev(c, "CHANNEL_OPEN session", 90, 24, true, "pipelined: sent before USERAUTH_SUCCESS arrived. The client counts and retains from its first connection-protocol message; the server counts it, since it reads it after sending USERAUTH_SUCCESS"),
			ev(s, "USERAUTH_SUCCESS", 52, 1, true, "not counted"),
			ev(s, "RESUME_ENABLE", 200, 45, true, "the server's first message after USERAUTH_SUCCESS; not counted"),
			ev(s, "IGNORE", 2, 9, true, "transport: not counted"),
			ev(s, "CHANNEL_OPEN_CONFIRMATION", 91, 17, true, ""),
			ev(c, "CHANNEL_REQUEST subsystem sftp", 98, 32, true, ""),
			ev(s, "CHANNEL_SUCCESS", 99, 5, true, ""),
			ev(c, "CHANNEL_DATA (SSH_FXP_INIT)", 94, 22, true, ""),
			ev(s, "CHANNEL_DATA (SSH_FXP_VERSION)", 94, 109, true, ""),
			ev(c, "GLOBAL_REQUEST keepalive@openssh.com", 80, 31, true, "counted like any connection-protocol message"),
			ev(s, "REQUEST_FAILURE", 82, 1, true, ""),
			ackEv(s, true, "the idle rule: one second after the first unacknowledged message"),
			ev(c, "CHANNEL_DATA (SSH_FXP_WRITE, 32 KiB)", 94, 32809, true, ""),
			ev(c, "CHANNEL_DATA (SSH_FXP_WRITE, 32 KiB)", 94, 32809, true, ""),
			ev(s, "CHANNEL_DATA (SSH_FXP_STATUS)", 94, 37, true, ""),
			ackEv(c, true, "owed before the WINDOW_ADJUST that follows"),
			ev(c, "CHANNEL_WINDOW_ADJUST", 93, 9, true, ""),
			ev(s, "KEXINIT", 20, 300, true, "a re-exchange: transport, not counted"),
			ev(c, "KEXINIT", 20, 300, true, ""),
			ev(c, "CHANNEL_DATA (SSH_FXP_WRITE, 32 KiB)", 94, 32809, false, "written during the re-exchange: numbered when written, held by the transport until NEWKEYS, then lost with the connection"),
			ev(s, "CHANNEL_DATA (SSH_FXP_STATUS)", 94, 37, true, ""),
			ev(s, "CHANNEL_DATA (SSH_FXP_STATUS)", 94, 37, false, "lost with the connection"),
			ackEv(s, false, "lost with the connection: the count in RESUME_ACCEPT supersedes it"),
			cutEv,
			ev(c, "CHANNEL_DATA (SSH_FXP_WRITE, 32 KiB)", 94, 32809, false, "written while detached: numbered and retained, sent after the resend"),
			ev(s, "CHANNEL_DATA (SSH_FXP_STATUS)", 94, 37, false, "written while detached"),
		},
	}

	messages := countingVector{
		Comment: "the message rule: the 256th unacknowledged counted message makes an ACK due; two messages lost at the cut",
		Events: []countingEvent{
			ev(c, "CHANNEL_OPEN session", 90, 24, true, ""),
			ev(s, "CHANNEL_OPEN_CONFIRMATION", 91, 17, true, ""),
		},
	}
	for i := 1; i < 258; i++ {
		e := ev(s, "CHANNEL_DATA", 94, 109, true, "")
		if i == 255 {
			messages.Events = append(messages.Events, e, ackEv(c, true, "due: 256 messages unacknowledged"))
			continue
		}
		messages.Events = append(messages.Events, e)
	}
	messages.Events = append(messages.Events,
		ev(s, "CHANNEL_DATA", 94, 109, false, "lost"),
		ev(s, "CHANNEL_DATA", 94, 109, false, "lost"),
		cutEv,
	)

	bytesRule := countingVector{
		Comment: "the byte rule: 8 CHANNEL_DATA of 32777 bytes (32 KiB of data) pass 256 KiB, so the 8th makes an ACK due; the client's WINDOW_ADJUST reached the server but was never acknowledged, so it is not resent",
		Events: []countingEvent{
			ev(c, "CHANNEL_OPEN session", 90, 24, true, ""),
			ev(s, "CHANNEL_OPEN_CONFIRMATION", 91, 17, true, ""),
		},
	}
	for i := 0; i < 8; i++ {
		bytesRule.Events = append(bytesRule.Events, ev(s, "CHANNEL_DATA", 94, 32777, true, ""))
	}
	bytesRule.Events = append(bytesRule.Events,
		ackEv(c, true, "due (262216 bytes), and owed before the WINDOW_ADJUST"),
		ev(c, "CHANNEL_WINDOW_ADJUST", 93, 9, true, ""),
		ev(s, "CHANNEL_DATA", 94, 32777, true, ""),
		ev(s, "CHANNEL_DATA", 94, 32777, false, "lost"),
		cutEv,
	)
	return []countingVector{session, messages, bytesRule}
}

const resumeCountingSource = "Not published. Computed by refCounting in testvectors/resume_counting_test.go (plain integers; no rsftp code) " +
	"from hand-written event lists, after docs/PROTOCOL.resume.md sections 5, 6.4 and 7. " +
	"Regenerate with go test ./testvectors -run TestResumeCountingVectors -update-resume."

func countingPayload(e countingEvent) []byte {
	p := make([]byte, e.Size)
	p[0] = e.Type
	return p
}

func TestResumeCountingVectors(t *testing.T) {
	want := resumeCountingInputs()
	for i := range want {
		if err := refCounting(&want[i]); err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
	}
	if *updateResume {
		writeVectors(t, resumeCountingFile, resumeCountingSource, want)
	}
	f, err := load[countingVector](resumeCountingFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) != len(want) {
		t.Fatalf("%d vectors in the file, %d computed", len(f.Vectors), len(want))
	}
	for i, v := range f.Vectors {
		fb, _ := json.Marshal(v)
		wb, _ := json.Marshal(want[i])
		if !bytes.Equal(fb, wb) {
			t.Fatalf("vector %d: file and reference disagree", i)
		}
		checkCountingWithResume(t, i, v)
	}
}

// checkCountingWithResume replays a vector through package resume's
// Sender and Receiver: each side's numbers, due ACKs, ACK counts, ranges
// and resends must be the file's.
func checkCountingWithResume(t *testing.T, i int, v countingVector) {
	t.Helper()
	type side struct {
		send resume.Sender
		recv resume.Receiver
		sent map[uint64][]byte
	}
	sides := map[string]*side{"client": {sent: map[uint64][]byte{}}, "server": {sent: map[uint64][]byte{}}}
	peer := map[string]string{"client": "server", "server": "client"}
	for j, e := range v.Events {
		if e.Msg == "CUT" {
			continue
		}
		me, other := sides[e.From], sides[peer[e.From]]
		switch {
		case e.Type == resume.MsgAck:
			a := me.recv.MakeAck()
			if e.Ack == nil || a.Received != *e.Ack {
				t.Fatalf("vector %d event %d: ACK of %d", i, j, a.Received)
			}
			if e.Delivered {
				if err := other.send.Ack(a.Received); err != nil {
					t.Fatalf("vector %d event %d: %v", i, j, err)
				}
			}
		case resume.Counted(e.Type):
			p := countingPayload(e)
			n, err := me.send.Record(p)
			if err != nil || e.Number == nil || n != *e.Number {
				t.Fatalf("vector %d event %d: numbered %d (%v)", i, j, n, err)
			}
			me.sent[n] = p
			if e.Delivered {
				if due := other.recv.Count(len(p)); due != e.AckDue {
					t.Fatalf("vector %d event %d: Receiver.Count says an ACK is due: %v, the file: %v", i, j, due, e.AckDue)
				}
			}
		default:
			if e.Number != nil {
				t.Fatalf("vector %d event %d: message %d is numbered", i, j, e.Type)
			}
		}
	}
	c, s := sides["client"], sides["server"]
	for name, got := range map[string][2]countingSide{
		"client": {{c.send.Sent(), c.send.Acked(), c.recv.Received()}, v.Client},
		"server": {{s.send.Sent(), s.send.Acked(), s.recv.Received()}, v.Server},
	} {
		if got[0] != got[1] {
			t.Fatalf("vector %d: %s's counts %+v, the file %+v", i, name, got[0], got[1])
		}
	}
	if c.recv.Received() != v.RequestCount || s.recv.Received() != v.AcceptCount {
		t.Fatalf("vector %d: request and accept counts", i)
	}
	for _, r := range []struct {
		name    string
		s       *side
		from    uint64
		resends []uint64
	}{{"server", s, v.RequestCount, v.ServerResends}, {"client", c, v.AcceptCount, v.ClientResends}} {
		if !resume.CountInRange(r.from, r.s.send.Acked(), r.s.send.Sent()) {
			t.Fatalf("vector %d: the %s finds the peer's count %d out of range", i, r.name, r.from)
		}
		msgs, err := r.s.send.Resend(r.from)
		if err != nil || len(msgs) != len(r.resends) {
			t.Fatalf("vector %d: the %s resends %d messages (%v), the file %d", i, r.name, len(msgs), err, len(r.resends))
		}
		for k, m := range msgs {
			if !bytes.Equal(m, r.s.sent[r.resends[k]]) {
				t.Fatalf("vector %d: the %s's resend %d is not message %d", i, r.name, k, r.resends[k])
			}
		}
		// A count outside the range is refused and changes nothing.
		if _, err := r.s.send.Resend(r.s.send.Sent() + 1); err == nil {
			t.Fatalf("vector %d: the %s resends from past what it sent", i, r.name)
		}
		if r.s.send.Acked() > 0 {
			if _, err := r.s.send.Resend(r.s.send.Acked() - 1); err == nil {
				t.Fatalf("vector %d: the %s resends from before what was acknowledged", i, r.name)
			}
		}
	}
}
