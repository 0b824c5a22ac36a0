package metrics

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// expectedEval is what scripts/fixtures/coco_eval_fixtures.py recorded from
// pycocotools for one test set.
type expectedEval struct {
	Stats   [12]float64 `json:"stats"`
	Summary string      `json:"summary"`
}

// pycocotoolsTolerance bounds the difference to pycocotools' numbers. The
// evaluator repeats numpy's operation order (including its pairwise mean),
// so the sets agree to the last bit today; the tolerance only allows for a
// different numpy summing differently, far below the 0.001 printed.
const pycocotoolsTolerance = 1e-9

func TestEvaluateBBoxMatchesPycocotools(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "coco", "*"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"all_undefined", "basic", "crowd", "empty_results", "gt_id_zero", "many_dets", "random", "ties"}
	var got []string
	for _, d := range dirs {
		got = append(got, filepath.Base(d))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("test sets = %v, want %v; regenerate with scripts/fixtures/coco_eval_fixtures.py", got, want)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			gt, err := LoadCOCOGT(filepath.Join(dir, "gt.json"))
			if err != nil {
				t.Fatal(err)
			}
			dets, err := LoadResults(filepath.Join(dir, "results.json"), gt)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(dir, "expected.json"))
			if err != nil {
				t.Fatal(err)
			}
			var exp expectedEval
			if err := json.Unmarshal(raw, &exp); err != nil {
				t.Fatal(err)
			}
			ev, err := EvaluateBBox(gt, dets, Params{})
			if err != nil {
				t.Fatal(err)
			}
			stats := ev.Stats()
			for i := range stats {
				if math.Abs(stats[i]-exp.Stats[i]) > pycocotoolsTolerance {
					t.Errorf("stats[%d] = %.17g, pycocotools %.17g", i, stats[i], exp.Stats[i])
				} else if stats[i] != exp.Stats[i] {
					t.Logf("stats[%d] = %.17g, pycocotools %.17g (within tolerance, not bit-equal)", i, stats[i], exp.Stats[i])
				}
			}
			if s := ev.Summary(); s != exp.Summary {
				t.Errorf("summary differs from pycocotools:\n got:\n%s\nwant:\n%s", s, exp.Summary)
			}
		})
	}
}

// TestEvaluateBBoxHandComputed pins the matching rules on cases small
// enough to work out on paper, independent of the recorded fixtures.
func TestEvaluateBBoxHandComputed(t *testing.T) {
	cats := []Category{{ID: 1}}
	tests := []struct {
		name string
		anns []Annotation
		dets []Detection
		want [12]float64
	}{
		{
			name: "one exact match of a medium box",
			anns: []Annotation{{ID: 1, ImageID: 1, CategoryID: 1, BBox: [4]float64{0, 0, 40, 40}, Area: 1600}},
			dets: []Detection{{ImageID: 1, CategoryID: 1, BBox: [4]float64{0, 0, 40, 40}, Score: 0.5}},
			want: [12]float64{1, 1, 1, -1, 1, -1, 1, 1, 1, -1, 1, -1},
		},
		{
			// IoU = 30*40/(1600+1600-1200) = 0.6: a hit at 0.50, 0.55, 0.60.
			name: "partial overlap counts up to its IoU",
			anns: []Annotation{{ID: 1, ImageID: 1, CategoryID: 1, BBox: [4]float64{0, 0, 40, 40}, Area: 1600}},
			dets: []Detection{{ImageID: 1, CategoryID: 1, BBox: [4]float64{10, 0, 40, 40}, Score: 0.5}},
			want: [12]float64{0.3, 1, 0, -1, 0.3, -1, 0.3, 0.3, 0.3, -1, 0.3, -1},
		},
		{
			// The crowd region absorbs the better-scored detection
			// (intersection over its own area is 1), so it is neither a hit
			// nor a miss; with maxDets=1 it is the only one kept, so AR@1 is 0.
			name: "detection inside a crowd region is ignored",
			anns: []Annotation{
				{ID: 1, ImageID: 1, CategoryID: 1, BBox: [4]float64{0, 0, 10, 10}, Area: 100},
				{ID: 2, ImageID: 1, CategoryID: 1, BBox: [4]float64{0, 0, 300, 300}, Area: 90000, IsCrowd: true},
			},
			dets: []Detection{
				{ImageID: 1, CategoryID: 1, BBox: [4]float64{0, 0, 10, 10}, Score: 0.4},
				{ImageID: 1, CategoryID: 1, BBox: [4]float64{100, 100, 50, 50}, Score: 0.9},
			},
			want: [12]float64{1, 1, 1, 1, -1, -1, 0, 1, 1, 1, -1, -1},
		},
		{
			// Two equal-score duplicates: the first in input order takes
			// the box, the second is a false positive ranked after it.
			name: "score ties keep input order",
			anns: []Annotation{{ID: 1, ImageID: 1, CategoryID: 1, BBox: [4]float64{0, 0, 40, 40}, Area: 1600}},
			dets: []Detection{
				{ImageID: 1, CategoryID: 1, BBox: [4]float64{0, 0, 40, 40}, Score: 0.5},
				{ImageID: 1, CategoryID: 1, BBox: [4]float64{0, 0, 40, 40}, Score: 0.5},
			},
			want: [12]float64{1, 1, 1, -1, 1, -1, 1, 1, 1, -1, 1, -1},
		},
		{
			// The miss comes first: precision at every recall point is 1/2.
			name: "false positive ranked first halves precision",
			anns: []Annotation{{ID: 1, ImageID: 1, CategoryID: 1, BBox: [4]float64{0, 0, 40, 40}, Area: 1600}},
			dets: []Detection{
				{ImageID: 1, CategoryID: 1, BBox: [4]float64{0, 0, 40, 40}, Score: 0.5},
				{ImageID: 1, CategoryID: 1, BBox: [4]float64{200, 200, 40, 40}, Score: 0.6},
			},
			want: [12]float64{0.5, 0.5, 0.5, -1, 0.5, -1, 0, 1, 1, -1, 1, -1},
		},
		{
			name: "no detections",
			anns: []Annotation{{ID: 1, ImageID: 1, CategoryID: 1, BBox: [4]float64{0, 0, 10, 10}, Area: 100}},
			want: [12]float64{0, 0, 0, 0, -1, -1, 0, 0, 0, 0, -1, -1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gt, err := NewGroundTruth("test", []Image{{ID: 1}}, tc.anns, cats)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := EvaluateBBox(gt, tc.dets, Params{})
			if err != nil {
				t.Fatal(err)
			}
			got := ev.Stats()
			for i := range got {
				if math.Abs(got[i]-tc.want[i]) > 1e-12 {
					t.Errorf("stats = %v, want %v", got, tc.want)
					break
				}
			}
		})
	}
}

