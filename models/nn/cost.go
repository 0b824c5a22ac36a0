package nn

import "gorgonia.org/gorgonia"

// Cost is what one layer adds to a forward pass, counted as mmcv's
// get_model_complexity_info counts it (its hooks fire on the module types
// listed with each Type below, by exact type): a FLOP is one multiply-add.
//
//   - Conv2d: kh·kw·(Cin/groups)·Cout·Hout·Wout per image, plus
//     Cout·Hout·Wout with a bias.
//   - BatchNorm2d: the input's elements, twice when affine (always here).
//   - ReLU: the output's elements.
//   - Linear: the input's elements times out_features (no bias term).
//   - AdaptiveAvgPool2d (global average pooling): the input's elements.
//
// Concatenation, channel split and shuffle, additions and softmax cost
// nothing, as in mmcv.
type Cost struct {
	// Path is the layer's full module path; a ReLU that ConvModule applies
	// is named like mmcv's child, "<conv module>.activate".
	Path string
	// Type is the PyTorch module class mmcv's counter treats the layer as.
	Type string
	// FLOPs is the layer's count for the whole batch of this pass.
	FLOPs int64
	// Params is the number of the layer's own parameter values.
	Params int64
}

// CountCosts makes the layers record their Cost in this binding during
// the forward pass. Counting needs only the graph's shapes, so the graph
// need not run.
func (b *Binding) CountCosts() { b.counting = true }

// Counting reports whether CountCosts was called.
func (b *Binding) Counting() bool { return b != nil && b.counting }

// AddCost records c when counting; layers outside this package that mmcv's
// counter knows (a global pooling neck) call it from their Forward.
func (b *Binding) AddCost(c Cost) {
	if b.Counting() {
		b.costs = append(b.costs, c)
	}
}

// Costs lists the recorded costs in forward order.
func (b *Binding) Costs() []Cost { return append([]Cost(nil), b.costs...) }

// ParamCount is the number of values in the parameters.
func ParamCount(ps ...*Param) int64 {
	var n int64
	for _, p := range ps {
		if p != nil {
			n += int64(p.Shape().TotalSize())
		}
	}
	return n
}

// Elements is the number of values of a node's shape.
func Elements(n *gorgonia.Node) int64 { return int64(n.Shape().TotalSize()) }

// JoinPath joins module path components, skipping an empty prefix (the
// root's path).
func JoinPath(prefix, name string) string { return join(prefix, name) }
