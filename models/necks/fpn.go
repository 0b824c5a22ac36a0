package necks

import (
	"fmt"
	"math/rand/v2"
	"strconv"

	"gorgonia.org/gorgonia"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/models/ops"
	"github.com/razorgo/razor/registry"
)

// FPNOptions are mmdet 2.x's FPN keys.
type FPNOptions struct {
	// InChannels are the channels of the backbone outputs, finest first.
	InChannels []int `cfg:"in_channels,required"`
	// OutChannels is every pyramid level's width.
	OutChannels int `cfg:"out_channels,required"`
	// NumOuts is the number of levels returned; levels beyond the inputs
	// are extra levels (stride-2 max pooling, or convolutions with
	// add_extra_convs).
	NumOuts int `cfg:"num_outs,required"`
	// StartLevel and EndLevel choose the backbone outputs used (EndLevel
	// -1: through the last; otherwise exclusive, as mmdet's).
	StartLevel int `cfg:"start_level"`
	EndLevel   int `cfg:"end_level"`
	// AddExtraConvs is false (extra levels by max pooling), true (=
	// on_input), or the source of the first extra convolution: on_input,
	// on_lateral or on_output.
	AddExtraConvs any `cfg:"add_extra_convs"`
	// ReluBeforeExtraConvs applies a ReLU before every extra convolution
	// after the first.
	ReluBeforeExtraConvs bool `cfg:"relu_before_extra_convs"`
	// NoNormOnLateral leaves the lateral convolutions without norm.
	NoNormOnLateral bool `cfg:"no_norm_on_lateral"`
	// ConvCfg must be null (a plain Conv2d).
	ConvCfg any `cfg:"conv_cfg"`
	// NormCfg adds a norm to every ConvModule; null for none.
	NormCfg *nn.NormCfg `cfg:"norm_cfg"`
	// ActCfg is null (mmdet's default: no activation) or {type: ReLU}.
	ActCfg map[string]any `cfg:"act_cfg"`
	// UpsampleCfg is the top-down upsampling: {mode: nearest} to the finer
	// level's size, or {mode: nearest, scale_factor: 2}.
	UpsampleCfg map[string]any `cfg:"upsample_cfg"`
	// InitCfg is accepted for mmdet configs; razor initialises the
	// convolutions as mmcv does (see FPN.InitWeights).
	InitCfg any `cfg:"init_cfg"`
}

// Defaults are mmdet's: end_level -1, nearest upsampling.
func (o *FPNOptions) Defaults() {
	o.EndLevel = -1
	o.AddExtraConvs = false
	o.UpsampleCfg = map[string]any{"mode": "nearest"}
}

// FPN is mmdet's Feature Pyramid Network: 1x1 lateral ConvModules
// ("lateral_convs.i") bring every used backbone output to OutChannels, a
// top-down pass adds each coarser lateral, upsampled by nearest neighbour,
// to the finer one, 3x3 ConvModules ("fpn_convs.i") smooth every level,
// and extra levels come from stride-2 max pooling of the last output or
// from stride-2 3x3 convolutions (also in fpn_convs).
type FPN struct {
	nn.Base
	// lateral and fpn are the children of lateralModules and
	// outputConvModule, typed.
	lateral, fpn                     []*nn.ConvModule
	lateralModules, outputConvModule *nn.Sequential
	start, backEnd, numOuts          int
	extraSource                      string // "" (max pooling), on_input, on_lateral or on_output
	reluBeforeExtra                  bool
	upsampleScale                    int // 0: to the finer level's size
}

