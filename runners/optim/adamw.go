package optim

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/razorgo/razor/internal/par"
	"github.com/razorgo/razor/models/nn"
	"gorgonia.org/tensor"
)

// AdamWConfig is torch.optim.AdamW's settings.
type AdamWConfig struct {
	// LR is the base learning rate.
	LR float64 `json:"lr" cfg:"lr"`
	// Betas are the decay rates of the running averages of the gradient
	// and of its square.
	Betas [2]float64 `json:"betas" cfg:"betas"`
	// Eps is added to the bias-corrected root of the squared-gradient
	// average, so that parameters with tiny gradients do not take huge
	// steps.
	Eps float64 `json:"eps" cfg:"eps"`
	// WeightDecay is the base decoupled weight decay: each step multiplies
	// the parameter by 1 - lr*WeightDecay before the Adam update.
	WeightDecay float64 `json:"weight_decay" cfg:"weight_decay"`
	// AMSGrad divides by the running maximum of the squared-gradient
	// average instead of the average itself.
	AMSGrad bool `json:"amsgrad" cfg:"amsgrad"`
}

// Defaults sets torch's defaults (lr 1e-3, betas (0.9, 0.999), eps 1e-8,
// weight_decay 1e-2, no AMSGrad); call it before decoding a config into the
// settings, so absent keys mean what they mean to torch.
func (c *AdamWConfig) Defaults() {
	*c = AdamWConfig{LR: 1e-3, Betas: [2]float64{0.9, 0.999}, Eps: 1e-8, WeightDecay: 1e-2}
}

// adamwSlot is one parameter's optimizer state, torch's state[p]: the
// running averages and the number of steps the parameter has taken.
type adamwSlot struct {
	expAvg, expAvgSq, maxExpAvgSq []float32
	step                          int
}

// AdamW is Adam with decoupled weight decay, equal to torch.optim.AdamW of
// PyTorch 1.13 (its default single-tensor path) step for step. For each
// parameter p with gradient g, learning rate lr, weight decay wd, taking
// its t-th step:
//
//	p = p * (1 - lr*wd)
//	m = b1*m + (1-b1)*g
//	v = b2*v + (1-b2)*g*g
//	vmax = max(vmax, v) and v = vmax, with AMSGrad
//	p = p + (-lr/(1-b1^t)) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
//
// As in torch, the scalars (1 - lr*wd, the bias corrections, the step
// size) are computed in float64 and rounded to float32, and the tensor
// arithmetic is float32 in torch's order, with fused multiply-adds where
// torch's CPU kernels have them (the updates of m and v).
//
// As with SGD, state is kept by parameter name, because the parameters used
// change from one iteration to the next in a supernet, and a parameter whose
// gradient is nil is skipped: it is not moved, not decayed, and its step
// count and averages stay as they were, as torch skips a .grad of None.
// Each parameter counts its own steps, so the bias corrections of a
// parameter used on every other iteration follow its own count. See SGD for
// how ZeroGrad(true) and ZeroGrad(false) differ for unused parameters.
type AdamW struct {
	paramGroups
	cfg AdamWConfig
	// state holds the parameters that have taken a step; with
	// zero-filled gradients these are the ones every later step moves.
	state map[string]*adamwSlot
	items []adamwUpdate
}

