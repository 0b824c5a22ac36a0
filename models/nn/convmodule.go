package nn

import (
	"fmt"
	"math/rand/v2"

	"github.com/razorgo/razor/models/ops"
	"gorgonia.org/gorgonia"
)

// ConvModuleConfig describes mmcv's ConvModule: a square convolution, then
// optionally BatchNorm2d, then optionally ReLU. Zero Stride, Dilation and
// Groups mean 1.
type ConvModuleConfig struct {
	// In, Out, Kernel, Stride, Padding, Dilation and Groups are as in
	// Conv2dConfig.
	In, Out  int
	Kernel   int
	Stride   int
	Padding  int
	Dilation int
	Groups   int
	// Norm adds a BatchNorm2d after the convolution.
	Norm bool
	// ReLU adds a ReLU at the end.
	ReLU bool
}

// ConvModule is mmcv's ConvModule with its child names: "conv" and, with a
// norm, "bn". The convolution has a bias exactly when there is no norm
// (mmcv's bias="auto"). The activation has no parameters and so no name in
// the state dict.
type ConvModule struct {
	Base
	// Conv is the convolution.
	Conv *Conv2d
	// BN is the norm, nil without one.
	BN   *BatchNorm2d
	relu bool
}

// NewConvModule builds a ConvModule.
func NewConvModule(cfg ConvModuleConfig) (*ConvModule, error) {
	conv, err := NewConv2d(Conv2dConfig{
		In: cfg.In, Out: cfg.Out, Kernel: cfg.Kernel, Stride: cfg.Stride,
		Padding: cfg.Padding, Dilation: cfg.Dilation, Groups: cfg.Groups, Bias: !cfg.Norm,
	})
	if err != nil {
		return nil, fmt.Errorf("conv module: %w", err)
	}
	m := &ConvModule{Conv: conv, relu: cfg.ReLU}
	m.AddChild("conv", conv)
	if cfg.Norm {
		if m.BN, err = NewBatchNorm2d(cfg.Out); err != nil {
			return nil, fmt.Errorf("conv module: %w", err)
		}
		m.AddChild("bn", m.BN)
	}
	return m, nil
}

// Forward runs conv, norm and activation. A norm followed by the ReLU runs
// as one fused op (ops.BatchNorm2dReLU); the costs are those of the two.
func (m *ConvModule) Forward(b *Binding, x *gorgonia.Node) (*gorgonia.Node, error) {
	y, err := m.Conv.Forward(b, x)
	if err != nil {
		return nil, err
	}
	switch {
	case m.BN != nil && m.relu:
		y, err = m.BN.forwardReLU(b, y)
	case m.BN != nil:
		y, err = m.BN.Forward(b, y)
	case m.relu:
		if y, err = ops.ReLU(y); err != nil {
			err = fmt.Errorf("%s: %w", m.Path(), err)
		}
	}
	if err != nil {
		return nil, err
	}
	if m.relu {
		b.AddCost(Cost{Path: join(m.Path(), "activate"), Type: "ReLU", FLOPs: Elements(y)})
	}
	return y, nil
}

// InitKaiming initialises the module as mmcv's ConvModule.init_weights
// does: the convolution from Kaiming normal (fan_out, ReLU gain), its bias
// zero, the norm's weight one and bias zero.
func (m *ConvModule) InitKaiming(rng *rand.Rand) error {
	if err := InitKaimingNormal(m.Conv.Weight, true, rng); err != nil {
		return err
	}
	if m.Conv.Bias != nil {
		InitConstant(m.Conv.Bias, 0)
	}
	if m.BN != nil {
		InitConstant(m.BN.Weight, 1)
		InitConstant(m.BN.Bias, 0)
	}
	return nil
}
