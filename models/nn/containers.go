package nn

import (
	"fmt"
	"strconv"

	"gorgonia.org/gorgonia"
)

// Sequential chains layers registered as children "0", "1", ..., like
// torch.nn.Sequential. It runs whatever its children are at the time, so a
// child swapped with ReplaceChild (a placeholder turned into a searchable
// op) is the one that runs.
type Sequential struct {
	Base
}

// NewSequential builds a Sequential of the given layers.
func NewSequential(layers ...Layer) *Sequential {
	s := &Sequential{}
	for _, l := range layers {
		s.Append(l)
	}
	return s
}

// Append adds l as the next child, named by its position.
func (s *Sequential) Append(l Layer) {
	s.AddChild(strconv.Itoa(len(s.children)), l)
}

// Len is the number of layers.
func (s *Sequential) Len() int { return len(s.children) }

// At returns layer i, or nil when child i is not a Layer.
func (s *Sequential) At(i int) Layer {
	l, _ := s.children[i].m.(Layer)
	return l
}

// Forward runs the layers in order.
func (s *Sequential) Forward(b *Binding, x *gorgonia.Node) (*gorgonia.Node, error) {
	for _, c := range s.children {
		l, ok := c.m.(Layer)
		if !ok {
			return nil, fmt.Errorf("%s: child %q is a %T, which has no single-input Forward", s.Path(), c.name, c.m)
		}
		var err error
		if x, err = l.Forward(b, x); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// ModuleDict holds named children in insertion order, like
// torch.nn.ModuleDict; its owner decides which of them a forward pass runs.
type ModuleDict struct {
	Base
}

// NewModuleDict returns an empty ModuleDict.
func NewModuleDict() *ModuleDict { return &ModuleDict{} }

// Add registers m under name; an invalid or taken name (names may come from
// a config) is an error.
func (d *ModuleDict) Add(name string, m Module) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if d.Child(name) != nil {
		return fmt.Errorf("module dict %q already has %q", d.Path(), name)
	}
	d.AddChild(name, m)
	return nil
}

// Get returns the child called name, or nil.
func (d *ModuleDict) Get(name string) Module { return d.Child(name) }

// Names lists the children's names in insertion order.
func (d *ModuleDict) Names() []string { return d.ChildNames() }

// Remove drops the child called name.
func (d *ModuleDict) Remove(name string) error { return d.RemoveChild(name) }