// NewAdamW builds an AdamW optimizer over params (normally the root
// module's NamedParameters), applying paramwise (nil for none) to give each
// parameter its learning-rate and weight-decay multipliers. Settings torch
// refuses are refused with torch's message.
func NewAdamW(params []*nn.Param, cfg AdamWConfig, paramwise *Paramwise) (*AdamW, error) {
	// Written as !(ok) so that NaN fails too, as it does in torch.
	switch {
	case !(cfg.LR >= 0):
		return nil, fmt.Errorf("AdamW: invalid learning rate: %v", cfg.LR)
	case !(cfg.Eps >= 0):
		return nil, fmt.Errorf("AdamW: invalid epsilon value: %v", cfg.Eps)
	case !(cfg.Betas[0] >= 0 && cfg.Betas[0] < 1):
		return nil, fmt.Errorf("AdamW: invalid beta parameter at index 0: %v", cfg.Betas[0])
	case !(cfg.Betas[1] >= 0 && cfg.Betas[1] < 1):
		return nil, fmt.Errorf("AdamW: invalid beta parameter at index 1: %v", cfg.Betas[1])
	case !(cfg.WeightDecay >= 0):
		return nil, fmt.Errorf("AdamW: invalid weight_decay value: %v", cfg.WeightDecay)
	}
	pg, err := newParamGroups("AdamW", params, cfg.LR, cfg.WeightDecay, paramwise)
	if err != nil {
		return nil, err
	}
	return &AdamW{paramGroups: pg, cfg: cfg, state: map[string]*adamwSlot{}}, nil
}

// adamwUpdate is one parameter's step: its weights, gradient and averages
// (mx nil without AMSGrad), and the float32 scalars torch would use.
type adamwUpdate struct {
	w, g, m, v, mx []float32
	// decay is 1 - lr*wd, stepSize is -lr/(1-b1^t), bc2Sqrt is
	// sqrt(1-b2^t).
	decay, stepSize, bc2Sqrt float32
}

// Step updates every parameter that has a gradient, as the type's
// documentation describes. The arithmetic is elementwise, so the
// parameters' elements are split evenly across GOMAXPROCS goroutines; each
// element sees the same float32 operations in the same order whatever the
// split.
func (o *AdamW) Step() {
	b1, b2 := o.cfg.Betas[0], o.cfg.Betas[1]
	items := o.items[:0]
	total := 0
	for _, e := range o.entries {
		g := e.p.GradData()
		if g == nil {
			continue
		}
		s, ok := o.state[e.name]
		if !ok {
			s = &adamwSlot{expAvg: make([]float32, len(g)), expAvgSq: make([]float32, len(g))}
			if o.cfg.AMSGrad {
				s.maxExpAvgSq = make([]float32, len(g))
			}
			o.state[e.name] = s
		}
		s.step++
		grp := o.groups[e.group]
		// torch computes these in Python floats (float64) and each tensor
		// op rounds its scalar to the tensor's float32.
		t := float64(s.step)
		bc1 := 1 - math.Pow(b1, t)
		bc2 := 1 - math.Pow(b2, t)
		items = append(items, adamwUpdate{
			w: e.p.Data(), g: g, m: s.expAvg, v: s.expAvgSq, mx: s.maxExpAvgSq,
			decay:    float32(1 - grp.lr*grp.weightDecay),
			stepSize: float32(-(grp.lr / bc1)),
			bc2Sqrt:  float32(math.Sqrt(bc2)),
		})
		total += len(g)
	}
	o.items = items
	if total < parallelElements {
		o.apply(items, 0, total)
		return
	}
	par.For(total, func(_, lo, hi int) { o.apply(items, lo, hi) })
}

