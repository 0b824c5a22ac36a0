package checkpoint

import (
	"fmt"
	"strings"

	"github.com/razorgo/razor/models/nn"
)

// isPth reports whether path names a PyTorch checkpoint by its extension.
func isPth(path string) bool {
	return strings.HasSuffix(path, ".pth") || strings.HasSuffix(path, ".pt")
}

// Read reads a checkpoint of either kind: a PyTorch file (.pth or .pt) or
// one of ours (Load). From a PyTorch file it keeps the state dict and, from
// an mmcv "meta", the iteration ("iter"), epoch and config text; PyTorch
// optimizer state is keyed by parameter position rather than name and is
// not carried over.
func Read(path string) (*Checkpoint, error) {
	if !isPth(path) {
		return Load(path)
	}
	p, err := ReadPth(path)
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{Model: p.StateDict}
	if v, ok := p.Meta["iter"].(int); ok {
		c.Meta.Iteration = int64(v)
	}
	if v, ok := p.Meta["epoch"].(int); ok {
		c.Meta.Epoch = int64(v)
	}
	if v, ok := p.Meta["config"].(string); ok {
		c.Meta.Config = v
	}
	return c, nil
}

// LoadOptions says how a checkpoint's keys map onto a model.
type LoadOptions struct {
	// Strict makes any missing, unexpected or mismatched key an error and
	// loads nothing in that case.
	Strict bool
	// Rules rename keys before matching; see Remap.
	Rules []PrefixRule
	// DropUnmatched drops keys no rule matches; see Remap.
	DropUnmatched bool
}

// LoadModel reads the checkpoint at path (Read), renames its keys by the
// options and loads the state dict into m. It returns what did not match
// and the checkpoint, whose Meta and Optimizer the caller may use further.
func LoadModel(path string, m nn.Module, opts LoadOptions) (nn.LoadReport, *Checkpoint, error) {
	c, err := Read(path)
	if err != nil {
		return nn.LoadReport{}, nil, err
	}
	sd, err := Remap(c.Model, opts.Rules, opts.DropUnmatched)
	if err != nil {
		return nn.LoadReport{}, nil, fmt.Errorf("load %s: %w", path, err)
	}
	rep, err := m.LoadStateDict(sd, opts.Strict)
	if err != nil {
		return rep, nil, fmt.Errorf("load %s: %w", path, err)
	}
	return rep, c, nil
}
