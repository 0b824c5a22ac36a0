// Command depthwise writes the amd64 depthwise-convolution kernels of
// package simd with avo (depthwise_amd64.s and its Go declarations,
// depthwise_amd64.go). Regenerate after editing this file with
// `go generate ./models/ops/internal/simd` from the repository root.
//
// The kernels work on blocks of eight channels interleaved per pixel
// ([rows][cols][8] floats, see depthwise_asm.go): one YMM register is one
// pixel's eight channels, so every filter tap is one 8-wide multiply-add
// whatever the plane's size. Pixel and tap positions come as byte offsets
// into a block, looked up rather than computed.
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
	forward(lanes8)
	forward(lanes16)
	scatter()
	weightTap()
	pack()
	unpack()
	Generate()
}

// width is one forward kernel's vector: eight channels in a YMM register
// (AVX2), or sixteen in a ZMM one (AVX-512, twice the multiply-adds an
// instruction on blocks of sixteen interleaved channels).
type width struct {
	name, needs string
	lanes       int
	vec         func() reg.VecVirtual
	zero        func(v reg.VecVirtual)
}

var (
	lanes8 = width{name: "DWForward8", needs: "AVX2 and FMA", lanes: 8,
		vec: func() reg.VecVirtual { return YMM() }, zero: func(v reg.VecVirtual) { VXORPS(v, v, v) }}
	lanes16 = width{name: "DWForward16AVX512", needs: "AVX-512F", lanes: 16,
		vec: func() reg.VecVirtual { return ZMM() }, zero: func(v reg.VecVirtual) { VPXORD(v, v, v) }}
)

// forward correlates eight output pixels at a time with every tap: eight
// independent multiply-add chains hide the FMA latency, and every filter
// tap loaded feeds eight pixels.
func forward(wd width) {
	vb := 4 * wd.lanes // bytes of one pixel's channels
	TEXT(wd.name, NOSPLIT, "func(in *float32, base *int, groups int, wb *float32, taps *int, ntaps int, out *float32)")
	Doc(fmt.Sprintf("%s computes groups×8 output pixels: pixel i is the sum over", wd.name),
		"taps t of wb[t] times the block's pixel at in + base[i] + taps[t]",
		fmt.Sprintf("(byte offsets), %d channels wide, written to out[i]. ntaps >= 1.", wd.lanes),
		"It needs "+wd.needs+".")
	// The state between groups stays in the argument slots so the tap
	// loop has twelve general registers to itself.
	baseArg, _ := Param("base").Resolve()
	groupsArg, _ := Param("groups").Resolve()
	outArg, _ := Param("out").Resolve()
	label := func(l string) string { return fmt.Sprintf("dw%d%s", wd.lanes, l) }

	Label(label("group"))
	CMPQ(groupsArg.Addr, Imm(0))
	JE(LabelRef(label("done")))
	in := Load(Param("in"), GP64())
	base := Load(Param("base"), GP64())
	var p [8]reg.GPVirtual
	for j := range p {
		p[j] = GP64()
		MOVQ(Mem{Base: base, Disp: 8 * j}, p[j])
		ADDQ(in, p[j])
	}
	var acc [8]reg.VecVirtual
	for j := range acc {
		acc[j] = wd.vec()
		wd.zero(acc[j])
	}
	wp := Load(Param("wb"), GP64())
	tp := Load(Param("taps"), GP64())
	t := Load(Param("ntaps"), GP64())
	off, q := GP64(), wd.vec()

	Label(label("tap"))
	MOVQ(Mem{Base: tp}, off)
	VMOVUPS(Mem{Base: wp}, q)
	for j := range p {
		VFMADD231PS(Mem{Base: p[j], Index: off, Scale: 1}, q, acc[j])
	}
	ADDQ(Imm(uint64(vb)), wp)
	ADDQ(Imm(8), tp)
	DECQ(t)
	JNZ(LabelRef(label("tap")))

	out := Load(Param("out"), GP64())
	for j := range acc {
		VMOVUPS(acc[j], Mem{Base: out, Disp: vb * j})
	}
	ADDQ(U32(uint64(8*vb)), outArg.Addr)
	ADDQ(Imm(8*8), baseArg.Addr)
	DECQ(groupsArg.Addr)
	JMP(LabelRef(label("group")))

	Label(label("done"))
	VZEROUPPER()
	RET()
}

// scatter is the adjoint of forward for one tap: every output gradient,
// times the tap's eight weights, is added onto the input-gradient pixel
// under it. Within one tap no two pixels meet, so the updates are
// independent.
func scatter() {
	TEXT("DWScatter", NOSPLIT, "func(dst *float32, base *int, pixels int, q *float32, grad *float32)")
	Doc("DWScatter adds q times grad[i] to the eight floats at dst + base[i]",
		"(a byte offset) for each of pixels pixels; grad holds eight floats a",
		"pixel. It needs AVX2 and FMA.")
	dst := Load(Param("dst"), GP64())
	base := Load(Param("base"), GP64())
	n := Load(Param("pixels"), GP64())
	qp := Load(Param("q"), GP64())
	g := Load(Param("grad"), GP64())
	q, v := YMM(), YMM()
	VMOVUPS(Mem{Base: qp}, q)
	off := GP64()

	Label("scloop")
	TESTQ(n, n)
	JE(LabelRef("scdone"))
	MOVQ(Mem{Base: base}, off)
	VMOVUPS(Mem{Base: dst, Index: off, Scale: 1}, v)
	VFMADD231PS(Mem{Base: g}, q, v)
	VMOVUPS(v, Mem{Base: dst, Index: off, Scale: 1})
	ADDQ(Imm(8), base)
	ADDQ(Imm(32), g)
	DECQ(n)
	JMP(LabelRef("scloop"))

	Label("scdone")
	VZEROUPPER()
	RET()
}

