package ops

import (
	"runtime"

	"github.com/razorgo/razor/models/ops/blas"
)

// Convolutions as matrix products. Per image and group, with K = Cin/groups
// and P the output pixels, the forward pass is
//
//	Y[Cout/groups × P] = W[Cout/groups × K·kh·kw] · col[K·kh·kw × P]
//
// where col holds the input patch under every output pixel (im2col). For a
// 1x1 stride-1 unpadded convolution col is the input itself, so nothing is
// copied. The input gradient is col2im(Wᵀ·gY); the weight gradient is
// Σ gY·colᵀ over images.

// colBudget caps an im2col buffer at 8 MiB of float32 per worker: large
// detection inputs are unfolded a band of output rows at a time. At the
// FPN's 3x3 256-channel convs that is 3 rows of the stride-4 level (1008
// columns), measured faster than with half the budget. Small images (RoIs)
// taken side by side have a smaller budget, sideBySideBudget.
const colBudget = 1 << 21

// bandRows is how many output rows one im2col band covers.
func (g convGeom) bandRows() int {
	return max(1, min(g.hout, colBudget/max(1, g.kkc*g.wout)))
}

// validRange returns the output columns [lo, hi) whose input column
// o*stride+off falls inside [0, n).
func validRange(nOut, stride, off, n int) (lo, hi int) {
	if off < 0 {
		lo = (-off + stride - 1) / stride
	}
	if n-1-off < 0 {
		return 0, 0
	}
	hi = min(nOut, (n-1-off)/stride+1)
	if hi < lo {
		return lo, lo
	}
	return min(lo, nOut), hi
}

// planesMinHW is the plane size below which a pointwise convolution copies
// the images side by side rather than reading them in place: on planes of
// one pixel every micro-kernel tile would straddle 32 of them.
const planesMinHW = 4

// sideBySideHW is the plane size below which a pointwise convolution
// multiplies all images at once instead of one product per image, where
// the build's multiply cannot read the images in place (OpenBLAS, and
// float64): the images' planes are copied side by side into one matrix
// (n·hw columns) and the result copied back. A product per image of 16 or 4 columns
// spends more on packing the weights than on multiplying; the copies cost
// one pass over the input and output, against Cout (or Cin)
// multiply-adds per value in the product.
const sideBySideHW = 64

// sideBySide copies channels [c0, c0+c) of every image of an n×ch×hw
// tensor into dst as a c×(n·hw) matrix: row r holds channel c0+r of each
// image in turn.
func sideBySide[T blas.Float](n, ch, hw, c0, c int, src, dst []T) {
	parallel(c, func(_, lo, hi int) {
		gatherImages(0, n, ch, hw, c0+lo, hi-lo, src, dst[lo*n*hw:])
	})
}

// apart is the inverse of sideBySide: it copies a c×(n·hw) matrix back
// into channels [c0, c0+c) of an n×ch×hw tensor.
func apart[T blas.Float](n, ch, hw, c0, c int, src, dst []T) {
	ld := n * hw
	parallel(c, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			for i := 0; i < n; i++ {
				copy(dst[(i*ch+c0+r)*hw:(i*ch+c0+r+1)*hw], src[r*ld+i*hw:])
			}
		}
	})
}

// pointwiseForward runs a 1x1 stride-1 convolution (see pointwiseProduct).
func pointwiseForward[T blas.Float](g convGeom, x, w, y []T) {
	pointwiseProduct(g, false, w, x, g.cin, g.cinG, y, g.cout, g.coutG)
}

// pointwiseBackwardInput computes gx = Wᵀ·gy (see pointwiseProduct).
func pointwiseBackwardInput[T blas.Float](g convGeom, w, gy, gx []T) {
	pointwiseProduct(g, true, w, gy, g.cout, g.coutG, gx, g.cin, g.cinG)
}

