package losses

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/razorgo/razor/models/nn"
)

// The fixtures come from scripts/fixtures/det_losses.py: mmdet 2.x's loss
// functions restated in PyTorch 1.13, float32. Both sides sum in float32
// with different orders; 1e-5 absolute plus relative covers them.
const (
	fixtureAtol = 1e-5
	fixtureRtol = 1e-5
)

type fixtureTensor struct {
	Offset int   `json:"offset"`
	Shape  []int `json:"shape"`
}

type fixtureCase struct {
	Name   string `json:"name"`
	Op     string `json:"op"`
	Params struct {
		Config    map[string]any `json:"config"`
		AvgFactor *float64       `json:"avg_factor"`
	} `json:"params"`
	Tensors map[string]fixtureTensor `json:"tensors"`
	Ints    struct {
		Labels []int `json:"labels"`
	} `json:"ints"`
	data []float32
}

// get returns a tensor's data and shape, or nil when the case has none.
func (c *fixtureCase) get(name string) ([]float32, []int) {
	ft, ok := c.Tensors[name]
	if !ok {
		return nil, nil
	}
	n := 1
	for _, d := range ft.Shape {
		n *= d
	}
	return append([]float32(nil), c.data[ft.Offset:ft.Offset+n]...), ft.Shape
}

func loadFixtures(t *testing.T) []*fixtureCase {
	t.Helper()
	raw, err := os.ReadFile("testdata/det_losses.json")
	if err != nil {
		t.Fatal(err)
	}
	var index struct {
		Cases []*fixtureCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &index); err != nil {
		t.Fatalf("testdata/det_losses.json: %v", err)
	}
	bin, err := os.ReadFile("testdata/det_losses.bin")
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

func expect(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, PyTorch has %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(float64(got[i]) - float64(want[i])); !(d <= fixtureAtol+fixtureRtol*math.Abs(float64(want[i]))) {
			t.Fatalf("%s[%d] = %.8g, PyTorch gives %.8g (diff %.3g)", what, i, got[i], want[i], d)
		}
	}
}

// run builds the loss node from pred, runs it with its gradient and
// returns both.
func run(t *testing.T, pred []float32, shape []int, loss func(b *nn.Binding, x *gorgonia.Node) (*gorgonia.Node, error)) ([]float32, []float32) {
	t.Helper()
	b := nn.NewBinding()
	defer b.Release()
	x := b.Input("pred", tensor.New(tensor.WithShape(shape...), tensor.WithBacking(pred)))
	l, err := loss(b, x)
	if err != nil {
		t.Fatal(err)
	}
	grads, err := gorgonia.Grad(l, x)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
	lv, err := b.Value(l)
	if err != nil {
		t.Fatal(err)
	}
	gv, err := b.Value(grads[0])
	if err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), lv...), append([]float32(nil), gv...)
}

func avgOf(c *fixtureCase) float64 {
	if c.Params.AvgFactor == nil {
		return 0
	}
	return *c.Params.AvgFactor
}

func TestFixtures(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range loadFixtures(t) {
		t.Run(c.Name, func(t *testing.T) {
			seen[c.Op] = true
			pred, shape := c.get("pred")
			weight, _ := c.get("weight")
			var loss, grad []float32
			switch c.Op {
			case "cls":
				l, err := ClsLosses.Build(c.Params.Config, "loss_cls", nil)
				if err != nil {
					t.Fatal(err)
				}
				if want := c.Params.Config["use_sigmoid"] == true; l.UseSigmoid() != want {
					t.Errorf("UseSigmoid() = %t, config says %t", l.UseSigmoid(), want)
				}
				loss, grad = run(t, pred, shape, func(b *nn.Binding, x *gorgonia.Node) (*gorgonia.Node, error) {
					return l.Loss(b, x, c.Ints.Labels, weight, avgOf(c))
				})
			case "reg":
				l, err := RegLosses.Build(c.Params.Config, "loss_bbox", nil)
				if err != nil {
					t.Fatal(err)
				}
				target, _ := c.get("target")
				loss, grad = run(t, pred, shape, func(b *nn.Binding, x *gorgonia.Node) (*gorgonia.Node, error) {
					return l.Loss(b, x, target, weight, avgOf(c))
				})
			default:
				t.Fatalf("no test for op %q", c.Op)
			}
			want, _ := c.get("loss")
			expect(t, "loss", loss, want)
			want, _ = c.get("gpred")
			expect(t, "gpred", grad, want)
		})
	}
	for _, op := range []string{"cls", "reg"} {
		if !seen[op] {
			t.Errorf("no fixture exercises %s losses", op)
		}
	}
}

