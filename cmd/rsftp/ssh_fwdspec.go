package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// forwardSpec is one -L, -R or -D (LocalForward, RemoteForward,
// DynamicForward), read as ssh's parse_forward reads it.
type forwardSpec struct {
	kind byte // 'L', 'R' or 'D'
	// The listening side: a TCP port on bindHost (bindSet says whether
	// an address was given: "" or "*" is every address, none the
	// GatewayPorts default), or a Unix socket at listenPath.
	bindHost   string
	bindSet    bool
	listenPort int
	listenPath string
	// The connecting side: host:port or a Unix socket at connectPath;
	// neither for -D (and -R with one field: SOCKS through this side).
	connectHost string
	connectPort int
	connectPath string
}

// maxSunPath bounds a Unix socket's path (sockaddr_un's sun_path, 104
// bytes on the BSDs and macOS, 108 on Linux; the smaller for all).
const maxSunPath = 104

// maxHostLen bounds a host name (NI_MAXHOST).
const maxHostLen = 1025

// dynamic reports whether connections are forwarded by SOCKS (-D, or
// -R with a port alone).
func (f forwardSpec) dynamic() bool {
	return f.connectHost == "" && f.connectPath == ""
}

// fwdField is one colon-separated field of a forward spec.
type fwdField struct {
	arg    string
	isPath bool
}

// splitForward splits a forward spec into up to four fields as ssh's
// parse_fwd_field: a field in [brackets] is taken literally (an IPv6
// address); elsewhere a backslash escapes the next character and a slash
// makes the field a Unix socket's path.
func splitForward(s string) ([]fwdField, error) {
	var fields []fwdField
	for s != "" {
		if len(fields) == 4 {
			return nil, errors.New("too many fields")
		}
		var f fwdField
		if s[0] == '[' {
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, errors.New("no ] after [")
			}
			f.arg = s[1:end]
			f.isPath = strings.Contains(f.arg, "/")
			rest := s[end+1:]
			switch {
			case rest == "":
				s = ""
			case rest[0] == ':':
				s = rest[1:]
			default:
				return nil, fmt.Errorf("%q after ]", rest[:1])
			}
			fields = append(fields, f)
			continue
		}
		var b strings.Builder
		i := 0
		done := false
		for ; i < len(s) && !done; i++ {
			switch c := s[i]; c {
			case '\\':
				if i+1 == len(s) {
					return nil, errors.New("a backslash at the end")
				}
				i++
				b.WriteByte(s[i])
			case '/':
				f.isPath = true
				b.WriteByte(c)
			case ':':
				done = true
			default:
				b.WriteByte(c)
			}
		}
		f.arg = b.String()
		s = s[i:]
		fields = append(fields, f)
	}
	return fields, nil
}

// parsePort is ssh's a2port: a number from 0 to 65535 or a service
// name; -1 if it is neither.
func parsePort(s string) int {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > 65535 {
			return -1
		}
		return n
	}
	if s == "" {
		return -1
	}
	if n, err := net.LookupPort("tcp", s); err == nil {
		return n
	}
	return -1
}

// expandDollar replaces ${NAME} with the environment variable NAME, as
// ssh's dollar_expand; an unset variable is an error.
func expandDollar(s string, getenv func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", errors.New("${ without }")
		}
		name := s[i+2 : i+end]
		if name == "" {
			return "", errors.New("empty ${}")
		}
		v, ok := getenv(name)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		b.WriteString(s[:i])
		b.WriteString(v)
		s = s[i+end+1:]
	}
}

// parseForward reads a forward spec of kind 'L', 'R' or 'D':
//
//	-L [bind:]port:host:hostport  -L [bind:]port:remote_socket
//	-L local_socket:host:hostport -L local_socket:remote_socket
//	-R [bind:]port:host:hostport  -R [bind:]port:local_socket
//	-R remote_socket:host:hostport -R remote_socket:local_socket
//	-R [bind:]port                -D [bind:]port
//
// A listening port of 0 is allowed for -R alone (the server picks one).
func parseForward(kind byte, spec string) (forwardSpec, error) {
	f, err := parseForwardFields(kind, spec)
	if err != nil {
		what := map[byte]string{'L': "local", 'R': "remote", 'D': "dynamic"}[kind]
		return forwardSpec{}, fmt.Errorf("bad %s forwarding specification %q: %w", what, spec, err)
	}
	return f, nil
}

