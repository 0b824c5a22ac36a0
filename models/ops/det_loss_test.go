package ops

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The detection losses' sums against scripts/fixtures/det_losses.py
// (PyTorch 1.13): weights with zeros, ignored labels and saturated logits.
func TestDetectionLossFixtures(t *testing.T) {
	run := map[string]func(*testing.T, *fixtureCase){
		"softmax_ce_sum":  fixtureSoftmaxCESum,
		"sigmoid_bce_sum": fixtureSumLoss,
		"l1_sum":          fixtureSumLoss,
		"smooth_l1_sum":   fixtureSumLoss,
	}
	seen := map[string]bool{}
	for _, c := range loadFixtureFile(t, "det_loss_ops") {
		f, ok := run[c.Op]
		if !ok {
			t.Errorf("fixture %s: no test for op %q", c.Name, c.Op)
			continue
		}
		seen[c.Op] = true
		t.Run(c.Name, func(t *testing.T) { f(t, c) })
	}
	for op := range run {
		if !seen[op] {
			t.Errorf("no fixture exercises op %q", op)
		}
	}
}

// optional returns a fixture tensor's data, or nil when the case has none.
func (c *fixtureCase) optional(t *testing.T, name string) []float32 {
	if !c.has(name) {
		return nil
	}
	d, _ := c.get(t, name)
	return d
}

func fixtureSoftmaxCESum(t *testing.T, c *fixtureCase) {
	var labels []int
	c.ints(t, "labels", &labels)
	g := gorgonia.NewGraph()
	x := c.input(t, g, "logits")
	loss := must(t)(SoftmaxCrossEntropySum(x, labels, c.optional(t, "weights")))
	grads := gradRun(t, loss, x)
	c.expect(t, "loss", valueF32(t, loss))
	c.expect(t, "gx", grads[0])
}

func fixtureSumLoss(t *testing.T, c *fixtureCase) {
	var p struct{ Beta float64 }
	c.params(t, &p)
	g := gorgonia.NewGraph()
	pred := c.input(t, g, "pred")
	target, _ := c.get(t, "target")
	weight := c.optional(t, "weight")
	var loss *gorgonia.Node
	switch c.Op {
	case "sigmoid_bce_sum":
		loss = must(t)(SigmoidBCESum(pred, target, weight))
	case "l1_sum":
		loss = must(t)(L1Sum(pred, target, weight))
	case "smooth_l1_sum":
		loss = must(t)(SmoothL1Sum(pred, target, weight, p.Beta))
	}
	grads := gradRun(t, loss, pred)
	c.expect(t, "loss", valueF32(t, loss))
	c.expect(t, "gpred", grads[0])
}

// TestDetectionLossGradientsMatchFiniteDifferences checks the backward
// kernels of the sums in float64, with zero weights and ignored labels.
func TestDetectionLossGradientsMatchFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 31))
	const upstream = 0.7
	t.Run("softmax_ce_sum", func(t *testing.T) {
		const n, k = 6, 4
		labels := []int{0, IgnoreLabel, 3, 2, IgnoreLabel, 1}
		w := []float32{1.5, 2, 0, 0.25, 1, 0.75}
		x := randSlice(rng, n*k)
		loss := func() float64 { return upstream * crossEntropySum(n, k, x, labels, 0, w) }
		gx := make([]float64, len(x))
		crossEntropyBackward(n, k, x, labels, 0, w, upstream, gx)
		closeTo(t, "dx", gx, numericGrad(x, loss), gradTol)
		for i := range n {
			if labels[i] >= 0 && w[i] != 0 {
				continue
			}
			for j := range k {
				if gx[i*k+j] != 0 {
					t.Fatalf("row %d (label %d, weight %g) has gradient %g", i, labels[i], w[i], gx[i*k+j])
				}
			}
		}
	})
	for _, pl := range []struct {
		name string
		f    pointLoss
	}{{"sigmoid_bce_sum", bceWithLogits}, {"l1_sum", l1}, {"smooth_l1_sum", smoothL1(1.0 / 9)}} {
		t.Run(pl.name, func(t *testing.T) {
			p, tg := randSlice(rng, 16), randSlice(rng, 16)
			w := make([]float64, 16)
			for i := range w {
				if i%3 != 0 {
					w[i] = rng.Float64() + 0.5
				}
				if pl.name == "sigmoid_bce_sum" {
					tg[i] = float64(i % 2)
				}
				if d := math.Abs(p[i] - tg[i]); d < 0.01 || math.Abs(d-1.0/9) < 0.01 {
					p[i] += 0.05 // keep the kinks of |d| and of smooth L1 away
				}
			}
			loss := func() float64 { return upstream * pointLossSum(pl.f, p, tg, w) }
			gp := make([]float64, len(p))
			pointLossGrad(pl.f, p, tg, w, upstream, gp)
			closeTo(t, "dpred", gp, numericGrad(p, loss), gradTol)
			for i := 0; i < len(p); i += 3 {
				if gp[i] != 0 {
					t.Fatalf("element %d of weight 0 has gradient %g", i, gp[i])
				}
			}
		})
	}
}

