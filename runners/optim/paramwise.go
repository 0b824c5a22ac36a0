package optim

import (
	"sort"
	"strings"

	"github.com/razorgo/razor/models/nn"
)

// Paramwise holds per-parameter multipliers, with the meaning and matching
// rules of mmcv 1.x's DefaultOptimizerConstructor paramwise_cfg. A nil
// multiplier means 1. A zero Paramwise changes nothing: every parameter
// gets the base learning rate and weight decay.
//
// Rules, for each parameter:
//  1. If a CustomKeys key is a substring of the parameter's match name, the
//     longest such key (ties: the alphabetically first) sets both the
//     learning-rate and the decay multiplier, and no other rule applies.
//     The match name is the full name, except that a parameter registered
//     directly on the root module is matched as "." + name (mmcv joins an
//     empty module prefix with a dot).
//  2. Otherwise the learning rate is multiplied by BiasLRMult for a bias
//     that is not a normalisation layer's (nn.KindBias).
//  3. Otherwise the weight decay is multiplied by the first that applies:
//     NormDecayMult for a normalisation layer's weight and bias
//     (nn.KindNorm); DWConvDecayMult for the weight and bias of a depthwise
//     convolution (in_channels == groups); BiasDecayMult for any other bias.
//
// mmcv's dcn_offset_lr_mult and bypass_duplicate have no counterpart: no
// model here has deformable convolutions or shares a parameter between
// modules.
type Paramwise struct {
	// BiasLRMult scales the learning rate of biases outside norm layers.
	BiasLRMult *float64 `json:"bias_lr_mult,omitempty" cfg:"bias_lr_mult"`
	// BiasDecayMult scales the weight decay of biases outside norm layers and
	// depthwise convolutions.
	BiasDecayMult *float64 `json:"bias_decay_mult,omitempty" cfg:"bias_decay_mult"`
	// NormDecayMult scales the weight decay of norm layers' weights and
	// biases.
	NormDecayMult *float64 `json:"norm_decay_mult,omitempty" cfg:"norm_decay_mult"`
	// DWConvDecayMult scales the weight decay of depthwise convolutions'
	// weights and biases.
	DWConvDecayMult *float64 `json:"dwconv_decay_mult,omitempty" cfg:"dwconv_decay_mult"`
	// CustomKeys sets both multipliers for parameters whose name contains
	// the key.
	CustomKeys map[string]CustomKey `json:"custom_keys,omitempty" cfg:"custom_keys"`
}

// CustomKey is one entry of Paramwise.CustomKeys; a nil multiplier means 1.
type CustomKey struct {
	// LRMult scales the learning rate.
	LRMult *float64 `json:"lr_mult,omitempty" cfg:"lr_mult"`
	// DecayMult scales the weight decay.
	DecayMult *float64 `json:"decay_mult,omitempty" cfg:"decay_mult"`
}

func orOne(p *float64) float64 {
	if p == nil {
		return 1
	}
	return *p
}

// multipliers returns the learning-rate and weight-decay multipliers of p.
func (pw *Paramwise) multipliers(p *nn.Param) (lr, decay float64) {
	if pw == nil {
		return 1, 1
	}
	match := p.Name()
	if !strings.Contains(match, ".") {
		match = "." + match
	}
	keys := make([]string, 0, len(pw.CustomKeys))
	for k := range pw.CustomKeys {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if len(keys[i]) != len(keys[j]) {
			return len(keys[i]) > len(keys[j])
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		if strings.Contains(match, k) {
			ck := pw.CustomKeys[k]
			return orOne(ck.LRMult), orOne(ck.DecayMult)
		}
	}
	lr, decay = 1, 1
	if p.Kind() == nn.KindBias {
		lr = orOne(pw.BiasLRMult)
	}
	switch {
	case p.Kind() == nn.KindNorm:
		decay = orOne(pw.NormDecayMult)
	case p.Depthwise():
		decay = orOne(pw.DWConvDecayMult)
	case p.Kind() == nn.KindBias:
		decay = orOne(pw.BiasDecayMult)
	}
	return lr, decay
}
