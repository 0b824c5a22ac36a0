// Command infer classifies one image with a config's model and weights.
//
//	infer CONFIG CHECKPOINT IMAGE [--topk K] [--json] [--cfg-options KEY=VALUE ...]
//
// The image goes through the config's test pipeline (data.test.pipeline,
// else test_pipeline: load, resize the short side, centre crop, normalise)
// and the model prints the top-k class indices with their softmax
// probabilities; --json prints {"classes": [...], "scores": [...]}.
// CHECKPOINT is one of razor's checkpoints or an mmrazor/mmcls PyTorch .pth
// (keys architecture.model.* or the model's own, backbone.*). A supernet
// config needs a subnet: --cfg-options algorithm.mutable_cfg=SUBNET.yaml.
//
// As a command it may import any razor package; nothing imports it.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"

	"github.com/spf13/pflag"
	"gorgonia.org/tensor"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/datasets"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/tools/cli"

	_ "github.com/razorgo/razor/all"
)

const usage = "usage: infer CONFIG CHECKPOINT IMAGE [--topk K] [--json] [--cfg-options KEY=VALUE ...]"

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
	asJSON := fs.Bool("json", false, `print {"classes": [...], "scores": [...]} as JSON`)
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
	img, err := preprocess(imgPath, pipeline, key)
	if err != nil {
		return err
	}
	probs, err := classify(alg, img)
	if err != nil {
		return err
	}
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
// float32 tensor.
func preprocess(path string, p datasets.Pipeline, key string) (*tensor.Dense, error) {
	s := datasets.Sample{Source: path, ImgInfo: datasets.ImgInfo{Filename: path}, GTLabel: datasets.NoLabel}
	if err := p.Apply(&s, rand.New(rand.NewPCG(0, 0))); err != nil {
		return nil, fmt.Errorf("image %s through %s: %w", path, key, err)
	}
	if s.Img.Empty() || !s.Img.CHW {
		return nil, fmt.Errorf("%s must end with ImageToTensor (or DefaultFormatBundle) and Collect keys [img], so the image comes out as a C×H×W tensor", key)
	}
	im := s.Img.Float32()
	return tensor.New(tensor.WithShape(1, im.C, im.H, im.W), tensor.WithBacking(im.F32)), nil
}

// classify runs the model in evaluation mode and returns the softmax
// probabilities of the one image.
func classify(alg algorithms.Algorithm, img *tensor.Dense) ([]float32, error) {
	alg.SetTraining(false)
	res, err := models.Predict(alg.Model(), &models.Batch{Images: img})
	if err != nil {
		return nil, err
	}
	if len(res.Scores) != 1 {
		return nil, fmt.Errorf("the model returned no class scores; infer classifies with a classification model")
	}
	return res.Scores[0], nil
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