// pointwiseProduct computes out = W·in per group for a 1x1 stride-1
// convolution's forward pass, or out = Wᵀ·in (transW) for its input
// gradient: in has inCh channels, inG to a group, out outCh, outG to a
// group, and W holds each group's coutG×cinG weights.
//
// It is one product per group over all images side by side, read and
// written in place where the build's multiply can (blas.Planar).
// Elsewhere it is one product per image and group, straight from the
// input, or, for small planes, one product per group over copies of the
// images side by side.
//
// In place, the product of 32 images of 14x14 has 6272 columns, not 32
// products of 196 (each packing the weights again and padding its last
// tile), and 7x7 planes need no copies: paired runs against the copies and
// per-image products took 10-20% off the forward pass at 7x7 and 14x14 and
// 43% off the 14x14 input gradient, 3-14% at 28x28 and 56x56.
func pointwiseProduct[T blas.Float](g convGeom, transW bool, w, in []T, inCh, inG int, out []T, outCh, outG int) {
	hw := g.h * g.w
	wg := g.coutG * g.cinG // one group's weights, rows g.cinG apart
	if p := planar[T](); p != nil && g.n > 1 && hw >= planesMinHW {
		for gr := 0; gr < g.groups; gr++ {
			sgemmPlanes(p, transW, false, outG, g.n*hw, inG,
				w[gr*wg:], blas.Layout{LD: g.cinG},
				in[gr*inG*hw:], imagesLayout(inCh, hw),
				out[gr*outG*hw:], imagesLayout(outCh, hw))
		}
		return
	}
	if hw < sideBySideHW && g.n > 1 {
		ld := g.n * hw
		ins, outs := scratch[T](inG*ld), scratch[T](outG*ld)
		for gr := 0; gr < g.groups; gr++ {
			sideBySide(g.n, inCh, hw, gr*inG, inG, in, ins)
			gemm(transW, false, outG, ld, inG, 1, w[gr*wg:], g.cinG, ins, ld, 0, outs, ld)
			apart(g.n, outCh, hw, gr*outG, outG, outs, out)
		}
		putScratch(ins, outs)
		return
	}
	parallel(g.n*g.groups, func(_, lo, hi int) {
		for t := lo; t < hi; t++ {
			i, gr := t/g.groups, t%g.groups
			gemm(transW, false, outG, hw, inG, 1,
				w[gr*wg:], g.cinG,
				in[(i*inCh+gr*inG)*hw:], hw,
				0, out[(i*outCh+gr*outG)*hw:], hw)
		}
	})
}

// pointwiseBackwardWeight computes gw = Σ_images gy·xᵀ per group; with
// all images side by side (as pointwiseForward: in place, or copied for
// small planes) the sum over images is the shared dimension of one product.
func pointwiseBackwardWeight[T blas.Float](g convGeom, x, gy, gw []T) {
	hw := g.h * g.w
	if p := planar[T](); p != nil && g.n > 1 && hw >= planesMinHW {
		for gr := 0; gr < g.groups; gr++ {
			sgemmPlanes(p, false, true, g.coutG, g.cinG, g.n*hw,
				gy[gr*g.coutG*hw:], imagesLayout(g.cout, hw),
				x[gr*g.cinG*hw:], imagesLayout(g.cin, hw),
				gw[gr*g.coutG*g.cinG:], blas.Layout{LD: g.cinG})
		}
		return
	}
	if hw < sideBySideHW && g.n > 1 {
		ld := g.n * hw
		gys, xs := scratch[T](g.coutG*ld), scratch[T](g.cinG*ld)
		for gr := 0; gr < g.groups; gr++ {
			sideBySide(g.n, g.cout, hw, gr*g.coutG, g.coutG, gy, gys)
			sideBySide(g.n, g.cin, hw, gr*g.cinG, g.cinG, x, xs)
			gemm(false, true, g.coutG, g.cinG, ld, 1, gys, ld, xs, ld, 0, gw[gr*g.coutG*g.cinG:], g.cinG)
		}
		putScratch(gys, xs)
		return
	}
	sumOverImages(g.n, gw, func(_, i int, acc []T, first bool) {
		beta := T(1)
		if first {
			beta = 0
		}
		for gr := 0; gr < g.groups; gr++ {
			gemm(false, true, g.coutG, g.cinG, hw, 1,
				gy[(i*g.cout+gr*g.coutG)*hw:], hw,
				x[(i*g.cin+gr*g.cinG)*hw:], hw,
				beta, acc[gr*g.coutG*g.cinG:], g.cinG)
		}
	})
}

