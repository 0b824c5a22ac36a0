package ops

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// bnRun runs the batch norm kernels in float64 the way the op does: batch
// statistics (batch) or the given running statistics.
func bnRun(n, c, hw int, x, gamma, beta, runMean, runVar []float64, batch bool, eps float64) (y, mean, invStd []float64) {
	mean, invStd = make([]float64, c), make([]float64, c)
	if batch {
		variance := make([]float64, c)
		batchStats(n, c, hw, x, mean, variance)
		for ch := range invStd {
			invStd[ch] = 1 / math.Sqrt(variance[ch]+eps)
		}
	} else {
		copy(mean, runMean)
		for ch := range invStd {
			invStd[ch] = 1 / math.Sqrt(runVar[ch]+eps)
		}
	}
	y = make([]float64, len(x))
	bnNormalize(n, c, hw, x, mean, invStd, gamma, beta, false, y)
	return y, mean, invStd
}

func TestBatchStatsTwoPassDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	n, c, hw := 3, 4, 10
	x := randSlice(rng, n*c*hw)
	for i := range x {
		x[i] = 100 + 3*x[i] // a large mean, to expose cancellation
	}
	mean, variance := make([]float64, c), make([]float64, c)
	batchStats(n, c, hw, x, mean, variance)
	for ch := 0; ch < c; ch++ {
		var s float64
		for i := 0; i < n; i++ {
			for j := 0; j < hw; j++ {
				s += x[(i*c+ch)*hw+j]
			}
		}
		mu := s / float64(n*hw)
		var v float64
		for i := 0; i < n; i++ {
			for j := 0; j < hw; j++ {
				d := x[(i*c+ch)*hw+j] - mu
				v += d * d
			}
		}
		v /= float64(n * hw)
		closeTo(t, "mean", mean[ch:ch+1], []float64{mu}, 1e-13)
		closeTo(t, "variance", variance[ch:ch+1], []float64{v}, 1e-10)
	}
}

func TestBatchNormGradientsMatchFiniteDifferences(t *testing.T) {
	for _, relu := range []bool{false, true} {
		for _, batch := range []bool{true, false} {
			testBatchNormGradients(t, batch, relu)
		}
	}
}

// testBatchNormGradients checks the float64 kernels' gradients, of
// BatchNorm2d or of the fused BatchNorm2d + ReLU, against central
// differences.
func testBatchNormGradients(t *testing.T, batch, relu bool) {
	{
		rng := rand.New(rand.NewPCG(6, 6))
		n, c, hw := 2, 3, 5
		x, gamma, beta := randSlice(rng, n*c*hw), randSlice(rng, c), randSlice(rng, c)
		runMean, runVar := randSlice(rng, c), randSlice(rng, c)
		for i := range runVar {
			runVar[i] = 0.5 + math.Abs(runVar[i])
		}
		r := randSlice(rng, len(x))
		const eps = 1e-5
		loss := func() float64 {
			y, _, _ := bnRun(n, c, hw, x, gamma, beta, runMean, runVar, batch, eps)
			if relu {
				for i := range y {
					y[i] = max(y[i], 0)
				}
			}
			return dot(y, r)
		}
		y, mean, invStd := bnRun(n, c, hw, x, gamma, beta, runMean, runVar, batch, eps)
		var out []float64
		if relu {
			out = make([]float64, len(y))
			bnNormalize(n, c, hw, x, mean, invStd, gamma, beta, true, out)
			clipped := 0
			for i := range y {
				if want := max(y[i], 0); out[i] != want {
					t.Fatalf("fused ReLU output %d = %g, want %g", i, out[i], want)
				}
				if out[i] == 0 {
					clipped++
				}
			}
			if clipped == 0 || clipped == len(out) {
				t.Fatalf("%d of %d outputs clipped: the mask is not exercised", clipped, len(out))
			}
		}
		dgamma, dbeta, gx := make([]float64, c), make([]float64, c), make([]float64, len(x))
		bnParamGrad(n, c, hw, x, r, out, mean, invStd, dgamma, dbeta)
		bnInputGrad(n, c, hw, x, r, out, gamma, mean, invStd, dgamma, dbeta, batch, gx)
		name := map[bool]string{true: "batch", false: "running"}[batch]
		if relu {
			name += "+relu"
		}
		closeTo(t, name+" dx", gx, numericGrad(x, loss), gradTol)
		closeTo(t, name+" dgamma", dgamma, numericGrad(gamma, loss), gradTol)
		closeTo(t, name+" dbeta", dbeta, numericGrad(beta, loss), gradTol)
	}
}

