package runners

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/datasets"
	"github.com/razorgo/razor/runners/checkpoint"
	"github.com/razorgo/razor/runners/optim"
)

// TrainOptions are the command-line choices of a training run.
type TrainOptions struct {
	// WorkDir receives everything the run writes.
	WorkDir string
	// Seed seeds the run when Seeded; otherwise a random seed is drawn and
	// logged (and a resumed run reuses its checkpoint's seed).
	Seed   uint64
	Seeded bool
	// Deterministic is recorded; every kernel here is deterministic already.
	Deterministic bool
	// ResumeFrom is a checkpoint to resume; AutoResume picks the newest one
	// in WorkDir when there is one.
	ResumeFrom string
	AutoResume bool
	// NoValidate skips the evaluation hook.
	NoValidate bool
	// Out receives the log lines (the terminal).
	Out io.Writer
}

// OptimizerConfig is the `optimizer` mapping.
type OptimizerConfig struct {
	Type         string           `cfg:"type,required"`
	LR           float64          `cfg:"lr,required"`
	Momentum     float64          `cfg:"momentum"`
	Dampening    float64          `cfg:"dampening"`
	WeightDecay  float64          `cfg:"weight_decay"`
	Nesterov     bool             `cfg:"nesterov"`
	ParamwiseCfg *optim.Paramwise `cfg:"paramwise_cfg"`
}

// OptimizerHookConfig is the `optimizer_config` mapping.
type OptimizerHookConfig struct {
	GradClip *GradClip `cfg:"grad_clip"`
	// ZeroGradToNone (razor's) clears gradients to none after each step, so
	// ops off the next sampled path are not moved. The default, false, is
	// mmcv 1.x on torch 1.x (the reference): gradients are zero-filled, and
	// every op ever sampled keeps moving with its momentum and decay. A
	// supernet learns markedly faster that way (README, "What the small
	// recipe needed").
	ZeroGradToNone bool `cfg:"zero_grad_to_none"`
	// Type is accepted for mmcv configs (OptimizerHook is the only one).
	Type string `cfg:"type"`
}

// RunnerConfig is the `runner` mapping.
type RunnerConfig struct {
	Type      string `cfg:"type,required"`
	MaxIters  int    `cfg:"max_iters"`
	MaxEpochs int    `cfg:"max_epochs"`
}

// LogConfig is the `log_config` mapping.
type LogConfig struct {
	Interval int              `cfg:"interval"`
	Hooks    []map[string]any `cfg:"hooks"`
}

// EvaluationConfig is the `evaluation` mapping.
type EvaluationConfig struct {
	Interval int    `cfg:"interval"`
	Metric   any    `cfg:"metric"`
	SaveBest string `cfg:"save_best"`
	ByEpoch  *bool  `cfg:"by_epoch"`
	// NumSubnets (razor's) is how many fixed, seeded subnets a supernet's
	// evaluation averages over.
	NumSubnets int `cfg:"num_subnets"`
	// BNMode (razor's) is how a supernet's subnets get their batch norm
	// statistics: train, recalibrate or eval (see BNPolicy); unset, train
	// when the algorithm sets bn_training_mode, else eval.
	BNMode string `cfg:"bn_mode"`
	// RecalibrateBatches is how many training batches bn_mode recalibrate
	// runs per subnet.
	RecalibrateBatches int `cfg:"recalibrate_batches"`
	// Start is accepted for mmcv configs and ignored.
	Start any `cfg:"start"`
}

// BuildOptimizer builds the optimizer over alg's parameters.
func BuildOptimizer(cfg *config.Config, alg Algorithm) (*optim.SGD, error) {
	var oc OptimizerConfig
	if err := cfg.Decode("optimizer", &oc); err != nil {
		return nil, err
	}
	if t := strings.TrimPrefix(strings.TrimPrefix(oc.Type, "torch."), "mmcv."); t != "SGD" {
		return nil, fmt.Errorf("optimizer.type %q is not supported; use SGD", oc.Type)
	}
	opt, err := optim.NewSGD(alg.NamedParameters(), optim.SGDConfig{
		LR: oc.LR, Momentum: oc.Momentum, Dampening: oc.Dampening, WeightDecay: oc.WeightDecay, Nesterov: oc.Nesterov,
	}, oc.ParamwiseCfg)
	if err != nil {
		return nil, fmt.Errorf("optimizer: %w", err)
	}
	return opt, nil
}

