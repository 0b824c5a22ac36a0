package runners

import (
	"fmt"
	"math"
	"strings"
)

// LrConfig is the `lr_config` mapping, with mmcv 1.x's names and meanings.
type LrConfig struct {
	// Policy is poly, step, CosineAnnealing or fixed (case-insensitive, as
	// mmcv looks up `<Policy>LrUpdaterHook`).
	Policy string `cfg:"policy"`
	// ByEpoch updates the lr once per epoch from the epoch count instead of
	// every iteration from the iteration count.
	ByEpoch bool `cfg:"by_epoch"`

	// Power and MinLr shape poly: lr = (base - min_lr) * (1 - progress/max)^power + min_lr.
	Power float64  `cfg:"power"`
	MinLr *float64 `cfg:"min_lr"`
	// MinLrRatio sets CosineAnnealing's target as a fraction of the base lr.
	MinLrRatio *float64 `cfg:"min_lr_ratio"`

	// Step lists the progress points (epochs or iterations) at which the
	// step policy multiplies the lr by Gamma; a single number means every
	// Step epochs/iterations.
	Step  any     `cfg:"step"`
	Gamma float64 `cfg:"gamma"`

	// Warmup is linear, constant or exp (empty for none), over WarmupIters
	// iterations starting from WarmupRatio times the regular lr.
	Warmup      string  `cfg:"warmup"`
	WarmupIters int     `cfg:"warmup_iters"`
	WarmupRatio float64 `cfg:"warmup_ratio"`
	// WarmupByEpoch counts WarmupIters in epochs.
	WarmupByEpoch bool `cfg:"warmup_by_epoch"`
}

// Defaults presets mmcv's defaults.
func (c *LrConfig) Defaults() {
	c.ByEpoch = true
	c.Power = 1.0
	c.Gamma = 0.1
	c.WarmupRatio = 0.1
}

// LrSchedule computes the learning rate for a point of training.
type LrSchedule struct {
	cfg    LrConfig
	policy string
	steps  []int
	every  int
}

// NewLrSchedule checks an lr_config.
func NewLrSchedule(c LrConfig) (*LrSchedule, error) {
	s := &LrSchedule{cfg: c, policy: strings.ToLower(c.Policy)}
	switch s.policy {
	case "poly", "fixed":
	case "cosineannealing":
		if c.MinLr != nil && c.MinLrRatio != nil {
			return nil, fmt.Errorf("lr_config: set min_lr or min_lr_ratio for CosineAnnealing, not both")
		}
	case "step":
		switch st := c.Step.(type) {
		case int:
			if st <= 0 {
				return nil, fmt.Errorf("lr_config.step must be positive, got %d", st)
			}
			s.every = st
		case []any:
			prev := -1
			for i, e := range st {
				n, ok := e.(int)
				if !ok || n <= prev {
					return nil, fmt.Errorf("lr_config.step.%d: steps must be increasing whole numbers, got %v", i, e)
				}
				s.steps = append(s.steps, n)
				prev = n
			}
		default:
			return nil, fmt.Errorf("lr_config.step must be a whole number or a list of them (e.g. [8, 11]) for the step policy, not %v", c.Step)
		}
	default:
		return nil, fmt.Errorf("lr_config.policy %q is not supported; use poly, step, CosineAnnealing or fixed", c.Policy)
	}
	switch strings.ToLower(c.Warmup) {
	case "", "linear", "constant", "exp":
	default:
		return nil, fmt.Errorf("lr_config.warmup %q is not supported; use linear, constant or exp", c.Warmup)
	}
	if c.Warmup != "" {
		if c.WarmupIters <= 0 {
			return nil, fmt.Errorf("lr_config.warmup_iters must be positive when warmup is %q", c.Warmup)
		}
		if c.WarmupRatio <= 0 || c.WarmupRatio > 1 {
			return nil, fmt.Errorf("lr_config.warmup_ratio must be in (0, 1], got %g", c.WarmupRatio)
		}
	}
	return s, nil
}

// ByEpoch reports whether the regular lr changes once per epoch.
func (s *LrSchedule) ByEpoch() bool { return s.cfg.ByEpoch }

// Regular returns the lr without warmup for a base lr at progress (epochs
// or iterations done, as ByEpoch says) out of max.
func (s *LrSchedule) Regular(base float64, progress, max int) float64 {
	switch s.policy {
	case "poly":
		minLr := 0.0
		if s.cfg.MinLr != nil {
			minLr = *s.cfg.MinLr
		}
		coeff := math.Pow(1-float64(progress)/float64(max), s.cfg.Power)
		return (base-minLr)*coeff + minLr
	case "step":
		exp := 0
		if s.every > 0 {
			exp = progress / s.every
		} else {
			for _, st := range s.steps {
				if progress >= st {
					exp++
				}
			}
		}
		return base * math.Pow(s.cfg.Gamma, float64(exp))
	case "cosineannealing":
		target := 0.0
		switch {
		case s.cfg.MinLrRatio != nil:
			target = base * *s.cfg.MinLrRatio
		case s.cfg.MinLr != nil:
			target = *s.cfg.MinLr
		}
		f := float64(progress) / float64(max)
		return target + 0.5*(base-target)*(math.Cos(math.Pi*f)+1)
	default:
		return base
	}
}

// Warmup adjusts a regular lr during warmup. iter counts iterations done
// (or epochs, with warmup_by_epoch); ok is false once warmup is over.
func (s *LrSchedule) Warmup(regular float64, iter int) (lr float64, ok bool) {
	c := s.cfg
	if c.Warmup == "" || iter >= c.WarmupIters {
		return regular, false
	}
	switch strings.ToLower(c.Warmup) {
	case "constant":
		return regular * c.WarmupRatio, true
	case "exp":
		return regular * math.Pow(c.WarmupRatio, 1-float64(iter)/float64(c.WarmupIters)), true
	default: // linear
		k := (1 - float64(iter)/float64(c.WarmupIters)) * (1 - c.WarmupRatio)
		return regular * (1 - k), true
	}
}

// At is the lr mmcv's LrUpdaterHook sets before iteration iter (0-based)
// of epoch epoch (0-based), with maxIters/maxEpochs the run's length.
func (s *LrSchedule) At(base float64, iter, epoch, maxIters, maxEpochs int) float64 {
	var regular float64
	if s.cfg.ByEpoch {
		regular = s.Regular(base, epoch, maxEpochs)
	} else {
		regular = s.Regular(base, iter, maxIters)
	}
	warm := iter
	if s.cfg.WarmupByEpoch {
		warm = epoch
	}
	lr, _ := s.Warmup(regular, warm)
	return lr
}
