package sftp

// Remote wildcards and ~ in remote paths, as OpenSSH's sftp and scp
// expand them: the glob is evaluated by listing the server's
// directories, never by a shell.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// ErrNoMatch is the error of a pattern that matched nothing (a
// *NoMatchError matches it).
var ErrNoMatch = errors.New("no match")

// NoMatchError is Glob's error for a pattern that matched nothing.
type NoMatchError struct {
	Pattern string
	// Cause is the first listing on the way that failed, if one did
	// (it may be why nothing matched).
	Cause error
}

func (e *NoMatchError) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: no match (%v)", e.Pattern, e.Cause)
	}
	return e.Pattern + ": no match"
}

func (e *NoMatchError) Is(target error) bool { return target == ErrNoMatch }
func (e *NoMatchError) Unwrap() error        { return e.Cause }

// Bounds of one Glob: the paths it may return and the directories it may
// list (a pattern such as */*/* on a large tree would otherwise hold the
// session for ever and grow without end).
const (
	maxGlobMatches  = 1 << 16
	maxGlobListings = 1 << 12
)

// HasMeta reports whether the pattern p holds any of glob's special
// characters *, ? and [ (one escaped with a backslash does not count).
func HasMeta(p string) bool {
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

// GlobEscape escapes s so that Glob takes it literally.
func GlobEscape(s string) string {
	if !strings.ContainsAny(s, `*?[\`) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// unescape removes glob's backslash escapes from a component without
// wildcards.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// A GlobMatch is a path that matched a pattern.
type GlobMatch struct {
	Path string
	// Longname is the server's ls -l line for the path, from the listing
	// in which it matched ("" for a path whose last component had no
	// wildcard, which was checked with LSTAT).
	Longname string
	// Attrs are the path's attributes as listed (a symbolic link's own,
	// not its target's).
	Attrs Attrs
}

// Glob expands pattern on the server as OpenSSH's sftp does (glob(3)
// over SFTP): a path component with wildcards (*, ?, [...], with \
// escaping the next character) is matched with path.Match against the
// names listed in each directory reached so far, a name that begins with
// "." only by a component that begins with "." too; a component without
// wildcards is taken as written. Intermediate matches must be
// directories (or links to directories), as must every match of a
// pattern that ends in "/". The matches come sorted by path; relative
// patterns give relative paths (to the server's starting directory).
//
// A pattern without wildcards is returned as it is, unchecked (the
// operation on it says whether it exists). A pattern that matches
// nothing fails with a *NoMatchError (errors.Is ErrNoMatch) that names
// the first listing on the way that failed, if one did. Directories that
// cannot be listed are otherwise passed over, as glob(3) does.
func (c *Client) Glob(ctx context.Context, pattern string) ([]GlobMatch, error) {
	if !HasMeta(pattern) {
		return []GlobMatch{{Path: pattern}}, nil
	}
	dirOnly := strings.HasSuffix(pattern, "/")
	var comps []string
	for _, s := range strings.Split(pattern, "/") {
		if s != "" {
			comps = append(comps, s)
		}
	}
	type node struct {
		p      string
		listed bool // found by a listing: a and long are set
		a      Attrs
		long   string
	}
	join := func(dir, name string) string {
		switch dir {
		case "":
			return name
		case "/":
			return "/" + name
		}
		return dir + "/" + name
	}
	cur := []node{{p: ""}}
	if strings.HasPrefix(pattern, "/") {
		cur[0].p = "/"
	}
	listings := 0
	var listErr error
	for i, comp := range comps {
		last := i == len(comps)-1
		next := []node{}
		if !HasMeta(comp) {
			lit := unescape(comp)
			for _, n := range cur {
				next = append(next, node{p: join(n.p, lit)})
			}
			cur = next
			continue
		}
		if _, err := path.Match(comp, ""); err != nil {
			return nil, fmt.Errorf("%s: bad pattern: %w", pattern, err)
		}
		for _, n := range cur {
			dir := n.p
			if dir == "" {
				dir = "."
			}
			if listings++; listings > maxGlobListings {
				return nil, fmt.Errorf("%s: the pattern needs more than %d directory listings; narrow it", pattern, maxGlobListings)
			}
			ents, err := c.readDir(ctx, dir)
			if err != nil {
				if c.fatal(ctx, err) {
					return nil, err
				}
				if listErr == nil {
					listErr = err
				}
				continue
			}
			sort.Slice(ents, func(i, j int) bool { return ents[i].Name < ents[j].Name })
			for _, e := range ents {
				if !ValidName(e.Name) || (e.Name[0] == '.' && comp[0] != '.') {
					continue
				}
				if ok, _ := path.Match(comp, e.Name); !ok {
					continue
				}
				m := node{p: join(n.p, e.Name), listed: true, a: e.Attrs, long: e.Longname}
				if !last || dirOnly {
					if !c.globIsDir(ctx, m.p, &m.a) {
						continue
					}
				}
				if next = append(next, m); len(next) > maxGlobMatches {
					return nil, fmt.Errorf("%s: more than %d matches; narrow the pattern", pattern, maxGlobMatches)
				}
			}
		}
		cur = next
	}
	// Paths whose last components had no wildcard were never listed:
	// keep those that exist (as glob(3) checks them).
	out := make([]GlobMatch, 0, len(cur))
	for _, n := range cur {
		if !n.listed {
			a, err := c.lstat(ctx, n.p)
			if err != nil {
				if c.fatal(ctx, err) {
					return nil, err
				}
				continue
			}
			n.a = *a
			if dirOnly && !c.globIsDir(ctx, n.p, &n.a) {
				continue
			}
		}
		out = append(out, GlobMatch{Path: n.p, Longname: n.long, Attrs: n.a})
	}
	if len(out) == 0 {
		return nil, &NoMatchError{Pattern: pattern, Cause: listErr}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// globIsDir reports whether p, listed with attributes a, is a directory
// or a symbolic link to one.
func (c *Client) globIsDir(ctx context.Context, p string, a *Attrs) bool {
	m := a.FileMode()
	if a.Flags&AttrPermissions == 0 || m&fs.ModeSymlink != 0 {
		st, err := c.stat(ctx, p)
		if err != nil {
			return false
		}
		return st.FileMode().IsDir()
	}
	return m.IsDir()
}

// SplitTilde splits a path that begins with "~" into the user named
// after it ("" for the login user) and the rest after the first "/"
// (without it). ok is false for other paths.
func SplitTilde(p string) (user, rest string, ok bool) {
	if !strings.HasPrefix(p, "~") {
		return "", p, false
	}
	user, rest, _ = strings.Cut(p[1:], "/")
	return user, strings.TrimLeft(rest, "/"), true
}

// TildeHome returns the home directory that "~user" names ("~" for the
// login user's when user is ""), as OpenSSH's sftp and scp find it:
// the login user's with expand-path@openssh.com if offered, else the
// server's starting directory (its login directory); another user's
// with expand-path@openssh.com, else the home-directory extension, else
// an error that says the server offers neither.
func (c *Client) TildeHome(user string) (string, error) {
	if user == "" {
		return c.HomeDir()
	}
	if strings.ContainsAny(user, "/\x00") {
		return "", fmt.Errorf("~%s: not a user name", user)
	}
	var (
		home string
		err  error
	)
	switch {
	case c.HasExtension(extExpandPath):
		home, err = c.ExpandPath("~" + user)
	case c.HasExtension(extHomeDir):
		home, err = c.UserHomeDir(user)
	default:
		return "", fmt.Errorf("cannot expand ~%s: the server offers neither %s nor %s, which tell another user's home directory (write the path in full)", user, extExpandPath, extHomeDir)
	}
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) {
			return "", fmt.Errorf("cannot expand ~%s: the server does not know that user's home directory (%v)", user, se)
		}
		return "", fmt.Errorf("cannot expand ~%s: %w", user, err)
	}
	return home, nil
}

// ExpandTilde expands a leading "~" or "~user" in p with TildeHome
// ("~/x" is x in the login user's home directory); other paths are
// returned as they are. Without expand-path@openssh.com, "~" and "~/x"
// become "." and "x", relative to the starting directory, which servers
// make the login directory.
func (c *Client) ExpandTilde(p string) (string, error) {
	user, rest, ok := SplitTilde(p)
	if !ok {
		return p, nil
	}
	if user == "" && !c.HasExtension(extExpandPath) {
		if rest == "" {
			return ".", nil
		}
		return rest, nil
	}
	home, err := c.TildeHome(user)
	if err != nil {
		return "", err
	}
	if rest == "" {
		return home, nil
	}
	return path.Join(home, rest), nil
}
