package contrib

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"gorgonia.org/tensor"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/registry"
	"github.com/razorgo/razor/runners/optim"
)

// DiffNASOptions are the `algorithm:` keys of DiffNAS.
type DiffNASOptions struct {
	// Architecture holds the model; its backbone must have architecture
	// weights (MixedOpNet).
	Architecture algorithms.Architecture `cfg:"architecture,required"`
	// ArchOptimizer updates the architecture weights, built by razor's
	// optimizer registry like the `optimizer:` section.
	ArchOptimizer optim.Constructor `cfg:"arch_optimizer,required"`
}

// DiffNAS is first-order DARTS: every iteration the first half of the
// batch updates the architecture weights with their own optimizer, then
// the second half leaves the network weights' gradients for the runner's
// optimizer. The runner's loop, hooks, checkpoints and logging are razor's;
// only the step is the algorithm's.
type DiffNAS struct {
	nn.Base
	arch    algorithms.Architecture
	alphas  []*nn.Param
	archOpt optim.Optimizer
}

// alphaHolder is a backbone with architecture weights.
type alphaHolder interface {
	Alphas() []*nn.Param
}

// NewDiffNAS builds DiffNAS.
func NewDiffNAS(o DiffNASOptions) (*DiffNAS, error) {
	if o.ArchOptimizer == nil {
		return nil, fmt.Errorf("arch_optimizer is null; set it to the architecture weights' optimizer, such as {type: SGD, lr: 0.05}")
	}
	a := &DiffNAS{arch: o.Architecture}
	a.AddChild("architecture", a.arch)
	ah, ok := a.arch.Model().Backbone().(alphaHolder)
	if !ok {
		return nil, fmt.Errorf("architecture.model.backbone %T has no architecture weights; use MixedOpNet", a.arch.Model().Backbone())
	}
	a.alphas = ah.Alphas()
	var err error
	if a.archOpt, err = o.ArchOptimizer.New(a.alphas); err != nil {
		return nil, fmt.Errorf("arch_optimizer: %w", err)
	}
	return a, nil
}

// Model is the network.
func (a *DiffNAS) Model() models.Model { return a.arch.Model() }

// InitWeights initialises the model.
func (a *DiffNAS) InitWeights(rng *rand.Rand) error {
	if wi, ok := a.Model().(models.WeightInitializer); ok {
		return wi.InitWeights(rng)
	}
	return nil
}

// SelfOptimized names the architecture weights: the runner's optimizer
// leaves them to the algorithm.
func (a *DiffNAS) SelfOptimized() []string {
	out := make([]string, len(a.alphas))
	for i, p := range a.alphas {
		out[i] = p.Name()
	}
	return out
}

// TrainStep updates the architecture weights on the first half of the
// batch, then back-propagates the second half for the runner's optimizer.
// It logs arch_loss beside the model's own terms.
func (a *DiffNAS) TrainStep(_ context.Context, batch *models.Batch, _ *rand.Rand) ([]algorithms.NamedValue, error) {
	archHalf, weightHalf, err := halves(batch)
	if err != nil {
		return nil, err
	}
	a.archOpt.ZeroGrad(true)
	archVals, err := algorithms.ForwardBackward(a.Model(), archHalf)
	if err != nil {
		return nil, fmt.Errorf("architecture step: %w", err)
	}
	a.archOpt.Step()
	a.archOpt.ZeroGrad(true)
	// The architecture pass also left gradients on the network weights;
	// they are not the weights' step, so they go (zero-filled, as the
	// runner's optimizer hook leaves them).
	for _, p := range a.Model().NamedParameters() {
		p.ZeroGrad(false)
	}
	vals, err := algorithms.ForwardBackward(a.Model(), weightHalf)
	if err != nil {
		return nil, err
	}
	for _, v := range archVals {
		if v.Name == "loss" {
			vals = append(vals, algorithms.NamedValue{Name: "arch_loss", Value: v.Value})
		}
	}
	return vals, nil
}

// halves splits a classification batch into its first and second half.
func halves(b *models.Batch) (*models.Batch, *models.Batch, error) {
	s := b.Images.Shape()
	n := s[0]
	if n < 2 || len(b.Labels) != n {
		return nil, nil, fmt.Errorf("DiffNAS needs classification batches of at least 2 labelled images, got %d images and %d labels", n, len(b.Labels))
	}
	per := s.TotalSize() / n
	data := b.Images.Float32s()
	part := func(from, to int) *models.Batch {
		shape := append([]int{to - from}, s[1:]...)
		return &models.Batch{
			Images: tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data[from*per:to*per])),
			Labels: b.Labels[from:to],
		}
	}
	return part(0, n/2), part(n/2, n), nil
}

func init() {
	registry.MustRegister(algorithms.Algorithms, "DiffNAS", func(o DiffNASOptions) (algorithms.Algorithm, error) { return NewDiffNAS(o) })
}

// diffNASState is DiffNAS's state beyond its weights, for checkpoints: the
// architecture optimizer's tensors and other state.
type diffNASState struct {
	Tensors map[string]savedTensor `json:"tensors"`
	Other   json.RawMessage        `json:"other"`
}

// savedTensor is one tensor in JSON.
type savedTensor struct {
	Shape []int     `json:"shape"`
	Data  []float32 `json:"data"`
}

// State saves the architecture optimizer, so a resumed run continues its
// momentum exactly.
func (a *DiffNAS) State() (json.RawMessage, error) {
	ts, other, err := a.archOpt.StateDict()
	if err != nil {
		return nil, err
	}
	st := diffNASState{Tensors: map[string]savedTensor{}, Other: other}
	for k, t := range ts {
		st.Tensors[k] = savedTensor{Shape: t.Shape().Clone(), Data: t.Float32s()}
	}
	return json.Marshal(st)
}

// LoadState restores what State saved.
func (a *DiffNAS) LoadState(b json.RawMessage) error {
	var st diffNASState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("DiffNAS state: %w", err)
	}
	ts := make(map[string]*tensor.Dense, len(st.Tensors))
	for k, t := range st.Tensors {
		size := 1
		for _, d := range t.Shape {
			size *= d
		}
		if size != len(t.Data) {
			return fmt.Errorf("DiffNAS state: tensor %s has %d values for shape %v", k, len(t.Data), t.Shape)
		}
		ts[k] = tensor.New(tensor.WithShape(t.Shape...), tensor.WithBacking(t.Data))
	}
	return a.archOpt.LoadStateDict(ts, st.Other)
}
