package ops

import (
	"math/rand/v2"
	"slices"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestMaxPool2dTiesGoToFirstMaximum pins where the gradient of a window of
// equal values goes: to its first element in row-major order, padding
// skipped. The expected gradient is PyTorch 1.13's for a constant 5x5
// input, kernel 3, stride 2, padding 1 and upstream gradient 1..9.
func TestMaxPool2dTiesGoToFirstMaximum(t *testing.T) {
	g := gorgonia.NewGraph()
	ones := make([]float32, 25)
	for i := range ones {
		ones[i] = 1
	}
	x := newInput(g, "x", tensor.Shape{1, 1, 5, 5}, ones)
	y := must(t)(MaxPool2d(x, 3, 2, 1))
	grads := gradRun(t, must(t)(weightedSum(y, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9})), x)
	want := []float32{
		1, 2, 0, 3, 0,
		4, 5, 0, 6, 0,
		0, 0, 0, 0, 0,
		7, 8, 0, 9, 0,
		0, 0, 0, 0, 0,
	}
	if !slices.Equal(grads[0], want) {
		t.Errorf("gradient %v, PyTorch gives %v", grads[0], want)
	}
}

// BenchmarkMaxPool2dK1S2 times FPN's extra level (max_pool2d(x, 1,
// stride=2)) on the stride-32 level of two 800x1344 images.
func BenchmarkMaxPool2dK1S2(b *testing.B) {
	g := poolGeom{planes: 2 * 256, h: 25, w: 42, kh: 1, kw: 1, sh: 2, sw: 2, hout: 13, wout: 21}
	rng := rand.New(rand.NewPCG(14, 14))
	x := benchData(rng, g.planes*g.h*g.w)
	y := make([]float32, g.planes*g.hout*g.wout)
	b.Run("fwd", func(b *testing.B) {
		for b.Loop() {
			maxPoolForward(g, x, y)
		}
	})
	gx := make([]float32, len(x))
	b.Run("bwd", func(b *testing.B) {
		for b.Loop() {
			maxPoolBackward(g, x, y, gx)
		}
	})
}
