package resume

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rsftp/rsftp/internal/wire"
)

// Transport is what a session needs from one connection, after the key
// exchange (and, on the first connection, user authentication):
// transport.Conn implements it. The write methods must be safe for
// concurrent use; ReadPacket and RetainPacket belong to the goroutine
// that reads. None of the writes keeps what it is given.
type Transport interface {
	// ReadPacket returns the next message, valid until the next call
	// (or until released, see RetainPacket).
	ReadPacket() ([]byte, error)
	// RetainPacket keeps the message ReadPacket last returned valid, and
	// unchanged, until the result is released, or returns nil (the
	// caller then copies): the session passes it on as its own
	// RetainPacket (channel.PacketConn). It comes before the next
	// ReadPacket.
	RetainPacket() interface{ Release() }
	// WritePacket sends message p; p is the caller's again when it
	// returns.
	WritePacket(p []byte) error
	// WritePacketBackground is WritePacket for a message that may leave
	// through the connection's own writer after the call returns: the
	// ACKs that the goroutine reading packets sends, which must not
	// wait for the system call.
	WritePacketBackground(p []byte) error
	// SealFrame sends the message at frame[wire.FrameHeadroom:], which
	// has wire.FrameTailroom spare bytes of capacity after it (a frame
	// of the session's Sender), and does not keep frame: the session
	// retains it until the peer acknowledges the message, and seals it
	// again on the connection it resumes on. The headroom and the spare
	// capacity are scratch; the message must be left as it was.
	// (Contrast channel.PacketConn's WriteFrame, which takes its buffer.)
	SealFrame(frame []byte) error
	// Abort drops the connection without DISCONNECT: the peer sees a
	// lost link, not the end of the session.
	Abort() error
	// Disconnect ends the connection with a DISCONNECT of the given
	// reason (a protocol error ends the session this way).
	Disconnect(reason uint32, msg string) error
	// Close ends the connection with DISCONNECT by application: for the
	// peer, the end of the session.
	Close() error
	// SessionID is the exchange hash of the connection's first key
	// exchange.
	SessionID() []byte
}

// sessionEnder is implemented by errors that end a session for good (a
// DISCONNECT), as opposed to a lost connection.
type sessionEnder interface{ SessionEnded() bool }

func endsSession(err error) bool {
	var se sessionEnder
	return errors.As(err, &se) && se.SessionEnded()
}

// State is a session's attachment state (specification section 7).
type State int

const (
	Attached State = iota
	Detached
	Closed
)

func (s State) String() string {
	switch s {
	case Attached:
		return "attached"
	case Detached:
		return "detached"
	}
	return "closed"
}

// ErrSessionClosed is returned once a session ended.
var ErrSessionClosed = errors.New("resume: session closed")

// IdleAck is how long a receiver waits before acknowledging what
// arrived when no more follows.
const IdleAck = time.Second

// Session is one resumable SSH session on either side. It sits between
// the transport of the current connection and the connection protocol
// (it implements channel.PacketConn): it counts, retains and
// acknowledges connection-layer messages, and survives the replacement of
// its transport. Its state is visible through Stats.
type Session struct {
	isClient bool
	handle   []byte
	rk       []byte
	hold     time.Duration

	// writeMu orders writes against the resend of an attach. Nobody
	// waits for retention room while holding it: a resumption needs it
	// to resend what makes room.
	writeMu sync.Mutex
	// ackMu orders ACKs on the wire as they were made: the reader, the
	// idle timer and a WINDOW_ADJUST all send them, and an ACK overtaken
	// by a later one would go backwards, which the peer must treat as an
	// error. Lock order: writeMu, ackMu, mu.
	ackMu sync.Mutex

	mu        sync.Mutex
	cond      sync.Cond
	state     State
	cur       Transport
	gen       uint64 // increments with each attach
	send      Sender
	recv      Receiver
	err       error // why the session closed
	resuming  bool
	ackTimer  *time.Timer
	detached  chan struct{} // closed and replaced at each detach
	detachErr error
	detachAt  time.Time
	stats     Stats
	done      chan struct{} // closed when the session closes
	// budget is charged with what the retained messages occupy (charged,
	// kept equal to send.Held()); room is closed and replaced when
	// retention shrinks, waking writers of channel data that wait for it.
	budget  *Budget
	charged int64
	room    chan struct{}
	// earlyAck: a write acknowledges on its way once this many bytes
	// are unacknowledged (0: never); see SetEarlyAck.
	earlyAck int
	// holdAcks keeps ACKs back on a connection until the server's
	// RESUME_ACCEPT has gone out on it: the answer comes first.
	holdAcks bool
	// observers hear of each change of state (Observe).
	observers []func(State)
	// beforeWait is called before a write waits for retention room
	// (SetBeforeWait).
	beforeWait func()

	lastRead Transport // what ReadPacket last returned a message from; the reader's own
}

