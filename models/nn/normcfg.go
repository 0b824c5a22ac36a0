package nn

import "fmt"

// NormCfg is mmcv's norm_cfg for the normalisation layers razor builds:
// `{type: BN}` or `{type: SyncBN, requires_grad: true}`, optionally with
// momentum and eps. SyncBN builds a BatchNorm2d whose training-mode
// statistics are reduced over the ranks of a data-parallel step
// (ops.BatchNormState.Sync); in one process it computes what BN computes
// (a training or search run says which once in its log).
type NormCfg struct {
	// Type is BN, BN2d or SyncBN.
	Type string `cfg:"type"`
	// RequiresGrad must stay true: razor has no frozen norm layers.
	RequiresGrad bool `cfg:"requires_grad"`
	// Momentum and Eps replace PyTorch's 0.1 and 1e-5 when set.
	Momentum *float64 `cfg:"momentum"`
	Eps      *float64 `cfg:"eps"`
}

// DefaultNormCfg is mmcv's default norm_cfg, dict(type='BN').
func DefaultNormCfg() NormCfg { return NormCfg{Type: "BN", RequiresGrad: true} }

// Validate checks the type and values, naming what is accepted.
func (c NormCfg) Validate() error {
	switch c.Type {
	case "BN", "BN2d", "SyncBN":
	default:
		return fmt.Errorf("norm_cfg.type %q is not supported; use BN or SyncBN", c.Type)
	}
	if !c.RequiresGrad {
		return fmt.Errorf("norm_cfg.requires_grad: false (frozen norm layers) is not supported; remove it or set it to true")
	}
	if c.Momentum != nil && !(*c.Momentum >= 0 && *c.Momentum <= 1) {
		return fmt.Errorf("norm_cfg.momentum %g must lie in [0, 1]", *c.Momentum)
	}
	if c.Eps != nil && !(*c.Eps > 0) {
		return fmt.Errorf("norm_cfg.eps %g must be positive", *c.Eps)
	}
	return nil
}

// Apply sets n's momentum, eps and synchronisation from the config.
func (c NormCfg) Apply(n *BatchNorm2d) {
	n.State.Sync = c.Type == "SyncBN"
	if c.Momentum != nil {
		n.State.Momentum = *c.Momentum
	}
	if c.Eps != nil {
		n.State.Eps = *c.Eps
	}
}

// NewConvModuleNorm builds a ConvModule whose norm (cfg.Norm must be set)
// follows norm.
func NewConvModuleNorm(cfg ConvModuleConfig, norm NormCfg) (*ConvModule, error) {
	if err := norm.Validate(); err != nil {
		return nil, err
	}
	m, err := NewConvModule(cfg)
	if err != nil {
		return nil, err
	}
	if m.BN != nil {
		norm.Apply(m.BN)
	}
	return m, nil
}
