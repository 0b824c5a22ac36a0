package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Float64 gradient checks of every kernel besides convolution and batch
// norm (conv_test.go, batchnorm_test.go): each backward must match central
// differences of its forward, through the loss L = Σ y·r.

type kernelCase struct {
	name string
	in   int // input size
	out  int // output size
	fwd  func(x, y []float64)
	bwd  func(x, y, gy, gx []float64)
}

func kernelCases() []kernelCase {
	const n, c, h, w = 2, 4, 5, 6
	hw := h * w
	pool := func(kh, kw, s, p, h, w int) poolGeom {
		return poolGeom{planes: n * c, h: h, w: w, kh: kh, kw: kw, sh: s, sw: s, ph: p, pw: p,
			hout: (h+2*p-kh)/s + 1, wout: (w+2*p-kw)/s + 1}
	}
	up := func(name string, outH, outW int) kernelCase {
		rows, cols := nearestIndex(h, outH), nearestIndex(w, outW)
		return kernelCase{name, n * c * hw, n * c * outH * outW,
			func(x, y []float64) { upsampleForward(n*c, hw, rows, cols, w, x, y) },
			func(_, _, gy, gx []float64) { upsampleBackward(n*c, hw, rows, cols, w, gy, gx) }}
	}
	mp := func(name string, g poolGeom) kernelCase {
		return kernelCase{name, n * c * g.h * g.w, n * c * g.hout * g.wout,
			func(x, y []float64) { maxPoolForward(g, x, y) },
			func(x, _, gy, gx []float64) { maxPoolBackward(g, x, gy, gx) }}
	}
	return []kernelCase{
		{"relu", n * c * hw, n * c * hw,
			func(x, y []float64) { reluForward(x, y) },
			func(_, y, gy, gx []float64) { reluBackward(y, gy, gx) }},
		{"channel_slice", n * c * hw, n * 2 * hw,
			func(x, y []float64) { copyChannels(n, hw, x, c, 1, y, 2, 0, 2) },
			func(_, _, gy, gx []float64) { clear(gx); copyChannels(n, hw, gy, 2, 0, gx, c, 1, 2) }},
		{"shuffle2", n * c * hw, n * c * hw,
			func(x, y []float64) { shuffleChannels(n, c, hw, 2, x, y) },
			func(_, _, gy, gx []float64) { shuffleChannels(n, c, hw, c/2, gy, gx) }},
		{"sigmoid", n * c * hw, n * c * hw,
			func(x, y []float64) { sigmoidForward(x, y) },
			func(_, y, gy, gx []float64) { sigmoidBackward(y, gy, gx) }},
		{"global_avg_pool", n * c * hw, n * c,
			func(x, y []float64) { globalAvgPool(n*c, hw, x, y) },
			func(_, _, gy, gx []float64) { globalAvgPoolBackward(n*c, hw, gy, gx) }},
		mp("maxpool_k3s2p1", pool(3, 3, 2, 1, h, w)),
		mp("maxpool_k2s2", pool(2, 2, 2, 0, h, w)),
		mp("maxpool_k3s1p1_overlapping", pool(3, 3, 1, 1, h, w)),
		mp("maxpool_k1s2", pool(1, 1, 2, 0, h, w)),
		up("upsample2x", 2*h, 2*w),
		up("upsample_7x9", 7, 9),
		up("upsample_shrink", 3, 4),
		{"softmax", n * c * w, n * c * w,
			func(x, y []float64) { softmaxForward(n*c, w, x, y) },
			func(_, y, gy, gx []float64) { softmaxBackward(n*c, w, y, gy, gx) }},
	}
}

func TestKernelGradientsMatchFiniteDifferences(t *testing.T) {
	for _, kc := range kernelCases() {
		t.Run(kc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(8, 8))
			x := randSlice(rng, kc.in)
			for i := range x {
				if math.Abs(x[i]) < 0.01 {
					x[i] += 0.05 // keep ReLU off its kink
				}
			}
			r := randSlice(rng, kc.out)
			y := make([]float64, kc.out)
			loss := func() float64 {
				kc.fwd(x, y)
				return dot(y, r)
			}
			loss()
			gx := make([]float64, kc.in)
			kc.bwd(x, y, r, gx)
			closeTo(t, "dx", gx, numericGrad(x, loss), gradTol)
		})
	}
}

func TestLinearGradientsMatchFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	const n, in, out = 3, 5, 4
	x, w, b := randSlice(rng, n*in), randSlice(rng, out*in), randSlice(rng, out)
	r := randSlice(rng, n*out)
	y := make([]float64, n*out)
	loss := func() float64 {
		linearForward(n, in, out, x, w, b, y)
		return dot(y, r)
	}
	gx, gw, gb := make([]float64, len(x)), make([]float64, len(w)), make([]float64, len(b))
	linearBackwardInput(n, in, out, w, r, gx)
	linearBackwardWeight(n, in, out, x, r, gw)
	columnSums(n, out, r, gb)
	closeTo(t, "dx", gx, numericGrad(x, loss), gradTol)
	closeTo(t, "dw", gw, numericGrad(w, loss), gradTol)
	closeTo(t, "db", gb, numericGrad(b, loss), gradTol)
}

func TestLossGradientsMatchFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 10))
	const upstream = 0.7 // the gradient arriving at the scalar loss
	t.Run("cross_entropy", func(t *testing.T) {
		const n, k = 4, 5
		labels := []int{0, 4, 2, 2}
		for _, eps := range []float64{0, 0.1} {
			x := randSlice(rng, n*k)
			loss := func() float64 { return upstream * crossEntropySum(n, k, x, labels, eps, nil) / n }
			gx := make([]float64, len(x))
			crossEntropyBackward(n, k, x, labels, eps, nil, upstream/n, gx)
			closeTo(t, "dx", gx, numericGrad(x, loss), gradTol)
		}
	})
	for _, pl := range []struct {
		name string
		f    pointLoss
	}{{"bce", bceWithLogits}, {"l1", l1}, {"smooth_l1_beta1", smoothL1(1)}, {"smooth_l1_beta0.3", smoothL1(0.3)}} {
		t.Run(pl.name, func(t *testing.T) {
			p, tg, w := randSlice(rng, 12), randSlice(rng, 12), randSlice(rng, 12)
			for i := range w {
				w[i] = math.Abs(w[i]) + 0.5
				if pl.name == "bce" {
					tg[i] = math.Abs(tg[i])
				}
				if d := math.Abs(p[i] - tg[i]); d < 0.01 || math.Abs(d-0.3) < 0.01 || math.Abs(d-1) < 0.01 {
					p[i] += 0.05 // keep the kinks of |d| and of smooth L1 away
				}
			}
			loss := func() float64 { return upstream * pointLossSum(pl.f, p, tg, w) }
			gp := make([]float64, len(p))
			pointLossGrad(pl.f, p, tg, w, upstream, gp)
			closeTo(t, "dpred", gp, numericGrad(p, loss), gradTol)
		})
	}
}

func TestBCEWithLogitsIsStableForLargeLogits(t *testing.T) {
	for _, c := range []struct{ x, t, loss, grad float64 }{
		{100, 1, 0, 0},
		{-100, 0, 0, 0},
		{100, 0, 100, 1},
		{-100, 1, 100, -1},
	} {
		l, g := bceWithLogits(c.x, c.t)
		if math.Abs(l-c.loss) > 1e-9 || math.Abs(g-c.grad) > 1e-9 {
			t.Errorf("bce(%g, %g) = %g, %g; want %g, %g", c.x, c.t, l, g, c.loss, c.grad)
		}
	}
}

func TestNearestIndexMatchesPyTorch(t *testing.T) {
	// Values from torch.nn.functional.interpolate(mode="nearest", size=...)
	// applied to arange(in).
	cases := []struct {
		in, out int
		want    []int
	}{
		{3, 6, []int{0, 0, 1, 1, 2, 2}},
		{4, 7, []int{0, 0, 1, 1, 2, 2, 3}},
		{5, 9, []int{0, 0, 1, 1, 2, 2, 3, 3, 4}},
		{5, 3, []int{0, 1, 3}},
		{7, 4, []int{0, 1, 3, 5}},
	}
	for _, c := range cases {
		got := nearestIndex(c.in, c.out)
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("nearestIndex(%d, %d) = %v, want %v", c.in, c.out, got, c.want)
				break
			}
		}
	}
}

// TestConcatShuffleMatchesTwoOps checks ConcatShuffle against ChannelConcat
// followed by ChannelShuffle, output and every input's gradient bit for bit,
// with equal and unequal inputs and two to four groups.
func TestConcatShuffleMatchesTwoOps(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 21))
	for _, tc := range []struct {
		groups   int
		channels []int
	}{{2, []int{3, 3}}, {2, []int{2, 4}}, {3, []int{1, 4, 4}}, {4, []int{8}}, {2, []int{5, 1, 2}}} {
		c := 0
		for _, ci := range tc.channels {
			c += ci
		}
		data := make([][]float32, len(tc.channels))
		for i, ci := range tc.channels {
			data[i] = randF32(rng, 2*ci*3*2)
		}
		gy := randF32(rng, 2*c*3*2)
		run := func(fused bool) [][]float32 {
			g := gorgonia.NewGraph()
			var xs gorgonia.Nodes
			for i, ci := range tc.channels {
				xs = append(xs, newInput(g, fmt.Sprintf("x%d", i), tensor.Shape{2, ci, 3, 2}, slices.Clone(data[i])))
			}
			var y *gorgonia.Node
			if fused {
				y = must(t)(ConcatShuffle(tc.groups, xs...))
			} else {
				y = must(t)(ChannelShuffle(must(t)(channelConcat(xs...)), tc.groups))
			}
			grads := gradRun(t, must(t)(weightedSum(y, gy)), xs...)
			return append([][]float32{valueF32(t, y)}, grads...)
		}
		want, got := run(false), run(true)
		for i := range want {
			if !slices.Equal(got[i], want[i]) {
				t.Errorf("groups %d, inputs %v: value %d (0 the output, then the gradients) = %v, the two ops give %v", tc.groups, tc.channels, i, got[i], want[i])
			}
		}
	}
	g := gorgonia.NewGraph()
	x := newInput(g, "x", tensor.Shape{1, 3, 2, 2}, nil)
	if _, err := ConcatShuffle(2, x); err == nil {
		t.Error("ConcatShuffle accepted 3 channels in 2 groups")
	}
}
