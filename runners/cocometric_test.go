package runners

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/razorgo/razor/datasets"
	"github.com/razorgo/razor/datasets/metrics"
	"github.com/razorgo/razor/models"
)

// fixtureDir is a pycocotools test set: gt.json, results.json and the
// numbers pycocotools computed (expected.json).
func fixtureDir(name string) string {
	return filepath.Join("..", "datasets", "metrics", "testdata", "coco", name)
}

// cocoTestSet reads a fixture's ground truth as the evaluated dataset.
func cocoTestSet(t *testing.T, annFile string) *datasets.CocoDataset {
	t.Helper()
	ds, err := datasets.NewCocoDataset(datasets.CocoOptions{AnnFile: annFile, TestMode: true})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// resultsBatch turns a COCO results file into one batch of model results
// on every sample of ds, as a detector would return them: xyxy float32
// boxes in original pixels and dataset labels.
func resultsBatch(t *testing.T, ds *datasets.CocoDataset, resultsFile string) (*models.Batch, models.Result) {
	t.Helper()
	raw, err := os.ReadFile(resultsFile)
	if err != nil {
		t.Fatal(err)
	}
	var results []struct {
		ImageID    int64      `json:"image_id"`
		CategoryID int64      `json:"category_id"`
		BBox       [4]float64 `json:"bbox"`
		Score      float64    `json:"score"`
	}
	if err := json.Unmarshal(raw, &results); err != nil {
		t.Fatal(err)
	}
	index := map[int64]int{}
	in := &models.Batch{}
	res := models.Result{Detections: make([][]models.Detection, ds.Len())}
	for i := range ds.Len() {
		index[ds.ImageID(i)] = i
		in.Indices = append(in.Indices, i)
	}
	label := map[int64]int{}
	for l, id := range ds.CatIDs() {
		label[id] = l
	}
	for _, r := range results {
		b := r.BBox
		res.Detections[index[r.ImageID]] = append(res.Detections[index[r.ImageID]], models.Detection{
			Box:   [4]float32{float32(b[0]), float32(b[1]), float32(b[0] + b[2]), float32(b[1] + b[3])},
			Score: float32(r.Score), Label: label[r.CategoryID],
		})
	}
	return in, res
}

func bboxSpec(opts map[string]any) MetricSpec {
	return MetricSpec{Name: "bbox", Options: opts, Path: "evaluation.metric"}
}

func TestBBoxMetricMatchesPycocotools(t *testing.T) {
	for _, set := range []string{"basic", "random", "ties"} {
		t.Run(set, func(t *testing.T) {
			ds := cocoTestSet(t, filepath.Join(fixtureDir(set), "gt.json"))
			var report bytes.Buffer
			// The fixtures were made with pycocotools' own maxDets.
			m, err := bboxSpec(map[string]any{"proposal_nums": []any{1, 10, 100}}).BuildFor(MetricEnv{Dataset: ds, Report: &report})
			if err != nil {
				t.Fatal(err)
			}
			in, res := resultsBatch(t, ds, filepath.Join(fixtureDir(set), "results.json"))
			if err := m.Process(in, res); err != nil {
				t.Fatal(err)
			}
			vals, err := m.Compute()
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(fixtureDir(set), "expected.json"))
			if err != nil {
				t.Fatal(err)
			}
			var exp struct {
				Stats   [12]float64 `json:"stats"`
				Summary string      `json:"summary"`
			}
			if err := json.Unmarshal(raw, &exp); err != nil {
				t.Fatal(err)
			}
			names := []string{"bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_s", "bbox_mAP_m", "bbox_mAP_l",
				"bbox_AR@1", "bbox_AR@10", "bbox_AR@100", "bbox_AR_s@100", "bbox_AR_m@100", "bbox_AR_l@100"}
			if len(vals) != 12 {
				t.Fatalf("%d values, want 12: %v", len(vals), vals)
			}
			for i, v := range vals {
				// Boxes pass through float32 as a detector's do, which
				// moves IoUs by about 1e-7: far below the printed 0.001,
				// and no match crosses a threshold in these sets.
				if v.Name != names[i] || math.Abs(v.Value-exp.Stats[i]) > 1e-6 {
					t.Errorf("value %d = %s %.17g, pycocotools %s %.17g", i, v.Name, v.Value, names[i], exp.Stats[i])
				}
			}
			if !strings.Contains(report.String(), exp.Summary) {
				t.Errorf("report lacks pycocotools' summary:\n%s\nwant:\n%s", report.String(), exp.Summary)
			}
		})
	}
}

