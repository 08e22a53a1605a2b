package main

// Listings as OpenSSH's sftp prints them: the order (name, -S, -t, -r,
// -f), the long format of its ls_file (the server's own longname lines
// give the link count and the owner's and group's names), sizes as its
// fmt_scaled (-h) and the short format in columns. These functions do
// no I/O: rsftp ls and the interactive mode share them.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rsftp/rsftp/sftp"
)

// lsItem is one entry of a listing.
type lsItem struct {
	display  string     // what is printed for it: the name in a directory, or the path as matched
	attrs    sftp.Attrs // its attributes (a symbolic link's own)
	longname string     // the server's ls -l line for it, if the server sent one
}

// lsOptions are sftp's ls flags.
type lsOptions struct {
	long     bool // -l
	all      bool // -a: names that begin with "." too, "." and ".." among them
	single   bool // -1: one name per line
	bySize   bool // -S: largest first
	byTime   bool // -t: newest first
	reverse  bool // -r
	unsorted bool // -f: in the server's order
	human    bool // -h: sizes as 1.5K, 23M
	numeric  bool // -n: numeric owner and group even where names are known
}

// lsSort orders items as OpenSSH's sftp does: by name (byte order) by
// default, by size with -S (largest first) or by modification time with
// -t (newest first), the whole reversed by -r; -f keeps the server's
// order. Ties go by name, so that the order is the same on every run.
func lsSort(items []lsItem, o lsOptions) {
	if o.unsorted {
		return
	}
	slices.SortStableFunc(items, func(x, y lsItem) int {
		switch {
		case o.bySize && x.attrs.Size != y.attrs.Size:
			if x.attrs.Size > y.attrs.Size {
				return -1
			}
			return 1
		case o.byTime && !o.bySize && x.attrs.Mtime != y.attrs.Mtime:
			if x.attrs.Mtime > y.attrs.Mtime {
				return -1
			}
			return 1
		}
		return strings.Compare(x.display, y.display)
	})
	if o.reverse {
		slices.Reverse(items)
	}
}

// lsHidden reports whether ls leaves the item out without -a: its base
// name begins with ".".
func lsHidden(display string) bool {
	i := strings.LastIndexByte(strings.TrimRight(display, "/"), '/')
	return strings.HasPrefix(display[i+1:], ".")
}

// lsModeString is the mode as ls -l prints it (BSD strmode without the
// trailing space): the type letter and rwx, with s/S and t/T.
func lsModeString(m uint32) string {
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
	const rwx = "rwxrwxrwx"
	for i := range 9 {
		if m&(1<<(8-i)) != 0 {
			b[i+1] = rwx[i]
		}
	}
	for _, sp := range []struct {
		pos      int
		bit      uint32
		set, off byte
	}{{3, 0o4000, 's', 'S'}, {6, 0o2000, 's', 'S'}, {9, 0o1000, 't', 'T'}} {
		if m&sp.bit == 0 {
			continue
		}
		if b[sp.pos] == 'x' {
			b[sp.pos] = sp.set
		} else {
			b[sp.pos] = sp.off
		}
	}
	return string(b)
}

// lsScaled is a size as OpenSSH's fmt_scaled prints it (ls -h): bytes
// below 1024 as "512B", else one decimal below 100 units ("1.5K",
// "10.0M") and none from 100 on ("123G").
func lsScaled(n uint64) string {
	if n == 0 {
		return "0B"
	}
	if n < 1024 {
		return strconv.FormatUint(n, 10) + "B"
	}
	const units = "KMGTPE"
	unit, div := 0, uint64(1024)
	for n/1024 >= div && unit < len(units)-1 {
		unit++
		div *= 1024
	}
	whole := n / div
	fract := (n % div) / (div / 1024) // in 1024ths of the unit
	fract = (10*fract + 512) / 1024
	if fract >= 10 {
		whole++
		fract = 0
	}
	if whole >= 100 {
		if fract >= 5 {
			whole++
		}
		return fmt.Sprintf("%d%c", whole, units[unit])
	}
	return fmt.Sprintf("%d.%d%c", whole, fract, units[unit])
}

// lsLongFields are what a server's longname says that SFTP v3's
// attributes do not: the link count and the owner's and group's names.
type lsLongFields struct {
	links, owner, group string
}

// lsParseLongname reads the link count, owner and group from a server's
// ls -l line, if it has the shape of one and agrees with a (the mode
// letters and the size): "-rw-r--r--    1 alice    staff    1234 Jan  2 15:04 name".
func lsParseLongname(long string, a *sftp.Attrs) (lsLongFields, bool) {
	f := strings.Fields(long)
	if len(f) < 9 {
		return lsLongFields{}, false
	}
	mode := f[0]
	if len(mode) < 10 || len(mode) > 11 || !strings.ContainsRune("-dlcbps", rune(mode[0])) {
		return lsLongFields{}, false
	}
	if a.Flags&sftp.AttrPermissions != 0 && mode[:10] != lsModeString(a.Mode) {
		return lsLongFields{}, false
	}
	if _, err := strconv.ParseUint(f[1], 10, 64); err != nil {
		return lsLongFields{}, false
	}
	if a.Flags&sftp.AttrSize != 0 && f[4] != strconv.FormatUint(a.Size, 10) {
		// Names with blanks shift the columns: trust none of them.
		return lsLongFields{}, false
	}
	return lsLongFields{links: f[1], owner: f[2], group: f[3]}, true
}

