package ops

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Graph-level helpers: the fixture and training tests build real gorgonia
// graphs, differentiate them with gorgonia.Grad and run them on a
// TapeMachine, the way models do.

// newInput adds a named float32 input node holding data (random values
// when data is nil).
func newInput(g *gorgonia.ExprGraph, name string, shape tensor.Shape, data []float32) *gorgonia.Node {
	if data == nil {
		data = make([]float32, shape.TotalSize())
	}
	v := tensor.New(tensor.WithShape(shape.Clone()...), tensor.WithBacking(data))
	if len(shape) == 0 {
		return gorgonia.NewScalar(g, tensor.Float32, gorgonia.WithName(name), gorgonia.WithValue(data[0]))
	}
	return gorgonia.NewTensor(g, tensor.Float32, len(shape), gorgonia.WithShape(shape.Clone()...), gorgonia.WithName(name), gorgonia.WithValue(v))
}

// weightedSum is Σ y·r for a constant r: its gradient with respect to y is
// r, so it backpropagates an arbitrary upstream gradient through y.
func weightedSum(y *gorgonia.Node, r []float32) (*gorgonia.Node, error) {
	rn := newInput(y.Graph(), "upstream_"+y.Name(), y.Shape(), r)
	p, err := gorgonia.HadamardProd(y, rn)
	if err != nil {
		return nil, err
	}
	return gorgonia.Sum(p)
}

// gradRun differentiates cost with respect to wrt, runs the graph once and
// returns the gradients' values.
func gradRun(t *testing.T, cost *gorgonia.Node, wrt ...*gorgonia.Node) [][]float32 {
	t.Helper()
	grads, err := gorgonia.Grad(cost, wrt...)
	if err != nil {
		t.Fatalf("Grad: %v", err)
	}
	m := gorgonia.NewTapeMachine(cost.Graph())
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatalf("RunAll: %v", err)
	}
	out := make([][]float32, len(grads))
	for i, gn := range grads {
		out[i] = valueF32(t, gn)
	}
	return out
}

// valueF32 reads a node's value after a run.
func valueF32(t *testing.T, n *gorgonia.Node) []float32 {
	t.Helper()
	switch v := n.Value().(type) {
	case *tensor.Dense:
		return append([]float32(nil), v.Float32s()...)
	case *gorgonia.F32:
		return []float32{float32(*v)}
	}
	t.Fatalf("node %v has value %T", n, n.Value())
	return nil
}

func randF32(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

// TestTrainingThroughGraph trains a small ShuffleNet-like classifier with
// plain SGD through gorgonia.Grad and a reused TapeMachine: the loss must
// fall, and BN must have counted one batch per run.
func TestTrainingThroughGraph(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	const n, classes = 8, 3
	g := gorgonia.NewGraph()
	x := newInput(g, "x", tensor.Shape{n, 3, 8, 8}, randF32(rng, n*3*64))
	labels := make([]int, n)
	for i := range labels {
		labels[i] = i % classes
		// Make the classes separable: shift channel labels[i] of image i.
		data := x.Value().(*tensor.Dense).Float32s()
		for j := 0; j < 64; j++ {
			data[(i*3+labels[i])*64+j] += 2
		}
	}
	scaled := func(k int, s float64) []float32 {
		v := randF32(rng, k)
		for i := range v {
			v[i] *= float32(s)
		}
		return v
	}
	w1 := newInput(g, "w1", tensor.Shape{8, 3, 3, 3}, scaled(8*27, 0.3))
	gamma := newInput(g, "gamma", tensor.Shape{8}, scaled(8, 0))
	for i := range gamma.Value().(*tensor.Dense).Float32s() {
		gamma.Value().(*tensor.Dense).Float32s()[i] = 1
	}
	beta := newInput(g, "beta", tensor.Shape{8}, nil)
	dw := newInput(g, "dw", tensor.Shape{4, 1, 3, 3}, scaled(36, 0.3))
	pw := newInput(g, "pw", tensor.Shape{4, 4, 1, 1}, scaled(16, 0.5))
	fc := newInput(g, "fc", tensor.Shape{classes, 8}, scaled(classes*8, 0.1))
	fcb := newInput(g, "fcb", tensor.Shape{classes}, nil)
	st := NewBatchNormState(8)

	must := func(n *gorgonia.Node, err error) *gorgonia.Node {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	h := must(Conv2d(x, w1, nil, Conv2dParams{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}))
	h = must(BatchNorm2d(h, gamma, beta, st, BNTrain))
	h = must(ReLU(h))
	a, b, err := ChannelSplit(h)
	if err != nil {
		t.Fatal(err)
	}
	b = must(Conv2d(b, dw, nil, Conv2dParams{Padding: [2]int{1, 1}, Groups: 4}))
	b = must(Conv2d(b, pw, nil, Conv2dParams{}))
	b = must(ReLU(b))
	h = must(ChannelShuffle(must(ChannelConcat(a, b)), 2))
	h = must(MaxPool2d(h, [2]int{2, 2}, [2]int{0, 0}, [2]int{0, 0}))
	logits := must(Linear(must(GlobalAvgPool2d(h)), fc, fcb))
	loss := must(CrossEntropy(logits, labels, 0.1))
	params := []*gorgonia.Node{w1, gamma, beta, dw, pw, fc, fcb}
	grads, err := gorgonia.Grad(loss, params...)
	if err != nil {
		t.Fatal(err)
	}
	m := gorgonia.NewTapeMachine(g)
	defer m.Close()
	var first, last float32
	const steps = 60
	for step := 0; step < steps; step++ {
		if err := m.RunAll(); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		l := valueF32(t, loss)[0]
		if step == 0 {
			first = l
		}
		last = l
		for i, p := range params {
			pv := p.Value().(*tensor.Dense).Float32s()
			for j, gv := range valueF32(t, grads[i]) {
				pv[j] -= 0.2 * gv
			}
		}
		m.Reset()
	}
	if !(last < 0.5*first) || math.IsNaN(float64(last)) {
		t.Errorf("loss went from %g to %g in %d SGD steps, want it at least halved", first, last, steps)
	}
	if st.NumBatchesTracked != steps {
		t.Errorf("NumBatchesTracked = %d after %d runs", st.NumBatchesTracked, steps)
	}
	t.Logf("loss %g -> %g", first, last)
}
