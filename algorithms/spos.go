package algorithms

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/razorgo/razor/dist"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/mutables"
	"github.com/razorgo/razor/registry"
)

// OneShotOptions are the `algorithm:` keys of SPOS and DetNAS.
type OneShotOptions struct {
	// Architecture holds the model (MMClsArchitecture or MMDetArchitecture).
	Architecture Architecture `cfg:"architecture,required"`
	// Mutator turns the model's placeholders into searchable blocks.
	Mutator mutables.Mutator `cfg:"mutator"`
	// MutableCfg is a subnet: the path of a subnet file (either mmrazor
	// format) or the subnet mapping itself.
	MutableCfg any `cfg:"mutable_cfg"`
	// Retraining removes the ops MutableCfg does not choose, so the model
	// trains that subnet with only its own weights.
	Retraining bool `cfg:"retraining"`
	// BNTrainingMode keeps batch norm in training mode during evaluation
	// (mmrazor's bn_training_mode, used by the search).
	BNTrainingMode bool `cfg:"bn_training_mode"`
	// InputShape is the (C, H, W) shape FLOPs are counted at.
	InputShape []int `cfg:"input_shape"`
	// Distiller and Pruner exist in mmrazor's configs; razor has neither,
	// so they must be null.
	Distiller any `cfg:"distiller"`
	Pruner    any `cfg:"pruner"`
}

// Defaults sets mmrazor's input_shape (3, 224, 224).
func (o *OneShotOptions) Defaults() { o.InputShape = []int{3, 224, 224} }

// OneShotBase is what one-shot algorithms share: the architecture and
// mutator, the search space, mutable_cfg and retraining, a training step
// that trains one uniformly drawn path per iteration (or the fixed one),
// evaluation over fixed subnets, and FLOPs over a scope. SPOS and DetNAS
// embed it; so does a contributor's variant (a FairNAS-style step, say),
// which calls Init from its constructor and overrides what differs:
//
//	type FairNAS struct{ algorithms.OneShotBase }
//
//	func (a *FairNAS) TrainStep(ctx context.Context, b *models.Batch, rng *rand.Rand) ([]algorithms.NamedValue, error) {
//		... // its own draw, then algorithms.ForwardBackward(a.Model(), b)
//	}
type OneShotBase struct {
	nn.Base
	arch       Architecture
	mutator    mutables.Mutator
	space      *mutables.Space
	fixed      mutables.Subnet
	retraining bool
	bnTraining bool
	inputShape []int
	scope      Scope
}

// Scope is what a one-shot algorithm's FLOPs and parameters cover.
type Scope struct {
	// BackboneOnly counts the backbone without its last layer and without
	// batch norm, as mmrazor's DetNAS; false counts the whole model (SPOS).
	BackboneOnly bool
}

// Init wires the architecture and mutator, prepares the search space and
// applies mutable_cfg and retraining; FLOPs will cover sc.
func (a *OneShotBase) Init(o OneShotOptions, sc Scope) error {
	if o.Distiller != nil {
		return fmt.Errorf("distiller is not supported; set it to null")
	}
	if o.Pruner != nil {
		return fmt.Errorf("pruner is not supported; set it to null")
	}
	if err := checkShape(o.InputShape, "input_shape"); err != nil {
		return err
	}
	a.arch, a.mutator, a.retraining, a.bnTraining, a.inputShape, a.scope = o.Architecture, o.Mutator, o.Retraining, o.BNTrainingMode, o.InputShape, sc
	a.AddChild("architecture", a.arch)
	model := a.arch.Model()
	if a.mutator == nil {
		var ph *nn.Placeholder
		nn.Walk(model, func(_ string, m nn.Module) {
			if p, ok := m.(*nn.Placeholder); ok && ph == nil {
				ph = p
			}
		})
		if ph != nil {
			return fmt.Errorf("the model has searchable blocks (%s, group %q) but no mutator; set mutator to {type: OneShotMutator, placeholder_mapping: {%s: ...}}", ph.SpaceID, ph.Group, ph.Group)
		}
		if o.MutableCfg != nil || o.Retraining {
			return fmt.Errorf("mutable_cfg and retraining need a mutator and a searchable model")
		}
		return nil
	}
	var err error
	if a.space, err = a.mutator.Prepare(model); err != nil {
		return err
	}
	if a.fixed, err = parseMutableCfg(o.MutableCfg, a.space); err != nil {
		return err
	}
	switch {
	case a.fixed == nil && o.Retraining:
		return fmt.Errorf("retraining: true needs mutable_cfg, the subnet to retrain (a subnet file such as final_subnet_*.yaml)")
	case a.fixed == nil:
		return nil
	case o.Retraining:
		err = a.mutator.Fix(a.fixed)
	default:
		err = a.mutator.SetSubnet(a.fixed)
	}
	if err != nil {
		return fmt.Errorf("mutable_cfg: %w", err)
	}
	return nil
}