// weightTap is one tap's weight gradient over one image: a dot product of
// the output gradient with the input pixels under the tap, over four
// partial sums (pixel i goes to sum i mod 4), added together as
// (s0+s1)+(s2+s3) onto acc.
func weightTap() {
	TEXT("DWWeightTap", NOSPLIT, "func(in *float32, base *int, pixels int, grad *float32, acc *float32)")
	Doc("DWWeightTap adds the sum over pixels i of grad[i] times the eight floats",
		"at in + base[i] (a byte offset) to acc[0:8]. It needs AVX2 and FMA.")
	in := Load(Param("in"), GP64())
	base := Load(Param("base"), GP64())
	n := Load(Param("pixels"), GP64())
	g := Load(Param("grad"), GP64())
	var s [4]reg.VecVirtual
	for i := range s {
		s[i] = YMM()
		VXORPS(s[i], s[i], s[i])
	}
	off := GP64()

	Label("wtquads")
	CMPQ(n, Imm(4))
	JL(LabelRef("wttail"))
	for i := range s {
		MOVQ(Mem{Base: base, Disp: 8 * i}, off)
		v := YMM()
		VMOVUPS(Mem{Base: g, Disp: 32 * i}, v)
		VFMADD231PS(Mem{Base: in, Index: off, Scale: 1}, v, s[i])
	}
	ADDQ(Imm(32), base)
	ADDQ(U32(128), g)
	SUBQ(Imm(4), n)
	JMP(LabelRef("wtquads"))

	Label("wttail")
	TESTQ(n, n)
	JE(LabelRef("wtsum"))
	MOVQ(Mem{Base: base}, off)
	v := YMM()
	VMOVUPS(Mem{Base: g}, v)
	VFMADD231PS(Mem{Base: in, Index: off, Scale: 1}, v, s[0])
	ADDQ(Imm(8), base)
	ADDQ(Imm(32), g)
	DECQ(n)
	JMP(LabelRef("wttail"))

	Label("wtsum")
	VADDPS(s[1], s[0], s[0])
	VADDPS(s[3], s[2], s[2])
	VADDPS(s[2], s[0], s[0])
	acc := Load(Param("acc"), GP64())
	VADDPS(Mem{Base: acc}, s[0], s[0])
	VMOVUPS(s[0], Mem{Base: acc})
	VZEROUPPER()
	RET()
}

// pack interleaves eight channel planes into a block, eight pixels at a
// time: eight loads of one channel's eight pixels, a transpose, eight
// stores of one pixel's eight channels each.
func pack() {
	TEXT("DWPack8", NOSPLIT, "func(src *float32, plane int, at *int, groups int, dst *float32)")
	Doc("DWPack8 interleaves 8 channel planes, plane bytes apart from src on,",
		"for groups×8 pixels: pixel p's eight channels go to the eight floats",
		"at dst + at[p] (counted in floats). It needs AVX2.")
	src, plane, at := Load(Param("src"), GP64()), Load(Param("plane"), GP64()), Load(Param("at"), GP64())
	n, dst := Load(Param("groups"), GP64()), Load(Param("dst"), GP64())
	Label("pkloop")
	TESTQ(n, n)
	JE(LabelRef("pkdone"))
	r := make([]reg.VecVirtual, 8)
	p := GP64()
	MOVQ(src, p)
	for l := range r {
		r[l] = YMM()
		VMOVUPS(Mem{Base: p}, r[l])
		if l < 7 {
			ADDQ(plane, p)
		}
	}
	avx.Transpose8(r)
	off := GP64()
	for j := range r {
		MOVQ(Mem{Base: at, Disp: 8 * j}, off)
		VMOVUPS(r[j], Mem{Base: dst, Index: off, Scale: 4})
	}
	ADDQ(Imm(32), src)
	ADDQ(Imm(64), at)
	DECQ(n)
	JMP(LabelRef("pkloop"))
	Label("pkdone")
	VZEROUPPER()
	RET()
}

// unpack is pack's inverse: eight pixels' channel vectors in, a transpose,
// eight channels' pixel runs out.
func unpack() {
	TEXT("DWUnpack8", NOSPLIT, "func(src *float32, at *int, groups int, dst *float32, plane int)")
	Doc("DWUnpack8 is DWPack8's inverse: the eight floats at src + at[p]",
		"(counted in floats) go to pixel p of 8 channel planes, plane bytes",
		"apart from dst on, for groups×8 pixels. It needs AVX2.")
	src, at, n := Load(Param("src"), GP64()), Load(Param("at"), GP64()), Load(Param("groups"), GP64())
	dst, plane := Load(Param("dst"), GP64()), Load(Param("plane"), GP64())
	Label("upkloop")
	TESTQ(n, n)
	JE(LabelRef("upkdone"))
	r := make([]reg.VecVirtual, 8)
	off := GP64()
	for j := range r {
		r[j] = YMM()
		MOVQ(Mem{Base: at, Disp: 8 * j}, off)
		VMOVUPS(Mem{Base: src, Index: off, Scale: 4}, r[j])
	}
	avx.Transpose8(r)
	p := GP64()
	MOVQ(dst, p)
	for l := range r {
		VMOVUPS(r[l], Mem{Base: p})
		if l < 7 {
			ADDQ(plane, p)
		}
	}
	ADDQ(Imm(64), at)
	ADDQ(Imm(32), dst)
	DECQ(n)
	JMP(LabelRef("upkloop"))
	Label("upkdone")
	VZEROUPPER()
	RET()
}
