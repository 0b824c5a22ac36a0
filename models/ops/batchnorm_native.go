//go:build cgo && !purego && !amd64

package ops

// #cgo CFLAGS: -O3
// #include "batchnorm_native.h"
import "C"

// With cgo, float32 batch norm reductions run on the vectorized C loops in
// batchnorm_native.c. They need only a C compiler, not OpenBLAS, so they do
// not wait for the openblas tag; the purego tag keeps the Go loops.

func batchStatsNative(n, c, hw int, x []float32, mean, variance []float64) bool {
	parallel(c, func(_, lo, hi int) {
		C.bn_stats((*C.float)(&x[0]), C.int(n), C.int(c), C.int(hw), C.int(lo), C.int(hi),
			(*C.double)(&mean[0]), (*C.double)(&variance[0]))
	})
	return true
}

// cptr is the C pointer to s's first element, NULL for an empty s.
func cptr(s []float32) *C.float {
	if len(s) == 0 {
		return nil
	}
	return (*C.float)(&s[0])
}

func gradSumsNative(n, c, hw int, x, gy, y, mean []float32, sum, dot []float64) bool {
	parallel(c, func(_, lo, hi int) {
		C.bn_grad_sums(cptr(x), cptr(gy), cptr(y), cptr(mean), C.int(n), C.int(c), C.int(hw),
			C.int(lo), C.int(hi), (*C.double)(&sum[0]), (*C.double)(&dot[0]))
	})
	return true
}

func normalizeNative(n, c, hw int, x, scale, shift []float32, relu bool, y []float32) bool {
	r := C.int(0)
	if relu {
		r = 1
	}
	parallel(n*c, func(_, lo, hi int) {
		C.bn_normalize(cptr(x), C.int(c), C.int(hw), C.int(lo), C.int(hi), cptr(scale), cptr(shift), r, cptr(y))
	})
	return true
}

func inputGradNative(n, c, hw int, x, gy, y, k, a, b, gx []float32) bool {
	parallel(n*c, func(_, lo, hi int) {
		C.bn_input_grad(cptr(x), cptr(gy), cptr(y), C.int(c), C.int(hw), C.int(lo), C.int(hi), cptr(k), cptr(a), cptr(b), cptr(gx))
	})
	return true
}