func TestBBoxMetricPerfectDetections(t *testing.T) {
	ds := cocoTestSet(t, filepath.Join(fixtureDir("random"), "gt.json"))
	var report bytes.Buffer
	m, err := bboxSpec(map[string]any{"classwise": true}).BuildFor(MetricEnv{Dataset: ds, Report: &report})
	if err != nil {
		t.Fatal(err)
	}
	// Two batches, the second first: results are matched by sample index,
	// not by order.
	var batches [2]*models.Batch
	var results [2]models.Result
	for i := range ds.Len() {
		s, err := ds.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		var dets []models.Detection
		for j, b := range s.Ann.BBoxes {
			dets = append(dets, models.Detection{Box: [4]float32(b), Score: 1 - float32(j)/100, Label: s.Ann.Labels[j]})
		}
		k := i % 2
		if batches[k] == nil {
			batches[k] = &models.Batch{}
		}
		batches[k].Indices = append(batches[k].Indices, i)
		results[k].Detections = append(results[k].Detections, dets)
	}
	for _, k := range []int{1, 0} {
		if err := m.Process(batches[k], results[k]); err != nil {
			t.Fatal(err)
		}
	}
	vals, err := m.Compute()
	if err != nil {
		t.Fatal(err)
	}
	if vals[0].Name != "bbox_mAP" || vals[6].Name != "bbox_AR@100" || vals[11].Name != "bbox_AR_l@1000" {
		t.Errorf("names %v, want mmdet's (bbox_mAP first, bbox_AR@100 seventh, bbox_AR_l@1000 last)", vals)
	}
	for _, v := range vals[:6] {
		// -1 marks an area range without ground truth.
		if v.Value != 1 && v.Value != -1 {
			t.Errorf("%s = %v with detections equal to the ground truth, want 1", v.Name, v.Value)
		}
	}
	if vals[0].Value != 1 {
		t.Errorf("bbox_mAP = %v, want 1", vals[0].Value)
	}
	out := report.String()
	if !strings.Contains(out, "| category | AP    | category | AP    | category | AP    |") || !strings.Contains(out, "maxDets=1000 ] = 1.000") {
		t.Errorf("report lacks the classwise table or mmdet's maxDets:\n%s", out)
	}
	// Every class with ground truth scores 1.000; class_20 has none.
	if !strings.Contains(out, "| class_1  | 1.000 |") || !strings.Contains(out, "| class_20 | nan   |") || strings.Contains(out, "| 0.") {
		t.Errorf("classwise table does not give every class with ground truth AP 1.000:\n%s", out)
	}
}

func TestBBoxMetricOptions(t *testing.T) {
	ds := cocoTestSet(t, filepath.Join(fixtureDir("basic"), "gt.json"))
	m, err := bboxSpec(map[string]any{"metric_items": []any{"mAP_50", "AR@300"}, "iou_thrs": []any{0.5}}).BuildFor(MetricEnv{Dataset: ds})
	if err != nil {
		t.Fatal(err)
	}
	in, res := resultsBatch(t, ds, filepath.Join(fixtureDir("basic"), "results.json"))
	if err := m.Process(in, res); err != nil {
		t.Fatal(err)
	}
	vals, err := m.Compute()
	if err != nil {
		t.Fatal(err)
	}
	gt, _ := metrics.LoadCOCOGT(filepath.Join(fixtureDir("basic"), "gt.json"))
	dets, _ := metrics.LoadResults(filepath.Join(fixtureDir("basic"), "results.json"), gt)
	ev, err := metrics.EvaluateBBox(gt, dets, metrics.Params{MaxDets: [3]int{100, 300, 1000}, IoUThrs: []float64{0.5}})
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) != 2 || vals[0].Name != "bbox_mAP_50" || vals[1].Name != "bbox_AR@300" ||
		math.Abs(vals[0].Value-ev.Stats()[1]) > 1e-6 || math.Abs(vals[1].Value-ev.Stats()[7]) > 1e-6 {
		t.Errorf("values %v, want bbox_mAP_50 %v and bbox_AR@300 %v", vals, ev.Stats()[1], ev.Stats()[7])
	}

	for _, tc := range []struct {
		opts map[string]any
		want string
	}{
		{map[string]any{"classwize": true}, "classwise"},
		{map[string]any{"proposal_nums": []any{100, 10, 1000}}, "proposal_nums must be three positive, strictly ascending"},
		{map[string]any{"iou_thrs": []any{0.5, 1.5}}, "every threshold must be between 0 and 1"},
		{map[string]any{"metric_items": "mAP_90"}, `metric_items "mAP_90" is not a COCO number; choose among mAP, mAP_50`},
	} {
		if _, err := bboxSpec(tc.opts).Build(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.opts, err, tc.want)
		}
	}
}

