package ops

import (
	"fmt"
	"math"

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

// reluForward writes x with its negative values cleared to y.
func reluForward[T blas.Float](x, y []T) {
	parallel(len(x)/elemBlock+1, func(_, lo, hi int) {
		lo, hi = lo*elemBlock, min(hi*elemBlock, len(x))
		if x32, ok := any(x[lo:hi]).([]float32); ok {
			reluClear32(x32, any(y[lo:hi]).([]float32))
			return
		}
		// float64, for gradient checks: the same answers, speed aside.
		for i, v := range x[lo:hi] {
			if v < 0 {
				v = 0
			}
			y[lo+i] = v
		}
	})
}

// reluClear32 clears negative values with a mask rather than a branch: signs
// are random, and a branch mispredicted half the time made ReLU 8x slower.
// -0 and NaN are not below zero, so they pass unchanged, as in PyTorch.
func reluClear32(x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		var m uint32
		if v < 0 {
			m = ^uint32(0)
		}
		y[i] = math.Float32frombits(math.Float32bits(v) &^ m)
	}
}

// reluBackward passes gy except where the forward output y is at most
// zero, where the gradient is exactly zero whatever gy holds: PyTorch's
// threshold_backward, which also lets gy through where y is NaN.
func reluBackward[T blas.Float](y, gy, gx []T) {
	parallel(len(y)/elemBlock+1, func(_, lo, hi int) {
		lo, hi = lo*elemBlock, min(hi*elemBlock, len(y))
		if y32, ok := any(y[lo:hi]).([]float32); ok {
			reluMask32(y32, any(gy[lo:hi]).([]float32), any(gx[lo:hi]).([]float32))
			return
		}
		for i, v := range y[lo:hi] {
			if v <= 0 {
				gx[lo+i] = 0
			} else {
				gx[lo+i] = gy[lo+i]
			}
		}
	})
}

// reluMask32 ands each gradient with an all-ones or all-zeros mask, for
// the same reason as reluClear32.
func reluMask32(y, gy, gx []float32) {
	gy, gx = gy[:len(y)], gx[:len(y)]
	for i, v := range y {
		m := ^uint32(0)
		if v <= 0 {
			m = 0
		}
		gx[i] = math.Float32frombits(math.Float32bits(gy[i]) & m)
	}
}

// elemBlock is the unit elementwise loops are split into for parallel
// workers: small tensors stay on one goroutine.
const elemBlock = 1 << 16
