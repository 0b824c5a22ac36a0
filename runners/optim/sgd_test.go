package optim

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/razorgo/razor/models/nn"
	"gorgonia.org/tensor"
)

type fixtureParam struct {
	Name      string    `json:"name"`
	Shape     []int     `json:"shape"`
	Kind      string    `json:"kind"`
	Depthwise bool      `json:"depthwise"`
	Value     []float32 `json:"value"`
}

type fixtureStep struct {
	LRFactor float64              `json:"lr_factor"`
	Grads    map[string][]float32 `json:"grads"`
	After    map[string][]float32 `json:"after"`
}

type fixtureCase struct {
	Name      string               `json:"name"`
	Config    SGDConfig            `json:"config"`
	Paramwise Paramwise            `json:"paramwise"`
	SetToNone bool                 `json:"set_to_none"`
	Params    []fixtureParam       `json:"params"`
	Steps     []fixtureStep        `json:"steps"`
	Momentum  map[string][]float32 `json:"momentum"`
}

// node is a bare module for building trees with arbitrary names in tests.
type node struct{ nn.Base }

// buildTree registers each parameter under its dotted name in a tree of bare
// modules and returns the root and the parameters by name.
func buildTree(t *testing.T, ps []fixtureParam) (*node, map[string]*nn.Param) {
	t.Helper()
	root := &node{}
	byName := map[string]*nn.Param{}
	for _, fp := range ps {
		parts := strings.Split(fp.Name, ".")
		m := root
		for _, part := range parts[:len(parts)-1] {
			c, _ := m.Child(part).(*node)
			if c == nil {
				c = &node{}
				m.AddChild(part, c)
			}
			m = c
		}
		kind := map[string]nn.Kind{"weight": nn.KindWeight, "bias": nn.KindBias, "norm": nn.KindNorm}[fp.Kind]
		p := m.AddParam(parts[len(parts)-1], kind, fp.Shape...)
		if fp.Depthwise {
			p.MarkDepthwise()
		}
		copy(p.Data(), fp.Value)
		if p.Name() != fp.Name {
			t.Fatalf("param registered as %q, want %q", p.Name(), fp.Name)
		}
		byName[fp.Name] = p
	}
	return root, byName
}

