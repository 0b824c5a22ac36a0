package backbones

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"gorgonia.org/gorgonia"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/registry"
)

// SearchableShuffleNetV2Options configure SearchableShuffleNetV2; keys and
// defaults are mmrazor's.
type SearchableShuffleNetV2Options struct {
	// StemMultiplier scales the stem's 16 channels.
	StemMultiplier int `cfg:"stem_multiplier"`
	// WidenFactor scales the stage widths 64, 160, 320 and 640 (rounded
	// half to even, as Python's round).
	WidenFactor float64 `cfg:"widen_factor"`
	// OutIndices are the layers whose outputs Forward returns: 0-3 the
	// stages, 4 the last layer. Default [4].
	OutIndices []int `cfg:"out_indices"`
	// WithLastLayer adds the 1x1 conv to 1024 channels (layers.4) that
	// classification uses; detection drops it.
	WithLastLayer bool `cfg:"with_last_layer"`
	// NormCfg configures every norm layer.
	NormCfg nn.NormCfg `cfg:"norm_cfg"`
	// StemStride is conv1's stride (razor's key; mmrazor fixes it at 2).
	// Small inputs such as 32x32 digits train far better with 1, which keeps
	// the last stage at 2x2 instead of 1x1, as SPOS ports to CIFAR do.
	StemStride int `cfg:"stem_stride"`
}

// Defaults sets mmrazor's defaults.
func (o *SearchableShuffleNetV2Options) Defaults() {
	o.StemMultiplier = 1
	o.WidenFactor = 1
	o.OutIndices = []int{4}
	o.WithLastLayer = true
	o.NormCfg = nn.DefaultNormCfg()
	o.StemStride = 2
}

// lastChannels is the width of the last layer, whatever widen_factor.
const lastChannels = 1024

// stages are the block counts and widths of the four stages.
func stages() (blocks, widths []int) { return []int{4, 4, 8, 4}, []int{64, 160, 320, 640} }

// PlaceholderGroup is the placeholder group of every searchable block,
// the key a mutator's placeholder_mapping gives its candidate ops under.
const PlaceholderGroup = "all_blocks"

// SearchableShuffleNetV2 is the DetNAS/SPOS search space: a stem conv1
// (3x3 stride 2, 16 channels, BN, ReLU), four stages of 4, 4, 8 and 4
// searchable blocks under layers.0-3 (block 0 of each with stride 2), and
// optionally layers.4, a 1x1 conv to 1024 channels with BN and ReLU. Each
// block starts as an nn.Placeholder with space id
// stage_<s>_block_<b>; a mutator replaces it with the candidate ops.
type SearchableShuffleNetV2 struct {
	nn.Base
	conv1      *nn.ConvModule
	layers     *nn.Sequential
	outIndices []int
	channels   []int
}

