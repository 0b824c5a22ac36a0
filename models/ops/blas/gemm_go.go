package blas

import (
	"runtime"
	"sync"

	"github.com/razorgo/razor/internal/par"
)

// Go is the implementation that needs no C: on amd64 a packed,
// cache-blocked multiply around an assembly micro-kernel (AVX-512 or
// AVX2+FMA, whichever the CPU has, chosen at start-up), elsewhere the
// portable Generic multiply. Either splits one big multiply across
// goroutines.
type Go struct{}

// goKernel is the fastest micro-kernel this CPU runs, nil where the
// portable code runs instead; goKernels are all of them, fastest first.
var (
	goKernels = supportedKernels()
	goKernel  = func() *microKernel {
		if len(goKernels) > 0 {
			return goKernels[0]
		}
		return nil
	}()
)

// kernelFor picks the micro-kernel that wastes least on an m×n product:
// tiles past the edges are computed whole, so a 12×32 AVX-512 tile, twice
// as fast per value as a 6×16 AVX2 one, still loses on a 16-column product
// (half its tile padding) or on 6 rows.
func kernelFor(m, n int) *microKernel {
	var best *microKernel
	bestCost := 0
	for _, kn := range goKernels {
		// Padded multiply-adds per vector instruction's worth.
		cost := ceilTo(m, kn.mr) * ceilTo(n, kn.nr) / kn.lanes
		if best == nil || cost < bestCost {
			best, bestCost = kn, cost
		}
	}
	return best
}

func ceilTo(v, step int) int { return (v + step - 1) / step * step }

// Name reports "go" and, after a slash, the micro-kernel in use ("go/avx2",
// "go/avx512"), or "go/portable".
func (Go) Name() string {
	if goKernel == nil {
		return "go/portable"
	}
	return "go/" + goKernel.name
}

