// Command batchnorm writes the amd64 batch-norm kernels of package simd
// with avo (batchnorm_amd64.s and its Go declarations, batchnorm_amd64.go).
// Regenerate after editing this file with
// `go generate ./models/ops/internal/simd` from the repository root.
//
// Each kernel is one eight-wide loop over a run of values; the caller
// (models/ops/batchnorm_asm.go) walks planes and images and finishes the
// few values past the last whole vector. Where a kernel takes a ReLU's
// output y, the gradient is masked as PyTorch's threshold_backward does:
// kept where y is positive or NaN, zero where y <= 0.
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

func main() {
	ConstraintExpr("!purego")
	shiftedSums()
	gradSums(false)
	gradSums(true)
	accShifted()
	accGrad(false)
	accGrad(true)
	for _, vec := range []bool{false, true} {
		for _, relu := range []bool{false, true} {
			affine(vec, relu)
			for _, withA := range []bool{false, true} {
				inputGrad(vec, withA, relu)
			}
		}
	}
	Generate()
}

// Comparison predicates of VCMPPS.
const (
	cmpLT = 1 // less than, false for NaN
	cmpLE = 2 // less or equal, false for NaN
)

// ptr loads a pointer argument.
func ptr(name string) reg.GPVirtual { return Load(Param(name), GP64()).(reg.GPVirtual) }

// broadcast loads a float32 argument into all eight lanes of a YMM.
func broadcast(name string) reg.VecVirtual {
	arg, err := Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	v := YMM()
	VBROADCASTSS(arg.Addr, v)
	return v
}

// laneSum sums the eight lanes of v as ((v0+v1)+(v2+v3))+((v4+v5)+(v6+v7))
// into the low lane of the returned XMM.
func laneSum(v reg.VecVirtual) reg.VecVirtual {
	VHADDPS(v, v, v)
	VHADDPS(v, v, v)
	hi := XMM()
	VEXTRACTF128(Imm(1), v, hi)
	VADDSS(hi, v.AsX(), hi)
	return hi
}

// mask replaces g by g where y > 0 or y is NaN, and by zero where y <= 0.
func mask(g, y reg.VecVirtual, zero reg.VecVirtual) {
	m := YMM()
	VCMPPS(Imm(cmpLE), zero, y, m)
	VANDNPS(g, m, g)
}

func zeroed() reg.VecVirtual {
	z := YMM()
	VXORPS(z, z, z)
	return z
}

// loop emits a counted loop over n values, step at a time: body(off) gets
// the byte offset of the current values, advanced after each step.
func loop(name string, n reg.GPVirtual, step int, body func(off reg.GPVirtual)) {
	off := GP64()
	XORQ(off, off)
	Label(name + "loop")
	CMPQ(n, Imm(uint64(step)))
	JL(LabelRef(name + "done"))
	body(off)
	ADDQ(Imm(uint64(4*step)), off)
	SUBQ(Imm(uint64(step)), n)
	JMP(LabelRef(name + "loop"))
	Label(name + "done")
}

func shiftedSums() {
	TEXT("BNShiftedSums", NOSPLIT, "func(x *float32, n int, k float32) (sum, squares float32)")
	Doc("BNShiftedSums returns the sums of x[i]-k and (x[i]-k)² over the first",
		"n values, n a multiple of 16, in two eight-wide partial sums each.",
		"It needs AVX2 and FMA.")
	x, n, k := ptr("x"), Load(Param("n"), GP64()).(reg.GPVirtual), broadcast("k")
	a0, a1, q0, q1 := zeroed(), zeroed(), zeroed(), zeroed()
	loop("ss", n, 16, func(off reg.GPVirtual) {
		d0, d1 := YMM(), YMM()
		VMOVUPS(Mem{Base: x, Index: off, Scale: 1}, d0)
		VMOVUPS(Mem{Base: x, Index: off, Scale: 1, Disp: 32}, d1)
		VSUBPS(k, d0, d0)
		VSUBPS(k, d1, d1)
		VADDPS(d0, a0, a0)
		VADDPS(d1, a1, a1)
		VFMADD231PS(d0, d0, q0)
		VFMADD231PS(d1, d1, q1)
	})
	VADDPS(a1, a0, a0)
	VADDPS(q1, q0, q0)
	Store(laneSum(a0), ReturnIndex(0))
	Store(laneSum(q0), ReturnIndex(1))
	VZEROUPPER()
	RET()
}