// runBN builds and runs BatchNorm2d on x in a fresh graph.
func runBN(t *testing.T, x []float32, shape []int, st *BatchNormState, mode BatchNormMode) []float32 {
	t.Helper()
	g := gorgonia.NewGraph()
	c := shape[1]
	ones := make([]float32, c)
	for i := range ones {
		ones[i] = 1
	}
	y := must(t)(BatchNorm2d(newInput(g, "x", shape, x), newInput(g, "gamma", tensor.Shape{c}, ones),
		newInput(g, "beta", tensor.Shape{c}, nil), st, mode))
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	return valueF32(t, y)
}

func TestRecalibrationWeightsBatchesBySize(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	const c, hw = 2, 3
	st := NewBatchNormState(c)
	st.NumBatchesTracked = 5
	if st.FinishRecalibration() {
		t.Fatal("FinishRecalibration reported success with no batch")
	}
	var sumMean, sumVar [c]float64
	var samples float64
	for _, n := range []int{1, 3, 2} {
		x := randF32(rng, n*c*hw)
		for i := range x {
			x[i] = x[i]*float32(n) + float32(n)
		}
		runBN(t, x, []int{n, c, 1, hw}, st, BNRecalibrate)
		mean, variance := make([]float64, c), make([]float64, c)
		batchStats(n, c, hw, toF64(x), mean, variance)
		m := float64(n * hw)
		for ch := 0; ch < c; ch++ {
			sumMean[ch] += float64(n) * mean[ch]
			sumVar[ch] += float64(n) * variance[ch] * m / (m - 1)
		}
		samples += float64(n)
	}
	if !st.FinishRecalibration() {
		t.Fatal("FinishRecalibration found no batches")
	}
	for ch := 0; ch < c; ch++ {
		closeTo(t, "running mean", []float64{float64(st.RunningMean.Float32s()[ch])}, []float64{sumMean[ch] / samples}, 1e-6)
		closeTo(t, "running var", []float64{float64(st.RunningVar.Float32s()[ch])}, []float64{sumVar[ch] / samples}, 1e-6)
	}
	if st.NumBatchesTracked != 8 {
		t.Errorf("NumBatchesTracked = %d, want 5 + 3 batches", st.NumBatchesTracked)
	}
	if st.FinishRecalibration() {
		t.Error("a second FinishRecalibration found batches again")
	}
}

func TestDiscardAndResetRunningStats(t *testing.T) {
	st := NewBatchNormState(2)
	runBN(t, []float32{1, 2, 3, 4, 5, 6, 7, 9}, []int{2, 2, 1, 2}, st, BNTrain)
	if st.NumBatchesTracked != 1 || st.RunningMean.Float32s()[0] == 0 {
		t.Fatalf("a training run left state %v %v %d", st.RunningMean, st.RunningVar, st.NumBatchesTracked)
	}
	runBN(t, []float32{1, 2, 3, 4, 5, 6, 7, 9}, []int{2, 2, 1, 2}, st, BNRecalibrate)
	st.DiscardRecalibration()
	if st.FinishRecalibration() {
		t.Error("FinishRecalibration found batches after DiscardRecalibration")
	}
	st.ResetRunningStats()
	if st.NumBatchesTracked != 0 || st.RunningMean.Float32s()[1] != 0 || st.RunningVar.Float32s()[1] != 1 {
		t.Errorf("ResetRunningStats left %v %v %d", st.RunningMean, st.RunningVar, st.NumBatchesTracked)
	}
}

func TestEvalModeUsesRunningStats(t *testing.T) {
	st := NewBatchNormState(1)
	st.RunningMean.Float32s()[0] = 2
	st.RunningVar.Float32s()[0] = 4 - 1e-5 // so sqrt(var + eps) = 2
	y := runBN(t, []float32{2, 4, 6}, []int{1, 1, 1, 3}, st, BNEval)
	closeTo(t, "y", toF64(y), []float64{0, 1, 2}, 1e-6)
	if st.NumBatchesTracked != 0 {
		t.Errorf("eval mode counted a batch")
	}
}

