package nn

import (
	"fmt"

	"gorgonia.org/gorgonia"
)

// Placeholder marks a searchable block in a backbone, as mmrazor's
// Placeholder does: it has no weights and cannot run. A mutator replaces it
// with the mutable its Group maps to (placeholder_mapping), built with the
// block's ChoiceArgs, before the model is used. It lives with the modules
// rather than with the mutators so that backbones can declare a search space
// without importing the search layer above them.
type Placeholder struct {
	Base
	// Group names the placeholder_mapping entry that replaces it
	// ("all_blocks").
	Group string
	// SpaceID is the block's id in the search space ("stage_0_block_0").
	SpaceID string
	// ChoiceArgs are the constructor arguments every candidate op of the
	// block receives (in_channels, out_channels, stride).
	ChoiceArgs map[string]any
}

// NewPlaceholder returns a placeholder for block spaceID of group.
func NewPlaceholder(group, spaceID string, choiceArgs map[string]any) *Placeholder {
	return &Placeholder{Group: group, SpaceID: spaceID, ChoiceArgs: choiceArgs}
}

// Forward fails: a placeholder must be replaced before the model runs.
func (p *Placeholder) Forward(*Binding, *gorgonia.Node) (*gorgonia.Node, error) {
	return nil, fmt.Errorf("%s: block %s is still a placeholder of group %q; build the model through an algorithm whose mutator maps that group (placeholder_mapping)", p.Path(), p.SpaceID, p.Group)
}