// apply steps elements [lo, hi) of the concatenation of items.
func (o *AdamW) apply(items []adamwUpdate, lo, hi int) {
	b1, keep1 := float32(o.cfg.Betas[0]), float64(float32(1-o.cfg.Betas[0]))
	b2, keep2 := float32(o.cfg.Betas[1]), float32(1-o.cfg.Betas[1])
	eps := float32(o.cfg.Eps)
	off := 0
	for _, it := range items {
		n := len(it.g)
		a, b := max(lo-off, 0), min(hi-off, n)
		off += n
		if a >= b {
			continue
		}
		w := it.w[a:b]
		g, m, v := it.g[a:b][:len(w)], it.m[a:b][:len(w)], it.v[a:b][:len(w)]
		var mx []float32
		if it.mx != nil {
			mx = it.mx[a:b][:len(w)]
		}
		decay, stepSize, bc2Sqrt := it.decay, it.stepSize, it.bc2Sqrt
		for i, wi := range w {
			// The conversion keeps Go (GOAMD64=v3, arm64) from fusing this
			// product into the final add; torch rounds it on its own.
			wi = float32(wi * decay)
			gi := g[i]
			// torch's vectorised add(alpha) is a fused multiply-add. The
			// product of two float32s is exact in float64, so this rounds
			// only the sum (twice: to float64, then to float32).
			mi := float32(math.FMA(keep1, float64(gi), float64(m[i]*b1)))
			m[i] = mi
			// torch's addcmul (self + value*t1*t2) is compiled with the last
			// multiply and the add contracted into one fused multiply-add.
			vi := float32(math.FMA(float64(keep2*gi), float64(gi), float64(v[i]*b2)))
			v[i] = vi
			if mx != nil {
				// torch.maximum, NaN included: a NaN on either side wins.
				if vi > mx[i] || vi != vi {
					mx[i] = vi
				}
				vi = mx[i]
			}
			den := float32(float32(math.Sqrt(float64(vi)))/bc2Sqrt) + eps
			w[i] = wi + float32(stepSize*mi)/den
		}
	}
}

// ZeroFillStepped gives a zero gradient to every parameter that has taken
// a step and has none (see paramGroups.zeroFill).
func (o *AdamW) ZeroFillStepped() { o.zeroFill(func(name string) bool { return o.state[name] != nil }) }

// Prefixes of the AdamW state tensors' keys in StateDict, named as torch
// names the state entries.
const (
	expAvgPrefix      = "exp_avg/"
	expAvgSqPrefix    = "exp_avg_sq/"
	maxExpAvgSqPrefix = "max_exp_avg_sq/"
)

// AdamWState is the non-tensor part of the optimizer state, for
// checkpoints.
type AdamWState struct {
	// Type is "AdamW".
	Type string `json:"type"`
	// Config is the optimizer's settings.
	Config AdamWConfig `json:"config"`
	// LRs are the current learning rates, by group in the order
	// parameters first appear.
	LRs []float64 `json:"lrs"`
	// Steps is how many steps each parameter that has stepped has taken
	// (torch's state['step']); it names exactly the parameters with saved
	// averages.
	Steps map[string]int `json:"steps,omitempty"`
}

// StateDict returns the running averages, keyed "exp_avg/", "exp_avg_sq/"
// and, with AMSGrad, "max_exp_avg_sq/" + the parameter name (copies), and
// the non-tensor state. Only parameters that have taken a step have state.
func (o *AdamW) StateDict() (map[string]*tensor.Dense, json.RawMessage, error) {
	ts := make(map[string]*tensor.Dense, 3*len(o.state))
	st := AdamWState{Type: "AdamW", Config: o.cfg, Steps: make(map[string]int, len(o.state))}
	for _, e := range o.entries {
		s, ok := o.state[e.name]
		if !ok {
			continue
		}
		save := func(prefix string, b []float32) {
			ts[prefix+e.name] = tensor.New(tensor.WithShape(e.p.Shape().Clone()...), tensor.WithBacking(append([]float32(nil), b...)))
		}
		save(expAvgPrefix, s.expAvg)
		save(expAvgSqPrefix, s.expAvgSq)
		if o.cfg.AMSGrad {
			save(maxExpAvgSqPrefix, s.maxExpAvgSq)
		}
		st.Steps[e.name] = s.step
	}
	for _, g := range o.groups {
		st.LRs = append(st.LRs, g.lr)
	}
	js, err := json.Marshal(st)
	if err != nil {
		return nil, nil, fmt.Errorf("AdamW state: %w", err)
	}
	return ts, js, nil
}

