package chachapoly

import (
	"crypto/subtle"
	"encoding/binary"
	"math/bits"

	"golang.org/x/crypto/poly1305"
)

// Poly1305 (RFC 8439 section 2.5) for chacha20-poly1305@openssh.com.
// Where the CPU has AVX-512 IFMA, whole 128-byte groups run eight blocks
// at a time in poly_amd64.s and the rest (the last 0-127 bytes, and the
// sum of the eight lanes) runs here, in 64-bit limbs. Elsewhere, and for
// short messages, x/crypto/poly1305 computes it.

// polyMinIFMA is the shortest message sent to the vector code: below it
// computing the powers of r costs more than it saves.
const polyMinIFMA = 512

// polyPowers holds, in the layout polyGroupsIFMA reads, r^8 and the power
// that ends the last group in each lane, each as radix-2^44 limbs r0, r1,
// r2 followed by 20*r1 and 20*r2.
type polyPowers struct {
	r8  [5]uint64
	fin [5][8]uint64
}

// polyLaneExp is the power of r the last group's lane L is multiplied by:
// lane L holds block L/2 + 4*(L%2) of its group, and block b of the last
// group is 8-b blocks from the end.
var polyLaneExp = [8]int{8, 4, 7, 3, 6, 2, 5, 1}

// poly130 is a number below 2^131 or so: h0 + h1*2^64 + h2*2^128 with h2
// small.
type poly130 struct{ h0, h1, h2 uint64 }

// polyKeyR returns r, clamped, from the first half of a one-time key.
func polyKeyR(key *[32]byte) (r0, r1 uint64) {
	return binary.LittleEndian.Uint64(key[0:]) & 0x0ffffffc0fffffff,
		binary.LittleEndian.Uint64(key[8:]) & 0x0ffffffc0ffffffc
}

// mulR returns h*r mod 2^130-5, partly reduced (h2 <= 5), for h2 <= 7 and
// a clamped r (r0, r1 < 2^60).
func (h poly130) mulR(r0, r1 uint64) poly130 {
	var m0, m1, m2, m3, c uint64
	hi, lo := bits.Mul64(h.h0, r0)
	m0, m1 = lo, hi
	hi, lo = bits.Mul64(h.h1, r0)
	m1, c = bits.Add64(m1, lo, 0)
	m2 = hi + c
	hi, lo = bits.Mul64(h.h0, r1)
	m1, c = bits.Add64(m1, lo, 0)
	m2, c = bits.Add64(m2, hi, c)
	m3 = c
	hi, lo = bits.Mul64(h.h1, r1)
	m2, c = bits.Add64(m2, lo, 0)
	m3 += hi + c
	m2, c = bits.Add64(m2, h.h2*r0, 0)
	m3 += c + h.h2*r1

	// m = (m mod 2^130) + 5*(m >> 130), and 5x = 4x + x where 4*(m>>130)
	// is m's words from 128 on with the low two bits cleared.
	var out poly130
	out.h0, c = bits.Add64(m0, m2&^3, 0)
	out.h1, c = bits.Add64(m1, m3, c)
	out.h2 = m2&3 + c
	out.h0, c = bits.Add64(out.h0, m2>>2|m3<<62, 0)
	out.h1, c = bits.Add64(out.h1, m3>>2, c)
	out.h2 += c
	return out
}

// addBlock adds a 16-byte block and the bit above it (hibit 1 for a whole
// block, 0 for the padded last one).
func (h poly130) addBlock(b []byte, hibit uint64) poly130 {
	var c uint64
	h.h0, c = bits.Add64(h.h0, binary.LittleEndian.Uint64(b[0:8]), 0)
	h.h1, c = bits.Add64(h.h1, binary.LittleEndian.Uint64(b[8:16]), c)
	h.h2 += c + hibit
	return h
}

// fold moves what lies above 2^130 back down (times 5) so that h2 <= 4.
func (h poly130) fold() poly130 {
	top := h.h2 >> 2
	h.h2 &= 3
	var c uint64
	h.h0, c = bits.Add64(h.h0, 5*top, 0)
	h.h1, c = bits.Add64(h.h1, 0, c)
	h.h2 += c
	return h
}

