package runners

import (
	"context"
	"fmt"

	"github.com/razorgo/razor/registry"
)

// Loop is what `runner.type` builds: how a run walks through its
// iterations. Run drives r from its current progress (r.Iter, r.Epoch,
// r.InnerIter, non-zero after a resume) to the end, calling r.TrainIter
// for every iteration and r.BeginEpoch / r.EndEpoch around epochs; the
// runner has run the before-run hooks and runs the after-run hooks.
type Loop interface {
	// ByEpoch reports whether the run counts epochs: hooks configured
	// without by_epoch follow it, as mmcv's runners set them.
	ByEpoch() bool
	// Bounds are the run's length: MaxIters for an iteration-based loop,
	// MaxEpochs for an epoch-based one (the other is 0).
	Bounds() (maxIters, maxEpochs int)
	Run(ctx context.Context, r *Runner) error
}

// Loops builds the `runner:` mapping of a config.
var Loops = registry.New[Loop]("runner")

// IterBasedRunner runs max_iters iterations, data passes following one
// another without a break (mmcv's IterBasedRunner).
type IterBasedRunner struct {
	MaxIters int `cfg:"max_iters,required"`
}

// ByEpoch is false.
func (l *IterBasedRunner) ByEpoch() bool { return false }

// Bounds are max_iters.
func (l *IterBasedRunner) Bounds() (int, int) { return l.MaxIters, 0 }

// Run trains until r.MaxIters iterations are done.
func (l *IterBasedRunner) Run(ctx context.Context, r *Runner) error {
	for r.Iter < r.MaxIters {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.TrainIter(ctx); err != nil {
			return err
		}
		r.Iter++
		r.Epoch = r.Task.Epoch()
	}
	return nil
}

// EpochBasedRunner runs max_epochs passes over the training data, with the
// epoch hooks between them (mmcv's EpochBasedRunner).
type EpochBasedRunner struct {
	MaxEpochs int `cfg:"max_epochs,required"`
}

// ByEpoch is true.
func (l *EpochBasedRunner) ByEpoch() bool { return true }

// Bounds are max_epochs.
func (l *EpochBasedRunner) Bounds() (int, int) { return 0, l.MaxEpochs }

// Run trains until r.MaxEpochs epochs are done, setting r.MaxIters to the
// whole run's iterations.
func (l *EpochBasedRunner) Run(ctx context.Context, r *Runner) error {
	per := r.Task.BatchesPerEpoch()
	if per <= 0 {
		return fmt.Errorf("the training data gives no batch per epoch; use more samples or drop_last: false")
	}
	r.MaxIters = r.MaxEpochs * per
	for r.Epoch < r.MaxEpochs {
		if r.InnerIter == 0 {
			if err := r.BeginEpoch(); err != nil {
				return err
			}
		}
		for r.InnerIter < per {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := r.TrainIter(ctx); err != nil {
				return err
			}
			r.InnerIter++
			r.Iter++
		}
		if err := r.EndEpoch(); err != nil {
			return err
		}
		r.Epoch++
		r.InnerIter = 0
	}
	return nil
}

// builtinLoop is the loop of a Runner built without one.
func builtinLoop(byEpoch bool) Loop {
	if byEpoch {
		return &EpochBasedRunner{}
	}
	return &IterBasedRunner{}
}

func init() {
	registry.MustRegister(Loops, "IterBasedRunner", func(o IterBasedRunner) (Loop, error) {
		if o.MaxIters <= 0 {
			return nil, fmt.Errorf("max_iters must be positive, got %d", o.MaxIters)
		}
		return &o, nil
	})
	registry.MustRegister(Loops, "EpochBasedRunner", func(o EpochBasedRunner) (Loop, error) {
		if o.MaxEpochs <= 0 {
			return nil, fmt.Errorf("max_epochs must be positive, got %d", o.MaxEpochs)
		}
		return &o, nil
	})
}
