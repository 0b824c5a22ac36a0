package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // decodes JPEG inputs for drawing
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"gorgonia.org/tensor"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/datasets"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/runners"
)

const inferUsage = "usage: infer CONFIG CHECKPOINT IMAGE [IMAGE ...] [--topk K] [--json] [--score-thr T] [--out-file FILE.png | --out-dir DIR] [--cfg-options KEY=VALUE ...]"

// Prediction is infer's --json output for a classifier.
type Prediction struct {
	Classes []int     `json:"classes"`
	Scores  []float32 `json:"scores"`
}

// Infer is tools/infer (see its package comment): a classifier's top
// classes, or a detector's boxes drawn on each image.
func Infer(_ context.Context, args []string, stdout, stderr io.Writer) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error while classifying: %v", r)
		}
	}()
	fs := pflag.NewFlagSet("infer", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cf ConfigFlags
	cf.Register(fs)
	topk := fs.Int("topk", 0, "number of classes to print (default: the head's largest topk, else 5)")
	asJSON := fs.Bool("json", false, `classifier: print {"classes": [...], "scores": [...]} as JSON (a detector always prints JSON)`)
	scoreThr := fs.Float64("score-thr", 0.3, "detector: draw and print the detections scoring at least this")
	outFile := fs.String("out-file", "", `detector, one IMAGE: the PNG to draw the detections on (default: IMAGE's name + "_result.png" in --out-dir)`)
	outDir := fs.String("out-dir", "", "detector: the folder for the drawn images, each IMAGE's name + \"_result.png\" (default: the working folder)")
	if err := fs.Parse(ExpandArgs(args)); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintln(stdout, inferUsage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return nil
		}
		return fmt.Errorf("%w (%s)", err, inferUsage)
	}
	if fs.NArg() < 3 {
		return fmt.Errorf("expected CONFIG, CHECKPOINT and IMAGE, got %d arguments (%s)", fs.NArg(), inferUsage)
	}
	cfgPath, ckptPath, images := fs.Arg(0), fs.Arg(1), fs.Args()[2:]
	if len(images) > 1 && *outFile != "" {
		return fmt.Errorf("--out-file names one picture, and %d images were given; use --out-dir", len(images))
	}
	for _, p := range images {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("image %s: %w", p, UnwrapPathError(err))
		}
	}
	if *outDir != "" {
		if err := os.MkdirAll(*outDir, 0o755); err != nil {
			return fmt.Errorf("--out-dir: %w", UnwrapPathError(err))
		}
	}
	imgPath := images[0]
	cfg, err := cf.Load(cfgPath, stderr)
	if err != nil {
		return err
	}
	alg, err := algorithms.FromConfig(cfg)
	if err != nil {
		return err
	}
	if oneShot, ok := alg.(algorithms.OneShot); ok && oneShot.EvalSubnets(1, 0) != nil {
		return fmt.Errorf("%s is a supernet config without a subnet, so it has no single network to run; choose one with --cfg-options algorithm.mutable_cfg=SUBNET.yaml (the supernet's weights serve any subnet)", cfgPath)
	}
	if err := LoadWeights(ckptPath, alg, stderr); err != nil {
		return err
	}
	pipeline, key, err := inferPipeline(cfg)
	if err != nil {
		return err
	}
	img, meta, err := preprocess(imgPath, pipeline, key)
	if err != nil {
		return err
	}
	res, err := predict(alg, img, meta)
	if err != nil {
		return err
	}
	if res.Detections != nil {
		// One image prints its list of detections; several print a line
		// {image, detections} each.
		classes := classNames(cfg, stderr)
		for i, p := range images {
			if i > 0 {
				if img, meta, err = preprocess(p, pipeline, key); err != nil {
					return err
				}
				if res, err = predict(alg, img, meta); err != nil {
					return err
				}
			}
			out := *outFile
			if out == "" {
				base := filepath.Base(p)
				out = filepath.Join(*outDir, strings.TrimSuffix(base, filepath.Ext(base))+"_result.png")
			}
			kept, err := detect(classes, p, res.Detections[0], *scoreThr, out, stderr)
			if err != nil {
				return err
			}
			var v any = kept
			if len(images) > 1 {
				v = struct {
					Image      string  `json:"image"`
					Detections []Shown `json:"detections"`
				}{p, kept}
			}
			if err := json.NewEncoder(stdout).Encode(v); err != nil {
				return err
			}
		}
		return nil
	}
	if len(images) > 1 {
		return fmt.Errorf("a classifier takes one IMAGE, and %d were given", len(images))
	}
	if len(res.Scores) != 1 {
		return fmt.Errorf("the model returned neither class scores nor detections")
	}
	probs := res.Scores[0]
	k := *topk
	if k == 0 {
		k = defaultTopK(alg.Model())
	}
	if k < 0 {
		return fmt.Errorf("--topk %d must be positive", k)
	}
	pred := topClasses(probs, min(k, len(probs)))
	if *asJSON {
		return json.NewEncoder(stdout).Encode(pred)
	}
	fmt.Fprintf(stdout, "%-5s %-6s %s\n", "rank", "class", "score")
	for i, c := range pred.Classes {
		fmt.Fprintf(stdout, "%-5d %-6d %.6f\n", i+1, c, pred.Scores[i])
	}
	return nil
}