func gradSums(relu bool) {
	name, sig := "BNGradSums", "func(gy, x *float32, n int, mu float32) (sum, dot float32)"
	if relu {
		name, sig = "BNGradSumsReLU", "func(gy, x, y *float32, n int, mu float32) (sum, dot float32)"
	}
	TEXT(name, NOSPLIT, sig)
	Doc(name+" returns the sums of g[i] and g[i]·(x[i]-mu) over the first n",
		"values, n a multiple of 16, in two eight-wide partial sums each, g"+being(relu)+".",
		"It needs AVX2 and FMA.")
	g, x, n, mu := ptr("gy"), ptr("x"), Load(Param("n"), GP64()).(reg.GPVirtual), broadcast("mu")
	var y reg.GPVirtual
	var zero reg.VecVirtual
	if relu {
		y, zero = ptr("y"), zeroed()
	}
	a0, a1, b0, b1 := zeroed(), zeroed(), zeroed(), zeroed()
	loop("gs", n, 16, func(off reg.GPVirtual) {
		for h, acc := range [][2]reg.VecVirtual{{a0, b0}, {a1, b1}} {
			at := Mem{Base: g, Index: off, Scale: 1, Disp: 32 * h}
			gv, xv := YMM(), YMM()
			VMOVUPS(at, gv)
			if relu {
				yv := YMM()
				VMOVUPS(Mem{Base: y, Index: off, Scale: 1, Disp: 32 * h}, yv)
				mask(gv, yv, zero)
			}
			VMOVUPS(Mem{Base: x, Index: off, Scale: 1, Disp: 32 * h}, xv)
			VSUBPS(mu, xv, xv)
			VADDPS(gv, acc[0], acc[0])
			VFMADD231PS(xv, gv, acc[1])
		}
	})
	VADDPS(a1, a0, a0)
	VADDPS(b1, b0, b0)
	Store(laneSum(a0), ReturnIndex(0))
	Store(laneSum(b0), ReturnIndex(1))
	VZEROUPPER()
	RET()
}

// being says what g, the gradient a kernel sums or scales, is.
func being(relu bool) string {
	if relu {
		return " being gy masked by the ReLU output y"
	}
	return " being gy"
}

func accShifted() {
	TEXT("BNAccShifted", NOSPLIT, "func(x, ev, acc1, acc2 *float32, n int)")
	Doc("BNAccShifted adds d = x[i]-ev[i] to acc1[i] and d² to acc2[i] for the",
		"first n values, n a multiple of 8. It needs AVX2 and FMA.")
	x, ev, acc1, acc2 := ptr("x"), ptr("ev"), ptr("acc1"), ptr("acc2")
	n := Load(Param("n"), GP64()).(reg.GPVirtual)
	loop("as", n, 8, func(off reg.GPVirtual) {
		d, s, q := YMM(), YMM(), YMM()
		VMOVUPS(Mem{Base: x, Index: off, Scale: 1}, d)
		VSUBPS(Mem{Base: ev, Index: off, Scale: 1}, d, d)
		VADDPS(Mem{Base: acc1, Index: off, Scale: 1}, d, s)
		VMOVUPS(s, Mem{Base: acc1, Index: off, Scale: 1})
		VMOVUPS(Mem{Base: acc2, Index: off, Scale: 1}, q)
		VFMADD231PS(d, d, q)
		VMOVUPS(q, Mem{Base: acc2, Index: off, Scale: 1})
	})
	VZEROUPPER()
	RET()
}

func accGrad(relu bool) {
	name, sig := "BNAccGrad", "func(gy, x, ev, acc1, acc2 *float32, n int)"
	if relu {
		name, sig = "BNAccGradReLU", "func(gy, y, x, ev, acc1, acc2 *float32, n int)"
	}
	TEXT(name, NOSPLIT, sig)
	Doc(name+" adds g[i] to acc1[i] and g[i]·(x[i]-ev[i]) to acc2[i] for the",
		"first n values, n a multiple of 8, g"+being(relu)+". It needs AVX2 and FMA.")
	g, x, ev, acc1, acc2 := ptr("gy"), ptr("x"), ptr("ev"), ptr("acc1"), ptr("acc2")
	var y reg.GPVirtual
	var zero reg.VecVirtual
	if relu {
		y, zero = ptr("y"), zeroed()
	}
	n := Load(Param("n"), GP64()).(reg.GPVirtual)
	loop("ag", n, 8, func(off reg.GPVirtual) {
		gv, d, s, q := YMM(), YMM(), YMM(), YMM()
		VMOVUPS(Mem{Base: g, Index: off, Scale: 1}, gv)
		if relu {
			yv := YMM()
			VMOVUPS(Mem{Base: y, Index: off, Scale: 1}, yv)
			mask(gv, yv, zero)
		}
		VMOVUPS(Mem{Base: x, Index: off, Scale: 1}, d)
		VSUBPS(Mem{Base: ev, Index: off, Scale: 1}, d, d)
		VADDPS(Mem{Base: acc1, Index: off, Scale: 1}, gv, s)
		VMOVUPS(s, Mem{Base: acc1, Index: off, Scale: 1})
		VMOVUPS(Mem{Base: acc2, Index: off, Scale: 1}, q)
		VFMADD231PS(d, gv, q)
		VMOVUPS(q, Mem{Base: acc2, Index: off, Scale: 1})
	})
	VZEROUPPER()
	RET()
}

