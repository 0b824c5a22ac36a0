// Package necks holds the necks razor builds from configs: the layers
// between a backbone and a head (GlobalAveragePooling for classifiers).
//
// It imports models, models/nn, models/ops and registry.
package necks

import (
	"fmt"

	"gorgonia.org/gorgonia"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/models/ops"
	"github.com/razorgo/razor/registry"
)

// GlobalAveragePoolingOptions configure GlobalAveragePooling.
type GlobalAveragePoolingOptions struct {
	// Dim is the pooled dimensionality; only 2 (images) exists here.
	Dim int `cfg:"dim"`
}

// Defaults sets mmcls's dim=2.
func (o *GlobalAveragePoolingOptions) Defaults() { o.Dim = 2 }

// GlobalAveragePooling is mmcls's neck of the same name: every feature
// map N×C×H×W becomes its N×C spatial mean. It has no parameters. Its
// FLOPs are counted as mmcv counts the AdaptiveAvgPool2d inside it.
type GlobalAveragePooling struct {
	nn.Base
}

// NewGlobalAveragePooling checks the options.
func NewGlobalAveragePooling(o GlobalAveragePoolingOptions) (*GlobalAveragePooling, error) {
	if o.Dim != 2 {
		return nil, fmt.Errorf("dim %d is not supported; razor pools 2-D feature maps (dim: 2)", o.Dim)
	}
	return &GlobalAveragePooling{}, nil
}

// Forward pools each feature map.
func (g *GlobalAveragePooling) Forward(b *nn.Binding, feats []*gorgonia.Node) ([]*gorgonia.Node, error) {
	out := make([]*gorgonia.Node, len(feats))
	for i, f := range feats {
		y, err := ops.GlobalAvgPool2d(f)
		if err != nil {
			return nil, fmt.Errorf("neck: %w", err)
		}
		b.AddCost(nn.Cost{Path: nn.JoinPath(g.Path(), "gap"), Type: "AdaptiveAvgPool2d", FLOPs: nn.Elements(f)})
		out[i] = y
	}
	return out, nil
}

func init() {
	registry.MustRegister(models.Necks, "GlobalAveragePooling", func(o GlobalAveragePoolingOptions) (models.Neck, error) {
		return NewGlobalAveragePooling(o)
	})
}