// Stats are a session's counters.
type Stats struct {
	Sent, Acked, Received uint64 // counted messages
	// RetainedBytes are the unacknowledged messages' bytes; HeldBytes the
	// memory they occupy (what limits and budgets count).
	RetainedBytes, HeldBytes int
	Attaches                 int // connections the session has run on
	ResentMessages           uint64
	ResentBytes              uint64
	AcksSent                 uint64
	// LastResentBytes is what the last attach resent; LastOffline how
	// long the session was detached before it.
	LastResentBytes uint64
	LastOffline     time.Duration
}

func newSession(isClient bool, t Transport, rk, handle []byte, hold time.Duration) *Session {
	s := &Session{
		isClient: isClient,
		handle:   bytes.Clone(handle),
		rk:       bytes.Clone(rk),
		hold:     hold,
		earlyAck: DefaultEarlyAck,
		cur:      t,
		detached: make(chan struct{}),
		done:     make(chan struct{}),
		room:     make(chan struct{}),
	}
	s.cond.L = &s.mu
	s.stats.Attaches = 1
	return s
}

// Handle is the session's handle.
func (s *Session) Handle() []byte { return bytes.Clone(s.handle) }

// Hold is the server's hold time as announced.
func (s *Session) Hold() time.Duration { return s.hold }

// State reports the attachment state.
func (s *Session) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Stats returns the counters.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Sent, st.Acked, st.Received = s.send.Sent(), s.send.Acked(), s.recv.Received()
	_, st.RetainedBytes = s.send.Retained()
	st.HeldBytes = s.send.Held()
	return st
}

// Observe has fn called at each change of the session's state, after the
// change, from the goroutine that made it; fn must not block or call back
// into the session's writes. A session that is already closed calls it at
// once.
func (s *Session) Observe(fn func(State)) {
	s.mu.Lock()
	s.observers = append(s.observers, fn)
	closed := s.state == Closed
	s.mu.Unlock()
	if closed {
		fn(Closed)
	}
}

func (s *Session) notify(st State) {
	s.mu.Lock()
	obs := s.observers
	s.mu.Unlock()
	for _, fn := range obs {
		fn(st)
	}
}

// SetRetentionLimit bounds the memory the session's unacknowledged
// messages may occupy (DefaultRetention if n <= 0).
func (s *Session) SetRetentionLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.send.Limit = n
	s.wakeLocked()
}

// DefaultEarlyAck is the unacknowledged payload at which a session's
// writes carry an ACK ahead of their message (SetEarlyAck).
const DefaultEarlyAck = 64 << 10

// SetEarlyAck makes each counted message written while n bytes or more
// of what was received are unacknowledged carry an ACK ahead of it, in
// the same write to the connection (section 5.4 allows an ACK at any
// time); 0 turns this off. The default is DefaultEarlyAck. It saves a
// write only where a side writes before the reader's own rules (section
// 5.4: 256 KiB, 256 messages) make it acknowledge. rsftp get does not:
// a READ reply of 255 KiB is 8 packets whose last passes 256 KiB, so the
// reader's ACK goes first, alone, and the next READ request finds
// nothing to carry (strace of the client, 1 GiB: 700-1,100 ACKs written
// alone before and after this, issue 17). A transport whose
// WritePacketBackground writes separately from the messages that follow
// gains nothing from it (tlsresume).
func (s *Session) SetEarlyAck(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.earlyAck = max(n, 0)
}

// SetBeforeWait has fn called, with no lock of the session held, each
// time a write of channel data is about to wait for retention room (for
// the peer's ACK, or the budget). A transport that holds written
// messages back to send several in one system call (tlsresume's links)
// sends them there: the ACK that makes room can only come once the peer
// has them. fn must not write to the session.
func (s *Session) SetBeforeWait(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.beforeWait = fn
}