// value runs a loss on constant logits and returns its value.
func value(t *testing.T, pred []float32, shape []int, loss func(b *nn.Binding, x *gorgonia.Node) (*gorgonia.Node, error)) float64 {
	t.Helper()
	l, _ := run(t, pred, shape, loss)
	return float64(l[0])
}

// TestReductionByHand pins the reduction on logits of zeros, whose
// softmax cross-entropy is log C per sample and sigmoid one log 2 per
// element, against each way of dividing.
func TestReductionByHand(t *testing.T) {
	zeros := make([]float32, 4*2)
	ln2 := math.Log(2)
	for _, c := range []struct {
		name   string
		config map[string]any
		labels []int
		weight []float32
		avg    float64
		want   float64
	}{
		{"softmax mean counts ignored", map[string]any{"type": "CrossEntropyLoss"}, []int{0, -100, 1, 1}, nil, 0, 3 * ln2 / 4},
		{"softmax avg_non_ignore", map[string]any{"type": "CrossEntropyLoss", "avg_non_ignore": true}, []int{0, -100, 1, 1}, nil, 0, ln2},
		{"softmax caller's avg wins", map[string]any{"type": "CrossEntropyLoss", "avg_non_ignore": true}, []int{0, -100, 1, 1}, nil, 6, 3 * ln2 / 6},
		{"softmax avg_factor eps", map[string]any{"type": "CrossEntropyLoss"}, []int{0, 1, 1, 1}, nil, 1, 4 * ln2 / (1 + 0x1p-23)},
		// Only an avg_factor near float32's epsilon shows the epsilon.
		{"softmax tiny avg_factor", map[string]any{"type": "CrossEntropyLoss"}, []int{0, 1, 1, 1}, nil, 1e-7, 4 * ln2 / (1e-7 + 0x1p-23)},
		{"softmax sum weighted", map[string]any{"type": "CrossEntropyLoss", "reduction": "sum", "loss_weight": 3}, []int{0, 1, 1, 1}, []float32{1, 0, 2, 0.5}, 0, 3 * 3.5 * ln2},
		{"sigmoid mean over N×C", map[string]any{"type": "CrossEntropyLoss", "use_sigmoid": true}, []int{0, 2, -1, 1}, nil, 0, 6 * ln2 / 8},
		{"sigmoid avg_non_ignore", map[string]any{"type": "CrossEntropyLoss", "use_sigmoid": true, "avg_non_ignore": true}, []int{0, 2, -1, 1}, nil, 0, ln2},
		{"sigmoid all ignored", map[string]any{"type": "CrossEntropyLoss", "use_sigmoid": true, "avg_non_ignore": true}, []int{-100, -100, -1, -100}, nil, 0, 0},
	} {
		l, err := ClsLosses.Build(c.config, "loss_cls", nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := value(t, zeros, []int{4, 2}, func(b *nn.Binding, x *gorgonia.Node) (*gorgonia.Node, error) {
			return l.Loss(b, x, c.labels, c.weight, c.avg)
		})
		if math.Abs(got-c.want) > 1e-6*math.Max(1, math.Abs(c.want)) {
			t.Errorf("%s: loss %.9g, want %.9g", c.name, got, c.want)
		}
	}
}

func TestZeroWeightsGiveZeroWhateverTheReduction(t *testing.T) {
	l, err := RegLosses.Build(map[string]any{"type": "L1Loss", "reduction": "sum"}, "loss_bbox", nil)
	if err != nil {
		t.Fatal(err)
	}
	pred := []float32{1, 2, 3, 4}
	loss, grad := run(t, pred, []int{1, 4}, func(b *nn.Binding, x *gorgonia.Node) (*gorgonia.Node, error) {
		return l.Loss(b, x, make([]float32, 4), make([]float32, 4), 2)
	})
	if loss[0] != 0 {
		t.Errorf("loss %g, want 0", loss[0])
	}
	for i, g := range grad {
		if g != 0 {
			t.Errorf("gradient[%d] = %g, want 0", i, g)
		}
	}
}

func TestAccuracy(t *testing.T) {
	logits := []float32{
		0.1, 0.9, 0.0, // argmax 1
		2, 2, 1, // tie: the first, 0
		-1, -3, -2, // 0
		0, 0, 5, // 2
	}
	for _, c := range []struct {
		labels []int
		want   float64
	}{
		{[]int{1, 0, 0, 2}, 100},
		{[]int{1, 1, 0, 0}, 50},
		{[]int{2, 1, -100, 0}, 0},
		{[]int{1, 0, 3, 1}, 50},
	} {
		if got := Accuracy(logits, 4, 3, c.labels); got != c.want {
			t.Errorf("Accuracy(labels %v) = %g, want %g", c.labels, got, c.want)
		}
	}
	if got := Accuracy(nil, 0, 3, nil); got != 0 {
		t.Errorf("Accuracy of no rows = %g, want 0", got)
	}
}

func TestBuildErrors(t *testing.T) {
	for _, c := range []struct {
		reg  bool
		node map[string]any
		want string
	}{
		{false, map[string]any{"type": "CrossEntropyLoss", "reduction": "none"}, "reduction none is not supported"},
		{false, map[string]any{"type": "CrossEntropyLoss", "reduction": "avg"}, `reduction "avg" is not supported`},
		{false, map[string]any{"type": "CrossEntropyLoss", "use_mask": true}, "use_mask"},
		{false, map[string]any{"type": "CrossEntropyLoss", "use_sigmod": true}, "use_sigmod"},
		{false, map[string]any{"type": "CrossEntropyLoss", "class_weight": []any{}}, "class_weight is empty"},
		{false, map[string]any{"type": "CrossEntropyLoss", "loss_weight": math.Inf(1)}, "loss_weight"},
		{false, map[string]any{"type": "FocalLoss"}, "FocalLoss"},
		{true, map[string]any{"type": "L1Loss", "reduction": "none"}, "reduction none is not supported"},
		{true, map[string]any{"type": "L1Loss", "beta": 1.0}, "beta"},
		{true, map[string]any{"type": "SmoothL1Loss", "beta": 0.0}, "beta 0 must be positive"},
		{true, map[string]any{"type": "SmoothL1Loss", "beta": -1.0}, "beta -1 must be positive"},
		{true, map[string]any{"type": "GIoULoss"}, "GIoULoss"},
	} {
		var err error
		if c.reg {
			_, err = RegLosses.Build(c.node, "loss_bbox", nil)
		} else {
			_, err = ClsLosses.Build(c.node, "loss_cls", nil)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one mentioning %q", c.node, err, c.want)
		}
	}
}

func TestLossErrors(t *testing.T) {
	b := nn.NewBinding()
	defer b.Release()
	x := b.Input("x", tensor.New(tensor.WithShape(2, 3), tensor.WithBacking(make([]float32, 6))))
	other := nn.NewBinding().Input("y", tensor.New(tensor.WithShape(2, 3), tensor.WithBacking(make([]float32, 6))))
	cls := func(node map[string]any) ClsLoss {
		l, err := ClsLosses.Build(node, "loss_cls", nil)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	softmax := cls(map[string]any{"type": "CrossEntropyLoss"})
	sigmoid := cls(map[string]any{"type": "CrossEntropyLoss", "use_sigmoid": true})
	summed := cls(map[string]any{"type": "CrossEntropyLoss", "reduction": "sum"})
	weighted := cls(map[string]any{"type": "CrossEntropyLoss", "class_weight": []any{1.0, 2.0}})
	l1, err := RegLosses.Build(map[string]any{"type": "L1Loss", "reduction": "sum"}, "loss_bbox", nil)
	if err != nil {
		t.Fatal(err)
	}
	six := make([]float32, 6)
	for _, c := range []struct {
		name string
		err  func() error
		want string
	}{
		{"softmax label range", func() error { _, err := softmax.Loss(b, x, []int{0, 3}, nil, 0); return err }, "outside [0, 3)"},
		{"softmax negative label", func() error { _, err := softmax.Loss(b, x, []int{0, -1}, nil, 0); return err }, "outside [0, 3)"},
		{"sigmoid label range", func() error { _, err := sigmoid.Loss(b, x, []int{0, 4}, nil, 0); return err }, "outside [0, 3]"},
		{"label count", func() error { _, err := softmax.Loss(b, x, []int{0}, nil, 0); return err }, "1 labels for 2"},
		{"weight count", func() error { _, err := sigmoid.Loss(b, x, []int{0, 1}, []float32{1}, 0); return err }, "1 weights for 2"},
		{"sum with avg_factor", func() error { _, err := summed.Loss(b, x, []int{0, 1}, nil, 4); return err }, "reduction sum"},
		{"class_weight width", func() error { _, err := weighted.Loss(b, x, []int{0, 1}, nil, 0); return err }, "class_weight has 2"},
		{"other graph", func() error { _, err := softmax.Loss(b, other, []int{0, 1}, nil, 0); return err }, "another graph"},
		{"reg sum with avg_factor", func() error { _, err := l1.Loss(b, x, six, nil, 2); return err }, "reduction sum"},
		{"reg target count", func() error { _, err := l1.Loss(b, x, six[:5], nil, 0); return err }, "5 targets"},
	} {
		if err := c.err(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.want)
		}
	}
}
