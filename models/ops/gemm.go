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
