package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

func moments(v []float32) (mean, std float64) {
	for _, x := range v {
		mean += float64(x)
	}
	mean /= float64(len(v))
	for _, x := range v {
		std += (float64(x) - mean) * (float64(x) - mean)
	}
	return mean, math.Sqrt(std / float64(len(v)))
}

func TestInitializers(t *testing.T) {
	b := &box{}
	// 64 output channels, fan_in 40: std 1/40 = 0.025.
	conv := b.AddParam("conv", KindWeight, 64, 40, 3, 3)
	if err := InitFanIn(conv, rand.New(rand.NewPCG(1, 2))); err != nil {
		t.Fatal(err)
	}
	if m, s := moments(conv.Data()); math.Abs(m) > 0.001 || math.Abs(s-0.025) > 0.0005 {
		t.Errorf("fan-in init: mean %v std %v, want 0 and 0.025", m, s)
	}

	normal := b.AddParam("normal", KindWeight, 100, 100)
	InitNormal(normal, 0.5, 0.01, rand.New(rand.NewPCG(3, 4)))
	if m, s := moments(normal.Data()); math.Abs(m-0.5) > 0.0005 || math.Abs(s-0.01) > 0.0003 {
		t.Errorf("normal init: mean %v std %v, want 0.5 and 0.01", m, s)
	}

	again := b.AddParam("again", KindWeight, 100, 100)
	InitNormal(again, 0.5, 0.01, rand.New(rand.NewPCG(3, 4)))
	for i, v := range again.Data() {
		if v != normal.Data()[i] {
			t.Fatalf("same seed, different weights at %d", i)
		}
	}

	bias := b.AddParam("bias", KindNorm, 5)
	InitConstant(bias, 1e-4)
	for _, v := range bias.Data() {
		if v != float32(1e-4) {
			t.Fatalf("constant init: %v", bias.Data())
		}
	}

	flat := b.AddParam("flat", KindBias, 5)
	if err := InitFanIn(flat, rand.New(rand.NewPCG(1, 1))); err == nil {
		t.Errorf("fan-in init of a 1-d parameter succeeded")
	}
}
