package search

import (
	"context"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/datasets"
	_ "github.com/razorgo/razor/models/backbones"
	_ "github.com/razorgo/razor/models/classifiers"
	_ "github.com/razorgo/razor/models/heads"
	_ "github.com/razorgo/razor/models/necks"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/runners"
)

const mnistSearchConfig = "../../configs/nas/spos/spos_evolution_search_shufflenetv2_mnist.yaml"

// tinyMNIST loads the MNIST search config at an eighth of the width with
// small batches, and a supernet with random weights.
func tinyMNIST(t *testing.T, overrides ...string) (*config.Config, algorithms.OneShot) {
	t.Helper()
	o := append([]string{"algorithm.architecture.model.backbone.widen_factor=0.125", "data.samples_per_gpu=8",
		"data.val_dataloader.samples_per_gpu=16"}, overrides...)
	cfg, err := config.Load(mnistSearchConfig, config.Options{Overrides: o})
	if err != nil {
		t.Fatal(err)
	}
	alg, err := algorithms.FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := alg.InitWeights(rand.New(rand.NewPCG(1, 1))); err != nil {
		t.Fatal(err)
	}
	return cfg, alg.(algorithms.OneShot)
}

// bnStats copies every running statistic of the model.
func bnStats(alg algorithms.Algorithm) map[string][]float32 {
	out := map[string][]float32{}
	nn.Walk(alg, func(path string, m nn.Module) {
		if bn, ok := m.(*nn.BatchNorm2d); ok {
			out[path+".mean"] = append([]float32(nil), bn.State.RunningMean.Float32s()...)
			out[path+".var"] = append([]float32(nil), bn.State.RunningVar.Float32s()...)
		}
	})
	return out
}

// scrambleBN draws every running statistic from seed, values no
// evaluation would leave, so a test sees which statistics a score used.
func scrambleBN(alg algorithms.Algorithm, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0))
	nn.Walk(alg, func(_ string, m nn.Module) {
		if bn, ok := m.(*nn.BatchNorm2d); ok {
			for i := range bn.State.RunningMean.Float32s() {
				bn.State.RunningMean.Float32s()[i] = float32(rng.Float64() - 0.5)
				bn.State.RunningVar.Float32s()[i] = float32(0.2 + 2*rng.Float64())
			}
		}
	})
}

func evalOptions(mode string, batches int) EvalOptions {
	return EvalOptions{Metrics: "accuracy", ScoreKey: "accuracy_top-1", BNMode: mode, RecalibrateBatches: batches,
		EvalSplit: map[string]any{"from": "train", "num": 48, "seed": 2}}
}

