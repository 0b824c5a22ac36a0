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

type adamwFixtureState struct {
	ExpAvg      map[string][]float32 `json:"exp_avg"`
	ExpAvgSq    map[string][]float32 `json:"exp_avg_sq"`
	MaxExpAvgSq map[string][]float32 `json:"max_exp_avg_sq"`
	Steps       map[string]int       `json:"steps"`
}

type adamwFixtureCase struct {
	Name      string            `json:"name"`
	Config    AdamWConfig       `json:"config"`
	Paramwise Paramwise         `json:"paramwise"`
	SetToNone bool              `json:"set_to_none"`
	Params    []fixtureParam    `json:"params"`
	Steps     []fixtureStep     `json:"steps"`
	State     adamwFixtureState `json:"state"`
}

func loadAdamWCases(t *testing.T) []adamwFixtureCase {
	t.Helper()
	js, err := os.ReadFile(filepath.Join("testdata", "adamw.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []adamwFixtureCase `json:"cases"`
	}
	if err := json.Unmarshal(js, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) == 0 {
		t.Fatal("no cases in testdata/adamw.json")
	}
	return f.Cases
}

// relDiff is |a-b| relative to |b|, or absolute below 1e-30 (where
// relative differences say nothing).
func relDiff(a, b float32) float64 {
	d := math.Abs(float64(a) - float64(b))
	return d / math.Max(math.Abs(float64(b)), 1e-30)
}

// feedAdamW clears the gradients as the case says, feeds step's gradients
// (leaving out skip), sets the learning rates and steps.
func feedAdamW(t *testing.T, params map[string]*nn.Param, o *AdamW, setToNone bool, step fixtureStep, skip string) {
	t.Helper()
	o.ZeroGrad(setToNone)
	for name, g := range step.Grads {
		if g == nil || name == skip {
			continue
		}
		if err := params[name].AccumulateGrad(g); err != nil {
			t.Fatal(err)
		}
	}
	o.SetLR(func(initial float64) float64 { return initial * step.LRFactor })
	o.Step()
}

// TestAdamWMatchesTorch replays the fixture's gradients through AdamW and
// compares every parameter after every step, and the final state, with
// torch.optim.AdamW: relative difference at most 1e-6 (the arithmetic
// mirrors torch's, so the difference seen is expected to be far smaller;
// the test logs it).
func TestAdamWMatchesTorch(t *testing.T) {
	const tol = 1e-6
	worst := 0.0
	for _, tc := range loadAdamWCases(t) {
		t.Run(tc.Name, func(t *testing.T) {
			root, params := buildTree(t, tc.Params)
			opt, err := NewAdamW(root.NamedParameters(), tc.Config, &tc.Paramwise)
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, got, want []float32) {
				t.Helper()
				if len(got) != len(want) {
					t.Fatalf("%s has %d values, torch %d", what, len(got), len(want))
				}
				for i := range want {
					d := relDiff(got[i], want[i])
					worst = max(worst, d)
					if !(d <= tol) {
						t.Fatalf("%s[%d] = %v, torch has %v (relative difference %.3g)", what, i, got[i], want[i], d)
					}
				}
			}
			for s, step := range tc.Steps {
				feedAdamW(t, params, opt, tc.SetToNone, step, "")
				for name, want := range step.After {
					check(fmt.Sprintf("step %d: %s", s, name), params[name].Data(), want)
				}
			}
			ts, js, err := opt.StateDict()
			if err != nil {
				t.Fatal(err)
			}
			var st AdamWState
			if err := json.Unmarshal(js, &st); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(st.Steps) != fmt.Sprint(tc.State.Steps) {
				t.Errorf("step counts %v, torch has %v", st.Steps, tc.State.Steps)
			}
			want := len(tc.State.ExpAvg) + len(tc.State.ExpAvgSq) + len(tc.State.MaxExpAvgSq)
			if len(ts) != want {
				t.Errorf("%d state tensors, torch has %d", len(ts), want)
			}
			for prefix, m := range map[string]map[string][]float32{
				expAvgPrefix: tc.State.ExpAvg, expAvgSqPrefix: tc.State.ExpAvgSq, maxExpAvgSqPrefix: tc.State.MaxExpAvgSq,
			} {
				for name, w := range m {
					got := ts[prefix+name]
					if got == nil {
						t.Errorf("no %s%s", prefix, name)
						continue
					}
					check(prefix+name, got.Float32s(), w)
				}
			}
		})
	}
	t.Logf("largest relative difference from torch: %.3g", worst)
}

