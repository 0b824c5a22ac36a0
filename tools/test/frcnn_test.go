package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/razorgo/razor/internal/testkit"

	"github.com/razorgo/razor/datasets"
	"github.com/razorgo/razor/tools/cli"
)

// TestTestFasterRCNN runs tools/test end to end with the real detector: the
// shipped DetNAS subnet detector config (narrowed so the test is quick)
// on a small COCO set of digits, from a checkpoint of seeded initial
// weights. Its boxes are the detector's guesses, so the test checks the
// plumbing: the test pipeline's metas reach the detector, its boxes come
// back in original-image pixels inside each image, the results file is
// COCO's format with the set's image and category ids, and the bbox
// metric prints its values.
func TestTestFasterRCNN(t *testing.T) {
	root := digitSet(t, 3)
	base, err := filepath.Abs("../../configs/nas/detnas/detnas_subnet_frcnn_shufflenetv2_fpn_1x_coco.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ann := filepath.Join(root, datasets.MNISTDetLayout.ValAnn)
	// The digits (96x96) are resized to 160x160 so the scale factor is not
	// 1; the neck and heads are narrowed to keep the test fast.
	cfgText := fmt.Sprintf(`_base_: %q
data:
  samples_per_gpu: 2
  workers_per_gpu: 0
  test:
    ann_file: %q
    img_prefix: %q
    classes: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']
    pipeline:
      - {type: LoadImageFromFile}
      - type: MultiScaleFlipAug
        img_scale: [160, 160]
        flip: false
        transforms:
          - {type: Resize, keep_ratio: true}
          - {type: RandomFlip}
          - {type: Normalize, mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375], to_rgb: true}
          - {type: Pad, size_divisor: 32}
          - {type: ImageToTensor, keys: [img]}
          - {type: Collect, keys: [img]}
algorithm:
  architecture:
    model:
      neck: {out_channels: 32}
      rpn_head: {in_channels: 32, feat_channels: 32}
      roi_head:
        bbox_roi_extractor: {out_channels: 32}
        bbox_head: {in_channels: 32, conv_out_channels: 16, fc_out_channels: 32, num_classes: 10}
      test_cfg:
        rpn: {max_per_img: 200}
        rcnn: {score_thr: 0.0}
evaluation: {metric: bbox}
`, base, ann, filepath.Join(root, datasets.MNISTDetLayout.ValImages))
	cfgPath := filepath.Join(root, "frcnn.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	alg := testkit.Build(t, cfgPath)
	ckpt := testkit.InitCheckpoint(t, alg, 1, root, "init")

	out := filepath.Join(t.TempDir(), "results.bbox.json")
	metricsOut := filepath.Join(t.TempDir(), "metrics.json")
	var stdout, stderr bytes.Buffer
	if err := cli.Test(context.Background(), []string{cfgPath, ckpt, "--out", out, "--metrics-out", metricsOut}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	// --metrics-out holds the printed metrics, as a pipeline's test step
	// reads them, beside the detections of --out.
	var tr cli.TestResult
	if err := json.Unmarshal(mustRead(t, metricsOut), &tr); err != nil {
		t.Fatalf("--metrics-out: %v", err)
	}
	if v, ok := tr.Metrics["bbox_mAP"]; !ok || !strings.Contains(stdout.String(), fmt.Sprintf("bbox_mAP: %.4f", v)) {
		t.Errorf("--metrics-out holds %v; the output says\n%s", tr.Metrics, stdout.String())
	}
	if !strings.Contains(stdout.String(), "bbox_mAP: ") {
		t.Errorf("output lacks bbox_mAP:\n%s", stdout.String())
	}
	raw, err := os.ReadFile(out)
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
		t.Fatalf("--out is not COCO results: %v", err)
	}
	var gt struct {
		Images []struct {
			ID            int64
			Width, Height float64
		}
		Categories []struct{ ID int64 }
	}
	if err := json.Unmarshal(mustRead(t, ann), &gt); err != nil {
		t.Fatal(err)
	}
	cats := map[int64]bool{}
	for _, c := range gt.Categories {
		cats[c.ID] = true
	}
	seen := map[int64]int{}
	for _, r := range results {
		seen[r.ImageID]++
		if !cats[r.CategoryID] {
			t.Fatalf("result %+v: category %d is not in the annotation file", r, r.CategoryID)
		}
		var img *struct {
			ID            int64
			Width, Height float64
		}
		for i := range gt.Images {
			if gt.Images[i].ID == r.ImageID {
				img = &gt.Images[i]
			}
		}
		if img == nil {
			t.Fatalf("result %+v: image %d is not in the annotation file", r, r.ImageID)
		}
		// Boxes are clipped to the resized image and scaled back: they
		// lie inside the original 96x96 image.
		b := r.BBox
		if b[0] < 0 || b[1] < 0 || b[0]+b[2] > img.Width+1e-3 || b[1]+b[3] > img.Height+1e-3 || b[2] < 0 || b[3] < 0 {
			t.Fatalf("result %+v lies outside its %gx%g image", r, img.Width, img.Height)
		}
	}
	if len(seen) != len(gt.Images) {
		t.Errorf("results for %d images, the set has %d (score_thr 0 keeps up to 100 per image)", len(seen), len(gt.Images))
	}
	for id, n := range seen {
		if n != 100 {
			t.Errorf("image %d has %d results, want max_per_img 100 with score_thr 0", id, n)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