// sumOverImages computes out = Σ_i f(i) for per-image contributions f, in
// parallel: body(worker, i, acc, first) adds image i's contribution to acc,
// or overwrites acc when first is set. Each worker owns one accumulator (the
// first worker writes out directly); the rest are added at the end.
func sumOverImages[T blas.Float](n int, out []T, body func(worker, i int, acc []T, first bool)) {
	accs := make([][]T, workersFor(n))
	parallel(n, func(wk, lo, hi int) {
		acc := out
		if wk > 0 {
			acc = make([]T, len(out))
		}
		for i := lo; i < hi; i++ {
			body(wk, i, acc, i == lo)
		}
		accs[wk] = acc
	})
	for _, acc := range accs[1:] {
		for j, v := range acc {
			out[j] += v
		}
	}
}

// im2col unfolds output rows [oy0, oy1) of one image group: xs starts at
// the group's first input channel, and col receives a
// (cinG·kh·kw)×((oy1-oy0)·wout) matrix whose rows are ld apart.
func im2col[T blas.Float](g convGeom, xs []T, oy0, oy1 int, col []T, ld int) {
	cols := (oy1 - oy0) * g.wout
	for ci := 0; ci < g.cinG; ci++ {
		plane := xs[ci*g.h*g.w : (ci+1)*g.h*g.w]
		for ky := 0; ky < g.kh; ky++ {
			for kx := 0; kx < g.kw; kx++ {
				r := (ci*g.kh+ky)*g.kw + kx
				dst := col[r*ld : r*ld+cols]
				off := kx*g.dw - g.pw
				lo, hi := validRange(g.wout, g.sw, off, g.w)
				for oy := oy0; oy < oy1; oy++ {
					d := dst[(oy-oy0)*g.wout : (oy-oy0+1)*g.wout]
					iy := oy*g.sh - g.ph + ky*g.dh
					if iy < 0 || iy >= g.h {
						clear(d)
						continue
					}
					src := plane[iy*g.w : (iy+1)*g.w]
					clear(d[:lo])
					clear(d[hi:])
					if g.sw == 1 {
						copy(d[lo:hi], src[lo+off:hi+off])
						continue
					}
					for ox := lo; ox < hi; ox++ {
						d[ox] = src[ox*g.sw+off]
					}
				}
			}
		}
	}
}

// col2im adds an unfolded gradient for output rows [oy0, oy1) back onto
// the input gradient of one image group (the adjoint of im2col).
func col2im[T blas.Float](g convGeom, col []T, ld, oy0, oy1 int, gxs []T) {
	cols := (oy1 - oy0) * g.wout
	for ci := 0; ci < g.cinG; ci++ {
		plane := gxs[ci*g.h*g.w : (ci+1)*g.h*g.w]
		for ky := 0; ky < g.kh; ky++ {
			for kx := 0; kx < g.kw; kx++ {
				r := (ci*g.kh+ky)*g.kw + kx
				src := col[r*ld : r*ld+cols]
				off := kx*g.dw - g.pw
				lo, hi := validRange(g.wout, g.sw, off, g.w)
				for oy := oy0; oy < oy1; oy++ {
					iy := oy*g.sh - g.ph + ky*g.dh
					if iy < 0 || iy >= g.h {
						continue
					}
					s := src[(oy-oy0)*g.wout : (oy-oy0+1)*g.wout]
					dst := plane[iy*g.w : (iy+1)*g.w]
					for ox := lo; ox < hi; ox++ {
						dst[ox*g.sw+off] += s[ox]
					}
				}
			}
		}
	}
}

