package runners

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/datasets"
	"github.com/razorgo/razor/dist"
	"github.com/razorgo/razor/models/nn"
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

// EvaluationConfig is the `evaluation` mapping, the options of EvalHook.
type EvaluationConfig struct {
	Interval int `cfg:"interval"`
	// Metric names the metric (a name or a list of one, as mmcv writes);
	// MetricOptions are its keys (mmcls's metric_options).
	Metric        any    `cfg:"metric"`
	MetricOptions any    `cfg:"metric_options"`
	SaveBest      string `cfg:"save_best"`
	ByEpoch       *bool  `cfg:"by_epoch"`
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

// Defaults evaluate every interval and average a supernet over 5 subnets.
func (c *EvaluationConfig) Defaults() {
	c.Interval = 1
	c.NumSubnets = 5
}

// BuildOptimizer builds the config's optimizer over the parameters alg's
// runner steps: all of them but those the algorithm updates itself
// (algorithms.SelfOptimized).
func BuildOptimizer(cfg *config.Config, alg algorithms.Algorithm) (optim.Optimizer, error) {
	node, ok := cfg.Get("optimizer")
	if !ok || node == nil {
		return nil, fmt.Errorf("the config has no optimizer; set optimizer.type to one of: %s", strings.Join(optim.Optimizers.Names(), ", "))
	}
	return optim.Build(node, "optimizer", RunnerParameters(alg))
}

// RunnerParameters are the parameters of alg the runner's optimizer steps:
// every one but those the algorithm updates itself.
func RunnerParameters(alg algorithms.Algorithm) []*nn.Param {
	params := alg.NamedParameters()
	so, ok := alg.(algorithms.SelfOptimized)
	if !ok {
		return params
	}
	own := map[string]bool{}
	for _, n := range so.SelfOptimized() {
		own[n] = true
	}
	out := params[:0:0]
	for _, p := range params {
		if !own[p.Name()] {
			out = append(out, p)
		}
	}
	return out
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
// data.workers_per_gpu (a split may set its own). A shuffled loader of more
// than one sample per batch over a dataset with aspect-ratio flags (a
// CocoDataset) batches landscape and portrait images apart, as mmdet's
// GroupSampler does; classification sets have no flags and load as before.
func BuildLoader(cfg *config.Config, split string, ds datasets.Dataset, shuffle bool, seed uint64) (*datasets.Loader, error) {
	return BuildShardedLoader(cfg, split, ds, shuffle, seed, dist.Single{})
}

// BuildShardedLoader is BuildLoader for rank c.Rank() of c.Size(): each
// epoch's order is the same on every rank and each rank reads its own
// shard of it, as PyTorch's DistributedSampler (and mmdet's
// DistributedGroupSampler) deal them.
func BuildShardedLoader(cfg *config.Config, split string, ds datasets.Dataset, shuffle bool, seed uint64, c dist.Comm) (*datasets.Loader, error) {
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
	o.Rank, o.WorldSize = c.Rank(), c.Size()
	if shuffle && o.SamplesPerGPU > 1 {
		o.Groups = datasets.AspectFlags(ds)
	}
	l, err := datasets.NewLoader(ds, o)
	if err != nil {
		return nil, fmt.Errorf("data.%s: %w", split, err)
	}
	return l, nil
}

// Train runs a training job for alg as the config describes.
func Train(ctx context.Context, cfg *config.Config, alg algorithms.Algorithm, opts TrainOptions) error {
	out := opts.Out
	if out == nil {
		out = os.Stdout
	}
	workDir := opts.WorkDir
	comm := dist.World()
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return fmt.Errorf("creating work dir %s: %w", workDir, err)
	}
	log, err := OpenRunLog(cfg, workDir, out, comm)
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
	// Every rank resumes what rank 0 found.
	if err := dist.BroadcastJSON(comm, &resume); err != nil {
		return err
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
	if err := dist.BroadcastJSON(comm, &seed); err != nil {
		return err
	}
	if comm.Size() > 1 {
		log.Printf("Distributed training: %s, data.samples_per_gpu images per rank and step", comm.Name())
	}
	log.Printf("Set random seed to %d, deterministic: %v", seed, opts.Deterministic)

	runnerNode, ok := cfg.Get("runner")
	if !ok || runnerNode == nil {
		return fmt.Errorf("the config has no runner; set runner.type to one of: %s", strings.Join(Loops.Names(), ", "))
	}
	if err := Loops.Supported(runnerNode, "runner"); err != nil {
		return err
	}
	loop, err := Loops.Build(runnerNode, "runner", nil)
	if err != nil {
		return err
	}
	byEpoch := loop.ByEpoch()
	maxIters, maxEpochs := loop.Bounds()

	trainSet, err := BuildDataset(cfg, "train")
	if err != nil {
		return err
	}
	if err := checkTrainSet(trainSet, log); err != nil {
		return err
	}
	if note := SyncBNNote(cfg); note != "" {
		log.Printf("%s", note)
	}
	trainLoader, err := BuildShardedLoader(cfg, "train", trainSet, true, seed, comm)
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
	if oneShot, ok := alg.(algorithms.OneShot); ok {
		if sub := oneShot.Subnet(); sub != nil {
			meta.Subnet = map[string]string(sub)
		}
	}
	meta.Extra["seed"], _ = json.Marshal(seed)
	r := &Runner{Task: task, Optimizer: opt, WorkDir: workDir, Seed: seed, Loop: loop, ByEpoch: byEpoch,
		MaxIters: maxIters, MaxEpochs: maxEpochs, Meta: meta, Log: log, Comm: comm}

	env := &Env{Config: cfg, Alg: alg, WorkDir: workDir, Seed: seed, ByEpoch: byEpoch, TrainSet: trainSet}
	if f, ok := out.(*os.File); ok && isTerminal(f) && comm.Rank() == 0 {
		env.Terminal = out
	}
	if err := ConfigHooks(cfg, r, env, !opts.NoValidate); err != nil {
		return err
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
		summary, err := LoadFrom(from, alg)
		if err != nil {
			return err
		}
		log.Printf("load checkpoint from %s: %s", from, summary)
	}
	// Every rank starts from rank 0's weights (a resumed run's are the same
	// file's on every rank already).
	if err := BroadcastWeights(comm, alg); err != nil {
		return err
	}
	log.Printf("Start running, work_dir: %s, max: %d %s", workDir, map[bool]int{true: maxEpochs, false: maxIters}[byEpoch], map[bool]string{true: "epochs", false: "iters"}[byEpoch])
	return r.Run(ctx)
}

// ModelPrefix starts the name of every model weight under an algorithm, as
// mmrazor and razor save them.
const ModelPrefix = "architecture.model."

// checkTrainSet logs what the training set skipped while reading its
// annotations and, for a set of image files (CocoDataset), fails before the
// first step when one of them is missing, naming it, rather than an epoch
// into the run.
func checkTrainSet(ds datasets.Dataset, log *Logger) error {
	base := ds
	for {
		sub, ok := base.(*datasets.Subset)
		if !ok {
			break
		}
		base = sub.Dataset
	}
	if n, ok := base.(interface{ Notes() []string }); ok {
		for _, note := range n.Notes() {
			log.Printf("data.train: %s", note)
		}
	}
	if c, ok := base.(interface{ CheckImages() error }); ok {
		if err := c.CheckImages(); err != nil {
			return fmt.Errorf("data.train: %w", err)
		}
	}
	return nil
}

// DefaultLoadRules let load_from take both an algorithm checkpoint
// (mmrazor's and razor's keys: architecture.model.*) and a plain model
// checkpoint (mmcls/mmdet keys: backbone.*, head.*).
var DefaultLoadRules = []checkpoint.PrefixRule{{From: "architecture.", To: "architecture."}, {From: "", To: ModelPrefix}}

// LoadFrom fills alg with the weights of the checkpoint at path, as a
// config's load_from does before training: razor's format or a PyTorch
// .pth, keyed by the algorithm or by the model alone (DefaultLoadRules).
// The checkpoint need not be of the same model: the tensors the model lacks
// are skipped and the weights the checkpoint lacks keep their initial
// values, so a classifier's checkpoint starts a detector's backbone (DetNAS
// step 5 from step 4), and tensors of another shape are left as they were.
// It returns one line for the log that says, by module, what was skipped,
// lacked or left. A checkpoint that fills no weight at all is an error,
// since training would then start from scratch unnoticed.
func LoadFrom(path string, alg algorithms.Algorithm) (string, error) {
	rep, _, err := checkpoint.LoadModel(path, alg, checkpoint.LoadOptions{Rules: DefaultLoadRules})
	if err != nil {
		return "", fmt.Errorf("load_from %s: %w", path, err)
	}
	if len(rep.Loaded) == 0 {
		return "", fmt.Errorf("load_from %s: no tensor of the checkpoint fits the model (%s); is it a checkpoint of this model family, saved by razor, mmrazor, mmdet or mmcls?", path, rep.Summary(ModelPrefix, 1))
	}
	return rep.Summary(ModelPrefix, 1), nil
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
