package backbones

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/mutables"
)

func defaults() SearchableShuffleNetV2Options {
	var o SearchableShuffleNetV2Options
	o.Defaults()
	return o
}

// searchable builds the backbone and turns its placeholders into blocks
// that offer every op.
func searchable(t *testing.T, o SearchableShuffleNetV2Options) (*SearchableShuffleNetV2, *mutables.OneShotMutator) {
	t.Helper()
	net, err := NewSearchableShuffleNetV2(o)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mutables.NewOneShotMutator(mutables.OneShotMutatorOptions{PlaceholderMapping: map[string]map[string]any{
		PlaceholderGroup: {"type": "OneShotOP", "choices": map[string]any{
			"shuffle_3x3":      map[string]any{"type": "ShuffleBlock", "kernel_size": 3},
			"shuffle_5x5":      map[string]any{"type": "ShuffleBlock", "kernel_size": 5},
			"shuffle_7x7":      map[string]any{"type": "ShuffleBlock", "kernel_size": 7},
			"shuffle_xception": map[string]any{"type": "ShuffleXception"},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Prepare(net); err != nil {
		t.Fatal(err)
	}
	return net, m
}

func forwardShapes(t *testing.T, net models.Backbone, h, w int) [][]int {
	t.Helper()
	b := nn.NewBinding()
	outs, err := net.Forward(b, b.Input("x", tensor.New(tensor.WithShape(2, 3, h, w), tensor.Of(tensor.Float32))))
	if err != nil {
		t.Fatal(err)
	}
	var shapes [][]int
	for _, o := range outs {
		shapes = append(shapes, []int(o.Shape()))
	}
	return shapes
}

func TestBackboneOutputs(t *testing.T) {
	det := defaults()
	det.OutIndices, det.WithLastLayer = []int{0, 1, 2, 3}, false
	half := defaults()
	half.WidenFactor, half.OutIndices = 0.5, []int{1, 4}
	stem1 := defaults()
	stem1.StemStride, stem1.OutIndices, stem1.WithLastLayer = 1, []int{0, 3}, false
	cases := []struct {
		name string
		o    SearchableShuffleNetV2Options
		want [][]int
	}{
		{"classification", defaults(), [][]int{{2, 1024, 2, 2}}},
		{"detection", det, [][]int{{2, 64, 16, 16}, {2, 160, 8, 8}, {2, 320, 4, 4}, {2, 640, 2, 2}}},
		{"half width", half, [][]int{{2, 80, 8, 8}, {2, 1024, 2, 2}}},
		{"stem stride 1", stem1, [][]int{{2, 64, 32, 32}, {2, 640, 4, 4}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			net, m := searchable(t, c.o)
			if err := m.SetSubnet(m.Space().Sample(rand.New(rand.NewPCG(1, 1)))); err != nil {
				t.Fatal(err)
			}
			if got := forwardShapes(t, net, 64, 64); !slices.EqualFunc(got, c.want, slices.Equal[[]int]) {
				t.Fatalf("output shapes %v, want %v", got, c.want)
			}
			if (net.LastLayer() != nil) != c.o.WithLastLayer {
				t.Fatalf("last layer %v with with_last_layer %v", net.LastLayer(), c.o.WithLastLayer)
			}
		})
	}
}

func TestBackboneSpace(t *testing.T) {
	net, m := searchable(t, defaults())
	sp := m.Space()
	if len(sp.Blocks) != 20 || sp.Size().String() != "1099511627776" {
		t.Fatalf("%d blocks, size %s", len(sp.Blocks), sp.Size())
	}
	if b := sp.Blocks[13]; b.ID != "stage_2_block_5" || b.Path != "layers.2.5" || strings.Join(b.Choices, ",") != "shuffle_3x3,shuffle_5x5,shuffle_7x7,shuffle_xception" {
		t.Fatalf("block 13 = %+v", b)
	}
	if !slices.Equal(net.Channels(), []int{64, 160, 320, 640}) {
		t.Fatalf("channels %v", net.Channels())
	}
}

func TestBackboneOptionErrors(t *testing.T) {
	mod := func(f func(*SearchableShuffleNetV2Options)) SearchableShuffleNetV2Options {
		o := defaults()
		f(&o)
		return o
	}
	cases := []struct {
		o    SearchableShuffleNetV2Options
		want string
	}{
		{mod(func(o *SearchableShuffleNetV2Options) { o.WidenFactor = 0.2 }), "widen_factor 0.2 makes a stage 13 channels wide (from 64)"},
		{mod(func(o *SearchableShuffleNetV2Options) { o.WidenFactor = 0 }), "widen_factor 0 must be positive"},
		{mod(func(o *SearchableShuffleNetV2Options) { o.OutIndices = []int{5} }), "out_indices names layer 5; valid layers are 0-4"},
		{mod(func(o *SearchableShuffleNetV2Options) { o.WithLastLayer = false }), "out_indices names layer 4; valid layers are 0-3 (4 is the last layer, which with_last_layer: false removes)"},
		{mod(func(o *SearchableShuffleNetV2Options) { o.OutIndices = nil }), "out_indices is empty"},
		{mod(func(o *SearchableShuffleNetV2Options) { o.StemMultiplier = 0 }), "stem_multiplier 0 must be positive"},
		{mod(func(o *SearchableShuffleNetV2Options) { o.StemStride = 3 }), "stem_stride 3 must be 1 or 2"},
		{mod(func(o *SearchableShuffleNetV2Options) { o.NormCfg.Type = "GN" }), `norm_cfg.type "GN" is not supported`},
	}
	for _, c := range cases {
		if _, err := NewSearchableShuffleNetV2(c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want it to contain %q", err, c.want)
		}
	}
}

func TestUnreplacedBackboneRefusesToRun(t *testing.T) {
	net, err := NewSearchableShuffleNetV2(defaults())
	if err != nil {
		t.Fatal(err)
	}
	b := nn.NewBinding()
	_, err = net.Forward(b, b.Input("x", tensor.New(tensor.WithShape(1, 3, 32, 32), tensor.Of(tensor.Float32))))
	if err == nil || !strings.Contains(err.Error(), "layers.0.0: block stage_0_block_0 is still a placeholder") {
		t.Fatalf("error %v", err)
	}
}

func TestOpNamesAndShapes(t *testing.T) {
	norm := nn.DefaultNormCfg()
	blk, err := NewShuffleBlock(ShuffleBlockOptions{KernelSize: 5, InChannels: 16, OutChannels: 64, Stride: 2, NormCfg: norm})
	if err != nil {
		t.Fatal(err)
	}
	xc, err := NewShuffleXception(ShuffleXceptionOptions{InChannels: 64, OutChannels: 64, Stride: 1, NormCfg: norm})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		op    nn.Module
		shape map[string][]int
		count int
	}{
		{blk, map[string][]int{
			"branch1.0.conv.weight": {16, 1, 5, 5},
			"branch1.1.conv.weight": {32, 16, 1, 1},
			"branch2.0.conv.weight": {32, 16, 1, 1},
			"branch2.1.conv.weight": {32, 1, 5, 5},
			"branch2.2.conv.weight": {32, 32, 1, 1},
			"branch2.2.bn.bias":     {32},
		}, 5 * 6},
		{xc, map[string][]int{
			"branch2.0.depthwise_conv.conv.weight":    {32, 1, 3, 3},
			"branch2.0.pointwise_conv.conv.weight":    {32, 32, 1, 1},
			"branch2.2.pointwise_conv.bn.running_var": {32},
		}, 6 * 6},
	}
	for _, c := range cases {
		sd := c.op.StateDict()
		if len(sd) != c.count {
			t.Errorf("%T has %d tensors, want %d", c.op, len(sd), c.count)
		}
		for k, want := range c.shape {
			if v, ok := sd[k]; !ok || !slices.Equal([]int(v.Shape()), want) {
				t.Errorf("%T: %s is %v, want shape %v", c.op, k, v, want)
			}
		}
	}
	b := nn.NewBinding()
	x := b.Input("x", tensor.New(tensor.WithShape(1, 16, 8, 8), tensor.Of(tensor.Float32)))
	y, err := blk.Forward(b, x)
	if err != nil {
		t.Fatal(err)
	}
	if z, err := xc.Forward(b, y); err != nil || !slices.Equal([]int(z.Shape()), []int{1, 64, 4, 4}) {
		t.Fatalf("shapes %v then %v, %v", y.Shape(), z.Shape(), err)
	}
}

// TestShuffleBlockStrideOnePassesHalf checks the split-concat-shuffle
// wiring: with branch2's weights at zero and BN biases at zero, its output
// is zero, so the result holds the input's first half at even channels.
func TestShuffleBlockStrideOnePassesHalf(t *testing.T) {
	blk, err := NewShuffleBlock(ShuffleBlockOptions{KernelSize: 3, InChannels: 4, OutChannels: 4, Stride: 1, NormCfg: nn.DefaultNormCfg()})
	if err != nil {
		t.Fatal(err)
	}
	blk.SetTraining(false)
	b := nn.NewBinding()
	x := tensor.New(tensor.WithShape(1, 4, 1, 1), tensor.WithBacking([]float32{1, 2, 3, 4}))
	y, err := blk.Forward(b, b.Input("x", x))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
	if got := y.Value().(*tensor.Dense).Float32s(); !slices.Equal(got, []float32{1, 0, 2, 0}) {
		t.Fatalf("output %v, want [1 0 2 0]", got)
	}
}

func TestOpOptionErrors(t *testing.T) {
	norm := nn.DefaultNormCfg()
	cases := []struct {
		build func() error
		want  string
	}{
		{func() error {
			_, err := NewShuffleBlock(ShuffleBlockOptions{KernelSize: 4, InChannels: 8, OutChannels: 8, Stride: 1, NormCfg: norm})
			return err
		}, "kernel_size 4 must be 3, 5 or 7"},
		{func() error {
			_, err := NewShuffleBlock(ShuffleBlockOptions{KernelSize: 3, InChannels: 8, OutChannels: 16, Stride: 1, NormCfg: norm})
			return err
		}, "in_channels 8 must equal out_channels 16"},
		{func() error {
			_, err := NewShuffleXception(ShuffleXceptionOptions{InChannels: 8, OutChannels: 9, Stride: 2, NormCfg: norm})
			return err
		}, "out_channels 9 must be even"},
		{func() error {
			_, err := NewShuffleXception(ShuffleXceptionOptions{InChannels: 8, OutChannels: 8, Stride: 3, NormCfg: norm})
			return err
		}, "stride 3 must be 1 or 2"},
	}
	for _, c := range cases {
		if err := c.build(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want it to contain %q", err, c.want)
		}
	}
}

// TestInitWeights checks mmrazor's rules on the sample statistics of the
// drawn weights and the constants.
func TestInitWeights(t *testing.T) {
	net, _ := searchable(t, defaults())
	if err := net.InitWeights(rand.New(rand.NewPCG(3, 4))); err != nil {
		t.Fatal(err)
	}
	std := func(v []float32) float64 {
		var s float64
		for _, x := range v {
			s += float64(x) * float64(x)
		}
		return math.Sqrt(s / float64(len(v)))
	}
	sd := net.StateDict()
	checks := []struct {
		key  string
		want float64
	}{
		{"conv1.conv.weight", 0.01},
		{"layers.3.1.choices.shuffle_3x3.branch2.0.conv.weight", 1.0 / 320},
		{"layers.2.3.choices.shuffle_7x7.branch2.1.conv.weight", 1},
		{"layers.4.conv.weight", 1.0 / 640},
	}
	for _, c := range checks {
		if got := std(sd[c.key].Float32s()); math.Abs(got-c.want) > 0.1*c.want {
			t.Errorf("%s: std %g, want about %g", c.key, got, c.want)
		}
	}
	for _, k := range []string{"conv1.bn.bias", "layers.1.0.choices.shuffle_xception.branch1.0.bn.bias"} {
		for _, v := range sd[k].Float32s() {
			if v != 1e-4 {
				t.Fatalf("%s holds %g, want 1e-4", k, v)
			}
		}
	}
	again, _ := searchable(t, defaults())
	if err := again.InitWeights(rand.New(rand.NewPCG(3, 4))); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again.StateDict()["layers.0.0.choices.shuffle_5x5.branch1.1.conv.weight"].Float32s(), sd["layers.0.0.choices.shuffle_5x5.branch1.1.conv.weight"].Float32s()) {
		t.Fatal("the same seed drew different weights")
	}
}