// NewSearchableShuffleNetV2 builds the backbone with placeholder blocks.
func NewSearchableShuffleNetV2(o SearchableShuffleNetV2Options) (*SearchableShuffleNetV2, error) {
	if err := o.NormCfg.Validate(); err != nil {
		return nil, err
	}
	if o.StemMultiplier <= 0 {
		return nil, fmt.Errorf("stem_multiplier %d must be positive", o.StemMultiplier)
	}
	if o.StemStride != 1 && o.StemStride != 2 {
		return nil, fmt.Errorf("stem_stride %d must be 1 or 2", o.StemStride)
	}
	if !(o.WidenFactor > 0) {
		return nil, fmt.Errorf("widen_factor %g must be positive", o.WidenFactor)
	}
	last := 3
	if o.WithLastLayer {
		last = 4
	}
	if len(o.OutIndices) == 0 {
		return nil, fmt.Errorf("out_indices is empty; name the layers to return, 0-%d", last)
	}
	for _, i := range o.OutIndices {
		if i < 0 || i > last {
			hint := ""
			if i == 4 {
				hint = " (4 is the last layer, which with_last_layer: false removes)"
			}
			return nil, fmt.Errorf("out_indices names layer %d; valid layers are 0-%d%s", i, last, hint)
		}
	}
	net := &SearchableShuffleNetV2{outIndices: slices.Clone(o.OutIndices)}
	stageBlocks, stageWidths := stages()
	for _, w := range stageWidths {
		c := int(math.RoundToEven(float64(w) * o.WidenFactor))
		if c < 2 || c%2 != 0 {
			return nil, fmt.Errorf("widen_factor %g makes a stage %d channels wide (from %d); every stage needs an even width of at least 2, since its blocks split channels in halves", o.WidenFactor, c, w)
		}
		net.channels = append(net.channels, c)
	}
	in := 16 * o.StemMultiplier
	var err error
	if net.conv1, err = nn.NewConvModuleNorm(nn.ConvModuleConfig{In: 3, Out: in, Kernel: 3, Stride: o.StemStride, Padding: 1, Norm: true, ReLU: true}, o.NormCfg); err != nil {
		return nil, err
	}
	net.AddChild("conv1", net.conv1)
	net.layers = nn.NewSequential()
	for s, n := range stageBlocks {
		stage := nn.NewSequential()
		for b := range n {
			stride := 1
			if b == 0 {
				stride = 2
			}
			stage.Append(nn.NewPlaceholder(PlaceholderGroup, fmt.Sprintf("stage_%d_block_%d", s, b), map[string]any{
				"in_channels": in, "out_channels": net.channels[s], "stride": stride,
			}))
			in = net.channels[s]
		}
		net.layers.Append(stage)
	}
	if o.WithLastLayer {
		lastLayer, err := nn.NewConvModuleNorm(nn.ConvModuleConfig{In: in, Out: lastChannels, Kernel: 1, Norm: true, ReLU: true}, o.NormCfg)
		if err != nil {
			return nil, err
		}
		net.layers.Append(lastLayer)
	}
	net.AddChild("layers", net.layers)
	return net, nil
}

// Channels are the widths of the four stages.
func (n *SearchableShuffleNetV2) Channels() []int { return slices.Clone(n.channels) }

// HasLastLayer reports whether layers.4, the 1x1 conv to 1024 channels,
// exists.
func (n *SearchableShuffleNetV2) HasLastLayer() bool { return n.layers.Len() == 5 }

// Forward returns the outputs of the layers in out_indices, in layer order.
func (n *SearchableShuffleNetV2) Forward(b *nn.Binding, x *gorgonia.Node) ([]*gorgonia.Node, error) {
	x, err := n.conv1.Forward(b, x)
	if err != nil {
		return nil, err
	}
	var outs []*gorgonia.Node
	for i := range n.layers.Len() {
		l := n.layers.At(i)
		if l == nil {
			return nil, fmt.Errorf("%s: layer %d cannot run", n.Path(), i)
		}
		if x, err = l.Forward(b, x); err != nil {
			return nil, err
		}
		if slices.Contains(n.outIndices, i) {
			outs = append(outs, x)
		}
	}
	return outs, nil
}

// InitWeights draws the weights as mmrazor's SearchableShuffleNetV2 does:
// convolutions whose module path (below the backbone) contains "conv1"
// from N(0, 0.01²), every other convolution from N(0, (1/fan_in)²) with
// fan_in = weight.shape[1]; BN weight 1, bias 1e-4, running mean 0. It
// covers the candidate ops, so call it after the mutator has replaced the
// placeholders.
func (n *SearchableShuffleNetV2) InitWeights(rng *rand.Rand) error {
	var err error
	nn.Walk(n, func(path string, m nn.Module) {
		if err != nil {
			return
		}
		switch l := m.(type) {
		case *nn.Conv2d:
			if strings.Contains(path, "conv1") {
				nn.InitNormal(l.Weight, 0, 0.01, rng)
			} else {
				err = nn.InitFanIn(l.Weight, rng)
			}
			if l.Bias != nil {
				nn.InitConstant(l.Bias, 0)
			}
		case *nn.BatchNorm2d:
			nn.InitConstant(l.Weight, 1)
			nn.InitConstant(l.Bias, 1e-4)
			clear(l.State.RunningMean.Float32s())
		}
	})
	return err
}

func init() {
	registry.MustRegister(models.Backbones, "SearchableShuffleNetV2", func(o SearchableShuffleNetV2Options) (models.Backbone, error) {
		return NewSearchableShuffleNetV2(o)
	})
}

// LastLayer is layers.4, the classification-only 1x1 conv to 1024
// channels, or nil without it.
func (n *SearchableShuffleNetV2) LastLayer() nn.Module {
	if !n.HasLastLayer() {
		return nil
	}
	return n.layers.At(4)
}
