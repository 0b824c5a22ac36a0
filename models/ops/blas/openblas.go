//go:build openblas

package blas

// #cgo LDFLAGS: -lopenblas
// #include <cblas.h>
import "C"

import "unsafe"

// OpenBLAS multiplies through Debian's libopenblas (package libopenblas-dev).
type OpenBLAS struct{}

// Default returns the implementation this build multiplies with: OpenBLAS,
// because the binary was built with the `openblas` tag.
func Default() Gemm { return OpenBLAS{} }

// The kernels run independent multiplies on several goroutines, and split
// big single multiplies themselves; OpenBLAS threads of its own would
// oversubscribe the cores, so each call stays on its calling thread.
func init() { C.openblas_set_num_threads(1) }

// Name reports "openblas".
func (OpenBLAS) Name() string { return "openblas" }

// Sgemm implements Gemm with cblas_sgemm.
func (OpenBLAS) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkArgs(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if m == 0 || n == 0 {
		return
	}
	split(transA, transB, m, n, k, lda, ldb, ldc, func(m, n, aOff, bOff, cOff int) {
		sgemm(transA, transB, m, n, k, alpha, a[aOff:], lda, b[bOff:], ldb, beta, c[cOff:], ldc)
	})
}

// SgemmSerial implements Gemm with one cblas_sgemm call.
func (OpenBLAS) SgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkArgs(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if m == 0 || n == 0 {
		return
	}
	sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	C.cblas_sgemm(C.CblasRowMajor, trans(transA), trans(transB),
		C.blasint(m), C.blasint(n), C.blasint(k),
		C.float(alpha), ptr(a), C.blasint(lda),
		ptr(b), C.blasint(ldb),
		C.float(beta), ptr(c), C.blasint(ldc))
}

func trans(t bool) C.enum_CBLAS_TRANSPOSE {
	if t {
		return C.CblasTrans
	}
	return C.CblasNoTrans
}

// ptr points at s's first element, or at its backing array when s is
// empty (k == 0 leaves A and B unread, and they may then be empty).
func ptr(s []float32) *C.float {
	return (*C.float)(unsafe.Pointer(unsafe.SliceData(s)))
}