// NewFPN checks the options and builds the layers.
func NewFPN(o FPNOptions) (*FPN, error) {
	if len(o.InChannels) == 0 {
		return nil, fmt.Errorf("in_channels must list the backbone outputs' channels")
	}
	for i, c := range o.InChannels {
		if c <= 0 {
			return nil, fmt.Errorf("in_channels[%d] = %d must be positive", i, c)
		}
	}
	if o.OutChannels <= 0 {
		return nil, fmt.Errorf("out_channels %d must be positive", o.OutChannels)
	}
	if o.ConvCfg != nil {
		return nil, fmt.Errorf("conv_cfg %v is not supported; remove it (razor's FPN uses plain Conv2d)", o.ConvCfg)
	}
	relu := false
	if o.ActCfg != nil {
		if t, _ := o.ActCfg["type"].(string); t != "ReLU" || len(o.ActCfg) != 1 {
			return nil, fmt.Errorf("act_cfg %v is not supported; use null (no activation) or {type: ReLU}", o.ActCfg)
		}
		relu = true
	}
	f := &FPN{start: o.StartLevel, numOuts: o.NumOuts, reluBeforeExtra: o.ReluBeforeExtraConvs}
	if err := f.decodeUpsample(o.UpsampleCfg); err != nil {
		return nil, err
	}
	n := len(o.InChannels)
	if o.StartLevel < 0 || o.StartLevel >= n {
		return nil, fmt.Errorf("start_level %d must lie in [0, %d) (the number of in_channels)", o.StartLevel, n)
	}
	if o.EndLevel == -1 || o.EndLevel == n {
		f.backEnd = n
		if o.NumOuts < n-o.StartLevel {
			return nil, fmt.Errorf("num_outs %d must be at least the %d levels used (in_channels from start_level %d)", o.NumOuts, n-o.StartLevel, o.StartLevel)
		}
	} else {
		if o.EndLevel <= o.StartLevel || o.EndLevel > n {
			return nil, fmt.Errorf("end_level %d must be -1 or lie in (start_level %d, %d]", o.EndLevel, o.StartLevel, n)
		}
		f.backEnd = o.EndLevel
		if o.NumOuts != o.EndLevel-o.StartLevel {
			return nil, fmt.Errorf("num_outs %d must equal end_level - start_level = %d when end_level is set", o.NumOuts, o.EndLevel-o.StartLevel)
		}
	}
	switch v := o.AddExtraConvs.(type) {
	case bool:
		if v {
			f.extraSource = "on_input"
		}
	case string:
		switch v {
		case "on_input", "on_lateral", "on_output":
			f.extraSource = v
		default:
			return nil, fmt.Errorf("add_extra_convs %q is not supported; use false, true, on_input, on_lateral or on_output", v)
		}
	case nil:
	default:
		return nil, fmt.Errorf("add_extra_convs must be a boolean or one of on_input, on_lateral, on_output, not %v", v)
	}
	var norm nn.NormCfg
	if o.NormCfg != nil {
		norm = *o.NormCfg
		if err := norm.Validate(); err != nil {
			return nil, err
		}
	}
	build := func(in, kernel, stride int, withNorm bool) (*nn.ConvModule, error) {
		cfg := nn.ConvModuleConfig{In: in, Out: o.OutChannels, Kernel: kernel, Stride: stride, Padding: kernel / 2, Norm: withNorm, ReLU: relu}
		if withNorm {
			return nn.NewConvModuleNorm(cfg, norm)
		}
		return nn.NewConvModule(cfg)
	}
	f.lateralModules, f.outputConvModule = nn.NewSequential(), nn.NewSequential()
	for i := f.start; i < f.backEnd; i++ {
		l, err := build(o.InChannels[i], 1, 1, o.NormCfg != nil && !o.NoNormOnLateral)
		if err != nil {
			return nil, err
		}
		c, err := build(o.OutChannels, 3, 1, o.NormCfg != nil)
		if err != nil {
			return nil, err
		}
		f.lateral, f.fpn = append(f.lateral, l), append(f.fpn, c)
		f.lateralModules.Append(l)
		f.outputConvModule.Append(c)
	}
	if f.extraSource != "" {
		for i := 0; i < o.NumOuts-(f.backEnd-f.start); i++ {
			in := o.OutChannels
			if i == 0 && f.extraSource == "on_input" {
				in = o.InChannels[f.backEnd-1]
			}
			c, err := build(in, 3, 2, o.NormCfg != nil)
			if err != nil {
				return nil, err
			}
			f.fpn = append(f.fpn, c)
			f.outputConvModule.Append(c)
		}
	}
	f.AddChild("lateral_convs", f.lateralModules)
	f.AddChild("fpn_convs", f.outputConvModule)
	return f, nil
}

