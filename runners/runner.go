// Package runners drives training: the runner loops (IterBasedRunner,
// EpochBasedRunner), the hooks that run around every step (lr schedule,
// optimizer, checkpoints, logging, evaluation, custom_hooks) and the
// metrics evaluation scores with, each built from its config section by a
// typed registry (Loops, Hooks, Metrics; optimizers in optim). Its
// sub-packages hold optimizers, checkpoints, the evolution search and the
// pipeline engine.
//
// A Runner knows nothing about models or data formats. It asks a Task for
// one training step at a time -- an algorithm's TrainStep on the next
// batch -- and hands the hooks a view of its state, the way mmcv's runners
// do, so the same loop trains a classifier, a detector, a one-shot
// supernet or a differentiable search.
//
// runners may import algorithms, mutables, models, datasets, registry and
// config; never tools.
package runners

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/dist"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/runners/checkpoint"
	"github.com/razorgo/razor/runners/optim"
)

// StepResult is what one training step produced: the value of every loss
// term in order (the summed "loss" last) and how many samples it saw.
type StepResult struct {
	Values     []NamedValue
	NumSamples int
}

// NamedValue is one logged number (the algorithms package's, so a training
// step's values pass through unchanged).
type NamedValue = algorithms.NamedValue

// Task is what a runner trains.
type Task interface {
	// Module is the root of every weight the run trains and checkpoints.
	Module() nn.Module
	// TrainStep runs the forward and backward pass of iteration iter (0-based)
	// and leaves the gradients in the parameters; the optimizer hook steps
	// them. rng is the iteration's own random source, derived from the seed
	// and iter, so a resumed run draws exactly what an uninterrupted one does.
	TrainStep(ctx context.Context, iter int, rng *rand.Rand) (StepResult, error)
	// DataTime is the time the last step waited for its batch.
	DataTime() time.Duration
	// Epoch is the pass over the training data the last batch came from.
	Epoch() int
	// BatchesPerEpoch is the number of training batches in one epoch.
	BatchesPerEpoch() int
	// Seek positions the training data so that the next step gets the batch
	// an uninterrupted run would get after `done` iterations, `inner` of them
	// in the current epoch (for epoch-based runs).
	Seek(done, epoch, inner int) error
}

// Runner runs a training loop with hooks.
type Runner struct {
	// Task is what is trained.
	Task Task
	// Optimizer steps the task's parameters.
	Optimizer optim.Optimizer
	// WorkDir receives logs and checkpoints.
	WorkDir string
	// Seed derives every iteration's random source.
	Seed uint64
	// Loop drives the iterations (runner.type: IterBasedRunner,
	// EpochBasedRunner or a registered one); nil runs the built-in loop
	// ByEpoch selects.
	Loop Loop
	// ByEpoch tells hooks that the run counts epochs (EpochBasedRunner).
	ByEpoch bool
	// MaxIters and MaxEpochs bound the run (one of them, by ByEpoch; an
	// epoch-based loop sets MaxIters from the epoch length).
	MaxIters, MaxEpochs int
	// Meta is copied into every checkpoint (config text, subnet ...).
	Meta checkpoint.Meta
	// Log writes the text and JSON logs.
	Log *Logger
	// Comm is the group a data-parallel run trains in (nil: this process
	// alone). After every step the gradients and the logged values are
	// averaged over its ranks; only rank 0 writes logs and checkpoints
	// (Writes), and a supernet's evaluation is spread over the ranks.
	Comm dist.Comm

	// Iter is the number of iterations done; inside a hook it is the
	// 0-based index of the iteration in progress.
	Iter int
	// Epoch is the number of epochs done (the 0-based current epoch).
	Epoch int
	// InnerIter is the iteration's index within the current epoch.
	InnerIter int
	// Outputs is the last step's result, for the hooks after it.
	Outputs StepResult
	// Buffer accumulates logged values between two log lines.
	Buffer *LogBuffer

	hooks []registered
}

// registered is a hook with the priority it runs at.
type registered struct {
	hook     Hook
	priority int
}

// Hook priorities, as mmcv's: lower runs first.
const (
	PriorityVeryHigh    = 10
	PriorityHigh        = 30
	PriorityAboveNormal = 40
	PriorityNormal      = 50
	PriorityBelowNormal = 60
	PriorityLow         = 70
	PriorityVeryLow     = 90
)

// Hook runs code at points of the loop. A hook implements any of the
// Before*/After* interfaces below; the runner calls those it has, ordered by
// priority (registration order among equals).
type Hook interface {
	Priority() int
}

// The points of the loop a hook can run at.
type (
	BeforeRunHook        interface{ BeforeRun(r *Runner) error }
	AfterRunHook         interface{ AfterRun(r *Runner) error }
	BeforeTrainEpochHook interface{ BeforeTrainEpoch(r *Runner) error }
	AfterTrainEpochHook  interface{ AfterTrainEpoch(r *Runner) error }
	BeforeTrainIterHook  interface{ BeforeTrainIter(r *Runner) error }
	AfterTrainIterHook   interface{ AfterTrainIter(r *Runner) error }
)

