// Package ops holds the tensor operations models are built from: gorgonia
// Ops whose forward and backward run on kernels written here, over float32
// NCHW tensors (*tensor.Dense).
//
// Each public function takes graph nodes and returns a new node, checking
// shapes when the graph is built, so a wrong shape is an error at
// construction rather than at run time. Gradients come from gorgonia.Grad:
// every op's SymDiff adds nodes that run the matching backward kernels.
// The backward nodes themselves are not differentiable (no second-order
// gradients).
//
// Kernels are generic over float32 and float64; models run float32, and the
// tests check every backward kernel against float64 finite differences.
// Large loops are split across GOMAXPROCS goroutines; matrix products go
// through models/ops/blas (a Go assembly micro-kernel on amd64; the
// `openblas` build tag links OpenBLAS instead). Float32 depthwise
// convolutions and batch norm run on eight-wide kernels: Go assembly on
// amd64 (package models/ops/internal/simd, with or without cgo), C
// elsewhere when cgo is on (depthwise_native.c, batchnorm_native.c); the
// tests check them against the Go loops, which the `purego` tag keeps.
//
// Ops that keep state (BatchNorm2d's running statistics) update it when the
// graph runs, once per execution of the node; a graph that uses such an op
// must not be run by two machines at the same time.
//
// Of razor it imports only models/ops/blas, models/ops/internal/simd and
// internal/par: ops know
// tensors and graphs, not modules, weights' names or configs.
package ops

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"reflect"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// typeVar is the element type every op here is polymorphic in (always
// float32 in practice; the type system needs a variable).
var typeVar = hm.TypeVariable('a')

// tensorType is a dims-dimensional tensor of typeVar.
func tensorType(dims int) hm.Type { return &gorgonia.TensorType{Dims: dims, Of: typeVar} }

// fnType builds the type of an op from its argument dimensionalities and its
// result dimensionality; 0 stands for a scalar.
func fnType(result int, args ...int) hm.Type {
	ts := make([]hm.Type, 0, len(args)+1)
	for _, d := range append(args, result) {
		if d == 0 {
			ts = append(ts, typeVar)
		} else {
			ts = append(ts, tensorType(d))
		}
	}
	return hm.NewFnType(ts...)
}

// base answers the Op questions whose answer is the same for every op here:
// results are buffers drawn from the pool (buffers.go) and owned by the op
// until its graph is released, an op's hash is its address (below),
// nothing is computed in place, and no op calls out through cgo on
// gorgonia's behalf (the OpenBLAS build's cgo calls are synchronous and need
// no special scheduling).
type base struct{ owner }

// WriteHash and Hashcode identify the op by the address of its base, which
// lies inside the op value: see writeIdentity.
func (b *base) WriteHash(h hash.Hash) { writeIdentity(h, b) }
func (b *base) Hashcode() uint32      { return identityHash(b) }

func (base) ReturnsPtr() bool     { return false }
func (base) CallsExtern() bool    { return false }
func (base) OverwritesInput() int { return -1 }

// An op's hash is its address. gorgonia merges two nodes whose 32-bit tree
// hashes collide when their ops hash alike, without comparing their
// children, so two distinct nodes of equal description (say two ReLU
// backwards of one shape in different blocks) could be merged into one
// whenever their tree hashes happen to collide -- rare per graph, but a
// training run builds thousands of graphs. Each op value belongs to exactly
// one node, so its address keeps distinct nodes distinct; and hashing eight
// bytes spares formatting the op's description every time gorgonia asks.

// writeIdentity writes the address op points at to h.
func writeIdentity(h hash.Hash, op any) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(reflect.ValueOf(op).Pointer()))
	h.Write(b[:])
}

// identityHash is the FNV-1a hash of the address op points at.
func identityHash(op any) uint32 {
	h := fnv.New32a()
	writeIdentity(h, op)
	return h.Sum32()
}

// backwardOnly marks a backward op: gorgonia may ask whether it is
// differentiable (when a cost depends on a gradient), and the answer is no.
type backwardOnly struct{ base }

func (backwardOnly) DiffWRT(n int) []bool { return make([]bool, n) }

func (backwardOnly) SymDiff(gorgonia.Nodes, *gorgonia.Node, *gorgonia.Node) (gorgonia.Nodes, error) {
	return nil, errors.New("ops: second-order gradients are not supported")
}

// checkNode verifies a node is a float32 tensor with the given number of
// dimensions; what names the argument in the error.
func checkNode(op, what string, n *gorgonia.Node, dims int) error {
	if n == nil {
		return fmt.Errorf("%s: %s is nil", op, what)
	}
	if n.Dtype() != tensor.Float32 {
		return fmt.Errorf("%s: %s %q has dtype %v, want float32", op, what, n.Name(), n.Dtype())
	}
	if got := n.Shape().Dims(); got != dims {
		return fmt.Errorf("%s: %s %q has shape %v (%d dims), want %d dims", op, what, n.Name(), n.Shape(), got, dims)
	}
	return nil
}

// apply wraps gorgonia.ApplyOp with the op's name in the error.
func apply(op gorgonia.Op, children ...*gorgonia.Node) (*gorgonia.Node, error) {
	n, err := gorgonia.ApplyOp(op, children...)
	if err != nil {
		return nil, fmt.Errorf("ops: applying %v: %w", op, err)
	}
	return n, nil
}

// f32 returns the contiguous float32 data of a tensor value, copying a
// strided view (one made by gorgonia's slicing ops) into fresh memory.
func f32(v gorgonia.Value, want tensor.Shape) ([]float32, error) {
	d, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("ops: got a %T value, want *tensor.Dense", v)
	}
	if d.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("ops: got a %v tensor, want float32", d.Dtype())
	}
	if want != nil && !d.Shape().Eq(want) {
		return nil, fmt.Errorf("ops: got a tensor of shape %v, want %v", d.Shape(), want)
	}
	if d.RequiresIterator() || len(d.Float32s()) != d.Shape().TotalSize() {
		d = d.Materialize().(*tensor.Dense)
	}
	return d.Float32s(), nil
}

// scalar reads a float32 scalar value (the gradient gorgonia.Grad feeds a
// scalar cost) whether it arrives as a gorgonia scalar or a one-element
// tensor.
func scalar(v gorgonia.Value) (float32, error) {
	switch s := v.(type) {
	case *gorgonia.F32:
		return float32(*s), nil
	case *tensor.Dense:
		if s.Dtype() == tensor.Float32 && s.Shape().TotalSize() == 1 {
			return s.Float32s()[0], nil
		}
	}
	return 0, fmt.Errorf("ops: got %v (%T), want a float32 scalar", v, v)
}

// shapeOf converts the DimSizer gorgonia passes to InferShape.
func shapeOf(d gorgonia.DimSizer) (tensor.Shape, error) {
	s, ok := d.(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("ops: got a %T shape, want tensor.Shape", d)
	}
	return s, nil
}
