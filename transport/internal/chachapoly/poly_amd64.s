//go:build amd64 && !purego

#include "textflag.h"

// Poly1305 over whole 128-byte groups with AVX-512 IFMA, eight blocks in
// parallel: lane L of each vector accumulates every eighth 16-byte block.
//
// Numbers mod 2^130-5 are three limbs of 44, 44 and 42 bits (radix
// 2^44), one vector per limb. VPMADD52LUQ and VPMADD52HUQ add the low and
// high 52 bits of 52x52-bit products; a high part at limb k weighs 2^8
// of limb k+1, and 2^140 = 2^130 * 2^10 is 5 * 2^10 = 5120 mod p.
//
// The two 64-byte loads of a group hold blocks 0-3 and 4-7; unpacking
// their low and high quadwords puts block L/2 + 4*(L%2) in lane L. Every
// group but the last is multiplied by r^8 after being added; the last by
// r^(8-b) in the lane holding block b, so that the lanes sum to the
// polynomial of all the groups (the caller passes those powers).

#define MASK44 Z8
#define MASK42 Z9
#define HIBIT Z10

// LOADADD adds the eight blocks at SI to H0-H2 (Z0-Z2).
#define LOADADD \
	VMOVDQU64 0(SI), Z14; \
	VMOVDQU64 64(SI), Z15; \
	VPUNPCKLQDQ Z15, Z14, Z16; \
	VPUNPCKHQDQ Z15, Z14, Z17; \
	VPANDQ MASK44, Z16, Z11; \
	VPSRLQ $44, Z16, Z12; \
	VPSLLQ $20, Z17, Z18; \
	VPORQ Z18, Z12, Z12; \
	VPANDQ MASK44, Z12, Z12; \
	VPSRLQ $24, Z17, Z13; \
	VPORQ HIBIT, Z13, Z13; \
	VPADDQ Z11, Z0, Z0; \
	VPADDQ Z12, Z1, Z1; \
	VPADDQ Z13, Z2, Z2

// MULR sets H0-H2 to H * R mod p, partly reduced. R is Z3-Z5 (limbs) with
// Z6 = 20*R1 and Z7 = 20*R2 (2^132 = 4 * 2^130 is 20 mod p).
#define MULR \
	VPXORQ Z19, Z19, Z19; \
	VPXORQ Z20, Z20, Z20; \
	VPXORQ Z21, Z21, Z21; \
	VPXORQ Z22, Z22, Z22; \
	VPXORQ Z23, Z23, Z23; \
	VPXORQ Z24, Z24, Z24; \
	VPMADD52LUQ Z3, Z0, Z19; \
	VPMADD52HUQ Z3, Z0, Z20; \
	VPMADD52LUQ Z4, Z0, Z21; \
	VPMADD52HUQ Z4, Z0, Z22; \
	VPMADD52LUQ Z5, Z0, Z23; \
	VPMADD52HUQ Z5, Z0, Z24; \
	VPMADD52LUQ Z7, Z1, Z19; \
	VPMADD52HUQ Z7, Z1, Z20; \
	VPMADD52LUQ Z3, Z1, Z21; \
	VPMADD52HUQ Z3, Z1, Z22; \
	VPMADD52LUQ Z4, Z1, Z23; \
	VPMADD52HUQ Z4, Z1, Z24; \
	VPMADD52LUQ Z6, Z2, Z19; \
	VPMADD52HUQ Z6, Z2, Z20; \
	VPMADD52LUQ Z7, Z2, Z21; \
	VPMADD52HUQ Z7, Z2, Z22; \
	VPMADD52LUQ Z3, Z2, Z23; \
	VPMADD52HUQ Z3, Z2, Z24; \
	VPSLLQ $8, Z20, Z20; \
	VPADDQ Z20, Z21, Z21; \
	VPSLLQ $8, Z22, Z22; \
	VPADDQ Z22, Z23, Z23; \
	VPSLLQ $10, Z24, Z25; \
	VPSLLQ $12, Z24, Z24; \
	VPADDQ Z25, Z19, Z19; \
	VPADDQ Z24, Z19, Z19; \
	VPSRLQ $44, Z19, Z25; \
	VPANDQ MASK44, Z19, Z0; \
	VPADDQ Z25, Z21, Z21; \
	VPSRLQ $44, Z21, Z25; \
	VPANDQ MASK44, Z21, Z1; \
	VPADDQ Z25, Z23, Z23; \
	VPSRLQ $42, Z23, Z25; \
	VPANDQ MASK42, Z23, Z2; \
	VPSLLQ $2, Z25, Z26; \
	VPADDQ Z25, Z0, Z0; \
	VPADDQ Z26, Z0, Z0; \
	VPSRLQ $44, Z0, Z25; \
	VPANDQ MASK44, Z0, Z0; \
	VPADDQ Z25, Z1, Z1

// func polyGroupsIFMA(h *[24]uint64, msg *byte, groups int, pw *polyPowers)
TEXT ·polyGroupsIFMA(SB), NOSPLIT, $0-32
	MOVQ h+0(FP), DI
	MOVQ msg+8(FP), SI
	MOVQ groups+16(FP), CX
	MOVQ pw+24(FP), AX

	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
	VPXORQ Z2, Z2, Z2
	VPBROADCASTQ 0(AX), Z3
	VPBROADCASTQ 8(AX), Z4
	VPBROADCASTQ 16(AX), Z5
	VPBROADCASTQ 24(AX), Z6
	VPBROADCASTQ 32(AX), Z7
	MOVQ $0xfffffffffff, BX
	VPBROADCASTQ BX, MASK44
	MOVQ $0x3ffffffffff, BX
	VPBROADCASTQ BX, MASK42
	MOVQ $0x10000000000, BX
	VPBROADCASTQ BX, HIBIT

	DECQ CX
	JZ   last

loop:
	LOADADD
	MULR
	ADDQ $128, SI
	DECQ CX
	JNZ  loop

last:
	LOADADD
	VMOVDQU64 40(AX), Z3
	VMOVDQU64 104(AX), Z4
	VMOVDQU64 168(AX), Z5
	VMOVDQU64 232(AX), Z6
	VMOVDQU64 296(AX), Z7
	MULR
	VMOVDQU64 Z0, 0(DI)
	VMOVDQU64 Z1, 64(DI)
	VMOVDQU64 Z2, 128(DI)
	VZEROUPPER
	RET
