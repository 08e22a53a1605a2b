package main

// The parts of rsftp sftp that do no I/O of their own: splitting a
// command line as OpenSSH's sftp does, glob patterns over remote
// directory listings, and the formats of ls and df.

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

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

// hasGlob reports whether p has an unescaped glob character.
func hasGlob(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '*', '?', '[':
			return true
		}
	}
	return false
}

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

// globSplit splits an absolute pattern into its components.
func globSplit(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

// globLister lists a remote directory for globbing: names and their
// attributes.
type globLister func(dir string) ([]sftp.DirEntry, error)

// globRemote expands an absolute pattern against listings, as glob(3)
// does: components with glob characters are matched with path.Match
// against the names of their directory (names starting with '.' only by
// a pattern that starts with '.'); literal components are kept as they
// are. A pattern without glob characters is returned unescaped and
// unchecked. Directories that cannot be listed match nothing. The
// result is sorted; stat (may be nil) checks that a trailing literal
// component exists once a glob was expanded before it.
func globRemote(pattern string, list globLister, stat func(string) error) ([]string, error) {
	if !hasGlob(pattern) {
		return []string{unescape(pattern)}, nil
	}
	comps := globSplit(pattern)
	cur := []string{"/"}
	expanded := false
	for i, comp := range comps {
		last := i == len(comps)-1
		if !hasGlob(comp) {
			lit := unescape(comp)
			for j := range cur {
				cur[j] = path.Join(cur[j], lit)
			}
			continue
		}
		if _, err := path.Match(comp, ""); err != nil {
			return nil, fmt.Errorf("bad pattern %q: %v", pattern, err)
		}
		var next []string
		for _, dir := range cur {
			ents, err := list(dir)
			if err != nil {
				continue
			}
			for _, e := range ents {
				if strings.HasPrefix(e.Name, ".") && !strings.HasPrefix(comp, ".") {
					continue
				}
				if strings.Contains(e.Name, "/") {
					continue
				}
				if ok, _ := path.Match(comp, e.Name); !ok {
					continue
				}
				if !last && !e.Attrs.FileMode().IsDir() && e.Attrs.FileMode()&fs.ModeSymlink == 0 {
					continue
				}
				next = append(next, path.Join(dir, e.Name))
			}
		}
		cur = next
		expanded = true
		if len(cur) == 0 {
			return nil, nil
		}
	}
	if expanded && stat != nil && !hasGlob(comps[len(comps)-1]) {
		cur = slices.DeleteFunc(cur, func(p string) bool { return stat(p) != nil })
	}
	if len(cur) == 0 {
		return nil, nil
	}
	slices.Sort(cur)
	return slices.Compact(cur), nil
}

// strmode is ls's mode string from POSIX mode bits, as OpenSSH's
// strmode: the type letter, then rwx with s, S, t, T.
func strmode(m uint32) string {
	b := []byte("?---------")
	switch m & 0o170000 {
	case 0o100000:
		b[0] = '-'
	case 0o040000:
		b[0] = 'd'
	case 0o120000:
		b[0] = 'l'
	case 0o020000:
		b[0] = 'c'
	case 0o060000:
		b[0] = 'b'
	case 0o010000:
		b[0] = 'p'
	case 0o140000:
		b[0] = 's'
	}
	rwx := "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if m&(1<<(8-i)) != 0 {
			b[i+1] = rwx[i]
		}
	}
	special := func(pos int, bit uint32, set, unset byte) {
		if m&bit == 0 {
			return
		}
		if b[pos] == 'x' {
			b[pos] = set
		} else {
			b[pos] = unset
		}
	}
	special(3, 0o4000, 's', 'S')
	special(6, 0o2000, 's', 'S')
	special(9, 0o1000, 't', 'T')
	return string(b)
}

// scaled is a size as OpenSSH's fmt_scaled prints it: 512B, 1.5K, 23M.
func scaled(n uint64) string {
	units := "BKMGTPE"
	v := float64(n)
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d%c", n, units[0])
	}
	if v < 10 {
		return fmt.Sprintf("%.1f%c", v, units[i])
	}
	return fmt.Sprintf("%.0f%c", v, units[i])
}

// lsLong is one line of ls -l for attributes without the server's
// longname, as OpenSSH's ls_file prints a remote file: the link count is
// unknown over SFTP v3 ("?"), owner and group are numeric, and the time
// has the year instead of the hour for files over six months old.
func lsLong(name string, a *sftp.Attrs, human bool, now time.Time) string {
	mode := strmode(a.Mode)
	if a.Flags&sftp.AttrPermissions == 0 {
		mode = "??????????"
	}
	owner, group := "?", "?"
	if a.Flags&sftp.AttrUIDGID != 0 {
		owner, group = fmt.Sprint(a.UID), fmt.Sprint(a.GID)
	}
	size := fmt.Sprint(a.Size)
	if human {
		size = scaled(a.Size)
	}
	when := "            "
	if a.Flags&sftp.AttrACModTime != 0 {
		t := time.Unix(int64(a.Mtime), 0)
		if t.After(now.AddDate(0, -6, 0)) && !t.After(now.Add(time.Hour)) {
			when = t.Format("Jan _2 15:04")
		} else {
			when = t.Format("Jan _2  2006")
		}
	}
	return fmt.Sprintf("%s %4s %-8s %-8s %8s %s %s", mode, "?", owner, group, size, when, sanitize(name))
}

// lsEntry is a name to list with its attributes.
type lsEntry struct {
	show string // what ls prints for it
	name string // the base name (sorting, hidden files)
	long string // the server's longname, if any
	a    sftp.Attrs
}

// sortEntries orders a listing as sftp's ls: by name by default, by size
// (-S, largest first) or modification time (-t, newest first), reversed
// with -r, unsorted with -f.
func sortEntries(ents []lsEntry, flags map[byte]bool) {
	if flags['f'] {
		return
	}
	cmp := func(x, y lsEntry) int { return strings.Compare(x.show, y.show) }
	switch {
	case flags['S']:
		cmp = func(x, y lsEntry) int {
			if x.a.Size != y.a.Size {
				if x.a.Size > y.a.Size {
					return -1
				}
				return 1
			}
			return strings.Compare(x.show, y.show)
		}
	case flags['t']:
		cmp = func(x, y lsEntry) int {
			if x.a.Mtime != y.a.Mtime {
				if x.a.Mtime > y.a.Mtime {
					return -1
				}
				return 1
			}
			return strings.Compare(x.show, y.show)
		}
	}
	slices.SortStableFunc(ents, cmp)
	if flags['r'] {
		slices.Reverse(ents)
	}
}

// columns lays names out as sftp's short ls does: as many columns of
// equal width as fit in width, filled across.
func columns(names []string, width int) string {
	if len(names) == 0 {
		return ""
	}
	maxLen := 0
	for _, n := range names {
		maxLen = max(maxLen, len(n))
	}
	cols := max(width/(maxLen+2), 1)
	colWidth := width / cols
	var b strings.Builder
	for i, n := range names {
		last := (i+1)%cols == 0 || i == len(names)-1
		if last {
			b.WriteString(n)
			b.WriteByte('\n')
		} else {
			fmt.Fprintf(&b, "%-*s", colWidth, n)
		}
	}
	return b.String()
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
