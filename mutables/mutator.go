package mutables

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/registry"
)

// Mutator turns a model's placeholders into mutables and selects which of
// their ops run.
type Mutator interface {
	// Prepare replaces every nn.Placeholder under model with the mutable its
	// group maps to and returns the search space, whose block paths are
	// relative to model. Call it once.
	Prepare(model nn.Module) (*Space, error)
	// Space is the prepared search space; nil before Prepare.
	Space() *Space
	// SetSubnet selects one op per block for the next forward passes. A
	// nil subnet selects every op of every block (the whole supernet).
	SetSubnet(sub Subnet) error
	// Subnet is the current selection, nil while every op is selected.
	Subnet() Subnet
	// Fix selects sub for good: the ops it does not choose are removed
	// with their weights (retraining). Later SetSubnet calls accept only sub.
	Fix(sub Subnet) error
}

// Mutators builds a Mutator from an algorithm's `mutator:` mapping.
var Mutators = registry.New[Mutator]("mutator")

// OneShotMutatorOptions configure a OneShotMutator.
type OneShotMutatorOptions struct {
	// PlaceholderMapping maps a placeholder group to the mutable config
	// that replaces its placeholders: {all_blocks: {type: OneShotOP,
	// choices: {shuffle_3x3: {type: ShuffleBlock, kernel_size: 3}, ...}}}.
	PlaceholderMapping map[string]map[string]any `cfg:"placeholder_mapping,required"`
}

// OneShotMutator is mmrazor's one-shot mutator: every block runs one op,
// drawn uniformly during supernet training or fixed by a subnet.
type OneShotMutator struct {
	mapping  map[string]map[string]any
	space    *Space
	mutables map[string]Mutable
	current  Subnet
	fixed    Subnet
}

// NewOneShotMutator checks the mapping.
func NewOneShotMutator(o OneShotMutatorOptions) (*OneShotMutator, error) {
	if len(o.PlaceholderMapping) == 0 {
		return nil, fmt.Errorf("placeholder_mapping is empty; map each placeholder group (all_blocks) to a mutable such as {type: OneShotOP, choices: {...}}")
	}
	for g, m := range o.PlaceholderMapping {
		if _, ok := m["type"]; !ok {
			return nil, fmt.Errorf("placeholder_mapping.%s has no `type`; set it to a mutable type: %s", g, strings.Join(Mutables.Names(), ", "))
		}
	}
	return &OneShotMutator{mapping: o.PlaceholderMapping}, nil
}

// replacer is the part of nn.Base a parent exposes for swapping a child.
type replacer interface {
	ReplaceChild(name string, m nn.Module) error
}

// Prepare replaces the placeholders under model, in network order.
func (o *OneShotMutator) Prepare(model nn.Module) (*Space, error) {
	if o.space != nil {
		return nil, fmt.Errorf("mutator: Prepare was already called")
	}
	type found struct {
		parent nn.Module
		name   string
		path   string
		ph     *nn.Placeholder
	}
	var todo []found
	parents := map[string]nn.Module{}
	nn.Walk(model, func(path string, m nn.Module) {
		parents[path] = m
		if ph, ok := m.(*nn.Placeholder); ok {
			dir, name := splitPath(path)
			todo = append(todo, found{parents[dir], name, path, ph})
		}
	})
	if len(todo) == 0 {
		return nil, fmt.Errorf("mutator: the model has no placeholders, so there is nothing to search; use a searchable backbone such as SearchableShuffleNetV2")
	}
	o.mutables = map[string]Mutable{}
	var blocks []Block
	for _, f := range todo {
		cfg, ok := o.mapping[f.ph.Group]
		if !ok {
			return nil, fmt.Errorf("mutator: block %s belongs to placeholder group %q, which placeholder_mapping lacks; it maps %s", f.ph.SpaceID, f.ph.Group, strings.Join(slices.Sorted(maps.Keys(o.mapping)), ", "))
		}
		node := maps.Clone(cfg)
		node["space_id"] = f.ph.SpaceID
		node["choice_args"] = maps.Clone(f.ph.ChoiceArgs)
		mut, err := Mutables.Build(node, "placeholder_mapping."+f.ph.Group, nil)
		if err != nil {
			return nil, fmt.Errorf("mutator: block %s: %w", f.ph.SpaceID, err)
		}
		r, ok := f.parent.(replacer)
		if f.parent == nil || !ok {
			return nil, fmt.Errorf("mutator: the parent of placeholder %s cannot replace children", f.path)
		}
		if err := r.ReplaceChild(f.name, mut); err != nil {
			return nil, fmt.Errorf("mutator: %w", err)
		}
		o.mutables[f.ph.SpaceID] = mut
		blocks = append(blocks, Block{ID: f.ph.SpaceID, Path: f.path, Choices: mut.Choices()})
	}
	sp, err := NewSpace(blocks)
	if err != nil {
		return nil, fmt.Errorf("mutator: %w", err)
	}
	o.space = sp
	return sp, nil
}

// splitPath splits "a.b.c" into "a.b" and "c".
func splitPath(p string) (dir, name string) {
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return "", p
}

// Space is the prepared search space.
func (o *OneShotMutator) Space() *Space { return o.space }

// SetSubnet validates sub against the space and selects its ops.
func (o *OneShotMutator) SetSubnet(sub Subnet) error {
	if o.space == nil {
		return fmt.Errorf("mutator: SetSubnet before Prepare")
	}
	if o.fixed != nil {
		if sub == nil || o.space.Key(sub) != o.space.Key(o.fixed) {
			return fmt.Errorf("mutator: the model was fixed to one subnet for retraining and holds only its ops; it cannot run another")
		}
		return nil
	}
	if sub == nil {
		for _, m := range o.mutables {
			if err := m.Choose(); err != nil {
				return err
			}
		}
		o.current = nil
		return nil
	}
	if err := o.space.Validate(sub); err != nil {
		return err
	}
	for id, op := range sub {
		if err := o.mutables[id].Choose(op); err != nil {
			return err
		}
	}
	o.current = sub.Clone()
	return nil
}

// Subnet is the current selection, nil while every op runs.
func (o *OneShotMutator) Subnet() Subnet {
	if o.current == nil {
		return nil
	}
	return o.current.Clone()
}

// SampleSubnet draws one op per block uniformly from rng, selects it and
// returns it, as mmrazor's sample_subnet followed by set_subnet.
func (o *OneShotMutator) SampleSubnet(rng *rand.Rand) (Subnet, error) {
	if o.space == nil {
		return nil, fmt.Errorf("mutator: SampleSubnet before Prepare")
	}
	sub := o.space.Sample(rng)
	if err := o.SetSubnet(sub); err != nil {
		return nil, err
	}
	return sub, nil
}

// Fix selects sub and removes every op it does not choose.
func (o *OneShotMutator) Fix(sub Subnet) error {
	if err := o.SetSubnet(sub); err != nil {
		return err
	}
	if o.fixed != nil {
		return nil
	}
	for id, op := range sub {
		if err := o.mutables[id].Fix(op); err != nil {
			return err
		}
	}
	o.fixed = sub.Clone()
	return nil
}

func init() {
	registry.MustRegister(Mutators, "OneShotMutator", func(o OneShotMutatorOptions) (Mutator, error) {
		return NewOneShotMutator(o)
	})
}
