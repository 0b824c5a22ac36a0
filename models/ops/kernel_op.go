package ops

import (
	"errors"
	"fmt"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// kernelOp is a stateless op defined by a float32 kernel: the shapes of
// its inputs and output are fixed when the graph is built, and a shape of
// no dimensions means a scalar (a loss, or the gradient of one).
type kernelOp struct {
	base
	// name identifies the op with every parameter that changes its result;
	// gorgonia merges nodes whose op names and inputs agree.
	name   string
	in     []tensor.Shape
	out    tensor.Shape
	kernel func(out []float32, in [][]float32)
	// diffWRT says which inputs the op is differentiable with respect to
	// and symDiff builds their gradients; both are nil for backward ops.
	diffWRT []bool
	symDiff func(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error)
}

func (op *kernelOp) Arity() int { return len(op.in) }

func (op *kernelOp) Type() hm.Type {
	dims := make([]int, len(op.in))
	for i, s := range op.in {
		dims[i] = len(s)
	}
	return fnType(len(op.out), dims...)
}

func (op *kernelOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	if len(op.out) == 0 {
		return tensor.ScalarShape(), nil
	}
	return op.out.Clone(), nil
}

func (op *kernelOp) String() string { return op.name }

func (op *kernelOp) Do(in ...gorgonia.Value) (gorgonia.Value, error) { return op.do(nil, in) }
func (op *kernelOp) UsePreallocDo(p gorgonia.Value, in ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(p, in)
}

func (op *kernelOp) do(prealloc gorgonia.Value, vals []gorgonia.Value) (gorgonia.Value, error) {
	if len(vals) != len(op.in) {
		return nil, fmt.Errorf("%s: got %d inputs, want %d", op.name, len(vals), len(op.in))
	}
	ins := make([][]float32, len(vals))
	for i, v := range vals {
		if len(op.in[i]) == 0 {
			s, err := scalar(v)
			if err != nil {
				return nil, fmt.Errorf("%s input %d: %w", op.name, i, err)
			}
			ins[i] = []float32{s}
			continue
		}
		data, err := f32(v, op.in[i])
		if err != nil {
			return nil, fmt.Errorf("%s input %d: %w", op.name, i, err)
		}
		ins[i] = data
	}
	if len(op.out) == 0 {
		var r [1]float32
		op.kernel(r[:], ins)
		return gorgonia.NewF32(r[0]), nil
	}
	out, data := op.output(prealloc, op.out)
	op.kernel(data, ins)
	return out, nil
}

func (op *kernelOp) DiffWRT(n int) []bool {
	if op.diffWRT == nil {
		return make([]bool, n)
	}
	return op.diffWRT
}

func (op *kernelOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	if op.symDiff == nil {
		return nil, errors.New("ops: second-order gradients are not supported")
	}
	return op.symDiff(inputs, output, grad)
}

// shapes lists the shapes of some nodes, for kernelOp.in.
func shapes(nodes ...*gorgonia.Node) []tensor.Shape {
	s := make([]tensor.Shape, len(nodes))
	for i, n := range nodes {
		s[i] = n.Shape().Clone()
	}
	return s
}
