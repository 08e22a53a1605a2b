package main

// The escape sequences of rsftp ssh, as ssh reads them from the keys a
// person types: the escape character (~ unless EscapeChar or -e says
// otherwise) right after a newline, then one character that says what to
// do. The machine here only reads bytes and says what they ask for; the
// session (ssh.go) does it.

// escapeAction is what an escape sequence asks for.
type escapeAction int

const (
	escNone       escapeAction = iota
	escDisconnect              // ~.  end the connection
	escSuspend                 // ~^Z suspend rsftp (job control)
	escBackground              // ~&  once only forwarded connections remain: end with them
	escHelp                    // ~?  list the escapes
	escForwards                // ~#  list the forwarded connections
	escBreak                   // ~B  send a BREAK to the remote system
	escRekey                   // ~R  re-exchange keys
	escReconnect               // ~^R reconnect now (a resumable session; rsftp's own)
	escInfo                    // ~I  connection information
	escCommand                 // ~C  the command line: add or cancel a forward
	escVerbose                 // ~v  more verbose
	escQuieter                 // ~V  less verbose
)

// noEscapeChar turns the escapes off (EscapeChar none).
const noEscapeChar = -1

// escapeMachine finds escape sequences in typed input. The escape
// character is recognized only as the first character of a line (after a
// CR or LF, or at the very start, as ssh's last_was_cr starts true);
// escape followed by itself sends it once, escape followed by any other
// character that is no command sends both.
type escapeMachine struct {
	char    int  // the escape character, or noEscapeChar
	lineBeg bool // the next character begins a line
	pending bool // the escape character was seen at a line's start
}

func newEscapeMachine(char int) *escapeMachine {
	return &escapeMachine{char: char, lineBeg: true}
}

// feed reads in up to and including the first escape sequence that asks
// for an action. It appends to dst the bytes to send to the remote side,
// and returns them with the number of bytes of in it consumed and the
// action (escNone when it consumed all of in without finding one). The
// caller acts, then feeds the rest.
func (m *escapeMachine) feed(dst, in []byte) (send []byte, n int, act escapeAction) {
	if m.char == noEscapeChar {
		return append(dst, in...), len(in), escNone
	}
	esc := byte(m.char)
	for i, c := range in {
		if m.pending {
			m.pending = false
			act := escapeCommand(c)
			if act != escNone {
				// The line still begins: ~? ~# may follow.
				return dst, i + 1, act
			}
			if c != esc {
				dst = append(dst, esc)
			}
			// c itself goes as a normal character.
		} else if m.lineBeg && c == esc {
			m.pending = true
			continue
		}
		m.lineBeg = c == '\r' || c == '\n'
		dst = append(dst, c)
	}
	return dst, len(in), escNone
}

// escapeCommand is the action of the character after the escape
// character, or escNone for one that is no command.
func escapeCommand(c byte) escapeAction {
	switch c {
	case '.':
		return escDisconnect
	case 'Z' - 64:
		return escSuspend
	case '&':
		return escBackground
	case '?':
		return escHelp
	case '#':
		return escForwards
	case 'B':
		return escBreak
	case 'R':
		return escRekey
	case 'R' - 64:
		return escReconnect
	case 'I':
		return escInfo
	case 'C':
		return escCommand
	case 'v':
		return escVerbose
	case 'V':
		return escQuieter
	}
	return escNone
}

// escapeName prints an escape character as ssh does in its messages:
// "~", or "^]" for a control character.
func escapeName(c int) string {
	if c == noEscapeChar {
		return "none"
	}
	if c < 32 {
		return "^" + string(rune(c+64))
	}
	return string(rune(c))
}

// parseEscapeChar reads EscapeChar's (and -e's) value as ssh does: a
// single character, ^X for a control character, or "none".
func parseEscapeChar(s string) (int, bool) {
	switch {
	case s == "none":
		return noEscapeChar, true
	case len(s) == 1:
		return int(s[0]), true
	case len(s) == 2 && s[0] == '^' && s[1] >= 64 && s[1] < 128:
		return int(s[1] & 31), true
	}
	return 0, false
}

// escapeHelp is what ~? prints (lines end with CR LF: the terminal is in
// raw mode).
func escapeHelp(c int) string {
	e := escapeName(c)
	lines := []string{
		"Supported escape sequences:",
		e + ".   - end the session (the connection with it)",
		e + "&   - end rsftp while forwarded connections remain (after the session; no fork)",
		e + "B   - send a BREAK to the remote system",
		e + "R   - re-exchange the session keys",
		e + "^R  - reconnect now (a resumable session; rsftp's own)",
		e + "I   - show connection information",
		e + "#   - list the forwarded connections",
		e + "C   - command line: add or cancel a forward (-L, -R, -D, -KL, -KR, -KD)",
		e + "^Z  - suspend rsftp",
		e + "v   - more verbose (LogLevel)",
		e + "V   - less verbose",
		e + "?   - this message",
		e + e + "   - send the escape character by typing it twice",
		"(Escapes are recognized only right after a newline.)",
	}
	s := ""
	for _, l := range lines {
		s += l + "\r\n"
	}
	return s
}
