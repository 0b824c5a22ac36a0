package losses

import (
	"fmt"
	"math"

	"gorgonia.org/gorgonia"

	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/models/ops"
	"github.com/razorgo/razor/registry"
)

// L1LossOptions are mmdet's L1Loss arguments.
type L1LossOptions struct {
	// Reduction is "mean" or "sum".
	Reduction string `cfg:"reduction"`
	// LossWeight scales the loss.
	LossWeight float64 `cfg:"loss_weight"`
}

// Defaults sets mmdet's defaults.
func (o *L1LossOptions) Defaults() {
	o.Reduction = "mean"
	o.LossWeight = 1
}

// SmoothL1LossOptions are mmdet's SmoothL1Loss arguments.
type SmoothL1LossOptions struct {
	// Beta is where the loss turns from quadratic to linear; it must be
	// positive.
	Beta float64 `cfg:"beta"`
	// Reduction is "mean" or "sum".
	Reduction string `cfg:"reduction"`
	// LossWeight scales the loss.
	LossWeight float64 `cfg:"loss_weight"`
}

// Defaults sets mmdet's defaults.
func (o *SmoothL1LossOptions) Defaults() {
	o.Beta = 1
	o.Reduction = "mean"
	o.LossWeight = 1
}

// PointLoss is an elementwise regression loss (L1Loss, SmoothL1Loss)
// with mmdet's weighting and reduction.
type PointLoss struct {
	name       string
	sum        func(pred *gorgonia.Node, target, weight []float32) (*gorgonia.Node, error)
	reduction  reduction
	lossWeight float64
}

// NewL1Loss checks the options of an L1Loss: |pred - target|.
func NewL1Loss(o L1LossOptions) (*PointLoss, error) {
	return newPointLoss("L1Loss", ops.L1Sum, o.Reduction, o.LossWeight)
}

// NewSmoothL1Loss checks the options of a SmoothL1Loss: 0.5·d²/beta below
// beta, |d| - 0.5·beta above.
func NewSmoothL1Loss(o SmoothL1LossOptions) (*PointLoss, error) {
	if !(o.Beta > 0) || math.IsInf(o.Beta, 1) {
		return nil, fmt.Errorf("beta %g must be positive and finite (mmdet asserts beta > 0)", o.Beta)
	}
	beta := o.Beta
	sum := func(pred *gorgonia.Node, target, weight []float32) (*gorgonia.Node, error) {
		return ops.SmoothL1Sum(pred, target, weight, beta)
	}
	return newPointLoss("SmoothL1Loss", sum, o.Reduction, o.LossWeight)
}

func newPointLoss(name string, sum func(*gorgonia.Node, []float32, []float32) (*gorgonia.Node, error), red string, lossWeight float64) (*PointLoss, error) {
	r, err := parseReduction(red)
	if err != nil {
		return nil, err
	}
	if err := checkLossWeight(lossWeight); err != nil {
		return nil, err
	}
	return &PointLoss{name: name, sum: sum, reduction: r, lossWeight: lossWeight}, nil
}

// Loss is mmdet's L1Loss / SmoothL1Loss.forward; see RegLoss. Weights with
// no positive entry give 0 with a zero gradient whatever the reduction and
// avgFactor, as mmdet's early return does (it returns (pred·weight).sum()
// before reducing).
func (l *PointLoss) Loss(b *nn.Binding, pred *gorgonia.Node, target, weight []float32, avgFactor float64) (*gorgonia.Node, error) {
	if err := checkGraph(b, l.name+": prediction", pred); err != nil {
		return nil, err
	}
	count := pred.Shape().TotalSize()
	if pred.Dims() == 0 || count == 0 {
		return nil, fmt.Errorf("%s: prediction %q has shape %v; a head with nothing to regress must skip the loss", l.name, pred.Name(), pred.Shape())
	}
	s := 0.0
	if weight == nil || anyPositive(weight) {
		var err error
		if s, err = l.reduction.scale(count, callerAvg(avgFactor), l.lossWeight); err != nil {
			return nil, fmt.Errorf("%s: %w", l.name, err)
		}
	}
	sum, err := l.sum(pred, target, weight)
	if err != nil {
		return nil, err
	}
	return scaled(sum, s)
}

func anyPositive(w []float32) bool {
	for _, v := range w {
		if v > 0 {
			return true
		}
	}
	return false
}

func init() {
	registry.MustRegister(RegLosses, "L1Loss", func(o L1LossOptions) (RegLoss, error) { return NewL1Loss(o) })
	registry.MustRegister(RegLosses, "SmoothL1Loss", func(o SmoothL1LossOptions) (RegLoss, error) { return NewSmoothL1Loss(o) })
}