// TestBatchNormFloat32MatchesFloat64 checks the float32 kernels (assembly
// on amd64, C with cgo elsewhere) against the float64 Go kernels: statistics,
// normalization (with and without the fused ReLU) and both backward passes
// (batch and running statistics, masked and not). The shapes cover planes
// long enough for whole vectors plus a remainder, and small planes, summed
// across images, with more than one flush of the float sums and more than
// one block of channels.
func TestBatchNormFloat32MatchesFloat64(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 12))
	for _, s := range []struct{ n, c, hw int }{{3, 5, 37}, {35, 7, 4}, {2, 700, 9}, {4, 3, 1}} {
		n, c, hw := s.n, s.c, s.hw
		x, gy := randSlice(rng, n*c*hw), randSlice(rng, n*c*hw)
		gamma, beta := randSlice(rng, c), randSlice(rng, c)
		for i := range x {
			x[i] = 3 + 2*x[i]
		}
		mean, variance := make([]float64, c), make([]float64, c)
		batchStats(n, c, hw, x, mean, variance)
		mean32, variance32 := make([]float64, c), make([]float64, c)
		batchStats(n, c, hw, toF32(x), mean32, variance32)
		closeTo(t, "mean(float32)", mean32, mean, 1e-6)
		closeTo(t, "variance(float32)", variance32, variance, 1e-6)

		invStd := make([]float64, c)
		for ch := range invStd {
			invStd[ch] = 1 / math.Sqrt(variance[ch]+1e-5)
		}
		for _, relu := range []bool{false, true} {
			y := make([]float64, len(x))
			bnNormalize(n, c, hw, x, mean, invStd, gamma, beta, relu, y)
			y32 := make([]float32, len(x))
			bnNormalize(n, c, hw, toF32(x), toF32(mean), toF32(invStd), toF32(gamma), toF32(beta), relu, y32)
			closeTo(t, "y(float32)", toF64(y32), y, 1e-5)
			var mask []float64
			var mask32 []float32
			if relu {
				mask, mask32 = y, toF32(y) // the float64 mask, so both sides clip the same values
			}
			dgamma, dbeta := make([]float64, c), make([]float64, c)
			bnParamGrad(n, c, hw, x, gy, mask, mean, invStd, dgamma, dbeta)
			dgamma32, dbeta32 := make([]float32, c), make([]float32, c)
			bnParamGrad(n, c, hw, toF32(x), toF32(gy), mask32, toF32(mean), toF32(invStd), dgamma32, dbeta32)
			closeTo(t, "dgamma(float32)", toF64(dgamma32), dgamma, 1e-5)
			closeTo(t, "dbeta(float32)", toF64(dbeta32), dbeta, 1e-5)
			for _, batch := range []bool{true, false} {
				gx := make([]float64, len(x))
				bnInputGrad(n, c, hw, x, gy, mask, gamma, mean, invStd, dgamma, dbeta, batch, gx)
				gx32 := make([]float32, len(x))
				bnInputGrad(n, c, hw, toF32(x), toF32(gy), mask32, toF32(gamma), toF32(mean), toF32(invStd), toF32(dgamma), toF32(dbeta), batch, gx32)
				closeTo(t, "dx(float32)", toF64(gx32), gx, 1e-4)
			}
		}
	}
}

// TestBatchNormReLUMatchesTwoOps checks the fused op against BatchNorm2d
// followed by ReLU bit for bit, outputs and all three gradients: in
// training mode on random data, and in evaluation mode on NaN, ±Inf and
// inputs whose output is exactly zero (where the gradient must stop, as
// PyTorch's does).
func TestBatchNormReLUMatchesTwoOps(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 13))
	shape := tensor.Shape{3, 4, 5, 5}
	special := randF32(rng, shape.TotalSize())
	for i, v := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, 0, 0} {
		special[7*i] = v
	}
	for _, tc := range []struct {
		name string
		mode BatchNormMode
		x    []float32
	}{
		{"train", BNTrain, randF32(rng, shape.TotalSize())},
		{"eval", BNEval, special},
	} {
		gamma, beta, gy := randF32(rng, shape[1]), make([]float32, shape[1]), randF32(rng, shape.TotalSize())
		run := func(fused bool) [][]float32 {
			st := NewBatchNormState(shape[1]) // running mean 0: x = 0 gives y = beta = 0 in eval
			g := gorgonia.NewGraph()
			x := newInput(g, "x", shape, append([]float32(nil), tc.x...))
			gn := newInput(g, "gamma", tensor.Shape{shape[1]}, append([]float32(nil), gamma...))
			bn := newInput(g, "beta", tensor.Shape{shape[1]}, append([]float32(nil), beta...))
			var y *gorgonia.Node
			if fused {
				y = must(t)(BatchNorm2dReLU(x, gn, bn, st, tc.mode))
			} else {
				y = must(t)(ReLU(must(t)(BatchNorm2d(x, gn, bn, st, tc.mode))))
			}
			grads := gradRun(t, must(t)(weightedSum(y, gy)), x, gn, bn)
			return append([][]float32{valueF32(t, y), st.RunningMean.Float32s(), st.RunningVar.Float32s()}, grads...)
		}
		want, got := run(false), run(true)
		zeros := 0
		for _, v := range want[0] {
			if v == 0 {
				zeros++
			}
		}
		if zeros == 0 {
			t.Fatalf("%s: no output is clipped", tc.name)
		}
		for i, what := range []string{"output", "running mean", "running var", "dx", "dgamma", "dbeta"} {
			for j := range want[i] {
				if math.Float32bits(got[i][j]) != math.Float32bits(want[i][j]) &&
					!(math.IsNaN(float64(got[i][j])) && math.IsNaN(float64(want[i][j]))) {
					t.Errorf("%s %s[%d] = %g, BatchNorm2d then ReLU gives %g", tc.name, what, j, got[i][j], want[i][j])
					break
				}
			}
		}
	}
}
