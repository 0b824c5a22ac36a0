package search

import (
	"context"
	"fmt"
	"strings"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/datasets"
	"github.com/razorgo/razor/mutables"
	"github.com/razorgo/razor/runners"
)

// ModelScorer scores a subnet of an algorithm's supernet on an evaluation
// loader, handling batch norm as its mode says.
type ModelScorer struct {
	alg  algorithms.OneShot
	eval *runners.Evaluator
	// bn prepares each candidate's batch norm; recalibration uses the
	// first batches of the training loader's epoch 0, the same for every
	// candidate.
	bn *runners.BNPolicy
	// Description says what the scores measure, for the log.
	Description string
}

var _ Scorer = (*ModelScorer)(nil)

// NewScorer builds the scorer the options describe, over cfg's data.
// seed orders the recalibration batches.
func NewScorer(cfg *config.Config, alg algorithms.Algorithm, o EvalOptions, seed uint64) (*ModelScorer, error) {
	if err := o.Check(); err != nil {
		return nil, fmt.Errorf("searcher: %w", err)
	}
	oneShot, err := algorithms.AsOneShot(alg, "a search")
	if err != nil {
		return nil, err
	}
	metric, err := searchMetric(cfg, o.Metrics)
	if err != nil {
		return nil, err
	}
	loader, what, err := evalLoader(cfg, o.EvalSplit)
	if err != nil {
		return nil, err
	}
	s := &ModelScorer{alg: oneShot, eval: &runners.Evaluator{Alg: alg, Loader: loader, Metric: metric}}
	// A metric that cannot score this data (bbox on a classification set)
	// says so now rather than after the supernet is loaded and searched.
	if err := s.eval.Check(); err != nil {
		return nil, fmt.Errorf("searcher: scoring on %s: %w", what, err)
	}
	if s.bn, err = runners.NewBNPolicy(cfg, "searcher", alg, o.BNMode, o.RecalibrateBatches, seed); err != nil {
		return nil, err
	}
	s.Description = fmt.Sprintf("%s on %s, %s", metric.Name, what, s.bn.Describe())
	return s, nil
}

// searchMetric reads searcher.metrics (a name or a list of one), falling
// back to evaluation.metric, with evaluation.metric_options.
func searchMetric(cfg *config.Config, v any) (runners.MetricSpec, error) {
	switch t := v.(type) {
	case nil:
		return runners.ConfigMetricSpec(cfg)
	case string:
	case []any:
		if len(t) == 1 {
			if _, ok := t[0].(string); ok {
				break
			}
		}
		return runners.MetricSpec{}, fmt.Errorf("searcher.metrics must name one metric, such as accuracy, not %v", v)
	default:
		return runners.MetricSpec{}, fmt.Errorf("searcher.metrics must name one metric, such as accuracy, not %v", v)
	}
	opts, _ := cfg.Get("evaluation.metric_options")
	spec, err := runners.ParseMetricSpec(v, opts, "searcher.metrics")
	if err != nil && !runners.Metrics.Has(spec.Name) {
		return spec, fmt.Errorf("searcher.metrics %q: no such metric is registered; razor scores candidates with a registered metric -- accuracy for classification, bbox (COCO mAP; set searcher.score_key: bbox_mAP) for detection, or one a package registers (registered: %s)", spec.Name, strings.Join(runners.Metrics.Names(), ", "))
	}
	return spec, err
}

// heldOutSplit is eval_split's mapping form.
type heldOutSplit struct {
	From string `cfg:"from,required"`
	Num  int    `cfg:"num,required"`
	Seed uint64 `cfg:"seed"`
}

// evalLoader builds the loader of eval_split and says what it holds.
func evalLoader(cfg *config.Config, v any) (*datasets.Loader, string, error) {
	switch t := v.(type) {
	case string:
		if t == "hold_out" {
			h, ok, err := runners.ConfigHoldOut(cfg)
			if err != nil {
				return nil, "", err
			}
			if !ok {
				return nil, "", fmt.Errorf("searcher.eval_split hold_out scores on the training samples data.hold_out leaves out, and data.hold_out is not set; set it to {num: N, seed: S} in the supernet's config")
			}
			l, what, err := heldOutLoader(cfg, heldOutSplit{From: "train", Num: h.Num, Seed: h.Seed}, "data.hold_out", true)
			return l, what + ", which data.hold_out leaves out of training", err
		}
		return splitLoader(cfg, t)
	case nil:
		return splitLoader(cfg, "")
	case map[string]any:
		var h heldOutSplit
		if err := config.Decode(t, "searcher.eval_split", &h); err != nil {
			return nil, "", err
		}
		return heldOutLoader(cfg, h, "searcher.eval_split", false)
	}
	return nil, "", fmt.Errorf("searcher.eval_split must name a data split (val), be hold_out (data.hold_out's samples) or be {from: train, num: N, seed: S}, not %v", v)
}

