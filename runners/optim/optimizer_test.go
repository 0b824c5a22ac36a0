package optim

import (
	"strings"
	"testing"

	"github.com/razorgo/razor/models/nn"
)

func TestBuildFromConfig(t *testing.T) {
	root := &nn.Base{}
	w := root.AddParam("w", nn.KindWeight, 2)
	b := root.AddParam("b", nn.KindBias, 2)
	params := []*nn.Param{w, b}

	opt, err := Build(map[string]any{"type": "torch.AdamW", "lr": 0.01, "betas": []any{0.8, 0.99},
		"paramwise_cfg": map[string]any{"bias_decay_mult": 0.0}}, "optimizer", params)
	if err != nil {
		t.Fatal(err)
	}
	a, ok := opt.(*AdamW)
	if !ok {
		t.Fatalf("built %T, want *AdamW", opt)
	}
	if a.cfg != (AdamWConfig{LR: 0.01, Betas: [2]float64{0.8, 0.99}, Eps: 1e-8, WeightDecay: 1e-2}) {
		t.Errorf("settings %+v: the config's lr and betas over torch's defaults", a.cfg)
	}
	if _, wd, _ := a.ParamLR("b"); wd != 0 {
		t.Errorf("bias weight decay %v, want 0 from paramwise_cfg", wd)
	}
	opt, err = Build(map[string]any{"type": "SGD", "lr": 0.1, "momentum": 0.9, "weight_decay": 4e-5}, "optimizer", params)
	if err != nil {
		t.Fatal(err)
	}
	if s := opt.(*SGD); s.cfg != (SGDConfig{LR: 0.1, Momentum: 0.9, WeightDecay: 4e-5}) {
		t.Errorf("SGD settings %+v", s.cfg)
	}

	for _, tc := range []struct {
		node map[string]any
		want string
	}{
		{map[string]any{"type": "Adam", "lr": 0.1}, `optimizer.type "Adam" is not supported (did you mean "AdamW"?); use one of the registered optimizer types: AdamW, SGD`},
		{map[string]any{"type": "SGD"}, "lr"},
		{map[string]any{"type": "SGD", "lr": 0.1, "momentun": 0.9}, "momentun"},
		{map[string]any{"type": "AdamW", "betas": []any{0.9}}, "betas must be two numbers"},
		{map[string]any{"type": "AdamW", "betas": []any{0.9, 1.5}}, "invalid beta parameter at index 1: 1.5"},
		{map[string]any{"type": "SGD", "lr": -1.0}, "optimizer: SGD: lr -1"},
	} {
		if _, err := Build(tc.node, "optimizer", params); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.node, err, tc.want)
		}
	}
}
