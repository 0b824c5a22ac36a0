package ops

// No model razor builds runs the ops here (detection losses, max pooling,
// plain concatenation), so they are not part of the package's API. They stay
// with the tests that pin them against PyTorch, so a model that needs one
// can move it back already checked.

import (
	"fmt"
	"math"

	"github.com/razorgo/razor/models/ops/blas"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// bceWithLogits is max(x,0) - x·t + log(1+exp(-|x|)), the stable form of
// -t·log σ(x) - (1-t)·log(1-σ(x)); its derivative is σ(x) - t.
func bceWithLogits(x, t float64) (float64, float64) {
	loss := math.Max(x, 0) - x*t + math.Log1p(math.Exp(-math.Abs(x)))
	var s float64
	if x >= 0 {
		s = 1 / (1 + math.Exp(-x))
	} else {
		e := math.Exp(x)
		s = e / (1 + e)
	}
	return loss, s - t
}

// smoothL1 is 0.5·d²/beta where |d| < beta and |d| - 0.5·beta elsewhere
// (mmdet's smooth_l1_loss and PyTorch's smooth_l1_loss); beta = 0 is L1.
func smoothL1(beta float64) pointLoss {
	return func(p, t float64) (float64, float64) {
		d := p - t
		if math.Abs(d) < beta {
			return 0.5 * d * d / beta, d / beta
		}
		loss, grad := l1(p, t)
		return loss - 0.5*beta, grad
	}
}

// sigmoidBCEWithLogits is the mean over all elements of
// weight·BCE(sigmoid(logits), target), like
// torch.nn.functional.binary_cross_entropy_with_logits(logits, target,
// weight). weight may be nil; otherwise it has the logits' shape (mmdet
// passes per-anchor label weights this way).
func sigmoidBCEWithLogits(logits, target, weight *gorgonia.Node) (*gorgonia.Node, error) {
	return meanPointLoss("SigmoidBCEWithLogits", "", bceWithLogits, logits, target, weight)
}

// smoothL1Loss is the mean over all elements of weight·smoothL1(pred -
// target) with threshold beta >= 0 (quadratic below beta, linear above);
// weight may be nil.
func smoothL1Loss(pred, target, weight *gorgonia.Node, beta float64) (*gorgonia.Node, error) {
	if !(beta >= 0) {
		return nil, fmt.Errorf("SmoothL1Loss: beta %g must not be negative", beta)
	}
	return meanPointLoss("SmoothL1Loss", fmt.Sprintf("beta %g", beta), smoothL1(beta), pred, target, weight)
}

// poolGeom is a max-pooling window: kernel, stride and padding per axis
// over planes of h×w, giving hout×wout outputs (PyTorch's floor mode).
type poolGeom struct {
	planes, h, w, hout, wout int
	kh, kw, sh, sw, ph, pw   int
}

// maxPool2d takes the maximum over kernel windows of x (N×C×H×W) moving by
// stride, with implicit -inf padding, like torch.nn.functional.max_pool2d
// with ceil_mode=False and dilation 1. A zero stride means the kernel size
// (PyTorch's default). Padding may be at most half the kernel. The
// gradient goes to the first maximum of each window (the one PyTorch
// picks), accumulating where windows overlap.
func maxPool2d(x *gorgonia.Node, kernel, stride, padding [2]int) (*gorgonia.Node, error) {
	if err := checkNode("MaxPool2d", "input", x, 4); err != nil {
		return nil, err
	}
	s := x.Shape().Clone()
	for i := range 2 {
		if stride[i] == 0 {
			stride[i] = kernel[i]
		}
	}
	g := poolGeom{planes: s[0] * s[1], h: s[2], w: s[3],
		kh: kernel[0], kw: kernel[1], sh: stride[0], sw: stride[1], ph: padding[0], pw: padding[1]}
	switch {
	case g.kh < 1 || g.kw < 1 || g.sh < 1 || g.sw < 1:
		return nil, fmt.Errorf("MaxPool2d(%s): kernel %v and stride %v must be positive", x.Name(), kernel, stride)
	case g.ph < 0 || g.pw < 0 || 2*g.ph > g.kh || 2*g.pw > g.kw:
		return nil, fmt.Errorf("MaxPool2d(%s): padding %v must be between 0 and half the kernel %v", x.Name(), padding, kernel)
	case g.h+2*g.ph < g.kh || g.w+2*g.pw < g.kw:
		return nil, fmt.Errorf("MaxPool2d(%s): kernel %v does not fit input %v padded by %v", x.Name(), kernel, s, padding)
	}
	g.hout = (g.h+2*g.ph-g.kh)/g.sh + 1
	g.wout = (g.w+2*g.pw-g.kw)/g.sw + 1
	name := fmt.Sprintf("MaxPool2d{%v kernel %v stride %v pad %v}", s, kernel, stride, padding)
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
			for oy := 0; oy < g.hout; oy++ {
				for ox := 0; ox < g.wout; ox++ {
					gin[argmaxWindow(g, plane, oy, ox)] += gout[oy*g.wout+ox]
				}
			}
		}
	})
}

// upsample2x doubles the height and width of x by nearest neighbour, like
// F.interpolate(scale_factor=2, mode="nearest").
func upsample2x(x *gorgonia.Node) (*gorgonia.Node, error) {
	if err := checkNode("Upsample2x", "input", x, 4); err != nil {
		return nil, err
	}
	return UpsampleNearest(x, 2*x.Shape()[2], 2*x.Shape()[3])
}

// channelConcat concatenates N×Ci×H×W tensors along channels, like
// torch.cat(xs, dim=1). Each input's gradient is its slice of gy.
func channelConcat(xs ...*gorgonia.Node) (*gorgonia.Node, error) {
	offsets, err := concatOffsets("ChannelConcat", xs)
	if err != nil {
		return nil, err
	}
	s0 := xs[0].Shape()
	n, hw, c := s0[0], s0[2]*s0[3], offsets[len(xs)]
	out := tensor.Shape{n, c, s0[2], s0[3]}
	return apply(&kernelOp{
		name: fmt.Sprintf("ChannelConcat{%v at %v}", out, offsets),
		in:   shapes(xs...),
		out:  out,
		kernel: func(o []float32, in [][]float32) {
			for i, src := range in {
				k := offsets[i+1] - offsets[i]
				copyChannels(n, hw, src, k, 0, o, c, offsets[i], k)
			}
		},
		diffWRT: trues(len(xs)),
		symDiff: func(_ gorgonia.Nodes, _, grad *gorgonia.Node) (gorgonia.Nodes, error) {
			grads := make(gorgonia.Nodes, len(xs))
			for i := range xs {
				var err error
				if grads[i], err = ChannelSlice(grad, offsets[i], offsets[i+1]); err != nil {
					return nil, err
				}
			}
			return grads, nil
		},
	}, xs...)
}
