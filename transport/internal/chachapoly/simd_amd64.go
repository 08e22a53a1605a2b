//go:build amd64 && !purego

package chachapoly

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
