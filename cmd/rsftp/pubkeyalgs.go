package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rsftp/rsftp/auth"
)

// pubkeyAlgorithms applies PubkeyAcceptedAlgorithms (or its older name,
// PubkeyAcceptedKeyTypes) to ssh's default list, which is every
// algorithm rsftp supports: nil when neither is set. Names rsftp does
// not support (ssh-rsa, SHA-1, above all: "+ssh-rsa" is a common line
// for old servers) are left out, as ssh leaves out what it was built
// without, and said at -v; a list that leaves nothing is an error.
func pubkeyAlgorithms(cfg *sshConfig, log *logger) ([]string, error) {
	key := "pubkeyacceptedalgorithms"
	spec, ok := cfg.get(key)
	if !ok {
		key = "pubkeyacceptedkeytypes"
		if spec, ok = cfg.get(key); !ok {
			return nil, nil
		}
	}
	supported := auth.DefaultPublicKeyAlgorithms()
	list, dropped := assembleAlgorithms(spec, supported)
	if len(dropped) > 0 {
		log.debugf("PubkeyAcceptedAlgorithms: %s not supported by rsftp; left out", strings.Join(dropped, ","))
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("PubkeyAcceptedAlgorithms %q leaves no algorithm rsftp supports (%s)", spec, strings.Join(supported, ","))
	}
	return list, nil
}

// assembleAlgorithms applies an OpenSSH algorithm list to defaults, the
// algorithms supported in order of preference: "a,b" replaces them, "+a"
// appends, "-a" removes, "^a" puts first. A name may be a pattern with
// '*' and '?', standing for the supported names it matches. Names that
// are neither supported nor patterns are returned in dropped (never for
// "-", where removing what is not there is no mistake).
func assembleAlgorithms(spec string, defaults []string) (list, dropped []string) {
	op := byte(0)
	if spec != "" && strings.IndexByte("+-^", spec[0]) >= 0 {
		op, spec = spec[0], spec[1:]
	}
	var named []string
	for _, n := range strings.Split(spec, ",") {
		if n == "" {
			continue
		}
		if strings.ContainsAny(n, "*?") {
			for _, d := range defaults {
				if auth.MatchPattern(n, d) && !slices.Contains(named, d) {
					named = append(named, d)
				}
			}
			continue
		}
		if !slices.Contains(defaults, n) {
			if op != '-' {
				dropped = append(dropped, n)
			}
			continue
		}
		if !slices.Contains(named, n) {
			named = append(named, n)
		}
	}
	rest := slices.DeleteFunc(slices.Clone(defaults), func(d string) bool { return slices.Contains(named, d) })
	switch op {
	case '+':
		return defaults, dropped // every supported name is in the defaults already
	case '-':
		return rest, nil
	case '^':
		return append(named, rest...), dropped
	}
	return named, dropped
}
