package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/registry"
	"github.com/razorgo/razor/runners/checkpoint"
	"github.com/razorgo/razor/tools/cli"
)

// fixedDetector stands for a real detector: it returns the same two
// detections, in original-image pixels, for every image, after checking
// that the image's metas reached it.
type fixedDetector struct {
	nn.Base
	score *nn.Param
}

func (d *fixedDetector) ForwardTrain(*nn.Binding, *models.Batch) (models.Losses, error) {
	return nil, fmt.Errorf("the fixed detector does not train")
}

func (d *fixedDetector) ForwardTest(_ *nn.Binding, in *models.Batch) (models.Pending, error) {
	if len(in.Metas) != 1 || in.Metas[0].OriShape != [3]int{48, 64, 3} {
		return nil, fmt.Errorf("metas %v, want one image of 48x64 pixels", in.Metas)
	}
	dets := []models.Detection{
		{Box: [4]float32{5, 5, 20, 20}, Score: 0.2, Label: 0},
		{Box: [4]float32{10, 20, 40, 44}, Score: d.score.Data()[0], Label: 1},
	}
	return func() (models.Result, error) { return models.Result{Detections: [][]models.Detection{dets}}, nil }, nil
}

func (d *fixedDetector) Backbone() models.Backbone { return nil }

func init() {
	registry.MustRegister(models.Models, "FixedDetector", func(struct{}) (models.Model, error) {
		d := &fixedDetector{}
		d.score = d.AddParam("score", nn.KindWeight, 1)
		return d, nil
	})
}

