//go:build amd64 && !purego

#include "textflag.h"

// AES-GCM bulk encryption and decryption with VAES and VPCLMULQDQ: sixteen
// blocks per loop, four per ZMM register (one per 128-bit lane), then
// single blocks. The arithmetic is that of gfMul in gcm_vaes.go.
//
// The loop hashes the previous sixteen blocks while it encrypts the next
// sixteen counter blocks: the GHASH multiplications run beside the AES
// rounds instead of after them (about 1.5 times as fast on the machine
// of BenchmarkSeal). The last sixteen are hashed after the loop.
//
// Z0-Z3:   AES states (the single-block tail: lo, hi, mid and a scratch)
// Z4-Z7:   the sixteen blocks to hash next
// Z8-Z11:  the lo, hi and mid GHASH sums of the loop and a scratch
//          (the powers H^16·x .. H·x are read from memory, four per
//          64-byte operand)
// Z12:     the byte-reverse mask in every lane
// Z13:     the next counter block, byte-reversed (its 32-bit counter in
//          dword 0), in lane i plus i
// Z14:     4 in dword 0 of every lane
// X15:     the reduction constant in both qwords
// X16:     the GHASH accumulator
// Z17-Z31: the round keys, each in every lane

DATA gcmBswap<>+0(SB)/8, $0x08090a0b0c0d0e0f
DATA gcmBswap<>+8(SB)/8, $0x0001020304050607
GLOBL gcmBswap<>(SB), RODATA|NOPTR, $16

DATA gcmPoly<>+0(SB)/8, $0xc200000000000000
DATA gcmPoly<>+8(SB)/8, $0xc200000000000000
GLOBL gcmPoly<>(SB), RODATA|NOPTR, $16

DATA gcmOne<>+0(SB)/8, $1
DATA gcmOne<>+8(SB)/8, $0
GLOBL gcmOne<>(SB), RODATA|NOPTR, $16

#define ROUND4(k) \
	VAESENC k, Z0, Z0; \
	VAESENC k, Z1, Z1; \
	VAESENC k, Z2, Z2; \
	VAESENC k, Z3, Z3

#define LAST4(k) \
	VAESENCLAST k, Z0, Z0; \
	VAESENCLAST k, Z1, Z1; \
	VAESENCLAST k, Z2, Z2; \
	VAESENCLAST k, Z3, Z3

// FOLD(z, y, x, ty, tx): x = the XOR of the four lanes of z.
#define FOLD(z, y, x, ty, tx) \
	VEXTRACTI64X4 $1, z, ty; \
	VPXORQ ty, y, y; \
	VEXTRACTI32X4 $1, y, tx; \
	VPXORQ tx, x, x

// REDUCE(lo, hi, mid, t): X16 = the reduction of the sums lo, hi and mid
// (XMM registers; t is scratch).
#define REDUCE(lo, hi, mid, t) \
	VPSLLDQ $8, mid, t; \
	VPXORQ t, lo, lo; \
	VPSRLDQ $8, mid, t; \
	VPXORQ t, hi, hi; \
	VPCLMULQDQ $0x00, X15, lo, t; \
	VPSHUFD $0x4e, lo, lo; \
	VPXORQ t, lo, lo; \
	VPCLMULQDQ $0x00, X15, lo, t; \
	VPSHUFD $0x4e, lo, lo; \
	VPXORQ t, lo, lo; \
	VPXORQ hi, lo, X16

// MULSUM(g, p): lo Z8, hi Z9 and mid Z10 += the four lane products of g
// and p (which may be a memory operand); Z11 is scratch.
#define MULSUM(g, p) \
	VPCLMULQDQ $0x00, p, g, Z11; \
	VPXORQ Z11, Z8, Z8; \
	VPCLMULQDQ $0x11, p, g, Z11; \
	VPXORQ Z11, Z9, Z9; \
	VPCLMULQDQ $0x01, p, g, Z11; \
	VPXORQ Z11, Z10, Z10; \
	VPCLMULQDQ $0x10, p, g, Z11; \
	VPXORQ Z11, Z10, Z10

// COUNTERS: the next four counter blocks, back in byte order, in Z0-Z3.
#define COUNTERS \
	VPSHUFB Z12, Z13, Z0; \
	VPADDD  Z14, Z13, Z13; \
	VPSHUFB Z12, Z13, Z1; \
	VPADDD  Z14, Z13, Z13; \
	VPSHUFB Z12, Z13, Z2; \
	VPADDD  Z14, Z13, Z13; \
	VPSHUFB Z12, Z13, Z3; \
	VPADDD  Z14, Z13, Z13

