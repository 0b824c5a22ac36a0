package algorithms

import (
	"fmt"
	"strings"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
)

// ForwardBackward is the plain training step of a model: in training mode,
// it builds the batch's graph, sums the loss terms, back-propagates and
// runs the graph, accumulating gradients into the parameters the path
// uses. It returns every term the model named, in order, then "loss" (the
// sum).
func ForwardBackward(model models.Model, batch *models.Batch) ([]NamedValue, error) {
	model.SetTraining(true)
	bind := nn.NewBinding()
	defer bind.Release()
	losses, err := model.ForwardTrain(bind, batch)
	if err != nil {
		return nil, err
	}
	total, err := SumLosses(losses)
	if err != nil {
		return nil, err
	}
	if err := bind.Backward(total); err != nil {
		return nil, err
	}
	// The terms are read after the run, though the total reads them too.
	for _, l := range losses {
		bind.Keep(l.Node)
	}
	if err := bind.Run(); err != nil {
		return nil, err
	}
	out := make([]NamedValue, 0, len(losses)+1)
	for _, l := range losses {
		v, err := Scalar(l.Node)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", l.Name, err)
		}
		out = append(out, NamedValue{l.Name, v})
	}
	v, err := Scalar(total)
	if err != nil {
		return nil, err
	}
	return append(out, NamedValue{"loss", v}), nil
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
