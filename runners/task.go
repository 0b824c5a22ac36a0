package runners

import (
	"context"
	"fmt"
	"iter"
	"math/rand/v2"
	"time"

	"gorgonia.org/tensor"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/datasets"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
)

// ModelTask trains an algorithm on batches from a loader: each step hands
// the next batch and the iteration's rng to the algorithm's TrainStep,
// which draws a path or not, runs the forward and backward passes and
// makes any update of its own.
type ModelTask struct {
	Alg    algorithms.Algorithm
	Loader *datasets.Loader

	ctx      context.Context
	next     func() (*datasets.Batch, error, bool)
	stop     func()
	dataTime time.Duration
	epoch    int
}

// NewModelTask trains alg's model on loader's batches.
func NewModelTask(ctx context.Context, alg algorithms.Algorithm, loader *datasets.Loader) *ModelTask {
	return &ModelTask{Alg: alg, Loader: loader, ctx: ctx}
}

// Module is the algorithm's whole weight tree.
func (t *ModelTask) Module() nn.Module { return t.Alg }

// DataTime is how long the last step waited for its batch.
func (t *ModelTask) DataTime() time.Duration { return t.dataTime }

// Epoch is the data pass of the last batch.
func (t *ModelTask) Epoch() int { return t.epoch }

// BatchesPerEpoch is the loader's length.
func (t *ModelTask) BatchesPerEpoch() int { return t.Loader.Len() }

// Seek restarts the data stream at the batch an uninterrupted run reaches
// after `done` iterations.
func (t *ModelTask) Seek(done, _, _ int) error {
	if t.stop != nil {
		t.stop()
	}
	t.next, t.stop = iter.Pull2(t.Loader.EndlessFrom(t.ctx, done))
	return nil
}

// Close stops the loader's workers.
func (t *ModelTask) Close() {
	if t.stop != nil {
		t.stop()
		t.stop = nil
	}
}

// TrainStep runs one forward and backward pass.
func (t *ModelTask) TrainStep(ctx context.Context, it int, rng *rand.Rand) (StepResult, error) {
	if t.next == nil {
		if err := t.Seek(it, 0, 0); err != nil {
			return StepResult{}, err
		}
	}
	start := time.Now()
	batch, err, ok := t.next()
	t.dataTime = time.Since(start)
	if !ok {
		return StepResult{}, fmt.Errorf("the training data ended")
	}
	if err != nil {
		return StepResult{}, err
	}
	t.epoch = batch.Epoch
	in, err := ToModelBatch(batch)
	if err != nil {
		return StepResult{}, err
	}
	vals, err := t.Alg.TrainStep(ctx, in, rng)
	if err != nil {
		return StepResult{}, err
	}
	return StepResult{Values: vals, NumSamples: batch.Len()}, nil
}

// ToModelBatch converts a collated data batch into model inputs.
func ToModelBatch(b *datasets.Batch) (*models.Batch, error) {
	if b.Img == nil {
		return nil, fmt.Errorf("the batch has no images; the pipeline's Collect must keep img")
	}
	in := &models.Batch{
		Images:  tensor.New(tensor.WithShape(b.Shape[:]...), tensor.WithBacking(b.Img)),
		Labels:  b.Labels,
		Indices: b.Indices,
	}
	for _, g := range b.GT {
		in.GTBoxes = append(in.GTBoxes, boxes(g.BBoxes))
		in.GTLabels = append(in.GTLabels, g.Labels)
		in.GTIgnore = append(in.GTIgnore, boxes(g.BBoxesIgnore))
	}
	for _, m := range b.Metas {
		in.Metas = append(in.Metas, ModelMeta(m))
	}
	return in, nil
}

// ModelMeta is what a model reads of an image's pipeline metas: file,
// shapes, scale factor and flip.
func ModelMeta(m datasets.Meta) models.ImageMeta {
	return models.ImageMeta{
		Filename: m.Filename, OriShape: m.OriShape, ImgShape: m.ImgShape, PadShape: m.PadShape,
		ScaleFactor: m.ScaleFactor, Flip: m.Flip,
	}
}

// boxes converts data boxes to model boxes.
func boxes(bs []datasets.Box) [][4]float32 {
	out := make([][4]float32, len(bs))
	for i, b := range bs {
		out[i] = [4]float32(b)
	}
	return out
}
