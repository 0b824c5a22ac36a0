package ops

// No model razor builds runs the ops here (the mean forms of the detection
// losses, whose sums loss.go exports; plain concatenation), so they are not
// part of the package's API. They stay with the tests that pin them against
// PyTorch, so a model that needs one can move it back already checked.

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

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
