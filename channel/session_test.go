package channel

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rsftp/rsftp/internal/connmsg"
)

// TestSessionTerminalRequests: RequestPty, WindowChange, Break and
// Signal send what RFC 4254 and RFC 4335 say, and a refused pty-req is
// an error that leaves the session usable.
func TestSessionTerminalRequests(t *testing.T) {
	ma, mb := muxPair(t, nil, nil)
	h := mb.HandleChannelOpen("session")
	got := make(chan *Request, 8)
	refuse := make(chan bool, 1)
	refuse <- false
	go func() {
		nc := <-h
		c, _ := nc.Accept()
		for r := range c.Requests() {
			ok := true
			if r.Type == "pty-req" {
				ok = !<-refuse
				refuse <- true
			}
			r.Reply(ok, nil)
			got <- r
		}
	}()
	s, err := ma.NewSession(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	modes := TerminalModes{{Opcode: 53, Value: 0}, {Opcode: 1, Value: 3}}
	if err := s.RequestPty(ctxT(t), "xterm", 80, 24, modes); err != nil {
		t.Fatal(err)
	}
	r := <-got
	pty, err := connmsg.ParsePtyRequest(r.Payload)
	if err != nil || !r.WantReply {
		t.Fatalf("pty-req %v (want reply %v)", err, r.WantReply)
	}
	want := &connmsg.PtyRequest{Term: "xterm", Cols: 80, Rows: 24, Modes: modes.connmsg()}
	if diff := cmp.Diff(want, pty); diff != "" {
		t.Errorf("pty-req: %s", diff)
	}
	if err := s.RequestPty(ctxT(t), "xterm", -1, 1<<40, nil); err == nil {
		t.Error("a refused pty-req is no error")
	}
	r = <-got
	if pty, err := connmsg.ParsePtyRequest(r.Payload); err != nil || pty.Cols != 0 || pty.Rows != 1<<32-1 {
		t.Errorf("pty-req of -1 by 2^40: %+v %v, want clamped", pty, err)
	}

	if err := s.WindowChange(132, 43); err != nil {
		t.Fatal(err)
	}
	r = <-got
	if wc, err := connmsg.ParseWindowChange(r.Payload); r.Type != "window-change" || r.WantReply || err != nil || wc.Cols != 132 || wc.Rows != 43 {
		t.Errorf("window-change: %s %v %+v %v", r.Type, r.WantReply, wc, err)
	}
	if err := s.Break(300); err != nil {
		t.Fatal(err)
	}
	r = <-got
	if b, err := connmsg.ParseBreak(r.Payload); r.Type != "break" || r.WantReply || err != nil || b.Millis != 300 {
		t.Errorf("break: %s %v %+v %v", r.Type, r.WantReply, b, err)
	}
	if err := s.Signal("INT"); err != nil {
		t.Fatal(err)
	}
	r = <-got
	if sg, err := connmsg.ParseSignal(r.Payload); r.Type != "signal" || r.WantReply || err != nil || sg.Name != "INT" {
		t.Errorf("signal: %s %v %+v %v", r.Type, r.WantReply, sg, err)
	}
	s.Close()
}
