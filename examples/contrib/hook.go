package contrib

import (
	"fmt"
	"math"

	"github.com/razorgo/razor/registry"
	"github.com/razorgo/razor/runners"
)

// ParamNormHook logs the L2 norm of the weights the runner's optimizer
// steps as param_norm, every Interval iterations, after the optimizer
// step: a quick look at whether weight decay and the learning rate keep
// the weights in check. Name it in custom_hooks:
//
//	custom_hooks:
//	  - {type: ParamNormHook, interval: 10, priority: NORMAL}
type ParamNormHook struct {
	Interval int `cfg:"interval"`
}

// Defaults measure every 50 iterations.
func (h *ParamNormHook) Defaults() { h.Interval = 50 }

// Priority is NORMAL: after the optimizer hook, before the logger.
func (h *ParamNormHook) Priority() int { return runners.PriorityNormal }

// AfterTrainIter adds param_norm to the values the next log line averages.
func (h *ParamNormHook) AfterTrainIter(r *runners.Runner) error {
	if (r.Iter+1)%h.Interval != 0 {
		return nil
	}
	sum := 0.0
	for _, p := range r.Task.Module().NamedParameters() {
		for _, v := range p.Data() {
			sum += float64(v) * float64(v)
		}
	}
	r.Buffer.Add("param_norm", math.Sqrt(sum), 1)
	return nil
}

func init() {
	registry.MustRegister(runners.Hooks, "ParamNormHook", func(o ParamNormHook) (runners.Hook, error) {
		if o.Interval <= 0 {
			return nil, fmt.Errorf("interval must be positive, got %d", o.Interval)
		}
		return &o, nil
	})
}
