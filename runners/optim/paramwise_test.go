package optim

import (
	"testing"

	"github.com/razorgo/razor/models/nn"
)

func f(v float64) *float64 { return &v }

// TestParamwiseMultipliers checks mmcv's matching rules one by one.
func TestParamwiseMultipliers(t *testing.T) {
	root := &node{}
	backbone := &node{}
	bn := &node{}
	dw := &node{}
	head := &node{}
	root.AddChild("backbone", backbone)
	backbone.AddChild("bn", bn)
	backbone.AddChild("dw", dw)
	root.AddChild("head", head)
	rootParam := root.AddParam("scale", nn.KindWeight, 1)
	bnW := bn.AddParam("weight", nn.KindNorm, 2)
	bnB := bn.AddParam("bias", nn.KindNorm, 2)
	dwW := dw.AddParam("weight", nn.KindWeight, 2, 1, 3, 3)
	dwB := dw.AddParam("bias", nn.KindBias, 2)
	dwW.MarkDepthwise()
	dwB.MarkDepthwise()
	fcW := head.AddParam("weight", nn.KindWeight, 2, 2)
	fcB := head.AddParam("bias", nn.KindBias, 2)

	all := &Paramwise{BiasLRMult: f(2), BiasDecayMult: f(0.5), NormDecayMult: f(0), DWConvDecayMult: f(0.25)}
	custom := &Paramwise{
		BiasLRMult: f(2), NormDecayMult: f(0),
		CustomKeys: map[string]CustomKey{
			"head":        {LRMult: f(0.1)},
			"head.bias":   {DecayMult: f(3)},
			"backbone.bn": {LRMult: f(5), DecayMult: f(7)},
			"backbone.dw": {LRMult: f(6)},
			".scale":      {LRMult: f(9)},
		},
	}
	tie := &Paramwise{CustomKeys: map[string]CustomKey{"bb": {LRMult: f(2)}, "aa": {LRMult: f(3)}}}
	for _, tc := range []struct {
		name      string
		pw        *Paramwise
		p         *nn.Param
		lr, decay float64
	}{
		{"nil paramwise", nil, fcB, 1, 1},
		{"empty paramwise", &Paramwise{}, bnW, 1, 1},
		{"weight untouched", all, fcW, 1, 1},
		{"bias lr and decay", all, fcB, 2, 0.5},
		{"norm weight decay", all, bnW, 1, 0},
		{"norm bias: norm decay, no bias lr", all, bnB, 1, 0},
		{"depthwise weight", all, dwW, 1, 0.25},
		{"depthwise bias: dw decay wins, bias lr applies", all, dwB, 2, 0.25},
		{"custom key overrides bias rules", custom, fcW, 0.1, 1},
		{"longest custom key wins", custom, fcB, 1, 3},
		{"custom key on norm", custom, bnB, 5, 7},
		{"custom decay defaults to 1", custom, dwW, 6, 1},
		{"root param matched with a leading dot", custom, rootParam, 9, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lr, decay := tc.pw.multipliers(tc.p)
			if lr != tc.lr || decay != tc.decay {
				t.Errorf("%s: multipliers (%v, %v), want (%v, %v)", tc.p.Name(), lr, decay, tc.lr, tc.decay)
			}
		})
	}
	// Equal-length keys: the alphabetically first wins.
	both := &node{}
	p := both.AddParam("aabb", nn.KindWeight, 1)
	if lr, _ := tie.multipliers(p); lr != 3 {
		t.Errorf("tie between equal-length keys: lr mult %v, want 3 (key \"aa\")", lr)
	}
}