// BuildDataset builds data.<split> with test_mode set for val and test.
func BuildDataset(cfg *config.Config, split string) (datasets.Dataset, error) {
	node, ok := cfg.Get("data." + split)
	if !ok {
		return nil, fmt.Errorf("data.%s is not set; the config needs a data.%s dataset", split, split)
	}
	var defaults map[string]any
	if split != "train" {
		defaults = map[string]any{"test_mode": true}
	}
	ds, err := datasets.Datasets.Build(node, "data."+split, defaults)
	if err != nil {
		return nil, err
	}
	if ds.Len() == 0 {
		return nil, fmt.Errorf("data.%s has no samples", split)
	}
	if split == "train" {
		return holdOut(cfg, ds)
	}
	return ds, nil
}

// HoldOut is data.hold_out: how many training samples, drawn with which
// seed, training leaves out (so a search can score candidates on them with
// searcher.eval_split: hold_out).
type HoldOut struct {
	Num  int    `cfg:"num,required"`
	Seed uint64 `cfg:"seed"`
}

// ConfigHoldOut reads data.hold_out; ok is false when it is not set.
func ConfigHoldOut(cfg *config.Config) (h HoldOut, ok bool, err error) {
	raw, ok := cfg.Get("data.hold_out")
	if !ok || raw == nil {
		return h, false, nil
	}
	if err := config.Decode(raw, "data.hold_out", &h); err != nil {
		return h, false, fmt.Errorf("%w (data.hold_out is {num: N, seed: S})", err)
	}
	return h, true, nil
}

// holdOut leaves data.hold_out's samples out of the training set.
func holdOut(cfg *config.Config, ds datasets.Dataset) (datasets.Dataset, error) {
	h, ok, err := ConfigHoldOut(cfg)
	if err != nil || !ok {
		return ds, err
	}
	idx, err := datasets.HeldOutIndices(ds.Len(), h.Num, h.Seed)
	if err != nil {
		return nil, fmt.Errorf("data.hold_out: %w", err)
	}
	return &datasets.Subset{Dataset: ds, Indices: datasets.Complement(ds.Len(), idx)}, nil
}

// BuildLoader wraps a dataset in a loader with data.samples_per_gpu and
// data.workers_per_gpu (a split may set its own).
func BuildLoader(cfg *config.Config, split string, ds datasets.Dataset, shuffle bool, seed uint64) (*datasets.Loader, error) {
	var o datasets.LoaderOptions
	o.Defaults()
	spg, err := cfg.Int("data.samples_per_gpu", o.SamplesPerGPU)
	if err != nil {
		return nil, err
	}
	wpg, err := cfg.Int("data.workers_per_gpu", o.WorkersPerGPU)
	if err != nil {
		return nil, err
	}
	if o.SamplesPerGPU, err = cfg.Int("data."+split+"_dataloader.samples_per_gpu", spg); err != nil {
		return nil, err
	}
	if o.WorkersPerGPU, err = cfg.Int("data."+split+"_dataloader.workers_per_gpu", wpg); err != nil {
		return nil, err
	}
	o.Shuffle = shuffle
	o.Seed = seed
	l, err := datasets.NewLoader(ds, o)
	if err != nil {
		return nil, fmt.Errorf("data.%s: %w", split, err)
	}
	return l, nil
}

