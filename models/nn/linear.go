package nn

import (
	"fmt"

	"github.com/razorgo/razor/models/ops"
	"gorgonia.org/gorgonia"
)

// Linear is torch.nn.Linear: y = x·weightᵀ + bias with parameters "weight"
// (Out × In) and, with a bias, "bias" (Out).
type Linear struct {
	Base
	// Weight is the matrix; Bias is nil without a bias.
	Weight, Bias *Param
}

// NewLinear builds a linear layer with zero weights.
func NewLinear(in, out int, bias bool) (*Linear, error) {
	if in <= 0 || out <= 0 {
		return nil, fmt.Errorf("linear: in %d and out %d features must be positive", in, out)
	}
	l := &Linear{}
	l.Weight = l.AddParam("weight", KindWeight, out, in)
	if bias {
		l.Bias = l.AddParam("bias", KindBias, out)
	}
	return l, nil
}

// Forward maps x (N × In) to N × Out.
func (l *Linear) Forward(b *Binding, x *gorgonia.Node) (*gorgonia.Node, error) {
	var bias *gorgonia.Node
	if l.Bias != nil {
		bias = b.Param(l.Bias)
	}
	y, err := ops.Linear(x, b.Param(l.Weight), bias)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l.Path(), err)
	}
	b.AddCost(Cost{Path: l.Path(), Type: "Linear", FLOPs: Elements(x) * int64(y.Shape()[len(y.Shape())-1]), Params: ParamCount(l.Weight, l.Bias)})
	return y, nil
}