// LoadStateDict restores what StateDict returned; parameters without saved
// state start fresh. Anything inconsistent is an error naming it, and
// leaves the optimizer as it was: a tensor for an unknown parameter or
// under an unknown key, a tensor of the wrong size, a stepped parameter
// missing one of its averages (or averages without a step count), or a
// state from another optimizer type or differently configured.
func (o *AdamW) LoadStateDict(ts map[string]*tensor.Dense, state json.RawMessage) error {
	var st AdamWState
	if err := json.Unmarshal(state, &st); err != nil {
		return fmt.Errorf("AdamW state: %w", err)
	}
	if st.Type != "AdamW" {
		return fmt.Errorf("AdamW state: saved optimizer type is %q, want \"AdamW\"", st.Type)
	}
	if st.Config != o.cfg {
		return fmt.Errorf("AdamW state: saved settings %+v differ from this optimizer's %+v", st.Config, o.cfg)
	}
	if len(st.LRs) != len(o.groups) {
		return fmt.Errorf("AdamW state: %d saved learning rates for %d parameter groups", len(st.LRs), len(o.groups))
	}
	byName := make(map[string]*nn.Param, len(o.entries))
	for _, e := range o.entries {
		byName[e.name] = e.p
	}
	prefixes := []string{expAvgPrefix, expAvgSqPrefix}
	if o.cfg.AMSGrad {
		prefixes = append(prefixes, maxExpAvgSqPrefix)
	}
	slots := make(map[string]*adamwSlot, len(st.Steps))
	names := make([]string, 0, len(st.Steps))
	for name := range st.Steps {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p, ok := byName[name]
		if !ok {
			return fmt.Errorf("AdamW state: step count for %q, which this optimizer does not have", name)
		}
		if n := st.Steps[name]; n < 1 {
			return fmt.Errorf("AdamW state: step count %d for %q, want at least 1", n, name)
		}
		s := &adamwSlot{step: st.Steps[name]}
		for _, prefix := range prefixes {
			t, ok := ts[prefix+name]
			if !ok {
				return fmt.Errorf("AdamW state: %q has a step count but no %s tensor", name, strings.TrimSuffix(prefix, "/"))
			}
			if t.Dtype() != tensor.Float32 || t.Shape().TotalSize() != p.Shape().TotalSize() {
				return fmt.Errorf("AdamW state: %s%s is %v %v, want float32 %v", prefix, name, t.Dtype(), t.Shape(), p.Shape())
			}
			b := append([]float32(nil), t.Float32s()...)
			switch prefix {
			case expAvgPrefix:
				s.expAvg = b
			case expAvgSqPrefix:
				s.expAvgSq = b
			default:
				s.maxExpAvgSq = b
			}
		}
		slots[name] = s
	}
	// Every tensor must have been claimed above; name the first that was
	// not, in a stable order.
	keys := make([]string, 0, len(ts))
	for k := range ts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		prefix, name, ok := splitStateKey(k, prefixes)
		switch {
		case !ok:
			return fmt.Errorf("AdamW state: unexpected tensor %q (want one of %s followed by a parameter name)", k, strings.Join(prefixes, ", "))
		case byName[name] == nil:
			return fmt.Errorf("AdamW state: %s tensor for %q, which this optimizer does not have", strings.TrimSuffix(prefix, "/"), name)
		case slots[name] == nil:
			return fmt.Errorf("AdamW state: %s tensor for %q, which has no step count", strings.TrimSuffix(prefix, "/"), name)
		}
	}
	o.state = slots
	for i, lr := range st.LRs {
		o.groups[i].lr = lr
	}
	return nil
}

// splitStateKey splits a StateDict key into its prefix (one of prefixes)
// and parameter name. No prefix is a prefix of another ("exp_avg/" and
// "exp_avg_sq/" part at the slash), so at most one matches.
func splitStateKey(k string, prefixes []string) (prefix, name string, ok bool) {
	for _, p := range prefixes {
		if name, ok := strings.CutPrefix(k, p); ok {
			return p, name, true
		}
	}
	return "", "", false
}