// Train runs a training job for alg as the config describes.
func Train(ctx context.Context, cfg *config.Config, alg Algorithm, opts TrainOptions) error {
	out := opts.Out
	if out == nil {
		out = os.Stdout
	}
	workDir := opts.WorkDir
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return fmt.Errorf("creating work dir %s: %w", workDir, err)
	}
	if err := cfg.WriteFile(filepath.Join(workDir, filepath.Base(strings.TrimSuffix(cfg.File, filepath.Ext(cfg.File)))+".yaml")); err != nil {
		return err
	}
	log, err := NewLogger(workDir, time.Now(), out)
	if err != nil {
		return err
	}
	defer log.Close()

	resume := opts.ResumeFrom
	if resume == "" {
		if r, err := cfg.String("resume_from", ""); err != nil {
			return err
		} else {
			resume = r
		}
	}
	if opts.AutoResume && resume == "" {
		resume = FindLatest(workDir)
	}
	seed := opts.Seed
	if resume != "" {
		meta, err := checkpoint.ReadMeta(resume)
		if err != nil {
			return err
		}
		if raw, ok := meta.Extra["seed"]; ok {
			if err := json.Unmarshal(raw, &seed); err != nil {
				return fmt.Errorf("resume from %s: seed: %w", resume, err)
			}
		}
	} else if !opts.Seeded {
		seed = rand.Uint64() >> 1
	}
	log.Printf("Set random seed to %d, deterministic: %v", seed, opts.Deterministic)

	var rc RunnerConfig
	if err := cfg.Decode("runner", &rc); err != nil {
		return err
	}
	byEpoch := false
	switch strings.TrimPrefix(rc.Type, "mmcv.") {
	case "IterBasedRunner":
		if rc.MaxIters <= 0 {
			return fmt.Errorf("runner.max_iters must be positive for IterBasedRunner, got %d", rc.MaxIters)
		}
	case "EpochBasedRunner":
		if rc.MaxEpochs <= 0 {
			return fmt.Errorf("runner.max_epochs must be positive for EpochBasedRunner, got %d", rc.MaxEpochs)
		}
		byEpoch = true
	default:
		return fmt.Errorf("runner.type %q is not supported; use IterBasedRunner or EpochBasedRunner", rc.Type)
	}

	trainSet, err := BuildDataset(cfg, "train")
	if err != nil {
		return err
	}
	trainLoader, err := BuildLoader(cfg, "train", trainSet, true, seed)
	if err != nil {
		return err
	}
	opt, err := BuildOptimizer(cfg, alg)
	if err != nil {
		return err
	}
	task := NewModelTask(ctx, alg, trainLoader)
	defer task.Close()

	meta := checkpoint.Meta{Extra: map[string]json.RawMessage{}}
	if text, err := cfg.YAML(false); err == nil {
		meta.Config = string(text)
	}
	if sub := alg.Subnet(); sub != nil {
		meta.Subnet = map[string]string(sub)
	}
	meta.Extra["seed"], _ = json.Marshal(seed)
	r := &Runner{Task: task, Optimizer: opt, WorkDir: workDir, Seed: seed, ByEpoch: byEpoch,
		MaxIters: rc.MaxIters, MaxEpochs: rc.MaxEpochs, Meta: meta, Log: log}

	if err := registerTrainingHooks(cfg, r, byEpoch); err != nil {
		return err
	}
	if !opts.NoValidate && cfg.Has("evaluation") && cfg.Has("data.val") {
		h, err := buildEvalHook(cfg, alg, byEpoch, seed, out)
		if err != nil {
			return err
		}
		r.Register(h)
	}

	if err := alg.InitWeights(rand.New(rand.NewPCG(seed, 0x1417))); err != nil {
		return err
	}
	if resume != "" {
		if err := r.Resume(resume); err != nil {
			return err
		}
		log.Printf("resumed from %s at iteration %d, epoch %d", resume, r.Iter, r.Epoch)
	} else if from, err := cfg.String("load_from", ""); err != nil {
		return err
	} else if from != "" {
		rep, _, err := checkpoint.LoadModel(from, alg, checkpoint.LoadOptions{Strict: false, Rules: DefaultLoadRules})
		if err != nil {
			return fmt.Errorf("load_from %s: %w", from, err)
		}
		log.Printf("load checkpoint from %s: %s", from, rep)
	}
	log.Printf("Start running, work_dir: %s, max: %d %s", workDir, map[bool]int{true: rc.MaxEpochs, false: rc.MaxIters}[byEpoch], map[bool]string{true: "epochs", false: "iters"}[byEpoch])
	return r.Run(ctx)
}

// DefaultLoadRules let load_from take both an algorithm checkpoint
// (mmrazor's and razor's keys: architecture.model.*) and a plain model
// checkpoint (mmcls/mmdet keys: backbone.*, head.*).
var DefaultLoadRules = []checkpoint.PrefixRule{{From: "architecture.", To: "architecture."}, {From: "", To: "architecture.model."}}

