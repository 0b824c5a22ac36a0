package ops

import (
	"fmt"

	"github.com/razorgo/razor/models/ops/blas"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Linear computes x·wᵀ + b for x (N×in), w (out×in, PyTorch's layout) and
// b (out, or nil for no bias), like torch.nn.functional.linear. Gradients
// flow to x, w and b.
func Linear(x, w, b *gorgonia.Node) (*gorgonia.Node, error) {
	if err := checkNode("Linear", "input", x, 2); err != nil {
		return nil, err
	}
	if err := checkNode("Linear", "weight", w, 2); err != nil {
		return nil, err
	}
	n, in, out := x.Shape()[0], x.Shape()[1], w.Shape()[0]
	if w.Shape()[1] != in {
		return nil, fmt.Errorf("Linear(%s, %s): weight %v does not take %d input features", x.Name(), w.Name(), w.Shape(), in)
	}
	nodes := []*gorgonia.Node{x, w}
	if b != nil {
		if err := checkNode("Linear", "bias", b, 1); err != nil {
			return nil, err
		}
		if b.Shape()[0] != out {
			return nil, fmt.Errorf("Linear(%s, %s): bias %q has %d elements, want %d", x.Name(), w.Name(), b.Name(), b.Shape()[0], out)
		}
		nodes = append(nodes, b)
	}
	name := fmt.Sprintf("Linear{%dx%d -> %d bias %t}", n, in, out, b != nil)
	return apply(&kernelOp{
		name: name,
		in:   shapes(nodes...),
		out:  tensor.Shape{n, out},
		kernel: func(o []float32, ins [][]float32) {
			var bias []float32
			if len(ins) == 3 {
				bias = ins[2]
			}
			linearForward(n, in, out, ins[0], ins[1], bias, o)
		},
		diffWRT: trues(len(nodes)),
		symDiff: func(inputs gorgonia.Nodes, _, grad *gorgonia.Node) (gorgonia.Nodes, error) {
			gx, err := apply(&kernelOp{
				name:   "InputGrad" + name,
				in:     shapes(inputs[1], grad),
				out:    tensor.Shape{n, in},
				kernel: func(o []float32, ins [][]float32) { linearBackwardInput(n, in, out, ins[0], ins[1], o) },
			}, inputs[1], grad)
			if err != nil {
				return nil, err
			}
			gw, err := apply(&kernelOp{
				name:   "WeightGrad" + name,
				in:     shapes(inputs[0], grad),
				out:    tensor.Shape{out, in},
				kernel: func(o []float32, ins [][]float32) { linearBackwardWeight(n, in, out, ins[0], ins[1], o) },
			}, inputs[0], grad)
			if err != nil || len(inputs) == 2 {
				return gorgonia.Nodes{gx, gw}, err
			}
			gb, err := apply(&kernelOp{
				name:   "BiasGrad" + name,
				in:     shapes(grad),
				out:    tensor.Shape{out},
				kernel: func(o []float32, ins [][]float32) { columnSums(n, out, ins[0], o) },
			}, grad)
			return gorgonia.Nodes{gx, gw, gb}, err
		},
	}, nodes...)
}

func linearForward[T blas.Float](n, in, out int, x, w, b, y []T) {
	gemm(false, true, n, out, in, 1, x, in, w, in, 0, y, out)
	if b == nil {
		return
	}
	for i := 0; i < n; i++ {
		row := y[i*out : (i+1)*out]
		for j := range row {
			row[j] += b[j]
		}
	}
}

// linearBackwardInput computes gx = gy·w.
func linearBackwardInput[T blas.Float](n, in, out int, w, gy, gx []T) {
	gemm(false, false, n, in, out, 1, gy, out, w, in, 0, gx, in)
}

// linearBackwardWeight computes gw = gyᵀ·x.
func linearBackwardWeight[T blas.Float](n, in, out int, x, gy, gw []T) {
	gemm(true, false, out, in, n, 1, gy, out, x, in, 0, gw, in)
}

// columnSums sums an n×m matrix over its rows.
func columnSums[T blas.Float](n, m int, a, out []T) {
	clear(out)
	for i := 0; i < n; i++ {
		for j, v := range a[i*m : (i+1)*m] {
			out[j] += v
		}
	}
}
