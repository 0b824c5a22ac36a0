package blas

import "fmt"

// Layout says where a stored matrix's values lie. Row r's value at
// position q along the contiguous dimension is at r·LD + q, or, with Width
// set, at r·LD + ⌊q/Width⌋·Stride + q mod Width: the contiguous dimension
// is cut into planes of Width values whose starts are Stride apart.
//
// Channels c0.. of n images of an n×C×h×w tensor, as a matrix with a row
// per channel and the n images' pixels side by side along the columns, are
// Layout{LD: h·w, Width: h·w, Stride: C·h·w} from the first image's
// channel c0.
type Layout struct{ LD, Width, Stride int }

func (l Layout) operand(d []float32) operand {
	return operand{d: d, ld: l.LD, w: l.Width, s: l.Stride}
}

// Planar is implemented by the multiplies that read and write matrices laid
// out in planes in place (Go's; OpenBLAS's interface has no such layout).
type Planar interface {
	// SgemmPlanes is Gemm.Sgemm with each operand stored as its Layout
	// says: the stored A is op(A)'s transpose when transA is set, as in
	// Sgemm. Planes of C must not overlap.
	SgemmPlanes(transA, transB bool, m, n, k int, alpha float32, a []float32, la Layout, b []float32, lb Layout, beta float32, c []float32, lc Layout)
}

// SgemmPlanes implements Planar through the micro-kernel, which packs from
// and writes to the planes directly (Portable's where none runs).
func (Go) SgemmPlanes(transA, transB bool, m, n, k int, alpha float32, a []float32, la Layout, b []float32, lb Layout, beta float32, c []float32, lc Layout) {
	if goKernel != nil {
		kernelGemm{kernelFor(m, n)}.SgemmPlanes(transA, transB, m, n, k, alpha, a, la, b, lb, beta, c, lc)
		return
	}
	Portable{}.SgemmPlanes(transA, transB, m, n, k, alpha, a, la, b, lb, beta, c, lc)
}

// SgemmPlanes implements Planar by copying the operands into plain
// matrices around Generic.
func (Portable) SgemmPlanes(transA, transB bool, m, n, k int, alpha float32, a []float32, la Layout, b []float32, lb Layout, beta float32, c []float32, lc Layout) {
	checkPlanes(transA, transB, m, n, k, a, la, b, lb, c, lc)
	rowsA, colsA := storedDims(transA, m, k)
	rowsB, colsB := storedDims(transB, k, n)
	pa, pb, pc := flat(la.operand(a), rowsA, colsA), flat(lb.operand(b), rowsB, colsB), flat(lc.operand(c), m, n)
	Generic(transA, transB, m, n, k, alpha, pa, colsA, pb, colsB, beta, pc, n)
	out := lc.operand(c)
	segs := out.segments(0, n, nil)
	for i := 0; i < m; i++ {
		out.scatter(segs, i, pc[i*n:(i+1)*n], false)
	}
}

// flat copies the rows×cols matrix o into a plain one.
func flat(o operand, rows, cols int) []float32 {
	out := make([]float32, rows*cols)
	segs := o.segments(0, cols, nil)
	for r := 0; r < rows; r++ {
		o.gather(segs, r, out[r*cols:(r+1)*cols], 1)
	}
	return out
}

// checkPlanes panics with a description of the first inconsistent
// argument of SgemmPlanes.
func checkPlanes(transA, transB bool, m, n, k int, a []float32, la Layout, b []float32, lb Layout, c []float32, lc Layout) {
	checkDims(m, n, k)
	check := func(name string, d []float32, l Layout, rows, cols int) {
		if l.Width < 0 || (l.Width > 0 && l.Stride < l.Width) || (l.Width == 0 && l.Stride != 0) {
			panic(fmt.Sprintf("blas: %s's layout %+v: planes need Width > 0 and Stride >= Width, or both 0", name, l))
		}
		if rows == 0 || cols == 0 {
			return
		}
		if l.LD < 0 || (l.Width == 0 && l.LD < cols) {
			panic(fmt.Sprintf("blas: leading dimension of %s is %d, want at least %d", name, l.LD, max(1, cols)))
		}
		if last := l.operand(d).at(rows-1, cols-1); last >= len(d) {
			panic(fmt.Sprintf("blas: %s has %d elements, its %d×%d layout %+v reaches element %d", name, len(d), rows, cols, l, last))
		}
	}
	rowsA, colsA := storedDims(transA, m, k)
	rowsB, colsB := storedDims(transB, k, n)
	check("A", a, la, rowsA, colsA)
	check("B", b, lb, rowsB, colsB)
	check("C", c, lc, m, n)
}
