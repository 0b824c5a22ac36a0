package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// InitNormal fills p with draws from N(mean, std^2), in row-major order from
// rng, so the same seed gives the same weights.
func InitNormal(p *Param, mean, std float64, rng *rand.Rand) {
	d := p.Data()
	for i := range d {
		d[i] = float32(mean + std*rng.NormFloat64())
	}
}

// InitConstant fills p with v.
func InitConstant(p *Param, v float64) {
	d := p.Data()
	for i := range d {
		d[i] = float32(v)
	}
}

// InitFanIn fills p from N(0, std^2) with std = 1/fan_in, where fan_in is
// p's second dimension (weight.shape[1]: input channels per group for a
// convolution, in_features for a linear layer). This is the DetNAS rule for
// every convolution not named conv1 (mmrazor draws with
// std=1.0/weight.shape[1]).
func InitFanIn(p *Param, rng *rand.Rand) error {
	s := p.Shape()
	if len(s) < 2 || s[1] == 0 {
		return fmt.Errorf("fan-in init of %s: shape %v has no second dimension to take fan_in from", p.Name(), s)
	}
	InitNormal(p, 0, 1/float64(s[1]), rng)
	return nil
}

// fans returns a weight's fan_in and fan_out as PyTorch computes them:
// dimensions 1 and 0, times the receptive field (the product of the rest).
func fans(p *Param) (in, out int, err error) {
	s := p.Shape()
	if len(s) < 2 {
		return 0, 0, fmt.Errorf("init of %s: shape %v has fewer than two dimensions", p.Name(), s)
	}
	field := 1
	for _, d := range s[2:] {
		field *= d
	}
	return s[1] * field, s[0] * field, nil
}

// InitXavierUniform fills p from U(-a, a) with a = gain*sqrt(6/(fan_in +
// fan_out)), mmcv's xavier_init(distribution='uniform').
func InitXavierUniform(p *Param, gain float64, rng *rand.Rand) error {
	in, out, err := fans(p)
	if err != nil {
		return err
	}
	a := gain * math.Sqrt(6/float64(in+out))
	d := p.Data()
	for i := range d {
		d[i] = float32(a * (2*rng.Float64() - 1))
	}
	return nil
}

// InitKaimingNormal fills p from N(0, 2/fan) for a ReLU network, with fan
// the fan_out (mmcv's kaiming_init default, which ConvModule uses) or the
// fan_in.
func InitKaimingNormal(p *Param, fanOut bool, rng *rand.Rand) error {
	in, out, err := fans(p)
	if err != nil {
		return err
	}
	fan := in
	if fanOut {
		fan = out
	}
	InitNormal(p, 0, math.Sqrt(2/float64(fan)), rng)
	return nil
}
