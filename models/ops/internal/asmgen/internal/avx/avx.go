// Package avx holds instruction sequences the generators share.
package avx

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// Transpose8 turns eight YMM vectors of eight floats (r[l][j]) into their
// transpose in place: afterwards r[j][l] holds what r[l][j] held.
func Transpose8(r []reg.VecVirtual) {
	var t [8]reg.VecVirtual
	for i := 0; i < 8; i += 2 {
		t[i], t[i+1] = YMM(), YMM()
		VUNPCKLPS(r[i+1], r[i], t[i])
		VUNPCKHPS(r[i+1], r[i], t[i+1])
	}
	// t0 holds lanes 0,1 (and 4,5) of r0 and r1 interleaved, t1 lanes 2,3
	// (6,7); the same for t2,t3 of r2/r3, t4,t5 of r4/r5 and t6,t7 of r6/r7.
	var s [8]reg.VecVirtual
	for _, q := range [][2]int{{0, 2}, {4, 6}} {
		a, b := q[0], q[1]
		s[a], s[a+1], s[a+2], s[a+3] = YMM(), YMM(), YMM(), YMM()
		VSHUFPS(Imm(0x44), t[b], t[a], s[a])
		VSHUFPS(Imm(0xEE), t[b], t[a], s[a+1])
		VSHUFPS(Imm(0x44), t[b+1], t[a+1], s[a+2])
		VSHUFPS(Imm(0xEE), t[b+1], t[a+1], s[a+3])
	}
	for j := 0; j < 4; j++ {
		VPERM2F128(Imm(0x20), s[j+4], s[j], r[j])
		VPERM2F128(Imm(0x31), s[j+4], s[j], r[j+4])
	}
}

// Transpose4 turns four XMM vectors of four floats into their transpose
// in place.
func Transpose4(r []reg.VecVirtual) {
	t0, t1, t2, t3 := XMM(), XMM(), XMM(), XMM()
	VUNPCKLPS(r[1], r[0], t0) // r0[0] r1[0] r0[1] r1[1]
	VUNPCKHPS(r[1], r[0], t1) // r0[2] r1[2] r0[3] r1[3]
	VUNPCKLPS(r[3], r[2], t2) // r2[0] r3[0] r2[1] r3[1]
	VUNPCKHPS(r[3], r[2], t3) // r2[2] r3[2] r2[3] r3[3]
	VMOVLHPS(t2, t0, r[0])
	VMOVHLPS(t0, t2, r[1])
	VMOVLHPS(t3, t1, r[2])
	VMOVHLPS(t1, t3, r[3])
}
