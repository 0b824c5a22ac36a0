//go:build !amd64 || purego

package simd

// AVX2FMA and AVX512 are false where no kernel is built: on architectures
// other than amd64 and with the purego tag.
const (
	AVX2FMA = false
	AVX512  = false
)
