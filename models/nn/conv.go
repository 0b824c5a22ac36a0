package nn

import (
	"fmt"

	"github.com/razorgo/razor/models/ops"
	"gorgonia.org/gorgonia"
)

// Conv2dConfig describes a square 2-D convolution like torch.nn.Conv2d.
// Zero Stride, Dilation and Groups mean 1; zero Padding means none.
type Conv2dConfig struct {
	// In and Out are the input and output channels.
	In, Out int
	// Kernel is the side of the square kernel.
	Kernel int
	// Stride is the step between output positions (0 means 1).
	Stride int
	// Padding is the zero padding on each side.
	Padding int
	// Dilation is the spacing between kernel taps (0 means 1).
	Dilation int
	// Groups splits the channels into independent groups (0 means 1);
	// Groups == In == Out is a depthwise convolution.
	Groups int
	// Bias adds a learned per-channel bias.
	Bias bool
}

// Conv2d is a 2-D convolution with parameters "weight"
// (Out × In/Groups × Kernel × Kernel) and, with Bias, "bias" (Out). Its
// parameters are marked depthwise when In == Groups, mmcv's test for a
// depthwise convolution.
type Conv2d struct {
	Base
	// Weight is the kernel; Bias is nil without a bias.
	Weight, Bias *Param
	cfg          Conv2dConfig
}

// NewConv2d builds a convolution with zero weights; initialise them with
// the Init functions. A config with non-positive sizes or channel counts
// not divisible by Groups is an error naming the numbers.
func NewConv2d(cfg Conv2dConfig) (*Conv2d, error) {
	for _, d := range []*int{&cfg.Stride, &cfg.Dilation, &cfg.Groups} {
		if *d == 0 {
			*d = 1
		}
	}
	if cfg.In <= 0 || cfg.Out <= 0 || cfg.Kernel <= 0 || cfg.Stride < 0 || cfg.Dilation < 0 || cfg.Groups < 0 || cfg.Padding < 0 {
		return nil, fmt.Errorf("conv2d: in %d, out %d and kernel %d must be positive, stride %d, dilation %d, groups %d and padding %d non-negative",
			cfg.In, cfg.Out, cfg.Kernel, cfg.Stride, cfg.Dilation, cfg.Groups, cfg.Padding)
	}
	if cfg.In%cfg.Groups != 0 || cfg.Out%cfg.Groups != 0 {
		return nil, fmt.Errorf("conv2d: in %d and out %d channels must both be divisible by groups %d", cfg.In, cfg.Out, cfg.Groups)
	}
	c := &Conv2d{cfg: cfg}
	c.Weight = c.AddParam("weight", KindWeight, cfg.Out, cfg.In/cfg.Groups, cfg.Kernel, cfg.Kernel)
	if cfg.Bias {
		c.Bias = c.AddParam("bias", KindBias, cfg.Out)
	}
	if cfg.In == cfg.Groups {
		c.Weight.MarkDepthwise()
		if c.Bias != nil {
			c.Bias.MarkDepthwise()
		}
	}
	return c, nil
}

// Config returns the convolution's settings, with defaults filled in.
func (c *Conv2d) Config() Conv2dConfig { return c.cfg }

// Forward convolves x (N × In × H × W).
func (c *Conv2d) Forward(b *Binding, x *gorgonia.Node) (*gorgonia.Node, error) {
	var bias *gorgonia.Node
	if c.Bias != nil {
		bias = b.Param(c.Bias)
	}
	y, err := ops.Conv2d(x, b.Param(c.Weight), bias, ops.Conv2dParams{
		Stride:   [2]int{c.cfg.Stride, c.cfg.Stride},
		Padding:  [2]int{c.cfg.Padding, c.cfg.Padding},
		Dilation: [2]int{c.cfg.Dilation, c.cfg.Dilation},
		Groups:   c.cfg.Groups,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Path(), err)
	}
	if b.Counting() {
		s := y.Shape()
		positions := int64(s[0] * s[2] * s[3])
		flops := int64(c.cfg.Kernel*c.cfg.Kernel*(c.cfg.In/c.cfg.Groups)*c.cfg.Out) * positions
		if c.Bias != nil {
			flops += int64(c.cfg.Out) * positions
		}
		b.AddCost(Cost{Path: c.Path(), Type: "Conv2d", FLOPs: flops, Params: ParamCount(c.Weight, c.Bias)})
	}
	return y, nil
}