// syncHeldLocked charges or releases the budget for a change of what the
// retained messages hold, and wakes writers waiting for room when it
// shrank.
func (s *Session) syncHeldLocked() {
	h := int64(s.send.Held())
	d := h - s.charged
	s.charged = h
	switch {
	case d > 0:
		s.budget.Charge(d)
	case d < 0:
		s.budget.Release(-d)
		s.wakeLocked()
	}
}

func (s *Session) wakeLocked() {
	close(s.room)
	s.room = make(chan struct{})
}

// roomLocked reports whether channel data of n bytes may be retained now:
// within the session's limit and the budget (whose share it then charges
// ahead). A session that retains nothing always may send one message, so
// that each session makes progress however the budget is shared.
func (s *Session) roomLocked(n int) bool {
	if s.send.Full(n) {
		return false
	}
	est := int64(HeldSize(n))
	if !s.budget.TryCharge(est) {
		if m, _ := s.send.Retained(); m > 0 {
			return false
		}
		s.budget.Charge(est)
	}
	s.charged += est
	return true
}

// Detached returns a channel closed when the session loses its current
// connection (closed already if it is not attached), and a function that
// returns the error that caused it.
func (s *Session) Detached() (<-chan struct{}, func() error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.detached
	if s.state != Attached {
		// Already detached (or closed): report it at once.
		closed := make(chan struct{})
		close(closed)
		ch = closed
	}
	return ch, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.detachErr
	}
}

// EnableServer starts a session on the server right after
// USERAUTH_SUCCESS: it sends RESUME_ENABLE with a fresh handle.
func EnableServer(t Transport, rk []byte, hold time.Duration) (*Session, error) {
	s, enable, err := newServerSession(t, rk, hold)
	if err != nil {
		return nil, err
	}
	if err := t.WritePacket(enable); err != nil {
		return nil, err
	}
	return s, nil
}

// holdSeconds is a hold time as announced: whole seconds, rounded up (a
// hold under a second would read as 0, "not resumable").
func holdSeconds(hold time.Duration) uint32 {
	return uint32(min((hold+time.Second-1)/time.Second, 1<<32-1))
}

// newServerSession makes a server session with a fresh handle and returns
// the RESUME_ENABLE that announces it, for the caller to send once the
// session can be found by its handle.
func newServerSession(t Transport, rk []byte, hold time.Duration) (*Session, []byte, error) {
	if len(rk) == 0 {
		return nil, nil, errors.New("resume: the extension was not negotiated")
	}
	handle := make([]byte, HandleLen)
	if _, err := rand.Read(handle); err != nil {
		return nil, nil, err
	}
	holdS := holdSeconds(hold)
	enable := (&Enable{Handle: handle, HoldSeconds: holdS}).Marshal()
	return newSession(false, t, rk, handle, hold), enable, nil
}

// EnableClient starts a session on the client from the server's
// RESUME_ENABLE, the message after USERAUTH_SUCCESS.
func EnableClient(t Transport, rk []byte, enable []byte) (*Session, error) {
	m, err := ParseEnable(enable)
	if err != nil {
		return nil, err
	}
	if len(rk) == 0 {
		return nil, errors.New("resume: the extension was not negotiated")
	}
	return newSession(true, t, rk, m.Handle, time.Duration(m.HoldSeconds)*time.Second), nil
}

// current waits for an attached transport.
// With now, it does not wait: ErrNoPacket while detached.
func (s *Session) current(now bool) (Transport, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.state == Detached {
		if now {
			return nil, 0, ErrNoPacket
		}
		s.cond.Wait()
	}
	if s.state == Closed {
		return nil, 0, s.err
	}
	return s.cur, s.gen, nil
}

// ReadPacket returns the next connection-layer message, across
// reconnections. ACKs are handled here. It blocks while the session is
// detached.
func (s *Session) ReadPacket() ([]byte, error) { return s.readPacket(false) }

// ErrNoPacket is ReadPacketNow's answer when no message is there to read
// now. A Transport's ReadPacket returns an error that wraps it when its
// read was cut short by a bound its caller set (a poll), the connection
// intact and ready to go on where it stopped.
var ErrNoPacket = errors.New("resume: no message to read now")