// StatefulHook keeps state that must survive a resume (the best score so
// far, say); it is stored in checkpoint meta under Name.
type StatefulHook interface {
	Hook
	Name() string
	State() (json.RawMessage, error)
	LoadState(json.RawMessage) error
}

// Register adds a hook at its own priority.
func (r *Runner) Register(h Hook) { r.RegisterAt(h, h.Priority()) }

// RegisterAt adds a hook at priority, whatever its own (custom_hooks'
// priority key); among equal priorities hooks run in registration order.
func (r *Runner) RegisterAt(h Hook, priority int) {
	r.hooks = append(r.hooks, registered{h, priority})
	sort.SliceStable(r.hooks, func(i, j int) bool { return r.hooks[i].priority < r.hooks[j].priority })
}

// Hooks lists the registered hooks in the order they run.
func (r *Runner) Hooks() []Hook {
	out := make([]Hook, len(r.hooks))
	for i, h := range r.hooks {
		out[i] = h.hook
	}
	return out
}

// IterRNG is the random source of iteration iter: a pure function of the
// seed and the iteration, so a resumed run draws what an uninterrupted run
// does without saving any generator state.
func IterRNG(seed uint64, iter int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15^uint64(iter)*0xbf58476d1ce4e5b9))
}

// algorithmStateKey keys an algorithms.Stateful's state in checkpoint meta.
const algorithmStateKey = "algorithm_state"

// ErrNonFinite marks a loss that became NaN or infinite.
var ErrNonFinite = errors.New("non-finite loss")

// Run runs the loop to MaxIters (or MaxEpochs), starting from r.Iter and
// r.Epoch (non-zero after Resume).
func (r *Runner) Run(ctx context.Context) error {
	if r.Buffer == nil {
		r.Buffer = NewLogBuffer()
	}
	if err := r.Task.Seek(r.Iter, r.Epoch, r.InnerIter); err != nil {
		return err
	}
	if err := r.call(func(h Hook) error {
		if x, ok := h.(BeforeRunHook); ok {
			return x.BeforeRun(r)
		}
		return nil
	}); err != nil {
		return err
	}
	loop := r.Loop
	if loop == nil {
		loop = builtinLoop(r.ByEpoch)
	}
	if err := loop.Run(ctx, r); err != nil {
		return err
	}
	return r.call(func(h Hook) error {
		if x, ok := h.(AfterRunHook); ok {
			return x.AfterRun(r)
		}
		return nil
	})
}

// TrainIter runs iteration r.Iter: the hooks before it, one training step
// and the hooks after it. A Loop calls it and then advances r.Iter (and
// r.InnerIter in an epoch).
func (r *Runner) TrainIter(ctx context.Context) error {
	if !r.ByEpoch {
		r.InnerIter = r.Iter % max(1, r.Task.BatchesPerEpoch())
	}
	if err := r.call(func(h Hook) error {
		if x, ok := h.(BeforeTrainIterHook); ok {
			return x.BeforeTrainIter(r)
		}
		return nil
	}); err != nil {
		return err
	}
	start := time.Now()
	var endSync func()
	commTime := time.Duration(-1)
	if c := r.comm(); c.Size() > 1 {
		endSync = dist.BeginStep(c)
	}
	out, err := r.Task.TrainStep(ctx, r.Iter, IterRNG(r.Seed, r.Iter))
	if endSync != nil {
		endSync()
	}
	if err != nil {
		return fmt.Errorf("iteration %d: %w", r.Iter+1, err)
	}
	if c := r.comm(); c.Size() > 1 {
		// comm_time (a data-parallel run's log field) is the time spent
		// averaging, waits for slower ranks included.
		syncStart := time.Now()
		if err := AverageGradients(c, r.Task.Module().NamedParameters()); err != nil {
			return fmt.Errorf("iteration %d: averaging gradients: %w", r.Iter+1, err)
		}
		if err := AverageValues(c, out.Values); err != nil {
			return fmt.Errorf("iteration %d: averaging losses: %w", r.Iter+1, err)
		}
		commTime = time.Since(syncStart)
	}
	for _, v := range out.Values {
		if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) {
			return fmt.Errorf("iteration %d: loss term %s is %v; stopping before the optimizer step, so the last checkpoint in %s is the last good state: %w",
				r.Iter+1, v.Name, v.Value, r.WorkDir, ErrNonFinite)
		}
	}
	r.Outputs = out
	for _, v := range out.Values {
		r.Buffer.Add(v.Name, v.Value, out.NumSamples)
	}
	r.Buffer.Add("data_time", r.Task.DataTime().Seconds(), 1)
	if commTime >= 0 {
		r.Buffer.Add("comm_time", commTime.Seconds(), 1)
	}
	timed := false
	for _, h := range r.hooks {
		// The iteration's time covers the step and the hooks up to NORMAL
		// priority (optimizer, checkpoint), not evaluation or logging, as
		// mmcv's IterTimerHook (LOW, registered first) measures it.
		if !timed && h.priority >= PriorityLow {
			r.Buffer.Add("time", time.Since(start).Seconds(), 1)
			timed = true
		}
		if x, ok := h.hook.(AfterTrainIterHook); ok {
			if err := x.AfterTrainIter(r); err != nil {
				return err
			}
		}
	}
	if !timed {
		r.Buffer.Add("time", time.Since(start).Seconds(), 1)
	}
	return nil
}

