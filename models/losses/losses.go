// Package losses holds mmdet 2.x's detection losses, built from the
// loss_cls and loss_bbox mappings of RPN and RoI head configs:
// CrossEntropyLoss (softmax, or sigmoid with use_sigmoid) in ClsLosses,
// L1Loss and SmoothL1Loss in RegLosses, plus Accuracy, the `acc` value a
// box head logs.
//
// Every loss computes what mmdet computes: an elementwise loss, times the
// caller's weights, reduced by weight_reduce_loss -- the mean over all
// elements, the sum, or the sum divided by avg_factor plus float32's
// machine epsilon -- and times loss_weight. The elementwise work and its
// gradient are the weighted-sum ops of models/ops; this package turns
// labels into targets and weights, and applies the reduction and
// loss_weight as one scalar factor.
//
// Of razor it imports models/ops, models/nn and registry.
package losses

import (
	"fmt"
	"math"

	"gorgonia.org/gorgonia"

	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/registry"
)

// ClsLoss is a classification loss over logits and integer labels.
type ClsLoss interface {
	// Loss is the loss of logits (N×C) against labels (N), weighted per
	// sample by weights (nil for all ones), as a scalar node of the
	// logits' graph.
	//
	// Softmax: labels lie in [0, C), the last class being background in
	// a box head. Sigmoid (UseSigmoid): labels lie in [0, C], where C is
	// background, an all-zero target row (mmdet's
	// _expand_onehot_labels); negative labels get weight 0.
	//
	// avgFactor > 0 divides the weighted sum by avgFactor + eps
	// (reduction "mean" only); avgFactor <= 0 means none: the plain mean
	// over every element (N for softmax, N×C for sigmoid), or the sum.
	// The result is times loss_weight.
	Loss(b *nn.Binding, logits *gorgonia.Node, labels []int, weights []float32, avgFactor float64) (*gorgonia.Node, error)
	// UseSigmoid says whether the loss scores each class with its own
	// sigmoid (C outputs, no background column) rather than a softmax
	// over C classes whose last is background.
	UseSigmoid() bool
}

// RegLoss is a regression loss over box deltas.
type RegLoss interface {
	// Loss is the loss of pred (any shape, N×4 for box deltas) against
	// target, weighted elementwise by weight (nil for all ones); target
	// and weight hold one value per element of pred in row-major order.
	// avgFactor is as for ClsLoss.Loss; the plain mean is over every
	// element of pred. The result is times loss_weight.
	Loss(b *nn.Binding, pred *gorgonia.Node, target, weight []float32, avgFactor float64) (*gorgonia.Node, error)
}

// ClsLosses builds a head's loss_cls mapping.
var ClsLosses = registry.New[ClsLoss]("loss")

// RegLosses builds a head's loss_bbox mapping.
var RegLosses = registry.New[RegLoss]("loss")

// avgEps is float32's machine epsilon, which weight_reduce_loss adds to
// avg_factor since mmdet 2.23 (PR 7449, with avg_non_ignore) so that an
// avg_factor of 0 -- every label ignored -- divides a zero sum into 0
// rather than failing. It stays in every later 2.x release.
const avgEps = 0x1p-23

// reduction is mmdet's reduction of a weighted elementwise loss: "mean"
// or "sum". ("none" has no scalar to train on.)
type reduction string

// parseReduction checks a config's reduction.
func parseReduction(r string) (reduction, error) {
	switch r {
	case "mean", "sum":
		return reduction(r), nil
	case "none":
		return "", fmt.Errorf("reduction none is not supported: a head trains on a scalar loss; use mean or sum")
	}
	return "", fmt.Errorf("reduction %q is not supported; use mean or sum", r)
}

// avgFactor is weight_reduce_loss's avg_factor: none, or a value that
// may be 0.
type avgFactor struct {
	value float64
	set   bool
}

// callerAvg reads the avgFactor argument of Loss: > 0 is a factor, <= 0
// none.
func callerAvg(v float64) avgFactor { return avgFactor{value: v, set: v > 0} }

// scale is the factor weight_reduce_loss and loss_weight apply to the
// weighted sum of count elementwise losses.
func (r reduction) scale(count int, avg avgFactor, lossWeight float64) (float64, error) {
	switch {
	case r == "sum" && avg.set:
		return 0, fmt.Errorf("avg_factor %g cannot be used with reduction sum (mmdet raises the same); use reduction mean", avg.value)
	case r == "sum":
		return lossWeight, nil
	case avg.set:
		return lossWeight / (avg.value + avgEps), nil
	}
	return lossWeight / float64(count), nil
}

// scaled multiplies the weighted sum by s (no node for s = 1).
func scaled(sum *gorgonia.Node, s float64) (*gorgonia.Node, error) {
	if s == 1 {
		return sum, nil
	}
	y, err := gorgonia.Mul(sum, gorgonia.NewConstant(float32(s)))
	if err != nil {
		return nil, fmt.Errorf("scaling the loss by %g: %w", s, err)
	}
	return y, nil
}

// checkGraph refuses a prediction from another graph than the binding's.
func checkGraph(b *nn.Binding, what string, n *gorgonia.Node) error {
	if n == nil {
		return fmt.Errorf("%s is nil", what)
	}
	if b != nil && n.Graph() != b.Graph() {
		return fmt.Errorf("%s %q belongs to another graph than the binding's", what, n.Name())
	}
	return nil
}

// checkLossWeight refuses a loss_weight that is not a finite number.
func checkLossWeight(w float64) error {
	if math.IsNaN(w) || math.IsInf(w, 0) {
		return fmt.Errorf("loss_weight %g must be a finite number", w)
	}
	return nil
}
