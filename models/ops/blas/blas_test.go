package blas

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// naive is the textbook triple loop in float64, the reference every
// implementation is compared with.
func naive(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				var av, bv float64
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += av * bv
			}
			if beta == 0 {
				c[i*ldc+j] = alpha * s
			} else {
				c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
			}
		}
	}
}

type gemmCase struct {
	transA, transB bool
	m, n, k        int
	pad            int // extra columns in every leading dimension
	alpha, beta    float64
}

func (g gemmCase) String() string {
	return fmt.Sprintf("tA=%t,tB=%t,%dx%dx%d,pad=%d,alpha=%g,beta=%g", g.transA, g.transB, g.m, g.n, g.k, g.pad, g.alpha, g.beta)
}

func gemmCases() []gemmCase {
	var cases []gemmCase
	shapes := [][3]int{{1, 1, 1}, {3, 5, 7}, {2, 9, 4}, {17, 13, 9}, {32, 600, 33}, {5, 3, 600}, {70, 40, 300},
		// Exactly one micro-kernel tile (6×16, 12×32), one past it, and
		// blocks past blockM, blockK and blockN at once.
		{6, 16, 3}, {12, 32, 2}, {13, 33, 5}, {197, 1030, 401}}
	for _, s := range shapes {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				cases = append(cases, gemmCase{tA, tB, s[0], s[1], s[2], 0, 1, 0})
				cases = append(cases, gemmCase{tA, tB, s[0], s[1], s[2], 3, -0.5, 1})
				cases = append(cases, gemmCase{tA, tB, s[0], s[1], s[2], 1, 2, 0.25})
			}
		}
	}
	// Big enough to be split across goroutines, by rows, by columns and
	// along the shared dimension (far longer than C's sides).
	cases = append(cases,
		gemmCase{false, true, 48, 40, 3000, 1, 1, 0.5},
		gemmCase{true, false, 40, 48, 3000, 0, -1, 0},
		gemmCase{false, false, 128, 256, 160, 0, 1, 0},
		gemmCase{true, true, 128, 256, 160, 2, 1, 1},
		gemmCase{false, true, 4, 2048, 1024, 0, 1, 0.5},
		gemmCase{true, false, 4, 2048, 1024, 1, 1, 0})
	return cases
}

// operands builds random A, B, C for a case with the case's padding.
func operands(g gemmCase, rng *rand.Rand) (a []float64, lda int, b []float64, ldb int, c []float64, ldc int) {
	rowsA, colsA := g.m, g.k
	if g.transA {
		rowsA, colsA = g.k, g.m
	}
	rowsB, colsB := g.k, g.n
	if g.transB {
		rowsB, colsB = g.n, g.k
	}
	lda, ldb, ldc = colsA+g.pad, colsB+g.pad, g.n+g.pad
	fill := func(n int) []float64 {
		s := make([]float64, n)
		for i := range s {
			s[i] = rng.Float64()*2 - 1
		}
		return s
	}
	return fill(rowsA * lda), lda, fill(rowsB * ldb), ldb, fill(g.m * ldc), ldc
}

func toF32(s []float64) []float32 {
	out := make([]float32, len(s))
	for i, v := range s {
		out[i] = float32(v)
	}
	return out
}

// impls lists every multiply this machine can run: the build's default,
// Go (its best micro-kernel), each micro-kernel on its own and the portable
// code.
func impls() []Gemm {
	out := []Gemm{Default()}
	if Default().Name() != (Go{}).Name() {
		out = append(out, Go{})
	}
	for _, kn := range supportedKernels() {
		if kn != goKernel {
			out = append(out, kernelGemm{kn})
		}
	}
	if goKernel != nil {
		out = append(out, Portable{})
	}
	return out
}

func TestSgemmMatchesNaive(t *testing.T) {
	impls := impls()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, g := range gemmCases() {
		a, lda, b, ldb, c, ldc := operands(g, rng)
		want := append([]float64(nil), c...)
		naive(g.transA, g.transB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, want, ldc)
		for _, impl := range impls {
			for _, serial := range []bool{false, true} {
				name := impl.Name() + "/" + g.String()
				mul := impl.Sgemm
				if serial {
					name, mul = impl.Name()+"/serial/"+g.String(), impl.SgemmSerial
				}
				t.Run(name, func(t *testing.T) {
					got := toF32(c)
					mul(g.transA, g.transB, g.m, g.n, g.k, float32(g.alpha), toF32(a), lda, toF32(b), ldb, float32(g.beta), got, ldc)
					// float32 products of values in [-1,1] summed k times: the
					// rounding error grows like sqrt(k) * 2^-24 per term.
					tol := 1e-5 * math.Sqrt(float64(g.k)) * 4
					for i := 0; i < g.m; i++ {
						for j := 0; j < ldc; j++ {
							idx := i*ldc + j
							if j >= g.n {
								if got[idx] != float32(c[idx]) {
									t.Fatalf("padding C[%d][%d] changed from %g to %g", i, j, c[idx], got[idx])
								}
								continue
							}
							if d := math.Abs(float64(got[idx]) - want[idx]); d > tol*(1+math.Abs(want[idx])) {
								t.Fatalf("C[%d][%d] = %g, want %g (diff %g > tol %g)", i, j, got[idx], want[idx], d, tol)
							}
						}
					}
				})
			}
		}
	}
}

