package nn

import (
	"fmt"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/razorgo/razor/models/ops"
)

// TestCostsFollowMMCV checks each layer's recorded cost against mmcv's
// formulas worked out by hand.
func TestCostsFollowMMCV(t *testing.T) {
	dw, err := NewConvModule(ConvModuleConfig{In: 4, Out: 4, Kernel: 3, Stride: 2, Padding: 1, Groups: 4, Norm: true, ReLU: true})
	if err != nil {
		t.Fatal(err)
	}
	biased, err := NewConv2d(Conv2dConfig{In: 4, Out: 6, Kernel: 1, Bias: true})
	if err != nil {
		t.Fatal(err)
	}
	fc, err := NewLinear(6, 5, true)
	if err != nil {
		t.Fatal(err)
	}
	root := &Base{}
	root.AddChild("dw", dw)
	root.AddChild("pw", biased)
	root.AddChild("fc", fc)
	relu := newReLU()
	root.AddChild("act", relu)

	b := NewBinding()
	b.CountCosts()
	x := b.Input("x", tensor.New(tensor.WithShape(2, 4, 8, 8), tensor.Of(tensor.Float32)))
	y, err := dw.Forward(b, x) // 2x4x4x4
	if err != nil {
		t.Fatal(err)
	}
	if y, err = biased.Forward(b, y); err != nil { // 2x6x4x4
		t.Fatal(err)
	}
	if y, err = relu.Forward(b, y); err != nil {
		t.Fatal(err)
	}
	flat := b.Input("flat", tensor.New(tensor.WithShape(2, 6), tensor.Of(tensor.Float32)))
	if _, err = fc.Forward(b, flat); err != nil {
		t.Fatal(err)
	}
	want := []Cost{
		{Path: "dw.conv", Type: "Conv2d", FLOPs: 3 * 3 * 1 * 4 * 2 * 4 * 4, Params: 4 * 9},
		{Path: "dw.bn", Type: "BatchNorm2d", FLOPs: 2 * 2 * 4 * 4 * 4, Params: 8},
		{Path: "dw.activate", Type: "ReLU", FLOPs: 2 * 4 * 4 * 4},
		{Path: "pw", Type: "Conv2d", FLOPs: 4*6*2*4*4 + 6*2*4*4, Params: 4*6 + 6},
		{Path: "act", Type: "ReLU", FLOPs: 2 * 6 * 4 * 4},
		{Path: "fc", Type: "Linear", FLOPs: 2 * 6 * 5, Params: 6*5 + 5},
	}
	got := b.Costs()
	if len(got) != len(want) {
		t.Fatalf("got %d costs %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("cost %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestCostsOnlyWhenCounting(t *testing.T) {
	conv, err := NewConv2d(Conv2dConfig{In: 1, Out: 1, Kernel: 1})
	if err != nil {
		t.Fatal(err)
	}
	b := NewBinding()
	if _, err := conv.Forward(b, b.Input("x", tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.Of(tensor.Float32)))); err != nil {
		t.Fatal(err)
	}
	if b.Counting() || len(b.Costs()) != 0 {
		t.Fatalf("a binding that does not count recorded %v", b.Costs())
	}
	var nilBinding *Binding
	nilBinding.AddCost(Cost{Path: "x", FLOPs: 1})
	if nilBinding.Counting() {
		t.Fatal("a nil binding counts")
	}
}

func TestNormCfg(t *testing.T) {
	mom, eps, bad := 0.03, 1e-3, -1.0
	cases := []struct {
		cfg     NormCfg
		wantErr string
	}{
		{DefaultNormCfg(), ""},
		{NormCfg{Type: "SyncBN", RequiresGrad: true}, ""},
		{NormCfg{Type: "GN", RequiresGrad: true}, `norm_cfg.type "GN" is not supported; use BN or SyncBN`},
		{NormCfg{Type: "BN"}, "norm_cfg.requires_grad: false (frozen norm layers) is not supported; remove it or set it to true"},
		{NormCfg{Type: "BN", RequiresGrad: true, Momentum: &bad}, "norm_cfg.momentum -1 must lie in [0, 1]"},
		{NormCfg{Type: "BN", RequiresGrad: true, Eps: &bad}, "norm_cfg.eps -1 must be positive"},
		{NormCfg{Type: "BN", RequiresGrad: true, Momentum: &mom, Eps: &eps}, ""},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		if (err == nil) != (c.wantErr == "") || (err != nil && err.Error() != c.wantErr) {
			t.Errorf("%+v: error %v, want %q", c.cfg, err, c.wantErr)
		}
	}
	m, err := NewConvModuleNorm(ConvModuleConfig{In: 2, Out: 2, Kernel: 1, Norm: true}, NormCfg{Type: "BN", RequiresGrad: true, Momentum: &mom, Eps: &eps})
	if err != nil {
		t.Fatal(err)
	}
	if m.BN.State.Momentum != mom || m.BN.State.Eps != eps {
		t.Fatalf("momentum %g, eps %g; want %g, %g", m.BN.State.Momentum, m.BN.State.Eps, mom, eps)
	}
	if _, err := NewConvModuleNorm(ConvModuleConfig{In: 2, Out: 2, Kernel: 1, Norm: true}, NormCfg{Type: "LN", RequiresGrad: true}); err == nil {
		t.Fatal("an unknown norm type built")
	}
}

// reluLayer is the rectifier max(0, x); it has no parameters.
type reluLayer struct {
	Base
}

// newReLU returns a ReLU layer.
func newReLU() *reluLayer { return &reluLayer{} }

// Forward applies max(0, x) elementwise.
func (r *reluLayer) Forward(b *Binding, x *gorgonia.Node) (*gorgonia.Node, error) {
	y, err := ops.ReLU(x)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.Path(), err)
	}
	b.AddCost(Cost{Path: r.Path(), Type: "ReLU", FLOPs: Elements(y)})
	return y, nil
}
