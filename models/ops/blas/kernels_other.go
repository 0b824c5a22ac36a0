//go:build !amd64 || purego

package blas

// supportedKernels is empty where no assembly kernel exists (every
// architecture but amd64, or a build with the purego tag): the portable Go
// multiply runs instead.
func supportedKernels() []*microKernel { return nil }

// No transposing pack loops: packing stays in Go.
var packT8, packT4 func(src *float32, ld, k int, dst *float32, stride int)
