package contrib

import (
	"fmt"
	"math/rand/v2"

	"gorgonia.org/gorgonia"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/registry"
)

// MixedOpNetOptions are the keys of the MixedOpNet backbone.
type MixedOpNetOptions struct {
	// InChannels is the image's channels.
	InChannels int `cfg:"in_channels"`
	// Channels are the widths of the cells; each cell halves the
	// resolution.
	Channels []int `cfg:"channels,required"`
	// Kernels are the candidate convolutions of every cell, by kernel size.
	Kernels []int `cfg:"kernels"`
}

// Defaults: RGB input and 3x3, 5x5 and 7x7 candidates.
func (o *MixedOpNetOptions) Defaults() {
	o.InChannels = 3
	o.Kernels = []int{3, 5, 7}
}

// MixedOpNet is a small DARTS-style backbone: a stem, then cells whose
// output is the softmax(alpha)-weighted sum of candidate convolutions
// (DARTS's MixedOp). Each cell's alpha is a parameter named
// cells.<i>.alpha, an architecture weight DiffNAS updates itself.
type MixedOpNet struct {
	nn.Base
	stem  *nn.ConvModule
	cells []*mixedCell
}

// mixedCell is one cell: candidates and their architecture weights.
type mixedCell struct {
	nn.Base
	alpha *nn.Param
	ops   []*nn.ConvModule
}

// NewMixedOpNet builds the backbone.
func NewMixedOpNet(o MixedOpNetOptions) (*MixedOpNet, error) {
	if len(o.Channels) == 0 || len(o.Kernels) == 0 {
		return nil, fmt.Errorf("channels and kernels must not be empty")
	}
	stem, err := nn.NewConvModule(nn.ConvModuleConfig{In: o.InChannels, Out: o.Channels[0], Kernel: 3, Padding: 1, Norm: true, ReLU: true})
	if err != nil {
		return nil, err
	}
	n := &MixedOpNet{stem: stem}
	n.AddChild("stem", stem)
	cells := &nn.Base{}
	n.AddChild("cells", cells)
	in := o.Channels[0]
	for i, out := range o.Channels {
		c := &mixedCell{}
		c.alpha = c.AddParam("alpha", nn.KindWeight, len(o.Kernels))
		choices := &nn.Base{}
		c.AddChild("choices", choices)
		for _, k := range o.Kernels {
			if k <= 0 || k%2 == 0 {
				return nil, fmt.Errorf("kernels: %d is not a positive odd size", k)
			}
			op, err := nn.NewConvModule(nn.ConvModuleConfig{In: in, Out: out, Kernel: k, Stride: 2, Padding: k / 2, Norm: true, ReLU: true})
			if err != nil {
				return nil, err
			}
			choices.AddChild(fmt.Sprintf("conv_%dx%d", k, k), op)
			c.ops = append(c.ops, op)
		}
		cells.AddChild(fmt.Sprint(i), c)
		n.cells = append(n.cells, c)
		in = out
	}
	return n, nil
}

// Forward returns the last cell's features.
func (n *MixedOpNet) Forward(b *nn.Binding, x *gorgonia.Node) ([]*gorgonia.Node, error) {
	y, err := n.stem.Forward(b, x)
	if err != nil {
		return nil, err
	}
	for _, c := range n.cells {
		if y, err = c.forward(b, y); err != nil {
			return nil, fmt.Errorf("%s: %w", c.Path(), err)
		}
	}
	return []*gorgonia.Node{y}, nil
}

// forward is sum_i softmax(alpha)_i * op_i(x).
func (c *mixedCell) forward(b *nn.Binding, x *gorgonia.Node) (*gorgonia.Node, error) {
	w, err := gorgonia.SoftMax(b.Param(c.alpha))
	if err != nil {
		return nil, err
	}
	var sum *gorgonia.Node
	for i, op := range c.ops {
		y, err := op.Forward(b, x)
		if err != nil {
			return nil, err
		}
		wi, err := gorgonia.Slice(w, gorgonia.S(i))
		if err != nil {
			return nil, err
		}
		if y, err = gorgonia.Mul(wi, y); err != nil {
			return nil, err
		}
		if sum == nil {
			sum = y
		} else if sum, err = gorgonia.Add(sum, y); err != nil {
			return nil, err
		}
	}
	return sum, nil
}

// InitWeights draws the convolutions from N(0, 1/fan_in); architecture
// weights start equal (zero), so every candidate starts at the same share.
func (n *MixedOpNet) InitWeights(rng *rand.Rand) error {
	for _, p := range n.NamedParameters() {
		if p.Kind() == nn.KindWeight && len(p.Shape()) == 4 {
			if err := nn.InitFanIn(p, rng); err != nil {
				return err
			}
		}
	}
	return nil
}

// Alphas are the architecture weights, one softmax distribution per cell.
func (n *MixedOpNet) Alphas() []*nn.Param {
	out := make([]*nn.Param, len(n.cells))
	for i, c := range n.cells {
		out[i] = c.alpha
	}
	return out
}

func init() {
	registry.MustRegister(models.Backbones, "MixedOpNet", func(o MixedOpNetOptions) (models.Backbone, error) { return NewMixedOpNet(o) })
}
