package losses

import (
	"fmt"

	"gorgonia.org/gorgonia"

	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/models/ops"
	"github.com/razorgo/razor/registry"
)

// CrossEntropyLossOptions are mmdet 2.x's CrossEntropyLoss arguments.
type CrossEntropyLossOptions struct {
	// UseSigmoid scores each class with its own sigmoid (binary
	// cross-entropy per class, as RPN heads do) instead of a softmax.
	UseSigmoid bool `cfg:"use_sigmoid"`
	// UseMask must be false: razor has no mask head.
	UseMask bool `cfg:"use_mask"`
	// Reduction is "mean" or "sum".
	Reduction string `cfg:"reduction"`
	// ClassWeight, when set, holds one weight per class: softmax scales a
	// sample's loss by its label's weight (F.cross_entropy's weight);
	// sigmoid scales each class's positive term (pos_weight).
	ClassWeight []float64 `cfg:"class_weight"`
	// IgnoreIndex is the label that adds no loss; unset means -100.
	IgnoreIndex *int `cfg:"ignore_index"`
	// LossWeight scales the loss.
	LossWeight float64 `cfg:"loss_weight"`
	// AvgNonIgnore, with reduction mean and no avg_factor from the
	// caller, averages over the labels not ignored (times C for sigmoid)
	// instead of over all of them.
	AvgNonIgnore bool `cfg:"avg_non_ignore"`
}

// Defaults sets mmdet's defaults.
func (o *CrossEntropyLossOptions) Defaults() {
	o.Reduction = "mean"
	o.LossWeight = 1
}

// CrossEntropyLoss is mmdet's CrossEntropyLoss without masks.
type CrossEntropyLoss struct {
	sigmoid      bool
	reduction    reduction
	classWeight  []float64
	ignore       int
	lossWeight   float64
	avgNonIgnore bool
}

// NewCrossEntropyLoss checks the options.
func NewCrossEntropyLoss(o CrossEntropyLossOptions) (*CrossEntropyLoss, error) {
	if o.UseMask {
		return nil, fmt.Errorf("use_mask: true (mask cross-entropy) is not supported: razor has no mask head")
	}
	r, err := parseReduction(o.Reduction)
	if err != nil {
		return nil, err
	}
	if err := checkLossWeight(o.LossWeight); err != nil {
		return nil, err
	}
	l := &CrossEntropyLoss{sigmoid: o.UseSigmoid, reduction: r, lossWeight: o.LossWeight,
		avgNonIgnore: o.AvgNonIgnore, ignore: ops.IgnoreLabel}
	if o.ClassWeight != nil {
		if len(o.ClassWeight) == 0 {
			return nil, fmt.Errorf("class_weight is empty; give one weight per class or leave it out")
		}
		l.classWeight = append([]float64(nil), o.ClassWeight...)
	}
	if o.IgnoreIndex != nil {
		l.ignore = *o.IgnoreIndex
	}
	return l, nil
}

// UseSigmoid says whether the loss is per-class binary cross-entropy.
func (l *CrossEntropyLoss) UseSigmoid() bool { return l.sigmoid }

// Loss is mmdet's CrossEntropyLoss.forward; see ClsLoss.
func (l *CrossEntropyLoss) Loss(b *nn.Binding, logits *gorgonia.Node, labels []int, weights []float32, avgFactor float64) (*gorgonia.Node, error) {
	if err := checkGraph(b, "CrossEntropyLoss: logits", logits); err != nil {
		return nil, err
	}
	if logits.Dims() != 2 {
		return nil, fmt.Errorf("CrossEntropyLoss: logits %q have shape %v, want N×C", logits.Name(), logits.Shape())
	}
	n, c := logits.Shape()[0], logits.Shape()[1]
	if len(labels) != n {
		return nil, fmt.Errorf("CrossEntropyLoss: %d labels for %d samples", len(labels), n)
	}
	if weights != nil && len(weights) != n {
		return nil, fmt.Errorf("CrossEntropyLoss: %d weights for %d samples", len(weights), n)
	}
	if l.classWeight != nil && len(l.classWeight) != c {
		return nil, fmt.Errorf("CrossEntropyLoss: class_weight has %d weights but the logits have %d classes", len(l.classWeight), c)
	}
	if l.sigmoid {
		return l.sigmoidLoss(logits, labels, weights, callerAvg(avgFactor))
	}
	return l.softmaxLoss(logits, labels, weights, callerAvg(avgFactor))
}