// im2colForward runs a general (or grouped) convolution as products of
// each group's weights with unfolded input, in tasks of at most colBudget
// unfolded elements: a band of output rows of a large image, or several
// small images side by side (smallBatch). A 7x7 RoI alone would make a
// 49-column product, too narrow for the GEMM kernels to run at speed;
// eighteen 64-channel RoIs make 882 columns. With a task per worker or more, each worker unfolds
// and multiplies its own tasks with a serial GEMM; with fewer, the tasks
// run in turn and each product is split across the workers.
func im2colForward[T blas.Float](g convGeom, x, w, y []T) {
	hwOut := g.hout * g.wout
	rows := g.bandRows()
	per := g.smallBatch()
	bands, batches := (g.hout+rows-1)/rows, (g.n+per-1)/per
	tasks := g.groups * batches * bands
	run := func(t int, col, out []T, mul gemmFunc[T]) {
		gr, rest := t/(batches*bands), t%(batches*bands)
		i0, band := rest/bands*per, rest%bands
		i1 := min(i0+per, g.n)
		oy0 := band * rows
		oy1 := min(oy0+rows, g.hout)
		cols := (oy1 - oy0) * g.wout
		ld := (i1 - i0) * cols
		for i := i0; i < i1; i++ {
			im2col(g, x[(i*g.cin+gr*g.cinG)*g.h*g.w:], oy0, oy1, col[(i-i0)*cols:], ld)
		}
		wg := w[gr*g.coutG*g.kkc:]
		if i1-i0 == 1 {
			mul(false, false, g.coutG, cols, g.kkc, 1, wg, g.kkc, col, ld, 0, y[(i0*g.cout+gr*g.coutG)*hwOut+oy0*g.wout:], hwOut)
			return
		}
		mul(false, false, g.coutG, ld, g.kkc, 1, wg, g.kkc, col, ld, 0, out, ld)
		for i := i0; i < i1; i++ {
			ys := y[(i*g.cout+gr*g.coutG)*hwOut:]
			for c := 0; c < g.coutG; c++ {
				copy(ys[c*hwOut:(c+1)*hwOut], out[c*ld+(i-i0)*hwOut:])
			}
		}
	}
	colLen, outLen := g.kkc*per*rows*g.wout, 0
	if per > 1 {
		outLen = g.coutG * per * hwOut
	}
	smallTasks(tasks, []int{colLen, outLen}, func(t int, bufs [][]T, mul gemmFunc[T]) {
		run(t, bufs[0], bufs[1], mul)
	})
}

// smallBatch is how many small images a convolution's products take side
// by side (as im2colForward does; 1 for images unfolded in bands).
func (g convGeom) smallBatch() int {
	if g.bandRows() < g.hout {
		return 1
	}
	return max(1, min(g.n, sideBySideBudget/max(1, g.kkc*g.hout*g.wout)))
}

// sideBySideBudget caps the unfolded small images one product takes at
// 2 MiB of float32, a quarter of colBudget: the unfolding stays in cache
// between im2col and the product. Measured on the box head's 3x3 convs
// over 256 RoIs of 7x7 (BenchmarkRoIHeadConv, 2 cores): at 64 channels
// (18 RoIs a product instead of 74) the forward pass took 8.2 ms instead
// of 11.9, the input gradient 6.4 instead of 9.9 and the weight gradient
// 7.5 instead of 10.4; at 256 channels (4 RoIs instead of 18) all three
// stayed within 5%. Half of it was as fast at 64 channels and 15-40%
// slower at 256.
const sideBySideBudget = 1 << 19

