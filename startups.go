package rsftp

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
)

// MaxStartups bounds the connections that have not authenticated yet, as
// OpenSSH's sshd_config(5) MaxStartups start:rate:full does: below Start
// every connection is served; at Start a new one is refused with a
// probability of Rate percent, rising linearly to 100% at Full, from
// where every new one is refused ("random early drop"). A refused
// connection is closed at once, before the version exchange.
//
// Random early drop keeps a server that is being flooded reachable for
// honest clients (each retry has a chance) instead of locking everyone
// out at a hard cap; PerSourceMaxStartups keeps one source from taking
// all the slots.
type MaxStartups struct {
	Start int // connections not yet authenticated from which refusals start (>= 1)
	Rate  int // percent refused at Start (1..100)
	Full  int // connections at and above which every new one is refused (>= Start)
}

// DefaultMaxStartups is OpenSSH's default, 10:30:100.
var DefaultMaxStartups = MaxStartups{Start: 10, Rate: 30, Full: 100}

// ParseMaxStartups parses "start:rate:full" or a single number N, which
// means a hard cap of N (N:100:N), as sshd_config(5) does.
func ParseMaxStartups(s string) (MaxStartups, error) {
	parts := strings.Split(s, ":")
	var n [3]int
	if len(parts) != 1 && len(parts) != 3 {
		return MaxStartups{}, fmt.Errorf("MaxStartups %q: want start:rate:full or a single number", s)
	}
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil {
			return MaxStartups{}, fmt.Errorf("MaxStartups %q: want start:rate:full or a single number", s)
		}
		n[i] = v
	}
	m := MaxStartups{Start: n[0], Rate: n[1], Full: n[2]}
	if len(parts) == 1 {
		m = MaxStartups{Start: n[0], Rate: 100, Full: n[0]}
	}
	if err := m.check(); err != nil {
		return MaxStartups{}, err
	}
	return m, nil
}

// String is the form ParseMaxStartups reads: "N" for a hard cap,
// "start:rate:full" otherwise.
func (m MaxStartups) String() string {
	if m.Start == m.Full {
		return strconv.Itoa(m.Full)
	}
	return fmt.Sprintf("%d:%d:%d", m.Start, m.Rate, m.Full)
}

func (m MaxStartups) check() error {
	switch {
	case m.Start < 1:
		return fmt.Errorf("MaxStartups %d:%d:%d: start must be at least 1", m.Start, m.Rate, m.Full)
	case m.Full < m.Start:
		return fmt.Errorf("MaxStartups %d:%d:%d: full must not be below start", m.Start, m.Rate, m.Full)
	case m.Start < m.Full && (m.Rate < 1 || m.Rate > 100):
		return fmt.Errorf("MaxStartups %d:%d:%d: rate must be a percentage from 1 to 100", m.Start, m.Rate, m.Full)
	}
	return nil
}

// refuse reports whether a new connection is refused when startups
// connections have not authenticated yet; r is a uniform random number
// in [0, 100). It is sshd's should_drop_connection, integer arithmetic
// and all.
func (m MaxStartups) refuse(startups, r int) bool {
	switch {
	case startups < m.Start:
		return false
	case startups >= m.Full || m.Rate >= 100:
		return true
	}
	p := m.Rate + (100-m.Rate)*(startups-m.Start)/(m.Full-m.Start)
	return r < p
}

// NetBlockSize is how many leading bits of a source address
// PerSourceMaxStartups groups together (sshd_config(5)
// PerSourceNetBlockSize): 32 and 128, OpenSSH's default, count each
// address on its own; 24 and 64 count a /24 or a /64 as one source.
type NetBlockSize struct {
	IPv4 int // 1..32
	IPv6 int // 1..128
}

// DefaultNetBlockSize is OpenSSH's default, 32:128.
var DefaultNetBlockSize = NetBlockSize{IPv4: 32, IPv6: 128}

