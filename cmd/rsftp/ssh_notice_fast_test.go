package main

import (
	"math/rand/v2"
	"testing"
)

// TestVTTrackerFastPath: feed, which skips the ground's runs to their
// last 4 bytes, ends in the state a byte-by-byte walk reaches, for
// random output (text, UTF-8, escape sequences, strings, controls) cut
// into random pieces.
func TestVTTrackerFastPath(t *testing.T) {
	alphabet := []byte("ab \r\n\x07\x18\x1a\x1b\x1b[\x1b]0;t\x1b\\9m;\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x80\xbf()P_X^")
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 20000 {
		b := make([]byte, rng.IntN(64))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		var slow, fast vtTracker
		for _, c := range b {
			slow.step(c)
		}
		for p := b; len(p) > 0; {
			k := 1 + rng.IntN(len(p))
			fast.feed(p[:k])
			p = p[k:]
		}
		if slow != fast {
			t.Fatalf("case %d %q: fast %+v, byte by byte %+v", n, b, fast, slow)
		}
	}
}
