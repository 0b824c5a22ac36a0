package mutables

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"gorgonia.org/gorgonia"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/registry"
)

// Mutable is a searchable block that a mutator controls: named candidate
// ops of which the next forward passes run the chosen ones.
type Mutable interface {
	nn.Layer
	// SpaceID is the block's id in the search space.
	SpaceID() string
	// Choices names the candidate ops the block holds, in canonical order.
	Choices() []string
	// Chosen names the ops the next forward runs.
	Chosen() []string
	// Choose selects the ops the next forward runs; none selects all.
	Choose(names ...string) error
	// Fix keeps only op name and removes the others with their weights,
	// as retraining a subnet does; names of the kept weights do not change.
	Fix(name string) error
}

// Mutables builds a Mutable from a placeholder_mapping entry such as
// {type: OneShotOP, choices: {...}}, completed by the mutator with the
// block's space_id and choice_args.
var Mutables = registry.New[Mutable]("mutable")

// OneShotMutableOPOptions configure a OneShotMutableOP.
type OneShotMutableOPOptions struct {
	// Choices maps each op name to its config mapping (with a `type` of the
	// op registry, models.Ops).
	Choices map[string]map[string]any `cfg:"choices,required"`
	// ChoiceArgs are added to every choice's mapping, replacing keys it
	// sets itself (as mmrazor's cfg.update(choice_args)).
	ChoiceArgs map[string]any `cfg:"choice_args"`
	// SpaceID is the block's search-space id.
	SpaceID string `cfg:"space_id"`
}

// OneShotMutableOP is a searchable block of a one-shot supernet (mmrazor's
// OneShotOP / OneShotMutableOP): candidate ops under the child "choices",
// one per name, so weights are named `<block>.choices.<op>.<...>` as in a
// reference checkpoint. A forward pass runs the chosen ops and sums their
// outputs; right after building every op is chosen (the whole supernet, as
// mmrazor counts its FLOPs), and a mutator then chooses one per block.
//
// Choices are kept in name order, which for ShuffleNet's shuffle_3x3,
// shuffle_5x5, shuffle_7x7 and shuffle_xception is the canonical order.
type OneShotMutableOP struct {
	nn.Base
	spaceID string
	choices *nn.ModuleDict
	names   []string
	chosen  []string
}

// NewOneShotMutableOP builds every choice through the op registry.
func NewOneShotMutableOP(o OneShotMutableOPOptions) (*OneShotMutableOP, error) {
	if len(o.Choices) == 0 {
		return nil, fmt.Errorf("choices is empty; name at least one candidate op")
	}
	m := &OneShotMutableOP{spaceID: o.SpaceID, choices: nn.NewModuleDict()}
	m.AddChild("choices", m.choices)
	for _, name := range slices.Sorted(maps.Keys(o.Choices)) {
		if err := nn.CheckName(name); err != nil {
			return nil, fmt.Errorf("choices: %w", err)
		}
		cfg := maps.Clone(o.Choices[name])
		maps.Copy(cfg, o.ChoiceArgs)
		op, err := models.Ops.Build(cfg, "choices."+name, nil)
		if err != nil {
			return nil, err
		}
		if err := m.choices.Add(name, op); err != nil {
			return nil, err
		}
		m.names = append(m.names, name)
	}
	m.chosen = slices.Clone(m.names)
	return m, nil
}

// SpaceID is the block's search-space id.
func (m *OneShotMutableOP) SpaceID() string { return m.spaceID }

// Choices names the ops the block holds.
func (m *OneShotMutableOP) Choices() []string { return slices.Clone(m.names) }

// Chosen names the ops the next forward runs.
func (m *OneShotMutableOP) Chosen() []string { return slices.Clone(m.chosen) }

// Op returns the candidate op called name, or nil.
func (m *OneShotMutableOP) Op(name string) nn.Layer {
	l, _ := m.choices.Get(name).(nn.Layer)
	return l
}

// Choose selects the ops the next forward runs (normally one); with no
// names every op runs and the outputs are summed.
func (m *OneShotMutableOP) Choose(names ...string) error {
	if len(names) == 0 {
		m.chosen = slices.Clone(m.names)
		return nil
	}
	for _, n := range names {
		if !slices.Contains(m.names, n) {
			return fmt.Errorf("block %s has no op %q; it holds %s", m.spaceID, n, strings.Join(m.names, ", "))
		}
	}
	m.chosen = slices.Clone(names)
	return nil
}

// Fix keeps only op name and drops the others with their weights.
func (m *OneShotMutableOP) Fix(name string) error {
	if err := m.Choose(name); err != nil {
		return err
	}
	for _, n := range m.names {
		if n != name {
			if err := m.choices.Remove(n); err != nil {
				return err
			}
		}
	}
	m.names = []string{name}
	return nil
}

// Forward runs the chosen ops on x and sums their outputs.
func (m *OneShotMutableOP) Forward(b *nn.Binding, x *gorgonia.Node) (*gorgonia.Node, error) {
	var sum *gorgonia.Node
	for _, name := range m.chosen {
		y, err := m.Op(name).Forward(b, x)
		if err != nil {
			return nil, err
		}
		if sum == nil {
			sum = y
			continue
		}
		if sum, err = gorgonia.Add(sum, y); err != nil {
			return nil, fmt.Errorf("%s: summing the outputs of its ops: %w", m.Path(), err)
		}
	}
	return sum, nil
}

func init() {
	registry.MustRegister(Mutables, "OneShotMutableOP", func(o OneShotMutableOPOptions) (Mutable, error) {
		return NewOneShotMutableOP(o)
	}, registry.Alias("OneShotOP"))
}
