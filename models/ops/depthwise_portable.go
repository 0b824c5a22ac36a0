//go:build purego || (!cgo && !amd64)

package ops

// With the purego tag, or without cgo on an architecture with no assembly
// kernels, every depthwise convolution runs on the Go loops in
// depthwise.go; these report that no native kernel ran.

func depthwiseForwardNative(convGeom, []float32, []float32, []float32) bool        { return false }
func depthwiseBackwardInputNative(convGeom, []float32, []float32, []float32) bool  { return false }
func depthwiseBackwardWeightNative(convGeom, []float32, []float32, []float32) bool { return false }