func parseForwardFields(kind byte, spec string) (forwardSpec, error) {
	spec, err := expandDollar(spec, os.LookupEnv)
	if err != nil {
		return forwardSpec{}, err
	}
	spec = strings.TrimLeft(spec, " \t")
	fields, err := splitForward(spec)
	if err != nil {
		return forwardSpec{}, err
	}
	f := forwardSpec{kind: kind}
	port := func(s string) (int, error) {
		n := parsePort(s)
		if n < 0 {
			return 0, fmt.Errorf("bad port %q", s)
		}
		return n, nil
	}
	a := fields
	switch len(a) {
	case 1:
		if a[0].isPath {
			f.listenPath = a[0].arg
		} else if f.listenPort, err = port(a[0].arg); err != nil {
			return f, err
		}
	case 2:
		switch {
		case a[0].isPath && a[1].isPath:
			f.listenPath, f.connectPath = a[0].arg, a[1].arg
		case a[1].isPath:
			if f.listenPort, err = port(a[0].arg); err != nil {
				return f, err
			}
			f.connectPath = a[1].arg
		default:
			f.bindHost, f.bindSet = a[0].arg, true
			if f.listenPort, err = port(a[1].arg); err != nil {
				return f, err
			}
		}
	case 3:
		switch {
		case a[0].isPath:
			f.listenPath, f.connectHost = a[0].arg, a[1].arg
			if f.connectPort, err = port(a[2].arg); err != nil {
				return f, err
			}
		case a[2].isPath:
			f.bindHost, f.bindSet = a[0].arg, true
			if f.listenPort, err = port(a[1].arg); err != nil {
				return f, err
			}
			f.connectPath = a[2].arg
		default:
			if f.listenPort, err = port(a[0].arg); err != nil {
				return f, err
			}
			f.connectHost = a[1].arg
			if f.connectPort, err = port(a[2].arg); err != nil {
				return f, err
			}
		}
	case 4:
		f.bindHost, f.bindSet = a[0].arg, true
		if f.listenPort, err = port(a[1].arg); err != nil {
			return f, err
		}
		f.connectHost = a[2].arg
		if f.connectPort, err = port(a[3].arg); err != nil {
			return f, err
		}
	default:
		return f, errors.New("empty")
	}
	if kind == 'D' {
		// -D [bind:]port only: one or two fields, no target.
		if len(a) > 2 || f.connectPath != "" || f.listenPath != "" && len(a) == 2 {
			return f, errors.New("-D takes [bind_address:]port")
		}
	} else {
		if f.dynamic() && !(kind == 'R' && len(a) <= 2) {
			return f, errors.New("no target (host:hostport or a socket path)")
		}
		if f.connectHost != "" && f.connectPort == 0 {
			return f, errors.New("the target's port is 0")
		}
		if f.connectHost == "" && f.connectPath == "" && f.connectPort != 0 {
			return f, errors.New("no target host")
		}
	}
	if f.listenPath == "" && f.listenPort == 0 && kind != 'R' {
		return f, errors.New("the listening port is 0 (only -R may ask the server to pick one)")
	}
	if len(f.connectHost) >= maxHostLen || len(f.bindHost) >= maxHostLen {
		return f, errors.New("host name too long")
	}
	if len(f.connectPath) >= maxSunPath || len(f.listenPath) >= maxSunPath {
		return f, fmt.Errorf("socket path too long (at most %d bytes)", maxSunPath-1)
	}
	return f, nil
}

// hostPort writes a host and port as ssh's messages do: host:port, with
// an IPv6 address in brackets.
func hostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

// listenString is the listening side as written in messages.
func (f forwardSpec) listenString() string {
	if f.listenPath != "" {
		return f.listenPath
	}
	host := f.bindHost
	if !f.bindSet {
		host = "localhost"
	} else if host == "" {
		host = "*"
	}
	return hostPort(host, f.listenPort)
}

// connectString is the connecting side as written in messages.
func (f forwardSpec) connectString() string {
	switch {
	case f.connectPath != "":
		return f.connectPath
	case f.connectHost != "":
		return hostPort(f.connectHost, f.connectPort)
	}
	return "SOCKS"
}

// String says what the forward does, for -v and ~#.
func (f forwardSpec) String() string {
	switch f.kind {
	case 'L':
		return "local forward " + f.listenString() + " -> " + f.connectString()
	case 'R':
		return "remote forward " + f.listenString() + " (on the server) -> " + f.connectString()
	}
	return "dynamic forward (SOCKS) " + f.listenString()
}

// configForwardSpec turns a LocalForward or RemoteForward line's two
// arguments into the command line's one ("listen target"), as ssh's
// readconf does; DynamicForward and a RemoteForward with one argument
// stay as they are.
func configForwardSpec(kind byte, args []string) (string, error) {
	switch {
	case len(args) == 1 && (kind == 'D' || kind == 'R'):
		return args[0], nil
	case len(args) == 2 && kind != 'D':
		return args[0] + ":" + args[1], nil
	case len(args) == 0:
		return "", errors.New("missing argument")
	}
	return "", errors.New("missing or extra argument (want listen target)")
}