func TestBBoxMetricErrors(t *testing.T) {
	ds := cocoTestSet(t, filepath.Join(fixtureDir("basic"), "gt.json"))
	m, err := bboxSpec(nil).BuildFor(MetricEnv{Dataset: ds})
	if err != nil {
		t.Fatal(err)
	}
	one := []int{0}
	for _, tc := range []struct {
		in   *models.Batch
		res  models.Result
		want string
	}{
		{&models.Batch{}, models.Result{Detections: [][]models.Detection{{}}}, "does not say which dataset samples"},
		{&models.Batch{Indices: one}, models.Result{Scores: [][]float32{{1}}}, "the model returned no detections (a classifier?)"},
		{&models.Batch{Indices: one}, models.Result{Detections: [][]models.Detection{{{Label: 4}}}}, "image id 10: a detection has label 4, outside the dataset's 4 classes"},
		{&models.Batch{Indices: []int{0, 1}}, models.Result{Detections: [][]models.Detection{{}}}, "detections for 1 images of a batch whose samples are 2"},
	} {
		if err := m.Process(tc.in, tc.res); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
	_, err = bboxSpec(nil).BuildFor(MetricEnv{Dataset: plainSet{ds}})
	if err == nil || !strings.Contains(err.Error(), "evaluation.metric bbox: the bbox metric needs a COCO-format dataset (type CocoDataset, with ann_file and img_prefix), and the evaluated dataset is a runners.plainSet of 6 samples") {
		t.Errorf("a dataset that is not COCO-format: %v", err)
	}
}

// plainSet hides a dataset's COCO methods.
type plainSet struct{ datasets.Dataset }

func TestCOCOSourceOfSubset(t *testing.T) {
	ds := cocoTestSet(t, filepath.Join(fixtureDir("basic"), "gt.json"))
	src, err := AsCOCOSource(&datasets.Subset{Dataset: ds, Indices: []int{4, 1}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if src.Len() != 2 || src.ImageID(0) != ds.ImageID(4) || src.ImageID(1) != ds.ImageID(1) || src.AnnFile() != ds.AnnFile() {
		t.Errorf("subset source: %d samples, image ids %d %d, want 2, %d %d", src.Len(), src.ImageID(0), src.ImageID(1), ds.ImageID(4), ds.ImageID(1))
	}
}

func TestToModelBatchKeepsIndices(t *testing.T) {
	in, err := ToModelBatch(&datasets.Batch{Img: make([]float32, 2*3), Shape: [4]int{2, 3, 1, 1}, Indices: []int{7, 3}})
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Indices) != 2 || in.Indices[0] != 7 || in.Indices[1] != 3 {
		t.Errorf("indices %v, want [7 3]", in.Indices)
	}
}

func TestCOCOResultsJSON(t *testing.T) {
	ds := cocoTestSet(t, filepath.Join(fixtureDir("basic"), "gt.json"))
	c, err := NewCOCOResults(ds, "--out")
	if err != nil {
		t.Fatal(err)
	}
	// Labels 1 then 0 on sample 1 (image id 3): written label 0 first, as
	// mmdet's per-class lists are; label l is category CatIDs()[l].
	in := &models.Batch{Indices: []int{1}}
	res := models.Result{Detections: [][]models.Detection{{
		{Box: [4]float32{10, 20, 40, 25.5}, Score: 0.5, Label: 1},
		{Box: [4]float32{1, 2, 3, 4}, Score: 0.25, Label: 0},
	}}}
	if err := c.Add(in, res); err != nil {
		t.Fatal(err)
	}
	b, err := c.JSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"image_id":3,"bbox":[1,2,2,2],"score":0.25,"category_id":1},{"image_id":3,"bbox":[10,20,30,5.5],"score":0.5,"category_id":2}]` + "\n"
	if string(b) != want {
		t.Errorf("JSON\n%s\nwant\n%s", b, want)
	}
}
