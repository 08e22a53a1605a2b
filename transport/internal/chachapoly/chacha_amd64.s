//go:build amd64 && !purego

#include "textflag.h"

// ChaCha20 keystream XOR with AVX-512, 16 blocks (1024 bytes) per loop.
//
// Layout: each ZMM register holds one row (four words) of the state for
// four blocks, one block per 128-bit lane. Four such sets (Z0-Z3,
// Z4-Z7, Z8-Z11, Z12-Z15) make sixteen blocks. Rows are a = words 0-3,
// b = 4-7, c = 8-11, d = 12-15. The diagonal round rotates the words of
// b, c and d within each lane so that the column operations work on the
// diagonals, then rotates them back.
//
// Z16-Z18: rows a, b, c of the input state (the same for every block).
// Z19-Z22: row d of the input state for each set (counters differ).
// Z23:     the counter step per loop, 16 in word 0 of every lane.
// Z24-Z27: scratch for the 4x4 transpose of 128-bit lanes.

#define ROUND_STEP(a, b, c, d, r1, r2) \
	VPADDD b, a, a; \
	VPXORD a, d, d; \
	VPROLD $r1, d, d; \
	VPADDD d, c, c; \
	VPXORD c, b, b; \
	VPROLD $r2, b, b

#define QUARTER4 \
	ROUND_STEP(Z0, Z1, Z2, Z3, 16, 12); \
	ROUND_STEP(Z4, Z5, Z6, Z7, 16, 12); \
	ROUND_STEP(Z8, Z9, Z10, Z11, 16, 12); \
	ROUND_STEP(Z12, Z13, Z14, Z15, 16, 12); \
	ROUND_STEP(Z0, Z1, Z2, Z3, 8, 7); \
	ROUND_STEP(Z4, Z5, Z6, Z7, 8, 7); \
	ROUND_STEP(Z8, Z9, Z10, Z11, 8, 7); \
	ROUND_STEP(Z12, Z13, Z14, Z15, 8, 7)

// SHUFFLE rotates the words of b left by ib, c by ic, d by id (as VPSHUFD
// immediates) in every set.
#define SHUFFLE(ib, ic, id) \
	VPSHUFD $ib, Z1, Z1; \
	VPSHUFD $ic, Z2, Z2; \
	VPSHUFD $id, Z3, Z3; \
	VPSHUFD $ib, Z5, Z5; \
	VPSHUFD $ic, Z6, Z6; \
	VPSHUFD $id, Z7, Z7; \
	VPSHUFD $ib, Z9, Z9; \
	VPSHUFD $ic, Z10, Z10; \
	VPSHUFD $id, Z11, Z11; \
	VPSHUFD $ib, Z13, Z13; \
	VPSHUFD $ic, Z14, Z14; \
	VPSHUFD $id, Z15, Z15

// FINISH adds the input state to one set, turns its rows into four
// whole blocks, XORs them with 256 bytes of src at off and stores them
// to dst at off.
#define FINISH(a, b, c, d, din, off) \
	VPADDD Z16, a, a; \
	VPADDD Z17, b, b; \
	VPADDD Z18, c, c; \
	VPADDD din, d, d; \
	VSHUFI32X4 $0x44, b, a, Z24; \
	VSHUFI32X4 $0xee, b, a, Z25; \
	VSHUFI32X4 $0x44, d, c, Z26; \
	VSHUFI32X4 $0xee, d, c, Z27; \
	VSHUFI32X4 $0x88, Z26, Z24, a; \
	VSHUFI32X4 $0xdd, Z26, Z24, b; \
	VSHUFI32X4 $0x88, Z27, Z25, c; \
	VSHUFI32X4 $0xdd, Z27, Z25, d; \
	VPXORD (off+0)(SI), a, a; \
	VPXORD (off+64)(SI), b, b; \
	VPXORD (off+128)(SI), c, c; \
	VPXORD (off+192)(SI), d, d; \
	VMOVDQU32 a, (off+0)(DI); \
	VMOVDQU32 b, (off+64)(DI); \
	VMOVDQU32 c, (off+128)(DI); \
	VMOVDQU32 d, (off+192)(DI)

// func chachaXORAVX512(state *[16]uint32, dst, src *byte, chunks int)
TEXT ·chachaXORAVX512(SB), NOSPLIT, $0-32
	MOVQ state+0(FP), AX
	MOVQ dst+8(FP), DI
	MOVQ src+16(FP), SI
	MOVQ chunks+24(FP), CX

	VBROADCASTI32X4 0(AX), Z16
	VBROADCASTI32X4 16(AX), Z17
	VBROADCASTI32X4 32(AX), Z18
	VBROADCASTI32X4 48(AX), Z19
	VPADDD ·laneIndex(SB), Z19, Z19
	VBROADCASTI32X4 ·laneFour(SB), Z23
	VPADDD Z23, Z19, Z20
	VPADDD Z23, Z20, Z21
	VPADDD Z23, Z21, Z22
	VPSLLD $2, Z23, Z23

loop:
	VMOVDQA64 Z16, Z0
	VMOVDQA64 Z17, Z1
	VMOVDQA64 Z18, Z2
	VMOVDQA64 Z19, Z3
	VMOVDQA64 Z16, Z4
	VMOVDQA64 Z17, Z5
	VMOVDQA64 Z18, Z6
	VMOVDQA64 Z20, Z7
	VMOVDQA64 Z16, Z8
	VMOVDQA64 Z17, Z9
	VMOVDQA64 Z18, Z10
	VMOVDQA64 Z21, Z11
	VMOVDQA64 Z16, Z12
	VMOVDQA64 Z17, Z13
	VMOVDQA64 Z18, Z14
	VMOVDQA64 Z22, Z15
	MOVQ $10, DX

rounds:
	QUARTER4
	SHUFFLE(0x39, 0x4e, 0x93)
	QUARTER4
	SHUFFLE(0x93, 0x4e, 0x39)
	DECQ DX
	JNZ  rounds

	FINISH(Z0, Z1, Z2, Z3, Z19, 0)
	FINISH(Z4, Z5, Z6, Z7, Z20, 256)
	FINISH(Z8, Z9, Z10, Z11, Z21, 512)
	FINISH(Z12, Z13, Z14, Z15, Z22, 768)

	VPADDD Z23, Z19, Z19
	VPADDD Z23, Z20, Z20
	VPADDD Z23, Z21, Z21
	VPADDD Z23, Z22, Z22
	ADDQ   $1024, SI
	ADDQ   $1024, DI
	DECQ   CX
	JNZ    loop

	VZEROUPPER
	RET
