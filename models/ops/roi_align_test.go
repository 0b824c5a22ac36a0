package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestRoIAlignFixtures runs the op in a graph on the cases of
// scripts/fixtures/roi_align_fixtures.py (torchvision's roi_align per
// level, assembled as mmdet's SingleRoIExtractor does) and compares the
// pooled features and every level's gradient.
func TestRoIAlignFixtures(t *testing.T) {
	cases := loadFixtureFile(t, "roi_align_fixtures")
	if len(cases) == 0 {
		t.Fatal("no RoIAlign fixtures")
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			var p struct {
				Out           [2]int
				SpatialScales []float64 `json:"spatial_scales"`
				SamplingRatio int       `json:"sampling_ratio"`
				Aligned       bool
			}
			c.params(t, &p)
			var batch, level []int
			c.ints(t, "batch", &batch)
			c.ints(t, "level", &level)
			boxes, _ := c.get(t, "boxes")
			rois := make([]RoI, len(batch))
			for k := range rois {
				rois[k] = RoI{Batch: batch[k], Level: level[k], Box: [4]float32(boxes[4*k : 4*k+4])}
			}
			g := gorgonia.NewGraph()
			feats := make([]*gorgonia.Node, len(p.SpatialScales))
			for l := range feats {
				feats[l] = c.input(t, g, fmt.Sprintf("x%d", l))
			}
			y := must(t)(RoIAlign(feats, rois, RoIAlignParams{OutH: p.Out[0], OutW: p.Out[1],
				SpatialScales: p.SpatialScales, SamplingRatio: p.SamplingRatio, Aligned: p.Aligned}))
			gy, _ := c.get(t, "gy")
			grads := gradRun(t, must(t)(weightedSum(y, gy)), feats...)
			c.expect(t, "y", valueF32(t, y))
			for l, gx := range grads {
				c.expect(t, fmt.Sprintf("gx%d", l), gx)
			}
		})
	}
}

// roiTestLevels are three levels of a two-image, two-channel batch: a
// 32x40 input at strides 4, 8 and 16.
var roiTestLevels = []tensor.Shape{{2, 2, 8, 10}, {2, 2, 4, 5}, {2, 2, 2, 3}}

var roiTestScales = []float64{0.25, 0.125, 0.0625}

// randomRoIs draws RoIs over a 32x40 input and two images, a third of them reaching past
// its border, some entirely outside and some under a pixel.
func randomRoIs(rng *rand.Rand, k, levels int) []RoI {
	rois := make([]RoI, k)
	for i := range rois {
		x1, y1 := rng.Float32()*60-10, rng.Float32()*50-10
		w, h := rng.Float32()*30, rng.Float32()*25
		if i%5 == 0 {
			w, h = rng.Float32(), rng.Float32()
		}
		rois[i] = RoI{Batch: rng.IntN(2), Level: rng.IntN(levels), Box: [4]float32{x1, y1, x1 + w, y1 + h}}
	}
	return rois
}

func TestRoIAlignGradientsMatchFiniteDifferences(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    RoIAlignParams
	}{
		{"aligned_adaptive", RoIAlignParams{OutH: 3, OutW: 2, SamplingRatio: 0, Aligned: true}},
		{"aligned_ratio2", RoIAlignParams{OutH: 2, OutW: 3, SamplingRatio: 2, Aligned: true}},
		{"unaligned_adaptive", RoIAlignParams{OutH: 2, OutW: 2, SamplingRatio: 0}},
		{"unaligned_ratio2", RoIAlignParams{OutH: 3, OutW: 3, SamplingRatio: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(11, 11))
			p := tc.p
			p.SpatialScales = roiTestScales
			plan, err := newRoIAlignPlan[float64](roiTestLevels, randomRoIs(rng, 12, len(roiTestLevels)), p)
			if err != nil {
				t.Fatal(err)
			}
			feats := make([][]float64, len(roiTestLevels))
			for l, s := range roiTestLevels {
				feats[l] = randSlice(rng, s.TotalSize())
			}
			y := make([]float64, len(plan.rois)*plan.c*p.OutH*p.OutW)
			r := randSlice(rng, len(y))
			loss := func() float64 {
				roiAlignForward(plan, feats, y)
				return dot(y, r)
			}
			for l, s := range roiTestLevels {
				gx := make([]float64, s.TotalSize())
				roiAlignBackward(plan, l, r, gx)
				closeTo(t, fmt.Sprintf("dx%d", l), gx, numericGrad(feats[l], loss), gradTol)
			}
		})
	}
}