// TestDetectionLossSumsByHand pins each sum on values worked out by hand,
// and that the op keeps its own copy of the caller's data.
func TestDetectionLossSumsByHand(t *testing.T) {
	g := gorgonia.NewGraph()
	pred := newInput(g, "pred", tensor.Shape{2, 2}, []float32{1, -2, 0.05, 0.5})
	target := []float32{0, 0, 0, 0}
	weight := []float32{1, 2, 1, 0}
	l1 := must(t)(L1Sum(pred, target, weight))
	sl1 := must(t)(SmoothL1Sum(pred, target, weight, 0.1))
	target[0], weight[3] = 5, 9 // the ops copied them
	logits := newInput(g, "logits", tensor.Shape{2, 2}, []float32{0, 0, 3, 1})
	ce := must(t)(SoftmaxCrossEntropySum(logits, []int{1, IgnoreLabel}, []float32{2, 1}))
	bce := must(t)(SigmoidBCESum(logits, []float32{0, 1, 1, 0}, nil))
	grads := gradRun(t, l1, pred) // runs the whole graph
	ln2 := math.Log(2)
	sp := func(x float64) float64 { return math.Log1p(math.Exp(x)) } // softplus
	closeTo(t, "l1", toF64(valueF32(t, l1)), []float64{1 + 4 + 0.05}, 1e-6)
	closeTo(t, "dl1", toF64(grads[0]), []float64{1, -2, 1, 0}, 1e-7)
	closeTo(t, "smooth_l1", toF64(valueF32(t, sl1)), []float64{(1 - 0.05) + 2*(2-0.05) + 0.5*0.05*0.05/0.1}, 1e-6)
	closeTo(t, "ce", toF64(valueF32(t, ce)), []float64{2 * ln2}, 1e-6)
	closeTo(t, "bce", toF64(valueF32(t, bce)), []float64{ln2 + ln2 + sp(-3) + sp(1)}, 1e-6)
}

func TestDetectionLossErrors(t *testing.T) {
	g := gorgonia.NewGraph()
	mat := newInput(g, "mat", tensor.Shape{2, 4}, nil)
	vec := newInput(g, "vec", tensor.Shape{4}, nil)
	eight := make([]float32, 8)
	for _, c := range []struct {
		name string
		err  func() error
	}{
		{"ce label range", func() error { _, err := SoftmaxCrossEntropySum(mat, []int{0, 4}, nil); return err }},
		{"ce negative label", func() error { _, err := SoftmaxCrossEntropySum(mat, []int{0, -1}, nil); return err }},
		{"ce label count", func() error { _, err := SoftmaxCrossEntropySum(mat, []int{0}, nil); return err }},
		{"ce weight count", func() error { _, err := SoftmaxCrossEntropySum(mat, []int{0, 1}, []float32{1}); return err }},
		{"ce vector", func() error { _, err := SoftmaxCrossEntropySum(vec, []int{0}, nil); return err }},
		{"bce targets", func() error { _, err := SigmoidBCESum(mat, eight[:4], nil); return err }},
		{"bce weights", func() error { _, err := SigmoidBCESum(mat, eight, eight[:7]); return err }},
		{"l1 targets", func() error { _, err := L1Sum(mat, eight[:3], nil); return err }},
		{"l1 nil pred", func() error { _, err := L1Sum(nil, eight, nil); return err }},
		{"smooth l1 beta 0", func() error { _, err := SmoothL1Sum(mat, eight, nil, 0); return err }},
		{"smooth l1 beta NaN", func() error { _, err := SmoothL1Sum(mat, eight, nil, math.NaN()); return err }},
	} {
		if err := c.err(); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
}
