//go:build purego || (!cgo && !amd64)

package ops

// With the purego tag, or without cgo on an architecture with no assembly
// kernels, batch norm runs on the Go loops in batchnorm.go; these report
// that no native kernel ran.

func batchStatsNative(int, int, int, []float32, []float64, []float64) bool { return false }

func gradSumsNative(int, int, int, []float32, []float32, []float32, []float32, []float64, []float64) bool {
	return false
}

func normalizeNative(int, int, int, []float32, []float32, []float32, bool, []float32) bool {
	return false
}

func inputGradNative(int, int, int, []float32, []float32, []float32, []float32, []float32, []float32, []float32) bool {
	return false
}
