//go:build !amd64 || purego

package blas

// supportedKernels is empty where no assembly kernel exists (every
// architecture but amd64, or a build with the purego tag): the portable Go
// multiply runs instead.
func supportedKernels() []*microKernel { return nil }
