package runners

import (
	"context"
	"fmt"
	"slices"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/datasets"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/models/ops"
)

// Batch-norm modes for scoring one path of a supernet, whose running
// statistics average over every path it trained.
const (
	// BNTrain normalizes with each evaluation batch's own statistics, as
	// mmrazor's bn_training_mode does, leaving the running statistics alone.
	BNTrain = "train"
	// BNRecalibrate re-estimates every batch norm of the selected path on
	// training batches before evaluating, as the SPOS paper and the
	// official DetNAS code do.
	BNRecalibrate = "recalibrate"
	// BNEval evaluates with the running statistics as they are.
	BNEval = "eval"
)

// BNPolicy prepares batch norm before a path is evaluated.
type BNPolicy struct {
	// Mode is BNTrain, BNRecalibrate or BNEval.
	Mode string
	// Loader yields the recalibration batches (BNRecalibrate).
	Loader *datasets.Loader
	// Batches is how many of them re-estimate the statistics.
	Batches int
}

// NewBNPolicy builds the policy for mode (empty: BNTrain when the algorithm
// asks for bn_training_mode, else BNEval), drawing recalibration batches
// from cfg's training data in an order fixed by seed. key names the config
// section in errors (evaluation, searcher).
func NewBNPolicy(cfg *config.Config, key string, alg algorithms.Algorithm, mode string, batches int, seed uint64) (*BNPolicy, error) {
	if mode == "" {
		mode = BNEval
		if a, ok := alg.(interface{ BNTrainingMode() bool }); ok && a.BNTrainingMode() {
			mode = BNTrain
		}
	}
	p := &BNPolicy{Mode: mode}
	switch mode {
	case BNTrain, BNEval:
		return p, nil
	case BNRecalibrate:
	default:
		return nil, fmt.Errorf("%s.bn_mode %q is not one of train, recalibrate, eval", key, mode)
	}
	if batches <= 0 {
		return nil, fmt.Errorf("%s.recalibrate_batches must be positive for bn_mode recalibrate, got %d", key, batches)
	}
	ds, err := BuildDataset(cfg, "train")
	if err != nil {
		return nil, fmt.Errorf("%s.bn_mode recalibrate: %w", key, err)
	}
	if p.Loader, err = BuildLoader(cfg, "train", ds, true, seed); err != nil {
		return nil, fmt.Errorf("%s.bn_mode recalibrate: %w", key, err)
	}
	if n := p.Loader.Len(); n < batches {
		return nil, fmt.Errorf("%s.recalibrate_batches %d exceeds the %d batches of data.train", key, batches, n)
	}
	p.Batches = batches
	return p, nil
}

// EvalBNPolicy is the policy of cfg's evaluation.bn_mode and
// evaluation.recalibrate_batches, for scoring a supernet's subnets.
func EvalBNPolicy(cfg *config.Config, alg algorithms.Algorithm, seed uint64) (*BNPolicy, error) {
	var ec EvaluationConfig
	if cfg.Has("evaluation") {
		if err := cfg.Decode("evaluation", &ec); err != nil {
			return nil, err
		}
	}
	return NewBNPolicy(cfg, "evaluation", alg, ec.BNMode, ec.RecalibrateBatches, seed)
}

// Describe says what scores under the policy measure, for logs.
func (p *BNPolicy) Describe() string {
	switch p.Mode {
	case BNTrain:
		return "batch norm on each evaluation batch's statistics"
	case BNRecalibrate:
		return fmt.Sprintf("batch norm recalibrated on %d training batches of %d", p.Batches, p.Loader.Options().SamplesPerGPU)
	}
	return "batch norm on the running statistics"
}

// Prepare readies model's selected path for evaluation and returns what
// undoes it once the evaluation is over: every running statistic is as it
// was before, so evaluating during training leaves the run (and its
// checkpoints) exactly as it would be without evaluation.
func (p *BNPolicy) Prepare(ctx context.Context, model models.Model) (func(), error) {
	switch p.Mode {
	case BNTrain:
		// Recalibration mode normalizes with batch statistics, as
		// training mode does, without moving the running statistics;
		// switching it off discards what it gathered.
		nn.RecalibrateBN(model, true)
		return func() { nn.RecalibrateBN(model, false) }, nil
	case BNRecalibrate:
		restore := snapshotBN(model)
		if err := p.recalibrate(ctx, model); err != nil {
			restore()
			return nil, err
		}
		return restore, nil
	}
	return func() {}, nil
}

// snapshotBN copies every batch norm's running statistics under m and
// returns what puts them back.
func snapshotBN(m nn.Module) func() {
	type saved struct {
		st         *ops.BatchNormState
		mean, vari []float32
		tracked    int64
	}
	var all []saved
	nn.Walk(m, func(_ string, x nn.Module) {
		if bn, ok := x.(*nn.BatchNorm2d); ok {
			st := bn.State
			all = append(all, saved{st, slices.Clone(st.RunningMean.Float32s()), slices.Clone(st.RunningVar.Float32s()), st.NumBatchesTracked})
		}
	})
	return func() {
		for _, s := range all {
			copy(s.st.RunningMean.Float32s(), s.mean)
			copy(s.st.RunningVar.Float32s(), s.vari)
			s.st.NumBatchesTracked = s.tracked
		}
	}
}

func (p *BNPolicy) recalibrate(ctx context.Context, model models.Model) error {
	nn.RecalibrateBN(model, true)
	defer nn.RecalibrateBN(model, false)
	n := 0
	for batch, err := range p.Loader.Epoch(ctx, 0) {
		if err != nil {
			return fmt.Errorf("recalibrating batch norm: %w", err)
		}
		in, err := ToModelBatch(batch)
		if err != nil {
			return err
		}
		// The statistics are all that is kept: a detector's boxes are
		// never read, so a training image the pipeline flipped is as good
		// as any (a detector's test forward refuses flipped images because
		// their boxes would come back mirrored).
		for i := range in.Metas {
			in.Metas[i].Flip = false
		}
		if _, err := models.Predict(model, in); err != nil {
			return fmt.Errorf("recalibrating batch norm: %w", err)
		}
		if n++; n == p.Batches {
			break
		}
	}
	nn.FinishBNRecalibration(model)
	return nil
}
