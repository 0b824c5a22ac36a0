// Package optim holds optimizers that update nn.Param values from their
// gradients.
//
// Of razor it imports only models/nn and internal/par.
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

// SGDConfig is torch.optim.SGD's settings.
type SGDConfig struct {
	// LR is the base learning rate.
	LR float64 `json:"lr"`
	// Momentum is the momentum factor (0 disables momentum).
	Momentum float64 `json:"momentum"`
	// Dampening scales the gradient added to the momentum buffer by
	// (1 - Dampening) from the second step on.
	Dampening float64 `json:"dampening"`
	// WeightDecay is the base L2 penalty added to the gradient.
	WeightDecay float64 `json:"weight_decay"`
	// Nesterov switches to Nesterov momentum; it needs Momentum > 0 and
	// Dampening == 0.
	Nesterov bool `json:"nesterov"`
}

// group is a set of parameters sharing a learning rate and weight decay, as
// a PyTorch param_group.
type group struct {
	initialLR   float64
	lr          float64
	weightDecay float64
}

type entry struct {
	name  string
	p     *nn.Param
	group int
}

// SGD is stochastic gradient descent with momentum and weight decay, equal
// to torch.optim.SGD step for step (float32 arithmetic in the same order).
// For each parameter p with gradient g, weight decay wd, learning rate lr:
//
//	d = g + wd*p
//	buf = d on the parameter's first step, else momentum*buf + (1-dampening)*d
//	d = d + momentum*buf if Nesterov, else buf
//	p = p - lr*d
//
// Momentum buffers are kept by parameter name, because the parameters used
// change from one iteration to the next in a supernet. A parameter whose
// gradient is nil (nn.Param.Grad) is skipped: it is not moved and its
// momentum buffer is left as it was, exactly as PyTorch skips parameters
// whose .grad is None. Whether an unused parameter has a nil gradient
// depends on how gradients are cleared: ZeroGrad(true) makes them nil (what
// torch 2.x does by default), ZeroGrad(false) keeps zero-filled gradients on
// every parameter that was ever used, so those keep being stepped with a
// zero gradient (weight decay and momentum still move them), which is what
// mmcv 1.x on torch 1.x, and so the reference mmrazor supernet training, did.
type SGD struct {
	paramGroups
	cfg SGDConfig
	buf map[string][]float32
	// stepped holds the parameters that have taken a step: with
	// zero-filled gradients these are the ones every later step moves, so
	// a checkpoint keeps the set and ZeroFillStepped restores it.
	stepped map[string]bool
	items   []update
}

// NewSGD builds an SGD optimizer over params (normally the root module's
// NamedParameters), applying paramwise (nil for none) to give each parameter
// its learning-rate and weight-decay multipliers.
func NewSGD(params []*nn.Param, cfg SGDConfig, paramwise *Paramwise) (*SGD, error) {
	if cfg.LR < 0 || cfg.Momentum < 0 || cfg.WeightDecay < 0 || math.IsNaN(cfg.LR+cfg.Momentum+cfg.WeightDecay+cfg.Dampening) {
		return nil, fmt.Errorf("SGD: lr %v, momentum %v and weight_decay %v must be non-negative numbers", cfg.LR, cfg.Momentum, cfg.WeightDecay)
	}
	if cfg.Nesterov && (cfg.Momentum <= 0 || cfg.Dampening != 0) {
		return nil, fmt.Errorf("SGD: nesterov needs momentum > 0 and dampening 0, got momentum %v and dampening %v", cfg.Momentum, cfg.Dampening)
	}
	pg, err := newParamGroups("SGD", params, cfg.LR, cfg.WeightDecay, paramwise)
	if err != nil {
		return nil, err
	}
	return &SGD{paramGroups: pg, cfg: cfg, buf: map[string][]float32{}, stepped: map[string]bool{}}, nil
}

// Step updates every parameter that has a gradient, as the type's
// documentation describes. The arithmetic is elementwise, so the
// parameters' elements are split evenly across GOMAXPROCS goroutines; each
// element sees the same float32 operations in the same order whatever the
// split.
func (o *SGD) Step() {
	items := o.items[:0]
	total := 0
	for _, e := range o.entries {
		g := e.p.GradData()
		if g == nil {
			continue
		}
		o.stepped[e.name] = true
		grp := o.groups[e.group]
		it := update{w: e.p.Data(), g: g, wd: float32(grp.weightDecay), step: float32(-grp.lr)}
		if o.cfg.Momentum != 0 {
			buf, ok := o.buf[e.name]
			if !ok {
				buf = make([]float32, len(g))
				o.buf[e.name] = buf
				it.first = true
			}
			it.buf = buf
		}
		items = append(items, it)
		total += len(g)
	}
	o.items = items
	if total < parallelElements {
		o.apply(items, 0, total)
		return
	}
	par.For(total, func(_, lo, hi int) { o.apply(items, lo, hi) })
}

// parallelElements is the size below which Step stays on one goroutine.
const parallelElements = 1 << 15

// update is one parameter's step: its weights, gradient, momentum buffer
// (nil without momentum; first when the buffer is new), weight decay and
// -lr.
type update struct {
	w, g, buf []float32
	first     bool
	wd, step  float32
}

