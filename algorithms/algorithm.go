// Package algorithms holds the NAS algorithms razor runs -- SPOS and
// DetNAS -- and the architecture wrappers they hold the model in.
//
// An algorithm is the root of the weight tree, as in mmrazor: its child
// "architecture" holds the model under "model", so every parameter's full
// name is an mmrazor checkpoint key
// (architecture.model.backbone.layers.2.5.choices.shuffle_7x7.branch2.1.conv.weight)
// and an mmrazor .pth loads into Algorithm.LoadStateDict without renaming.
// Model().StateDict() names the same tensors relative to the model
// (backbone.conv1.conv.weight), the keys of a plain mmcls checkpoint.
//
// A supernet training step draws a path and trains it:
//
//	sub, err := alg.SampleSubnet(rng)            // every block runs one drawn op
//	b := nn.NewBinding()
//	losses, err := alg.Model().ForwardTrain(b, batch)
//	// sum the terms named *loss*, b.Backward(sum), b.Run(), read the losses,
//	// b.Release(), opt.Step()
//
// With retraining (a fixed subnet whose other ops were removed) the step
// skips the draw.
package algorithms

import (
	"fmt"
	"math/rand/v2"

	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/mutables"
	"github.com/razorgo/razor/registry"
)

// Algorithm is a configured NAS algorithm around one model. It is not safe
// for concurrent use: selecting a subnet changes what the model runs.
type Algorithm interface {
	// Module is the weight tree rooted at the algorithm (names start with
	// "architecture.model.").
	nn.Module
	// Model is the network being searched or trained.
	Model() models.Model
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
	// Complexity counts FLOPs and parameters of sub (nil: the fixed
	// subnet, or the whole supernet when there is none) over the
	// algorithm's scope, at input shape (C, H, W) (nil: input_shape).
	// The current selection is restored afterwards.
	Complexity(sub mutables.Subnet, shape []int) (*Complexity, error)
	// InitWeights draws the model's initial weights from rng.
	InitWeights(rng *rand.Rand) error
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