// gatherImages copies channels [c0, c0+c) of images [i0, i1) of an
// n×ch×hw tensor into dst as a c×((i1-i0)·hw) matrix (sideBySide for a
// run of images, on the calling goroutine).
func gatherImages[T blas.Float](i0, i1, ch, hw, c0, c int, src, dst []T) {
	ld := (i1 - i0) * hw
	for r := 0; r < c; r++ {
		for i := i0; i < i1; i++ {
			copy(dst[r*ld+(i-i0)*hw:r*ld+(i-i0+1)*hw], src[(i*ch+c0+r)*hw:])
		}
	}
}

// gemmFunc is a GEMM with gemm's arguments: gemm itself (split across the
// workers) or gemmSerial.
type gemmFunc[T blas.Float] func(transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int)

// smallTasks runs task(t, mul) for t in [0, tasks): with fewer tasks than
// workers one after the other, each product split across the workers;
// otherwise the tasks are split across the workers, each with serial
// products. bufs are each task's scratch sizes, drawn once per worker.
func smallTasks[T blas.Float](tasks int, sizes []int, task func(t int, bufs [][]T, mul gemmFunc[T])) {
	draw := func() [][]T {
		bufs := make([][]T, len(sizes))
		for i, n := range sizes {
			bufs[i] = scratch[T](n)
		}
		return bufs
	}
	if tasks < runtime.GOMAXPROCS(0) {
		bufs := draw()
		for t := range tasks {
			task(t, bufs, gemm[T])
		}
		putScratch(bufs...)
		return
	}
	parallel(tasks, func(_, lo, hi int) {
		bufs := draw()
		for t := lo; t < hi; t++ {
			task(t, bufs, gemmSerial[T])
		}
		putScratch(bufs...)
	})
}

// mulInside is the GEMM for the bodies of a parallel loop over tasks:
// serial when every worker has a task of its own (a parallel GEMM there
// would start goroutines for pieces the busy helpers cannot take),
// parallel when the loop leaves workers idle.
func mulInside[T blas.Float](tasks int) gemmFunc[T] {
	if tasks >= runtime.GOMAXPROCS(0) {
		return gemmSerial[T]
	}
	return gemm[T]
}

// im2colBackwardInput computes gx = col2im(Wᵀ·gy) band by band, or for
// small images (several side by side, as the forward pass takes them) as
// one product over a run of images: one product of 49 columns per 7x7 RoI
// packs the weights for little work.
func im2colBackwardInput[T blas.Float](g convGeom, w, gy, gx []T) {
	rows, hwOut, hw := g.bandRows(), g.hout*g.wout, g.h*g.w
	if per := g.smallBatch(); per > 1 {
		batches := (g.n + per - 1) / per
		smallTasks(batches*g.groups, []int{g.coutG * per * hwOut, g.kkc * per * hwOut}, func(t int, bufs [][]T, mul gemmFunc[T]) {
			gys, col := bufs[0], bufs[1]
			b, gr := t/g.groups, t%g.groups
			i0 := b * per
			i1 := min(i0+per, g.n)
			ld := (i1 - i0) * hwOut
			gatherImages(i0, i1, g.cout, hwOut, gr*g.coutG, g.coutG, gy, gys)
			mul(true, false, g.kkc, ld, g.coutG, 1, w[gr*g.coutG*g.kkc:], g.kkc, gys, ld, 0, col, ld)
			for i := i0; i < i1; i++ {
				gxs := gx[(i*g.cin+gr*g.cinG)*hw : (i*g.cin+(gr+1)*g.cinG)*hw]
				clear(gxs)
				col2im(g, col[(i-i0)*hwOut:], ld, 0, g.hout, gxs)
			}
		})
		return
	}
	mul := mulInside[T](g.n * g.groups)
	parallel(g.n*g.groups, func(_, lo, hi int) {
		col := make([]T, g.kkc*rows*g.wout)
		for t := lo; t < hi; t++ {
			i, gr := t/g.groups, t%g.groups
			gxs := gx[(i*g.cin+gr*g.cinG)*hw : (i*g.cin+(gr+1)*g.cinG)*hw]
			gys := gy[(i*g.cout+gr*g.coutG)*hwOut:]
			clear(gxs)
			for oy0 := 0; oy0 < g.hout; oy0 += rows {
				oy1 := min(oy0+rows, g.hout)
				cols := (oy1 - oy0) * g.wout
				mul(true, false, g.kkc, cols, g.coutG, 1, w[gr*g.coutG*g.kkc:], g.kkc, gys[oy0*g.wout:], hwOut, 0, col, cols)
				col2im(g, col, cols, oy0, oy1, gxs)
			}
		}
	})
}

