package algorithms_test

import (
	"strings"
	"testing"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/mutables"
)

type refCount struct {
	FLOPs  int64 `json:"flops"`
	Params int64 `json:"params"`
	Layers int   `json:"layers"`
}

// TestComplexityEqualsReference compares FLOPs, parameters and the number
// of counted layers with the PyTorch hook count that follows mmcv's
// conventions, for the shipped configs in both scopes.
func TestComplexityEqualsReference(t *testing.T) {
	var ref map[string]refCount
	readJSON(t, "shufflenet_flops.json", &ref)
	sposSuper := build(t, sposSupernet)
	detSuper := build(t, detnasSupernet)
	paper := readSubnet(t, sposPaper, sposSuper.Space())
	published := readSubnet(t, detnasPaper, detSuper.Space())
	cases := []struct {
		name     string
		alg      algorithms.OneShot
		sub      mutables.Subnet
		shape    []int
		fixture  string
		supernet bool
		scope    string
	}{
		{"SPOS subnet config", build(t, sposSubnet), nil, nil, "spos_paper_whole", false, "whole model"},
		{"DetNAS subnet config", build(t, detnasSubnet), nil, nil, "detnas_published_backbone", false, "backbone only"},
		{"DetNAS subnet config at 320", build(t, detnasSubnet), nil, []int{3, 320, 320}, "detnas_published_backbone_320", false, "backbone only"},
		{"DetNAS classification subnet config (SPOS)", build(t, detnasClsSub), nil, nil, "detnas_published_whole", false, "whole model"},
		{"SPOS supernet", sposSuper, nil, nil, "supernet_whole", true, "whole model"},
		{"SPOS supernet, paper subnet", sposSuper, paper, nil, "spos_paper_whole", false, "whole model"},
		{"DetNAS supernet", detSuper, nil, nil, "supernet_backbone", true, "backbone only"},
		{"DetNAS supernet, published subnet", detSuper, published, nil, "detnas_published_backbone", false, "backbone only"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := ref[c.fixture]
			got, err := c.alg.Complexity(c.sub, c.shape)
			if err != nil {
				t.Fatal(err)
			}
			if got.FLOPs != want.FLOPs || got.Params != want.Params || len(got.Layers) != want.Layers {
				t.Fatalf("FLOPs %d, params %d, %d layers; the reference counts %d, %d, %d", got.FLOPs, got.Params, len(got.Layers), want.FLOPs, want.Params, want.Layers)
			}
			if got.Supernet != c.supernet || !strings.HasPrefix(got.Scope, c.scope) {
				t.Fatalf("supernet %v, scope %q", got.Supernet, got.Scope)
			}
		})
	}
}

// TestComplexityRestoresSelection checks that counting another subnet
// leaves the path the model runs unchanged.
func TestComplexityRestoresSelection(t *testing.T) {
	alg := build(t, sposSupernet)
	published := readSubnet(t, detnasPaper, alg.Space())
	paper := readSubnet(t, sposPaper, alg.Space())
	if err := alg.SetSubnet(published); err != nil {
		t.Fatal(err)
	}
	before, err := alg.Complexity(published, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alg.Complexity(paper, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := alg.Complexity(nil, nil); err != nil {
		t.Fatal(err)
	}
	m := alg.(interface{ Mutator() mutables.Mutator }).Mutator()
	if got := alg.Space().Key(m.Subnet()); got != alg.Space().Key(published) {
		t.Fatalf("after counting, the model runs %s, want %s", got, alg.Space().Key(published))
	}
	again, err := alg.Complexity(published, nil)
	if err != nil || again.FLOPs != before.FLOPs {
		t.Fatalf("counting again gives %v, %v; want %d", again, err, before.FLOPs)
	}
}

// TestComplexityLayers checks the per-layer list: relative paths, BN only
// in the SPOS scope, no last layer in the DetNAS scope.
func TestComplexityLayers(t *testing.T) {
	spos, err := build(t, sposSubnet).Complexity(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	det, err := build(t, detnasSubnet).Complexity(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	has := func(c *algorithms.Complexity, path, typ string) bool {
		for _, l := range c.Layers {
			if l.Path == path && l.Type == typ {
				return true
			}
		}
		return false
	}
	checks := []struct {
		c          *algorithms.Complexity
		path, typ  string
		want       bool
		scopeLabel string
	}{
		{spos, "backbone.conv1.conv", "Conv2d", true, "SPOS"},
		{spos, "backbone.conv1.bn", "BatchNorm2d", true, "SPOS"},
		{spos, "backbone.conv1.activate", "ReLU", true, "SPOS"},
		{spos, "backbone.layers.4.conv", "Conv2d", true, "SPOS"},
		{spos, "neck.gap", "AdaptiveAvgPool2d", true, "SPOS"},
		{spos, "head.fc", "Linear", true, "SPOS"},
		{spos, "backbone.layers.0.0.choices.shuffle_7x7.branch2.1.conv", "Conv2d", true, "SPOS"},
		{det, "backbone.conv1.conv", "Conv2d", true, "DetNAS"},
		{det, "backbone.conv1.bn", "BatchNorm2d", false, "DetNAS"},
		{det, "backbone.layers.2.0.choices.shuffle_xception.branch2.0.depthwise_conv.conv", "Conv2d", true, "DetNAS"},
	}
	for _, c := range checks {
		if got := has(c.c, c.path, c.typ); got != c.want {
			t.Errorf("%s scope lists %s (%s): %v, want %v", c.scopeLabel, c.path, c.typ, got, c.want)
		}
	}
	for _, l := range spos.Layers {
		if l.FLOPs <= 0 {
			t.Errorf("%s (%s) counts %d FLOPs", l.Path, l.Type, l.FLOPs)
		}
	}
}

func TestComplexityRejectsBadShape(t *testing.T) {
	alg := build(t, sposSubnet)
	for _, shape := range [][]int{{224, 224}, {3, 0, 224}, {3, 224, 224, 1}} {
		if _, err := alg.Complexity(nil, shape); err == nil || !strings.Contains(err.Error(), "(C, H, W)") {
			t.Errorf("shape %v: error %v", shape, err)
		}
	}
}

// TestComplexityRestoresModes checks that counting (done in evaluation
// mode, as mmcv) gives every module its training mode back.
func TestComplexityRestoresModes(t *testing.T) {
	alg := build(t, sposSubnet)
	alg.SetTraining(true)
	bn := alg.Model().Backbone()
	bn.SetTraining(false)
	if _, err := alg.Complexity(nil, []int{3, 8, 8}); err != nil {
		t.Fatal(err)
	}
	if !alg.Training() || !alg.Model().Training() || bn.Training() {
		t.Fatalf("modes after counting: algorithm %v, model %v, backbone %v; want true, true, false", alg.Training(), alg.Model().Training(), bn.Training())
	}
}

// BenchmarkComplexity counts one full-width subnet, as the search does for
// every candidate it checks against a FLOPs constraint.
func BenchmarkComplexity(b *testing.B) {
	alg := build(b, sposSupernet)
	sub := readSubnet(b, sposPaper, alg.Space())
	for b.Loop() {
		if _, err := alg.Complexity(sub, nil); err != nil {
			b.Fatal(err)
		}
	}
}
