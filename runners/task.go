package runners

import (
	"context"
	"fmt"
	"iter"
	"math/rand/v2"
	"strings"
	"time"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/razorgo/razor/datasets"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/mutables"
)

// Algorithm is what the training loop needs of a NAS algorithm (SPOS,
// DetNAS) or of a plain model: the network, and for a supernet the space to
// draw a path from every iteration.
type Algorithm interface {
	// Module is the root of every weight the run trains and checkpoints
	// (mmrazor's keys: architecture.model.*).
	nn.Module
	// Model is the network the algorithm trains.
	Model() models.Model
	// Space is the search space, nil for a network with nothing to search.
	Space() *mutables.Space
	// Subnet is the fixed subnet (retraining or a chosen path), nil while
	// training a supernet.
	Subnet() mutables.Subnet
	// SetSubnet selects the path the next forward passes use.
	SetSubnet(mutables.Subnet) error
	// SampleSubnet draws a path uniformly from the space and selects it.
	SampleSubnet(rng *rand.Rand) (mutables.Subnet, error)
	// InitWeights draws the initial weights.
	InitWeights(rng *rand.Rand) error
}

// ModelTask trains an Algorithm's model on batches from a loader: each step
// draws a path when training a supernet (one op per block, uniformly, from
// the iteration's rng), builds the path's graph, sums the loss terms and
// back-propagates.
type ModelTask struct {
	Alg    Algorithm
	Loader *datasets.Loader

	ctx      context.Context
	next     func() (*datasets.Batch, error, bool)
	stop     func()
	dataTime time.Duration
	epoch    int
}

// NewModelTask trains alg's model on loader's batches.
func NewModelTask(ctx context.Context, alg Algorithm, loader *datasets.Loader) *ModelTask {
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
	if t.Alg.Space() != nil && t.Alg.Subnet() == nil {
		if _, err := t.Alg.SampleSubnet(rng); err != nil {
			return StepResult{}, err
		}
	}
	model := t.Alg.Model()
	model.SetTraining(true)
	in, err := ToModelBatch(batch)
	if err != nil {
		return StepResult{}, err
	}
	bind := nn.NewBinding()
	defer bind.Release()
	losses, err := model.ForwardTrain(bind, in)
	if err != nil {
		return StepResult{}, err
	}
	total, err := SumLosses(losses)
	if err != nil {
		return StepResult{}, err
	}
	if err := bind.Backward(total); err != nil {
		return StepResult{}, err
	}
	if err := bind.Run(); err != nil {
		return StepResult{}, err
	}
	var out StepResult
	out.NumSamples = batch.Len()
	for _, l := range losses {
		v, err := Scalar(l.Node)
		if err != nil {
			return StepResult{}, fmt.Errorf("%s: %w", l.Name, err)
		}
		out.Values = append(out.Values, NamedValue{l.Name, v})
	}
	v, err := Scalar(total)
	if err != nil {
		return StepResult{}, err
	}
	out.Values = append(out.Values, NamedValue{"loss", v})
	return out, nil
}

// SumLosses adds every term whose name contains "loss", as mmcv's
// _parse_losses does; other terms (accuracies) are only logged.
func SumLosses(ls models.Losses) (*gorgonia.Node, error) {
	var total *gorgonia.Node
	for _, l := range ls {
		if !strings.Contains(l.Name, "loss") {
			continue
		}
		if total == nil {
			total = l.Node
			continue
		}
		s, err := gorgonia.Add(total, l.Node)
		if err != nil {
			return nil, fmt.Errorf("summing %s: %w", l.Name, err)
		}
		total = s
	}
	if total == nil {
		return nil, fmt.Errorf("the model returned no loss term (names must contain \"loss\")")
	}
	return total, nil
}

// Scalar reads a scalar node's value after the graph has run.
func Scalar(n *gorgonia.Node) (float64, error) {
	switch v := n.Value().(type) {
	case *gorgonia.F32:
		return float64(float32(*v)), nil
	case *gorgonia.F64:
		return float64(*v), nil
	case *tensor.Dense:
		if v.Size() == 1 {
			switch d := v.Data().(type) {
			case []float32:
				return float64(d[0]), nil
			case float32:
				return float64(d), nil
			}
		}
	}
	return 0, fmt.Errorf("expected a scalar value, got %T", n.Value())
}

// ToModelBatch converts a collated data batch into model inputs.
func ToModelBatch(b *datasets.Batch) (*models.Batch, error) {
	if b.Img == nil {
		return nil, fmt.Errorf("the batch has no images; the pipeline's Collect must keep img")
	}
	in := &models.Batch{
		Images: tensor.New(tensor.WithShape(b.Shape[:]...), tensor.WithBacking(b.Img)),
		Labels: b.Labels,
	}
	for _, g := range b.GT {
		in.GTBoxes = append(in.GTBoxes, boxes(g.BBoxes))
		in.GTLabels = append(in.GTLabels, g.Labels)
		in.GTIgnore = append(in.GTIgnore, boxes(g.BBoxesIgnore))
	}
	for _, m := range b.Metas {
		in.Metas = append(in.Metas, models.ImageMeta{
			Filename: m.Filename, OriShape: m.OriShape, ImgShape: m.ImgShape, PadShape: m.PadShape,
			ScaleFactor: m.ScaleFactor, Flip: m.Flip,
		})
	}
	return in, nil
}

// boxes converts data boxes to model boxes.
func boxes(bs []datasets.Box) [][4]float32 {
	out := make([][4]float32, len(bs))
	for i, b := range bs {
		out[i] = [4]float32(b)
	}
	return out
}