func loadCases(t *testing.T) []fixtureCase {
	t.Helper()
	js, err := os.ReadFile(filepath.Join("testdata", "sgd.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []fixtureCase `json:"cases"`
	}
	if err := json.Unmarshal(js, &f); err != nil {
		t.Fatal(err)
	}
	return f.Cases
}

// closeTo allows for the one-rounding differences between PyTorch's
// vectorised kernels (fused multiply-add) and plain float32 arithmetic.
func closeTo(a, b float32) bool {
	return math.Abs(float64(a)-float64(b)) <= 1e-6+1e-6*math.Abs(float64(b))
}

// TestSGDMatchesTorch replays the fixture's gradients through SGD and
// compares every parameter after every step, and the final momentum
// buffers, with torch.optim.SGD (tolerance 1e-6 absolute + 1e-6 relative).
func TestSGDMatchesTorch(t *testing.T) {
	for _, tc := range loadCases(t) {
		t.Run(tc.Name, func(t *testing.T) {
			root, params := buildTree(t, tc.Params)
			opt, err := NewSGD(root.NamedParameters(), tc.Config, &tc.Paramwise)
			if err != nil {
				t.Fatal(err)
			}
			for s, step := range tc.Steps {
				opt.ZeroGrad(tc.SetToNone)
				for name, g := range step.Grads {
					if g == nil {
						continue
					}
					if err := params[name].AccumulateGrad(g); err != nil {
						t.Fatal(err)
					}
				}
				opt.SetLR(func(initial float64) float64 { return initial * step.LRFactor })
				opt.Step()
				for name, want := range step.After {
					got := params[name].Data()
					for i := range want {
						if !closeTo(got[i], want[i]) {
							t.Fatalf("step %d: %s[%d] = %v, torch has %v", s, name, i, got[i], want[i])
						}
					}
				}
			}
			ts, _, err := opt.StateDict()
			if err != nil {
				t.Fatal(err)
			}
			if len(ts) != len(tc.Momentum) {
				t.Errorf("%d momentum buffers, torch has %d", len(ts), len(tc.Momentum))
			}
			for name, want := range tc.Momentum {
				buf := ts[momentumPrefix+name]
				if buf == nil {
					t.Errorf("no momentum buffer for %s", name)
					continue
				}
				for i, w := range want {
					if !closeTo(buf.Float32s()[i], w) {
						t.Errorf("momentum %s[%d] = %v, torch has %v", name, i, buf.Float32s()[i], w)
					}
				}
			}
		})
	}
}

func TestNewSGDRefusesBadSettings(t *testing.T) {
	root := &node{}
	root.AddParam("w", nn.KindWeight, 2)
	ps := root.NamedParameters()
	for _, tc := range []struct {
		name string
		cfg  SGDConfig
		want string
	}{
		{"negative lr", SGDConfig{LR: -1}, "non-negative"},
		{"NaN momentum", SGDConfig{LR: 1, Momentum: math.NaN()}, "non-negative"},
		{"nesterov without momentum", SGDConfig{LR: 1, Nesterov: true}, "nesterov needs"},
		{"nesterov with dampening", SGDConfig{LR: 1, Momentum: 0.9, Dampening: 0.1, Nesterov: true}, "nesterov needs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewSGD(ps, tc.cfg, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	other := &node{}
	other.AddParam("w", nn.KindWeight, 2)
	if _, err := NewSGD(append(ps, other.NamedParameters()...), SGDConfig{LR: 1}, nil); err == nil || !strings.Contains(err.Error(), `named "w"`) {
		t.Errorf("duplicate names: error = %v", err)
	}
}

// TestSGDResumeEqualsUninterrupted saves the state mid-run, restores it
// into a fresh optimizer over a copy of the parameters, and checks that
// both continue identically, including a parameter that had no buffer yet.
func TestSGDResumeEqualsUninterrupted(t *testing.T) {
	tc := loadCases(t)[0]
	cfg := tc.Config
	runA, paramsA := buildTree(t, tc.Params)
	optA, err := NewSGD(runA.NamedParameters(), cfg, &tc.Paramwise)
	if err != nil {
		t.Fatal(err)
	}
	feed := func(params map[string]*nn.Param, o *SGD, step fixtureStep, skip string) {
		o.ZeroGrad(true)
		for name, g := range step.Grads {
			if g != nil && name != skip {
				params[name].AccumulateGrad(g)
			}
		}
		o.SetLR(func(initial float64) float64 { return initial * step.LRFactor })
		o.Step()
	}
	// Before the save, head.fc.bias is never used, so it has no buffer.
	for _, s := range tc.Steps[:3] {
		feed(paramsA, optA, s, "head.fc.bias")
	}
	ts, st, err := optA.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ts[momentumPrefix+"head.fc.bias"]; ok {
		t.Fatalf("an unused parameter has a momentum buffer")
	}

	var ps []fixtureParam
	for _, fp := range tc.Params {
		fp.Value = append([]float32(nil), paramsA[fp.Name].Data()...)
		ps = append(ps, fp)
	}
	runB, paramsB := buildTree(t, ps)
	optB, err := NewSGD(runB.NamedParameters(), cfg, &tc.Paramwise)
	if err != nil {
		t.Fatal(err)
	}
	if err := optB.LoadStateDict(ts, st); err != nil {
		t.Fatal(err)
	}
	if optB.LR() != optA.LR() || optA.LR() != cfg.LR*tc.Steps[2].LRFactor {
		t.Errorf("restored lr %v, original %v, want %v", optB.LR(), optA.LR(), cfg.LR*tc.Steps[2].LRFactor)
	}
	for _, s := range tc.Steps[3:] {
		feed(paramsA, optA, s, "")
		feed(paramsB, optB, s, "")
	}
	for name, pa := range paramsA {
		a, b := pa.Data(), paramsB[name].Data()
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%s[%d]: resumed %v, uninterrupted %v", name, i, b[i], a[i])
			}
		}
	}
}

func TestSGDLoadStateDictRefusesMismatches(t *testing.T) {
	root := &node{}
	w := root.AddParam("w", nn.KindWeight, 2)
	cfg := SGDConfig{LR: 0.1, Momentum: 0.9}
	o, err := NewSGD(root.NamedParameters(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.AccumulateGrad([]float32{1, 2})
	o.Step()
	ts, st, err := o.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	good := ts[momentumPrefix+"w"]
	for _, tc := range []struct {
		name  string
		ts    map[string]*tensor.Dense
		state string
		want  string
	}{
		{"unknown param", map[string]*tensor.Dense{momentumPrefix + "v": good}, string(st), `for "v"`},
		{"foreign key", map[string]*tensor.Dense{"w": good}, string(st), `unexpected tensor "w"`},
		{"wrong size", map[string]*tensor.Dense{momentumPrefix + "w": tensor.New(tensor.WithShape(3), tensor.WithBacking([]float32{1, 2, 3}))}, string(st), "want float32"},
		{"other optimizer", ts, `{"type":"Adam"}`, `"Adam"`},
		{"other settings", ts, `{"type":"SGD","config":{"lr":0.1,"momentum":0.5},"lrs":[0.1]}`, "differ"},
		{"other groups", ts, `{"type":"SGD","config":{"lr":0.1,"momentum":0.9},"lrs":[0.1,0.2]}`, "2 saved learning rates"},
		{"not json", ts, `{`, "SGD state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := o.LoadStateDict(tc.ts, json.RawMessage(tc.state)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestSGDLearningRates(t *testing.T) {
	root := &node{}
	w := root.AddParam("w", nn.KindWeight, 1)
	b := root.AddParam("b", nn.KindBias, 1)
	o, err := NewSGD(root.NamedParameters(), SGDConfig{LR: 0.1, WeightDecay: 0.01}, &Paramwise{BiasLRMult: f(2), BiasDecayMult: f(0)})
	if err != nil {
		t.Fatal(err)
	}
	o.SetLR(func(initial float64) float64 { return initial * 0.5 })
	if lr, wd, ok := o.ParamLR("b"); !ok || lr != 0.1 || wd != 0 {
		t.Errorf("bias lr, wd = %v, %v, %v; want 0.1, 0", lr, wd, ok)
	}
	if lr, wd, _ := o.ParamLR("w"); lr != 0.05 || wd != 0.01 {
		t.Errorf("weight lr, wd = %v, %v; want 0.05, 0.01", lr, wd)
	}
	if o.LR() != 0.05 {
		t.Errorf("LR() = %v, want the first parameter's 0.05", o.LR())
	}
	if _, _, ok := o.ParamLR("nope"); ok {
		t.Errorf("ParamLR found an unknown parameter")
	}
	// Without momentum or decay the update is p -= lr*g exactly.
	w.AccumulateGrad([]float32{1})
	b.AccumulateGrad([]float32{1})
	copy(w.Data(), []float32{1})
	o.Step()
	lr, wd, one := float32(0.05), float32(0.01), float32(1)
	if want := one + (-lr)*(one+wd*one); w.Data()[0] != want {
		t.Errorf("w after one step = %v, want %v", w.Data()[0], want)
	}
	if b.Data()[0] != -0.1 {
		t.Errorf("b after one step = %v, want -0.1", b.Data()[0])
	}
}

// TestSGDResumeKeepsZeroFilledParams checks the mmcv 1.x mode, zero-filled
// gradients, across a checkpoint: a parameter used only before the save
// keeps being stepped (here by weight decay alone, without momentum
// buffers to tell it apart) after ZeroFillStepped, exactly as in the
// uninterrupted run.
func TestSGDResumeKeepsZeroFilledParams(t *testing.T) {
	tc := loadCases(t)[0]
	cfg := tc.Config
	cfg.Momentum, cfg.Dampening, cfg.Nesterov, cfg.WeightDecay = 0, 0, false, 0.01
	runA, paramsA := buildTree(t, tc.Params)
	optA, err := NewSGD(runA.NamedParameters(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var only string
	for name := range tc.Steps[0].Grads {
		only = name
		break
	}
	feed := func(params map[string]*nn.Param, o *SGD, g []float32) {
		o.ZeroGrad(false)
		if g != nil {
			params[only].AccumulateGrad(g)
		}
		o.Step()
	}
	feed(paramsA, optA, tc.Steps[0].Grads[only])
	ts, st, err := optA.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	var ps []fixtureParam
	for _, fp := range tc.Params {
		fp.Value = append([]float32(nil), paramsA[fp.Name].Data()...)
		ps = append(ps, fp)
	}
	runB, paramsB := buildTree(t, ps)
	optB, err := NewSGD(runB.NamedParameters(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := optB.LoadStateDict(ts, st); err != nil {
		t.Fatal(err)
	}
	optB.ZeroFillStepped()
	before := append([]float32(nil), paramsB[only].Data()...)
	for range 3 {
		feed(paramsA, optA, nil)
		feed(paramsB, optB, nil)
	}
	a, b := paramsA[only].Data(), paramsB[only].Data()
	if a[0] == before[0] {
		t.Fatalf("%s did not decay in the uninterrupted run", only)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("%s[%d]: resumed %v, uninterrupted %v", only, i, b[i], a[i])
		}
	}
	for name, p := range paramsB {
		if name != only && p.GradData() != nil {
			t.Errorf("%s never took a step but has a gradient after ZeroFillStepped", name)
		}
	}
}

// TestSGDStepSplitIsExact steps parameters large enough for Step to split
// their elements across goroutines, with one, two and three workers, and
// requires bit-identical weights and momentum buffers: every element must
// be updated once, by the same arithmetic, whatever the split.
func TestSGDStepSplitIsExact(t *testing.T) {
	sizes := []int{20011, 7, 30001, 15000, 1}
	for _, cfg := range []SGDConfig{
		{LR: 0.1, Momentum: 0.9, WeightDecay: 1e-3},
		{LR: 0.1, Momentum: 0.9, Nesterov: true},
		{LR: 0.05},
	} {
		var results [][]float32
		for _, procs := range []int{1, 2, 3} {
			prev := runtime.GOMAXPROCS(procs)
			var ps []fixtureParam
			for i, n := range sizes {
				v := make([]float32, n)
				for j := range v {
					v[j] = float32(math.Sin(float64(i*100003 + j)))
				}
				ps = append(ps, fixtureParam{Name: fmt.Sprintf("m%d.weight", i), Shape: []int{n}, Kind: "weight", Value: v})
			}
			root, params := buildTree(t, ps)
			opt, err := NewSGD(root.NamedParameters(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			for step := range 3 {
				opt.ZeroGrad(true)
				for i, n := range sizes {
					if step == 1 && i == 2 {
						continue // no gradient: skipped this step
					}
					g := make([]float32, n)
					for j := range g {
						g[j] = float32(math.Cos(float64(step*7919 + i*31 + j)))
					}
					if err := params[fmt.Sprintf("m%d.weight", i)].AccumulateGrad(g); err != nil {
						t.Fatal(err)
					}
				}
				opt.Step()
			}
			runtime.GOMAXPROCS(prev)
			var all []float32
			ts, _, err := opt.StateDict()
			if err != nil {
				t.Fatal(err)
			}
			for i := range sizes {
				name := fmt.Sprintf("m%d.weight", i)
				all = append(all, params[name].Data()...)
				if b := ts[momentumPrefix+name]; b != nil {
					all = append(all, b.Float32s()...)
				}
			}
			results = append(results, all)
		}
		for k := 1; k < len(results); k++ {
			if len(results[k]) != len(results[0]) {
				t.Fatalf("%+v: %d workers left %d values, one worker %d", cfg, k+1, len(results[k]), len(results[0]))
			}
			for i := range results[0] {
				if math.Float32bits(results[k][i]) != math.Float32bits(results[0][i]) {
					t.Fatalf("%+v: %d workers give value %d = %v, one worker %v", cfg, k+1, i, results[k][i], results[0][i])
				}
			}
		}
	}
}
