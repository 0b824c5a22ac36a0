// Package blas is the one matrix-multiply interface the tensor kernels call.
//
// Every implementation computes, on row-major matrices,
//
//	C = alpha * op(A) * op(B) + beta * C
//
// where op(X) is X or its transpose, op(A) is m×k, op(B) is k×n and C is m×n.
// lda, ldb and ldc are the row strides (leading dimensions) of the stored
// A, B and C. As in BLAS, C is not read when beta is 0, so stale NaNs in an
// output buffer never leak into a result.
//
// A plain build uses Go: on amd64 a packed, cache-blocked multiply around
// an assembly micro-kernel (AVX-512 or AVX2+FMA, picked at start-up and per
// product's shape), elsewhere, or with the purego tag, portable Go loops.
// Building with the tag `openblas` links Debian's libopenblas through cgo
// instead (see Default). Both split one large multiply across goroutines
// themselves, so callers that already run several multiplies in parallel
// stay within GOMAXPROCS threads of real work.
//
// Of razor it imports only internal/par and models/ops/internal/simd;
// models/ops is its one user.
package blas

import "fmt"

// Float is the set of element types the generic pure-Go multiply accepts.
// float64 exists so kernels can be checked against finite differences in
// double precision; models run in float32.
type Float interface {
	~float32 | ~float64
}

// Gemm multiplies single-precision row-major matrices.
type Gemm interface {
	// Sgemm computes C = alpha*op(A)*op(B) + beta*C as described in the
	// package documentation. It panics when a dimension, leading dimension or
	// slice length is inconsistent, because that is a programming error in
	// the calling kernel, never a user input.
	Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	// SgemmSerial is Sgemm on the calling goroutine alone, never split: for
	// kernels that already run one multiply per worker, where a split
	// would start goroutines beyond GOMAXPROCS and halve each product.
	SgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	// Name says which implementation this is, for benchmark reports.
	Name() string
}

// checkArgs panics with a description of the first inconsistent argument.
func checkArgs(transA, transB bool, m, n, k int, lenA, lda, lenB, ldb, lenC, ldc int) {
	checkDims(m, n, k)
	rowsA, colsA := storedDims(transA, m, k)
	rowsB, colsB := storedDims(transB, k, n)
	check := func(name string, rows, cols, ld, length int) {
		if ld < max(1, cols) {
			panic(fmt.Sprintf("blas: leading dimension of %s is %d, want at least %d", name, ld, max(1, cols)))
		}
		if rows > 0 && cols > 0 && length < (rows-1)*ld+cols {
			panic(fmt.Sprintf("blas: %s has %d elements, a %d×%d matrix with stride %d needs %d", name, length, rows, cols, ld, (rows-1)*ld+cols))
		}
	}
	check("A", rowsA, colsA, lda, lenA)
	check("B", rowsB, colsB, ldb, lenB)
	check("C", m, n, ldc, lenC)
}

// checkDims panics on a negative dimension.
func checkDims(m, n, k int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("blas: negative dimension m=%d n=%d k=%d", m, n, k))
	}
}

// storedDims are the stored rows and columns of a rows×cols op(X): X's
// own when trans is unset, else the transpose's.
func storedDims(trans bool, rows, cols int) (int, int) {
	if trans {
		return cols, rows
	}
	return rows, cols
}