// ParseNetBlockSize parses "v4bits" or "v4bits:v6bits" (the IPv6 figure
// defaults to 128, as in sshd).
func ParseNetBlockSize(s string) (NetBlockSize, error) {
	v4, v6, two := strings.Cut(s, ":")
	b := NetBlockSize{IPv6: 128}
	var err error
	if b.IPv4, err = strconv.Atoi(v4); err != nil {
		return NetBlockSize{}, fmt.Errorf("PerSourceNetBlockSize %q: want v4bits[:v6bits]", s)
	}
	if two {
		if b.IPv6, err = strconv.Atoi(v6); err != nil {
			return NetBlockSize{}, fmt.Errorf("PerSourceNetBlockSize %q: want v4bits[:v6bits]", s)
		}
	}
	if err := b.check(); err != nil {
		return NetBlockSize{}, err
	}
	return b, nil
}

// String is "v4bits:v6bits".
func (b NetBlockSize) String() string { return fmt.Sprintf("%d:%d", b.IPv4, b.IPv6) }

func (b NetBlockSize) check() error {
	if b.IPv4 < 1 || b.IPv4 > 32 || b.IPv6 < 1 || b.IPv6 > 128 {
		return fmt.Errorf("PerSourceNetBlockSize %d:%d: want 1 to 32 bits for IPv4 and 1 to 128 for IPv6", b.IPv4, b.IPv6)
	}
	return nil
}

// startupLimiter counts the connections that have not authenticated yet,
// in all and per source block, and decides whether a new one may start.
// The decision is pure given the counts and the random number, which
// rand supplies (tests inject their own).
type startupLimiter struct {
	max       MaxStartups
	perSource int // 0: no per-source limit
	block     NetBlockSize
	rand      func() int // uniform in [0, 100)

	mu     sync.Mutex
	total  int
	source map[netip.Prefix]int // at most total entries: each is deleted at 0
}

func newStartupLimiter(max MaxStartups, perSource int, block NetBlockSize) *startupLimiter {
	return &startupLimiter{max: max, perSource: perSource, block: block,
		rand: func() int { return rand.IntN(100) }, source: map[netip.Prefix]int{}}
}

// errStartupRefused is what admit's errors wrap.
var errStartupRefused = errors.New("connection refused before authentication")

// sourceOf is the block a remote address counts in. Addresses that are
// not IP addresses (a pipe, a Unix socket) all count as one source, the
// zero Prefix.
func (l *startupLimiter) sourceOf(remote net.Addr) netip.Prefix {
	var ip netip.Addr
	switch a := remote.(type) {
	case *net.TCPAddr:
		if a != nil {
			ip, _ = netip.AddrFromSlice(a.IP)
		}
	default:
		if remote != nil {
			s := remote.String()
			if h, _, err := net.SplitHostPort(s); err == nil {
				s = h
			}
			ip, _ = netip.ParseAddr(s)
		}
	}
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	ip = ip.Unmap().WithZone("")
	bits := l.block.IPv6
	if ip.Is4() {
		bits = l.block.IPv4
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}

// admit decides whether a connection from remote may start. If so it
// counts it and returns the function that uncounts it (once it has
// authenticated or ended); else it returns an error saying which limit
// refused it.
func (l *startupLimiter) admit(remote net.Addr) (release func(), err error) {
	src := l.sourceOf(remote)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perSource > 0 && l.source[src] >= l.perSource {
		return nil, fmt.Errorf("%w: %d unauthenticated connections from %s (PerSourceMaxStartups %d)", errStartupRefused, l.source[src], sourceName(src), l.perSource)
	}
	if l.max.refuse(l.total, l.rand()) {
		return nil, fmt.Errorf("%w: %d unauthenticated connections (MaxStartups %s)", errStartupRefused, l.total, l.max)
	}
	l.total++
	l.source[src]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.total--
			if l.source[src]--; l.source[src] <= 0 {
				delete(l.source, src)
			}
		})
	}, nil
}

// counts returns the connections counted in all and from remote's block.
func (l *startupLimiter) counts(remote net.Addr) (total, source int) {
	src := l.sourceOf(remote)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.source[src]
}

func sourceName(p netip.Prefix) string {
	switch {
	case !p.IsValid():
		return "non-IP addresses"
	case p.IsSingleIP():
		return p.Addr().String()
	}
	return p.String()
}
