package rsftp

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// The permission lists of forwarding, read as sshd reads PermitOpen and
// PermitListen (and authorized_keys' permitopen= and permitlisten=):
//
//   - an open entry is host:port, [IPv6]:port, with "*" for any host or
//     any port; the host is compared as written, without lookups;
//   - a listen entry is [host:]port: a bare port admits any host; the
//     host is a pattern (* and ?) matched against the address the client
//     asked to bind, lowercased, and the port may be "*";
//   - "any" alone admits everything, "none" alone nothing; no list at all
//     admits everything.

// permitEntry is one parsed entry: host ("*" any) and port (-1 any).
type permitEntry struct {
	host string
	port int
}

// anyPort marks an entry's port "*".
const anyPort = -1

// parsePermitEntry parses host:port, [host]:port or, for a listen entry,
// a bare port.
func parsePermitEntry(s string, listen bool) (permitEntry, error) {
	var host, ps string
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]:")
		if end < 0 {
			return permitEntry{}, fmt.Errorf("%q: expected [address]:port", s)
		}
		host, ps = s[1:end], s[end+2:]
	case strings.Contains(s, ":"):
		i := strings.LastIndex(s, ":")
		host, ps = s[:i], s[i+1:]
		if strings.Contains(host, ":") {
			return permitEntry{}, fmt.Errorf("%q: put an IPv6 address in brackets", s)
		}
	case listen:
		host, ps = "*", s
	default:
		return permitEntry{}, fmt.Errorf("%q: expected host:port", s)
	}
	if host == "" {
		return permitEntry{}, fmt.Errorf("%q: missing host", s)
	}
	e := permitEntry{host: host, port: anyPort}
	if ps != "*" {
		p, err := strconv.Atoi(ps)
		if err != nil || p < 0 || p > 65535 || (p == 0 && !listen) {
			return permitEntry{}, fmt.Errorf("%q: bad port %q", s, ps)
		}
		e.port = p
	}
	if listen {
		e.host = strings.ToLower(e.host)
	}
	return e, nil
}

// checkPermitList checks a ServerConfig list: entries that parse, and
// "any" or "none" only alone.
func checkPermitList(list []string, listen bool) error {
	for _, s := range list {
		if s == "any" || s == "none" {
			if len(list) != 1 {
				return fmt.Errorf("%q must be the only entry", s)
			}
			continue
		}
		if _, err := parsePermitEntry(s, listen); err != nil {
			return err
		}
	}
	return nil
}

// permitOpen reports whether list admits a connection to host:port
// (direct-tcpip). A nil list admits all; an entry that does not parse
// admits nothing.
func permitOpen(list []string, host string, port int) bool {
	if list == nil {
		return true
	}
	for _, s := range list {
		if s == "any" {
			return true
		}
		e, err := parsePermitEntry(s, false)
		if err != nil {
			continue
		}
		if (e.port == anyPort || e.port == port) && (e.host == "*" || e.host == host) {
			return true
		}
	}
	return false
}

// permitListen reports whether list admits listening on host:port
// (tcpip-forward; port 0 for one the server picks, which only an entry
// for port 0 or "*" admits).
func permitListen(list []string, host string, port int) bool {
	if list == nil {
		return true
	}
	host = strings.ToLower(host)
	for _, s := range list {
		if s == "any" {
			return true
		}
		e, err := parsePermitEntry(s, true)
		if err != nil {
			continue
		}
		if (e.port == anyPort || e.port == port) && matchPattern(host, e.host) {
			return true
		}
	}
	return false
}

// matchPattern matches s against a pattern of ssh's kind: "*" any run of
// characters, "?" any one, the rest as written.
func matchPattern(s, pat string) bool {
	// Iterative, with one backtrack point: linear in practice, and no
	// recursion for a peer's string to deepen.
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(pat) && (pat[pi] == '?' || pat[pi] == s[si]):
			si++
			pi++
		case pi < len(pat) && pat[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pat) && pat[pi] == '*' {
		pi++
	}
	return pi == len(pat)
}

// GatewayPorts says which addresses a remote forward (tcpip-forward)
// listens on, as sshd's option of the name.
type GatewayPorts int

const (
	// GatewayPortsNo binds the loopback addresses whatever the client
	// asks: 127.0.0.1 or ::1 if it asked for one of them, else both
	// (sshd's default).
	GatewayPortsNo GatewayPorts = iota
	// GatewayPortsYes binds all addresses whatever the client asks.
	GatewayPortsYes
	// GatewayPortsClientSpecified binds what the client asks: all
	// addresses for "" or "*", both loopback addresses for
	// "localhost", else the address given.
	GatewayPortsClientSpecified
)

// String returns sshd's word for g: no, yes, clientspecified.
func (g GatewayPorts) String() string {
	switch g {
	case GatewayPortsNo:
		return "no"
	case GatewayPortsYes:
		return "yes"
	case GatewayPortsClientSpecified:
		return "clientspecified"
	}
	return fmt.Sprintf("GatewayPorts(%d)", int(g))
}

// ParseGatewayPorts reads sshd's words for GatewayPorts.
func ParseGatewayPorts(s string) (GatewayPorts, error) {
	switch strings.ToLower(s) {
	case "no":
		return GatewayPortsNo, nil
	case "yes":
		return GatewayPortsYes, nil
	case "clientspecified":
		return GatewayPortsClientSpecified, nil
	}
	return 0, errors.New("GatewayPorts must be no, yes or clientspecified")
}

// bindAddrs returns the addresses a remote forward asked for host binds
// ("" is every address).
func bindAddrs(host string, g GatewayPorts) []string {
	switch {
	case g == GatewayPortsYes:
		return []string{""}
	case host == "127.0.0.1" || host == "::1":
		return []string{host}
	case g == GatewayPortsNo || host == "localhost":
		return []string{"127.0.0.1", "::1"}
	case host == "" || host == "*":
		return []string{""}
	}
	return []string{host}
}

// listenAddr joins a bind address and a port for net.Listen.
func listenAddr(addr string, port int) string {
	return net.JoinHostPort(addr, strconv.Itoa(port))
}

// ParsePermitOpen reads a list of PermitOpen entries as a command line
// or a configuration file gives it (separated by commas or spaces) and
// checks it: for ServerConfig.PermitOpen. An empty s is nil (any).
func ParsePermitOpen(s string) ([]string, error) { return parsePermitList(s, false) }

// ParsePermitListen is ParsePermitOpen for ServerConfig.PermitListen.
func ParsePermitListen(s string) ([]string, error) { return parsePermitList(s, true) }

func parsePermitList(s string, listen bool) ([]string, error) {
	list := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	if len(list) == 0 {
		return nil, nil
	}
	if err := checkPermitList(list, listen); err != nil {
		return nil, err
	}
	return list, nil
}