// apply steps elements [lo, hi) of the concatenation of items.
func (o *SGD) apply(items []update, lo, hi int) {
	momentum := float32(o.cfg.Momentum)
	keep := float32(1 - o.cfg.Dampening)
	nesterov := o.cfg.Nesterov
	off := 0
	for _, it := range items {
		n := len(it.g)
		a, b := max(lo-off, 0), min(hi-off, n)
		off += n
		if a >= b {
			continue
		}
		w, g := it.w[a:b], it.g[a:b]
		g = g[:len(w)]
		wd, step := it.wd, it.step
		if it.buf == nil {
			for i, wi := range w {
				d := g[i]
				if wd != 0 {
					d += wd * wi
				}
				w[i] = wi + step*d
			}
			continue
		}
		buf := it.buf[a:b][:len(w)]
		for i, wi := range w {
			d := g[i]
			if wd != 0 {
				d += wd * wi
			}
			m := d
			if !it.first {
				m = buf[i]*momentum + keep*d
			}
			buf[i] = m
			if nesterov {
				d += momentum * m
			} else {
				d = m
			}
			w[i] = wi + step*d
		}
	}
}

// ZeroFillStepped gives a zero gradient to every parameter that has taken
// a step and has none (see paramGroups.zeroFill).
func (o *SGD) ZeroFillStepped() { o.zeroFill(func(name string) bool { return o.stepped[name] }) }

// momentumPrefix starts the key of every momentum buffer in StateDict.
const momentumPrefix = "momentum_buffer/"

// SGDState is the non-tensor part of the optimizer state, for checkpoints.
type SGDState struct {
	// Type is "SGD".
	Type string `json:"type"`
	// Config is the optimizer's settings.
	Config SGDConfig `json:"config"`
	// LRs are the current learning rates, by group in the order
	// parameters first appear.
	LRs []float64 `json:"lrs"`
	// Stepped names the parameters that have taken a step, sorted.
	Stepped []string `json:"stepped,omitempty"`
}

// StateDict returns the momentum buffers, keyed "momentum_buffer/" + the
// parameter name (copies), and the non-tensor state. Only parameters that
// have taken a step have a buffer.
func (o *SGD) StateDict() (map[string]*tensor.Dense, json.RawMessage, error) {
	ts := make(map[string]*tensor.Dense, len(o.buf))
	for _, e := range o.entries {
		if b, ok := o.buf[e.name]; ok {
			ts[momentumPrefix+e.name] = tensor.New(tensor.WithShape(e.p.Shape().Clone()...), tensor.WithBacking(append([]float32(nil), b...)))
		}
	}
	st := SGDState{Type: "SGD", Config: o.cfg}
	for _, g := range o.groups {
		st.LRs = append(st.LRs, g.lr)
	}
	for _, e := range o.entries {
		if o.stepped[e.name] {
			st.Stepped = append(st.Stepped, e.name)
		}
	}
	sort.Strings(st.Stepped)
	js, err := json.Marshal(st)
	if err != nil {
		return nil, nil, fmt.Errorf("SGD state: %w", err)
	}
	return ts, js, nil
}

// LoadStateDict restores what StateDict returned. Parameters without a
// saved buffer start fresh (their next step initialises the buffer); a
// buffer for an unknown parameter, a buffer of the wrong size, or a state
// from a differently configured optimizer is an error naming it.
func (o *SGD) LoadStateDict(ts map[string]*tensor.Dense, state json.RawMessage) error {
	var st SGDState
	if err := json.Unmarshal(state, &st); err != nil {
		return fmt.Errorf("SGD state: %w", err)
	}
	if st.Type != "SGD" {
		return fmt.Errorf("SGD state: saved optimizer type is %q, want \"SGD\"", st.Type)
	}
	if st.Config != o.cfg {
		return fmt.Errorf("SGD state: saved settings %+v differ from this optimizer's %+v", st.Config, o.cfg)
	}
	if len(st.LRs) != len(o.groups) {
		return fmt.Errorf("SGD state: %d saved learning rates for %d parameter groups", len(st.LRs), len(o.groups))
	}
	byName := make(map[string]*nn.Param, len(o.entries))
	for _, e := range o.entries {
		byName[e.name] = e.p
	}
	bufs := make(map[string][]float32, len(ts))
	keys := make([]string, 0, len(ts))
	for k := range ts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name, ok := strings.CutPrefix(k, momentumPrefix)
		if !ok {
			return fmt.Errorf("SGD state: unexpected tensor %q (want %s<param name>)", k, momentumPrefix)
		}
		p, ok := byName[name]
		if !ok {
			return fmt.Errorf("SGD state: momentum buffer for %q, which this optimizer does not have", name)
		}
		t := ts[k]
		if t.Dtype() != tensor.Float32 || t.Shape().TotalSize() != p.Shape().TotalSize() {
			return fmt.Errorf("SGD state: momentum buffer for %q is %v %v, want float32 %v", name, t.Dtype(), t.Shape(), p.Shape())
		}
		bufs[name] = append([]float32(nil), t.Float32s()...)
	}
	stepped := make(map[string]bool, len(st.Stepped)+len(bufs))
	for _, name := range st.Stepped {
		if _, ok := byName[name]; !ok {
			return fmt.Errorf("SGD state: stepped parameter %q, which this optimizer does not have", name)
		}
		stepped[name] = true
	}
	for name := range bufs {
		stepped[name] = true // a checkpoint from before the list was kept
	}
	o.buf, o.stepped = bufs, stepped
	for i, lr := range st.LRs {
		o.groups[i].lr = lr
	}
	return nil
}