// ReadPacketNow is ReadPacket for a reader that bounds its own wait (the
// application's goroutine reading for itself, tlsresume's Conn.Read):
// while the session is detached it returns ErrNoPacket at once instead
// of waiting for the next connection, and a read of the transport that
// ends with ErrNoPacket is returned as it is, the connection kept. Calls
// of ReadPacket, ReadPacketNow and RetainPacket must not overlap (one
// reader at a time, which may change between calls).
func (s *Session) ReadPacketNow() ([]byte, error) { return s.readPacket(true) }

func (s *Session) readPacket(now bool) ([]byte, error) {
	for {
		t, gen, err := s.current(now)
		if err != nil {
			return nil, err
		}
		p, err := t.ReadPacket()
		if err != nil {
			if now && errors.Is(err, ErrNoPacket) {
				return nil, err
			}
			if endsSession(err) {
				// A DISCONNECT ends the session only on the connection
				// the session was attached to when the peer sent it:
				// this one, even if it detached since (a write failed
				// first), but not one the session has left for a newer
				// connection (section 7).
				s.mu.Lock()
				moved := s.gen != gen
				s.mu.Unlock()
				if moved {
					continue
				}
				s.closeWith(err)
				return nil, err
			}
			s.detach(gen, err)
			continue
		}
		switch {
		case p[0] == MsgAck:
			a, err := ParseAck(p)
			if err == nil {
				s.mu.Lock()
				if s.gen != gen || s.state != Attached {
					// From a connection the session has left: the
					// resume exchange superseded it.
					s.mu.Unlock()
					continue
				}
				err = s.send.Ack(a.Received)
				s.syncHeldLocked() // wakes writers waiting for room
				s.mu.Unlock()
			}
			if err != nil {
				err = fmt.Errorf("resume: bad ACK: %w", err)
				s.fail(err)
				return nil, err
			}
		case IsResumeMessage(p[0]):
			err := fmt.Errorf("resume: unexpected message %d in an attached session", p[0])
			s.fail(err)
			return nil, err
		case Counted(p[0]):
			s.mu.Lock()
			if s.gen != gen || s.state != Attached {
				// Read from a connection the session has left: the
				// peer resends it on the new one.
				s.mu.Unlock()
				continue
			}
			now := s.recv.Count(len(p))
			if !now && s.ackTimer == nil {
				s.ackTimer = time.AfterFunc(IdleAck, s.idleAck)
			}
			s.mu.Unlock()
			if now {
				s.sendAck(gen, t)
			}
			s.lastRead = t
			return p, nil
		default:
			s.mu.Lock()
			stale := s.gen != gen || s.state != Attached
			s.mu.Unlock()
			if stale {
				continue
			}
			s.lastRead = t
			return p, nil
		}
	}
}

func (s *Session) makeAckLocked() []byte {
	if s.ackTimer != nil {
		s.ackTimer.Stop()
		s.ackTimer = nil
	}
	s.stats.AcksSent++
	return s.recv.MakeAck().Marshal()
}

func (s *Session) idleAck() {
	s.mu.Lock()
	s.ackTimer = nil
	t, gen := s.cur, s.gen
	s.mu.Unlock()
	s.sendAck(gen, t)
}

// sendAck acknowledges what was received so far on t, if the session
// still runs on it (generation gen) and anything is unacknowledged. The
// ACK is made and written under ackMu, so ACKs leave in the order of
// their counts.
func (s *Session) sendAck(gen uint64, t Transport) {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	s.mu.Lock()
	if s.gen != gen || s.state != Attached || !s.recv.Pending() || s.holdAcks {
		s.mu.Unlock()
		return
	}
	ack := s.makeAckLocked()
	s.mu.Unlock()
	// The reader sends most ACKs: the connection's writer goroutine
	// makes the system call, not the goroutine that reads the next
	// packets.
	if err := t.WritePacketBackground(ack); err != nil {
		s.detach(gen, err)
	}
}

// RetainPacket keeps the message ReadPacket last returned valid until the
// result is released, where its connection can (Transport.RetainPacket),
// or returns nil. It belongs to the reading goroutine, like ReadPacket.
func (s *Session) RetainPacket() interface{ Release() } {
	if s.lastRead == nil {
		return nil
	}
	return s.lastRead.RetainPacket()
}

// WritePacket sends a connection-layer message. Counted messages are
// retained first, so one written while detached, or lost with the
// connection, goes out when the session resumes. It blocks while the
// retention limit is reached.
func (s *Session) WritePacket(p []byte) error { return s.write(p, nil) }

