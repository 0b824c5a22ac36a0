// Package algorithms holds the NAS algorithms razor runs -- SPOS and
// DetNAS, over the exported one-shot base a variant embeds -- the
// architecture wrappers they hold the model in, and the training step every
// algorithm owns.
//
// An algorithm is the root of the weight tree, as in mmrazor: its child
// "architecture" holds the model under "model", so every parameter's full
// name is an mmrazor checkpoint key
// (architecture.model.backbone.layers.2.5.choices.shuffle_7x7.branch2.1.conv.weight)
// and an mmrazor .pth loads into Algorithm.LoadStateDict without renaming.
// Model().StateDict() names the same tensors relative to the model
// (backbone.conv1.conv.weight), the keys of a plain mmcls checkpoint.
//
// The runner owns the loop, hooks, checkpoints and logging; the algorithm
// owns what one iteration does with a batch (TrainStep): a one-shot
// supernet draws a path and trains it, a retrained subnet trains its fixed
// path, a differentiable algorithm may first update its architecture
// weights with an optimizer of its own. ForwardBackward is the plain step
// they build on.
//
// algorithms may import models (and its sub-packages), mutables, registry
// and config; never datasets, runners or tools.
package algorithms

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/mutables"
	"github.com/razorgo/razor/registry"
)

// Algorithm is a configured algorithm around one model: what the runner
// trains and checkpoints. It is not safe for concurrent use.
type Algorithm interface {
	// Module is the weight tree rooted at the algorithm (names start with
	// "architecture.model.").
	nn.Module
	// Model is the network being searched or trained.
	Model() models.Model
	// InitWeights draws the model's initial weights from rng.
	InitWeights(rng *rand.Rand) error
	// TrainStep runs one training iteration on batch: whatever the
	// algorithm does before the forward pass (draw a path, update
	// architecture weights), the forward pass, the losses and the backward
	// pass. It leaves the gradients of the parameters the runner's
	// optimizer steps (all of NamedParameters but SelfOptimized's) in
	// place and returns the values to log, "loss" (the summed loss) among
	// them. rng is the iteration's own random source, a pure function of
	// the run's seed and the iteration, so a resumed run draws what an
	// uninterrupted one does.
	TrainStep(ctx context.Context, batch *models.Batch, rng *rand.Rand) ([]NamedValue, error)
}

// NamedValue is one logged number: a loss term, an accuracy, a metric.
type NamedValue struct {
	Name  string
	Value float64
}

// SelfOptimized is implemented by an algorithm that updates some of its
// parameters itself inside TrainStep (a differentiable algorithm's
// architecture weights, with its own optimizer): the runner's optimizer
// leaves the named parameters out.
type SelfOptimized interface {
	SelfOptimized() []string
}

// Stateful is implemented by an algorithm with state beyond its weights
// (an optimizer of its own): every checkpoint saves State, and a resumed
// run restores it with LoadState before its first step.
type Stateful interface {
	State() (json.RawMessage, error)
	LoadState(json.RawMessage) error
}

// OneShot is an algorithm over a one-shot supernet: what the evolution
// search, a supernet's evaluation and get_flops need of it. OneShotBase
// implements it.
type OneShot interface {
	Algorithm
	// Space is the search space, nil when there is nothing to search (no
	// mutator, or retraining a fixed subnet).
	Space() *mutables.Space
	// Subnet is the subnet given by mutable_cfg, nil in supernet mode.
	Subnet() mutables.Subnet
	// SetSubnet selects the op every searchable block runs in the next
	// forward passes; nil selects every op (the whole supernet, whose
	// outputs are summed per block, as mmrazor's OneShotOP).
	SetSubnet(sub mutables.Subnet) error
	// SampleSubnet draws one op per block uniformly from rng, selects it
	// and returns it (a supernet training step).
	SampleSubnet(rng *rand.Rand) (mutables.Subnet, error)
	// Retraining reports whether the model holds only its fixed subnet's
	// ops (retraining: true with a mutable_cfg).
	Retraining() bool
	// BNTrainingMode reports whether evaluation should keep batch norm in
	// training mode, mmrazor's bn_training_mode for the search.
	BNTrainingMode() bool
	// EvalSubnets prepares an evaluation: the subnets it averages over,
	// n of them drawn with seed (the same set for the same seed), or nil
	// when the model is evaluated as it is (a fixed subnet).
	EvalSubnets(n int, seed uint64) []mutables.Subnet
	// Complexity counts FLOPs and parameters of sub (nil: the fixed
	// subnet, or the whole supernet when there is none) over the
	// algorithm's scope, at input shape (C, H, W) (nil: input_shape).
	// The current selection is restored afterwards.
	Complexity(sub mutables.Subnet, shape []int) (*Complexity, error)
}

// Algorithms builds an Algorithm from a config's `algorithm:` mapping.
var Algorithms = registry.New[Algorithm]("algorithm")

// FromConfig builds the config's algorithm.
func FromConfig(cfg *config.Config) (Algorithm, error) {
	node, ok := cfg.Get("algorithm")
	if !ok || node == nil {
		return nil, fmt.Errorf("the config has no algorithm; set algorithm.type to one of: %v", Algorithms.Names())
	}
	return Algorithms.Build(node, "algorithm", nil)
}

// AsOneShot returns alg as a one-shot algorithm, or an error saying that
// what (a search, a FLOPs count) needs one.
func AsOneShot(alg Algorithm, what string) (OneShot, error) {
	o, ok := alg.(OneShot)
	if !ok {
		return nil, fmt.Errorf("%s needs a one-shot algorithm (SPOS, DetNAS or one embedding algorithms.OneShotBase); this config's algorithm is %T", what, alg)
	}
	return o, nil
}
