package ops

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The fixtures come from scripts/fixtures/ops_fixtures.py (PyTorch 1.13,
// float32). Every op runs here as models run it: in a gorgonia graph,
// differentiated by gorgonia.Grad, executed by a TapeMachine.
//
// Tolerance: |got - want| <= fixtureAtol + fixtureRtol·|want| for every
// element of every output and gradient. Both sides compute in float32 with
// different summation orders; the largest difference seen, 1.6e-6, is in a
// convolution weight gradient summing 288 products.
const (
	fixtureAtol = 1e-5
	fixtureRtol = 1e-5
)

type fixtureTensor struct {
	Offset int   `json:"offset"`
	Shape  []int `json:"shape"`
}

type fixtureCase struct {
	Name    string                     `json:"name"`
	Op      string                     `json:"op"`
	Params  json.RawMessage            `json:"params"`
	Tensors map[string]fixtureTensor   `json:"tensors"`
	Ints    map[string]json.RawMessage `json:"ints"`
	data    []float32
}

// get returns a named tensor's data and shape.
func (c *fixtureCase) get(t *testing.T, name string) ([]float32, tensor.Shape) {
	t.Helper()
	ft, ok := c.Tensors[name]
	if !ok {
		t.Fatalf("fixture %s has no tensor %q", c.Name, name)
	}
	s := tensor.Shape(ft.Shape)
	n := s.TotalSize()
	if len(ft.Shape) == 0 {
		n = 1
	}
	return append([]float32(nil), c.data[ft.Offset:ft.Offset+n]...), s
}

func (c *fixtureCase) has(name string) bool { _, ok := c.Tensors[name]; return ok }

// input adds a fixture tensor to g as an input node named after it.
func (c *fixtureCase) input(t *testing.T, g *gorgonia.ExprGraph, name string) *gorgonia.Node {
	data, shape := c.get(t, name)
	return newInput(g, name, shape, data)
}

func (c *fixtureCase) params(t *testing.T, into any) {
	t.Helper()
	if err := json.Unmarshal(c.Params, into); err != nil {
		t.Fatalf("fixture %s params: %v", c.Name, err)
	}
}

func (c *fixtureCase) ints(t *testing.T, name string, into any) {
	t.Helper()
	if err := json.Unmarshal(c.Ints[name], into); err != nil {
		t.Fatalf("fixture %s ints %q: %v", c.Name, name, err)
	}
}

// expect compares got with the fixture tensor want.
func (c *fixtureCase) expect(t *testing.T, want string, got []float32) {
	t.Helper()
	w, _ := c.get(t, want)
	if len(got) != len(w) {
		t.Fatalf("%s: %d values, fixture has %d", want, len(got), len(w))
	}
	for i := range got {
		if d := math.Abs(float64(got[i]) - float64(w[i])); !(d <= fixtureAtol+fixtureRtol*math.Abs(float64(w[i]))) {
			t.Fatalf("%s[%d] = %.8g, PyTorch gives %.8g (diff %.3g)", want, i, got[i], w[i], d)
		}
	}
}

func loadFixtures(t *testing.T) []*fixtureCase { return loadFixtureFile(t, "ops_fixtures") }

// loadFixtureFile reads testdata/<name>.json and its .bin, written by a
// script under scripts/fixtures.
func loadFixtureFile(t *testing.T, name string) []*fixtureCase {
	t.Helper()
	raw, err := os.ReadFile("testdata/" + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var index struct {
		Cases []*fixtureCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &index); err != nil {
		t.Fatalf("testdata/%s.json: %v", name, err)
	}
	bin, err := os.ReadFile("testdata/" + name + ".bin")
	if err != nil {
		t.Fatal(err)
	}
	data := make([]float32, len(bin)/4)
	for i := range data {
		data[i] = math.Float32frombits(binary.LittleEndian.Uint32(bin[4*i:]))
	}
	for _, c := range index.Cases {
		c.data = data
	}
	return index.Cases
}

func TestFixtures(t *testing.T) {
	run := map[string]func(*testing.T, *fixtureCase){
		"conv2d":                fixtureConv2d,
		"batchnorm_train":       fixtureBatchNormTrain,
		"batchnorm_eval":        fixtureBatchNormEval,
		"batchnorm_recalibrate": fixtureBatchNormRecalibrate,
		"batchnorm_relu":        fixtureBatchNormReLU,
		"linear":                fixtureLinear,
		"cross_entropy":         fixtureCrossEntropy,
		"bce_with_logits":       fixturePointLoss,
		"l1":                    fixturePointLoss,
		"smooth_l1":             fixturePointLoss,
	}
	for op := range unaryFixtureOps {
		run[op] = fixtureUnary
	}
	seen := map[string]bool{}
	for _, c := range loadFixtures(t) {
		f, ok := run[c.Op]
		if !ok {
			t.Errorf("fixture %s: no test for op %q", c.Name, c.Op)
			continue
		}
		seen[c.Op] = true
		t.Run(c.Name, func(t *testing.T) { f(t, c) })
	}
	for op := range run {
		if !seen[op] {
			t.Errorf("no fixture exercises op %q", op)
		}
	}
}

// must(t)(node, err) fails the test on err and returns node.
func must(t *testing.T) func(*gorgonia.Node, error) *gorgonia.Node {
	return func(n *gorgonia.Node, err error) *gorgonia.Node {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
}

func fixtureConv2d(t *testing.T, c *fixtureCase) {
	var p struct {
		Stride, Padding, Dilation [2]int
		Groups                    int
		Bias                      bool
	}
	c.params(t, &p)
	g := gorgonia.NewGraph()
	x, w := c.input(t, g, "x"), c.input(t, g, "w")
	wrt := []*gorgonia.Node{x, w}
	var b *gorgonia.Node
	if p.Bias {
		b = c.input(t, g, "b")
		wrt = append(wrt, b)
	}
	y := must(t)(Conv2d(x, w, b, Conv2dParams{Stride: p.Stride, Padding: p.Padding, Dilation: p.Dilation, Groups: p.Groups}))
	gy, _ := c.get(t, "gy")
	grads := gradRun(t, must(t)(weightedSum(y, gy)), wrt...)
	c.expect(t, "y", valueF32(t, y))
	c.expect(t, "gx", grads[0])
	c.expect(t, "gw", grads[1])
	if p.Bias {
		c.expect(t, "gb", grads[2])
	}
}

// bnState builds a state from fixture running statistics.
func bnState(t *testing.T, c *fixtureCase, mean, variance string) *BatchNormState {
	st := NewBatchNormState(len(c.Tensors["gamma"].Shape[:1]) * c.Tensors["gamma"].Shape[0])
	m, _ := c.get(t, mean)
	v, _ := c.get(t, variance)
	copy(st.RunningMean.Float32s(), m)
	copy(st.RunningVar.Float32s(), v)
	return st
}

// bnForward runs BatchNorm2d on fixture input xName in a fresh graph and,
// when gyName is not empty, returns the gradients of x, gamma and beta.
func bnForward(t *testing.T, c *fixtureCase, st *BatchNormState, mode BatchNormMode, xName, gyName string) (*gorgonia.Node, [][]float32) {
	return bnForwardWith(t, c, BatchNorm2d, st, mode, xName, gyName)
}

// bnForwardWith is bnForward with BatchNorm2d or BatchNorm2dReLU.
func bnForwardWith(t *testing.T, c *fixtureCase, bn func(x, gamma, beta *gorgonia.Node, st *BatchNormState, mode BatchNormMode) (*gorgonia.Node, error),
	st *BatchNormState, mode BatchNormMode, xName, gyName string) (*gorgonia.Node, [][]float32) {
	g := gorgonia.NewGraph()
	x, gamma, beta := c.input(t, g, xName), c.input(t, g, "gamma"), c.input(t, g, "beta")
	y := must(t)(bn(x, gamma, beta, st, mode))
	if gyName == "" {
		m := gorgonia.NewTapeMachine(g)
		defer m.Close()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		return y, nil
	}
	gy, _ := c.get(t, gyName)
	return y, gradRun(t, must(t)(weightedSum(y, gy)), x, gamma, beta)
}

// expectBN compares a batch norm's output and its gradients with respect to
// x, gamma and beta with the fixture's y, gx, ggamma and gbeta.
func expectBN(t *testing.T, c *fixtureCase, y *gorgonia.Node, grads [][]float32) {
	t.Helper()
	c.expect(t, "y", valueF32(t, y))
	c.expect(t, "gx", grads[0])
	c.expect(t, "ggamma", grads[1])
	c.expect(t, "gbeta", grads[2])
}

func fixtureBatchNormTrain(t *testing.T, c *fixtureCase) {
	st := bnState(t, c, "running_mean0", "running_var0")
	c.ints(t, "num_batches_tracked0", &st.NumBatchesTracked)
	y1, _ := bnForward(t, c, st, BNTrain, "x1", "")
	c.expect(t, "y1", valueF32(t, y1))
	c.expect(t, "running_mean1", st.RunningMean.Float32s())
	c.expect(t, "running_var1", st.RunningVar.Float32s())
	y, grads := bnForward(t, c, st, BNTrain, "x", "gy")
	expectBN(t, c, y, grads)
	c.expect(t, "running_mean2", st.RunningMean.Float32s())
	c.expect(t, "running_var2", st.RunningVar.Float32s())
	var want int64
	c.ints(t, "num_batches_tracked2", &want)
	if st.NumBatchesTracked != want {
		t.Errorf("NumBatchesTracked = %d, PyTorch has %d", st.NumBatchesTracked, want)
	}
}

// fixtureBatchNormReLU checks the fused op against PyTorch's BatchNorm2d
// followed by F.relu, in training or evaluation mode.
func fixtureBatchNormReLU(t *testing.T, c *fixtureCase) {
	var p struct {
		Mode string `json:"mode"`
	}
	c.params(t, &p)
	mode := map[string]BatchNormMode{"train": BNTrain, "eval": BNEval}[p.Mode]
	st := bnState(t, c, "running_mean0", "running_var0")
	y, grads := bnForwardWith(t, c, BatchNorm2dReLU, st, mode, "x", "gy")
	expectBN(t, c, y, grads)
	c.expect(t, "running_mean", st.RunningMean.Float32s())
	c.expect(t, "running_var", st.RunningVar.Float32s())
}

func fixtureBatchNormEval(t *testing.T, c *fixtureCase) {
	st := bnState(t, c, "running_mean", "running_var")
	y, grads := bnForward(t, c, st, BNEval, "x", "gy")
	expectBN(t, c, y, grads)
	c.expect(t, "running_mean", st.RunningMean.Float32s())
	c.expect(t, "running_var", st.RunningVar.Float32s())
	if st.NumBatchesTracked != 0 {
		t.Errorf("eval mode counted %d batches", st.NumBatchesTracked)
	}
}

func fixtureBatchNormRecalibrate(t *testing.T, c *fixtureCase) {
	var p struct{ Batches int }
	c.params(t, &p)
	st := NewBatchNormState(c.Tensors["gamma"].Shape[0])
	for i := range p.Batches {
		y, _ := bnForward(t, c, st, BNRecalibrate, "x"+string(rune('0'+i)), "")
		c.expect(t, "y"+string(rune('0'+i)), valueF32(t, y))
		if st.NumBatchesTracked != 0 || st.RunningMean.Float32s()[0] != 0 {
			t.Fatalf("batch %d changed the running statistics before FinishRecalibration", i)
		}
	}
	if !st.FinishRecalibration() {
		t.Fatal("FinishRecalibration found no batches")
	}
	c.expect(t, "running_mean", st.RunningMean.Float32s())
	c.expect(t, "running_var", st.RunningVar.Float32s())
	var want int64
	c.ints(t, "num_batches_tracked", &want)
	if st.NumBatchesTracked != want {
		t.Errorf("NumBatchesTracked = %d, PyTorch has %d", st.NumBatchesTracked, want)
	}
}

// unaryFixtureOps builds the graph of each single-input fixture op.
var unaryFixtureOps = map[string]func(c *fixtureCase, x *gorgonia.Node) (*gorgonia.Node, error){
	"relu":    func(_ *fixtureCase, x *gorgonia.Node) (*gorgonia.Node, error) { return ReLU(x) },
	"sigmoid": func(_ *fixtureCase, x *gorgonia.Node) (*gorgonia.Node, error) { return Sigmoid(x) },
	"split_concat_shuffle": func(_ *fixtureCase, x *gorgonia.Node) (*gorgonia.Node, error) {
		a, b, err := ChannelSplit(x)
		if err != nil {
			return nil, err
		}
		return ConcatShuffle(2, b, a) // as models run it; TestConcatShuffleMatchesTwoOps checks the two ops
	},
	"shuffle": func(c *fixtureCase, x *gorgonia.Node) (*gorgonia.Node, error) {
		var p struct{ Groups int }
		if err := json.Unmarshal(c.Params, &p); err != nil {
			return nil, err
		}
		return ChannelShuffle(x, p.Groups)
	},
	"global_avg_pool": func(_ *fixtureCase, x *gorgonia.Node) (*gorgonia.Node, error) { return GlobalAvgPool2d(x) },
	"maxpool": func(c *fixtureCase, x *gorgonia.Node) (*gorgonia.Node, error) {
		var p struct{ Kernel, Stride, Padding [2]int }
		if err := json.Unmarshal(c.Params, &p); err != nil {
			return nil, err
		}
		return MaxPool2d(x, p.Kernel[0], p.Stride[0], p.Padding[0])
	},
	"upsample": func(c *fixtureCase, x *gorgonia.Node) (*gorgonia.Node, error) {
		var p struct{ Size [2]int }
		if err := json.Unmarshal(c.Params, &p); err != nil {
			return nil, err
		}
		if p.Size[0] == 2*x.Shape()[2] && p.Size[1] == 2*x.Shape()[3] {
			return upsample2x(x)
		}
		return UpsampleNearest(x, p.Size[0], p.Size[1])
	},
	"softmax": func(_ *fixtureCase, x *gorgonia.Node) (*gorgonia.Node, error) { return Softmax(x) },
}

func fixtureUnary(t *testing.T, c *fixtureCase) {
	g := gorgonia.NewGraph()
	x := c.input(t, g, "x")
	y := must(t)(unaryFixtureOps[c.Op](c, x))
	gy, _ := c.get(t, "gy")
	grads := gradRun(t, must(t)(weightedSum(y, gy)), x)
	c.expect(t, "y", valueF32(t, y))
	c.expect(t, "gx", grads[0])
}

func fixtureLinear(t *testing.T, c *fixtureCase) {
	var p struct{ Bias bool }
	c.params(t, &p)
	g := gorgonia.NewGraph()
	x, w := c.input(t, g, "x"), c.input(t, g, "w")
	wrt := []*gorgonia.Node{x, w}
	var b *gorgonia.Node
	if p.Bias {
		b = c.input(t, g, "b")
		wrt = append(wrt, b)
	}
	y := must(t)(Linear(x, w, b))
	gy, _ := c.get(t, "gy")
	grads := gradRun(t, must(t)(weightedSum(y, gy)), wrt...)
	c.expect(t, "y", valueF32(t, y))
	c.expect(t, "gx", grads[0])
	c.expect(t, "gw", grads[1])
	if p.Bias {
		c.expect(t, "gb", grads[2])
	}
}

func fixtureCrossEntropy(t *testing.T, c *fixtureCase) {
	var p struct{ Eps float64 }
	c.params(t, &p)
	var labels []int
	c.ints(t, "labels", &labels)
	g := gorgonia.NewGraph()
	x := c.input(t, g, "x")
	loss := must(t)(CrossEntropy(x, labels, p.Eps))
	grads := gradRun(t, loss, x)
	c.expect(t, "loss", valueF32(t, loss))
	c.expect(t, "gx", grads[0])
}

func fixturePointLoss(t *testing.T, c *fixtureCase) {
	var p struct {
		Beta     float64
		Weighted bool
	}
	c.params(t, &p)
	g := gorgonia.NewGraph()
	pred, target := c.input(t, g, "pred"), c.input(t, g, "target")
	var weight *gorgonia.Node
	if p.Weighted {
		weight = c.input(t, g, "weight")
	}
	var loss *gorgonia.Node
	switch c.Op {
	case "bce_with_logits":
		loss = must(t)(sigmoidBCEWithLogits(pred, target, weight))
	case "l1":
		loss = must(t)(L1Loss(pred, target, weight))
	case "smooth_l1":
		loss = must(t)(smoothL1Loss(pred, target, weight, p.Beta))
	}
	grads := gradRun(t, loss, pred)
	c.expect(t, "loss", valueF32(t, loss))
	c.expect(t, "gpred", grads[0])
}
