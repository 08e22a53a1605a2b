//go:build amd64 && !purego

package gcmvaes

import "golang.org/x/sys/cpu"

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