// detSetup writes a grey 64x48 image, a config testing the fixed detector
// (classes named unless classes is empty) and a checkpoint scoring its
// main detection 0.9.
func detSetup(t *testing.T, classes string) (cfgPath, ckpt, img string) {
	t.Helper()
	dir := t.TempDir()
	grey := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for i := range grey.Pix {
		grey.Pix[i] = 128
	}
	img = filepath.Join(dir, "digits.png")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, grey); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cfgText := fmt.Sprintf(`algorithm:
  type: DetNAS
  architecture:
    type: MMDetArchitecture
    model: {type: FixedDetector}
data:
  test:
    type: CocoDataset
    ann_file: %s
    %s
    pipeline:
      - {type: LoadImageFromFile}
      - type: MultiScaleFlipAug
        img_scale: [128, 96]
        flip: false
        transforms:
          - {type: Resize, keep_ratio: true}
          - {type: Normalize, mean: [0, 0, 0], std: [1, 1, 1], to_rgb: true}
          - {type: Pad, size_divisor: 32}
          - {type: ImageToTensor, keys: [img]}
          - {type: Collect, keys: [img]}
`, filepath.Join(dir, "absent.json"), classes)
	cfgPath = filepath.Join(dir, "det.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	alg, err := algorithms.FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	alg.Model().(*fixedDetector).score.Data()[0] = 0.9
	if ckpt, err = checkpoint.SaveTraining(dir, "det", alg, nil, checkpoint.Meta{Iteration: 1}); err != nil {
		t.Fatal(err)
	}
	return cfgPath, ckpt, img
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestInferDetector(t *testing.T) {
	cfgPath, ckpt, img := detSetup(t, "classes: [zero, one]")
	out := filepath.Join(t.TempDir(), "drawn.png")
	var stdout, stderr bytes.Buffer
	if err := run([]string{cfgPath, ckpt, img, "--out-file", out}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	var got []cli.Shown
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("stdout is not a JSON list of detections: %v\n%s", err, stdout.String())
	}
	// The 0.2 detection is under the default --score-thr 0.3.
	want := cli.Shown{Class: "one", Label: 1, Score: 0.9, BBox: [4]float32{10, 20, 40, 44}}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("detections %+v, want only %+v", got, want)
	}
	drawn := readPNG(t, out)
	if drawn.Bounds().Dx() != 64 || drawn.Bounds().Dy() != 48 {
		t.Fatalf("drawn image is %v, want the original 64x48", drawn.Bounds())
	}
	is := func(x, y int, c color.RGBA) bool {
		r, g, b, _ := drawn.At(x, y).RGBA()
		return uint8(r>>8) == c.R && uint8(g>>8) == c.G && uint8(b>>8) == c.B
	}
	grey := color.RGBA{128, 128, 128, 255}
	for _, p := range []image.Point{{10, 30}, {11, 30}, {39, 30}, {25, 43}} {
		if !is(p.X, p.Y, cli.BoxColour) {
			t.Errorf("pixel %v on the box's edge is %v, want the box colour %v", p, drawn.At(p.X, p.Y), cli.BoxColour)
		}
	}
	for _, p := range []image.Point{{25, 30}, {5, 10}, {45, 30}} {
		if !is(p.X, p.Y, grey) {
			t.Errorf("pixel %v inside the box or on the dropped box is %v, want the image's grey", p, drawn.At(p.X, p.Y))
		}
	}
	// The label tab above the box holds white text.
	white := 0
	for y := 7; y < 20; y++ {
		for x := 10; x < 60; x++ {
			if is(x, y, color.RGBA{255, 255, 255, 255}) {
				white++
			}
		}
	}
	if white < 20 {
		t.Errorf("%d white text pixels in the label tab, want the text one|0.90", white)
	}

	stdout.Reset()
	if err := run([]string{cfgPath, ckpt, img, "--out-file", out, "--score-thr", "0.1"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil || len(got) != 2 || got[0].Score < got[1].Score {
		t.Errorf("--score-thr 0.1: %v %+v, want both detections, best first", err, got)
	}
	if drawn = readPNG(t, out); !is(5, 10, cli.BoxColour) {
		t.Errorf("--score-thr 0.1: the 0.2 box is not drawn")
	}
}

func TestInferDetectorWithoutClassNames(t *testing.T) {
	cfgPath, ckpt, img := detSetup(t, "")
	out := filepath.Join(t.TempDir(), "drawn.png")
	var stdout, stderr bytes.Buffer
	if err := run([]string{cfgPath, ckpt, img, "--out-file", out}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), `"class":"1"`) || !strings.Contains(stderr.String(), "note: labels are shown as numbers") || !strings.Contains(stderr.String(), "absent.json does not exist") {
		t.Errorf("stdout %s\nstderr %s", stdout.String(), stderr.String())
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--score-thr", "2"}, "--score-thr 2 must be between 0 and 1"},
		{[]string{"--out-file", filepath.Join(img, "x.png")}, "--out-file " + filepath.Join(img, "x.png")},
	} {
		err := run(append([]string{cfgPath, ckpt, img}, tc.args...), &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

// Several images: one model, each drawn into --out-dir as NAME_result.png,
// one JSON line {image, detections} each; --out-file cannot name them all.
func TestInferDetectorSeveralImages(t *testing.T) {
	cfgPath, ckpt, img := detSetup(t, "classes: [zero, one]")
	other := filepath.Join(t.TempDir(), "other.png")
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "shown")
	var stdout, stderr bytes.Buffer
	if err := run([]string{cfgPath, ckpt, img, other, "--out-dir", dir}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d output lines, want one an image:\n%s", len(lines), stdout.String())
	}
	for i, p := range []string{img, other} {
		var got struct {
			Image      string
			Detections []cli.Shown
		}
		if err := json.Unmarshal([]byte(lines[i]), &got); err != nil || got.Image != p || len(got.Detections) != 1 {
			t.Fatalf("line %d: %v %+v", i+1, err, got)
		}
		base := filepath.Base(p)
		drawn := readPNG(t, filepath.Join(dir, strings.TrimSuffix(base, filepath.Ext(base))+"_result.png"))
		if drawn.Bounds().Dx() != 64 {
			t.Fatalf("%s drawn at %v", p, drawn.Bounds())
		}
	}
	err = run([]string{cfgPath, ckpt, img, other, "--out-file", filepath.Join(dir, "x.png")}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--out-file names one picture, and 2 images were given; use --out-dir") {
		t.Fatalf("--out-file with two images: %v", err)
	}
}