func TestGenericFloat64IsExactToRounding(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, g := range gemmCases() {
		a, lda, b, ldb, c, ldc := operands(g, rng)
		want := append([]float64(nil), c...)
		naive(g.transA, g.transB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, want, ldc)
		got := append([]float64(nil), c...)
		Generic(g.transA, g.transB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, got, ldc)
		for i := range got {
			if d := math.Abs(got[i] - want[i]); d > 1e-12*float64(g.k+1) {
				t.Fatalf("%v: C[%d] = %g, want %g", g, i, got[i], want[i])
			}
		}
	}
}

func TestBetaZeroIgnoresNaNInC(t *testing.T) {
	for _, impl := range impls() {
		c := []float32{float32(math.NaN()), float32(math.Inf(1))}
		impl.Sgemm(false, false, 1, 2, 1, 1, []float32{2}, 1, []float32{3, 4}, 2, 0, c, 2)
		if c[0] != 6 || c[1] != 8 {
			t.Errorf("%s: C = %v, want [6 8]", impl.Name(), c)
		}
	}
}

func TestSgemmPanicsOnShortSlice(t *testing.T) {
	for _, impl := range impls() {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic for a 2×2 A given 3 elements", impl.Name())
				}
			}()
			impl.Sgemm(false, false, 2, 2, 2, 1, make([]float32, 3), 2, make([]float32, 4), 2, 0, make([]float32, 4), 2)
		}()
	}
}

func BenchmarkSgemm(b *testing.B) {
	shapes := []struct {
		name           string
		transA, transB bool
		m, n, k        int
	}{
		{"conv1x1_fwd_32x3136x32", false, false, 32, 3136, 32},
		{"conv1x1_dx_32x3136x32", true, false, 32, 3136, 32},
		{"conv1x1_dw_32x32x3136", false, true, 32, 32, 3136},
		{"conv1x1_fwd_320x49x320", false, false, 320, 49, 320},
		{"linear_32x1000x1024", false, true, 32, 1000, 1024},
	}
	for _, impl := range impls() {
		for _, s := range shapes {
			b.Run(impl.Name()+"/"+s.name, func(b *testing.B) {
				lda, ldb := s.k, s.n
				if s.transA {
					lda = s.m
				}
				if s.transB {
					ldb = s.k
				}
				a := make([]float32, s.m*s.k)
				bm := make([]float32, s.k*s.n)
				c := make([]float32, s.m*s.n)
				for i := range a {
					a[i] = float32(i%13) * 0.1
				}
				for i := range bm {
					bm[i] = float32(i%7) * 0.1
				}
				b.SetBytes(int64(s.m * s.n * s.k)) // reported MB/s is millions of multiply-adds per second
				for b.Loop() {
					impl.Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, c, s.n)
				}
			})
		}
	}
}

// TestKernelForPicksLeastPadding checks the choice between micro-kernels
// where the CPU has both: the wide AVX-512 tile for products that fill it,
// the narrow AVX2 one where the wide tile would be mostly padding (at half
// padding the wide tile's double width makes up for it, and it wins ties).
func TestKernelForPicksLeastPadding(t *testing.T) {
	if len(goKernels) < 2 {
		t.Skipf("this CPU runs %d micro-kernel(s); the choice needs two", len(goKernels))
	}
	wide, narrow := goKernels[0], goKernels[1]
	for _, c := range []struct {
		m, n int
		want *microKernel
	}{
		{96, 1024, wide},  // whole 12×32 tiles
		{256, 16, narrow}, // a 32-column tile would be half padding
		{4, 16, narrow},   // both wide tiles' dimensions mostly padding
		{24, 64, wide},
	} {
		if got := kernelFor(c.m, c.n); got != c.want {
			t.Errorf("kernelFor(%d, %d) = %s, want %s", c.m, c.n, got.name, c.want.name)
		}
	}
}