// PacketBuffer returns a buffer for WriteFrame (channel.PacketConn):
// append the message of up to n bytes to it. Its first
// wire.FrameHeadroom bytes, and wire.FrameTailroom bytes of capacity after
// the message, are room for the transport to frame the message in place.
// It waits for a write in progress: a buffer freed by an ACK is not
// handed out while that write may still be sealing it.
func (s *Session) PacketBuffer(n int) []byte {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.send.Buffer(n)
}

// WriteFrame is WritePacket for the message appended to buf, a buffer
// from PacketBuffer, and takes buf: the caller must not touch it
// afterwards. A counted message is retained in buf itself, without a
// copy, until the peer acknowledges it; the transport seals it from
// there (Transport.SealFrame, which does not keep it), on this connection
// and on those the session resumes on.
func (s *Session) WriteFrame(buf []byte) error {
	if len(buf) < wire.FrameHeadroom {
		return errors.New("resume: WriteFrame needs a buffer from PacketBuffer")
	}
	return s.write(message(buf), buf)
}

// ErrPeerNotAcking ends a session whose peer leaves more unacknowledged
// than the retention limit and ControlAllowance: the specification
// (section 4) makes acknowledgements owed.
var ErrPeerNotAcking = errors.New("resume: the peer does not acknowledge what it received (retention limit passed)")

// isChannelData reports whether a message is channel data: the one kind
// of counted message a writer may wait to send until retention has room.
func isChannelData(msg byte) bool {
	return msg == wire.MsgChannelData || msg == wire.MsgChannelExtendedData
}

// write sends p, which lies in frame (from PacketBuffer) if frame is not
// nil. Counted messages are sent from their retained, framed copy.
//
// Channel data waits, before it is numbered, until the session's limit
// and budget have room; it waits holding no lock, so a resumption (which
// takes writeMu to resend) is never kept waiting by it. Other messages
// never wait: they are retained past the limit, up to ControlAllowance.
// A WINDOW_ADJUST is preceded by an ACK of everything received: the
// peer then learns that its data arrived before it learns it may send
// more, so what it holds unacknowledged never exceeds the windows we
// granted (section 4).
func (s *Session) write(p, frame []byte) error {
	if len(p) == 0 {
		return errors.New("resume: empty message")
	}
	counted := Counted(p[0])
	adjust := p[0] == wire.MsgChannelWindowAdjust
	// ackLocked: this write holds ackMu and may send an ACK ahead of p.
	// A WINDOW_ADJUST must (section 5.4) and waits for it; other counted
	// messages carry one when it is free (the reader sending its own
	// ACK has it: then this write need not).
	var ackLocked bool
	for {
		s.writeMu.Lock()
		if adjust {
			s.ackMu.Lock()
			ackLocked = true
		} else if counted {
			ackLocked = s.ackMu.TryLock()
		}
		s.mu.Lock()
		if s.state == Closed || !isChannelData(p[0]) || s.roomLocked(len(p)) {
			break
		}
		room, freed, before := s.room, s.budget.Freed(), s.beforeWait
		s.mu.Unlock()
		if ackLocked {
			s.ackMu.Unlock()
			ackLocked = false
		}
		s.writeMu.Unlock()
		if before != nil {
			before()
		}
		select {
		case <-room:
		case <-freed:
		case <-s.done:
		}
	}
	defer s.writeMu.Unlock()
	// ackMu is held only until this write's ACK, if any, is queued in
	// the transport: held through p's own write, a write blocked on a
	// full connection would keep the reader from acknowledging what it
	// received, and two peers caught so at once would each wait for the
	// other's ACK until the liveness check cut the link.
	releaseAck := func() {
		if ackLocked {
			ackLocked = false
			s.ackMu.Unlock()
		}
	}
	defer releaseAck()
	if s.state == Closed {
		s.mu.Unlock()
		return s.err
	}
	if counted {
		var err error
		if frame == nil {
			_, frame, err = s.send.recordCopyIf(p, true)
		} else {
			_, frame, err = s.send.recordOwnedIf(frame, true)
		}
		s.syncHeldLocked()
		if err == nil && s.send.Overflowing() {
			err = ErrPeerNotAcking
		}
		if err != nil {
			s.mu.Unlock()
			if errors.Is(err, ErrPeerNotAcking) {
				s.fail(err)
			}
			return err
		}
	}
	state, t, gen := s.state, s.cur, s.gen
	var ack []byte
	if ackLocked && state == Attached && s.recv.Pending() && !s.holdAcks &&
		(adjust || s.earlyAck > 0 && s.recv.Unacked() >= s.earlyAck) {
		ack = s.makeAckLocked()
	}
	s.mu.Unlock()
	if ack == nil {
		releaseAck()
	}
	if state == Detached {
		return nil // retained; resent on resume
	}
	var err error
	if ack != nil {
		// Sealed now and written with p: the writer goroutine that
		// WritePacketBackground wakes finds p beside it, or p's own
		// write takes both.
		err = t.WritePacketBackground(ack)
		releaseAck()
	}
	if err == nil {
		if frame != nil {
			err = t.SealFrame(frame)
		} else {
			err = t.WritePacket(p)
		}
	}
	if err != nil {
		s.detach(gen, err)
	}
	return nil
}