// inferPipeline builds the config's test pipeline: data.test.pipeline,
// else test_pipeline. A pipeline that does not start by loading the image
// (the MNIST configs', whose dataset hands over decoded digits) gets
// LoadImageFromFile in front, as mmcls's inference_model does; grayscale
// when the pipeline turns gray into colour itself (GrayToColor).
func inferPipeline(cfg *config.Config) (datasets.Pipeline, string, error) {
	for _, key := range []string{"data.test.pipeline", "test_pipeline"} {
		node, ok := cfg.Get(key)
		if !ok || node == nil {
			continue
		}
		list, ok := node.([]any)
		if !ok {
			return nil, "", fmt.Errorf("%s must be a list of transforms", key)
		}
		list = withoutLabels(list)
		if len(list) > 0 && !strings.HasPrefix(transformType(list[0]), "LoadImage") {
			load := map[string]any{"type": "LoadImageFromFile"}
			for _, step := range list {
				if transformType(step) == "GrayToColor" {
					load["color_type"] = "grayscale"
				}
			}
			list = append([]any{load}, list...)
		}
		var p datasets.Pipeline
		for i, step := range list {
			t, err := datasets.Transforms.Build(step, fmt.Sprintf("%s.%d", key, i), nil)
			if err != nil {
				return nil, "", err
			}
			p = append(p, t)
		}
		return p, key, nil
	}
	return nil, "", fmt.Errorf("the config has no test pipeline; set data.test.pipeline or test_pipeline (load, resize, crop, normalise, ImageToTensor, Collect)")
}

// withoutLabels drops gt_label from the keys of ToTensor and Collect (and
// a ToTensor left with no keys): an image given to infer has no label, and
// a test pipeline that also serves validation (the MNIST configs') asks
// for one. The config's own lists are not changed.
func withoutLabels(list []any) []any {
	var out []any
	for _, step := range list {
		m, ok := step.(map[string]any)
		t := transformType(step)
		keys, hasKeys := m["keys"].([]any)
		if !ok || (t != "ToTensor" && t != "Collect") || !hasKeys {
			out = append(out, step)
			continue
		}
		var kept []any
		for _, k := range keys {
			if k != "gt_label" {
				kept = append(kept, k)
			}
		}
		if len(kept) == 0 && t == "ToTensor" {
			continue
		}
		c := make(map[string]any, len(m))
		for k, v := range m {
			c[k] = v
		}
		c["keys"] = kept
		out = append(out, c)
	}
	return out
}

// transformType is a pipeline step's type, "" when it has none.
func transformType(step any) string {
	if m, ok := step.(map[string]any); ok {
		if t, ok := m["type"].(string); ok {
			return t
		}
	}
	return ""
}

