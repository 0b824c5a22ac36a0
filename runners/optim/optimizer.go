package optim

import (
	"encoding/json"
	"fmt"

	"gorgonia.org/tensor"

	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/registry"
)

// Optimizer updates parameters from their gradients: what the runner's
// hooks drive (the lr updater sets the rate, the optimizer hook steps and
// clears) and what checkpoints save. State is kept by parameter name,
// because the parameters a supernet uses change from one iteration to the
// next.
type Optimizer interface {
	// Step updates every parameter that has a gradient.
	Step()
	// ZeroGrad clears every gradient: to none (setToNone, torch 2.x) or
	// zero-filled (torch 1.x, so every parameter ever stepped keeps moving
	// with its momentum and decay).
	ZeroGrad(setToNone bool)
	// ZeroFillStepped gives a zero gradient to every parameter that has
	// taken a step and has none, the state a resumed run with zero-filled
	// gradients starts from.
	ZeroFillStepped()
	// SetLR sets each parameter group's rate to policy(its initial rate).
	SetLR(policy func(initialLR float64) float64)
	// LR is the first parameter group's current rate, the one logged.
	LR() float64
	// StateDict returns the optimizer's tensors and its other state.
	StateDict() (map[string]*tensor.Dense, json.RawMessage, error)
	// LoadStateDict restores what StateDict returned.
	LoadStateDict(ts map[string]*tensor.Dense, state json.RawMessage) error
}

// Constructor builds an optimizer over parameters. The `optimizer:`
// mapping of a config is built by the Optimizers registry into a
// Constructor -- usually the decoded options struct itself -- and the
// runner then hands it the parameters it trains.
type Constructor interface {
	New(params []*nn.Param) (Optimizer, error)
}

// Optimizers builds the `optimizer:` mapping of a config: SGD and AdamW (as
// torch's, with mmcv's paramwise_cfg) and what contributors register. A scope
// (torch.SGD, mmcv.SGD) is accepted as the registry's scopes are.
var Optimizers = registry.New[Constructor]("optimizer")

// SGDOptions are the `optimizer:` keys of type SGD.
type SGDOptions struct {
	LR           float64    `cfg:"lr,required"`
	Momentum     float64    `cfg:"momentum"`
	Dampening    float64    `cfg:"dampening"`
	WeightDecay  float64    `cfg:"weight_decay"`
	Nesterov     bool       `cfg:"nesterov"`
	ParamwiseCfg *Paramwise `cfg:"paramwise_cfg"`
}

// New builds the SGD optimizer over params.
func (o SGDOptions) New(params []*nn.Param) (Optimizer, error) {
	return NewSGD(params, SGDConfig{LR: o.LR, Momentum: o.Momentum, Dampening: o.Dampening, WeightDecay: o.WeightDecay, Nesterov: o.Nesterov}, o.ParamwiseCfg)
}

// AdamWOptions are the `optimizer:` keys of type AdamW (torch's names and
// defaults: lr 1e-3, betas [0.9, 0.999], eps 1e-8, weight_decay 1e-2),
// with mmcv's paramwise_cfg.
type AdamWOptions struct {
	LR           float64    `cfg:"lr"`
	Betas        []float64  `cfg:"betas"`
	Eps          float64    `cfg:"eps"`
	WeightDecay  float64    `cfg:"weight_decay"`
	AMSGrad      bool       `cfg:"amsgrad"`
	ParamwiseCfg *Paramwise `cfg:"paramwise_cfg"`
}

// Defaults are torch's.
func (o *AdamWOptions) Defaults() {
	var c AdamWConfig
	c.Defaults()
	o.LR, o.Betas, o.Eps, o.WeightDecay = c.LR, c.Betas[:], c.Eps, c.WeightDecay
}

// New builds the AdamW optimizer over params.
func (o AdamWOptions) New(params []*nn.Param) (Optimizer, error) {
	if len(o.Betas) != 2 {
		return nil, fmt.Errorf("AdamW: betas must be two numbers, such as [0.9, 0.999], not %v", o.Betas)
	}
	return NewAdamW(params, AdamWConfig{LR: o.LR, Betas: [2]float64{o.Betas[0], o.Betas[1]}, Eps: o.Eps, WeightDecay: o.WeightDecay, AMSGrad: o.AMSGrad}, o.ParamwiseCfg)
}

// Build builds the optimizer a config mapping describes (path names it in
// errors) over params.
func Build(node any, path string, params []*nn.Param) (Optimizer, error) {
	if err := Optimizers.Supported(node, path); err != nil {
		return nil, err
	}
	c, err := Optimizers.Build(node, path, nil)
	if err != nil {
		return nil, err
	}
	opt, err := c.New(params)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return opt, nil
}

func init() {
	registry.MustRegister(Optimizers, "SGD", func(o SGDOptions) (Constructor, error) { return o, nil })
	registry.MustRegister(Optimizers, "AdamW", func(o AdamWOptions) (Constructor, error) { return o, nil })
}
