package algorithms

import (
	"fmt"
	"strings"

	"gorgonia.org/tensor"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/mutables"
)

// Complexity is a model's cost as mmcv's get_model_complexity_info counts
// it (see nn.Cost), over an algorithm's scope, for one image.
type Complexity struct {
	// FLOPs counts multiply-adds of the layers in scope.
	FLOPs int64
	// Params counts the values of the parameters in scope that the counted
	// forward pass uses (a subnet's own, or all for the whole supernet).
	Params int64
	// Scope says what was counted.
	Scope string
	// Shape is the (C, H, W) input shape; the batch is one image.
	Shape []int
	// Supernet is true when no subnet was selected, so every op of every
	// block was counted.
	Supernet bool
	// Layers are the counted layers in forward order, paths relative to
	// the model.
	Layers []nn.Cost
}

// describe says what the scope counts.
func (s Scope) describe() string {
	if s.BackboneOnly {
		return "backbone only, without its last layer; BN not counted (DetNAS)"
	}
	return "whole model: backbone, neck and heads (SPOS's scope; a detector's second stage counts 1000 proposals, as mmdet's forward_dummy)"
}

// lastLayered is a backbone with a classification-only last layer that a
// backbone-only count leaves out (SearchableShuffleNetV2's layers.4).
type lastLayered interface {
	LastLayer() nn.Module
}

// under reports whether path is prefix or below it.
func under(path, prefix string) bool {
	return prefix == "" || path == prefix || strings.HasPrefix(path, prefix+".")
}

// Complexity counts sub (nil: the fixed subnet, or the whole supernet) at
// shape (nil: input_shape) over the algorithm's scope and restores the
// previous selection.
func (a *OneShotBase) Complexity(sub mutables.Subnet, shape []int) (*Complexity, error) {
	return a.ComplexityIn(a.scope, sub, shape)
}

// ComplexityIn is Complexity over another scope than the algorithm's:
// get_flops --scope model counts a whole DetNAS detector (BN included,
// the second stage on mmdet's forward_dummy count of proposals).
func (a *OneShotBase) ComplexityIn(scope Scope, sub mutables.Subnet, shape []int) (*Complexity, error) {
	if shape == nil {
		shape = a.inputShape
	}
	if err := checkShape(shape, "input shape"); err != nil {
		return nil, err
	}
	target := sub
	if target == nil {
		target = a.fixed
	}
	c := &Complexity{Scope: scope.describe(), Shape: append([]int(nil), shape...), Supernet: target == nil && a.mutator != nil}
	if a.mutator != nil {
		prev := a.mutator.Subnet()
		if err := a.mutator.SetSubnet(target); err != nil {
			return nil, err
		}
		defer func() { _ = a.mutator.SetSubnet(prev) }()
	} else if sub != nil {
		return nil, fmt.Errorf("the model has no searchable blocks, so it has no subnets to count")
	}

	// Count in evaluation mode, as mmcv does, so batch norm needs no batch
	// statistics (a one-image batch at a small shape has none).
	// Restoring in walk order (parents first) gives every module its own
	// mode back, since SetTraining also sets the subtree.
	type mode struct {
		m  nn.Module
		on bool
	}
	var modes []mode
	nn.Walk(a, func(_ string, m nn.Module) { modes = append(modes, mode{m, m.Training()}) })
	a.SetTraining(false)
	defer func() {
		for _, md := range modes {
			md.m.SetTraining(md.on)
		}
	}()

	b := nn.NewBinding()
	b.CountCosts()
	x := tensor.New(tensor.WithShape(1, shape[0], shape[1], shape[2]), tensor.Of(tensor.Float32))
	model := a.Model()
	prefix, exclude := model.Path(), ""
	var err error
	if scope.BackboneOnly {
		bb := model.Backbone()
		prefix = bb.Path()
		if ll, ok := bb.(lastLayered); ok && ll.LastLayer() != nil {
			exclude = ll.LastLayer().Path()
		}
		_, err = bb.Forward(b, b.Input("img", x))
	} else {
		_, err = model.ForwardTest(b, &models.Batch{Images: x})
	}
	if err != nil {
		return nil, fmt.Errorf("counting FLOPs at input shape %v: %w", shape, err)
	}
	inScope := func(path string) bool { return under(path, prefix) && (exclude == "" || !under(path, exclude)) }
	for _, cost := range b.Costs() {
		if !inScope(cost.Path) || (scope.BackboneOnly && cost.Type == "BatchNorm2d") {
			continue
		}
		c.FLOPs += cost.FLOPs
		cost.Path = strings.TrimPrefix(strings.TrimPrefix(cost.Path, model.Path()), ".")
		c.Layers = append(c.Layers, cost)
	}
	for _, p := range b.Used() {
		if inScope(p.Name()) {
			c.Params += nn.ParamCount(p)
		}
	}
	return c, nil
}