func TestEvaluateBBoxMaxDetsParams(t *testing.T) {
	gt, err := NewGroundTruth("test", []Image{{ID: 1}}, []Annotation{
		{ID: 1, ImageID: 1, CategoryID: 1, BBox: [4]float64{0, 0, 40, 40}, Area: 1600},
		{ID: 2, ImageID: 1, CategoryID: 1, BBox: [4]float64{100, 0, 40, 40}, Area: 1600},
	}, []Category{{ID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	dets := []Detection{
		{ImageID: 1, CategoryID: 1, BBox: [4]float64{0, 0, 40, 40}, Score: 0.9},
		{ImageID: 1, CategoryID: 1, BBox: [4]float64{100, 0, 40, 40}, Score: 0.8},
	}
	ev, err := EvaluateBBox(gt, dets, Params{MaxDets: [3]int{1, 2, 300}})
	if err != nil {
		t.Fatal(err)
	}
	stats := ev.Stats()
	// stats[0] always asks for maxDets=100, absent here, so it is -1 as in
	// pycocotools; the AR at one detection per image recalls half the boxes.
	if stats[0] != -1 || stats[1] != 1 || stats[6] != 0.5 || stats[7] != 1 {
		t.Errorf("stats = %v, want stats[0]=-1, stats[1]=1, stats[6]=0.5, stats[7]=1", stats)
	}
	if !strings.Contains(ev.Summary(), "| area=   all | maxDets=300 ] = 1.000") {
		t.Errorf("summary does not show maxDets=300:\n%s", ev.Summary())
	}
	if _, err := EvaluateBBox(gt, dets, Params{MaxDets: [3]int{10, 10, 100}}); err == nil {
		t.Error("maxDets [10 10 100] was accepted; they must be strictly ascending")
	}
}

func TestEvaluateBBoxRejectsBadDetections(t *testing.T) {
	gt, err := NewGroundTruth("gt.json", []Image{{ID: 1}}, nil, []Category{{ID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	good := Detection{ImageID: 1, CategoryID: 1, BBox: [4]float64{0, 0, 1, 1}, Score: 0.5}
	tests := []struct {
		name   string
		mutate func(d *Detection)
		want   string
	}{
		{"unknown image", func(d *Detection) { d.ImageID = 9 }, "detection 1: image_id 9 is not an image"},
		{"unknown category", func(d *Detection) { d.CategoryID = 4 }, "detection 1: category_id 4 is not a category"},
		{"NaN score", func(d *Detection) { d.Score = math.NaN() }, "detection 1: score NaN"},
		{"negative width", func(d *Detection) { d.BBox[2] = -1 }, "negative width or height"},
		{"infinite coordinate", func(d *Detection) { d.BBox[0] = math.Inf(1) }, "non-finite"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad := good
			tc.mutate(&bad)
			_, err := EvaluateBBox(gt, []Detection{good, bad}, Params{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := EvaluateBBox(nil, nil, Params{}); err == nil {
		t.Error("a nil ground truth was accepted")
	}
}

func TestLinspaceMatchesNumpy(t *testing.T) {
	// numpy.linspace(.5, .95, 10)[8] is 0.8999999999999999, not 0.9, and
	// numpy.linspace(0, 1, 101)[57] is 0.5700000000000001: thresholds must
	// be these exact doubles.
	iou := linspace(0.5, 0.95, numIoUThresholds)
	if iou[8] != 0.8999999999999999 || iou[5] != 0.75 || iou[9] != 0.95 {
		t.Errorf("IoU thresholds = %v", iou)
	}
	rec := linspace(0, 1, numRecallThresholds)
	if rec[57] != 0.5700000000000001 || rec[29] != 0.29 || rec[100] != 1 {
		t.Errorf("recall thresholds [29]=%v [57]=%v [100]=%v", rec[29], rec[57], rec[100])
	}
}

func TestNumpySumOrder(t *testing.T) {
	// Values whose sum depends on the order of additions: a naive loop
	// loses every 1 added to 1e16, numpy's blocks keep some of them.
	values := make([]float64, 20000)
	for i := range values {
		values[i] = 1
	}
	values[0] = 1e16
	naive := 0.0
	for _, v := range values {
		naive += v
	}
	if got := numpySum(values); got == naive {
		t.Errorf("numpySum = %v equals the naive sum; it should add in numpy's block order", got)
	}
	// The expected value is numpy.add.reduce of the same array (numpy 1.24).
	if got, want := numpySum(values), 1.0000000000019984e16; got != want {
		t.Errorf("numpySum = %.17g, want %.17g (numpy.add.reduce)", got, want)
	}
}

// syntheticSet builds a COCO-sized evaluation problem: images x 7 ground
// truth boxes over 80 categories and 100 detections per image.
func syntheticSet(tb testing.TB, images int, seed uint64) (*GroundTruth, []Detection) {
	rng := rand.New(rand.NewPCG(seed, 0))
	var imgs []Image
	var anns []Annotation
	var dets []Detection
	cats := make([]Category, 80)
	for i := range cats {
		cats[i] = Category{ID: int64(i + 1), Name: fmt.Sprint("c", i+1)}
	}
	for img := 1; img <= images; img++ {
		imgs = append(imgs, Image{ID: int64(img)})
		var boxes [][4]float64
		var labels []int64
		for range 7 {
			s := 8 + rng.Float64()*200
			b := [4]float64{rng.Float64() * 500, rng.Float64() * 400, s * (0.6 + 0.8*rng.Float64()), s * (0.6 + 0.8*rng.Float64())}
			c := int64(1 + rng.IntN(80))
			anns = append(anns, Annotation{ID: int64(len(anns) + 1), ImageID: int64(img), CategoryID: c, BBox: b, Area: b[2] * b[3] * 0.8, IsCrowd: rng.IntN(50) == 0})
			boxes, labels = append(boxes, b), append(labels, c)
		}
		for range 100 {
			j := rng.IntN(len(boxes))
			b := boxes[j]
			c := labels[j]
			if rng.IntN(3) == 0 {
				c = int64(1 + rng.IntN(80))
			}
			jit := 0.2 * b[2]
			d := [4]float64{b[0] + (rng.Float64()-0.5)*jit, b[1] + (rng.Float64()-0.5)*jit, b[2] * (0.8 + 0.4*rng.Float64()), b[3] * (0.8 + 0.4*rng.Float64())}
			dets = append(dets, Detection{ImageID: int64(img), CategoryID: c, BBox: d, Score: float64(rng.IntN(1000)) / 1000})
		}
	}
	gt, err := NewGroundTruth("synthetic", imgs, anns, cats)
	if err != nil {
		tb.Fatal(err)
	}
	return gt, dets
}

func TestEvaluateBBoxSyntheticIsDeterministic(t *testing.T) {
	gt, dets := syntheticSet(t, 50, 1)
	a, err := EvaluateBBox(gt, dets, Params{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := EvaluateBBox(gt, dets, Params{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Stats() != b.Stats() {
		t.Errorf("two runs differ: %v vs %v", a.Stats(), b.Stats())
	}
	for i, s := range a.Stats() {
		if s < 0 || s > 1 {
			t.Errorf("stats[%d] = %v, want a value in [0, 1] on a set with boxes of every size", i, s)
		}
	}
}

// BenchmarkEvaluateBBox5000 evaluates a COCO val-sized set: 5000 images,
// 35000 boxes, 500000 detections over 80 categories.
func BenchmarkEvaluateBBox5000(b *testing.B) {
	gt, dets := syntheticSet(b, 5000, 7)
	b.ResetTimer()
	for b.Loop() {
		if _, err := EvaluateBBox(gt, dets, Params{}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestEvaluateBBoxRevalidatesEditedGroundTruth(t *testing.T) {
	gt, err := NewGroundTruth("gt.json", []Image{{ID: 1}}, nil, []Category{{ID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	gt.Annotations = append(gt.Annotations, Annotation{ID: 1, ImageID: 2, CategoryID: 1, BBox: [4]float64{0, 0, 1, 1}, Area: 1})
	_, err = EvaluateBBox(gt, nil, Params{})
	if err == nil || !strings.Contains(err.Error(), "image_id 2, which is not in \"images\"") {
		t.Errorf("error = %v, want one saying image_id 2 is not listed", err)
	}
}

// loadFixture reads one pycocotools test set.
func loadFixture(t *testing.T, name string) (*GroundTruth, []Detection) {
	t.Helper()
	dir := filepath.Join("testdata", "coco", name)
	gt, err := LoadCOCOGT(filepath.Join(dir, "gt.json"))
	if err != nil {
		t.Fatal(err)
	}
	dets, err := LoadResults(filepath.Join(dir, "results.json"), gt)
	if err != nil {
		t.Fatal(err)
	}
	return gt, dets
}

func TestEvaluateBBoxIoUThresholds(t *testing.T) {
	gt, dets := loadFixture(t, "random")
	def, err := EvaluateBBox(gt, dets, Params{})
	if err != nil {
		t.Fatal(err)
	}
	explicit, err := EvaluateBBox(gt, dets, Params{IoUThrs: linspace(0.5, 0.95, numIoUThresholds)})
	if err != nil {
		t.Fatal(err)
	}
	if explicit.Stats() != def.Stats() {
		t.Errorf("the default thresholds given explicitly changed the stats: %v, want %v", explicit.Stats(), def.Stats())
	}
	// With the one threshold 0.5, AP over "all thresholds" is AP at 0.5;
	// AP at 0.75 is undefined because 0.75 is not a threshold.
	half, err := EvaluateBBox(gt, dets, Params{IoUThrs: []float64{0.5}})
	if err != nil {
		t.Fatal(err)
	}
	s := half.Stats()
	if s[0] != def.Stats()[1] || s[1] != def.Stats()[1] || s[2] != -1 {
		t.Errorf("iou_thrs [0.5]: AP %v, AP50 %v, AP75 %v; want %v, %v, -1", s[0], s[1], s[2], def.Stats()[1], def.Stats()[1])
	}
	if !strings.Contains(half.Summary(), "IoU=0.50:0.50") {
		t.Errorf("summary does not name the one threshold as pycocotools does:\n%s", half.Summary())
	}
	for _, bad := range [][]float64{{}, {1.5}, {math.NaN()}, make([]float64, 17)} {
		if _, err := EvaluateBBox(gt, dets, Params{IoUThrs: bad}); err == nil || !strings.Contains(err.Error(), "coco eval:") {
			t.Errorf("iou thresholds %v: error %v", bad, err)
		}
	}
}

func TestCategoryAPs(t *testing.T) {
	gt, dets := loadFixture(t, "random")
	ev, err := EvaluateBBox(gt, dets, Params{})
	if err != nil {
		t.Fatal(err)
	}
	aps := ev.CategoryAPs()
	if len(aps) != len(gt.Categories) {
		t.Fatalf("%d category APs for %d categories", len(aps), len(gt.Categories))
	}
	// Every category with ground truth defines all its precision entries,
	// so AP@[.5:.95] is the mean of the defined per-category APs.
	sum, n := 0.0, 0
	for i, c := range aps {
		if i > 0 && c.CategoryID <= aps[i-1].CategoryID {
			t.Errorf("category ids not increasing: %v", aps)
		}
		if !math.IsNaN(c.AP) {
			sum += c.AP
			n++
		}
	}
	if n == 0 || math.Abs(sum/float64(n)-ev.Stats()[0]) > 1e-12 {
		t.Errorf("mean of %d category APs = %v, AP = %v", n, sum/float64(max(n, 1)), ev.Stats()[0])
	}
	// basic has categories without ground truth: their AP is NaN.
	gt, dets = loadFixture(t, "basic")
	ev, err = EvaluateBBox(gt, dets, Params{})
	if err != nil {
		t.Fatal(err)
	}
	nan := 0
	for _, c := range ev.CategoryAPs() {
		if math.IsNaN(c.AP) {
			nan++
		}
	}
	if nan == 0 {
		t.Errorf("basic: no category reported without ground truth: %v", ev.CategoryAPs())
	}
}
