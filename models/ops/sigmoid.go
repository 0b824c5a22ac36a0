package ops

import (
	"fmt"
	"math"

	"github.com/razorgo/razor/models/ops/blas"
	"gorgonia.org/gorgonia"
)

// Sigmoid returns 1/(1+exp(-x)) elementwise for a float32 tensor of any
// shape, like torch.sigmoid (an RPN's objectness scores, for example). The
// gradient is gy·(1-y)·y, computed from the output as PyTorch does.
func Sigmoid(x *gorgonia.Node) (*gorgonia.Node, error) {
	if x == nil || x.Dims() == 0 {
		return nil, fmt.Errorf("Sigmoid: input must be a tensor")
	}
	if err := checkNode("Sigmoid", "input", x, x.Dims()); err != nil {
		return nil, err
	}
	s := x.Shape().Clone()
	return apply(&kernelOp{
		name:    fmt.Sprintf("Sigmoid%v", s),
		in:      shapes(x),
		out:     s,
		kernel:  func(out []float32, in [][]float32) { sigmoidForward(in[0], out) },
		diffWRT: []bool{true},
		symDiff: func(_ gorgonia.Nodes, y, grad *gorgonia.Node) (gorgonia.Nodes, error) {
			gx, err := apply(&kernelOp{
				name:   fmt.Sprintf("SigmoidGrad%v", s),
				in:     shapes(y, grad),
				out:    s,
				kernel: func(out []float32, in [][]float32) { sigmoidBackward(in[0], in[1], out) },
			}, y, grad)
			return gorgonia.Nodes{gx}, err
		},
	}, x)
}

// sigmoidForward computes in float64 and rounds once, so a float32 result
// is the correctly rounded sigmoid; exp(-x) overflowing to +Inf for very
// negative x gives exactly 0, as in PyTorch.
func sigmoidForward[T blas.Float](x, y []T) {
	parallel(len(x)/elemBlock+1, func(_, lo, hi int) {
		lo, hi = lo*elemBlock, min(hi*elemBlock, len(x))
		for i, v := range x[lo:hi] {
			y[lo+i] = T(1 / (1 + math.Exp(-float64(v))))
		}
	})
}

func sigmoidBackward[T blas.Float](y, gy, gx []T) {
	parallel(len(y)/elemBlock+1, func(_, lo, hi int) {
		lo, hi = lo*elemBlock, min(hi*elemBlock, len(y))
		for i, v := range y[lo:hi] {
			gx[lo+i] = gy[lo+i] * (1 - v) * v
		}
	})
}
