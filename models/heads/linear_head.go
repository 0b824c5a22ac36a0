// Package heads holds the heads razor builds from configs: LinearClsHead
// and its classification losses (LabelSmoothLoss, CrossEntropyLoss).
//
// It imports models, models/nn, models/ops and registry.
package heads

import (
	"fmt"
	"math/rand/v2"

	"gorgonia.org/gorgonia"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/registry"
)

// LinearClsHeadOptions are mmcls's LinearClsHead arguments.
type LinearClsHeadOptions struct {
	NumClasses int `cfg:"num_classes,required"`
	InChannels int `cfg:"in_channels,required"`
	// Loss defaults to CrossEntropyLoss with weight 1.
	Loss ClsLoss `cfg:"loss"`
	// TopK are the k of the top-k accuracies reported for this head; the
	// largest is tools/infer's default number of classes to print.
	TopK []int `cfg:"topk"`
}

// Defaults sets mmcls's topk (1,).
func (o *LinearClsHeadOptions) Defaults() { o.TopK = []int{1} }

// LinearClsHead is mmcls's LinearClsHead: a fully connected layer "fc"
// (in_channels -> num_classes, with bias) on the last feature.
type LinearClsHead struct {
	nn.Base
	fc   *nn.Linear
	loss ClsLoss
	topk []int
}

// NewLinearClsHead checks the options and builds the layer.
func NewLinearClsHead(o LinearClsHeadOptions) (*LinearClsHead, error) {
	if o.NumClasses <= 0 {
		return nil, fmt.Errorf("num_classes %d must be positive", o.NumClasses)
	}
	for _, k := range o.TopK {
		if k <= 0 || k > o.NumClasses {
			return nil, fmt.Errorf("topk %d must lie in [1, num_classes %d]", k, o.NumClasses)
		}
	}
	fc, err := nn.NewLinear(o.InChannels, o.NumClasses, true)
	if err != nil {
		return nil, err
	}
	h := &LinearClsHead{fc: fc, loss: o.Loss, topk: o.TopK}
	if h.loss == nil {
		h.loss = &CrossEntropyLoss{weight: 1}
	}
	h.AddChild("fc", fc)
	return h, nil
}

// TopK are the configured top-k values.
func (h *LinearClsHead) TopK() []int { return append([]int(nil), h.topk...) }

// NumClasses is the number of classes.
func (h *LinearClsHead) NumClasses() int { return h.fc.Weight.Shape()[0] }

// Forward maps the last feature (N×in_channels) to logits.
func (h *LinearClsHead) Forward(b *nn.Binding, feats []*gorgonia.Node) (*gorgonia.Node, error) {
	if len(feats) == 0 {
		return nil, fmt.Errorf("%s: no features to classify", h.Path())
	}
	x := feats[len(feats)-1]
	if x.Dims() != 2 {
		return nil, fmt.Errorf("%s: the feature has shape %v; a linear head needs N×C (pool it with a GlobalAveragePooling neck)", h.Path(), x.Shape())
	}
	return h.fc.Forward(b, x)
}

// Loss returns the term "loss", as mmcls names it.
func (h *LinearClsHead) Loss(_ *nn.Binding, logits *gorgonia.Node, labels []int) (models.Losses, error) {
	l, err := h.loss.Loss(logits, labels)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.Path(), err)
	}
	return models.Losses{{Name: "loss", Node: l}}, nil
}

// InitWeights draws fc's weight from N(0, 0.01²) with a zero bias, mmcls's
// init_cfg for LinearClsHead.
func (h *LinearClsHead) InitWeights(rng *rand.Rand) error {
	nn.InitNormal(h.fc.Weight, 0, 0.01, rng)
	nn.InitConstant(h.fc.Bias, 0)
	return nil
}

func init() {
	registry.MustRegister(models.ClsHeads, "LinearClsHead", func(o LinearClsHeadOptions) (models.ClsHead, error) {
		return NewLinearClsHead(o)
	})
}