// TestRoIAlignBackwardDeterministic checks that the gradient does not
// depend on how many workers scatter it: overlapping RoIs must add up in
// the same order whatever the split.
func TestRoIAlignBackwardDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 12))
	levels := []tensor.Shape{{2, 8, 16, 20}, {2, 8, 8, 10}}
	plan, err := newRoIAlignPlan[float32](levels, randomRoIs(rng, 200, len(levels)), RoIAlignParams{
		OutH: 7, OutW: 7, SpatialScales: []float64{0.5, 0.25}, Aligned: true})
	if err != nil {
		t.Fatal(err)
	}
	gy := randF32(rng, len(plan.rois)*plan.c*49)
	gradients := func(procs int) [][]float32 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		gx := make([][]float32, len(levels))
		for l, s := range levels {
			gx[l] = make([]float32, s.TotalSize())
			roiAlignBackward(plan, l, gy, gx[l])
		}
		return gx
	}
	want := gradients(1)
	for _, procs := range []int{2, 3, 8} {
		for l, got := range gradients(procs) {
			if !slices.Equal(got, want[l]) {
				t.Fatalf("level %d: the gradient with %d workers differs from the one with 1", l, procs)
			}
		}
	}
}

// TestRoIAlignBorders pins the border rules on a map whose pixel (y, x)
// holds 1 + 10y + x, so every bilinear sample inside is exact: aligned
// boxes centred on pixels read them exactly, a box more than a pixel
// outside the map reads nothing, a box within a pixel of the top-left
// edge reads the edge pixel, and samples on the far edges read the last
// row and column. A second level that no RoI reads gets a zero gradient,
// and each RoI that reads anything passes its whole unit of gradient to
// the first level.
func TestRoIAlignBorders(t *testing.T) {
	g := gorgonia.NewGraph()
	data := make([]float32, 4*5)
	for y := range 4 {
		for x := range 5 {
			data[y*5+x] = float32(1 + 10*y + x)
		}
	}
	feat := newInput(g, "feat", tensor.Shape{1, 1, 4, 5}, data)
	unused := newInput(g, "unused", tensor.Shape{1, 1, 2, 3}, nil)
	rois := []RoI{
		{Box: [4]float32{1, 2, 2, 3}},     // the pixel (2, 1) exactly, 1x1 output
		{Box: [4]float32{-5, -5, -2, -2}}, // all samples beyond -1: zero
		{Box: [4]float32{-1, -1, 0, 0}},   // samples at -1 clamp to pixel 0
		{Box: [4]float32{5, 4, 6, 5}},     // samples on the far edges (x = W, y = H): the last pixel
		{Box: [4]float32{20, 0, 21, 1}},   // x far beyond the right edge: zero
		{Box: [4]float32{1.5, 1, 2.5, 2}}, // halfway between columns 1 and 2 of row 1: average
	}
	y := must(t)(RoIAlign([]*gorgonia.Node{feat, unused}, rois, RoIAlignParams{
		OutH: 1, OutW: 1, SpatialScales: []float64{1, 0.5}, SamplingRatio: 1, Aligned: true}))
	ones := []float32{1, 1, 1, 1, 1, 1}
	grads := gradRun(t, must(t)(weightedSum(y, ones)), feat, unused)
	got := valueF32(t, y)
	want := []float32{22, 0, 1, 35, 0, 12.5}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-6 {
			t.Errorf("RoI %d %v: pooled %g, want %g", i, rois[i].Box, got[i], want[i])
		}
	}
	var mass float32
	for _, v := range grads[0] {
		mass += v
	}
	if mass != 4 {
		t.Errorf("the first level's gradient sums to %g, want 4 (one per RoI that reads the map)", mass)
	}
	if !slices.Equal(grads[1], make([]float32, 6)) {
		t.Errorf("the level no RoI reads has gradient %v, want zeros", grads[1])
	}
}

