// Command gemm writes the amd64 GEMM micro-kernels of package simd with
// avo (gemm_amd64.s and its Go declarations, gemm_amd64.go).
//
// The asmgen module is its own so that avo stays out of razor's go.mod:
// razor's build uses only the committed output. Regenerate after editing
// this file with `go generate ./models/ops/internal/simd` from the
// repository root.
//
// Every kernel has the same contract. a points at a packed panel of op(A)
// (alpha already applied): k steps of mr consecutive values, one per row.
// b points at a packed panel of op(B): k steps of nr consecutive values,
// one per column. The kernel adds the mr×nr product of the two panels to the
// tile of C at c whose rows are ldc floats apart (its Set variant
// overwrites the tile instead, without reading it); it never touches
// anything past the tile, so callers give edge tiles a scratch tile of
// their own.
//
// The Strided variants read op(B) where it lies instead of from a packed
// panel: step p's nr values at b + p·ldb floats, for a B whose rows are
// already contiguous (a 1x1 convolution's input), where packing would copy
// every value to multiply it by only mr·(m/mr) rows.
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"

	"github.com/razorgo/razor/models/ops/internal/asmgen/internal/avx"
)

func main() {
	ConstraintExpr("!purego")
	for _, strided := range []bool{false, true} {
		for _, set := range []bool{false, true} {
			kernel(avx2Tile(), set, strided)
			kernel(avx512Tile(), set, strided)
		}
	}
	packT(8)
	packT(4)
	Generate()
}

// kernelArgs loads the five arguments every kernel takes, with ldc turned
// into a byte stride.
func kernelArgs() (k, a, b, c, ldc reg.Register) {
	k = Load(Param("k"), GP64())
	a = Load(Param("a"), GP64())
	b = Load(Param("b"), GP64())
	c = Load(Param("c"), GP64())
	ldc = Load(Param("ldc"), GP64())
	SHLQ(Imm(2), ldc)
	return
}

// tile describes one micro-kernel: an mr×nr tile of C held in 2·mr vector
// accumulators (two vectors a row), the shared dimension unrolled twice.
type tile struct {
	base, label, needs string
	mr, nr             int
	vecBytes           int
	vec                func() reg.VecVirtual
	zero               func(v reg.VecVirtual)
	// fmas emits acc[0] += a·b0 and acc[1] += a·b1 for the A value at m.
	fmas func(m Mem, b0, b1 reg.VecVirtual, acc [2]reg.VecVirtual)
}

// avx2Tile is 6×16: twelve YMM accumulators, two YMM for the B step and
// one for the broadcast A value, fifteen of the sixteen registers.
func avx2Tile() tile {
	var x reg.VecVirtual // allocated at the first step, after B's registers
	return tile{
		base: "Sgemm6x16AVX2", label: "avx2", needs: "AVX2 and FMA",
		mr: 6, nr: 16, vecBytes: 32,
		vec:  func() reg.VecVirtual { return YMM() },
		zero: func(v reg.VecVirtual) { VXORPS(v, v, v) },
		fmas: func(m Mem, b0, b1 reg.VecVirtual, acc [2]reg.VecVirtual) {
			if x == nil {
				x = YMM()
			}
			VBROADCASTSS(m, x)
			VFMADD231PS(b0, x, acc[0])
			VFMADD231PS(b1, x, acc[1])
		},
	}
}

// avx512Tile is 12×32: twenty-four ZMM accumulators and two ZMM for the B
// step; each A value is broadcast straight from memory into its
// multiply-add.
func avx512Tile() tile {
	return tile{
		base: "Sgemm12x32AVX512", label: "avx512", needs: "AVX-512F",
		mr: 12, nr: 32, vecBytes: 64,
		vec:  func() reg.VecVirtual { return ZMM() },
		zero: func(v reg.VecVirtual) { VPXORD(v, v, v) },
		fmas: func(m Mem, b0, b1 reg.VecVirtual, acc [2]reg.VecVirtual) {
			VFMADD231PS_BCST(m, b0, acc[0])
			VFMADD231PS_BCST(m, b1, acc[1])
		},
	}
}

