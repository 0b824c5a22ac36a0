package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// BenchmarkOps times the hot kernels at ShuffleNetV2 shapes (batch 32):
// stage widths 64, 160, 320 and 640 at 56x56, 28x28, 14x14 and 7x7. The
// 1x1 convolution maps C/2 to C/2 channels, as inside a ShuffleBlock
// branch; depthwise convolutions (stride 1, padding k/2) and batch norm
// (training mode) run on all C channels. "fwd" is the forward pass; "bwd"
// computes every gradient (input and weight, or input, gamma and beta).
// scripts/bench/ops_torch.py times the same cases in PyTorch and prints
// the ratios; benchmark names are its keys.
func BenchmarkOps(b *testing.B) {
	const n = 32
	for _, s := range []struct{ c, hw int }{{64, 56}, {160, 28}, {320, 14}, {640, 7}} {
		half := s.c / 2
		benchConv(b, fmt.Sprintf("conv1x1/%dx%dx%d", half, s.hw, s.hw), n, half, s.hw, half, 1, 1)
		for _, k := range []int{3, 5, 7} {
			benchConv(b, fmt.Sprintf("dw%d/%dx%dx%d", k, s.c, s.hw, s.hw), n, s.c, s.hw, s.c, k, s.c)
		}
		benchBatchNorm(b, fmt.Sprintf("bn/%dx%dx%d", s.c, s.hw, s.hw), n, s.c, s.hw)
	}
}

func benchData(rng *rand.Rand, size int) []float32 {
	s := make([]float32, size)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

func benchConv(b *testing.B, name string, n, cin, hw, cout, k, groups int) {
	g, err := newConvGeom([]int{n, cin, hw, hw}, []int{cout, cin / groups, k, k},
		Conv2dParams{Padding: [2]int{k / 2, k / 2}, Groups: groups})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	x := benchData(rng, g.xShape().TotalSize())
	w := benchData(rng, g.wShape().TotalSize())
	gy := benchData(rng, g.yShape().TotalSize())
	y := make([]float32, len(gy))
	gx, gw := make([]float32, len(x)), make([]float32, len(w))
	b.Run(name+"/fwd", func(b *testing.B) {
		for b.Loop() {
			convForward(g, x, w, nil, y)
		}
	})
	b.Run(name+"/bwd", func(b *testing.B) {
		for b.Loop() {
			convBackwardInput(g, w, gy, gx)
			convBackwardWeight(g, x, gy, gw)
		}
	})
}

func benchBatchNorm(b *testing.B, name string, n, c, hw int) {
	rng := rand.New(rand.NewPCG(3, 4))
	size := n * c * hw * hw
	x, gy := benchData(rng, size), benchData(rng, size)
	y, gx := make([]float32, size), make([]float32, size)
	gamma, beta := benchData(rng, c), benchData(rng, c)
	mean32, invStd := make([]float32, c), make([]float32, c)
	dgamma, dbeta := make([]float32, c), make([]float32, c)
	// The forward pass is what batchNormOp does in training mode: batch
	// statistics, then normalization.
	forward := func() {
		mean, variance := make([]float64, c), make([]float64, c)
		batchStats(n, c, hw*hw, x, mean, variance)
		for ch := range mean {
			mean32[ch] = float32(mean[ch])
			invStd[ch] = float32(1 / math.Sqrt(variance[ch]+1e-5))
		}
		bnNormalize(n, c, hw*hw, x, mean32, invStd, gamma, beta, y)
	}
	forward()
	b.Run(name+"/fwd", func(b *testing.B) {
		for b.Loop() {
			forward()
		}
	})
	b.Run(name+"/bwd", func(b *testing.B) {
		for b.Loop() {
			bnParamGrad(n, c, hw*hw, x, gy, mean32, invStd, dgamma, dbeta)
			bnInputGrad(n, c, hw*hw, x, gy, gamma, mean32, invStd, dgamma, dbeta, true, gx)
		}
	})
}
