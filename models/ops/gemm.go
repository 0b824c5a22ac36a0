package ops

import "github.com/razorgo/razor/models/ops/blas"

// gemm multiplies through the build's BLAS for float32 and through the
// pure-Go generic multiply for float64 (used only by gradient checks).
func gemm[T blas.Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if a32, ok := any(a).([]float32); ok {
		blas.Default().Sgemm(transA, transB, m, n, k, float32(alpha), a32, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
		return
	}
	blas.Generic(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemmSerial is gemm on the calling goroutine alone, for kernels that
// already run one multiply per worker (see blas.Gemm.SgemmSerial).
func gemmSerial[T blas.Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if a32, ok := any(a).([]float32); ok {
		blas.Default().SgemmSerial(transA, transB, m, n, k, float32(alpha), a32, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
		return
	}
	blas.GenericSerial(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// planar is the build's multiply where it reads and writes matrices laid
// out in planes in place (blas.Planar: the Go build, float32), else nil.
func planar[T blas.Float]() blas.Planar {
	if _, ok := any([]T(nil)).([]float32); !ok || noPlanes {
		return nil
	}
	p, _ := blas.Default().(blas.Planar)
	return p
}

// sgemmPlanes is p.SgemmPlanes with alpha 1 and beta 0 on float32 slices
// (T is float32 wherever planar returned a multiply).
func sgemmPlanes[T blas.Float](p blas.Planar, transA, transB bool, m, n, k int, a []T, la blas.Layout, b []T, lb blas.Layout, c []T, lc blas.Layout) {
	p.SgemmPlanes(transA, transB, m, n, k, 1, any(a).([]float32), la, any(b).([]float32), lb, 0, any(c).([]float32), lc)
}

// imagesLayout lays out channels of an n×ch×hw tensor as a matrix with a
// row per channel and the images' planes side by side (from the first
// image's first channel of the slice the layout is applied to).
func imagesLayout(ch, hw int) blas.Layout {
	return blas.Layout{LD: hw, Width: hw, Stride: ch * hw}
}

// noPlanes makes planar report none, so tests and benchmarks can run the
// paths the OpenBLAS build takes in the Go build too.
var noPlanes bool
