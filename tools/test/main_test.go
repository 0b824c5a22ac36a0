package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/razorgo/razor/internal/testkit"

	"github.com/razorgo/razor/tools/cli"
)

// fixture writes a small labelled image list and a config that tests a
// narrow SPOS subnet on it, and a checkpoint of that subnet's initial
// weights. It returns the config and checkpoint paths.
func fixture(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	var list strings.Builder
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 12; i++ {
		img := image.NewGray(image.Rect(0, 0, 28, 28))
		for p := range img.Pix {
			img.Pix[p] = uint8(rng.IntN(256))
		}
		img.Set(3, 3, color.Gray{Y: 255})
		name := fmt.Sprintf("img%d.png", i)
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
		fmt.Fprintf(&list, "%s %d\n", name, i%10)
	}
	if err := os.WriteFile(filepath.Join(dir, "list.txt"), []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	base, _ := filepath.Abs("../../configs/nas/spos/spos_subnet_shufflenetv2_mnist.yaml")
	cfgText := fmt.Sprintf(`_base_: %s
algorithm:
  architecture:
    model:
      backbone:
        widen_factor: 0.25
data:
  samples_per_gpu: 5
  test:
    _delete_: true
    type: ImageNet
    data_prefix: %s
    ann_file: %s
    pipeline:
      - {type: LoadImageFromFile, color_type: grayscale}
      - {type: Resize, size: [32, 32]}
      - {type: GrayToColor}
      - {type: Normalize, mean: [33.3, 33.3, 33.3], std: [78.6, 78.6, 78.6], to_rgb: false}
      - {type: ImageToTensor, keys: [img]}
      - {type: ToTensor, keys: [gt_label]}
      - {type: Collect, keys: [img, gt_label]}
`, base, dir, filepath.Join(dir, "list.txt"))
	cfgPath := filepath.Join(dir, "test_cfg.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath, testkit.InitCheckpoint(t, testkit.Build(t, cfgPath), 3, dir, "iter_1")
}

func TestTestTool(t *testing.T) {
	cfgPath, ckpt := fixture(t)
	out := filepath.Join(t.TempDir(), "metrics.json")
	var stdout, stderr bytes.Buffer
	if err := cli.Test(context.Background(), []string{cfgPath, ckpt, "--out", out}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "accuracy_top-1: ") || !strings.Contains(stdout.String(), "accuracy_top-5: ") {
		t.Fatalf("output:\n%s", stdout.String())
	}
	var res cli.TestResult
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Config != cfgPath || res.Checkpoint != ckpt {
		t.Errorf("out names config %q and checkpoint %q, want %q and %q", res.Config, res.Checkpoint, cfgPath, ckpt)
	}
	top1, top5 := res.Metrics["accuracy_top-1"], res.Metrics["accuracy_top-5"]
	// 12 images: every accuracy is a multiple of 100/12, and top-5 >= top-1.
	if top5 < top1 || top1 < 0 || top5 > 100 {
		t.Fatalf("metrics %v", res.Metrics)
	}
	for _, v := range []float64{top1, top5} {
		if k := v * 12 / 100; math.Abs(k-math.Round(k)) > 1e-9 {
			t.Fatalf("accuracy %v is not a count out of 12", v)
		}
	}
}

func TestTestToolErrors(t *testing.T) {
	cfgPath, ckpt := fixture(t)
	wide := filepath.Join(filepath.Dir(cfgPath), "wide.yaml")
	os.WriteFile(wide, []byte("_base_: test_cfg.yaml\nalgorithm:\n  architecture:\n    model:\n      backbone:\n        widen_factor: 0.5\n"), 0o644)
	cases := []struct {
		args []string
		frag string
	}{
		{[]string{cfgPath}, "expected CONFIG and CHECKPOINT"},
		{[]string{cfgPath, filepath.Join(t.TempDir(), "none.json")}, "none.json"},
		{[]string{cfgPath, ckpt, "--metrics", "segm"}, `metric "segm" is not supported`},
		{[]string{cfgPath, ckpt, "--metrics", "bbox"}, "--metrics bbox: the bbox metric needs a COCO-format dataset (type CocoDataset, with ann_file and img_prefix), and the evaluated dataset is a *datasets.ImageNet of 12 samples"},
		{[]string{wide, ckpt}, "have another shape"},
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		err := cli.Test(context.Background(), tc.args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.frag) {
			t.Errorf("%q: error %v, want %q", tc.args, err, tc.frag)
		}
	}
}
