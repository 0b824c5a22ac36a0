package checkpoint

import (
	"encoding/json"
	"fmt"

	"github.com/razorgo/razor/models/nn"
	"gorgonia.org/tensor"
)

// Optimizer is the part of an optimizer (such as optim.SGD) a checkpoint
// saves and restores: its tensors by its own keys and its other state as
// JSON.
type Optimizer interface {
	StateDict() (map[string]*tensor.Dense, json.RawMessage, error)
	LoadStateDict(ts map[string]*tensor.Dense, state json.RawMessage) error
}

// SaveTraining saves the model's state dict, the optimizer's state (when
// opt is not nil) and meta as checkpoint NAME in dir; meta.Optimizer is
// filled from the optimizer. It returns the path Load takes.
func SaveTraining(dir, name string, model nn.Module, opt Optimizer, meta Meta) (string, error) {
	c := &Checkpoint{Model: model.StateDict(), Meta: meta}
	if opt != nil {
		ts, st, err := opt.StateDict()
		if err != nil {
			return "", fmt.Errorf("save checkpoint %s: %w", name, err)
		}
		c.Optimizer, c.Meta.Optimizer = ts, st
	}
	return Save(dir, name, c)
}

// Resume restores a run from the checkpoint at path: the model's state
// dict, strictly (a resumed run must have exactly the saved model), and the
// optimizer's state when opt is not nil. It returns the meta, from which
// the caller restores iteration, epoch and random sources.
func Resume(path string, model nn.Module, opt Optimizer) (Meta, error) {
	c, err := Load(path)
	if err != nil {
		return Meta{}, err
	}
	if _, err := model.LoadStateDict(c.Model, true); err != nil {
		return Meta{}, fmt.Errorf("resume from %s: %w", path, err)
	}
	if opt != nil {
		if len(c.Meta.Optimizer) == 0 {
			return Meta{}, fmt.Errorf("resume from %s: the checkpoint has no optimizer state", path)
		}
		if err := opt.LoadStateDict(c.Optimizer, c.Meta.Optimizer); err != nil {
			return Meta{}, fmt.Errorf("resume from %s: %w", path, err)
		}
	}
	return c.Meta, nil
}
