//go:build !cgo || purego

package ops

// Without cgo (CGO_ENABLED=0), or with the purego tag, every depthwise
// convolution runs on the Go loops in depthwise.go; these report that no
// native kernel ran.

func depthwiseForwardNative(convGeom, []float32, []float32, []float32) bool        { return false }
func depthwiseBackwardInputNative(convGeom, []float32, []float32, []float32) bool  { return false }
func depthwiseBackwardWeightNative(convGeom, []float32, []float32, []float32) bool { return false }
