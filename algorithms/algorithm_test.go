package algorithms_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/mutables"
)

func buildErr(file string, overrides ...string) error {
	cfg, err := config.Load(file, config.Options{Overrides: overrides})
	if err != nil {
		return err
	}
	_, err = algorithms.FromConfig(cfg)
	return err
}

func TestBuildModes(t *testing.T) {
	super := build(t, sposSupernet)
	if super.Space() == nil || super.Subnet() != nil || super.Retraining() || super.BNTrainingMode() {
		t.Fatalf("supernet: space %v, subnet %v, retraining %v, bn training %v", super.Space() != nil, super.Subnet(), super.Retraining(), super.BNTrainingMode())
	}
	sub := build(t, sposSubnet)
	if sub.Space() != nil || !sub.Retraining() || sub.Subnet()["stage_3_block_3"] != "shuffle_xception" {
		t.Fatalf("subnet config: space %v, retraining %v, subnet %v", sub.Space() != nil, sub.Retraining(), sub.Subnet())
	}
	// A subnet on the supernet's weights (retraining off) keeps the space
	// and runs the subnet.
	paperOnSuper := build(t, sposSupernet, "algorithm.mutable_cfg="+sposPaper)
	if paperOnSuper.Space() == nil || paperOnSuper.Subnet()["stage_0_block_0"] != "shuffle_7x7" {
		t.Fatal("mutable_cfg without retraining lost the space or the subnet")
	}
	c, err := paperOnSuper.Complexity(nil, nil)
	if err != nil || c.Supernet {
		t.Fatalf("a supernet with mutable_cfg counts the subnet: %v, %v", c, err)
	}
	search := build(t, "../configs/nas/spos/spos_evolution_search_shufflenetv2_8xb2048_in1k.yaml")
	if !search.BNTrainingMode() {
		t.Fatal("the search config sets bn_training_mode")
	}
}