// detach drops the connection of generation gen (if still current).
func (s *Session) detach(gen uint64, err error) {
	s.mu.Lock()
	if s.gen != gen || s.state != Attached {
		s.mu.Unlock()
		return
	}
	t := s.detachLocked(err)
	s.mu.Unlock()
	s.afterDetach(t)
}

// detachLocked leaves the current connection and returns it, for
// afterDetach once s.mu is released.
func (s *Session) detachLocked(err error) Transport {
	t := s.cur
	s.cur = nil
	s.state = Detached
	s.detachErr = err
	s.detachAt = time.Now()
	close(s.detached)
	s.detached = make(chan struct{})
	s.cond.Broadcast()
	return t
}

func (s *Session) afterDetach(t Transport) {
	s.notify(Detached)
	// Close the connection a moment later, not at once: when a write
	// failed because the peer closed, its DISCONNECT may still wait in
	// our receive buffer, and the reader must see it to tell the end of
	// the session from a lost link. Nothing read from it meanwhile is
	// delivered (the generation moved on).
	time.AfterFunc(lingerAfterDetach, func() { t.Abort() })
}

// detachFor leaves the current connection (if attached) for a
// resumption from count from, in one step with the check that from is
// still in range: once detached, nothing read from the old connection is
// counted or applied, so the attach that follows cannot find it out of
// range (section 6.3: nothing is refused after the session moved).
func (s *Session) detachFor(from uint64, reason error) error {
	s.mu.Lock()
	if s.state == Closed {
		s.mu.Unlock()
		return s.err
	}
	if !CountInRange(from, s.send.Acked(), s.send.Sent()) {
		acked, sent := s.send.Acked(), s.send.Sent()
		s.mu.Unlock()
		return fmt.Errorf("received count %d out of range: %d acknowledged, %d sent", from, acked, sent)
	}
	if s.state != Attached {
		s.mu.Unlock()
		return nil
	}
	t := s.detachLocked(reason)
	s.mu.Unlock()
	s.notify(Detached)
	// No linger here (afterDetach's is for reading a DISCONNECT from a
	// peer that closed): the client has moved to a new connection, and
	// a writer still busy on the old one would keep the resend, which
	// waits for writeMu, waiting with it (a shell's output, blackholed,
	// resumed 200 ms late).
	t.Abort()
	return nil
}

// lingerAfterDetach is how long a detached connection stays open for its
// reader to find a DISCONNECT.
const lingerAfterDetach = 200 * time.Millisecond

// Detach drops the current connection as if it were lost (a manual
// trigger, or a liveness timeout found by the caller).
func (s *Session) Detach(reason error) {
	s.mu.Lock()
	gen := s.gen
	s.mu.Unlock()
	s.detach(gen, reason)
}

// DetachTransport is Detach, only if the session still runs on t.
func (s *Session) DetachTransport(t Transport, reason error) {
	s.mu.Lock()
	gen, cur := s.gen, s.cur
	s.mu.Unlock()
	if cur == t {
		s.detach(gen, reason)
	}
}

func (s *Session) closeWith(err error) { s.closeVia(err, nil) }

