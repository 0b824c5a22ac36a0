//go:build !purego

package blas

import "github.com/razorgo/razor/models/ops/internal/simd"

var (
	avx512Kernel = microKernel{name: "avx512", mr: 12, nr: 32, lanes: 16,
		run: simd.Sgemm12x32AVX512, set: simd.Sgemm12x32AVX512Set,
		runStrided: simd.Sgemm12x32AVX512Strided, setStrided: simd.Sgemm12x32AVX512StridedSet}
	avx2Kernel = microKernel{name: "avx2", mr: 6, nr: 16, lanes: 8,
		run: simd.Sgemm6x16AVX2, set: simd.Sgemm6x16AVX2Set,
		runStrided: simd.Sgemm6x16AVX2Strided, setStrided: simd.Sgemm6x16AVX2StridedSet}
)

// supportedKernels lists the micro-kernels this CPU and OS can run, the
// fastest first.
func supportedKernels() []*microKernel {
	var ks []*microKernel
	if simd.AVX512 {
		ks = append(ks, &avx512Kernel)
	}
	if simd.AVX2FMA {
		ks = append(ks, &avx2Kernel)
	}
	return ks
}

// The transposing pack loops, used wherever a micro-kernel runs.
var (
	packT8 = simd.PackT8
	packT4 = simd.PackT4
)
