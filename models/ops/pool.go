package ops

import (
	"fmt"
	"math"

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

// poolGeom is a max-pooling window: kernel, stride and padding per axis
// over planes of h×w, giving hout×wout outputs (PyTorch's floor mode).
type poolGeom struct {
	planes, h, w, hout, wout int
	kh, kw, sh, sw, ph, pw   int
}

// MaxPool2d takes the maximum over kernel×kernel windows of x (N×C×H×W)
// moving by stride, with implicit -inf padding, like
// torch.nn.functional.max_pool2d(x, kernel, stride, padding) with
// ceil_mode=False and dilation 1; FPN's extra level is MaxPool2d(x, 1, 2,
// 0). A zero stride means the kernel size (PyTorch's default). Padding may
// be at most half the kernel. A NaN in a window is its maximum. The
// gradient goes to the first maximum of each window in row-major order (the
// one PyTorch's CPU kernel picks), accumulating where windows overlap.
func MaxPool2d(x *gorgonia.Node, kernel, stride, padding int) (*gorgonia.Node, error) {
	if err := checkNode("MaxPool2d", "input", x, 4); err != nil {
		return nil, err
	}
	s := x.Shape().Clone()
	if stride == 0 {
		stride = kernel
	}
	g := poolGeom{planes: s[0] * s[1], h: s[2], w: s[3],
		kh: kernel, kw: kernel, sh: stride, sw: stride, ph: padding, pw: padding}
	switch {
	case kernel < 1 || stride < 1:
		return nil, fmt.Errorf("MaxPool2d(%s): kernel %d and stride %d must be positive", x.Name(), kernel, stride)
	case padding < 0 || 2*padding > kernel:
		return nil, fmt.Errorf("MaxPool2d(%s): padding %d must be between 0 and half the kernel %d", x.Name(), padding, kernel)
	case g.h+2*g.ph < g.kh || g.w+2*g.pw < g.kw:
		return nil, fmt.Errorf("MaxPool2d(%s): kernel %d does not fit input %v padded by %d", x.Name(), kernel, s, padding)
	}
	g.hout = (g.h+2*g.ph-g.kh)/g.sh + 1
	g.wout = (g.w+2*g.pw-g.kw)/g.sw + 1
	name := fmt.Sprintf("MaxPool2d{%v kernel %d stride %d pad %d}", s, kernel, stride, padding)
	return apply(&kernelOp{
		name:    name,
		in:      shapes(x),
		out:     tensor.Shape{s[0], s[1], g.hout, g.wout},
		kernel:  func(o []float32, in [][]float32) { maxPoolForward(g, in[0], o) },
		diffWRT: []bool{true},
		symDiff: func(inputs gorgonia.Nodes, _, grad *gorgonia.Node) (gorgonia.Nodes, error) {
			gx, err := apply(&kernelOp{
				name:   "Grad" + name,
				in:     shapes(inputs[0], grad),
				out:    s,
				kernel: func(o []float32, in [][]float32) { maxPoolBackward(g, in[0], in[1], o) },
			}, inputs[0], grad)
			return gorgonia.Nodes{gx}, err
		},
	}, x)
}

// argmaxWindow returns the index in plane of the first maximum of the
// window at output (oy, ox); a NaN counts as the maximum, as in PyTorch.
func argmaxWindow[T blas.Float](g poolGeom, plane []T, oy, ox int) int {
	y0, x0 := oy*g.sh-g.ph, ox*g.sw-g.pw
	y1, x1 := min(y0+g.kh, g.h), min(x0+g.kw, g.w)
	y0, x0 = max(y0, 0), max(x0, 0)
	best, at := T(math.Inf(-1)), y0*g.w+x0
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			if v := plane[y*g.w+x]; v > best || v != v {
				best, at = v, y*g.w+x
				if v != v {
					return at
				}
			}
		}
	}
	return at
}

func maxPoolForward[T blas.Float](g poolGeom, x, y []T) {
	hw, hwOut := g.h*g.w, g.hout*g.wout
	parallel(g.planes, func(_, lo, hi int) {
		for p := lo; p < hi; p++ {
			plane, out := x[p*hw:(p+1)*hw], y[p*hwOut:(p+1)*hwOut]
			if g.kh == 1 && g.kw == 1 {
				// A one-pixel window is a strided copy (FPN's extra level).
				for oy := range g.hout {
					src, dst := plane[oy*g.sh*g.w:], out[oy*g.wout:(oy+1)*g.wout]
					for ox := range dst {
						dst[ox] = src[ox*g.sw]
					}
				}
				continue
			}
			for oy := 0; oy < g.hout; oy++ {
				for ox := 0; ox < g.wout; ox++ {
					out[oy*g.wout+ox] = plane[argmaxWindow(g, plane, oy, ox)]
				}
			}
		}
	})
}

// maxPoolBackward routes each output gradient to its window's argmax,
// found again from x rather than remembered from the forward pass.
func maxPoolBackward[T blas.Float](g poolGeom, x, gy, gx []T) {
	hw, hwOut := g.h*g.w, g.hout*g.wout
	parallel(g.planes, func(_, lo, hi int) {
		for p := lo; p < hi; p++ {
			plane, gin, gout := x[p*hw:(p+1)*hw], gx[p*hw:(p+1)*hw], gy[p*hwOut:(p+1)*hwOut]
			clear(gin)
			if g.kh == 1 && g.kw == 1 {
				for oy := range g.hout {
					src, dst := gout[oy*g.wout:(oy+1)*g.wout], gin[oy*g.sh*g.w:]
					for ox, v := range src {
						dst[ox*g.sw] = v
					}
				}
				continue
			}
			for oy := 0; oy < g.hout; oy++ {
				for ox := 0; ox < g.wout; ox++ {
					gin[argmaxWindow(g, plane, oy, ox)] += gout[oy*g.wout+ox]
				}
			}
		}
	})
}
