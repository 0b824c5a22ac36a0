//go:build !openblas

package blas

// Default returns the implementation this build multiplies with: pure Go,
// because the binary was built without the `openblas` tag.
func Default() Gemm { return Go{} }
