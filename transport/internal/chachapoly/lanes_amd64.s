//go:build amd64 && !purego

#include "textflag.h"

// Constants of chacha_amd64.s, which keeps a 32-bit block counter in dword 0 of
// each 128-bit lane of a ZMM register. transport/internal/gcmvaes
// (gcm_vaes_amd64.s) keeps an identical copy: an assembly symbol belongs to
// one package.

// laneIndex is i in dword 0 of lane i: added to a broadcast counter, it
// gives the four lanes consecutive counters.
DATA ·laneIndex+0(SB)/8, $0
DATA ·laneIndex+8(SB)/8, $0
DATA ·laneIndex+16(SB)/8, $1
DATA ·laneIndex+24(SB)/8, $0
DATA ·laneIndex+32(SB)/8, $2
DATA ·laneIndex+40(SB)/8, $0
DATA ·laneIndex+48(SB)/8, $3
DATA ·laneIndex+56(SB)/8, $0
GLOBL ·laneIndex(SB), RODATA|NOPTR, $64

// laneFour is 4 in dword 0, for VBROADCASTI32X4: the step from one
// register of four counters to the next.
DATA ·laneFour+0(SB)/8, $4
DATA ·laneFour+8(SB)/8, $0
GLOBL ·laneFour(SB), RODATA|NOPTR, $16