func TestRoIAlignErrors(t *testing.T) {
	g := gorgonia.NewGraph()
	f0 := newInput(g, "p2", tensor.Shape{2, 3, 8, 8}, nil)
	f1 := newInput(g, "p3", tensor.Shape{2, 3, 4, 4}, nil)
	other := newInput(g, "odd", tensor.Shape{2, 4, 4, 4}, nil)
	flat := newInput(g, "flat", tensor.Shape{2, 3, 4}, nil)
	ok := RoIAlignParams{OutH: 7, OutW: 7, SpatialScales: []float64{0.25, 0.125}}
	good := []RoI{{Batch: 1, Level: 1, Box: [4]float32{0, 0, 8, 8}}}
	with := func(edit func(*RoIAlignParams)) RoIAlignParams {
		p := ok
		edit(&p)
		return p
	}
	for _, tc := range []struct {
		name  string
		feats []*gorgonia.Node
		rois  []RoI
		p     RoIAlignParams
		want  string
	}{
		{"no levels", nil, good, ok, "no feature maps"},
		{"scales", []*gorgonia.Node{f0, f1}, good, with(func(p *RoIAlignParams) { p.SpatialScales = p.SpatialScales[:1] }), "1 spatial scales for 2"},
		{"scale zero", []*gorgonia.Node{f0, f1}, good, with(func(p *RoIAlignParams) { p.SpatialScales = []float64{0.25, 0} }), "spatial scale 0 of level 1"},
		{"output", []*gorgonia.Node{f0, f1}, good, with(func(p *RoIAlignParams) { p.OutW = 0 }), "output size 7x0"},
		{"ratio", []*gorgonia.Node{f0, f1}, good, with(func(p *RoIAlignParams) { p.SamplingRatio = -1 }), "sampling ratio -1"},
		{"channels", []*gorgonia.Node{f0, other}, good, ok, `level 1 "odd" has shape (2, 4, 4, 4)`},
		{"dims", []*gorgonia.Node{f0, flat}, good, ok, `level 1 "flat"`},
		{"no rois", []*gorgonia.Node{f0, f1}, nil, ok, "no RoIs"},
		{"level", []*gorgonia.Node{f0, f1}, append(good, RoI{Level: 2}), ok, "RoI 1 has level 2"},
		{"batch", []*gorgonia.Node{f0, f1}, append(good, RoI{Batch: -1}), ok, "RoI 1 has batch index -1"},
		{"box", []*gorgonia.Node{f0, f1}, append(good, good[0], RoI{Box: [4]float32{0, float32(math.NaN()), 1, 1}}), ok, "RoI 2 has box [0 NaN 1 1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := RoIAlign(tc.feats, tc.rois, tc.p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// BenchmarkRoIAlign times the op at Faster R-CNN's training scale: two
// 800x1344 images, FPN levels at strides 4 to 32 with 256 channels, 1000
// RoIs (mmdet's 512 sampled per image, rounded) pooled to 7x7 with adaptive
// sampling and aligned boxes, each RoI on the level mmdet's
// SingleRoIExtractor maps its scale to. "bwd" computes every level's
// gradient.
func BenchmarkRoIAlign(b *testing.B) {
	const n, c, imgH, imgW, k = 2, 256, 800, 1344, 1000
	rng := rand.New(rand.NewPCG(13, 13))
	var levels []tensor.Shape
	var scales []float64
	for stride := 4; stride <= 32; stride *= 2 {
		levels = append(levels, tensor.Shape{n, c, (imgH + stride - 1) / stride, (imgW + stride - 1) / stride})
		scales = append(scales, 1/float64(stride))
	}
	rois := make([]RoI, k)
	for i := range rois {
		// Box sides log-uniform in [16, 640] pixels.
		w, h := 16*math.Pow(40, rng.Float64()), 16*math.Pow(40, rng.Float64())
		x1, y1 := rng.Float64()*(imgW-w), rng.Float64()*(imgH-h)
		level := min(max(int(math.Floor(math.Log2(math.Sqrt(w*h)/56+1e-6))), 0), len(levels)-1)
		rois[i] = RoI{Batch: i % n, Level: level, Box: [4]float32{float32(x1), float32(y1), float32(x1 + w), float32(y1 + h)}}
	}
	plan, err := newRoIAlignPlan[float32](levels, rois, RoIAlignParams{OutH: 7, OutW: 7, SpatialScales: scales, Aligned: true})
	if err != nil {
		b.Fatal(err)
	}
	feats := make([][]float32, len(levels))
	for l, s := range levels {
		feats[l] = benchData(rng, s.TotalSize())
	}
	y := make([]float32, k*c*49)
	gy := benchData(rng, len(y))
	b.Run("fwd", func(b *testing.B) {
		for b.Loop() {
			roiAlignForward(plan, feats, y)
		}
	})
	gx := make([][]float32, len(levels))
	for l, s := range levels {
		gx[l] = make([]float32, s.TotalSize())
	}
	b.Run("bwd", func(b *testing.B) {
		for b.Loop() {
			for l := range levels {
				roiAlignBackward(plan, l, gy, gx[l])
			}
		}
	})
}
