//go:build amd64 && !purego

package transport

import "golang.org/x/sys/cpu"

// chachaAVX512 says whether chachaXORAVX512 may run on this CPU (and OS).
var chachaAVX512 = cpu.X86.HasAVX512F

// chachaXORAVX512 XORs chunks*1024 bytes of src with the ChaCha20
// keystream of state (RFC 8439 layout: constants, key, counter, nonce)
// from state's counter on, into dst. dst and src may be the same. It
// does not advance state's counter. chunks must be at least 1.
//
//go:noescape
func chachaXORAVX512(state *[16]uint32, dst, src *byte, chunks int)

// polyIFMA says whether polyGroupsIFMA may run on this CPU (and OS).
var polyIFMA = cpu.X86.HasAVX512F && cpu.X86.HasAVX512IFMA

// polyGroupsIFMA runs Poly1305 over groups (at least 1) of 128 bytes at
// msg from a zero state, eight lanes at a time, and stores the lanes'
// radix-2^44 limbs to h (limb 0 of lanes 0-7, then limb 1, then limb 2).
//
//go:noescape
func polyGroupsIFMA(h *[24]uint64, msg *byte, groups int, pw *polyPowers)

// gcmVAESOK says whether gcmVAES may run on this CPU (and OS).
var gcmVAESOK = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL &&
	cpu.X86.HasAVX512VAES && cpu.X86.HasAVX512VPCLMULQDQ && cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ

// gcmVAES encrypts (dec == 0) or decrypts (dec == 1) blocks (any number
// from 0) 16-byte blocks of src into dst with AES-CTR from the counter
// block at ctr (whose last 32 bits count), and folds the ciphertext into
// the GHASH accumulator acc. ks holds the round keys of an AES key of
// rounds rounds (10 or 14). It leaves the next counter block in ctr. dst
// and src may be the same.
//
//go:noescape
func gcmVAES(ks *byte, rounds int, pw *gcmVAESPowers, ctr *[16]byte, acc *gfElem, dst, src *byte, blocks int, dec int)
