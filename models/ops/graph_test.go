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

	must := must(t)
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
	h = must(ChannelShuffle(must(channelConcat(a, b)), 2))
	h = must(MaxPool2d(h, 2, 0, 0))
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

func TestConstructorsRejectBadInputs(t *testing.T) {
	g := gorgonia.NewGraph()
	in := func(name string, s ...int) *gorgonia.Node { return newInput(g, name, tensor.Shape(s), nil) }
	x := in("x", 2, 4, 5, 5)
	x3 := in("x3", 2, 3, 5, 5)
	mat := in("mat", 2, 4)
	vec4 := in("vec4", 4)
	vec3 := in("vec3", 3)
	i64 := gorgonia.NewTensor(g, tensor.Float64, 4, gorgonia.WithShape(2, 4, 5, 5), gorgonia.WithName("x64"))
	bnWrong := NewBatchNormState(3)
	bnMomentum := NewBatchNormState(4)
	bnMomentum.Momentum = 1.5
	cases := []struct {
		name string
		err  func() error
	}{
		{"conv float64", func() error { _, err := Conv2d(i64, in("w1", 4, 4, 1, 1), nil, Conv2dParams{}); return err }},
		{"conv channels", func() error { _, err := Conv2d(x, in("w2", 4, 3, 1, 1), nil, Conv2dParams{}); return err }},
		{"conv bias size", func() error { _, err := Conv2d(x, in("w3", 4, 4, 1, 1), vec3, Conv2dParams{}); return err }},
		{"conv 2-D input", func() error { _, err := Conv2d(mat, in("w4", 4, 4, 1, 1), nil, Conv2dParams{}); return err }},
		{"bn gamma size", func() error { _, err := BatchNorm2d(x, vec3, vec4, NewBatchNormState(4), BNTrain); return err }},
		{"bn state size", func() error { _, err := BatchNorm2d(x, vec4, vec4, bnWrong, BNTrain); return err }},
		{"bn nil state", func() error { _, err := BatchNorm2d(x, vec4, vec4, nil, BNTrain); return err }},
		{"bn momentum", func() error { _, err := BatchNorm2d(x, vec4, vec4, bnMomentum, BNTrain); return err }},
		{"bn mode", func() error { _, err := BatchNorm2d(x, vec4, vec4, NewBatchNormState(4), BatchNormMode(7)); return err }},
		{"bn one value", func() error {
			_, err := BatchNorm2d(in("one", 1, 4, 1, 1), vec4, vec4, NewBatchNormState(4), BNTrain)
			return err
		}},
		{"split odd", func() error { _, _, err := ChannelSplit(x3); return err }},
		{"slice range", func() error { _, err := ChannelSlice(x, 3, 3); return err }},
		{"concat spatial", func() error { _, err := channelConcat(x, in("x6", 2, 4, 6, 5)); return err }},
		{"shuffle groups", func() error { _, err := ChannelShuffle(x3, 2); return err }},
		{"maxpool padding", func() error { _, err := MaxPool2d(x, 2, 1, 2); return err }},
		{"maxpool kernel", func() error { _, err := MaxPool2d(x, 0, 1, 0); return err }},
		{"linear features", func() error { _, err := Linear(mat, in("lw", 3, 5), nil); return err }},
		{"upsample size", func() error { _, err := UpsampleNearest(x, 0, 3); return err }},
		{"ce label range", func() error { _, err := CrossEntropy(mat, []int{0, 4}, 0); return err }},
		{"ce label count", func() error { _, err := CrossEntropy(mat, []int{0}, 0); return err }},
		{"ce eps", func() error { _, err := CrossEntropy(mat, []int{0, 1}, 1); return err }},
		{"bce shapes", func() error { _, err := sigmoidBCEWithLogits(mat, in("t", 4, 2), nil); return err }},
		{"l1 weight shape", func() error { _, err := L1Loss(mat, in("t2", 2, 4), vec4); return err }},
		{"smooth l1 beta", func() error { _, err := smoothL1Loss(mat, in("t3", 2, 4), nil, -1); return err }},
	}
	for _, c := range cases {
		if err := c.err(); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
}

// TestScaledLossGradient feeds a loss through gorgonia's own scalar ops, so
// the gradient reaching the loss is a computed scalar rather than Grad's
// constant one.
func TestScaledLossGradient(t *testing.T) {
	g := gorgonia.NewGraph()
	pred := newInput(g, "pred", tensor.Shape{2, 2}, []float32{1, -2, 3, 0.5})
	target := newInput(g, "target", tensor.Shape{2, 2}, []float32{0, 0, 4, 0})
	loss := must(t)(L1Loss(pred, target, nil))
	scaled := must(t)(gorgonia.Mul(loss, gorgonia.NewConstant(float32(3))))
	grads := gradRun(t, scaled, pred)
	closeTo(t, "loss", toF64(valueF32(t, loss)), []float64{(1 + 2 + 1 + 0.5) / 4}, 1e-7)
	closeTo(t, "dpred", toF64(grads[0]), []float64{0.75, -0.75, -0.75, 0.75}, 1e-7)
}