// reduce returns h mod 2^130-5 in constant time, for h below 2(2^130-5).
func (h poly130) reduce() poly130 {
	g0, c := bits.Add64(h.h0, 5, 0)
	g1, c := bits.Add64(h.h1, 0, c)
	g2 := h.h2 + c
	// h >= p exactly when h+5 >= 2^130.
	mask := -(g2 >> 2)
	h.h0 ^= (h.h0 ^ g0) & mask
	h.h1 ^= (h.h1 ^ g1) & mask
	h.h2 = (h.h2^g2&3)&mask ^ h.h2
	return h
}

// limbs44 splits a reduced h into radix-2^44 limbs.
func (h poly130) limbs44() (l0, l1, l2 uint64) {
	const m44 = 1<<44 - 1
	return h.h0 & m44, (h.h0>>44 | h.h1<<20) & m44, h.h1>>24 | h.h2<<40
}

// polyPowersFor computes the powers polyGroupsIFMA needs for r.
func polyPowersFor(pw *polyPowers, r0, r1 uint64) {
	var pows [9]poly130
	pows[1] = poly130{h0: r0, h1: r1}
	for k := 2; k <= 8; k++ {
		pows[k] = pows[k-1].mulR(r0, r1).reduce()
	}
	l0, l1, l2 := pows[8].limbs44()
	pw.r8 = [5]uint64{l0, l1, l2, 20 * l1, 20 * l2}
	for lane, e := range polyLaneExp {
		l0, l1, l2 := pows[e].limbs44()
		pw.fin[0][lane], pw.fin[1][lane], pw.fin[2][lane] = l0, l1, l2
		pw.fin[3][lane], pw.fin[4][lane] = 20*l1, 20*l2
	}
}

// polySum writes the Poly1305 tag of msg under the one-time key to out.
func polySum(out *[16]byte, msg []byte, key *[32]byte) {
	if !polyIFMA || len(msg) < polyMinIFMA {
		poly1305.Sum(out, msg, key)
		return
	}
	polySumIFMA(out, msg, key)
}

// polySumIFMA is polySum through polyGroupsIFMA, for len(msg) >= 128.
func polySumIFMA(out *[16]byte, msg []byte, key *[32]byte) {
	r0, r1 := polyKeyR(key)
	var pw polyPowers
	polyPowersFor(&pw, r0, r1)
	groups := len(msg) / 128
	var lanes [24]uint64
	polyGroupsIFMA(&lanes, &msg[0], groups, &pw)

	// The lanes' sum is the polynomial of the groups: the state after
	// them, as if they had gone one block at a time.
	var h poly130
	for l := range 8 {
		l0, l1, l2 := lanes[l], lanes[8+l], lanes[16+l]
		v0, c := bits.Add64(l0, l1<<44, 0)
		v1, c := bits.Add64(l1>>20, l2<<24, c)
		v2 := l2>>40 + c
		h.h0, c = bits.Add64(h.h0, v0, 0)
		h.h1, c = bits.Add64(h.h1, v1, c)
		h.h2 += v2 + c
	}
	polyFinish(out, h.fold(), msg[groups*128:], r0, r1, key)
}

// polyFinish runs the blocks of rest from state h, then writes the tag.
func polyFinish(out *[16]byte, h poly130, rest []byte, r0, r1 uint64, key *[32]byte) {
	for len(rest) >= 16 {
		h = h.addBlock(rest[:16], 1).mulR(r0, r1)
		rest = rest[16:]
	}
	if len(rest) > 0 {
		var last [16]byte
		copy(last[:], rest)
		last[len(rest)] = 1
		h = h.addBlock(last[:], 0).mulR(r0, r1)
	}
	h = h.reduce()
	var c uint64
	h.h0, c = bits.Add64(h.h0, binary.LittleEndian.Uint64(key[16:]), 0)
	h.h1, _ = bits.Add64(h.h1, binary.LittleEndian.Uint64(key[24:]), c)
	binary.LittleEndian.PutUint64(out[0:], h.h0)
	binary.LittleEndian.PutUint64(out[8:], h.h1)
}

// polyVerify reports in constant time whether tag is msg's Poly1305 tag.
func polyVerify(tag *[16]byte, msg []byte, key *[32]byte) bool {
	var want [16]byte
	polySum(&want, msg, key)
	return subtle.ConstantTimeCompare(tag[:], want[:]) == 1
}