// im2colBackwardWeight computes gw = Σ_images gy·colᵀ band by band.
func im2colBackwardWeight[T blas.Float](g convGeom, x, gy, gw []T) {
	rows, hwOut := g.bandRows(), g.hout*g.wout
	if per := g.smallBatch(); per > 1 {
		// Σ over a run of small images is the shared dimension of one
		// product: gw += gY·colᵀ with the images side by side.
		batches := (g.n + per - 1) / per
		gys, cols := make([][]T, workersFor(batches)), make([][]T, workersFor(batches))
		mul := gemmSerial[T]
		sum := sumOverImages[T]
		if batches < runtime.GOMAXPROCS(0) {
			// Too few runs to share: one after the other, each product
			// split across the workers.
			mul = gemm[T]
			sum = func(n int, out []T, body func(worker, i int, acc []T, first bool)) {
				for b := range n {
					body(0, b, out, b == 0)
				}
			}
		}
		defer func() {
			for wk := range gys {
				if gys[wk] != nil {
					putScratch(gys[wk], cols[wk])
				}
			}
		}()
		sum(batches, gw, func(wk, b int, acc []T, first bool) {
			if gys[wk] == nil {
				gys[wk], cols[wk] = scratch[T](g.coutG*per*hwOut), scratch[T](g.kkc*per*hwOut)
			}
			i0 := b * per
			i1 := min(i0+per, g.n)
			ld := (i1 - i0) * hwOut
			beta := T(1)
			if first {
				beta = 0
			}
			for gr := 0; gr < g.groups; gr++ {
				gatherImages(i0, i1, g.cout, hwOut, gr*g.coutG, g.coutG, gy, gys[wk])
				for i := i0; i < i1; i++ {
					im2col(g, x[(i*g.cin+gr*g.cinG)*g.h*g.w:], 0, g.hout, cols[wk][(i-i0)*hwOut:], ld)
				}
				mul(false, true, g.coutG, g.kkc, ld, 1, gys[wk], ld, cols[wk], ld, beta, acc[gr*g.coutG*g.kkc:], g.kkc)
			}
		})
		return
	}
	mul := mulInside[T](g.n)
	cols := make([][]T, workersFor(g.n))
	sumOverImages(g.n, gw, func(wk, i int, acc []T, first bool) {
		if cols[wk] == nil {
			cols[wk] = make([]T, g.kkc*rows*g.wout)
		}
		col := cols[wk]
		for gr := 0; gr < g.groups; gr++ {
			xs := x[(i*g.cin+gr*g.cinG)*g.h*g.w:]
			gys := gy[(i*g.cout+gr*g.coutG)*hwOut:]
			for oy0 := 0; oy0 < g.hout; oy0 += rows {
				oy1 := min(oy0+rows, g.hout)
				n := (oy1 - oy0) * g.wout
				beta := T(1)
				if first && oy0 == 0 {
					beta = 0
				}
				im2col(g, xs, oy0, oy1, col, n)
				mul(false, true, g.coutG, g.kkc, n, 1, gys[oy0*g.wout:], hwOut, col, n, beta, acc[gr*g.coutG*g.kkc:], g.kkc)
			}
		}
	})
}
