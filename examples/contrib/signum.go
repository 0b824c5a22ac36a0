package contrib

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"gorgonia.org/tensor"

	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/registry"
	"github.com/razorgo/razor/runners/optim"
)

// SignumOptions are the `optimizer:` keys of type Signum.
type SignumOptions struct {
	LR          float64 `cfg:"lr,required" json:"lr"`
	Momentum    float64 `cfg:"momentum" json:"momentum"`
	WeightDecay float64 `cfg:"weight_decay" json:"weight_decay"`
}

// Defaults are the Signum paper's momentum 0.9.
func (o *SignumOptions) Defaults() { o.Momentum = 0.9 }

// New builds the optimizer over params.
func (o SignumOptions) New(params []*nn.Param) (optim.Optimizer, error) {
	if o.LR < 0 || o.Momentum < 0 || o.Momentum >= 1 || o.WeightDecay < 0 {
		return nil, fmt.Errorf("Signum: lr %v and weight_decay %v must be non-negative and momentum %v in [0, 1)", o.LR, o.WeightDecay, o.Momentum)
	}
	return &Signum{cfg: o, lr: o.LR, params: params, buf: map[string][]float32{}, stepped: map[string]bool{}}, nil
}

// Signum is signSGD with momentum (Bernstein et al., 2018): every weight
// moves by lr in the direction of the sign of its gradients' moving
// average, with decoupled weight decay:
//
//	m = momentum*m + (1-momentum)*g
//	w = w - lr*weight_decay*w - lr*sign(m)
//
// Like razor's SGD, state is kept by parameter name and a parameter with
// no gradient is not moved.
type Signum struct {
	cfg     SignumOptions
	lr      float64
	params  []*nn.Param
	buf     map[string][]float32
	stepped map[string]bool
}

// Step moves every parameter that has a gradient.
func (s *Signum) Step() {
	b1, lr, decay := float32(s.cfg.Momentum), float32(s.lr), float32(s.lr*s.cfg.WeightDecay)
	for _, p := range s.params {
		g := p.GradData()
		if g == nil {
			continue
		}
		s.stepped[p.Name()] = true
		m, ok := s.buf[p.Name()]
		if !ok {
			m = make([]float32, len(g))
			s.buf[p.Name()] = m
		}
		w := p.Data()
		for i, gi := range g {
			m[i] = b1*m[i] + (1-b1)*gi
			w[i] -= decay * w[i]
			switch {
			case m[i] > 0:
				w[i] -= lr
			case m[i] < 0:
				w[i] += lr
			}
		}
	}
}

// ZeroGrad clears every gradient.
func (s *Signum) ZeroGrad(setToNone bool) {
	for _, p := range s.params {
		p.ZeroGrad(setToNone)
	}
}

// ZeroFillStepped gives a zero gradient to stepped parameters without one.
func (s *Signum) ZeroFillStepped() {
	for _, p := range s.params {
		if s.stepped[p.Name()] && p.GradData() == nil {
			if err := p.AccumulateGrad(make([]float32, p.Shape().TotalSize())); err != nil {
				panic(err) // the size is the parameter's own
			}
		}
	}
}

// SetLR sets the rate to policy(the initial rate).
func (s *Signum) SetLR(policy func(float64) float64) { s.lr = policy(s.cfg.LR) }

// LR is the current rate.
func (s *Signum) LR() float64 { return s.lr }

// signumState is Signum's state beyond its momentum tensors.
type signumState struct {
	Config  SignumOptions `json:"config"`
	LR      float64       `json:"lr"`
	Stepped []string      `json:"stepped"`
}

// StateDict returns the momentum buffers ("momentum/<name>") and the rest.
func (s *Signum) StateDict() (map[string]*tensor.Dense, json.RawMessage, error) {
	ts := map[string]*tensor.Dense{}
	st := signumState{Config: s.cfg, LR: s.lr}
	for _, p := range s.params {
		if m, ok := s.buf[p.Name()]; ok {
			ts["momentum/"+p.Name()] = tensor.New(tensor.WithShape(p.Shape().Clone()...), tensor.WithBacking(append([]float32(nil), m...)))
		}
		if s.stepped[p.Name()] {
			st.Stepped = append(st.Stepped, p.Name())
		}
	}
	sort.Strings(st.Stepped)
	b, err := json.Marshal(st)
	return ts, b, err
}

// LoadStateDict restores what StateDict returned.
func (s *Signum) LoadStateDict(ts map[string]*tensor.Dense, state json.RawMessage) error {
	var st signumState
	if err := json.Unmarshal(state, &st); err != nil {
		return fmt.Errorf("Signum state: %w", err)
	}
	if st.Config != s.cfg {
		return fmt.Errorf("Signum state: saved settings %+v differ from this optimizer's %+v", st.Config, s.cfg)
	}
	sizes := map[string]int{}
	for _, p := range s.params {
		sizes[p.Name()] = p.Shape().TotalSize()
	}
	buf := map[string][]float32{}
	for k, t := range ts {
		name, ok := strings.CutPrefix(k, "momentum/")
		if !ok || sizes[name] != t.Shape().TotalSize() || t.Dtype() != tensor.Float32 {
			return fmt.Errorf("Signum state: tensor %q %v matches no parameter of this optimizer", k, t.Shape())
		}
		buf[name] = append([]float32(nil), t.Float32s()...)
	}
	stepped := map[string]bool{}
	for _, n := range st.Stepped {
		if _, ok := sizes[n]; !ok {
			return fmt.Errorf("Signum state: stepped parameter %q is not one of this optimizer's", n)
		}
		stepped[n] = true
	}
	s.lr, s.buf, s.stepped = st.LR, buf, stepped
	return nil
}

func init() {
	registry.MustRegister(optim.Optimizers, "Signum", func(o SignumOptions) (optim.Constructor, error) { return o, nil })
}