// closeVia ends the session; disconnect, if not nil, ends its connection
// instead of Close (which says DISCONNECT by application).
func (s *Session) closeVia(err error, disconnect func(Transport)) {
	s.mu.Lock()
	if s.state == Closed {
		s.mu.Unlock()
		return
	}
	s.state = Closed
	s.err = err
	t := s.cur
	s.cur = nil
	if s.ackTimer != nil {
		s.ackTimer.Stop()
	}
	clear(s.rk)
	s.send.discard()
	s.syncHeldLocked()
	close(s.done)
	s.cond.Broadcast()
	s.mu.Unlock()
	if t != nil {
		if disconnect != nil {
			disconnect(t)
		} else {
			t.Close()
		}
	}
	s.notify(Closed)
}

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is why the session ended (nil while it lives).
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// fail ends the session because the peer broke the protocol: DISCONNECT
// with PROTOCOL_ERROR (section 2).
func (s *Session) fail(err error) {
	s.closeVia(err, func(t Transport) { t.Disconnect(wire.DisconnectProtocolError, err.Error()) })
}

// CloseWithError ends the session for good with err as its reason (the
// client gives up once the hold time has passed, for instance).
func (s *Session) CloseWithError(err error) { s.closeWith(err) }

// Disconnect ends the session with an explicit DISCONNECT of the given
// reason (channel.Mux calls it on protocol errors).
func (s *Session) Disconnect(reason uint32, msg string) error {
	s.mu.Lock()
	t := s.cur
	s.mu.Unlock()
	if t != nil {
		t.Disconnect(reason, msg)
	}
	s.closeWith(fmt.Errorf("resume: disconnected: %s", msg))
	return nil
}

// Close ends the session for good: the current transport's Close sends
// DISCONNECT, which tells the peer this is the end, not a lost link.
func (s *Session) Close() error {
	s.closeWith(ErrSessionClosed)
	return nil
}

// attach makes t the session's connection after a valid resumption:
// first (server) the authenticated answer, then everything the peer lacks
// from count from on, before any new message. attach does no I/O: it
// returns the writes as a function that holds writeMu until it returns
// (so that nothing overtakes the resend, and ACKs stay back until the
// answer is out), which the caller must call exactly once. Resume and
// Registry.Resume run it in the background: the attempt is over once
// the answer checked out (client) or was decided (server), and the link
// it runs on is watched by the liveness checks like any other. On the
// server this frees the connection's unauthenticated slot at once: a
// client that resumes and then does not read costs what any attached one
// does, not a pre-authentication slot for the login grace time. Driven
// step by step (Resumption, Registry.Answer), the caller runs it itself.
func (s *Session) attach(t Transport, answer func(received uint64) []byte, from uint64) (func() error, error) {
	s.writeMu.Lock()
	s.mu.Lock()
	if s.state == Closed {
		s.mu.Unlock()
		s.writeMu.Unlock()
		return nil, s.err
	}
	msgs, err := s.send.resendFramed(from)
	if err != nil {
		s.mu.Unlock()
		s.writeMu.Unlock()
		return nil, err
	}
	s.syncHeldLocked() // the peer's count acknowledged some
	var first []byte
	if answer != nil {
		// Our count, taken as the session moves: from here on nothing
		// read from the old connection is counted.
		first = answer(s.recv.Received())
	}
	old := s.cur
	s.cur = t
	s.gen++
	gen := s.gen
	wasAttached := s.state == Attached
	s.state = Attached
	s.holdAcks = first != nil
	s.stats.Attaches++
	s.stats.ResentMessages += uint64(len(msgs))
	s.stats.LastResentBytes = 0
	for _, m := range msgs {
		s.stats.LastResentBytes += uint64(len(message(m)))
	}
	s.stats.ResentBytes += s.stats.LastResentBytes
	s.stats.LastOffline = 0
	if !wasAttached {
		s.stats.LastOffline = time.Since(s.detachAt)
	}
	s.cond.Broadcast()
	s.mu.Unlock()
	if wasAttached && old != nil {
		old.Abort() // a lingering half-open connection is superseded
	}
	s.notify(Attached)
	resend := func() error {
		// writeMu, taken above, is released here.
		defer s.writeMu.Unlock()
		if first != nil {
			err := t.WritePacket(first)
			s.mu.Lock()
			s.holdAcks = false
			if err == nil && s.gen == gen && s.recv.Pending() && s.ackTimer == nil {
				s.ackTimer = time.AfterFunc(IdleAck, s.idleAck)
			}
			s.mu.Unlock()
			if err != nil {
				s.detach(gen, err)
				return err
			}
		}
		for _, m := range msgs {
			if err := t.SealFrame(m); err != nil {
				s.detach(gen, err)
				return err
			}
		}
		return nil
	}
	return resend, nil
}