// XORSTORE: dst = src XOR the keystream in Z0-Z3; Z4-Z7 = the ciphertext
// to hash (the source when opening; when sealing, K1 is all ones and what
// was written replaces it); advance SI and DI.
#define XORSTORE \
	VMOVDQU64 0(SI), Z4; \
	VMOVDQU64 64(SI), Z5; \
	VMOVDQU64 128(SI), Z6; \
	VMOVDQU64 192(SI), Z7; \
	VPXORQ    Z4, Z0, Z0; \
	VPXORQ    Z5, Z1, Z1; \
	VPXORQ    Z6, Z2, Z2; \
	VPXORQ    Z7, Z3, Z3; \
	VMOVDQU64 Z0, 0(DI); \
	VMOVDQU64 Z1, 64(DI); \
	VMOVDQU64 Z2, 128(DI); \
	VMOVDQU64 Z3, 192(DI); \
	VMOVDQA64 Z0, K1, Z4; \
	VMOVDQA64 Z1, K1, Z5; \
	VMOVDQA64 Z2, K1, Z6; \
	VMOVDQA64 Z3, K1, Z7; \
	ADDQ      $256, SI; \
	ADDQ      $256, DI

// func gcmVAES(ks *byte, rounds int, pw *gcmVAESPowers, ctr *[16]byte, acc *gfElem, dst, src *byte, blocks int, dec int)
TEXT ·gcmVAES(SB), NOSPLIT, $0-72
	MOVQ ks+0(FP), AX
	MOVQ rounds+8(FP), BX
	MOVQ pw+16(FP), CX
	MOVQ ctr+24(FP), DX
	MOVQ acc+32(FP), R8
	MOVQ dst+40(FP), DI
	MOVQ src+48(FP), SI
	MOVQ blocks+56(FP), R9
	MOVQ dec+64(FP), R10

	VBROADCASTI32X4 gcmBswap<>(SB), Z12
	VBROADCASTI32X4 ·laneFour(SB), Z14
	VMOVDQU64 gcmPoly<>(SB), X15
	VMOVDQU64 (R8), X16
	VBROADCASTI32X4 (DX), Z13
	VPSHUFB Z12, Z13, Z13
	VPADDD ·laneIndex(SB), Z13, Z13

	VBROADCASTI32X4 0(AX), Z17
	VBROADCASTI32X4 16(AX), Z18
	VBROADCASTI32X4 32(AX), Z19
	VBROADCASTI32X4 48(AX), Z20
	VBROADCASTI32X4 64(AX), Z21
	VBROADCASTI32X4 80(AX), Z22
	VBROADCASTI32X4 96(AX), Z23
	VBROADCASTI32X4 112(AX), Z24
	VBROADCASTI32X4 128(AX), Z25
	VBROADCASTI32X4 144(AX), Z26
	VBROADCASTI32X4 160(AX), Z27
	CMPQ BX, $10
	JE   keysDone
	VBROADCASTI32X4 176(AX), Z28
	VBROADCASTI32X4 192(AX), Z29
	VBROADCASTI32X4 208(AX), Z30
	VBROADCASTI32X4 224(AX), Z31

keysDone:
	CMPQ R9, $16
	JB   single

	// K1 selects, when sealing, the blocks written as the ones to hash.
	XORQ    R11, R11
	CMPQ    R10, $0
	JNE     opening
	MOVQ    $0xff, R11

opening:
	KMOVQ R11, K1

	// The first sixteen blocks: AES only.
	COUNTERS
	VPXORQ Z17, Z0, Z0
	VPXORQ Z17, Z1, Z1
	VPXORQ Z17, Z2, Z2
	VPXORQ Z17, Z3, Z3
	ROUND4(Z18)
	ROUND4(Z19)
	ROUND4(Z20)
	ROUND4(Z21)
	ROUND4(Z22)
	ROUND4(Z23)
	ROUND4(Z24)
	ROUND4(Z25)
	ROUND4(Z26)
	CMPQ BX, $10
	JE   firstLast
	ROUND4(Z27)
	ROUND4(Z28)
	ROUND4(Z29)
	ROUND4(Z30)
	LAST4(Z31)
	JMP  firstXor

firstLast:
	LAST4(Z27)

firstXor:
	XORSTORE
	SUBQ $16, R9
	CMPQ R9, $16
	JB   hashLast