// preprocess runs the image through the pipeline and returns a 1×C×H×W
// float32 tensor and the image's metas (a detector maps its boxes back to
// the original image with them).
func preprocess(path string, p datasets.Pipeline, key string) (*tensor.Dense, models.ImageMeta, error) {
	s := datasets.Sample{Source: path, ImgInfo: datasets.ImgInfo{Filename: path}, GTLabel: datasets.NoLabel}
	if err := p.Apply(&s, rand.New(rand.NewPCG(0, 0))); err != nil {
		return nil, models.ImageMeta{}, fmt.Errorf("image %s through %s: %w", path, key, err)
	}
	if s.Img.Empty() || !s.Img.CHW {
		return nil, models.ImageMeta{}, fmt.Errorf("%s must end with ImageToTensor (or DefaultFormatBundle) and Collect keys [img], so the image comes out as a C×H×W tensor", key)
	}
	im := s.Img.Float32()
	return tensor.New(tensor.WithShape(1, im.C, im.H, im.W), tensor.WithBacking(im.F32)), runners.ModelMeta(s.Meta), nil
}

// predict runs the model in evaluation mode on the one image.
func predict(alg algorithms.Algorithm, img *tensor.Dense, meta models.ImageMeta) (models.Result, error) {
	alg.SetTraining(false)
	return models.Predict(alg.Model(), &models.Batch{Images: img, Metas: []models.ImageMeta{meta}})
}

// detect keeps the detections scoring at least thr, names them by classes,
// draws them on the original image and writes it as PNG to outFile.
func detect(classes []string, imgPath string, dets []models.Detection, thr float64, outFile string, stderr io.Writer) ([]Shown, error) {
	if thr < 0 || thr > 1 {
		return nil, fmt.Errorf("--score-thr %v must be between 0 and 1", thr)
	}
	f, err := os.Open(imgPath)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", imgPath, UnwrapPathError(err))
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", imgPath, err)
	}
	kept := []Shown{}
	for _, d := range dets {
		if float64(d.Score) < thr {
			continue
		}
		name := strconv.Itoa(d.Label)
		if d.Label >= 0 && d.Label < len(classes) {
			name = classes[d.Label]
		}
		kept = append(kept, Shown{Class: name, Label: d.Label, Score: d.Score, BBox: d.Box})
	}
	sort.SliceStable(kept, func(i, j int) bool { return kept[i].Score > kept[j].Score })
	var buf bytes.Buffer
	if err := png.Encode(&buf, drawDetections(img, kept)); err != nil {
		return nil, err
	}
	if err := config.WriteFileAtomic(outFile, buf.Bytes()); err != nil {
		return nil, fmt.Errorf("--out-file %s: %w", outFile, err)
	}
	fmt.Fprintf(stderr, "drew %d of %d detections (score >= %g) on %s\n", len(kept), len(dets), thr, outFile)
	return kept, nil
}

// classNames are the detector's class names: data.test.classes, else the
// classes of the data.test dataset when it can be built (its annotation
// file is there), else none, with a note.
func classNames(cfg *config.Config, stderr io.Writer) []string {
	if v, ok := cfg.Get("data.test.classes"); ok {
		if list, ok := v.([]any); ok {
			var out []string
			for _, c := range list {
				out = append(out, fmt.Sprint(c))
			}
			return out
		}
	}
	ds, err := runners.BuildDataset(cfg, "test")
	if err != nil {
		fmt.Fprintf(stderr, "note: labels are shown as numbers: the class names come from data.test.classes or the data.test dataset, and %v\n", err)
		return nil
	}
	return ds.Classes()
}

// defaultTopK is the head's largest topk, or 5.
func defaultTopK(m models.Model) int {
	k := 5
	if c, ok := m.(interface{ Head() models.ClsHead }); ok {
		if h, ok := c.Head().(interface{ TopK() []int }); ok && len(h.TopK()) > 0 {
			k = 0
			for _, v := range h.TopK() {
				k = max(k, v)
			}
		}
	}
	return k
}

// top returns the k most probable classes, ties broken by index.
func topClasses(probs []float32, k int) Prediction {
	idx := make([]int, len(probs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return probs[idx[a]] > probs[idx[b]] })
	p := Prediction{Classes: idx[:k], Scores: make([]float32, k)}
	for i, c := range p.Classes {
		p.Scores[i] = probs[c]
	}
	return p
}
