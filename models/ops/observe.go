package ops

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Observe is a scalar node computed by f from x's values once the graph
// runs, with no gradient: a quantity worth logging beside the losses
// (mmdet's acc) that the step's graph already has the inputs for. name
// tells nodes apart, since gorgonia merges nodes of equal ops and inputs.
func Observe(x *gorgonia.Node, name string, f func(x []float32) float32) (*gorgonia.Node, error) {
	if x.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("Observe(%s): dtype %v, want float32", x.Name(), x.Dtype())
	}
	return apply(&kernelOp{
		name:   fmt.Sprintf("Observe{%s %v}", name, x.Shape()),
		in:     shapes(x),
		out:    tensor.Shape{},
		kernel: func(o []float32, in [][]float32) { o[0] = f(in[0]) },
	}, x)
}