// Sgemm implements Gemm.
func (Go) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if goKernel != nil {
		kernelGemm{kernelFor(m, n)}.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	Generic(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// SgemmSerial implements Gemm.
func (Go) SgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if goKernel != nil {
		kernelGemm{kernelFor(m, n)}.SgemmSerial(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	GenericSerial(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// kernelGemm is the packed multiply through one micro-kernel.
type kernelGemm struct{ kn *microKernel }

func (g kernelGemm) Name() string { return "go/" + g.kn.name }

func (g kernelGemm) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkArgs(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	g.multiply(transA, transB, m, n, k, alpha, plain(a, lda), plain(b, ldb), beta, plain(c, ldc))
}

func (g kernelGemm) SgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkArgs(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	sgemmPacked(g.kn, transA, transB, m, n, k, alpha, plain(a, lda), plain(b, ldb), beta, plain(c, ldc))
}

// SgemmPlanes implements Planar.
func (g kernelGemm) SgemmPlanes(transA, transB bool, m, n, k int, alpha float32, a []float32, la Layout, b []float32, lb Layout, beta float32, c []float32, lc Layout) {
	checkPlanes(transA, transB, m, n, k, a, la, b, lb, c, lc)
	g.multiply(transA, transB, m, n, k, alpha, la.operand(a), lb.operand(b), beta, lc.operand(c))
}

// multiply splits one product across the workers (see splitTiles).
func (g kernelGemm) multiply(transA, transB bool, m, n, k int, alpha float32, a, b operand, beta float32, c operand) {
	splitTiles(m, n, k, g.kn.mr, g.kn.nr, func(i0, m, j0, n, p0, k int, sum []float32) {
		cp, bt := c.shift(i0, j0), beta
		if sum != nil {
			cp, bt = plain(sum, n), 0
		}
		sgemmPacked(g.kn, transA, transB, m, n, k, alpha, a.opShift(transA, i0, p0), b.opShift(transB, p0, j0), bt, cp)
	}, func(sum []float32) {
		// The partial products of the shared dimension's later stretches.
		segs := c.segments(0, n, nil)
		for i := 0; i < m; i++ {
			c.scatter(segs, i, sum[i*n:(i+1)*n], true)
		}
	})
}

// Portable is the portable pure-Go multiply on every architecture, the
// fallback where no micro-kernel runs; tests and benchmarks compare it.
type Portable struct{}

// Name reports "go/portable".
func (Portable) Name() string { return "go/portable" }

// Sgemm implements Gemm.
func (Portable) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	Generic(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// SgemmSerial implements Gemm.
func (Portable) SgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	GenericSerial(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Generic is the pure-Go multiply for either precision, with the same
// contract as Gemm.Sgemm.
func Generic[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	checkArgs(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	split(transA, transB, m, n, k, lda, ldb, ldc, func(m, n, aOff, bOff, cOff int) {
		gemmSerial(transA, transB, m, n, k, alpha, a[aOff:], lda, b[bOff:], ldb, beta, c[cOff:], ldc)
	})
}

// GenericSerial is Generic on the calling goroutine alone (see
// Gemm.SgemmSerial).
func GenericSerial[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	checkArgs(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	gemmSerial(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

const (
	// parallelMACs is the multiply-add count below which one goroutine is
	// faster than paying for a hand-off (about a millisecond of work).
	parallelMACs = 1 << 22
	// packedParallelMACs is parallelMACs for the micro-kernels, which do
	// 2^19 multiply-adds in 10-20 µs, about what a hand-off costs
	// (internal/par): a 1x1 convolution over 32 images of 16x16 with 16
	// channels (2^21) ran on one core at 2^22.
	packedParallelMACs = 1 << 19
	// axpyCols and axpyDepth bound the B panel the row-update kernel streams
	// over (256×512 floats, 512 KiB at most) so it stays in L2 while every
	// row of C passes over it, and one row segment of C stays in L1.
	axpyCols  = 512
	axpyDepth = 256
	// dotDepth bounds the stretch of the shared dimension the dot kernel
	// reads from six rows at once, so they stay in L1.
	dotDepth = 512
)

// split runs part once per block of C: whole when the multiply is small,
// otherwise in row blocks (or column blocks when C has few rows), one per
// GOMAXPROCS worker. part receives the block's size and the offsets of its
// first element in a, b and c.
func split(transA, transB bool, m, n, k, lda, ldb, ldc int, part func(m, n, aOff, bOff, cOff int)) {
	workers := runtime.GOMAXPROCS(0)
	if workers < 2 || m*n*k < parallelMACs {
		part(m, n, 0, 0, 0)
		return
	}
	switch {
	case m >= 4*workers:
		par.For(m, func(_, i0, i1 int) {
			aOff := i0 * lda
			if transA {
				aOff = i0
			}
			part(i1-i0, n, aOff, 0, i0*ldc)
		})
	case n >= 16*workers:
		par.For(n, func(_, j0, j1 int) {
			bOff := j0
			if transB {
				bOff = j0 * ldb
			}
			part(m, j1-j0, 0, bOff, j0)
		})
	default:
		part(m, n, 0, 0, 0)
	}
}

// splitTiles is split for the packed multiply, whose workers each pack
// the part of op(A) and op(B) their block of C reads. part(i0, m, j0, n,
// p0, k, sum) computes the block of C at rows [i0, i0+m) and columns
// [j0, j0+n) over the shared dimension's stretch [p0, p0+k): into C when
// sum is nil, else into sum (m×n, overwritten), which add then adds to C.
//
// It cuts C along its columns when op(B) is the bigger operand (n > m: each
// worker then packs only its own columns of B, and all of the smaller A),
// along its rows otherwise, and at multiples of the micro-kernel's mr×nr
// tile, so no worker computes an edge tile the whole product would not
// have. Cutting the 160×1568 product of a 1x1 convolution over 32 images
// of 7x7 into two 80-row halves packed all of B twice and padded 80 rows to
// 84. When the shared dimension is far longer than C's sides (a weight
// gradient summed over all images' pixels) it cuts that instead: each
// worker packs its own stretch of both operands, and the partial products,
// small beside them, are added at the end.
func splitTiles(m, n, k, mr, nr int, part func(i0, m, j0, n, p0, k int, sum []float32), add func(sum []float32)) {
	workers := runtime.GOMAXPROCS(0)
	if workers < 2 || m*n*k < packedParallelMACs {
		part(0, m, 0, n, 0, k, nil)
		return
	}
	rowTiles, colTiles := (m+mr-1)/mr, (n+nr-1)/nr
	switch {
	case k >= splitDepthRatio*max(m, n):
		sums := make([][]float32, workers)
		par.For(workers, func(_, t0, t1 int) {
			for t := t0; t < t1; t++ {
				p0, p1 := t*k/workers, (t+1)*k/workers
				if t == 0 {
					part(0, m, 0, n, p0, p1-p0, nil)
					continue
				}
				sums[t] = getSum(m * n)
				part(0, m, 0, n, p0, p1-p0, sums[t])
			}
		})
		for _, s := range sums[1:] {
			add(s)
			putSum(s)
		}
	case colTiles >= workers && (n > m || rowTiles < workers):
		par.For(colTiles, func(_, t0, t1 int) {
			j0, j1 := t0*nr, min(t1*nr, n)
			part(0, m, j0, j1-j0, 0, k, nil)
		})
	case rowTiles >= workers:
		par.For(rowTiles, func(_, t0, t1 int) {
			i0, i1 := t0*mr, min(t1*mr, m)
			part(i0, i1-i0, 0, n, 0, k, nil)
		})
	default:
		part(0, m, 0, n, 0, k, nil)
	}
}

// splitDepthRatio is how many times longer than C's longer side the shared
// dimension must be before splitTiles cuts it: each worker then packs
// (m+n)·k/workers values instead of a share of one operand and all of the
// other, and the cost is an m×n addition per extra worker.
const splitDepthRatio = 4

// sumPool holds the partial products of a split shared dimension.
var sumPool sync.Pool

func getSum(size int) []float32 {
	if p, ok := sumPool.Get().(*[]float32); ok && cap(*p) >= size {
		return (*p)[:size]
	}
	return make([]float32, size)
}

func putSum(s []float32) { sumPool.Put(&s) }

// gemmSerial is the single-goroutine multiply. It first applies beta to C,
// then accumulates alpha*op(A)*op(B) with one of two kernels: row updates
// when the rows of op(B) are contiguous, dot products when B is stored
// transposed (then its columns are contiguous instead).
func gemmSerial[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	scaleC(m, n, beta, c, ldc)
	if alpha == 0 || k == 0 || m == 0 || n == 0 {
		return
	}
	if !transB {
		gemmRowUpdate(transA, m, n, k, alpha, a, lda, b, ldb, c, ldc)
		return
	}
	if transA {
		// Both transposed never happens in the kernels; packing op(A) keeps
		// one dot-product kernel instead of a second one with strided reads.
		packed := make([]T, m*k)
		for p := 0; p < k; p++ {
			for i := 0; i < m; i++ {
				packed[i*k+p] = a[p*lda+i]
			}
		}
		a, lda = packed, k
	}
	gemmDot(m, n, k, alpha, a, lda, b, ldb, c, ldc)
}

// gemmRowUpdate adds alpha*op(A)*B to C where B is k×n row-major: each row
// of C is updated by four rows of B at a time, so a C element is loaded and
// stored once per four multiply-adds.
func gemmRowUpdate[T Float](transA bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, c []T, ldc int) {
	for j0 := 0; j0 < n; j0 += axpyCols {
		j1 := min(j0+axpyCols, n)
		for p0 := 0; p0 < k; p0 += axpyDepth {
			p1 := min(p0+axpyDepth, k)
			for i := 0; i < m; i++ {
				// op(A)[i][p] = a[base + p*step]
				base, step := i*lda, 1
				if transA {
					base, step = i, lda
				}
				crow := c[i*ldc+j0 : i*ldc+j1]
				p := p0
				for ; p+3 < p1; p += 4 {
					x0 := alpha * a[base+p*step]
					x1 := alpha * a[base+(p+1)*step]
					x2 := alpha * a[base+(p+2)*step]
					x3 := alpha * a[base+(p+3)*step]
					b0 := b[p*ldb+j0 : p*ldb+j1][:len(crow)]
					b1 := b[(p+1)*ldb+j0 : (p+1)*ldb+j1][:len(crow)]
					b2 := b[(p+2)*ldb+j0 : (p+2)*ldb+j1][:len(crow)]
					b3 := b[(p+3)*ldb+j0 : (p+3)*ldb+j1][:len(crow)]
					for j := range crow {
						crow[j] += x0*b0[j] + x1*b1[j] + x2*b2[j] + x3*b3[j]
					}
				}
				for ; p < p1; p++ {
					x := alpha * a[base+p*step]
					brow := b[p*ldb+j0 : p*ldb+j1][:len(crow)]
					for j := range crow {
						crow[j] += x * brow[j]
					}
				}
			}
		}
	}
}

// gemmDot adds alpha*A*Bᵀ to C where A is m×k and B is n×k, both row-major:
// every C element is a dot product of two contiguous rows, computed two rows
// of A by four rows of B at a time so each loaded value feeds several sums.
func gemmDot[T Float](m, n, k int, alpha T, a []T, lda int, b []T, ldb int, c []T, ldc int) {
	for p0 := 0; p0 < k; p0 += dotDepth {
		p1 := min(p0+dotDepth, k)
		i := 0
		for ; i+1 < m; i += 2 {
			a0 := a[i*lda+p0 : i*lda+p1]
			a1 := a[(i+1)*lda+p0 : (i+1)*lda+p1][:len(a0)]
			c0 := c[i*ldc : i*ldc+n]
			c1 := c[(i+1)*ldc : (i+1)*ldc+n]
			j := 0
			for ; j+3 < n; j += 4 {
				b0 := b[j*ldb+p0 : j*ldb+p1][:len(a0)]
				b1 := b[(j+1)*ldb+p0 : (j+1)*ldb+p1][:len(a0)]
				b2 := b[(j+2)*ldb+p0 : (j+2)*ldb+p1][:len(a0)]
				b3 := b[(j+3)*ldb+p0 : (j+3)*ldb+p1][:len(a0)]
				var s00, s01, s02, s03, s10, s11, s12, s13 T
				for p, x0 := range a0 {
					x1 := a1[p]
					y0, y1, y2, y3 := b0[p], b1[p], b2[p], b3[p]
					s00 += x0 * y0
					s01 += x0 * y1
					s02 += x0 * y2
					s03 += x0 * y3
					s10 += x1 * y0
					s11 += x1 * y1
					s12 += x1 * y2
					s13 += x1 * y3
				}
				c0[j] += alpha * s00
				c0[j+1] += alpha * s01
				c0[j+2] += alpha * s02
				c0[j+3] += alpha * s03
				c1[j] += alpha * s10
				c1[j+1] += alpha * s11
				c1[j+2] += alpha * s12
				c1[j+3] += alpha * s13
			}
			for ; j < n; j++ {
				brow := b[j*ldb+p0 : j*ldb+p1][:len(a0)]
				var s0, s1 T
				for p, y := range brow {
					s0 += a0[p] * y
					s1 += a1[p] * y
				}
				c0[j] += alpha * s0
				c1[j] += alpha * s1
			}
		}
		if i < m {
			a0 := a[i*lda+p0 : i*lda+p1]
			c0 := c[i*ldc : i*ldc+n]
			for j := range c0 {
				brow := b[j*ldb+p0 : j*ldb+p1][:len(a0)]
				var s T
				for p, y := range brow {
					s += a0[p] * y
				}
				c0[j] += alpha * s
			}
		}
	}
}
