package ops

import (
	"fmt"
	"math"

	"github.com/razorgo/razor/models/ops/blas"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// UpsampleNearest resizes x (N×C×H×W) to N×C×outH×outW by nearest
// neighbour, picking source pixels exactly as PyTorch's
// F.interpolate(mode="nearest", size=(outH, outW)) does (so FPN's
// upsampling to an odd-sized lateral matches). The gradient sums the output
// gradients of every copy of a pixel.
func UpsampleNearest(x *gorgonia.Node, outH, outW int) (*gorgonia.Node, error) {
	if err := checkNode("UpsampleNearest", "input", x, 4); err != nil {
		return nil, err
	}
	if outH < 1 || outW < 1 {
		return nil, fmt.Errorf("UpsampleNearest(%s): output size %dx%d must be positive", x.Name(), outH, outW)
	}
	s := x.Shape().Clone()
	rows, cols := nearestIndex(s[2], outH), nearestIndex(s[3], outW)
	planes := s[0] * s[1]
	name := fmt.Sprintf("UpsampleNearest{%v -> %dx%d}", s, outH, outW)
	return apply(&kernelOp{
		name:    name,
		in:      shapes(x),
		out:     tensor.Shape{s[0], s[1], outH, outW},
		kernel:  func(o []float32, in [][]float32) { upsampleForward(planes, s[2]*s[3], rows, cols, s[3], in[0], o) },
		diffWRT: []bool{true},
		symDiff: func(_ gorgonia.Nodes, _, grad *gorgonia.Node) (gorgonia.Nodes, error) {
			gx, err := apply(&kernelOp{
				name:   "Grad" + name,
				in:     shapes(grad),
				out:    s,
				kernel: func(o []float32, in [][]float32) { upsampleBackward(planes, s[2]*s[3], rows, cols, s[3], in[0], o) },
			}, grad)
			return gorgonia.Nodes{gx}, err
		},
	}, x)
}

// nearestIndex maps each of out output positions to its source among in,
// with PyTorch's rule: the identity for equal sizes, halving for exact
// doubling, otherwise floor(dst·(in/out)) in float32, clamped to in-1.
func nearestIndex(in, out int) []int {
	idx := make([]int, out)
	scale := float32(in) / float32(out)
	for d := range idx {
		switch {
		case out == in:
			idx[d] = d
		case out == 2*in:
			idx[d] = d >> 1
		default:
			idx[d] = min(int(math.Floor(float64(float32(d)*scale))), in-1)
		}
	}
	return idx
}

func upsampleForward[T blas.Float](planes, hw int, rows, cols []int, w int, x, y []T) {
	hwOut := len(rows) * len(cols)
	parallel(planes, func(_, lo, hi int) {
		for p := lo; p < hi; p++ {
			src, dst := x[p*hw:(p+1)*hw], y[p*hwOut:(p+1)*hwOut]
			for oy, iy := range rows {
				srow, drow := src[iy*w:(iy+1)*w], dst[oy*len(cols):(oy+1)*len(cols)]
				for ox, ix := range cols {
					drow[ox] = srow[ix]
				}
			}
		}
	})
}

func upsampleBackward[T blas.Float](planes, hw int, rows, cols []int, w int, gy, gx []T) {
	hwOut := len(rows) * len(cols)
	parallel(planes, func(_, lo, hi int) {
		for p := lo; p < hi; p++ {
			src, dst := gy[p*hwOut:(p+1)*hwOut], gx[p*hw:(p+1)*hw]
			clear(dst)
			for oy, iy := range rows {
				srow, drow := src[oy*len(cols):(oy+1)*len(cols)], dst[iy*w:(iy+1)*w]
				for ox, ix := range cols {
					drow[ix] += srow[ox]
				}
			}
		}
	})
}