// TestAdamWFixtureCoversSkipping guards the fixture itself: the skipped
// parameter must have taken fewer steps than the others, or the test above
// would not check per-parameter bias corrections.
func TestAdamWFixtureCoversSkipping(t *testing.T) {
	for _, tc := range loadAdamWCases(t) {
		lo, hi := math.MaxInt, 0
		for _, n := range tc.State.Steps {
			lo, hi = min(lo, n), max(hi, n)
		}
		if lo >= hi {
			t.Errorf("%s: every parameter took %d steps", tc.Name, hi)
		}
	}
}

func TestNewAdamWRefusesBadSettings(t *testing.T) {
	root := &node{}
	root.AddParam("w", nn.KindWeight, 2)
	ps := root.NamedParameters()
	var ok AdamWConfig
	ok.Defaults()
	for _, tc := range []struct {
		name   string
		change func(*AdamWConfig)
		want   string
	}{
		{"negative lr", func(c *AdamWConfig) { c.LR = -1 }, "AdamW: invalid learning rate: -1"},
		{"NaN lr", func(c *AdamWConfig) { c.LR = math.NaN() }, "invalid learning rate: NaN"},
		{"negative eps", func(c *AdamWConfig) { c.Eps = -1e-8 }, "invalid epsilon value: -1e-08"},
		{"beta1 one", func(c *AdamWConfig) { c.Betas[0] = 1 }, "invalid beta parameter at index 0: 1"},
		{"beta2 too big", func(c *AdamWConfig) { c.Betas[1] = 1.5 }, "AdamW: invalid beta parameter at index 1: 1.5"},
		{"beta2 negative", func(c *AdamWConfig) { c.Betas[1] = -0.1 }, "invalid beta parameter at index 1: -0.1"},
		{"negative decay", func(c *AdamWConfig) { c.WeightDecay = -0.01 }, "invalid weight_decay value: -0.01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.change(&cfg)
			if _, err := NewAdamW(ps, cfg, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := NewAdamW(ps, ok, nil); err != nil {
		t.Errorf("defaults refused: %v", err)
	}
	other := &node{}
	other.AddParam("w", nn.KindWeight, 2)
	if _, err := NewAdamW(append(ps, other.NamedParameters()...), ok, nil); err == nil || !strings.Contains(err.Error(), `named "w"`) {
		t.Errorf("duplicate names: error = %v", err)
	}
}

func TestAdamWDefaults(t *testing.T) {
	var c AdamWConfig
	c.Defaults()
	if want := (AdamWConfig{LR: 1e-3, Betas: [2]float64{0.9, 0.999}, Eps: 1e-8, WeightDecay: 1e-2}); c != want {
		t.Errorf("Defaults() = %+v, want torch's %+v", c, want)
	}
}

// TestAdamWResumeEqualsUninterrupted saves the state mid-run, restores it
// into a fresh optimizer over a copy of the parameters, and checks that
// both continue bit-identically, including a parameter that had no state
// yet and, with AMSGrad, the running maximum.
func TestAdamWResumeEqualsUninterrupted(t *testing.T) {
	for _, tc := range loadAdamWCases(t) {
		t.Run(tc.Name, func(t *testing.T) {
			runA, paramsA := buildTree(t, tc.Params)
			optA, err := NewAdamW(runA.NamedParameters(), tc.Config, &tc.Paramwise)
			if err != nil {
				t.Fatal(err)
			}
			// Before the save, head.fc.bias is never used, so it has no state.
			for _, s := range tc.Steps[:3] {
				feedAdamW(t, paramsA, optA, tc.SetToNone, s, "head.fc.bias")
			}
			ts, st, err := optA.StateDict()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := ts[expAvgPrefix+"head.fc.bias"]; ok {
				t.Fatalf("an unused parameter has state")
			}
			if tc.Config.AMSGrad != (ts[maxExpAvgSqPrefix+"head.fc.weight"] != nil) {
				t.Fatalf("AMSGrad %v, but max_exp_avg_sq saved: %v", tc.Config.AMSGrad, !tc.Config.AMSGrad)
			}

			var ps []fixtureParam
			for _, fp := range tc.Params {
				fp.Value = append([]float32(nil), paramsA[fp.Name].Data()...)
				ps = append(ps, fp)
			}
			runB, paramsB := buildTree(t, ps)
			optB, err := NewAdamW(runB.NamedParameters(), tc.Config, &tc.Paramwise)
			if err != nil {
				t.Fatal(err)
			}
			if err := optB.LoadStateDict(ts, st); err != nil {
				t.Fatal(err)
			}
			if !tc.SetToNone {
				optB.ZeroFillStepped()
			}
			if want := tc.Config.LR * tc.Steps[2].LRFactor; optB.LR() != optA.LR() || optA.LR() != want {
				t.Errorf("restored lr %v, original %v, want %v", optB.LR(), optA.LR(), want)
			}
			// StateDict returned copies: stepping A must not change them.
			saved := append([]float32(nil), ts[expAvgPrefix+"head.fc.weight"].Float32s()...)
			for _, s := range tc.Steps[3:] {
				feedAdamW(t, paramsA, optA, tc.SetToNone, s, "")
				feedAdamW(t, paramsB, optB, tc.SetToNone, s, "")
			}
			if got := ts[expAvgPrefix+"head.fc.weight"].Float32s(); fmt.Sprint(got) != fmt.Sprint(saved) {
				t.Errorf("the saved exp_avg changed as the optimizer stepped")
			}
			for name, pa := range paramsA {
				a, b := pa.Data(), paramsB[name].Data()
				for i := range a {
					if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
						t.Fatalf("%s[%d]: resumed %v, uninterrupted %v", name, i, b[i], a[i])
					}
				}
			}
			_, stA, _ := optA.StateDict()
			_, stB, _ := optB.StateDict()
			if string(stA) != string(stB) {
				t.Errorf("state after resuming %s, uninterrupted %s", stB, stA)
			}
		})
	}
}

func TestAdamWLoadStateDictRefusesMismatches(t *testing.T) {
	root := &node{}
	w := root.AddParam("w", nn.KindWeight, 2)
	root.AddParam("v", nn.KindWeight, 2)
	cfg := AdamWConfig{LR: 0.1, Betas: [2]float64{0.9, 0.999}, Eps: 1e-8, WeightDecay: 0.01, AMSGrad: true}
	o, err := NewAdamW(root.NamedParameters(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.AccumulateGrad([]float32{1, 2})
	o.Step()
	ts, st, err := o.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 3 || string(st) != `{"type":"AdamW","config":{"lr":0.1,"betas":[0.9,0.999],"eps":1e-8,"weight_decay":0.01,"amsgrad":true},"lrs":[0.1],"steps":{"w":1}}` {
		t.Fatalf("StateDict gave %d tensors and %s", len(ts), st)
	}
	good := ts[expAvgPrefix+"w"]
	with := func(k string, t *tensor.Dense) map[string]*tensor.Dense {
		m := map[string]*tensor.Dense{}
		for k, v := range ts {
			m[k] = v
		}
		if t == nil {
			delete(m, k)
		} else {
			m[k] = t
		}
		return m
	}
	otherCfg := `{"type":"AdamW","config":{"lr":0.1,"betas":[0.9,0.99],"eps":1e-8,"weight_decay":0.01,"amsgrad":true},"lrs":[0.1],"steps":{"w":1}}`
	steps := func(s string) string {
		return strings.Replace(string(st), `"steps":{"w":1}`, `"steps":`+s, 1)
	}
	for _, tc := range []struct {
		name  string
		ts    map[string]*tensor.Dense
		state string
		want  string
	}{
		{"tensor for unknown param", with(expAvgPrefix+"u", good), string(st), `exp_avg tensor for "u", which this optimizer does not have`},
		{"steps for unknown param", ts, steps(`{"w":1,"u":2}`), `step count for "u", which this optimizer does not have`},
		{"tensor without steps", with(expAvgSqPrefix+"v", good), string(st), `exp_avg_sq tensor for "v", which has no step count`},
		{"missing average", with(maxExpAvgSqPrefix+"w", nil), string(st), `"w" has a step count but no max_exp_avg_sq tensor`},
		{"zero steps", ts, steps(`{"w":0}`), `step count 0 for "w"`},
		{"foreign key", with("momentum_buffer/w", good), string(st), `unexpected tensor "momentum_buffer/w"`},
		{"wrong size", with(expAvgSqPrefix+"w", tensor.New(tensor.WithShape(3), tensor.WithBacking([]float32{1, 2, 3}))), string(st), "exp_avg_sq/w is float32 (3), want float32 (2)"},
		{"wrong type", with(expAvgPrefix+"w", tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{1, 2}))), string(st), "exp_avg/w is float64"},
		{"other optimizer", ts, `{"type":"SGD"}`, `saved optimizer type is "SGD"`},
		{"other settings", ts, otherCfg, "differ"},
		{"other groups", ts, strings.Replace(string(st), `"lrs":[0.1]`, `"lrs":[0.1,0.2]`, 1), "2 saved learning rates for 1 parameter groups"},
		{"not json", ts, `{`, "AdamW state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := o.LoadStateDict(tc.ts, json.RawMessage(tc.state)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	// A refused load leaves the optimizer as it was.
	if _, again, _ := o.StateDict(); string(again) != string(st) {
		t.Errorf("state after refused loads %s, before %s", again, st)
	}
	// Without AMSGrad, a max_exp_avg_sq tensor is foreign.
	cfg.AMSGrad = false
	o2, err := NewAdamW(root.NamedParameters(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	st2 := strings.Replace(string(st), `"amsgrad":true`, `"amsgrad":false`, 1)
	if err := o2.LoadStateDict(ts, json.RawMessage(st2)); err == nil || !strings.Contains(err.Error(), `unexpected tensor "max_exp_avg_sq/w"`) {
		t.Errorf("max_exp_avg_sq without AMSGrad: error = %v", err)
	}
}

// TestAdamWOneStep checks one step against the formula worked out by hand
// in float64: the first step of Adam moves each element by about lr in the
// direction against its gradient, whatever the gradient's size.
func TestAdamWOneStep(t *testing.T) {
	root := &node{}
	w := root.AddParam("w", nn.KindWeight, 3)
	b := root.AddParam("b", nn.KindBias, 1)
	o, err := NewAdamW(root.NamedParameters(), AdamWConfig{LR: 0.1, Betas: [2]float64{0.9, 0.999}, Eps: 1e-8, WeightDecay: 0.5},
		&Paramwise{BiasLRMult: f(2), BiasDecayMult: f(0)})
	if err != nil {
		t.Fatal(err)
	}
	if lr, wd, ok := o.ParamLR("b"); !ok || lr != 0.2 || wd != 0 {
		t.Errorf("bias lr, wd = %v, %v, %v; want 0.2, 0", lr, wd, ok)
	}
	copy(w.Data(), []float32{1, -2, 0.5})
	w.AccumulateGrad([]float32{1e-3, -50, 0})
	b.AccumulateGrad([]float32{3})
	o.Step()
	// p*(1-0.05) - 0.1*sign(g) (m/sqrt(v) = g/|g| after one step, bias
	// corrected); a zero gradient moves the parameter by decay alone.
	for i, want := range []float64{0.95 - 0.1, -1.9 + 0.1, 0.475} {
		if got := w.Data()[i]; math.Abs(float64(got)-want) > 1e-6 {
			t.Errorf("w[%d] = %v, want %v", i, got, want)
		}
	}
	if got := b.Data()[0]; math.Abs(float64(got)+0.2) > 1e-6 {
		t.Errorf("b = %v, want -0.2 (lr 0.2, no decay)", got)
	}
	// A parameter without a gradient is skipped: neither decayed nor
	// counted.
	before := w.Data()[0]
	o.ZeroGrad(true)
	b.AccumulateGrad([]float32{3})
	o.Step()
	if w.Data()[0] != before {
		t.Errorf("w moved without a gradient: %v -> %v", before, w.Data()[0])
	}
	_, js, _ := o.StateDict()
	if !strings.Contains(string(js), `"steps":{"b":2,"w":1}`) {
		t.Errorf("state %s, want steps b 2 and w 1", js)
	}
}

// TestAdamWStepSplitIsExact steps parameters large enough for Step to
// split their elements across goroutines, with one, two and three workers,
// and requires bit-identical weights and state.
func TestAdamWStepSplitIsExact(t *testing.T) {
	sizes := []int{20011, 7, 30001, 15000, 1}
	for _, cfg := range []AdamWConfig{
		{LR: 0.01, Betas: [2]float64{0.9, 0.999}, Eps: 1e-8, WeightDecay: 0.05},
		{LR: 0.01, Betas: [2]float64{0.8, 0.99}, Eps: 1e-6, WeightDecay: 0.01, AMSGrad: true},
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
			opt, err := NewAdamW(root.NamedParameters(), cfg, nil)
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
						g[j] = float32(math.Cos(float64(step*7919+i*31+j))) / float32(step+1)
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
				for _, prefix := range []string{expAvgPrefix, expAvgSqPrefix, maxExpAvgSqPrefix} {
					if b := ts[prefix+name]; b != nil {
						all = append(all, b.Float32s()...)
					}
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
