package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/datasets"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/registry"
	"github.com/razorgo/razor/runners/checkpoint"
	"github.com/razorgo/razor/tools/cli"
)

// oracleOptions configure the stand-in detector.
type oracleOptions struct {
	// AnnFile is the COCO file whose boxes the detector returns.
	AnnFile string `cfg:"ann_file,required"`
	// Shift moves every box right by this many pixels, so that results
	// are imperfect by a known amount.
	Shift float32 `cfg:"shift"`
}

// oracleDetector stands for a real detector: for each image (by file name)
// it returns the annotation file's boxes, shifted by Shift, with the score
// its one parameter holds, so that a checkpoint decides the scores.
type oracleDetector struct {
	nn.Base
	score *nn.Param
	shift float32
	boxes map[string][]models.Detection
}

func newOracleDetector(o oracleOptions) (models.Model, error) {
	raw, err := os.ReadFile(o.AnnFile)
	if err != nil {
		return nil, err
	}
	var f struct {
		Images []struct {
			ID       int64  `json:"id"`
			FileName string `json:"file_name"`
		} `json:"images"`
		Annotations []struct {
			ImageID    int64      `json:"image_id"`
			CategoryID int64      `json:"category_id"`
			BBox       [4]float32 `json:"bbox"`
		} `json:"annotations"`
		Categories []struct {
			ID int64 `json:"id"`
		} `json:"categories"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, err
	}
	var cats []int64
	for _, c := range f.Categories {
		cats = append(cats, c.ID)
	}
	slices.Sort(cats)
	names := map[int64]string{}
	for _, im := range f.Images {
		names[im.ID] = im.FileName
	}
	d := &oracleDetector{shift: o.Shift, boxes: map[string][]models.Detection{}}
	d.score = d.AddParam("score", nn.KindWeight, 1)
	for _, a := range f.Annotations {
		b := a.BBox
		name := names[a.ImageID]
		d.boxes[name] = append(d.boxes[name], models.Detection{
			Box:   [4]float32{b[0] + o.Shift, b[1], b[0] + b[2] + o.Shift, b[1] + b[3]},
			Label: slices.Index(cats, a.CategoryID),
		})
	}
	return d, nil
}

func (d *oracleDetector) ForwardTrain(*nn.Binding, *models.Batch) (models.Losses, error) {
	return nil, fmt.Errorf("the oracle detector does not train")
}

func (d *oracleDetector) ForwardTest(_ *nn.Binding, in *models.Batch) (models.Pending, error) {
	score := d.score.Data()[0]
	var out [][]models.Detection
	for _, m := range in.Metas {
		dets := slices.Clone(d.boxes[filepath.Base(m.Filename)])
		for i := range dets {
			dets[i].Score = score
		}
		out = append(out, dets)
	}
	return func() (models.Result, error) { return models.Result{Detections: out}, nil }, nil
}

func (d *oracleDetector) Backbone() models.Backbone { return nil }

func init() {
	registry.MustRegister(models.Models, "OracleDetector", newOracleDetector)
}

// digitSet generates a COCO set of n validation images of 96x96 pixels
// with up to three digits each, in a temporary folder it returns.
func digitSet(t *testing.T, n int) string {
	t.Helper()
	root := t.TempDir()
	mnist, err := datasets.MNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	digits, err := datasets.ReadDigits(mnist, false)
	if err != nil {
		t.Fatal(err)
	}
	o := datasets.MNISTDetOptions{Val: n, Size: 96, Seed: 1, MaxDigits: 3, MaxFragments: 1, Workers: 1}
	if err := datasets.GenerateMNISTDet(root, nil, digits, o); err != nil {
		t.Fatal(err)
	}
	return root
}

// detFixture generates a small COCO set of digits and a config that tests
// the oracle detector on it (shifted by shift pixels), with a checkpoint
// whose score is 0.9. It returns the config, the checkpoint and the set's
// folder.
func detFixture(t *testing.T, shift float32) (cfgPath, ckpt, root string) {
	t.Helper()
	root = digitSet(t, 5)
	ann := filepath.Join(root, datasets.MNISTDetLayout.ValAnn)
	cfgText := fmt.Sprintf(`algorithm:
  type: DetNAS
  architecture:
    type: MMDetArchitecture
    model: {type: OracleDetector, ann_file: %q, shift: %g}
data:
  samples_per_gpu: 2
  workers_per_gpu: 0
  test:
    type: CocoDataset
    ann_file: %q
    img_prefix: %q
    pipeline:
      - {type: LoadImageFromFile}
      - type: MultiScaleFlipAug
        img_scale: [128, 64]
        flip: false
        transforms:
          - {type: Resize, keep_ratio: true}
          - {type: RandomFlip}
          - {type: Normalize, mean: [0, 0, 0], std: [255, 255, 255], to_rgb: true}
          - {type: Pad, size_divisor: 32}
          - {type: ImageToTensor, keys: [img]}
          - {type: Collect, keys: [img]}
evaluation: {metric: bbox}
`, ann, shift, ann, filepath.Join(root, datasets.MNISTDetLayout.ValImages))
	cfgPath = filepath.Join(root, "oracle.yaml")
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
	alg.Model().(*oracleDetector).score.Data()[0] = 0.9
	ckpt, err = checkpoint.SaveTraining(root, "oracle", alg, nil, checkpoint.Meta{Iteration: 1})
	if err != nil {
		t.Fatal(err)
	}
	return cfgPath, ckpt, root
}

func TestTestDetectorPerfect(t *testing.T) {
	cfgPath, ckpt, root := detFixture(t, 0)
	out := filepath.Join(t.TempDir(), "results.bbox.json")
	var stdout, stderr bytes.Buffer
	if err := cli.Test(context.Background(), []string{cfgPath, ckpt, "--out", out}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	text := stdout.String()
	for _, want := range []string{
		" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000",
		" Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=300 ] = 1.000",
		"bbox_mAP: 1.0000\n", "bbox_mAP_50: 1.0000\n", "bbox_AR@100: 1.0000\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if strings.Index(text, "Average Precision") > strings.Index(text, "bbox_mAP:") {
		t.Errorf("the summary lines should come before the named values:\n%s", text)
	}
	// The results round-trip through coco_eval: the same numbers again.
	var results []map[string]any
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &results); err != nil {
		t.Fatalf("--out is not a JSON list: %v\n%s", err, raw)
	}
	if len(results) == 0 || results[0]["score"] != 0.8999999761581421 || len(results[0]) != 4 {
		t.Errorf("results %v, want entries of image_id, bbox, score (the checkpoint's 0.9 as float32), category_id", results[:min(len(results), 2)])
	}
	if got := cocoEval(t, filepath.Join(root, datasets.MNISTDetLayout.ValAnn), out); got["bbox_mAP"] != 1 {
		t.Errorf("coco_eval on --out: %v, want bbox_mAP 1", got)
	}
}

// cocoEval runs tools/coco_eval --json on a ground truth and results.
func cocoEval(t *testing.T, gt, results string) map[string]float64 {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "coco_eval")
	if out, err := exec.Command("go", "build", "-o", bin, "../coco_eval").CombinedOutput(); err != nil {
		t.Fatalf("building coco_eval: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--json", gt, results).Output()
	if err != nil {
		t.Fatalf("coco_eval: %v", err)
	}
	var vals map[string]float64
	if err := json.Unmarshal(out, &vals); err != nil {
		t.Fatalf("coco_eval --json: %v\n%s", err, out)
	}
	return vals
}

// printedValues reads the "name: value" lines of the test command.
func printedValues(text string) map[string]float64 {
	vals := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		name, v, ok := strings.Cut(line, ": ")
		if !ok || strings.ContainsAny(name, " []") {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			vals[name] = f
		}
	}
	return vals
}

func TestTestDetectorShifted(t *testing.T) {
	// Boxes moved 3 pixels right: small digits drop below IoU 0.5, larger
	// ones below 0.75, so every AP falls and AP@0.5 most slowly.
	cfgPath, ckpt, root := detFixture(t, 3)
	out := filepath.Join(t.TempDir(), "results.json")
	var stdout, stderr bytes.Buffer
	// coco_eval uses pycocotools' detection limits 1, 10, 100.
	args := []string{cfgPath, ckpt, "--out", out, "--cfg-options", "evaluation.metric_options.proposal_nums=[1,10,100]", "evaluation.metric_options.classwise=true"}
	if err := cli.Test(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	printed := printedValues(stdout.String())
	if len(printed) != 12 || !(printed["bbox_mAP_50"] > printed["bbox_mAP_75"] && printed["bbox_mAP_75"] > 0 && printed["bbox_mAP"] < 0.9) {
		t.Fatalf("values %v, want 12 with 0 < bbox_mAP_75 < bbox_mAP_50 and bbox_mAP under 0.9\n%s", printed, stdout.String())
	}
	if !strings.Contains(stdout.String(), "| category | AP ") {
		t.Errorf("classwise: no per-class table:\n%s", stdout.String())
	}
	ref := cocoEval(t, filepath.Join(root, datasets.MNISTDetLayout.ValAnn), out)
	for name, v := range printed {
		if r, ok := ref[name]; !ok || math.Abs(r-v) > 5e-5 {
			t.Errorf("%s: test printed %v, coco_eval on its --out %v", name, v, ref[name])
		}
	}
}

func TestTestDetectorErrors(t *testing.T) {
	cfgPath, ckpt, root := detFixture(t, 0)
	ann := filepath.Join(root, datasets.MNISTDetLayout.ValAnn)
	noImages := filepath.Join(root, "no_images.json")
	if err := os.WriteFile(noImages, []byte(`{"annotations": [], "categories": [{"id": 1, "name": "0"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	readOnly := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(readOnly, 0o555); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no img_prefix", []string{"--cfg-options", "data.test.img_prefix=''"},
			"data.test: CocoDataset has no img_prefix, and 5 of the 5 images of ann_file " + ann + " are not found from the working folder (the first: 000001.png); set img_prefix"},
		{"images missing", []string{"--cfg-options", "data.test.img_prefix=" + empty},
			"data.test: CocoDataset img_prefix " + empty + " lacks 5 of the 5 images of ann_file " + ann + " (the first: " + filepath.Join(empty, "000001.png") + ")"},
		{"no images in the file", []string{"--cfg-options", "data.test.ann_file=" + noImages},
			noImages + ` has no images; a COCO instances file lists them under "images"`},
		{"no annotation file", []string{"--cfg-options", "data.test.ann_file=" + filepath.Join(root, "missing.json")},
			"CocoDataset ann_file " + filepath.Join(root, "missing.json") + " does not exist"},
		{"out folder missing", []string{"--out", filepath.Join(root, "nowhere", "r.json")},
			"--out " + filepath.Join(root, "nowhere", "r.json") + ": the folder " + filepath.Join(root, "nowhere") + " does not exist"},
		{"out folder read-only", []string{"--out", filepath.Join(readOnly, "r.json")},
			"--out " + filepath.Join(readOnly, "r.json") + ": the folder " + readOnly + " is not writable"},
		{"accuracy on a detector", []string{"--metrics", "accuracy"}, "the evaluation pipeline must collect gt_label to compute accuracy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "out folder read-only" && os.Geteuid() == 0 {
				t.Skip("root writes to read-only folders")
			}
			var stdout, stderr bytes.Buffer
			err := cli.Test(context.Background(), append([]string{cfgPath, ckpt}, tc.args...), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(tc.name, "out folder") && stdout.Len() > 0 {
				t.Errorf("evaluated before finding the out folder unusable:\n%s", stdout.String())
			}
		})
	}
}