// comm is r.Comm, or the single process.
func (r *Runner) comm() dist.Comm {
	if r.Comm == nil {
		return dist.Single{}
	}
	return r.Comm
}

// Writes reports whether this process writes the run's files: the only
// process, or rank 0 of a data-parallel run.
func (r *Runner) Writes() bool { return r.comm().Rank() == 0 }

// BeginEpoch runs the hooks before epoch r.Epoch.
func (r *Runner) BeginEpoch() error {
	return r.call(func(h Hook) error {
		if x, ok := h.(BeforeTrainEpochHook); ok {
			return x.BeforeTrainEpoch(r)
		}
		return nil
	})
}

// EndEpoch runs the hooks after epoch r.Epoch.
func (r *Runner) EndEpoch() error {
	return r.call(func(h Hook) error {
		if x, ok := h.(AfterTrainEpochHook); ok {
			return x.AfterTrainEpoch(r)
		}
		return nil
	})
}

func (r *Runner) call(f func(Hook) error) error {
	for _, h := range r.hooks {
		if err := f(h.hook); err != nil {
			return err
		}
	}
	return nil
}

// SaveCheckpoint writes checkpoint name (iter_N or epoch_N) into dir with
// the model, the optimizer (when withOptimizer), the progress made (iterDone
// iterations, epochDone epochs, innerDone iterations into the current epoch)
// and the hooks' state, atomically. It returns the checkpoint's path.
func (r *Runner) SaveCheckpoint(dir, name string, iterDone, epochDone, innerDone int, withOptimizer bool) (string, error) {
	meta := r.Meta
	meta.Iteration = int64(iterDone)
	meta.Epoch = int64(epochDone)
	meta.Extra = map[string]json.RawMessage{}
	for k, v := range r.Meta.Extra {
		meta.Extra[k] = v
	}
	meta.Extra["inner_iter"] = json.RawMessage(strconv.Itoa(innerDone))
	for _, h := range r.hooks {
		if s, ok := h.hook.(StatefulHook); ok {
			b, err := s.State()
			if err != nil {
				return "", fmt.Errorf("saving the state of hook %s: %w", s.Name(), err)
			}
			meta.Extra["hook:"+s.Name()] = b
		}
	}
	if st, ok := r.Task.Module().(algorithms.Stateful); ok {
		b, err := st.State()
		if err != nil {
			return "", fmt.Errorf("saving the algorithm's state: %w", err)
		}
		meta.Extra[algorithmStateKey] = b
	}
	var opt checkpoint.Optimizer
	if withOptimizer && r.Optimizer != nil {
		opt = r.Optimizer
	}
	return checkpoint.SaveTraining(dir, name, r.Task.Module(), opt, meta)
}

// Resume restores weights, optimizer state, progress and hook state from a
// checkpoint written by SaveCheckpoint.
func (r *Runner) Resume(path string) error {
	m, err := checkpoint.Resume(path, r.Task.Module(), r.Optimizer)
	if err != nil {
		return err
	}
	r.Iter = int(m.Iteration)
	r.Epoch = int(m.Epoch)
	r.InnerIter = 0
	if b, ok := m.Extra["inner_iter"]; ok {
		if err := json.Unmarshal(b, &r.InnerIter); err != nil {
			return fmt.Errorf("resume from %s: inner_iter: %w", path, err)
		}
	}
	if st, ok := r.Task.Module().(algorithms.Stateful); ok {
		if b, ok := m.Extra[algorithmStateKey]; ok {
			if err := st.LoadState(b); err != nil {
				return fmt.Errorf("resume from %s: the algorithm's state: %w", path, err)
			}
		}
	}
	for _, h := range r.hooks {
		if s, ok := h.hook.(StatefulHook); ok {
			if b, ok := m.Extra["hook:"+s.Name()]; ok {
				if err := s.LoadState(b); err != nil {
					return fmt.Errorf("resume from %s: hook %s: %w", path, s.Name(), err)
				}
			}
		}
	}
	return nil
}