// kernel writes t's adding variant, or with set its overwriting one; with
// strided, the variant that reads B unpacked, rows ldb floats apart.
func kernel(t tile, set, strided bool) {
	mr, nr := t.mr, t.nr
	base := t.base
	if strided {
		base += "Strided"
	}
	name, verb := kernelName(base, set)
	var ldb reg.Register
	if strided {
		TEXT(name, NOSPLIT, "func(k int, a, b *float32, ldb int, c *float32, ldc int)")
		Doc(fmt.Sprintf("%s %s the product of a %d-row packed A panel and %d", name, verb, mr, nr),
			fmt.Sprintf("columns of B, k rows ldb floats apart, %s the %d×%d tile of C at c.", to(set), mr, nr),
			"It needs "+t.needs+".")
	} else {
		TEXT(name, NOSPLIT, "func(k int, a, b, c *float32, ldc int)")
		Doc(fmt.Sprintf("%s %s the product of a %d-row packed A panel and a", name, verb, mr),
			fmt.Sprintf("%d-column packed B panel, k steps deep, %s the %d×%d tile of C at c.", nr, to(set), mr, nr),
			"It needs "+t.needs+".")
	}
	k, a, b, c, ldc := kernelArgs()
	if strided {
		ldb = Load(Param("ldb"), GP64())
		SHLQ(Imm(2), ldb)
	}

	acc := make([][2]reg.VecVirtual, mr)
	for r := range acc {
		for h := range acc[r] {
			acc[r][h] = t.vec()
			t.zero(acc[r][h])
		}
	}
	b0, b1 := t.vec(), t.vec()

	step := func(off int) {
		row := Mem{Base: b, Disp: 4 * nr * off}
		if strided && off == 1 {
			row = Mem{Base: b, Index: ldb, Scale: 1}
		} else if strided {
			row = Mem{Base: b}
		}
		VMOVUPS(row, b0)
		VMOVUPS(row.Offset(t.vecBytes), b1)
		for r := 0; r < mr; r++ {
			t.fmas(Mem{Base: a, Disp: 4 * (mr*off + r)}, b0, b1, acc[r])
		}
	}

	Label(t.label + "pairs")
	CMPQ(k, Imm(2))
	JL(LabelRef(t.label + "tail"))
	step(0)
	step(1)
	ADDQ(U32(4*mr*2), a)
	if strided {
		LEAQ(Mem{Base: b, Index: ldb, Scale: 2}, b)
	} else {
		ADDQ(U32(4*nr*2), b)
	}
	SUBQ(Imm(2), k)
	JMP(LabelRef(t.label + "pairs"))

	Label(t.label + "tail")
	TESTQ(k, k)
	JE(LabelRef(t.label + "store"))
	step(0)

	Label(t.label + "store")
	for r := 0; r < mr; r++ {
		for h := 0; h < 2; h++ {
			if !set {
				VADDPS(Mem{Base: c, Disp: t.vecBytes * h}, acc[r][h], acc[r][h])
			}
			VMOVUPS(acc[r][h], Mem{Base: c, Disp: t.vecBytes * h})
		}
		if r < mr-1 {
			ADDQ(ldc, c)
		}
	}
	VZEROUPPER()
	RET()
}

// kernelName names a kernel's adding or overwriting (Set) variant.
func kernelName(base string, set bool) (name, verb string) {
	if set {
		return base + "Set", "writes"
	}
	return base, "adds"
}

func to(set bool) string {
	if set {
		return "into"
	}
	return "to"
}

// packT writes the transpose of a rows×k block (rows = 8 or 4) into a
// packed panel: for each step p the block's rows' values at p go to rows
// consecutive floats of the panel, stride bytes after those of p-1. It is
// how packing reads A (rows of A are the panel's rows) and a transposed B
// (rows of the stored B are the panel's columns) a vector at a time.
func packT(rows int) {
	name := fmt.Sprintf("PackT%d", rows)
	TEXT(name, NOSPLIT, "func(src *float32, ld, k int, dst *float32, stride int)")
	Doc(fmt.Sprintf("%s transposes %d rows of k floats, ld bytes apart from src on, into", name, rows),
		fmt.Sprintf("dst: the %d values at step p go to dst + p·stride (bytes). k is a", rows),
		fmt.Sprintf("multiple of %d. It needs AVX.", rows))
	src, ld, k := Load(Param("src"), GP64()), Load(Param("ld"), GP64()), Load(Param("k"), GP64())
	dst, stride := Load(Param("dst"), GP64()), Load(Param("stride"), GP64())
	label := fmt.Sprintf("pt%d", rows)
	Label(label + "loop")
	CMPQ(k, Imm(uint64(rows)))
	JL(LabelRef(label + "done"))
	r := make([]reg.VecVirtual, rows)
	p := GP64()
	MOVQ(src, p)
	for l := range r {
		if rows == 8 {
			r[l] = YMM()
		} else {
			r[l] = XMM()
		}
		VMOVUPS(Mem{Base: p}, r[l])
		if l < rows-1 {
			ADDQ(ld, p)
		}
	}
	if rows == 8 {
		avx.Transpose8(r)
	} else {
		avx.Transpose4(r)
	}
	for j := range r {
		VMOVUPS(r[j], Mem{Base: dst})
		ADDQ(stride, dst)
	}
	ADDQ(Imm(uint64(4*rows)), src)
	SUBQ(Imm(uint64(rows)), k)
	JMP(LabelRef(label + "loop"))
	Label(label + "done")
	VZEROUPPER()
	RET()
}
