//go:build !purego

package simd

import "golang.org/x/sys/cpu"

// AVX2FMA says whether this CPU and OS run the AVX2 kernels (they use FMA
// too); x/sys/cpu reports AVX2 only when the OS saves the YMM state.
var AVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// AVX512 says whether this CPU and OS run the AVX-512 kernels (AVX-512F,
// with the OS saving the ZMM state).
var AVX512 = cpu.X86.HasAVX512F
