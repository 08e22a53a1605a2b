package main

// While a resumable session's link is away, rsftp ssh says so in the
// terminal's title, not on the screen: the remote program owns the
// screen, and every byte it sent will still arrive, in order, once the
// session resumes, so the screen must stay exactly what that program
// made it. A line written over its text and cleared again would move the
// cursor behind the program's back (a full-screen editor keeps its own
// idea of where the cursor is; save and restore cursor, DECSC/DECRC,
// would clobber a position the program itself saved), and would leave
// blank lines in the scrollback of a terminal that scrolled for it. The
// title (OSC 2) changes nothing on the screen. rsftp pushes the title
// the terminal had (XTWINOPS 22;2) and pops it once resumed (23;2); a
// terminal without the title stack keeps "user@host" instead.
//
// A title is only written between the remote program's escape
// sequences and characters, never inside one (vtTracker follows the
// output); when the output stopped in the middle of one, the notice
// waits. Without a terminal (no pty, or stdout not one), events are
// lines on stderr, as for get and put.

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rsftp/rsftp"
)

// vtTracker follows a terminal's input stream far enough to know whether
// it rests between characters and escape sequences: ECMA-48's escape,
// control and string sequences, and UTF-8's multi-byte characters.
type vtTracker struct {
	state vtState
	utf8  int // continuation bytes still expected
}

type vtState uint8

const (
	vtGround    vtState = iota
	vtEscape            // after ESC
	vtEscInter          // ESC then intermediate bytes (0x20-0x2f)
	vtCSI               // ESC [ (or 0x9b) up to a final byte
	vtString            // OSC, DCS, SOS, PM, APC: up to BEL or ST
	vtStringEsc         // ESC inside a string: ST if '\' follows
)

func (v *vtTracker) feed(p []byte) {
	for len(p) > 0 {
		if v.state != vtGround {
			v.step(p[0])
			p = p[1:]
			continue
		}
		// On the ground only an ESC starts a sequence, and where a
		// character ends depends on the last 4 bytes alone (a lead byte
		// sets the count, anything else ends it): skip to the next ESC
		// and step through those 4 from rest (bulk output costs a
		// search, not a switch per byte).
		run := p
		if j := bytes.IndexByte(p, 0x1b); j >= 0 {
			run = p[:j]
		}
		p = p[len(run):]
		if len(run) > 4 {
			v.utf8 = 0
			run = run[len(run)-4:]
		}
		for _, c := range run {
			v.step(c)
		}
		if len(p) > 0 {
			v.step(p[0]) // the ESC
			p = p[1:]
		}
	}
}

// step follows one byte.
func (v *vtTracker) step(c byte) {
	switch v.state {
	case vtGround:
		switch {
		case c == 0x1b:
			v.state, v.utf8 = vtEscape, 0
		case v.utf8 > 0 && c&0xc0 == 0x80:
			v.utf8--
		case c >= 0xc2 && c <= 0xdf:
			v.utf8 = 1
		case c >= 0xe0 && c <= 0xef:
			v.utf8 = 2
		case c >= 0xf0 && c <= 0xf4:
			v.utf8 = 3
		default:
			v.utf8 = 0
		}
	case vtEscape:
		switch {
		case c == '[':
			v.state = vtCSI
		case c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_':
			v.state = vtString
		case c >= 0x20 && c <= 0x2f:
			v.state = vtEscInter
		case c == 0x1b:
		case c < 0x20:
			// A control character inside a sequence is executed;
			// the sequence goes on.
		default:
			v.state = vtGround
		}
	case vtEscInter:
		if c >= 0x30 && c <= 0x7e {
			v.state = vtGround
		} else if c == 0x1b {
			v.state = vtEscape
		}
	case vtCSI:
		if c >= 0x40 && c <= 0x7e {
			v.state = vtGround
		} else if c == 0x1b {
			v.state = vtEscape
		} else if c == 0x18 || c == 0x1a { // CAN, SUB cancel
			v.state = vtGround
		}
	case vtString:
		switch c {
		case 0x07:
			v.state = vtGround
		case 0x1b:
			v.state = vtStringEsc
		case 0x18, 0x1a:
			v.state = vtGround
		}
	case vtStringEsc:
		if c == '\\' {
			v.state = vtGround
		} else if c != 0x1b {
			v.state = vtString
		}
	}
}

// atRest reports whether something may be written now without landing
// inside a sequence or a character.
func (v *vtTracker) atRest() bool { return v.state == vtGround && v.utf8 == 0 }

// termOut is the terminal's output: the remote program's bytes and the
// notices, one writer at a time.
type termOut struct {
	mu sync.Mutex
	w  io.Writer
	vt vtTracker
	// pending is a title waiting for the output to come to rest.
	pending []byte
	// noWait is w opened again non-blocking (openOutNoWait), for
	// tryWrite, if hasNoWait.
	noWait    int
	hasNoWait bool
}

// newTermOut returns the terminal's output to f.
func newTermOut(f *os.File) *termOut {
	t := &termOut{w: f}
	if fd := openOutNoWait(f); fd >= 0 {
		t.noWait, t.hasNoWait = fd, true
	}
	return t
}