func (f *FPN) decodeUpsample(cfg map[string]any) error {
	for k, v := range cfg {
		switch k {
		case "mode":
			if v != "nearest" {
				return fmt.Errorf("upsample_cfg.mode %v is not supported; use nearest", v)
			}
		case "scale_factor":
			s, ok := v.(int)
			if !ok || s < 1 {
				return fmt.Errorf("upsample_cfg.scale_factor %v must be a positive integer", v)
			}
			f.upsampleScale = s
		default:
			return fmt.Errorf("upsample_cfg.%s is not supported; use mode (nearest) and optionally scale_factor", k)
		}
	}
	return nil
}

// Forward maps the backbone outputs (finest first) to NumOuts pyramid
// levels, finest first.
func (f *FPN) Forward(b *nn.Binding, feats []*gorgonia.Node) ([]*gorgonia.Node, error) {
	if len(feats) < f.backEnd {
		return nil, fmt.Errorf("%s: got %d feature maps, the neck's in_channels need %d", f.Path(), len(feats), f.backEnd)
	}
	used := len(f.lateral)
	laterals := make([]*gorgonia.Node, used)
	for i, l := range f.lateral {
		y, err := l.Forward(b, feats[f.start+i])
		if err != nil {
			return nil, err
		}
		laterals[i] = y
	}
	for i := used - 1; i > 0; i-- {
		fine := laterals[i-1].Shape()
		h, w := fine[2], fine[3]
		if f.upsampleScale > 0 {
			c := laterals[i].Shape()
			h, w = c[2]*f.upsampleScale, c[3]*f.upsampleScale
		}
		up, err := ops.UpsampleNearest(laterals[i], h, w)
		if err != nil {
			return nil, fmt.Errorf("%s: top-down level %d: %w", f.Path(), i, err)
		}
		sum, err := gorgonia.Add(laterals[i-1], up)
		if err != nil {
			return nil, fmt.Errorf("%s: top-down level %d: %w", f.Path(), i, err)
		}
		laterals[i-1] = sum
	}
	outs := make([]*gorgonia.Node, 0, f.numOuts)
	for i := 0; i < used; i++ {
		y, err := f.fpn[i].Forward(b, laterals[i])
		if err != nil {
			return nil, err
		}
		outs = append(outs, y)
	}
	for i := used; i < f.numOuts; i++ {
		if f.extraSource == "" {
			y, err := ops.MaxPool2d(outs[len(outs)-1], 1, 2, 0)
			if err != nil {
				return nil, fmt.Errorf("%s: extra level %d: %w", f.Path(), i, err)
			}
			b.AddCost(nn.Cost{Path: nn.JoinPath(f.Path(), "max_pool"+strconv.Itoa(i)), Type: "MaxPool2d", FLOPs: nn.Elements(outs[len(outs)-1])})
			outs = append(outs, y)
			continue
		}
		x := outs[len(outs)-1]
		if i == used {
			switch f.extraSource {
			case "on_input":
				x = feats[f.backEnd-1]
			case "on_lateral":
				x = laterals[used-1]
			}
		} else if f.reluBeforeExtra {
			var err error
			if x, err = ops.ReLU(x); err != nil {
				return nil, err
			}
		}
		y, err := f.fpn[i].Forward(b, x)
		if err != nil {
			return nil, err
		}
		outs = append(outs, y)
	}
	return outs, nil
}

// InitWeights initialises as mmcv 1.x ends up doing for mmdet's FPN: its
// Xavier init_cfg runs first, then every ConvModule's own init_weights
// (Kaiming normal, fan_out, for ReLU; bias 0; norm weight 1, bias 0)
// overrides it, so the Kaiming draw is what a trained mmdet FPN started
// from.
func (f *FPN) InitWeights(rng *rand.Rand) error {
	for _, group := range [][]*nn.ConvModule{f.lateral, f.fpn} {
		for _, c := range group {
			if err := c.InitKaiming(rng); err != nil {
				return err
			}
		}
	}
	return nil
}

func init() {
	registry.MustRegister(models.Necks, "FPN", func(o FPNOptions) (models.Neck, error) { return NewFPN(o) })
}
