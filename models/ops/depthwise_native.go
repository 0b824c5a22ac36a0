//go:build cgo && !purego && !amd64

package ops

// #cgo CFLAGS: -O3
// #include "depthwise_native.h"
import "C"

import "fmt"

// With cgo, float32 depthwise convolutions run on the C kernels in
// depthwise_native.c; float64 (gradient checks) stays on the Go loops. They
// need only a C compiler, not OpenBLAS, so they do not wait for the openblas
// tag; the purego tag keeps the Go loops.

// nativeLanes is how many channels one C task handles together.
const nativeLanes = 8

func nativeGeom(g convGeom) C.dw_geom {
	return C.dw_geom{c: C.int(g.cin), h: C.int(g.h), w: C.int(g.w), kh: C.int(g.kh), kw: C.int(g.kw),
		sh: C.int(g.sh), sw: C.int(g.sw), ph: C.int(g.ph), pw: C.int(g.pw), dh: C.int(g.dh), dw: C.int(g.dw),
		hout: C.int(g.hout), wout: C.int(g.wout)}
}

func nativeBlocks(g convGeom) int { return (g.cin + nativeLanes - 1) / nativeLanes }

// nativeRun splits tasks across workers, each calling one C function over
// its range; a C allocation failure panics, as a Go allocation failure
// would.
func nativeRun(tasks int, call func(lo, hi int) C.int) {
	parallel(tasks, func(_, lo, hi int) {
		if lo < hi && call(lo, hi) != 0 {
			panic(fmt.Sprintf("ops: depthwise kernel could not allocate scratch memory for tasks [%d, %d)", lo, hi))
		}
	})
}

func depthwiseForwardNative(g convGeom, x, w, y []float32) bool {
	cg := nativeGeom(g)
	nativeRun(g.n*nativeBlocks(g), func(lo, hi int) C.int {
		return C.dw_forward((*C.float)(&x[0]), (*C.float)(&w[0]), (*C.float)(&y[0]), cg, C.int(lo), C.int(hi))
	})
	return true
}

func depthwiseBackwardInputNative(g convGeom, w, gy, gx []float32) bool {
	cg := nativeGeom(g)
	nativeRun(g.n*nativeBlocks(g), func(lo, hi int) C.int {
		return C.dw_backward_input((*C.float)(&w[0]), (*C.float)(&gy[0]), (*C.float)(&gx[0]), cg, C.int(lo), C.int(hi))
	})
	return true
}

func depthwiseBackwardWeightNative(g convGeom, x, gy, gw []float32) bool {
	cg := nativeGeom(g)
	nativeRun(nativeBlocks(g), func(lo, hi int) C.int {
		return C.dw_backward_weight((*C.float)(&x[0]), (*C.float)(&gy[0]), (*C.float)(&gw[0]), cg, C.int(g.n), C.int(lo), C.int(hi))
	})
	return true
}
