package rsftp

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/internal/connmsg"
)

// msgPipe is one end of an in-memory connection of whole messages.
type msgPipe struct {
	in   <-chan []byte
	out  chan<- []byte
	done chan struct{}
	once *sync.Once
}

func newMsgPipes() (a, b *msgPipe) {
	ab, ba := make(chan []byte, 256), make(chan []byte, 256)
	done, once := make(chan struct{}), &sync.Once{}
	return &msgPipe{ba, ab, done, once}, &msgPipe{ab, ba, done, once}
}

func (p *msgPipe) ReadPacket() ([]byte, error) {
	select {
	case m := <-p.in:
		return m, nil
	case <-p.done:
		return nil, io.EOF
	}
}

func (p *msgPipe) WritePacket(m []byte) error {
	select {
	case p.out <- append([]byte(nil), m...):
		return nil
	case <-p.done:
		return io.ErrClosedPipe
	}
}

func (p *msgPipe) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}

// TestClientForwardsRouting: what a server opens towards the client is
// refused unless the client asked for it: an agent channel before any
// ForwardAgent (Prohibited), a forwarded-tcpip or forwarded-streamlocal
// for a forward nobody made, malformed extra data; once asked, an agent
// channel reaches the dialled agent.
func TestClientForwardsRouting(t *testing.T) {
	ctx := context.Background()
	a, b := newMsgPipes()
	f := newClientForwards()
	cm := channel.NewMux(channel.PlainConn(a), nil, f.register)
	f.start(cm)
	sm := channel.NewMux(channel.PlainConn(b), nil)
	defer cm.Close()
	defer sm.Close()

	refused := func(typ string, extra []byte, reason uint32) {
		t.Helper()
		_, err := sm.OpenChannel(ctx, typ, extra)
		var oe *channel.OpenError
		if !errors.As(err, &oe) || oe.Reason != reason {
			t.Errorf("%s open: %v, want reason %d", typ, err, reason)
		}
	}
	refused(connmsg.ChanAgent, nil, channel.Prohibited)
	refused(connmsg.ChanForwardedTCPIP, (&connmsg.ForwardedTCPIP{Host: "localhost", Port: 80, OriginAddr: "1.2.3.4", OriginPort: 5}).Marshal(), channel.ConnectFailed)
	refused(connmsg.ChanForwardedTCPIP, []byte("junk"), channel.ConnectFailed)
	refused(connmsg.ChanForwardedStreamLocal, (&connmsg.ForwardedStreamLocal{Path: "/nowhere"}).Marshal(), channel.ConnectFailed)
	refused("x11", nil, channel.UnknownChannelType)

	// As ForwardAgent leaves it once the server agreed.
	f.mu.Lock()
	f.agentDial = func(context.Context) (net.Conn, error) {
		c1, c2 := net.Pipe()
		go func() { io.Copy(c2, c2); c2.Close() }()
		return c1, nil
	}
	f.mu.Unlock()
	ch, err := sm.OpenChannel(ctx, connmsg.ChanAgent, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(ch, "agent bytes")
	buf := make([]byte, 11)
	if _, err := io.ReadFull(ch, buf); err != nil || string(buf) != "agent bytes" {
		t.Fatalf("through the agent channel: %q, %v", buf, err)
	}
	ch.Close()

	// A listener's queue is bounded: past maxAcceptQueue unaccepted
	// connections, opens are refused with resource-shortage.
	l := newForwardListener(f)
	l.key = tcpForwardKey{"localhost", 80}
	l.addr = forwardTCPAddr("localhost", 80)
	f.mu.Lock()
	f.tcp[l.key] = l
	f.mu.Unlock()
	extra := (&connmsg.ForwardedTCPIP{Host: "localhost", Port: 80, OriginAddr: "1.2.3.4", OriginPort: 5}).Marshal()
	results := make(chan error, maxAcceptQueue+1)
	for range maxAcceptQueue + 1 {
		go func() {
			c, err := sm.OpenChannel(ctx, connmsg.ChanForwardedTCPIP, extra)
			if err == nil {
				c.Close()
			}
			results <- err
		}()
	}
	// The one refused answers while the others wait for Accept.
	err = <-results
	var oe *channel.OpenError
	if !errors.As(err, &oe) || oe.Reason != channel.ResourceShortage {
		t.Fatalf("open past the queue: %v, want resource shortage", err)
	}
	for range maxAcceptQueue {
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if got := c.RemoteAddr().String(); got != "1.2.3.4:5" {
			t.Errorf("RemoteAddr %s", got)
		}
		c.Close()
	}
	for range maxAcceptQueue {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
}
