//go:build !openblas

package ops

// Without the openblas (cgo) build every depthwise convolution runs on the
// Go loops in depthwise.go; these report that no native kernel ran.

func depthwiseForwardNative(convGeom, []float32, []float32, []float32) bool        { return false }
func depthwiseBackwardInputNative(convGeom, []float32, []float32, []float32) bool  { return false }
func depthwiseBackwardWeightNative(convGeom, []float32, []float32, []float32) bool { return false }
