package ops

import (
	"fmt"

	"github.com/razorgo/razor/models/ops/blas"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// GlobalAvgPool2d averages x (N×C×H×W) over its spatial axes and returns
// an N×C tensor, like mmcls's GlobalAveragePooling neck (adaptive average
// pooling to 1x1, flattened).
func GlobalAvgPool2d(x *gorgonia.Node) (*gorgonia.Node, error) {
	if err := checkNode("GlobalAvgPool2d", "input", x, 4); err != nil {
		return nil, err
	}
	s := x.Shape().Clone()
	n, c, hw := s[0], s[1], s[2]*s[3]
	return apply(&kernelOp{
		name:    fmt.Sprintf("GlobalAvgPool2d%v", s),
		in:      shapes(x),
		out:     tensor.Shape{n, c},
		kernel:  func(o []float32, in [][]float32) { globalAvgPool(n*c, hw, in[0], o) },
		diffWRT: []bool{true},
		symDiff: func(_ gorgonia.Nodes, _, grad *gorgonia.Node) (gorgonia.Nodes, error) {
			gx, err := apply(&kernelOp{
				name:   fmt.Sprintf("GlobalAvgPool2dGrad%v", s),
				in:     shapes(grad),
				out:    s,
				kernel: func(o []float32, in [][]float32) { globalAvgPoolBackward(n*c, hw, in[0], o) },
			}, grad)
			return gorgonia.Nodes{gx}, err
		},
	}, x)
}

func globalAvgPool[T blas.Float](planes, hw int, x, y []T) {
	parallel(planes, func(_, lo, hi int) {
		for p := lo; p < hi; p++ {
			var s float64
			for _, v := range x[p*hw : (p+1)*hw] {
				s += float64(v)
			}
			y[p] = T(s / float64(hw))
		}
	})
}

func globalAvgPoolBackward[T blas.Float](planes, hw int, gy, gx []T) {
	parallel(planes, func(_, lo, hi int) {
		for p := lo; p < hi; p++ {
			v := gy[p] / T(hw)
			row := gx[p*hw : (p+1)*hw]
			for i := range row {
				row[i] = v
			}
		}
	})
}
