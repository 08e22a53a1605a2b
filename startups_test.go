package rsftp

import (
	"net"
	"strings"
	"testing"
)

// TestLimitMaxStartupsArithmetic: the random early drop of MaxStartups
// start:rate:full, as sshd computes it: nothing refused below start,
// rate percent at start, rising linearly, everything at full and beyond.
func TestLimitMaxStartupsArithmetic(t *testing.T) {
	m := MaxStartups{Start: 10, Rate: 30, Full: 100}
	// refusedOf100 counts the random numbers 0..99 that refuse.
	refusedOf100 := func(m MaxStartups, startups int) int {
		n := 0
		for r := range 100 {
			if m.refuse(startups, r) {
				n++
			}
		}
		return n
	}
	for _, tc := range []struct{ startups, refused int }{
		{0, 0}, {9, 0}, // below start: never
		{10, 30},   // at start: rate percent
		{11, 30},   // 30 + 70*1/90 = 30 (integer division, as sshd)
		{19, 37},   // 30 + 70*9/90
		{55, 65},   // half way: 30 + 35
		{99, 99},   // 30 + 70*89/90 = 99
		{100, 100}, // full: always
		{1000, 100},
	} {
		if got := refusedOf100(m, tc.startups); got != tc.refused {
			t.Errorf("%v with %d unauthenticated: %d of 100 random numbers refuse, want %d", m, tc.startups, got, tc.refused)
		}
	}
	// A hard cap (start = full, as "MaxStartups N" sets).
	hard := MaxStartups{Start: 3, Rate: 100, Full: 3}
	for startups, want := range []int{0, 0, 0, 100, 100} {
		if got := refusedOf100(hard, startups); got != want {
			t.Errorf("hard cap 3 with %d: %d of 100 refuse, want %d", startups, got, want)
		}
	}
	// rate 100: everything from start on.
	if got := refusedOf100(MaxStartups{Start: 2, Rate: 100, Full: 50}, 2); got != 100 {
		t.Errorf("2:100:50 at 2: %d of 100 refuse, want 100", got)
	}
}

// TestLimitMaxStartupsParse: the forms sshd reads, and the ones it
// refuses.
func TestLimitMaxStartupsParse(t *testing.T) {
	for in, want := range map[string]MaxStartups{
		"10:30:100": {10, 30, 100},
		"1:1:1":     {1, 1, 1},
		"5:100:5":   {5, 100, 5},
		"64":        {64, 100, 64},
		"1":         {1, 100, 1},
	} {
		got, err := ParseMaxStartups(in)
		if err != nil || got != want {
			t.Errorf("ParseMaxStartups(%q) = %v, %v; want %v", in, got, err, want)
		}
		if back, err := ParseMaxStartups(got.String()); err != nil || back.Start != got.Start || back.Full != got.Full {
			t.Errorf("%q: String %q does not parse back (%v, %v)", in, got.String(), back, err)
		}
	}
	for _, in := range []string{"", "0", "-1", "10:30", "10:30:100:1", "a:b:c", "10:0:100", "10:101:100",
		"10:30:9", "0:30:100", "10:-1:100", " 10", "99999999999999999999"} {
		if m, err := ParseMaxStartups(in); err == nil {
			t.Errorf("ParseMaxStartups(%q) accepted: %v", in, m)
		}
	}
	for in, want := range map[string]NetBlockSize{"32:128": {32, 128}, "24": {24, 128}, "24:64": {24, 64}, "1:1": {1, 1}} {
		if got, err := ParseNetBlockSize(in); err != nil || got != want {
			t.Errorf("ParseNetBlockSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "33", "32:0", "32:129", "x", "32:", ":64", "32:64:1"} {
		if b, err := ParseNetBlockSize(in); err == nil {
			t.Errorf("ParseNetBlockSize(%q) accepted: %v", in, b)
		}
	}
}

func tcpAddr(s string) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		panic(err)
	}
	return a
}

// TestLimitStartupLimiter: the limiter's counts with its randomness
// injected: the per-source limit counts a source block (not the port,
// and IPv4-mapped IPv6 as IPv4), holds whatever MaxStartups would say,
// and frees a slot on release (once, however often release is called).
func TestLimitStartupLimiter(t *testing.T) {
	l := newStartupLimiter(MaxStartups{Start: 4, Rate: 50, Full: 8}, 2, NetBlockSize{IPv4: 24, IPv6: 64})
	r := 0
	l.rand = func() int { return r }

	a1, a2 := tcpAddr("192.0.2.1:1000"), tcpAddr("[::ffff:192.0.2.200]:2000") // one /24
	b := tcpAddr("198.51.100.7:1")
	v6a, v6b := tcpAddr("[2001:db8:1:2::1]:22"), tcpAddr("[2001:db8:1:2:ffff::9]:22") // one /64

	admit := func(addr net.Addr, what string) func() {
		t.Helper()
		rel, err := l.admit(addr)
		if err != nil {
			t.Fatalf("%s: refused: %v", what, err)
		}
		return rel
	}
	refused := func(addr net.Addr, what, why string) {
		t.Helper()
		if rel, err := l.admit(addr); err == nil {
			rel()
			t.Fatalf("%s: admitted", what)
		} else if !strings.Contains(err.Error(), why) {
			t.Fatalf("%s: refused with %q, want it to say %q", what, err, why)
		}
	}
	relA1 := admit(a1, "first of 192.0.2.0/24")
	admit(a2, "second of 192.0.2.0/24 (mapped)")
	refused(a1, "third of 192.0.2.0/24", "PerSourceMaxStartups 2")
	admit(v6a, "first of the /64")
	admit(v6b, "second of the /64")
	refused(v6a, "third of the /64", "PerSourceMaxStartups 2")

	// Four counted: MaxStartups' start. With r = 99 the random early
	// drop (50% at 4) admits, with r = 0 it refuses.
	r = 0
	refused(b, "another source at start with r=0", "MaxStartups 4:50:8")
	r = 99
	relB := admit(b, "another source at start with r=99")
	if total, src := l.counts(a1); total != 5 || src != 2 {
		t.Fatalf("counts: %d in all, %d from 192.0.2.0/24; want 5 and 2", total, src)
	}

	relA1()
	relA1() // a second release must not free another slot
	if total, src := l.counts(a1); total != 4 || src != 1 {
		t.Fatalf("after a release: %d in all, %d from 192.0.2.0/24; want 4 and 1", total, src)
	}
	admit(a1, "192.0.2.0/24 after one of its connections ended")
	relB()
	if len(l.source) != 2 {
		t.Fatalf("%d source blocks kept, want 2 (a released block must be forgotten)", len(l.source))
	}

	// Without a per-source limit only MaxStartups counts, and addresses
	// that are not IP addresses are one source.
	l2 := newStartupLimiter(MaxStartups{Start: 2, Rate: 100, Full: 2}, 0, DefaultNetBlockSize)
	pipe1, _ := net.Pipe()
	for i := range 2 {
		if _, err := l2.admit(pipe1.RemoteAddr()); err != nil {
			t.Fatalf("pipe %d: %v", i, err)
		}
	}
	if _, err := l2.admit(a1); err == nil {
		t.Fatal("past the hard cap: admitted")
	}
	l3 := newStartupLimiter(DefaultMaxStartups, 1, DefaultNetBlockSize)
	if _, err := l3.admit(pipe1.RemoteAddr()); err != nil {
		t.Fatal(err)
	}
	if _, err := l3.admit(nil); err == nil || !strings.Contains(err.Error(), "non-IP") {
		t.Fatalf("a second non-IP source with a per-source limit of 1: %v", err)
	}
}
