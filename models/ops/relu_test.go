package ops

import (
	"math"
	"testing"
)

// TestReLUSpecialValues pins PyTorch 1.13's answers where a branchless
// kernel could differ: NaN and -0 pass unchanged, and the gradient is
// exactly zero wherever the output is at most zero, whatever arrives from
// above, and passes where the output is NaN (torch.threshold_backward), in
// both precisions and across the block boundary of the parallel split.
func TestReLUSpecialValues(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	n := elemBlock + 5
	x := make([]float32, n)
	gy := make([]float32, n)
	for i := range x {
		switch i % 5 {
		case 0:
			x[i] = nan
		case 1:
			x[i] = float32(math.Copysign(0, -1))
		case 2:
			x[i] = -3
		case 3:
			x[i] = 2.5
		case 4:
			x[i] = float32(math.Inf(-1))
		}
		gy[i] = []float32{inf, nan, -inf, 7, nan}[i%5]
	}
	y, gx := make([]float32, n), make([]float32, n)
	reluForward(x, y)
	reluBackward(y, gy, gx)
	x64, y64, gy64, gx64 := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range x {
		x64[i], gy64[i] = float64(x[i]), float64(gy[i])
	}
	reluForward(x64, y64)
	reluBackward(y64, gy64, gx64)
	for i := range x {
		wantY, wantG := float32(0), float32(0)
		switch i % 5 {
		case 0:
			wantY, wantG = nan, inf
		case 1:
			wantY = x[i]
		case 3:
			wantY, wantG = 2.5, 7
		}
		for _, got := range [][2]float64{{float64(y[i]), float64(gx[i])}, {y64[i], gx64[i]}} {
			sameY := got[0] == float64(wantY) && math.Signbit(got[0]) == math.Signbit(float64(wantY)) || math.IsNaN(got[0]) && math.IsNaN(float64(wantY))
			if !sameY || got[1] != float64(wantG) || math.Signbit(got[1]) {
				t.Fatalf("element %d: relu(%v) = %v with gradient %v (from %v), want %v and %v", i, x[i], got[0], got[1], gy[i], wantY, wantG)
			}
		}
	}
}
