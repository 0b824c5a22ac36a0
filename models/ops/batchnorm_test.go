package ops

import (
	"math"
	"math/rand/v2"
	"testing"
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
	bnNormalize(n, c, hw, x, mean, invStd, gamma, beta, y)
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
	for _, batch := range []bool{true, false} {
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
			return dot(y, r)
		}
		_, mean, invStd := bnRun(n, c, hw, x, gamma, beta, runMean, runVar, batch, eps)
		dgamma, dbeta, gx := make([]float64, c), make([]float64, c), make([]float64, len(x))
		bnParamGrad(n, c, hw, x, r, mean, invStd, dgamma, dbeta)
		bnInputGrad(n, c, hw, x, r, gamma, mean, invStd, dgamma, dbeta, batch, gx)
		name := map[bool]string{true: "batch", false: "running"}[batch]
		closeTo(t, name+" dx", gx, numericGrad(x, loss), gradTol)
		closeTo(t, name+" dgamma", dgamma, numericGrad(gamma, loss), gradTol)
		closeTo(t, name+" dbeta", dbeta, numericGrad(beta, loss), gradTol)
	}
}