// parseMutableCfg reads mutable_cfg: nil or "" for none, a subnet file's
// path, or an inline subnet mapping.
func parseMutableCfg(v any, space *mutables.Space) (mutables.Subnet, error) {
	switch t := v.(type) {
	case nil:
		return nil, nil
	case string:
		if t == "" {
			return nil, nil
		}
		sub, err := mutables.ReadSubnetFile(t, space)
		if err != nil {
			return nil, fmt.Errorf("mutable_cfg: %w", err)
		}
		return sub, nil
	case map[string]any:
		sub, err := mutables.ParseSubnet(t, space)
		if err != nil {
			return nil, fmt.Errorf("mutable_cfg: %w", err)
		}
		return sub, nil
	}
	return nil, fmt.Errorf("mutable_cfg must be a subnet file's path or a subnet mapping, not %T", v)
}

// checkShape checks a (C, H, W) shape.
func checkShape(s []int, what string) error {
	if len(s) != 3 || s[0] <= 0 || s[1] <= 0 || s[2] <= 0 {
		return fmt.Errorf("%s %v must be three positive sizes (C, H, W)", what, s)
	}
	return CheckInputSize(s, what)
}

// MaxInputValues bounds the values of the one-image input a FLOPs count
// builds (1 GiB of float32): a count at --shape 100000 would ask for 120
// GB and die. mmdet's largest test shape, 3x1333x800, holds 3.2 million.
const MaxInputValues = 1 << 28

// CheckInputSize refuses an input shape (C, H, W) whose image would hold
// more than MaxInputValues values; what names the shape in the error.
func CheckInputSize(s []int, what string) error {
	n := int64(1)
	for _, d := range s {
		if d > 0 && n > math.MaxInt64/int64(d) {
			n = math.MaxInt64
			break
		}
		n *= int64(d)
	}
	if n > MaxInputValues {
		return fmt.Errorf("%s %v makes an image of %d values, more than the %d (1 GiB of float32) a count may build; mmdet's test shape 3x1333x800 has 3.2 million", what, s, n, int64(MaxInputValues))
	}
	return nil
}

// Model is the network being searched or trained.
func (a *OneShotBase) Model() models.Model { return a.arch.Model() }

// Mutator is the algorithm's mutator, nil without one.
func (a *OneShotBase) Mutator() mutables.Mutator { return a.mutator }

// Space is the search space, nil without a mutator or when retraining.
func (a *OneShotBase) Space() *mutables.Space {
	if a.retraining {
		return nil
	}
	return a.space
}

// Subnet is mutable_cfg's subnet, nil in supernet mode.
func (a *OneShotBase) Subnet() mutables.Subnet {
	if a.fixed == nil {
		return nil
	}
	return a.fixed.Clone()
}

// SetSubnet selects the ops of the next forward passes.
func (a *OneShotBase) SetSubnet(sub mutables.Subnet) error {
	if a.mutator == nil {
		return fmt.Errorf("the model has no searchable blocks, so there is no subnet to set")
	}
	return a.mutator.SetSubnet(sub)
}