// registerTrainingHooks adds the lr, optimizer, checkpoint and logger hooks
// as mmcv's register_training_hooks does, with IterBasedRunner's defaults
// (by_epoch false) for iteration-based runs.
func registerTrainingHooks(cfg *config.Config, r *Runner, byEpoch bool) error {
	if cfg.Has("lr_config") {
		var lc LrConfig
		lc.Defaults()
		lc.ByEpoch = byEpoch
		if err := cfg.Decode("lr_config", &lc); err != nil {
			return err
		}
		s, err := NewLrSchedule(lc)
		if err != nil {
			return err
		}
		r.Register(&LrUpdaterHook{Schedule: s})
	}
	var oh OptimizerHookConfig
	if v, ok := cfg.Get("optimizer_config"); ok && v != nil {
		if err := config.Decode(v, "optimizer_config", &oh); err != nil {
			return err
		}
	}
	r.Register(&OptimizerHook{GradClip: oh.GradClip, ZeroToNone: oh.ZeroGradToNone})
	ch := &CheckpointHook{}
	ch.Defaults()
	ch.ByEpoch = byEpoch
	if v, ok := cfg.Get("checkpoint_config"); ok && v != nil {
		if err := config.Decode(v, "checkpoint_config", ch); err != nil {
			return err
		}
	}
	r.Register(ch)
	lh := &LoggerHook{Interval: 50}
	if v, ok := cfg.Get("log_config"); ok && v != nil {
		var lc LogConfig
		lc.Interval = 50
		if err := config.Decode(v, "log_config", &lc); err != nil {
			return err
		}
		for i, h := range lc.Hooks {
			if t, _ := h["type"].(string); t != "TextLoggerHook" && t != "mmcv.TextLoggerHook" {
				return fmt.Errorf("log_config.hooks.%d.type %q is not supported; use TextLoggerHook (it writes the text and JSON logs)", i, h["type"])
			}
		}
		lh.Interval = lc.Interval
	}
	r.Register(lh)
	return nil
}

// buildEvalHook builds the validation loader and evaluation hook.
func buildEvalHook(cfg *config.Config, alg Algorithm, byEpoch bool, seed uint64, out io.Writer) (*EvalHook, error) {
	var ec EvaluationConfig
	ec.Interval = 1
	ec.NumSubnets = 5
	if err := cfg.Decode("evaluation", &ec); err != nil {
		return nil, err
	}
	metric, err := ConfigMetric(cfg)
	if err != nil {
		return nil, err
	}
	valSet, err := BuildDataset(cfg, "val")
	if err != nil {
		return nil, err
	}
	loader, err := BuildLoader(cfg, "val", valSet, false, 0)
	if err != nil {
		return nil, err
	}
	h := &EvalHook{Eval: &Evaluator{Alg: alg, Loader: loader, Metric: metric}, Interval: ec.Interval, ByEpoch: byEpoch, SaveBest: ec.SaveBest}
	if ec.ByEpoch != nil {
		h.ByEpoch = *ec.ByEpoch
	}
	if h.SaveBest == "auto" {
		h.SaveBest = "accuracy_top-1"
	}
	if f, ok := out.(*os.File); ok && isTerminal(f) {
		h.Eval.Progress = out
	}
	if alg.Space() != nil && alg.Subnet() == nil {
		if ec.NumSubnets <= 0 {
			return nil, fmt.Errorf("evaluation.num_subnets must be positive for a supernet, got %d", ec.NumSubnets)
		}
		h.Subnets = FixedSubnets(alg.Space(), ec.NumSubnets, seed)
		if h.Eval.BN, err = NewBNPolicy(cfg, "evaluation", alg, ec.BNMode, ec.RecalibrateBatches, seed); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// ConfigMetric is the config's evaluation.metric, a name or a list of one
// (mmcv writes both), accuracy when unset.
func ConfigMetric(cfg *config.Config) (string, error) {
	v, ok := cfg.Get("evaluation.metric")
	if !ok || v == nil {
		return "accuracy", nil
	}
	switch m := v.(type) {
	case string:
		return m, nil
	case []any:
		if len(m) == 1 {
			if s, ok := m[0].(string); ok {
				return s, nil
			}
		}
	}
	return "", fmt.Errorf("evaluation.metric must name one metric, not %v", v)
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
