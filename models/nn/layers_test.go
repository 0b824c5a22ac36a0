package nn

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/razorgo/razor/models/ops"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

type fixtureTensor struct {
	Dtype  string    `json:"dtype"`
	Shape  []int     `json:"shape"`
	Values []float64 `json:"values"`
}

func (f fixtureTensor) dense() *tensor.Dense {
	if f.Dtype == "int64" {
		v := make([]int64, len(f.Values))
		for i, x := range f.Values {
			v[i] = int64(x)
		}
		return tensor.New(tensor.WithShape(f.Shape...), tensor.WithBacking(v))
	}
	return tensor.New(tensor.WithShape(f.Shape...), tensor.WithBacking(f.float32s()))
}

func (f fixtureTensor) float32s() []float32 {
	v := make([]float32, len(f.Values))
	for i, x := range f.Values {
		v[i] = float32(x)
	}
	return v
}

type layersFixture struct {
	Keys     []string                 `json:"keys"`
	Initial  map[string]fixtureTensor `json:"initial"`
	X        fixtureTensor            `json:"x"`
	R        fixtureTensor            `json:"r"`
	TrainOut fixtureTensor            `json:"train_out"`
	Grads    map[string]fixtureTensor `json:"grads"`
	After    map[string]fixtureTensor `json:"after"`
	EvalOut  fixtureTensor            `json:"eval_out"`
}