loop16:
	COUNTERS
	VPSHUFB Z12, Z4, Z4
	VPSHUFB Z12, Z5, Z5
	VPSHUFB Z12, Z6, Z6
	VPSHUFB Z12, Z7, Z7
	VPXORQ  Z16, Z4, Z4 // X16's upper lanes are zero
	VPXORQ  Z8, Z8, Z8
	VPXORQ  Z9, Z9, Z9
	VPXORQ  Z10, Z10, Z10
	VPXORQ  Z17, Z0, Z0
	VPXORQ  Z17, Z1, Z1
	VPXORQ  Z17, Z2, Z2
	VPXORQ  Z17, Z3, Z3
	ROUND4(Z18)
	MULSUM(Z4, 0(CX))
	ROUND4(Z19)
	MULSUM(Z5, 64(CX))
	ROUND4(Z20)
	MULSUM(Z6, 128(CX))
	ROUND4(Z21)
	MULSUM(Z7, 192(CX))
	ROUND4(Z22)
	FOLD(Z8, Y8, X8, Y4, X4)
	ROUND4(Z23)
	FOLD(Z9, Y9, X9, Y5, X5)
	ROUND4(Z24)
	FOLD(Z10, Y10, X10, Y6, X6)
	ROUND4(Z25)
	REDUCE(X8, X9, X10, X11)
	ROUND4(Z26)
	CMPQ BX, $10
	JE   last16
	ROUND4(Z27)
	ROUND4(Z28)
	ROUND4(Z29)
	ROUND4(Z30)
	LAST4(Z31)
	JMP  xor16

last16:
	LAST4(Z27)

xor16:
	XORSTORE
	SUBQ $16, R9
	CMPQ R9, $16
	JAE  loop16

hashLast:
	VPSHUFB Z12, Z4, Z4
	VPSHUFB Z12, Z5, Z5
	VPSHUFB Z12, Z6, Z6
	VPSHUFB Z12, Z7, Z7
	VPXORQ  Z16, Z4, Z4
	VPXORQ  Z8, Z8, Z8
	VPXORQ  Z9, Z9, Z9
	VPXORQ  Z10, Z10, Z10
	MULSUM(Z4, 0(CX))
	MULSUM(Z5, 64(CX))
	MULSUM(Z6, 128(CX))
	MULSUM(Z7, 192(CX))
	FOLD(Z8, Y8, X8, Y4, X4)
	FOLD(Z9, Y9, X9, Y5, X5)
	FOLD(Z10, Y10, X10, Y6, X6)
	REDUCE(X8, X9, X10, X11)

single:
	TESTQ R9, R9
	JZ    done
	VMOVDQU64 240(CX), X5 // H·x

loop1:
	VPSHUFB X12, X13, X0
	VPADDD  gcmOne<>(SB), X13, X13
	VPXORQ  X17, X0, X0
	VAESENC X18, X0, X0
	VAESENC X19, X0, X0
	VAESENC X20, X0, X0
	VAESENC X21, X0, X0
	VAESENC X22, X0, X0
	VAESENC X23, X0, X0
	VAESENC X24, X0, X0
	VAESENC X25, X0, X0
	VAESENC X26, X0, X0
	CMPQ    BX, $10
	JE      last1
	VAESENC X27, X0, X0
	VAESENC X28, X0, X0
	VAESENC X29, X0, X0
	VAESENC X30, X0, X0
	VAESENCLAST X31, X0, X0
	JMP     xor1

last1:
	VAESENCLAST X27, X0, X0

xor1:
	VMOVDQU64 (SI), X4
	VPXORQ    X4, X0, X0
	VMOVDQU64 X0, (DI)
	CMPQ      R10, $0
	JNE       hash1
	VMOVDQA64 X0, X4

hash1:
	VPSHUFB X12, X4, X4
	VPXORQ  X16, X4, X4
	VPCLMULQDQ $0x00, X5, X4, X0
	VPCLMULQDQ $0x11, X5, X4, X1
	VPCLMULQDQ $0x01, X5, X4, X2
	VPCLMULQDQ $0x10, X5, X4, X3
	VPXORQ  X3, X2, X2
	REDUCE(X0, X1, X2, X3)

	ADDQ $16, SI
	ADDQ $16, DI
	DECQ R9
	JNZ  loop1

done:
	// The next counter block, in byte order, and the accumulator.
	VPSHUFB   X12, X13, X0
	VMOVDQU64 X0, (DX)
	VMOVDQU64 X16, (R8)
	VZEROUPPER
	RET