// SampleSubnet draws and selects a uniform random subnet.
func (a *OneShotBase) SampleSubnet(rng *rand.Rand) (mutables.Subnet, error) {
	if a.mutator == nil {
		return nil, fmt.Errorf("the model has no searchable blocks, so there is no subnet to sample")
	}
	if a.retraining {
		return nil, fmt.Errorf("retraining trains the fixed subnet of mutable_cfg; there is nothing to sample")
	}
	sub := a.space.Sample(rng)
	if err := a.mutator.SetSubnet(sub); err != nil {
		return nil, err
	}
	return sub, nil
}

// Retraining reports whether only the fixed subnet's ops exist.
func (a *OneShotBase) Retraining() bool { return a.retraining }

// BNTrainingMode is the config's bn_training_mode.
func (a *OneShotBase) BNTrainingMode() bool { return a.bnTraining }

// InputShape is the (C, H, W) shape FLOPs are counted at by default.
func (a *OneShotBase) InputShape() []int { return append([]int(nil), a.inputShape...) }

// InitWeights initialises the model (after the mutator built every op).
func (a *OneShotBase) InitWeights(rng *rand.Rand) error {
	if wi, ok := a.Model().(models.WeightInitializer); ok {
		return wi.InitWeights(rng)
	}
	return nil
}

// TrainStep draws a path uniformly from rng when training the supernet
// (one op per block; rank 0's in a data-parallel step), keeps the fixed path otherwise, and runs
// ForwardBackward on it, with rng as the batch's source for the model's
// own draws (a detector's sampling) after the path's.
func (a *OneShotBase) TrainStep(_ context.Context, batch *models.Batch, rng *rand.Rand) ([]NamedValue, error) {
	if a.Space() != nil && a.fixed == nil {
		sub, err := a.SampleSubnet(rng)
		if err != nil {
			return nil, err
		}
		// In a data-parallel step every rank trains rank 0's path.
		if c := dist.Step(); c.Size() > 1 {
			if err := dist.BroadcastJSON(c, &sub); err != nil {
				return nil, fmt.Errorf("broadcasting the path: %w", err)
			}
			if err := a.SetSubnet(sub); err != nil {
				return nil, err
			}
		}
	}
	batch.Rand = rng
	return ForwardBackward(a.Model(), batch)
}

// EvalSubnets is nil for a fixed subnet (it is evaluated as it is) and n
// subnets drawn from the space with their own seed otherwise, the same set
// at every evaluation and in every run with that seed.
func (a *OneShotBase) EvalSubnets(n int, seed uint64) []mutables.Subnet {
	if a.Space() == nil || a.fixed != nil {
		return nil
	}
	rng := rand.New(rand.NewPCG(seed, 0x5ca1ab1e))
	out := make([]mutables.Subnet, n)
	for i := range out {
		out[i] = a.space.Sample(rng)
	}
	return out
}

// SPOS is Single Path One-Shot NAS (mmrazor's SPOS): the supernet trains
// one uniformly drawn path per iteration, the search scores subnets by
// accuracy, and FLOPs cover the whole model.
type SPOS struct {
	OneShotBase
}

// DetNAS is SPOS with a detector (mmrazor's DetNAS): FLOPs cover the
// backbone alone without its last layer, and batch norm is not counted,
// because mmrazor converts the backbone's SyncBN into a class mmcv's
// counter does not know.
type DetNAS struct {
	OneShotBase
}

// NewSPOS builds SPOS.
func NewSPOS(o OneShotOptions) (*SPOS, error) {
	a := &SPOS{}
	if err := a.Init(o, Scope{}); err != nil {
		return nil, err
	}
	return a, nil
}

// NewDetNAS builds DetNAS.
func NewDetNAS(o OneShotOptions) (*DetNAS, error) {
	a := &DetNAS{}
	if err := a.Init(o, Scope{BackboneOnly: true}); err != nil {
		return nil, err
	}
	return a, nil
}

func init() {
	registry.MustRegister(Algorithms, "SPOS", func(o OneShotOptions) (Algorithm, error) { return NewSPOS(o) })
	registry.MustRegister(Algorithms, "DetNAS", func(o OneShotOptions) (Algorithm, error) { return NewDetNAS(o) })
}
