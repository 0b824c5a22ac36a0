package ops

import (
	"fmt"
	"math"

	"github.com/razorgo/razor/models/ops/blas"
	"gorgonia.org/gorgonia"
)

// Softmax normalizes x over its last axis, like torch.softmax(x, dim=-1).
// The gradient is y·(gy - Σ gy·y) per row, computed from the output.
func Softmax(x *gorgonia.Node) (*gorgonia.Node, error) {
	if x == nil || x.Dims() == 0 {
		return nil, fmt.Errorf("Softmax: input must be a tensor")
	}
	if err := checkNode("Softmax", "input", x, x.Dims()); err != nil {
		return nil, err
	}
	s := x.Shape().Clone()
	k := s[len(s)-1]
	rows := s.TotalSize() / k
	return apply(&kernelOp{
		name:    fmt.Sprintf("Softmax%v", s),
		in:      shapes(x),
		out:     s,
		kernel:  func(o []float32, in [][]float32) { softmaxForward(rows, k, in[0], o) },
		diffWRT: []bool{true},
		symDiff: func(_ gorgonia.Nodes, y, grad *gorgonia.Node) (gorgonia.Nodes, error) {
			gx, err := apply(&kernelOp{
				name:   fmt.Sprintf("SoftmaxGrad%v", s),
				in:     shapes(y, grad),
				out:    s,
				kernel: func(o []float32, in [][]float32) { softmaxBackward(rows, k, in[0], in[1], o) },
			}, y, grad)
			return gorgonia.Nodes{gx}, err
		},
	}, x)
}

// softmaxRow writes the softmax of x into y (max-shifted, summed in
// float64) and returns log Σ exp(x), which the cross-entropy needs.
func softmaxRow[T blas.Float](x, y []T) (logSumExp float64) {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, float64(v))
	}
	var s float64
	for i, v := range x {
		e := math.Exp(float64(v) - m)
		y[i] = T(e)
		s += e
	}
	inv := 1 / s
	for i := range y {
		y[i] = T(float64(y[i]) * inv)
	}
	return m + math.Log(s)
}

func softmaxForward[T blas.Float](rows, k int, x, y []T) {
	parallel(rows, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			softmaxRow(x[r*k:(r+1)*k], y[r*k:(r+1)*k])
		}
	})
}

func softmaxBackward[T blas.Float](rows, k int, y, gy, gx []T) {
	parallel(rows, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			ys, gs, out := y[r*k:(r+1)*k], gy[r*k:(r+1)*k], gx[r*k:(r+1)*k]
			var d float64
			for i, v := range ys {
				d += float64(v) * float64(gs[i])
			}
			for i, v := range ys {
				out[i] = T(float64(v) * (float64(gs[i]) - d))
			}
		}
	})
}
