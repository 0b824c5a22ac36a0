package nn

import (
	"fmt"
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