func TestScorerBNModes(t *testing.T) {
	cfg, alg := tinyMNIST(t)
	sub := alg.Space().Sample(rand.New(rand.NewPCG(5, 5)))
	ctx := context.Background()

	// train: batch statistics, the supernet's statistics untouched, so
	// scrambling them changes nothing.
	s, err := NewScorer(cfg, alg, evalOptions(BNTrain, 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	scrambleBN(alg, 1)
	before := bnStats(alg)
	first, err := s.Score(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(bnStats(alg), before) {
		t.Error("bn_mode train moved the running statistics")
	}
	scrambleBN(alg, 2)
	if again, _ := s.Score(ctx, sub); !reflect.DeepEqual(again, first) {
		t.Errorf("bn_mode train scores depend on the running statistics: %v then %v", first, again)
	}

	// recalibrate: the path's statistics are re-estimated from the same
	// training batches every time, whatever they were before, and put
	// back once the candidate is scored.
	s, err = NewScorer(cfg, alg, evalOptions(BNRecalibrate, 2), 7)
	if err != nil {
		t.Fatal(err)
	}
	scrambleBN(alg, 1)
	before = bnStats(alg)
	if err := alg.SetSubnet(sub); err != nil {
		t.Fatal(err)
	}
	undo, err := s.bn.Prepare(ctx, alg.Model())
	if err != nil {
		t.Fatal(err)
	}
	during := bnStats(alg)
	undo()
	changed, kept := 0, 0
	for k, v := range during {
		if reflect.DeepEqual(v, before[k]) {
			kept++
		} else {
			changed++
		}
	}
	if changed == 0 || kept == 0 {
		t.Errorf("recalibration changed %d and kept %d statistics; want the path's changed and the other ops' kept", changed, kept)
	}
	if !reflect.DeepEqual(bnStats(alg), before) {
		t.Error("the running statistics were not restored after recalibration")
	}
	r1, err := s.Score(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(bnStats(alg), before) {
		t.Error("scoring with bn_mode recalibrate left the running statistics changed")
	}
	scrambleBN(alg, 3)
	r2, err := s.Score(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r1, r2) {
		t.Errorf("recalibrated scores depend on the statistics before: %v then %v", r1, r2)
	}

	// eval: the running statistics as they are; with the recalibrated
	// ones written in, the recalibrated score.
	s, err = NewScorer(cfg, alg, evalOptions(BNEval, 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	nn.Walk(alg, func(path string, m nn.Module) {
		if bn, ok := m.(*nn.BatchNorm2d); ok {
			copy(bn.State.RunningMean.Float32s(), during[path+".mean"])
			copy(bn.State.RunningVar.Float32s(), during[path+".var"])
		}
	})
	e1, err := s.Score(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e1, r2) {
		t.Errorf("eval mode on recalibrated statistics %v, want the recalibrated score %v", e1, r2)
	}
	if !strings.Contains(s.Description, "accuracy on 48 samples of data.train drawn with seed 2") {
		t.Errorf("description %q", s.Description)
	}
}

func TestScorerDefaultBNModeFollowsAlgorithm(t *testing.T) {
	for _, tc := range []struct {
		bnTraining string
		want       string
	}{{"true", BNTrain}, {"false", BNEval}} {
		cfg, alg := tinyMNIST(t, "algorithm.bn_training_mode="+tc.bnTraining)
		s, err := NewScorer(cfg, alg, evalOptions("", 0), 0)
		if err != nil {
			t.Fatal(err)
		}
		if s.bn.Mode != tc.want {
			t.Errorf("bn_training_mode %s: mode %s, want %s", tc.bnTraining, s.bn.Mode, tc.want)
		}
	}
}

// TestHeldOutSplit: the held-out samples come from the named split, are
// drawn by the seed and go through the evaluation pipeline.
func TestHeldOutSplit(t *testing.T) {
	// A training pipeline that resizes to 16x16 shows which one ran.
	cfg, _ := tinyMNIST(t, "data.train.pipeline.0.size=[16,16]")
	draw := func(seed int) (datasets.Dataset, []int) {
		l, what, err := evalLoader(cfg, map[string]any{"from": "train", "num": 10, "seed": seed})
		if err != nil {
			t.Fatal(err)
		}
		if l.Len() != 1 || l.Options().SamplesPerGPU != 16 {
			t.Errorf("held-out loader: %d batches of %d, want 1 of 16 (data.val_dataloader)", l.Len(), l.Options().SamplesPerGPU)
		}
		if want := "10 samples of data.train drawn with seed"; !strings.Contains(what, want) {
			t.Errorf("description %q, want %q", what, want)
		}
		ds := l.Dataset()
		var idx []int
		for i := range ds.Len() {
			s, err := datasets.Prepare(ds, i, rand.New(rand.NewPCG(0, 0)))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(s.Source, "train split") {
				t.Errorf("held-out sample from %s, want the train split", s.Source)
			}
			if s.Img.H != 32 || s.Img.W != 32 {
				t.Errorf("held-out sample is %dx%d; the evaluation pipeline makes 32x32", s.Img.H, s.Img.W)
			}
			idx = append(idx, s.Index)
		}
		return ds, idx
	}
	_, a := draw(0)
	_, b := draw(0)
	_, c := draw(1)
	if !reflect.DeepEqual(a, b) || reflect.DeepEqual(a, c) {
		t.Errorf("held-out indices: seed 0 %v and %v, seed 1 %v; want the same for one seed and others for another", a, b, c)
	}

	for _, tc := range []struct {
		split any
		want  string
	}{
		{"val", "data.val (10000 samples)"},
		{nil, "data.val (10000 samples)"},
		{"test", "data.test (10000 samples)"},
	} {
		_, what, err := evalLoader(cfg, tc.split)
		if err != nil || what != tc.want {
			t.Errorf("eval_split %v: %q, %v; want %q", tc.split, what, err, tc.want)
		}
	}
	for _, tc := range []struct {
		split any
		want  string
	}{
		{"holdout", "searcher.eval_split holdout: data.holdout is not set"},
		{map[string]any{"from": "nowhere", "num": 3}, "searcher.eval_split.from: data.nowhere is not a dataset mapping"},
		{map[string]any{"from": "train"}, `searcher.eval_split: missing required key "num"`},
		{map[string]any{"from": "train", "num": 0}, "searcher.eval_split.num must be between 1 and the 60000 samples of data.train, got 0"},
		{map[string]any{"from": "train", "num": 5, "size": 3}, `searcher.eval_split: unknown key "size"`},
		{5, "searcher.eval_split must name a data split (val), be hold_out (data.hold_out's samples) or be {from: train, num: N, seed: S}, not 5"},
	} {
		if _, _, err := evalLoader(cfg, tc.split); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("eval_split %v: %v, want an error containing %q", tc.split, err, tc.want)
		}
	}
}

// TestHoldOutLeavesTrainingAndScoresSearch: with data.hold_out, training
// reads every training sample but the held-out ones, and eval_split
// hold_out scores on exactly those.
func TestHoldOutLeavesTrainingAndScoresSearch(t *testing.T) {
	cfg, _ := tinyMNIST(t, "data.hold_out.num=12", "data.hold_out.seed=3")
	train, err := runners.BuildDataset(cfg, "train")
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 60000-12 {
		t.Fatalf("training set has %d samples, want 60000 - 12", train.Len())
	}
	trained := map[int]bool{}
	for _, i := range train.(*datasets.Subset).Indices {
		trained[i] = true
	}
	l, what, err := evalLoader(cfg, "hold_out")
	if err != nil {
		t.Fatal(err)
	}
	if want := "12 samples of data.train drawn with seed 3, which data.hold_out leaves out of training"; what != want {
		t.Errorf("description %q, want %q", what, want)
	}
	ds := l.Dataset()
	if ds.Len() != 12 {
		t.Fatalf("%d scoring samples, want 12", ds.Len())
	}
	for i := range ds.Len() {
		s, err := datasets.Prepare(ds, i, rand.New(rand.NewPCG(0, 0)))
		if err != nil {
			t.Fatal(err)
		}
		if trained[s.Index] {
			t.Errorf("scoring sample %d (train index %d) is also a training sample", i, s.Index)
		}
	}
	for _, tc := range []struct {
		overrides []string
		want      string
	}{
		{[]string{"data.hold_out=null"}, "searcher.eval_split hold_out scores on the training samples data.hold_out leaves out, and data.hold_out is not set"},
		{[]string{"data.hold_out.num=60000"}, "data.hold_out: 60000 held-out samples of 60000: the number must be at least 1 and leave some samples"},
		{[]string{"data.hold_out=null", "data.hold_out.seed=1"}, `data.hold_out: missing required key "num"`},
	} {
		cfg, _ := tinyMNIST(t, tc.overrides...)
		_, _, err := evalLoader(cfg, "hold_out")
		if err == nil {
			_, err = runners.BuildDataset(cfg, "train")
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error containing %q", tc.overrides, err, tc.want)
		}
	}
}

func TestScorerRejectsMetrics(t *testing.T) {
	cfg, alg := tinyMNIST(t)
	for _, tc := range []struct {
		metrics any
		want    string
	}{
		{"segm", `searcher.metrics "segm": no such metric is registered; razor scores candidates with a registered metric`},
		{"bbox", "searcher: scoring on 48 samples of data.train drawn with seed 2: searcher.metrics bbox: the bbox metric needs a COCO-format dataset (type CocoDataset, with ann_file and img_prefix), and the evaluated dataset is a *datasets.Subset of 48 samples"},
		{[]any{"accuracy", "precision"}, "searcher.metrics must name one metric"},
	} {
		o := evalOptions(BNTrain, 0)
		o.Metrics = tc.metrics
		if _, err := NewScorer(cfg, alg, o, 0); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("metrics %v: %v, want %q", tc.metrics, err, tc.want)
		}
	}
	o := evalOptions(BNTrain, 0)
	o.Metrics = []any{"accuracy"}
	if _, err := NewScorer(cfg, alg, o, 0); err != nil {
		t.Errorf("metrics [accuracy]: %v", err)
	}
}
