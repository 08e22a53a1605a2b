package main

// The parts of rsftp sftp that do no I/O of their own: splitting a
// command line as OpenSSH's sftp does, and its flags. Remote globs are
// sftp.Client.Glob's, listings lsfmt.go's, as rsftp get and ls use them.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rsftp/rsftp/sftp"
)

// splitLine splits a command line into words as sftp's makeargv does:
// blanks separate words, single and double quotes group, and a
// backslash takes the next character literally. A glob character
// ('*', '?', '[', ']') that was escaped keeps its backslash, so that
// glob matching takes it literally too; unescape removes it where a
// word is used as a plain path.
func splitLine(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case quote != 0 && ch == quote:
			quote = 0
		case ch == '\\':
			if i+1 == len(line) {
				return nil, errors.New("Invalid command line: a backslash ends it.")
			}
			i++
			switch next := line[i]; {
			case isGlobMeta(next) || next == '\\':
				cur.WriteByte('\\')
				cur.WriteByte(next)
			case quote != 0 && next != quote:
				// Inside quotes only the quote, a backslash and glob
				// characters are escaped; before others the
				// backslash is itself.
				cur.WriteString(`\\`)
				cur.WriteByte(next)
			default:
				cur.WriteByte(next)
			}
			inWord = true
		case quote != 0:
			cur.WriteByte(ch)
		case ch == '\'' || ch == '"':
			quote = ch
			inWord = true
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, errors.New("Unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func isGlobMeta(c byte) bool { return c == '*' || c == '?' || c == '[' || c == ']' }

// unescape removes the backslashes splitLine kept, giving the path as
// the user meant it.
func unescape(p string) string {
	if !strings.Contains(p, `\`) {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' && i+1 < len(p) {
			i++
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// escapeWord quotes a name for the command line (tab completion): what
// splitLine would split or glob gets a backslash.
func escapeWord(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\\', '\'', '"', '*', '?', '[', ']':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// cmdFlags parses a command's bundled single-letter flags (-la, -r),
// stopping at the first word that is not one or after "--". allowed
// lists the letters; the result maps each one given to true.
func cmdFlags(cmd string, args []string, allowed string) (map[byte]bool, []string, error) {
	set := map[byte]bool{}
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		for j := 1; j < len(a); j++ {
			if strings.IndexByte(allowed, a[j]) < 0 {
				return nil, nil, fmt.Errorf("%s: unknown option -%c (%s takes -%s)", cmd, a[j], cmd, allowed)
			}
			set[a[j]] = true
		}
	}
	return set, args[i:], nil
}

// fx2txt is the text OpenSSH's sftp gives a status code.
func fx2txt(code uint32) string {
	switch code {
	case sftp.StatusOK:
		return "No error"
	case sftp.StatusEOF:
		return "End of file"
	case sftp.StatusNoSuchFile:
		return "No such file"
	case sftp.StatusPermissionDenied:
		return "Permission denied"
	case sftp.StatusFailure:
		return "Failure"
	case sftp.StatusBadMessage:
		return "Bad message"
	case sftp.StatusNoConnection:
		return "No connection"
	case sftp.StatusConnectionLost:
		return "Connection lost"
	case sftp.StatusOpUnsupported:
		return "Operation unsupported"
	}
	return fmt.Sprintf("Unknown status %d", code)
}