// Resumption is the client's side of one reconnection, in steps and with
// no I/O of its own: Request is the RESUME_REQUEST to send on the new
// connection, Answer takes the server's reply. Session.Resume drives it
// over a connection; a test or a fuzzer drives it between two
// transport.Engines.
type Resumption struct {
	s                     *Session
	t                     Transport
	req                   []byte
	received, acked, sent uint64
	used                  bool
}

// BeginResume starts a reconnection of a client's session over t, a new
// connection whose key exchange negotiated the extension and whose host
// key was checked. Nothing changes in the session until Answer accepts.
func (s *Session) BeginResume(t Transport) (*Resumption, error) {
	if !s.isClient {
		return nil, errors.New("resume: a reconnection is the client's side")
	}
	s.mu.Lock()
	if s.state == Closed {
		s.mu.Unlock()
		return nil, s.err
	}
	r := &Resumption{s: s, t: t, received: s.recv.Received(), acked: s.send.Acked(), sent: s.send.Sent()}
	s.mu.Unlock()
	newH := t.SessionID()
	r.req = (&Request{Handle: s.handle, Received: r.received, MAC: RequestMAC(s.rk, newH, s.handle, r.received)}).Marshal()
	return r, nil
}

// Request is the RESUME_REQUEST payload to send as the first message on
// the new connection.
func (r *Resumption) Request() []byte { return r.req }

// Answer takes the server's answer p, the first message on the new
// connection after the request. A RESUME_FAILURE is returned as a
// *Failure. On any error the session is unchanged and the caller drops
// the connection without DISCONNECT (the server may have moved the
// session to it already: a DISCONNECT there would end it for good).
// On success the session runs on the new connection, and the caller must
// call resend once: it writes on the connection what the server lacks,
// before anything newer (writes of the session wait until it returns).
func (r *Resumption) Answer(p []byte) (resend func() error, err error) {
	if r.used {
		return nil, errors.New("resume: the answer was already taken")
	}
	r.used = true
	s := r.s
	if len(p) == 0 {
		return nil, errors.New("resume: empty answer")
	}
	switch p[0] {
	case MsgFailure:
		f, err := ParseFailure(p)
		if err != nil {
			return nil, err
		}
		return nil, f
	case MsgAccept:
	default:
		return nil, fmt.Errorf("resume: server answered with message %d", p[0])
	}
	acc, err := ParseAccept(p)
	if err != nil {
		return nil, err
	}
	if !VerifyAccept(s.rk, r.t.SessionID(), s.handle, acc, r.received) {
		return nil, errors.New("resume: the server's answer does not authenticate")
	}
	if !CountInRange(acc.Received, r.acked, r.sent) {
		return nil, fmt.Errorf("resume: server says it received %d messages; %d were acknowledged and %d sent", acc.Received, r.acked, r.sent)
	}
	s.mu.Lock()
	changed := s.recv.Received() != r.received
	if !changed {
		s.hold = time.Duration(acc.HoldSeconds) * time.Second
	}
	s.mu.Unlock()
	if changed {
		return nil, errors.New("resume: messages arrived on the old connection during the attempt")
	}
	return s.attach(r.t, nil, acc.Received)
}

// Resume runs the client's side of a reconnection over t, a new
// connection whose key exchange negotiated the extension (and whose host
// key was checked): a Resumption whose request is written on t and whose
// answer is read from it, and whose resend runs in the background. On
// failure the session is unchanged and t is dropped without DISCONNECT
// (the server may have accepted the request already, and moved the
// session to t: a DISCONNECT there would end it for good); the caller
// may retry with another connection.
func (s *Session) Resume(ctx context.Context, t Transport) error {
	r, err := s.BeginResume(t)
	if err != nil {
		t.Abort()
		return err
	}
	// Every failure below drops t without DISCONNECT.
	attached := false
	defer func() {
		if !attached {
			t.Abort()
		}
	}()
	stop := context.AfterFunc(ctx, func() { t.Abort() })
	defer stop()
	if err := t.WritePacket(r.Request()); err != nil {
		return fmt.Errorf("resume: sending the request: %w", err)
	}
	p, err := t.ReadPacket()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("resume: waiting for the answer: %w", err)
	}
	resend, err := r.Answer(p)
	if err != nil {
		return err
	}
	attached = true
	go resend()
	return nil
}
