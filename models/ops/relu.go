package ops

import (
	"fmt"

	"github.com/razorgo/razor/models/ops/blas"
	"gorgonia.org/gorgonia"
)

// ReLU returns max(x, 0) elementwise for a float32 tensor of any shape
// (NaN stays NaN, as in PyTorch). The gradient passes where the output is
// positive.
func ReLU(x *gorgonia.Node) (*gorgonia.Node, error) {
	if x == nil || x.Dims() == 0 {
		return nil, fmt.Errorf("ReLU: input must be a tensor")
	}
	if err := checkNode("ReLU", "input", x, x.Dims()); err != nil {
		return nil, err
	}
	s := x.Shape().Clone()
	return apply(&kernelOp{
		name:    fmt.Sprintf("ReLU%v", s),
		in:      shapes(x),
		out:     s,
		kernel:  func(out []float32, in [][]float32) { reluForward(in[0], out) },
		diffWRT: []bool{true},
		symDiff: func(_ gorgonia.Nodes, y, grad *gorgonia.Node) (gorgonia.Nodes, error) {
			gx, err := apply(&kernelOp{
				name:   fmt.Sprintf("ReLUGrad%v", s),
				in:     shapes(y, grad),
				out:    s,
				kernel: func(out []float32, in [][]float32) { reluBackward(in[0], in[1], out) },
			}, y, grad)
			return gorgonia.Nodes{gx}, err
		},
	}, x)
}

func reluForward[T blas.Float](x, y []T) {
	parallel(len(x)/elemBlock+1, func(_, lo, hi int) {
		lo, hi = lo*elemBlock, min(hi*elemBlock, len(x))
		for i, v := range x[lo:hi] {
			if v < 0 {
				v = 0
			}
			y[lo+i] = v
		}
	})
}

// reluBackward passes gy where the forward output y is positive.
func reluBackward[T blas.Float](y, gy, gx []T) {
	parallel(len(y)/elemBlock+1, func(_, lo, hi int) {
		lo, hi = lo*elemBlock, min(hi*elemBlock, len(y))
		g := gy[lo:hi]
		for i, v := range y[lo:hi] {
			if v > 0 {
				gx[lo+i] = g[i]
			} else {
				gx[lo+i] = 0
			}
		}
	})
}

// elemBlock is the unit elementwise loops are split into for parallel
// workers: small tensors stay on one goroutine.
const elemBlock = 1 << 16