// coef is a per-value or per-run coefficient: a vector read at each
// offset, or one value broadcast once.
type coef struct {
	vec  bool
	p    reg.GPVirtual
	once reg.VecVirtual
}

func newCoef(name string, vec bool) coef {
	if vec {
		return coef{vec: true, p: ptr(name)}
	}
	arg, err := Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	v := YMM()
	VBROADCASTSS(arg.Addr, v)
	return coef{once: v}
}

// at is the coefficient's operand for the values at off.
func (c coef) at(off reg.GPVirtual) Op {
	if c.vec {
		return Mem{Base: c.p, Index: off, Scale: 1}
	}
	return c.once
}

func suffix(vec, relu bool) string {
	s := ""
	if vec {
		s += "Vec"
	}
	if relu {
		s += "ReLU"
	}
	return s
}

func affine(vec, relu bool) {
	name := "BNAffine" + suffix(vec, relu)
	ct := "float32"
	if vec {
		ct = "*float32"
	}
	TEXT(name, NOSPLIT, fmt.Sprintf("func(x *float32, a, b %s, n int, y *float32)", ct))
	what := "a and b"
	if vec {
		what = "a[i] and b[i]"
	}
	clip := ""
	if relu {
		clip = ", negative results cleared (NaN passes)"
	}
	Doc(fmt.Sprintf("%s writes y[i] = x[i]·%s + %s%s for the first n values,", name, first(what), second(what), clip),
		"n a multiple of 8. It needs AVX2 and FMA.")
	x, y := ptr("x"), ptr("y")
	a, b := newCoef("a", vec), newCoef("b", vec)
	n := Load(Param("n"), GP64()).(reg.GPVirtual)
	var zero reg.VecVirtual
	if relu {
		zero = zeroed()
	}
	loop("af", n, 8, func(off reg.GPVirtual) {
		v := YMM()
		VMOVUPS(Mem{Base: x, Index: off, Scale: 1}, v)
		av := a.once
		if vec {
			av = YMM()
			VMOVUPS(a.at(off), av)
		}
		VFMADD213PS(b.at(off), av, v)
		if relu {
			m := YMM()
			VCMPPS(Imm(cmpLT), zero, v, m)
			VANDNPS(v, m, v)
		}
		VMOVUPS(v, Mem{Base: y, Index: off, Scale: 1})
	})
	VZEROUPPER()
	RET()
}

func first(s string) string {
	if s == "a and b" {
		return "a"
	}
	return "a[i]"
}

func second(s string) string {
	if s == "a and b" {
		return "b"
	}
	return "b[i]"
}

func inputGrad(vec, withA, relu bool) {
	name := "BNInputGrad"
	if !withA {
		name = "BNInputGradScale"
	}
	name += suffix(vec, relu)
	ct := "float32"
	if vec {
		ct = "*float32"
	}
	params := "gy"
	if relu {
		params += ", y"
	}
	coefs := "k"
	if withA {
		params = "x, " + params
		coefs = "k, a, b"
	}
	TEXT(name, NOSPLIT, fmt.Sprintf("func(%s *float32, %s %s, n int, gx *float32)", params, coefs, ct))
	idx := ""
	if vec {
		idx = "[i]"
	}
	formula := "k" + idx + "·g[i]"
	if withA {
		formula = "(k" + idx + "·g[i] + x[i]·a" + idx + ") + b" + idx
	}
	Doc(fmt.Sprintf("%s writes gx[i] = %s for the first n values,", name, formula),
		"n a multiple of 8, g"+being(relu)+". It needs AVX2 and FMA.")
	g, gx := ptr("gy"), ptr("gx")
	var x, y reg.GPVirtual
	if withA {
		x = ptr("x")
	}
	var zero reg.VecVirtual
	if relu {
		y, zero = ptr("y"), zeroed()
	}
	k := newCoef("k", vec)
	var a, b coef
	if withA {
		a, b = newCoef("a", vec), newCoef("b", vec)
	}
	n := Load(Param("n"), GP64()).(reg.GPVirtual)
	loop("ig", n, 8, func(off reg.GPVirtual) {
		gv := YMM()
		VMOVUPS(Mem{Base: g, Index: off, Scale: 1}, gv)
		if relu {
			yv := YMM()
			VMOVUPS(Mem{Base: y, Index: off, Scale: 1}, yv)
			mask(gv, yv, zero)
		}
		VMULPS(k.at(off), gv, gv)
		if withA {
			xv := YMM()
			VMOVUPS(Mem{Base: x, Index: off, Scale: 1}, xv)
			VFMADD231PS(a.at(off), xv, gv)
			VADDPS(b.at(off), gv, gv)
		}
		VMOVUPS(gv, Mem{Base: gx, Index: off, Scale: 1})
	})
	VZEROUPPER()
	RET()
}