// splitLoader is the loader of data.<split> (data.val when split is empty).
func splitLoader(cfg *config.Config, split string) (*datasets.Loader, string, error) {
	if split == "" {
		split = "val"
	}
	ds, err := runners.BuildDataset(cfg, split)
	if err != nil {
		return nil, "", fmt.Errorf("searcher.eval_split %s: %w", split, err)
	}
	l, err := runners.BuildLoader(cfg, split, ds, false, 0)
	if err != nil {
		return nil, "", err
	}
	return l, fmt.Sprintf("data.%s (%d samples)", split, ds.Len()), nil
}

// heldOutLoader is the loader of h's samples; key names h in errors and
// leaveSome is as in heldOut.
func heldOutLoader(cfg *config.Config, h heldOutSplit, key string, leaveSome bool) (*datasets.Loader, string, error) {
	ds, err := heldOut(cfg, h, key, leaveSome)
	if err != nil {
		return nil, "", err
	}
	// Held-out samples are evaluated as validation data is, in batches of
	// data.val_dataloader (else data.samples_per_gpu).
	l, err := runners.BuildLoader(cfg, "val", ds, false, 0)
	if err != nil {
		return nil, "", err
	}
	return l, fmt.Sprintf("%d samples of data.%s drawn with seed %d", h.Num, h.From, h.Seed), nil
}

// heldOut builds h.Num samples of data.<h.From>, drawn with h.Seed and read
// through the evaluation pipeline, so training augmentation never touches
// a score; key names h in errors. With leaveSome (data.hold_out's samples)
// h must leave some samples out, for training.
func heldOut(cfg *config.Config, h heldOutSplit, key string, leaveSome bool) (datasets.Dataset, error) {
	raw, ok := cfg.Get("data." + h.From)
	node, isMap := raw.(map[string]any)
	if !ok || !isMap {
		return nil, fmt.Errorf("%s.from: data.%s is not a dataset mapping; name a split of data such as train", key, h.From)
	}
	pipeline, ok := cfg.Get("data.val.pipeline")
	if !ok {
		if pipeline, ok = cfg.Get("data.test.pipeline"); !ok {
			return nil, fmt.Errorf("%s: the held-out samples are read through data.val's (or data.test's) pipeline, and the config has neither", key)
		}
	}
	node = config.DeepCopy(node).(map[string]any)
	node["pipeline"] = config.DeepCopy(pipeline)
	var defaults map[string]any
	if h.From != "train" {
		defaults = map[string]any{"test_mode": true}
	}
	ds, err := datasets.Datasets.Build(node, "data."+h.From, defaults)
	if err != nil {
		return nil, err
	}
	if !leaveSome && (h.Num < 1 || h.Num > ds.Len()) {
		return nil, fmt.Errorf("%s.num must be between 1 and the %d samples of data.%s, got %d", key, ds.Len(), h.From, h.Num)
	}
	if !leaveSome && h.Num == ds.Len() {
		idx := make([]int, h.Num)
		for i := range idx {
			idx[i] = i
		}
		return &datasets.Subset{Dataset: ds, Indices: idx}, nil
	}
	idx, err := datasets.HeldOutIndices(ds.Len(), h.Num, h.Seed)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return &datasets.Subset{Dataset: ds, Indices: idx}, nil
}

// Score selects sub, prepares batch norm and evaluates; the supernet's
// running statistics are as they were afterwards.
func (s *ModelScorer) Score(ctx context.Context, sub mutables.Subnet) ([]runners.NamedValue, error) {
	if err := s.alg.SetSubnet(sub); err != nil {
		return nil, err
	}
	undo, err := s.bn.Prepare(ctx, s.alg.Model())
	if err != nil {
		return nil, err
	}
	defer undo()
	return s.eval.Evaluate(ctx)
}
