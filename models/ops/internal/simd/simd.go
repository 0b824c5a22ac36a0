// Package simd holds razor's amd64 assembly kernels: the GEMM
// micro-kernels package blas packs around, and the depthwise-convolution
// kernels of package ops. They are generated with avo by the asmgen module
// (models/ops/internal/asmgen; its own module, so avo stays out of razor's
// go.mod) and committed; their Go declarations say what each computes.
//
// The kernels live apart from their callers because Go refuses assembly in
// a package that uses cgo, and blas (with -tags openblas) and ops (its C
// batch-norm kernels) do. Callers check AVX2FMA or AVX512 before calling a
// kernel; both are false on other architectures and with the purego tag,
// where no kernel is built.
package simd

//go:generate sh -c "cd ../asmgen && go run ./gemm -pkg simd -out ../simd/gemm_amd64.s -stubs ../simd/gemm_amd64.go"
//go:generate sh -c "cd ../asmgen && go run ./depthwise -pkg simd -out ../simd/depthwise_amd64.s -stubs ../simd/depthwise_amd64.go"
//go:generate sh -c "cd ../asmgen && go run ./batchnorm -pkg simd -out ../simd/batchnorm_amd64.s -stubs ../simd/batchnorm_amd64.go"
