package optim

import (
	"fmt"

	"github.com/razorgo/razor/models/nn"
)

// paramGroups are an optimizer's parameters in PyTorch param_groups: one
// group per (lr, weight decay) pair the paramwise multipliers give, each
// parameter in the group of its own pair, in the order parameters come.
// SGD and AdamW embed it for what they share: clearing gradients and the
// learning-rate schedule's view of the groups.
type paramGroups struct {
	entries []entry
	groups  []group
}

// newParamGroups groups params by their multiplied lr and weight decay;
// who names the optimizer in errors.
func newParamGroups(who string, params []*nn.Param, lr, weightDecay float64, paramwise *Paramwise) (paramGroups, error) {
	var pg paramGroups
	type key struct{ lr, decay float64 }
	groupOf := map[key]int{}
	seen := map[string]bool{}
	for _, p := range params {
		if seen[p.Name()] {
			return pg, fmt.Errorf("%s: two parameters are named %q", who, p.Name())
		}
		seen[p.Name()] = true
		lrMult, decayMult := paramwise.multipliers(p)
		k := key{lr * lrMult, weightDecay * decayMult}
		g, ok := groupOf[k]
		if !ok {
			g = len(pg.groups)
			groupOf[k] = g
			pg.groups = append(pg.groups, group{initialLR: k.lr, lr: k.lr, weightDecay: k.decay})
		}
		pg.entries = append(pg.entries, entry{name: p.Name(), p: p, group: g})
	}
	return pg, nil
}

// ZeroGrad clears the gradient of every parameter; see nn.Param.ZeroGrad for
// what setToNone changes.
func (pg *paramGroups) ZeroGrad(setToNone bool) {
	for _, e := range pg.entries {
		e.p.ZeroGrad(setToNone)
	}
}

// zeroFill gives a zero gradient to every parameter that has taken a step
// (stepped says which) and has no gradient, as ZeroGrad(false) had left
// them before a checkpoint: a run resumed with zero-filled gradients then
// moves exactly the parameters the uninterrupted run moves.
func (pg *paramGroups) zeroFill(stepped func(name string) bool) {
	for _, e := range pg.entries {
		if stepped(e.name) && e.p.GradData() == nil {
			if err := e.p.AccumulateGrad(make([]float32, e.p.Shape().TotalSize())); err != nil {
				panic(err) // the size is the parameter's own
			}
		}
	}
}

// SetLR sets each group's learning rate to policy(the group's initial
// learning rate), which is how mmcv's learning-rate hooks update every
// param_group (each group's initial_lr is the base lr times its
// multiplier).
func (pg *paramGroups) SetLR(policy func(initialLR float64) float64) {
	for i := range pg.groups {
		pg.groups[i].lr = policy(pg.groups[i].initialLR)
	}
}

// LR is the current learning rate of the first parameter's group (what mmcv
// logs as lr), or 0 without parameters.
func (pg *paramGroups) LR() float64 {
	if len(pg.entries) == 0 {
		return 0
	}
	return pg.groups[pg.entries[0].group].lr
}

// ParamLR returns the current learning rate and weight decay of the named
// parameter.
func (pg *paramGroups) ParamLR(name string) (lr, weightDecay float64, ok bool) {
	for _, e := range pg.entries {
		if e.name == name {
			g := pg.groups[e.group]
			return g.lr, g.weightDecay, true
		}
	}
	return 0, 0, false
}
