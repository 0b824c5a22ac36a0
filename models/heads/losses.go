package heads

import (
	"fmt"

	"gorgonia.org/gorgonia"

	"github.com/razorgo/razor/models/ops"
	"github.com/razorgo/razor/registry"
)

// ClsLoss turns logits (N×K) and integer labels into a scalar loss node.
type ClsLoss interface {
	Loss(logits *gorgonia.Node, labels []int) (*gorgonia.Node, error)
}

// ClsLosses builds a head's `loss:` mapping.
var ClsLosses = registry.New[ClsLoss]("loss")

// LabelSmoothLossOptions are mmcls's LabelSmoothLoss arguments.
type LabelSmoothLossOptions struct {
	// LabelSmoothVal is the smoothing amount eps.
	LabelSmoothVal float64 `cfg:"label_smooth_val,required"`
	// NumClasses, when set, must equal the logits' width.
	NumClasses int `cfg:"num_classes"`
	// Mode is "original" (target (1-eps)·onehot + eps/K) or
	// "classy_vision" (the same with eps/(1+eps) in place of eps).
	Mode string `cfg:"mode"`
	// Reduction must be "mean".
	Reduction string `cfg:"reduction"`
	// LossWeight scales the loss.
	LossWeight float64 `cfg:"loss_weight"`
}

// Defaults sets mmcls's defaults.
func (o *LabelSmoothLossOptions) Defaults() {
	o.Mode = "original"
	o.Reduction = "mean"
	o.LossWeight = 1
}

// LabelSmoothLoss is cross-entropy against label-smoothed targets.
type LabelSmoothLoss struct {
	eps        float64
	numClasses int
	weight     float64
}

// NewLabelSmoothLoss checks the options.
func NewLabelSmoothLoss(o LabelSmoothLossOptions) (*LabelSmoothLoss, error) {
	if !(o.LabelSmoothVal >= 0 && o.LabelSmoothVal < 1) {
		return nil, fmt.Errorf("label_smooth_val %g must lie in [0, 1)", o.LabelSmoothVal)
	}
	if o.NumClasses < 0 {
		return nil, fmt.Errorf("num_classes %d must be positive", o.NumClasses)
	}
	if o.Reduction != "mean" {
		return nil, fmt.Errorf("reduction %q is not supported; use mean", o.Reduction)
	}
	eps := o.LabelSmoothVal
	switch o.Mode {
	case "original":
	case "classy_vision":
		eps = eps / (1 + eps)
	default:
		return nil, fmt.Errorf("mode %q is not supported; use original or classy_vision", o.Mode)
	}
	return &LabelSmoothLoss{eps: eps, numClasses: o.NumClasses, weight: o.LossWeight}, nil
}

// Loss is the weighted mean smoothed cross-entropy.
func (l *LabelSmoothLoss) Loss(logits *gorgonia.Node, labels []int) (*gorgonia.Node, error) {
	if k := logits.Shape()[len(logits.Shape())-1]; l.numClasses > 0 && k != l.numClasses {
		return nil, fmt.Errorf("LabelSmoothLoss: num_classes is %d but the logits have %d classes", l.numClasses, k)
	}
	loss, err := ops.CrossEntropy(logits, labels, l.eps)
	if err != nil {
		return nil, err
	}
	return weighted(loss, l.weight)
}

// CrossEntropyLossOptions are mmcls's CrossEntropyLoss arguments razor
// supports.
type CrossEntropyLossOptions struct {
	// UseSigmoid must be false: classification uses softmax.
	UseSigmoid bool `cfg:"use_sigmoid"`
	// Reduction must be "mean".
	Reduction string `cfg:"reduction"`
	// LossWeight scales the loss.
	LossWeight float64 `cfg:"loss_weight"`
}

// Defaults sets mmcls's defaults.
func (o *CrossEntropyLossOptions) Defaults() {
	o.Reduction = "mean"
	o.LossWeight = 1
}

// CrossEntropyLoss is softmax cross-entropy with integer labels.
type CrossEntropyLoss struct {
	weight float64
}

// NewCrossEntropyLoss checks the options.
func NewCrossEntropyLoss(o CrossEntropyLossOptions) (*CrossEntropyLoss, error) {
	if o.UseSigmoid {
		return nil, fmt.Errorf("use_sigmoid: true is not supported for classification heads; use softmax (use_sigmoid: false)")
	}
	if o.Reduction != "mean" {
		return nil, fmt.Errorf("reduction %q is not supported; use mean", o.Reduction)
	}
	return &CrossEntropyLoss{weight: o.LossWeight}, nil
}

// Loss is the weighted mean cross-entropy.
func (l *CrossEntropyLoss) Loss(logits *gorgonia.Node, labels []int) (*gorgonia.Node, error) {
	loss, err := ops.CrossEntropy(logits, labels, 0)
	if err != nil {
		return nil, err
	}
	return weighted(loss, l.weight)
}

// weighted scales a scalar loss by w (no node for w = 1).
func weighted(loss *gorgonia.Node, w float64) (*gorgonia.Node, error) {
	if w == 1 {
		return loss, nil
	}
	y, err := gorgonia.Mul(loss, gorgonia.NewConstant(float32(w)))
	if err != nil {
		return nil, fmt.Errorf("weighting the loss by %g: %w", w, err)
	}
	return y, nil
}

func init() {
	registry.MustRegister(ClsLosses, "LabelSmoothLoss", func(o LabelSmoothLossOptions) (ClsLoss, error) { return NewLabelSmoothLoss(o) })
	registry.MustRegister(ClsLosses, "CrossEntropyLoss", func(o CrossEntropyLossOptions) (ClsLoss, error) { return NewCrossEntropyLoss(o) })
}
