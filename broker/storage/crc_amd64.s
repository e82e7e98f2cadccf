#include "textflag.h"

// Fold constants for CRC-32C (Castagnoli), reflected, per 128-bit lane: {x^(d+32), x^(d-32)}
// mod P, bit-reflected and shifted left by one, for a fold distance of d bits (the
// layout of the standard library's IEEE constants; crc_amd64_test.go derives them).
DATA k2048<>+0(SB)/8, $0xdcb17aa4
DATA k2048<>+8(SB)/8, $0xb9e02b86
DATA k2048<>+16(SB)/8, $0xdcb17aa4
DATA k2048<>+24(SB)/8, $0xb9e02b86
DATA k2048<>+32(SB)/8, $0xdcb17aa4
DATA k2048<>+40(SB)/8, $0xb9e02b86
DATA k2048<>+48(SB)/8, $0xdcb17aa4
DATA k2048<>+56(SB)/8, $0xb9e02b86
GLOBL k2048<>(SB), RODATA, $64

DATA k512<>+0(SB)/8, $0x740eef02
DATA k512<>+8(SB)/8, $0x9e4addf8
DATA k512<>+16(SB)/8, $0x740eef02
DATA k512<>+24(SB)/8, $0x9e4addf8
DATA k512<>+32(SB)/8, $0x740eef02
DATA k512<>+40(SB)/8, $0x9e4addf8
DATA k512<>+48(SB)/8, $0x740eef02
DATA k512<>+56(SB)/8, $0x9e4addf8
GLOBL k512<>(SB), RODATA, $64

DATA k128<>+0(SB)/8, $0xf20c0dfe
DATA k128<>+8(SB)/8, $0x14cd00bd6
GLOBL k128<>(SB), RODATA, $16

// func castagnoliFold(crc uint32, p []byte, out *[16]byte)
// crc is the raw register (not inverted), XORed into p's first four bytes; len(p) is a
// multiple of 64 and at least 256. out receives a 128-bit remainder R such that the raw
// CRC of p from crc equals the raw CRC of R from 0.
TEXT ·castagnoliFold(SB), NOSPLIT, $0-40
	MOVL crc+0(FP), AX
	MOVQ p_base+8(FP), SI
	MOVQ p_len+16(FP), CX
	MOVQ out+32(FP), DI

	VPXORQ    Z10, Z10, Z10
	VMOVD     AX, X10
	VMOVDQU64 0(SI), Z1
	VMOVDQU64 64(SI), Z2
	VMOVDQU64 128(SI), Z3
	VMOVDQU64 192(SI), Z4
	VPXORQ    Z10, Z1, Z1
	ADDQ      $256, SI
	SUBQ      $256, CX

	VMOVDQU64 k2048<>+0(SB), Z0

loop256:
	CMPQ CX, $256
	JL   fold4
	VMOVDQU64  0(SI), Z11
	VMOVDQU64  64(SI), Z12
	VMOVDQU64  128(SI), Z13
	VMOVDQU64  192(SI), Z14
	VPCLMULQDQ $0x11, Z0, Z1, Z5
	VPCLMULQDQ $0x11, Z0, Z2, Z6
	VPCLMULQDQ $0x11, Z0, Z3, Z7
	VPCLMULQDQ $0x11, Z0, Z4, Z8
	VPCLMULQDQ $0x00, Z0, Z1, Z1
	VPCLMULQDQ $0x00, Z0, Z2, Z2
	VPCLMULQDQ $0x00, Z0, Z3, Z3
	VPCLMULQDQ $0x00, Z0, Z4, Z4
	VPTERNLOGD $0x96, Z11, Z5, Z1
	VPTERNLOGD $0x96, Z12, Z6, Z2
	VPTERNLOGD $0x96, Z13, Z7, Z3
	VPTERNLOGD $0x96, Z14, Z8, Z4
	ADDQ       $256, SI
	SUBQ       $256, CX
	JMP        loop256

fold4:
	// Z1..Z4 are four consecutive 64-byte blocks: fold each into the next.
	VMOVDQU64  k512<>+0(SB), Z0
	VPCLMULQDQ $0x11, Z0, Z1, Z5
	VPCLMULQDQ $0x00, Z0, Z1, Z1
	VPTERNLOGD $0x96, Z2, Z5, Z1
	VPCLMULQDQ $0x11, Z0, Z1, Z5
	VPCLMULQDQ $0x00, Z0, Z1, Z1
	VPTERNLOGD $0x96, Z3, Z5, Z1
	VPCLMULQDQ $0x11, Z0, Z1, Z5
	VPCLMULQDQ $0x00, Z0, Z1, Z1
	VPTERNLOGD $0x96, Z4, Z5, Z1

loop64:
	CMPQ       CX, $64
	JL         lanes
	VMOVDQU64  0(SI), Z11
	VPCLMULQDQ $0x11, Z0, Z1, Z5
	VPCLMULQDQ $0x00, Z0, Z1, Z1
	VPTERNLOGD $0x96, Z11, Z5, Z1
	ADDQ       $64, SI
	SUBQ       $64, CX
	JMP        loop64

lanes:
	// Fold the four 128-bit lanes of Z1 into X1.
	VEXTRACTF32X4 $1, Z1, X2
	VEXTRACTF32X4 $2, Z1, X3
	VEXTRACTF32X4 $3, Z1, X4
	VMOVDQU64     k128<>+0(SB), X0
	VPCLMULQDQ    $0x11, X0, X1, X5
	VPCLMULQDQ    $0x00, X0, X1, X1
	VPTERNLOGD    $0x96, X2, X5, X1
	VPCLMULQDQ    $0x11, X0, X1, X5
	VPCLMULQDQ    $0x00, X0, X1, X1
	VPTERNLOGD    $0x96, X3, X5, X1
	VPCLMULQDQ    $0x11, X0, X1, X5
	VPCLMULQDQ    $0x00, X0, X1, X1
	VPTERNLOGD    $0x96, X4, X5, X1
	VMOVDQU64     X1, 0(DI)
	VZEROUPPER
	RET
