package backbones

import (
	"fmt"

	"gorgonia.org/gorgonia"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/models/ops"
	"github.com/razorgo/razor/registry"
)

// ShuffleBlockOptions configure a ShuffleBlock. The mutator fills
// in_channels, out_channels and stride from the block's placeholder.
type ShuffleBlockOptions struct {
	KernelSize  int        `cfg:"kernel_size,required"`
	InChannels  int        `cfg:"in_channels,required"`
	OutChannels int        `cfg:"out_channels,required"`
	Stride      int        `cfg:"stride,required"`
	NormCfg     nn.NormCfg `cfg:"norm_cfg"`
}

// Defaults sets mmcv's default norm_cfg.
func (o *ShuffleBlockOptions) Defaults() { o.NormCfg = nn.DefaultNormCfg() }

// ShuffleXceptionOptions configure a ShuffleXception.
type ShuffleXceptionOptions struct {
	InChannels  int        `cfg:"in_channels,required"`
	OutChannels int        `cfg:"out_channels,required"`
	Stride      int        `cfg:"stride,required"`
	NormCfg     nn.NormCfg `cfg:"norm_cfg"`
}

// Defaults sets mmcv's default norm_cfg.
func (o *ShuffleXceptionOptions) Defaults() { o.NormCfg = nn.DefaultNormCfg() }

// shuffleUnit is what ShuffleBlock and ShuffleXception share: an optional
// branch1 (stride 2 only) and a branch2, concatenated and shuffled.
type shuffleUnit struct {
	nn.Base
	stride  int
	branch1 *nn.Sequential
	branch2 *nn.Sequential
}

// checkShape validates the channel and stride arguments of a block.
func checkShape(in, out, stride int) error {
	if in <= 0 || out <= 0 {
		return fmt.Errorf("in_channels %d and out_channels %d must be positive", in, out)
	}
	if out%2 != 0 {
		return fmt.Errorf("out_channels %d must be even: the block concatenates two halves", out)
	}
	switch stride {
	case 1:
		if in != out {
			return fmt.Errorf("a stride-1 block keeps its width: in_channels %d must equal out_channels %d", in, out)
		}
	case 2:
	default:
		return fmt.Errorf("stride %d must be 1 or 2", stride)
	}
	return nil
}

// convModule builds a square ConvModule with BN (and a ReLU when relu).
func convModule(in, out, kernel, stride, groups int, relu bool, norm nn.NormCfg) (*nn.ConvModule, error) {
	return nn.NewConvModuleNorm(nn.ConvModuleConfig{
		In: in, Out: out, Kernel: kernel, Stride: stride, Padding: kernel / 2, Groups: groups, Norm: true, ReLU: relu,
	}, norm)
}

// newBranch1 is the stride-2 shortcut branch: a depthwise kxk conv with
// BN, then a 1x1 conv in->mid with BN and ReLU.
func newBranch1(in, mid, kernel, stride int, norm nn.NormCfg) (*nn.Sequential, error) {
	dw, err := convModule(in, in, kernel, stride, in, false, norm)
	if err != nil {
		return nil, err
	}
	pw, err := convModule(in, mid, 1, 1, 1, true, norm)
	if err != nil {
		return nil, err
	}
	return nn.NewSequential(dw, pw), nil
}

// Forward runs the unit: with stride 2 both branches see x; with stride 1
// the first half of the channels passes through and branch2 transforms
// the second. The halves are concatenated and shuffled in two groups, in
// one op.
func (u *shuffleUnit) Forward(b *nn.Binding, x *gorgonia.Node) (*gorgonia.Node, error) {
	var left, right *gorgonia.Node
	var err error
	if u.stride > 1 {
		if left, err = u.branch1.Forward(b, x); err != nil {
			return nil, err
		}
		if right, err = u.branch2.Forward(b, x); err != nil {
			return nil, err
		}
	} else {
		var x2 *gorgonia.Node
		if left, x2, err = ops.ChannelSplit(x); err != nil {
			return nil, fmt.Errorf("%s: %w", u.Path(), err)
		}
		if right, err = u.branch2.Forward(b, x2); err != nil {
			return nil, err
		}
	}
	y, err := ops.ConcatShuffle(2, left, right)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.Path(), err)
	}
	return y, nil
}

// ShuffleBlock is ShuffleNetV2's unit with a kxk depthwise convolution
// (k = 3, 5 or 7), mmrazor's ShuffleBlock. With mid = out_channels/2:
// branch1 (stride 2 only) = depthwise kxk + BN, 1x1 in->mid + BN + ReLU;
// branch2 = 1x1 (in or mid)->mid + BN + ReLU, depthwise kxk + BN, 1x1
// mid->mid + BN + ReLU. Weights are named branch1.0.conv.weight,
// branch2.1.bn.running_mean ... as in the reference.
type ShuffleBlock struct {
	shuffleUnit
}

