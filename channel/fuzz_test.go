package channel

import (
	"runtime"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/connmsg"
	"github.com/rsftp/rsftp/internal/wire"
)

// FuzzMuxPackets feeds a multiplexer, with one open channel, a sequence of
// packets from a hostile peer. It must never panic or hang; whatever it
// makes of them, the connection either goes on or ends with an error.
func FuzzMuxPackets(f *testing.F) {
	f.Add((&connmsg.WindowAdjust{Recipient: 0, Bytes: 10}).Marshal())
	f.Add((&connmsg.Data{Recipient: 0, Data: []byte("hi")}).Marshal())
	f.Add((&connmsg.Data{Recipient: 0, Extended: true, Code: 1, Data: []byte("hi")}).Marshal())
	f.Add((&connmsg.ChannelRequest{Recipient: 0, Type: "exit-status", Payload: []byte{0, 0, 0, 1}}).Marshal())
	f.Add((&connmsg.ChannelOpen{Type: "x", Sender: 9, Window: 5, MaxPacket: 5}).Marshal())
	f.Add((&connmsg.GlobalRequest{Name: "tcpip-forward", WantReply: true}).Marshal())
	f.Add((&connmsg.OpenConfirm{Recipient: 1, Sender: 2, Window: 3, MaxPacket: 4}).Marshal())
	f.Add((&connmsg.OpenFailure{Recipient: 1, Reason: 2, Message: "no"}).Marshal())
	f.Add([]byte{wire.MsgChannelEOF, 0, 0, 0, 0, wire.MsgChannelClose, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		wd := time.AfterFunc(10*time.Second, func() {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			panic("hung:\n" + string(buf[:n]))
		})
		defer wd.Stop()
		a, raw := pipePair()
		m := NewMux(PlainConn(a), &Config{WindowSize: 4096, MaxPacket: 1024})
		defer m.Close()
		h := m.HandleChannelOpen("x")
		raw.WritePacket((&connmsg.ChannelOpen{Type: "x", Sender: 1, Window: 1 << 20, MaxPacket: 1 << 15}).Marshal())
		c, err := (<-h).Accept()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for range c.Requests() {
			}
		}()
		// Split data into packets: each starts with a length byte.
		for len(data) > 0 {
			n := int(data[0])
			data = data[1:]
			if n == 0 || n > len(data) {
				n = len(data)
			}
			raw.WritePacket(data[:n])
			data = data[n:]
		}
		// Let the mux consume everything (or die), then stop it.
		for len(raw.out) > 0 {
			select {
			case <-m.Done():
			case <-raw.in:
			default:
			}
			if len(raw.out) > 0 {
				select {
				case <-m.Done():
				default:
					continue
				}
			}
			break
		}
		m.Close()
		<-m.Done()
		c.Write([]byte("x"))
		c.Read(make([]byte, 4))
	})
}
