package main

import (
	"fmt"
	"strings"

	"github.com/rsftp/rsftp/auth"
)

// defaultPreferredAuthentications is ssh's order without the methods
// rsftp does not have (gssapi-with-mic, hostbased).
const defaultPreferredAuthentications = "publickey,keyboard-interactive,password"

// preferredAuthMethods orders the methods rsftp may use as
// PreferredAuthentications lists them, as ssh does: only those listed
// are tried, in that order (the server's list of what may continue
// decides among them at each step). A name rsftp does not have
// (gssapi-with-mic, hostbased, or unknown) is skipped, as ssh skips
// unknown ones; a method turned off (by PubkeyAuthentication,
// KbdInteractiveAuthentication, PasswordAuthentication or BatchMode: nil,
// or no publickey methods) is not tried. A list that names none of rsftp's methods is an error.
func preferredAuthMethods(spec string, pubkey []auth.Method, kbdInt, password auth.Method, log *logger) ([]auth.Method, error) {
	if strings.TrimSpace(spec) == "" {
		spec = defaultPreferredAuthentications
	}
	one := func(m auth.Method) []auth.Method {
		if m == nil {
			return nil
		}
		return []auth.Method{m}
	}
	byName := map[string][]auth.Method{"publickey": pubkey, "keyboard-interactive": one(kbdInt), "password": one(password)}
	var out []auth.Method
	known := false
	seen := map[string]bool{}
	for _, name := range strings.Split(spec, ",") {
		name = strings.TrimSpace(name)
		m, ok := byName[name]
		switch {
		case !ok:
			log.debugf("PreferredAuthentications: %s is not a method rsftp has; skipped", name)
			continue
		case seen[name]:
			continue
		}
		seen[name], known = true, true
		out = append(out, m...)
	}
	if !known {
		return nil, fmt.Errorf("PreferredAuthentications %s names none of the methods rsftp has (publickey, keyboard-interactive, password)", spec)
	}
	return out, nil
}

// passwordTriesError ends a login whose password was refused
// NumberOfPasswordPrompts times.
type passwordTriesError struct{ tries int }

func (e *passwordTriesError) Error() string {
	return fmt.Sprintf("the password was refused %d times (NumberOfPasswordPrompts)", e.tries)
}
