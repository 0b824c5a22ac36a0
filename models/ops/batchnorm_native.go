//go:build openblas

package ops

// #cgo CFLAGS: -O3
// #include "batchnorm_native.h"
import "C"

// The cgo build computes float32 batch norm reductions with the vectorized
// C loops in batchnorm_native.c.

func batchStatsNative(n, c, hw int, x []float32, mean, variance []float64) bool {
	parallel(c, func(_, lo, hi int) {
		C.bn_stats((*C.float)(&x[0]), C.int(n), C.int(c), C.int(hw), C.int(lo), C.int(hi),
			(*C.double)(&mean[0]), (*C.double)(&variance[0]))
	})
	return true
}

func gradSumsNative(n, c, hw int, x, gy, mean []float32, sum, dot []float64) bool {
	parallel(c, func(_, lo, hi int) {
		C.bn_grad_sums((*C.float)(&x[0]), (*C.float)(&gy[0]), (*C.float)(&mean[0]), C.int(n), C.int(c), C.int(hw),
			C.int(lo), C.int(hi), (*C.double)(&sum[0]), (*C.double)(&dot[0]))
	})
	return true
}