// softmaxLoss is mmdet's cross_entropy: F.cross_entropy per sample (times
// class_weight[label]), times the sample weights, reduced.
func (l *CrossEntropyLoss) softmaxLoss(logits *gorgonia.Node, labels []int, weights []float32, avg avgFactor) (*gorgonia.Node, error) {
	n, c := logits.Shape()[0], logits.Shape()[1]
	opLabels := make([]int, n)
	var w []float32
	if weights != nil || l.classWeight != nil {
		w = make([]float32, n)
	}
	kept := 0
	for i, label := range labels {
		if label == l.ignore {
			opLabels[i] = ops.IgnoreLabel
			continue
		}
		if label < 0 || label >= c {
			return nil, fmt.Errorf("CrossEntropyLoss: label %d of sample %d is outside [0, %d) and is not ignore_index %d", label, i, c, l.ignore)
		}
		opLabels[i] = label
		kept++
		if w == nil {
			continue
		}
		wi := float32(1)
		if weights != nil {
			wi = weights[i]
		}
		if l.classWeight != nil {
			wi *= float32(l.classWeight[label])
		}
		w[i] = wi
	}
	if l.avgNonIgnore && l.reduction == "mean" && !avg.set {
		avg = avgFactor{value: float64(kept), set: true}
	}
	s, err := l.reduction.scale(n, avg, l.lossWeight)
	if err != nil {
		return nil, fmt.Errorf("CrossEntropyLoss: %w", err)
	}
	sum, err := ops.SoftmaxCrossEntropySum(logits, opLabels, w)
	if err != nil {
		return nil, err
	}
	return scaled(sum, s)
}

// sigmoidLoss is mmdet's binary_cross_entropy with integer labels: one-hot
// targets with an all-zero row for background (label C), the sample weight
// repeated over the row and 0 for ignored or negative labels, reduced.
// With class_weight as pos_weight, the loss of a positive target is
// class_weight[c] times its plain loss and that of a negative target is
// unchanged (pos_weight scales only the t·log σ(x) term), so it folds into
// the weights of the one-hot entries.
func (l *CrossEntropyLoss) sigmoidLoss(logits *gorgonia.Node, labels []int, weights []float32, avg avgFactor) (*gorgonia.Node, error) {
	n, c := logits.Shape()[0], logits.Shape()[1]
	targets := make([]float32, n*c)
	w := make([]float32, n*c)
	valid := 0
	for i, label := range labels {
		if label < 0 || label == l.ignore {
			continue
		}
		if label > c {
			return nil, fmt.Errorf("CrossEntropyLoss: label %d of sample %d is outside [0, %d] (%d is background) and is not ignore_index %d", label, i, c, c, l.ignore)
		}
		valid++
		wi := float32(1)
		if weights != nil {
			wi = weights[i]
		}
		row := w[i*c : (i+1)*c]
		for j := range row {
			row[j] = wi
		}
		if label < c {
			targets[i*c+label] = 1
			if l.classWeight != nil {
				row[label] *= float32(l.classWeight[label])
			}
		}
	}
	if l.avgNonIgnore && l.reduction == "mean" && !avg.set {
		avg = avgFactor{value: float64(valid * c), set: true}
	}
	s, err := l.reduction.scale(n*c, avg, l.lossWeight)
	if err != nil {
		return nil, fmt.Errorf("CrossEntropyLoss: %w", err)
	}
	sum, err := ops.SigmoidBCESum(logits, targets, w)
	if err != nil {
		return nil, err
	}
	return scaled(sum, s)
}

func init() {
	registry.MustRegister(ClsLosses, "CrossEntropyLoss", func(o CrossEntropyLossOptions) (ClsLoss, error) { return NewCrossEntropyLoss(o) })
}
