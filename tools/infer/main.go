// Command infer runs a config's model on one image: a classifier's top
// classes, or a detector's boxes drawn on the image.
//
//	infer CONFIG CHECKPOINT IMAGE [--topk K] [--json] [--score-thr T] [--out-file FILE.png] [--cfg-options KEY=VALUE ...]
//
// The image goes through the config's test pipeline (data.test.pipeline,
// else test_pipeline: load, resize, crop or pad, normalise). A classifier
// prints the top-k class indices with their softmax probabilities; --json
// prints {"classes": [...], "scores": [...]}. A detector's detections
// scoring at least --score-thr (0.3, as mmdet's show_result) are drawn on
// the image -- boxes, "class|score" tabs -- written as PNG to --out-file
// (default IMAGE's name + "_result.png" in the working folder), and
// printed to stdout as a JSON list of {class, label, score, bbox: [x1, y1,
// x2, y2]} in original-image pixels, best first. Class names come from
// data.test.classes, else from the data.test dataset when it can be read,
// else the labels are shown as numbers.
// CHECKPOINT is one of razor's checkpoints or an mmrazor/mmcls PyTorch .pth
// (keys architecture.model.* or the model's own, backbone.*). A supernet
// config needs a subnet: --cfg-options algorithm.mutable_cfg=SUBNET.yaml.
//
// As a command it may import any razor package; nothing imports it.
package main

import (
	"bytes"
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
	"github.com/razorgo/razor/tools/cli"

	_ "github.com/razorgo/razor/all"
)

const usage = "usage: infer CONFIG CHECKPOINT IMAGE [--topk K] [--json] [--score-thr T] [--out-file FILE.png] [--cfg-options KEY=VALUE ...]"

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "infer:", err)
		os.Exit(1)
	}
}

// prediction is the --json output.
type prediction struct {
	Classes []int     `json:"classes"`
	Scores  []float32 `json:"scores"`
}

func run(args []string, stdout, stderr io.Writer) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error while classifying: %v", r)
		}
	}()
	fs := pflag.NewFlagSet("infer", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cf cli.ConfigFlags
	cf.Register(fs)
	topk := fs.Int("topk", 0, "number of classes to print (default: the head's largest topk, else 5)")
	asJSON := fs.Bool("json", false, `classifier: print {"classes": [...], "scores": [...]} as JSON (a detector always prints JSON)`)
	scoreThr := fs.Float64("score-thr", 0.3, "detector: draw and print the detections scoring at least this")
	outFile := fs.String("out-file", "", `detector: the PNG to draw the detections on (default: IMAGE's name + "_result.png" in the working folder)`)
	if err := fs.Parse(cli.ExpandArgs(args)); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintln(stdout, usage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return nil
		}
		return fmt.Errorf("%w (%s)", err, usage)
	}
	if fs.NArg() != 3 {
		return fmt.Errorf("expected CONFIG, CHECKPOINT and IMAGE, got %d arguments (%s)", fs.NArg(), usage)
	}
	cfgPath, ckptPath, imgPath := fs.Arg(0), fs.Arg(1), fs.Arg(2)
	if _, err := os.Stat(imgPath); err != nil {
		return fmt.Errorf("image %s: %w", imgPath, cli.UnwrapPathError(err))
	}
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
	if err := cli.LoadWeights(ckptPath, alg, stderr); err != nil {
		return err
	}
	pipeline, key, err := testPipeline(cfg)
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
		return detect(cfg, imgPath, res.Detections[0], *scoreThr, *outFile, stdout, stderr)
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
	pred := top(probs, min(k, len(probs)))
	if *asJSON {
		return json.NewEncoder(stdout).Encode(pred)
	}
	fmt.Fprintf(stdout, "%-5s %-6s %s\n", "rank", "class", "score")
	for i, c := range pred.Classes {
		fmt.Fprintf(stdout, "%-5d %-6d %.6f\n", i+1, c, pred.Scores[i])
	}
	return nil
}

// testPipeline builds the config's test pipeline: data.test.pipeline, else
// test_pipeline.
func testPipeline(cfg *config.Config) (datasets.Pipeline, string, error) {
	for _, key := range []string{"data.test.pipeline", "test_pipeline"} {
		node, ok := cfg.Get(key)
		if !ok || node == nil {
			continue
		}
		list, ok := node.([]any)
		if !ok {
			return nil, "", fmt.Errorf("%s must be a list of transforms", key)
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

// detect keeps the detections scoring at least thr, draws them on the
// original image, writes it as PNG and prints them as JSON.
func detect(cfg *config.Config, imgPath string, dets []models.Detection, thr float64, outFile string, stdout, stderr io.Writer) error {
	if thr < 0 || thr > 1 {
		return fmt.Errorf("--score-thr %v must be between 0 and 1", thr)
	}
	if outFile == "" {
		base := filepath.Base(imgPath)
		outFile = strings.TrimSuffix(base, filepath.Ext(base)) + "_result.png"
	}
	f, err := os.Open(imgPath)
	if err != nil {
		return fmt.Errorf("image %s: %w", imgPath, cli.UnwrapPathError(err))
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return fmt.Errorf("image %s: %w", imgPath, err)
	}
	classes := classNames(cfg, stderr)
	kept := []shown{}
	for _, d := range dets {
		if float64(d.Score) < thr {
			continue
		}
		name := strconv.Itoa(d.Label)
		if d.Label >= 0 && d.Label < len(classes) {
			name = classes[d.Label]
		}
		kept = append(kept, shown{Class: name, Label: d.Label, Score: d.Score, BBox: d.Box})
	}
	sort.SliceStable(kept, func(i, j int) bool { return kept[i].Score > kept[j].Score })
	var buf bytes.Buffer
	if err := png.Encode(&buf, drawDetections(img, kept)); err != nil {
		return err
	}
	if err := config.WriteFileAtomic(outFile, buf.Bytes()); err != nil {
		return fmt.Errorf("--out-file %s: %w", outFile, err)
	}
	fmt.Fprintf(stderr, "drew %d of %d detections (score >= %g) on %s\n", len(kept), len(dets), thr, outFile)
	return json.NewEncoder(stdout).Encode(kept)
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
func top(probs []float32, k int) prediction {
	idx := make([]int, len(probs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return probs[idx[a]] > probs[idx[b]] })
	p := prediction{Classes: idx[:k], Scores: make([]float32, k)}
	for i, c := range p.Classes {
		p.Scores[i] = probs[c]
	}
	return p
}