// TestInlineMutableCfg gives mutable_cfg as a mapping in the config
// rather than a file's path.
func TestInlineMutableCfg(t *testing.T) {
	inline := map[string]any{}
	for s, n := range []int{4, 4, 8, 4} {
		for b := range n {
			op := "shuffle_3x3"
			if s == 2 {
				op = "shuffle_xception"
			}
			inline[fmt.Sprintf("stage_%d_block_%d", s, b)] = map[string]any{"chosen": []any{op}}
		}
	}
	cfg, err := config.Load(sposSupernet, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Set("algorithm.mutable_cfg", inline); err != nil {
		t.Fatal(err)
	}
	alg, err := algorithms.FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := alg.(algorithms.OneShot).Subnet(); got["stage_2_block_7"] != "shuffle_xception" || got["stage_3_block_0"] != "shuffle_3x3" {
		t.Fatalf("subnet %v", got)
	}
}

func TestBuildErrors(t *testing.T) {
	badSubnet := filepath.Join(t.TempDir(), "bad.yaml")
	if err := mutables.WriteSubnetFile(badSubnet, mutables.Subnet{"stage_0_block_0": "shuffle_9x9"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		file      string
		overrides []string
		want      string
	}{
		{"retraining without subnet", sposSupernet, []string{"algorithm.retraining=true"}, "retraining: true needs mutable_cfg"},
		{"missing subnet file", sposSupernet, []string{"algorithm.mutable_cfg=/no/such/subnet.yaml"}, "mutable_cfg: subnet file /no/such/subnet.yaml does not exist"},
		{"bad subnet", sposSubnet, []string{"algorithm.mutable_cfg=" + badSubnet}, `subnet chooses "shuffle_9x9" for block stage_0_block_0; allowed: shuffle_3x3, shuffle_5x5, shuffle_7x7, shuffle_xception`},
		{"mutable_cfg of a wrong type", sposSupernet, []string{"algorithm.mutable_cfg=[1,2]"}, "mutable_cfg must be a subnet file's path or a subnet mapping"},
		{"distiller", sposSupernet, []string{"algorithm.distiller.type=KD"}, "distiller is not supported"},
		{"no mutator", sposSupernet, []string{"algorithm.mutator=null"}, "the model has searchable blocks (stage_0_block_0, group \"all_blocks\") but no mutator"},
		{"bad input shape", sposSupernet, []string{"algorithm.input_shape=[224,224]"}, "input_shape [224 224] must be three positive sizes (C, H, W)"},
		{"unknown algorithm key", sposSupernet, []string{"algorithm.retrain=true"}, `algorithm: unknown key "retrain"`},
		{"unknown backbone key", sposSupernet, []string{"algorithm.architecture.model.backbone.widen=0.5"}, `algorithm.architecture.model.backbone: unknown key "widen"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := buildErr(c.file, c.overrides...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestSampleAndSetSubnet(t *testing.T) {
	alg := build(t, sposSupernet, smallOverrides...)
	rng1, rng2 := rand.New(rand.NewPCG(9, 9)), rand.New(rand.NewPCG(9, 9))
	for range 5 {
		a, err := alg.SampleSubnet(rng1)
		if err != nil {
			t.Fatal(err)
		}
		b := alg.Space().Sample(rng2)
		if alg.Space().Key(a) != alg.Space().Key(b) {
			t.Fatal("SampleSubnet does not draw as Space.Sample with the same seed")
		}
	}
	retrain := build(t, sposSubnet, smallOverrides...)
	if _, err := retrain.SampleSubnet(rng1); err == nil || !strings.Contains(err.Error(), "nothing to sample") {
		t.Fatalf("sampling while retraining: %v", err)
	}
	if err := retrain.SetSubnet(retrain.Subnet()); err != nil {
		t.Fatalf("setting the fixed subnet: %v", err)
	}
	other := alg.Space().Sample(rng1)
	if err := retrain.SetSubnet(other); err == nil {
		t.Fatal("a retraining model ran another subnet")
	}
	if err := alg.SetSubnet(mutables.Subnet{"stage_0_block_0": "shuffle_3x3"}); err == nil || !strings.Contains(err.Error(), "no choice for block stage_0_block_1") {
		t.Fatalf("an incomplete subnet: %v", err)
	}
}

// TestTrainingStepOnSampledPath runs the documented supernet step and
// checks that exactly the sampled ops (plus the shared stem, last layer
// and head) receive gradients.
func TestTrainingStepOnSampledPath(t *testing.T) {
	alg := build(t, sposSupernet, smallOverrides...)
	if err := alg.InitWeights(rand.New(rand.NewPCG(1, 1))); err != nil {
		t.Fatal(err)
	}
	sub, err := alg.SampleSubnet(rand.New(rand.NewPCG(4, 2)))
	if err != nil {
		t.Fatal(err)
	}
	b := nn.NewBinding()
	x := tensor.New(tensor.WithShape(2, 3, 32, 32), tensor.WithBacking(make([]float32, 2*3*32*32)))
	for i, v := range x.Float32s() {
		x.Float32s()[i] = v + float32(i%7) - 3
	}
	losses, err := alg.Model().ForwardTrain(b, &models.Batch{Images: x, Labels: []int{3, 8}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Backward(losses[0].Node); err != nil {
		t.Fatal(err)
	}
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
	for _, p := range alg.NamedParameters() {
		name := p.Name()
		onPath := true
		if rest, ok := strings.CutPrefix(name, "architecture.model.backbone.layers."); ok && strings.Contains(rest, ".choices.") {
			parts := strings.Split(rest, ".")
			id := "stage_" + parts[0] + "_block_" + parts[1]
			onPath = sub[id] == parts[3]
		}
		if (p.Grad() != nil) != onPath {
			t.Fatalf("%s: gradient %v, on the sampled path %v", name, p.Grad() != nil, onPath)
		}
	}
}

func TestMMDetArchitectureBuildsBackboneOnly(t *testing.T) {
	alg := build(t, detnasSupernet)
	if !strings.HasPrefix(alg.NamedParameters()[0].Name(), "architecture.model.backbone.") {
		t.Fatalf("first parameter %s", alg.NamedParameters()[0].Name())
	}
	_, err := alg.Model().ForwardTrain(nn.NewBinding(), &models.Batch{})
	if err == nil || !strings.Contains(err.Error(), "the detector mmdet.FasterRCNN is not a registered model type (registered: ImageClassifier)") {
		t.Fatalf("training the pending detector: %v", err)
	}
	if _, err := alg.Model().ForwardTest(nn.NewBinding(), &models.Batch{}); err == nil {
		t.Fatal("testing the pending detector ran")
	}
	if err := alg.InitWeights(rand.New(rand.NewPCG(1, 1))); err != nil {
		t.Fatal(err)
	}
	if w := alg.StateDict()["architecture.model.backbone.conv1.conv.weight"].Float32s(); slices.Max(w) == 0 {
		t.Fatal("InitWeights left the detector's backbone at zero")
	}
	// DetNAS on a classifier counts its backbone without the last layer.
	onCls := build(t, sposSubnet, "algorithm.type=DetNAS")
	c, err := onCls.Complexity(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range c.Layers {
		if strings.HasPrefix(l.Path, "backbone.layers.4") || !strings.HasPrefix(l.Path, "backbone.") {
			t.Fatalf("DetNAS counted %s", l.Path)
		}
	}
}

// TestSpaceReadsBothSubnetFormats reads the mmrazor 0.x and 1.x subnet
// files against the space the mutator built from the shipped config: the
// 1.x keys are the module paths of the blocks, relative to the model.
func TestSpaceReadsBothSubnetFormats(t *testing.T) {
	sp := build(t, sposSupernet).Space()
	if b := sp.Blocks[19]; b.ID != "stage_3_block_3" || b.Path != "backbone.layers.3.3" {
		t.Fatalf("last block %+v", b)
	}
	v0, err := os.ReadFile("../mutables/testdata/subnet_v0x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := mutables.ReadSubnetFile("../mutables/testdata/subnet_v0x.yaml", sp)
	if err != nil {
		t.Fatal(err)
	}
	if got := mutables.FormatSubnet(sub); string(got) != string(v0) {
		t.Fatalf("the 0.x file does not round-trip:\n%s", got)
	}
	v1, err := mutables.ReadSubnetFile("../mutables/testdata/subnet_v1x.yaml", sp)
	if err != nil {
		t.Fatal(err)
	}
	if v1["stage_0_block_0"] != "shuffle_xception" || len(v1) != 20 {
		t.Fatalf("1.x subnet %v", v1)
	}
}