// tryWrite writes what the output takes of p at once, and returns how
// much: nothing while another write or a title holds it, or when there
// is no non-blocking way to it. It is channel.Channel.ReadSink's sink,
// called by the goroutine that reads the connection, which it must never
// keep waiting.
func (t *termOut) tryWrite(p []byte) int {
	if !t.mu.TryLock() {
		return 0
	}
	defer t.mu.Unlock()
	if t.pending != nil || !t.hasNoWait {
		return 0
	}
	n := writeNoWait(t.noWait, p)
	t.vt.feed(p[:n])
	return n
}

// closeNoWait closes the non-blocking description once tryWrite is no
// longer called.
func (t *termOut) closeNoWait() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.hasNoWait {
		closeOutNoWait(t.noWait)
		t.hasNoWait = false
	}
}

func (t *termOut) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, err := t.w.Write(p)
	t.vt.feed(p[:n])
	if t.pending != nil && t.vt.atRest() {
		t.w.Write(t.pending)
		t.pending = nil
	}
	return n, err
}

// control writes a control sequence of rsftp's own between the remote
// program's, at once if the output rests, else as soon as it does (a
// later one replaces it).
func (t *termOut) control(seq string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.vt.atRest() {
		t.pending = nil
		io.WriteString(t.w, seq)
		return
	}
	t.pending = []byte(seq)
}

// titleText strips what a title must not hold (control characters end
// or break the sequence).
func titleText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, s)
}

// notice shows a resumable session's state.
type notice struct {
	out    *termOut // nil: lines on stderr instead of the title
	dest   string   // user@host, for the title and the messages
	log    *logger
	mu     sync.Mutex
	pushed bool      // the terminal's title is on its stack
	lost   time.Time // when the link was lost; zero while attached
	hold   time.Time // when the server forgets the session
	try    int
	tick   *time.Ticker
	done   chan struct{}
}

func newNotice(out *termOut, dest string, log *logger) *notice {
	n := &notice{out: out, dest: dest, log: log, done: make(chan struct{})}
	return n
}

// event takes a session event (from the client's goroutine: it must not
// block).
func (n *notice) event(e rsftp.Event) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch e.Kind {
	case rsftp.EventLinkLost:
		n.lost, n.hold, n.try = e.Time, e.Time.Add(e.HoldLeft), 0
		if n.out == nil {
			n.log.infof("connection to %s lost (%s); reconnecting, the server holds the session for %s", n.dest, linkCause(e.Err), e.HoldLeft.Round(time.Second))
			return
		}
		n.showLocked(e.Time)
		if n.tick == nil {
			n.tick = time.NewTicker(time.Second)
			go n.ticker(n.tick)
		}
	case rsftp.EventReconnecting:
		n.try = e.Attempt
		if !e.Time.IsZero() {
			n.hold = e.Time.Add(e.HoldLeft)
		}
		if n.out != nil && !n.lost.IsZero() {
			n.showLocked(e.Time)
		}
	case rsftp.EventResumeFailed:
		if n.out == nil {
			n.log.debugf("reconnection attempt %d failed: %s", e.Attempt, attemptCause(e.Err))
		}
	case rsftp.EventResumed:
		n.lost = time.Time{}
		if n.tick != nil {
			n.tick.Stop()
			n.tick = nil
		}
		if n.out == nil {
			n.log.infof("resumed after %s offline; nothing lost", shortDuration(e.Offline))
			return
		}
		n.restoreLocked()
	}
}

// ticker refreshes the title each second while the link is away.
func (n *notice) ticker(t *time.Ticker) {
	for {
		select {
		case now := <-t.C:
			n.mu.Lock()
			if n.tick != t {
				n.mu.Unlock()
				return
			}
			n.showLocked(now)
			n.mu.Unlock()
		case <-n.done:
			return
		}
	}
}

// noticeTitle is the title while the link is away: how long since it
// was lost, and how long the server still holds the session.
func noticeTitle(dest string, offline, left time.Duration, try int) string {
	s := fmt.Sprintf("rsftp: %s: link lost %s ago, reconnecting", dest, shortDuration(offline.Truncate(time.Second)))
	if try > 1 {
		s += fmt.Sprintf(" (try %d)", try)
	}
	if left > 0 {
		s += fmt.Sprintf("; the server holds the session %s more", shortDuration(left.Truncate(time.Second)))
	} else {
		s += "; the server's hold has run out"
	}
	return titleText(s)
}

func (n *notice) showLocked(now time.Time) {
	seq := ""
	if !n.pushed {
		seq = "\x1b[22;2t" // push the title
		n.pushed = true
	}
	seq += "\x1b]2;" + noticeTitle(n.dest, now.Sub(n.lost), n.hold.Sub(now), n.try) + "\x07"
	n.out.control(seq)
}

func (n *notice) restoreLocked() {
	if !n.pushed {
		return
	}
	n.pushed = false
	n.out.control("\x1b]2;" + titleText(n.dest) + "\x07\x1b[23;2t")
}

// close puts the title back if it was changed, and stops the ticker.
func (n *notice) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	select {
	case <-n.done:
		return
	default:
		close(n.done)
	}
	if n.tick != nil {
		n.tick.Stop()
		n.tick = nil
	}
	if n.out != nil {
		n.restoreLocked()
	}
}
