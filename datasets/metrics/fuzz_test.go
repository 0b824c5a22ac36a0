package metrics

import (
	"os"
	"path/filepath"
	"testing"
)

// The fuzz targets of the COCO readers: a ground-truth file and a results
// file end with data or one error, never a panic or a hang; what they
// accept evaluates. Their seeds run with the ordinary tests; fuzz one with
// go test -run '^$' -fuzz '^FuzzParseResults$' -fuzztime 5m ./datasets/metrics

func FuzzParseCOCOGT(f *testing.F) {
	for _, c := range []string{"basic", "crowd", "gt_id_zero", "ties"} {
		b, err := os.ReadFile(filepath.Join("testdata", "coco", c, "gt.json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"images": [{"id": 1, "width": 1, "height": 1}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 0, 0], "iscrowd": 1}], "categories": [{"id": 1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		gt, err := ParseCOCOGT(data, "gt.json")
		if err != nil {
			return
		}
		if _, err := EvaluateBBox(gt, nil, DefaultParams()); err != nil {
			t.Logf("no detections: %v", err)
		}
	})
}

func FuzzParseResults(f *testing.F) {
	gtData, err := os.ReadFile(filepath.Join("testdata", "coco", "basic", "gt.json"))
	if err != nil {
		f.Fatal(err)
	}
	gt, err := ParseCOCOGT(gtData, "gt.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range []string{"basic", "many_dets", "empty_results"} {
		b, err := os.ReadFile(filepath.Join("testdata", "coco", c, "results.json"))
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`[{"image_id": 1, "category_id": 1, "bbox": [1e308, -1e308, 1e308, 1], "score": 2}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dets, err := ParseResults(data, "results.json", gt)
		if err != nil {
			return
		}
		if _, err := EvaluateBBox(gt, dets, DefaultParams()); err != nil {
			t.Fatalf("accepted results do not evaluate: %v", err)
		}
	})
}
