package kex

import (
	"crypto/rand"
	"slices"
	"sync/atomic"
	"time"

	"github.com/rsftp/rsftp/internal/sntrup761"
)

// An sntrup761 key pair takes about 10 ms to make here (two inverses in
// the ring), ML-KEM's about 0.1 ms. A client learns that the server chose
// sntrup761x25519 only from the server's KEXINIT, so making the key then
// would sit on the exchange's path. Instead the key is made ahead on
// another goroutine: when a client's first key exchange begins with the
// method among those it offers (Prepare, while the server's KEXINIT is on
// its way), and again a moment after an exchange took one, so that a
// reconnection finds it ready. At most one is kept; each serves one
// exchange. Like ML-KEM's keys here, they come from crypto/rand.
var (
	sntrupSpare  = make(chan *sntrup761.PrivateKey, 1)
	sntrupMaking atomic.Bool
)

// sntrupRefillDelay keeps the next key's making off the exchange that
// took the last one: the client is still busy with it (and on a small
// machine, so is the server).
const sntrupRefillDelay = time.Second

// Prepare starts making what a client's key exchange may need, given the
// methods it offers: an sntrup761 key when one is offered and none is
// ready. The transport calls it as a client's first exchange begins.
func Prepare(methods []string) {
	if slices.Contains(methods, SNTRUP761X25519SHA512) || slices.Contains(methods, SNTRUP761X25519SHA512OpenSSH) {
		sntrupRefill(0)
	}
}

// sntrupKey returns the spare key pair if one is ready, else makes one;
// the next spare is made after sntrupRefillDelay.
func sntrupKey() (*sntrup761.PrivateKey, error) {
	defer sntrupRefill(sntrupRefillDelay)
	select {
	case k := <-sntrupSpare:
		return k, nil
	default:
	}
	return sntrup761.GenerateKey(rand.Reader)
}

// sntrupRefill makes a spare key after delay, unless one is ready or
// being made.
func sntrupRefill(delay time.Duration) {
	if len(sntrupSpare) > 0 || !sntrupMaking.CompareAndSwap(false, true) {
		return
	}
	gen := func() {
		defer sntrupMaking.Store(false)
		k, err := sntrup761.GenerateKey(rand.Reader)
		if err != nil {
			return
		}
		select {
		case sntrupSpare <- k:
		default:
		}
	}
	if delay == 0 {
		go gen()
	} else {
		time.AfterFunc(delay, gen)
	}
}