// NewShuffleBlock builds a ShuffleBlock.
func NewShuffleBlock(o ShuffleBlockOptions) (*ShuffleBlock, error) {
	if o.KernelSize != 3 && o.KernelSize != 5 && o.KernelSize != 7 {
		return nil, fmt.Errorf("kernel_size %d must be 3, 5 or 7", o.KernelSize)
	}
	if err := checkShape(o.InChannels, o.OutChannels, o.Stride); err != nil {
		return nil, err
	}
	mid := o.OutChannels / 2
	blk := &ShuffleBlock{shuffleUnit: shuffleUnit{stride: o.Stride}}
	in2 := mid
	if o.Stride > 1 {
		var err error
		if blk.branch1, err = newBranch1(o.InChannels, mid, o.KernelSize, o.Stride, o.NormCfg); err != nil {
			return nil, err
		}
		blk.AddChild("branch1", blk.branch1)
		in2 = o.InChannels
	}
	pw1, err := convModule(in2, mid, 1, 1, 1, true, o.NormCfg)
	if err != nil {
		return nil, err
	}
	dw, err := convModule(mid, mid, o.KernelSize, o.Stride, mid, false, o.NormCfg)
	if err != nil {
		return nil, err
	}
	pw2, err := convModule(mid, mid, 1, 1, 1, true, o.NormCfg)
	if err != nil {
		return nil, err
	}
	blk.branch2 = nn.NewSequential(pw1, dw, pw2)
	blk.AddChild("branch2", blk.branch2)
	return blk, nil
}

// DepthwiseSeparableConv is mmcv's DepthwiseSeparableConvModule as
// ShuffleXception uses it: children depthwise_conv (3x3 depthwise + BN,
// no activation) and pointwise_conv (1x1 + BN + ReLU).
type DepthwiseSeparableConv struct {
	nn.Base
	depthwise *nn.ConvModule
	pointwise *nn.ConvModule
}

// NewDepthwiseSeparableConv builds one in->out unit with the given stride.
func NewDepthwiseSeparableConv(in, out, stride int, norm nn.NormCfg) (*DepthwiseSeparableConv, error) {
	dw, err := convModule(in, in, 3, stride, in, false, norm)
	if err != nil {
		return nil, err
	}
	pw, err := convModule(in, out, 1, 1, 1, true, norm)
	if err != nil {
		return nil, err
	}
	d := &DepthwiseSeparableConv{depthwise: dw, pointwise: pw}
	d.AddChild("depthwise_conv", dw)
	d.AddChild("pointwise_conv", pw)
	return d, nil
}

// Forward runs the depthwise then the pointwise convolution.
func (d *DepthwiseSeparableConv) Forward(b *nn.Binding, x *gorgonia.Node) (*gorgonia.Node, error) {
	y, err := d.depthwise.Forward(b, x)
	if err != nil {
		return nil, err
	}
	return d.pointwise.Forward(b, y)
}

// ShuffleXception is mmrazor's ShuffleXception: branch1 as ShuffleBlock's
// with k = 3, and branch2 = three depthwise-separable 3x3 units (in or
// mid)->mid with the block's stride, then mid->mid twice.
type ShuffleXception struct {
	shuffleUnit
}

// NewShuffleXception builds a ShuffleXception.
func NewShuffleXception(o ShuffleXceptionOptions) (*ShuffleXception, error) {
	if err := checkShape(o.InChannels, o.OutChannels, o.Stride); err != nil {
		return nil, err
	}
	mid := o.OutChannels / 2
	blk := &ShuffleXception{shuffleUnit: shuffleUnit{stride: o.Stride}}
	in2 := mid
	if o.Stride > 1 {
		var err error
		if blk.branch1, err = newBranch1(o.InChannels, mid, 3, o.Stride, o.NormCfg); err != nil {
			return nil, err
		}
		blk.AddChild("branch1", blk.branch1)
		in2 = o.InChannels
	}
	blk.branch2 = nn.NewSequential()
	for i, in := range []int{in2, mid, mid} {
		stride := 1
		if i == 0 {
			stride = o.Stride
		}
		u, err := NewDepthwiseSeparableConv(in, mid, stride, o.NormCfg)
		if err != nil {
			return nil, err
		}
		blk.branch2.Append(u)
	}
	blk.AddChild("branch2", blk.branch2)
	return blk, nil
}

func init() {
	registry.MustRegister(models.Ops, "ShuffleBlock", func(o ShuffleBlockOptions) (models.Op, error) { return NewShuffleBlock(o) })
	registry.MustRegister(models.Ops, "ShuffleXception", func(o ShuffleXceptionOptions) (models.Op, error) { return NewShuffleXception(o) })
}