// lsSixMonths is OpenSSH's (and ls's) boundary between the hour and the
// year in a date: half of 365 days.
const lsSixMonths = 365 * 24 * time.Hour / 2

// lsDate is the date column: "Jan  2 15:04" for a time in the last six
// months, "Jan  2  2006" for older ones and any in the future, in loc.
func lsDate(mtime uint32, now time.Time, loc *time.Location) string {
	t := time.Unix(int64(mtime), 0).In(loc)
	if now.Add(-lsSixMonths).Before(t) && !t.After(now) {
		return t.Format("Jan _2 15:04")
	}
	return t.Format("Jan _2  2006")
}

// lsLongLine is one line of ls -l, laid out as OpenSSH's ls_file does:
// mode, links, owner and group (at least 8 wide), size (8 wide), date,
// name. Link count and names come from the server's longname where it
// sent one that can be read; otherwise the links are "?" and owner and
// group the numeric ids, as OpenSSH's sftp prints a remote file. -n
// keeps the ids even when names are known.
func lsLongLine(it lsItem, o lsOptions, now time.Time, loc *time.Location) string {
	a := &it.attrs
	mode := "??????????"
	if a.Flags&sftp.AttrPermissions != 0 {
		mode = lsModeString(a.Mode)
	}
	links, owner, group := "?", "?", "?"
	if a.Flags&sftp.AttrUIDGID != 0 {
		owner, group = strconv.FormatUint(uint64(a.UID), 10), strconv.FormatUint(uint64(a.GID), 10)
	}
	if lf, ok := lsParseLongname(it.longname, a); ok {
		links = lf.links
		if !o.numeric || a.Flags&sftp.AttrUIDGID == 0 {
			owner, group = lf.owner, lf.group
		}
		if a.Flags&sftp.AttrPermissions == 0 {
			mode = strings.Fields(it.longname)[0][:10]
		}
	}
	size := strconv.FormatUint(a.Size, 10)
	if o.human {
		size = lsScaled(a.Size)
	}
	if a.Flags&sftp.AttrSize == 0 {
		size = "?"
	}
	date := "            "
	if a.Flags&sftp.AttrACModTime != 0 {
		date = lsDate(a.Mtime, now, loc)
	}
	return fmt.Sprintf("%s  %3s %-8s %-8s %8s %s %s", mode, links, sanitize(owner), sanitize(group), size, date, sanitize(it.display))
}

// lsColumns lays names out as OpenSSH's sftp does for a short listing:
// columns of equal width (the longest name plus two, at least one
// column) that fit in width, filled across, one line per row (trailing
// blanks dropped).
func lsColumns(names []string, width int) []string {
	if len(names) == 0 {
		return nil
	}
	longest := 0
	for _, n := range names {
		longest = max(longest, len(n))
	}
	cols := max(width/(longest+2), 1)
	colspace := min(width/cols, width)
	var lines []string
	var b strings.Builder
	for i, n := range names {
		if (i+1)%cols == 0 || i == len(names)-1 {
			b.WriteString(n)
			lines = append(lines, strings.TrimRight(b.String(), " "))
			b.Reset()
		} else {
			fmt.Fprintf(&b, "%-*s", colspace, n)
		}
	}
	return lines
}

// lsVisible leaves out of a directory's listing the names that begin
// with "." unless -a (paths named or matched explicitly are all shown).
func lsVisible(items []lsItem, o lsOptions) []lsItem {
	if o.all {
		return items
	}
	return slices.DeleteFunc(items, func(it lsItem) bool { return lsHidden(it.display) })
}

// lsFormat returns the lines of a listing of items: sorted (lsSort), then
// in the long format, one name per line (-1, or when width is 0: output
// that is not a terminal, as ls(1) does) or in columns of width.
func lsFormat(items []lsItem, o lsOptions, now time.Time, loc *time.Location, width int) []string {
	shown := slices.Clone(items)
	lsSort(shown, o)
	var lines []string
	switch {
	case o.long:
		for _, it := range shown {
			lines = append(lines, lsLongLine(it, o, now, loc))
		}
	case o.single || width <= 0:
		for _, it := range shown {
			lines = append(lines, sanitize(it.display))
		}
	default:
		names := make([]string, len(shown))
		for i, it := range shown {
			names[i] = sanitize(it.display)
		}
		lines = lsColumns(names, width)
	}
	return lines
}
