package necks

import (
	"strings"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
)

func fpnNode(extra map[string]any) map[string]any {
	n := map[string]any{"type": "FPN", "in_channels": []any{4, 6, 8}, "out_channels": 5, "num_outs": 5}
	for k, v := range extra {
		n[k] = v
	}
	return n
}

// TestFPNShapesAndNames builds FPNs as mmdet configures them and checks
// the parameter names, which convolutions carry a bias, and the output
// sizes of every level, extra levels included.
func TestFPNShapesAndNames(t *testing.T) {
	bn := map[string]any{"type": "BN", "requires_grad": true}
	cases := []struct {
		name       string
		extra      map[string]any
		params     []string
		absent     []string
		outs       [][2]int
		numFPNConv int
	}{
		{"max pool extra levels, BN", map[string]any{"norm_cfg": bn},
			[]string{"lateral_convs.2.conv.weight", "lateral_convs.2.bn.running_mean", "fpn_convs.2.bn.weight"},
			[]string{"lateral_convs.0.conv.bias", "fpn_convs.3.conv.weight"},
			[][2]int{{32, 48}, {16, 24}, {8, 12}, {4, 6}, {2, 3}}, 3},
		{"extra convs on the input, no norm", map[string]any{"add_extra_convs": "on_input"},
			[]string{"lateral_convs.0.conv.bias", "fpn_convs.3.conv.weight", "fpn_convs.4.conv.bias"},
			[]string{"lateral_convs.0.bn.weight"},
			[][2]int{{32, 48}, {16, 24}, {8, 12}, {4, 6}, {2, 3}}, 5},
		{"start level 1, lateral without norm", map[string]any{"start_level": 1, "num_outs": 3, "norm_cfg": bn, "no_norm_on_lateral": true},
			[]string{"lateral_convs.0.conv.bias", "fpn_convs.0.bn.weight"},
			[]string{"lateral_convs.0.bn.weight", "lateral_convs.2.conv.weight"},
			[][2]int{{16, 24}, {8, 12}, {4, 6}}, 2},
	}
	for _, c := range cases {
		neck, err := models.Necks.Build(fpnNode(c.extra), "model.neck", nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		sd := neck.StateDict()
		for _, p := range c.params {
			if _, ok := sd[p]; !ok {
				t.Errorf("%s: no %s", c.name, p)
			}
		}
		for _, p := range c.absent {
			if _, ok := sd[p]; ok {
				t.Errorf("%s: has %s, which mmdet's FPN would not", c.name, p)
			}
		}
		b := nn.NewBinding()
		var feats []*gorgonia.Node
		for i, ch := range []int{4, 6, 8} {
			h, w := 32>>i, 48>>i
			feats = append(feats, b.Input("x", tensor.New(tensor.WithShape(1, ch, h, w), tensor.Of(tensor.Float32))))
		}
		neck.SetTraining(false)
		outs, err := neck.Forward(b, feats)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(outs) != len(c.outs) {
			t.Fatalf("%s: %d outputs, want %d", c.name, len(outs), len(c.outs))
		}
		for i, o := range outs {
			if s := o.Shape(); s[1] != 5 || s[2] != c.outs[i][0] || s[3] != c.outs[i][1] {
				t.Errorf("%s: output %d has shape %v, want 5x%dx%d", c.name, i, s, c.outs[i][0], c.outs[i][1])
			}
		}
		b.Release()
	}
}

// TestFPNTopDown checks the top-down pass on values: with identity-like
// weights (1x1 laterals passing one channel, 3x3 output convs with only a
// centre tap) every level's output is its lateral plus the coarser
// levels' upsampled by nearest neighbour.
func TestFPNTopDown(t *testing.T) {
	neck, err := models.Necks.Build(map[string]any{"type": "FPN", "in_channels": []any{1, 1}, "out_channels": 1, "num_outs": 3}, "neck", nil)
	if err != nil {
		t.Fatal(err)
	}
	sd := neck.StateDict()
	sd["lateral_convs.0.conv.weight"].Float32s()[0] = 1
	sd["lateral_convs.1.conv.weight"].Float32s()[0] = 1
	sd["fpn_convs.0.conv.weight"].Float32s()[4] = 1
	sd["fpn_convs.1.conv.weight"].Float32s()[4] = 1
	if _, err := neck.LoadStateDict(sd, true); err != nil {
		t.Fatal(err)
	}
	b := nn.NewBinding()
	defer b.Release()
	fine := b.Input("fine", tensor.New(tensor.WithShape(1, 1, 3, 3), tensor.WithBacking([]float32{1, 2, 3, 4, 5, 6, 7, 8, 9})))
	coarse := b.Input("coarse", tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.WithBacking([]float32{10, 20, 30, 40})))
	outs, err := neck.Forward(b, []*gorgonia.Node{fine, coarse})
	if err != nil {
		t.Fatal(err)
	}
	b.Keep(outs...) // the extra level reads level 1, and so does the check below
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
	// Nearest upsampling of 2x2 to 3x3 takes source rows/cols floor(i*2/3)
	// = 0, 0, 1.
	want := [][]float32{{11, 12, 23, 14, 15, 26, 37, 38, 49}, {10, 20, 30, 40}, {10}}
	for i, w := range want {
		got := outs[i].Value().Data().([]float32)
		if len(got) != len(w) {
			t.Fatalf("level %d: %v, want %v", i, got, w)
		}
		for j := range w {
			if got[j] != w[j] {
				t.Fatalf("level %d: %v, want %v", i, got, w)
			}
		}
	}
}

func TestFPNErrors(t *testing.T) {
	cases := []struct {
		extra map[string]any
		want  string
	}{
		{map[string]any{"num_outs": 2}, "num_outs 2 must be at least the 3 levels used"},
		{map[string]any{"add_extra_convs": "on_top"}, `add_extra_convs "on_top" is not supported`},
		{map[string]any{"act_cfg": map[string]any{"type": "GELU"}}, "act_cfg"},
		{map[string]any{"upsample_cfg": map[string]any{"mode": "bilinear"}}, "upsample_cfg.mode bilinear is not supported"},
		{map[string]any{"start_level": 3}, "start_level 3 must lie in [0, 3)"},
		{map[string]any{"end_level": 2, "num_outs": 5}, "num_outs 5 must equal end_level - start_level = 2"},
		{map[string]any{"norm_cfg": map[string]any{"type": "GN"}}, `norm_cfg.type "GN" is not supported`},
	}
	for _, c := range cases {
		_, err := models.Necks.Build(fpnNode(c.extra), "model.neck", nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "model.neck") {
			t.Errorf("%v: error %v, want one naming model.neck and containing %q", c.extra, err, c.want)
		}
	}
}