func loadLayersFixture(t *testing.T) layersFixture {
	t.Helper()
	js, err := os.ReadFile(filepath.Join("testdata", "layers.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f layersFixture
	if err := json.Unmarshal(js, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// fixtureNet is the fixture script's network: a Sequential "body" of three
// ConvModules, global average pooling, and a linear "fc".
type fixtureNet struct {
	Base
	body *Sequential
	fc   *Linear
}

func newFixtureNet(t *testing.T) *fixtureNet {
	t.Helper()
	var layers []Layer
	for _, cfg := range []ConvModuleConfig{
		{In: 3, Out: 8, Kernel: 3, Stride: 2, Padding: 1, Norm: true, ReLU: true},
		{In: 8, Out: 8, Kernel: 3, Padding: 1, Groups: 8, Norm: true},
		{In: 8, Out: 4, Kernel: 1, ReLU: true},
	} {
		m, err := NewConvModule(cfg)
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, m)
	}
	fc, err := NewLinear(4, 3, true)
	if err != nil {
		t.Fatal(err)
	}
	n := &fixtureNet{body: NewSequential(layers...), fc: fc}
	n.AddChild("body", n.body)
	n.AddChild("fc", n.fc)
	return n
}

func (n *fixtureNet) Forward(b *Binding, x *gorgonia.Node) (*gorgonia.Node, error) {
	y, err := n.body.Forward(b, x)
	if err != nil {
		return nil, err
	}
	if y, err = ops.GlobalAvgPool2d(y); err != nil {
		return nil, err
	}
	return n.fc.Forward(b, y)
}

// near compares with PyTorch at float32 summation-order tolerance.
func near(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > 1e-4+1e-4*math.Abs(want[i]) {
			t.Fatalf("%s[%d] = %v, torch has %v", what, i, got[i], want[i])
		}
	}
}

func TestLayersMatchTorch(t *testing.T) {
	f := loadLayersFixture(t)
	net := newFixtureNet(t)

	var names []string
	for _, e := range net.stateEntries() {
		names = append(names, e.name)
	}
	if strings.Join(names, " ") != strings.Join(f.Keys, " ") {
		t.Fatalf("state dict keys\n got %v\nwant %v", names, f.Keys)
	}
	sd := map[string]*tensor.Dense{}
	for k, v := range f.Initial {
		sd[k] = v.dense()
	}
	if _, err := net.LoadStateDict(sd, true); err != nil {
		t.Fatal(err)
	}

	b := NewBinding()
	out, err := net.Forward(b, b.Input("x", f.X.dense()))
	if err != nil {
		t.Fatal(err)
	}
	loss := gorgonia.Must(gorgonia.Sum(gorgonia.Must(gorgonia.HadamardProd(out, b.Input("r", f.R.dense())))))
	if err := b.Backward(loss); err != nil {
		t.Fatal(err)
	}
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
	near(t, "train output", out.Value().(*tensor.Dense).Float32s(), f.TrainOut.Values)
	params := map[string]*Param{}
	for _, p := range net.NamedParameters() {
		params[p.Name()] = p
	}
	if len(params) != len(f.Grads) {
		t.Errorf("%d parameters, torch has %d", len(params), len(f.Grads))
	}
	for name, g := range f.Grads {
		p := params[name]
		if p == nil || p.Grad() == nil {
			t.Fatalf("no gradient for %s", name)
		}
		near(t, "grad "+name, p.GradData(), g.Values)
	}
	after := net.StateDict()
	for name, want := range f.After {
		got := after[name]
		if want.Dtype == "int64" {
			if got.Int64s()[0] != int64(want.Values[0]) {
				t.Errorf("%s = %v, torch has %v", name, got.Int64s(), want.Values)
			}
			continue
		}
		near(t, "after "+name, got.Float32s(), want.Values)
	}

	net.SetTraining(false)
	b = NewBinding()
	out, err = net.Forward(b, b.Input("x", f.X.dense()))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
	near(t, "eval output", out.Value().(*tensor.Dense).Float32s(), f.EvalOut.Values)
	if n := net.StateDict()["body.0.bn.num_batches_tracked"].Int64s()[0]; n != int64(f.After["body.0.bn.num_batches_tracked"].Values[0]) {
		t.Errorf("an eval forward changed num_batches_tracked to %d", n)
	}
}

func TestLayerKindsAndShapes(t *testing.T) {
	dw, err := NewConv2d(Conv2dConfig{In: 6, Out: 12, Kernel: 5, Groups: 6, Bias: true})
	if err != nil {
		t.Fatal(err)
	}
	if !dw.Weight.Depthwise() || !dw.Bias.Depthwise() || dw.Bias.Kind() != KindBias || !dw.Weight.Shape().Eq(tensor.Shape{12, 1, 5, 5}) {
		t.Errorf("depthwise conv: weight %v dw %v, bias kind %v", dw.Weight.Shape(), dw.Weight.Depthwise(), dw.Bias.Kind())
	}
	grouped, _ := NewConv2d(Conv2dConfig{In: 6, Out: 6, Kernel: 1, Groups: 2})
	if grouped.Weight.Depthwise() || grouped.Bias != nil || grouped.Config().Stride != 1 {
		t.Errorf("grouped conv marked depthwise, has a bias or lacks defaults: %+v", grouped.Config())
	}
	bn, _ := NewBatchNorm2d(3)
	if bn.Weight.Kind() != KindNorm || bn.Bias.Kind() != KindNorm || bn.Weight.Data()[2] != 1 || bn.Bias.Data()[2] != 0 {
		t.Errorf("batch norm params: kinds %v %v, values %v %v", bn.Weight.Kind(), bn.Bias.Kind(), bn.Weight.Data(), bn.Bias.Data())
	}
	cm, _ := NewConvModule(ConvModuleConfig{In: 2, Out: 2, Kernel: 1, Norm: false})
	if cm.Conv.Bias == nil || cm.BN != nil {
		t.Errorf("conv module without norm: bias %v, bn %v", cm.Conv.Bias, cm.BN)
	}
	for _, tc := range []struct {
		cfg  Conv2dConfig
		want string
	}{
		{Conv2dConfig{In: 0, Out: 1, Kernel: 1}, "must be positive"},
		{Conv2dConfig{In: 3, Out: 4, Kernel: 1, Groups: 2}, "divisible by groups 2"},
		{Conv2dConfig{In: 4, Out: 4, Kernel: 3, Padding: -1}, "non-negative"},
	} {
		if _, err := NewConv2d(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewConv2d(%+v) error = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := NewConvModule(ConvModuleConfig{In: 3, Out: 4, Kernel: 1, Groups: 2}); err == nil || !strings.Contains(err.Error(), "conv module") {
		t.Errorf("NewConvModule error = %v", err)
	}
	fc, _ := NewLinear(3, 2, false)
	if fc.Bias != nil || fc.Weight.Kind() != KindWeight || !fc.Weight.Shape().Eq(tensor.Shape{2, 3}) {
		t.Errorf("linear without bias: %v %v", fc.Weight.Shape(), fc.Bias)
	}
	if _, err := NewLinear(0, 2, true); err == nil {
		t.Errorf("NewLinear(0, 2) succeeded")
	}
	if _, err := NewBatchNorm2d(0); err == nil {
		t.Errorf("NewBatchNorm2d(0) succeeded")
	}
}

func TestForwardErrorsNameTheModule(t *testing.T) {
	net := newFixtureNet(t)
	root := &box{}
	root.AddChild("model", net)
	b := NewBinding()
	// 4 input channels where the first conv wants 3.
	_, err := net.Forward(b, b.Input("x", tensor.New(tensor.WithShape(1, 4, 8, 8), tensor.Of(tensor.Float32))))
	if err == nil || !strings.HasPrefix(err.Error(), "model.body.0.conv:") {
		t.Errorf("error = %v, want one starting with the module path model.body.0.conv", err)
	}
	// 5 features where fc wants 4.
	_, err = net.fc.Forward(b, b.Input("f", tensor.New(tensor.WithShape(2, 5), tensor.Of(tensor.Float32))))
	if err == nil || !strings.HasPrefix(err.Error(), "model.fc:") {
		t.Errorf("error = %v, want one starting with model.fc", err)
	}
}
