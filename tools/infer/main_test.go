package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/razorgo/razor/internal/testkit"

	"github.com/razorgo/razor/mutables"
	"github.com/razorgo/razor/runners/checkpoint"
	"github.com/razorgo/razor/tools/cli"
)

// The PyTorch reference: supernet weights at widen_factor 0.125 with 10
// classes, and the probabilities of one subnet for a test image.
// run is the command as main runs it.
func run(args []string, stdout, stderr io.Writer) error {
	return cli.Infer(context.Background(), args, stdout, stderr)
}

const (
	weights     = "../../algorithms/testdata/shufflenet_w0125.pth"
	fixture     = "../../algorithms/testdata/shufflenet_forward.json"
	sposSubnet  = "../../configs/nas/spos/spos_subnet_shufflenetv2_8xb128_in1k.yaml"
	sposSupnet  = "../../configs/nas/spos/spos_supernet_shufflenetv2_8xb128_in1k.yaml"
	detnasPaper = "../../configs/nas/detnas/DETNAS_FRCNN_SHUFFLENETV2_340M_COCO_MMRAZOR.yaml"
)

type imageCase struct {
	Size  int       `json:"size"`
	Probs []float64 `json:"probs"`
}

// setup writes the test image and a config that shrinks the SPOS subnet
// config to the fixture's model and replaces its test pipeline with one
// that keeps the 32x32 image as it is (no resize).
func setup(t *testing.T) (cfg, img string, ref imageCase) {
	t.Helper()
	raw, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Image imageCase `json:"image"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	n := f.Image.Size
	rgba := image.NewRGBA(image.Rect(0, 0, n, n))
	for y := range n {
		for x := range n {
			v := func(c int) uint8 { return uint8((x*37 + y*91 + c*53 + (x*y)%17*11) % 256) }
			rgba.Set(x, y, color.RGBA{v(0), v(1), v(2), 255})
		}
	}
	img = filepath.Join(dir, "test.png")
	w, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(w, rgba); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	base, err := filepath.Abs(sposSubnet)
	if err != nil {
		t.Fatal(err)
	}
	subnet, err := filepath.Abs(detnasPaper)
	if err != nil {
		t.Fatal(err)
	}
	cfg = filepath.Join(dir, "tiny.yaml")
	text := fmt.Sprintf(`_base_: %s
mutable_cfg: %s
algorithm:
  architecture:
    model:
      backbone:
        widen_factor: 0.125
      head:
        num_classes: 10
        topk: [1, 3]
        loss:
          num_classes: 10
test_pipeline:
  - type: LoadImageFromFile
  - type: CenterCrop
    crop_size: %d
  - type: Normalize
    mean: ${ img_norm_cfg.mean }
    std: ${ img_norm_cfg.std }
    to_rgb: true
  - type: ImageToTensor
    keys: [img]
  - type: Collect
    keys: [img]
`, base, subnet, n)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, img, f.Image
}

func runTool(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	err := run(args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// TestMatchesReference classifies the test image from the PyTorch
// checkpoint (mmrazor keys, supernet weights) and compares the top classes
// and their probabilities with PyTorch's.
func TestMatchesReference(t *testing.T) {
	cfg, img, ref := setup(t)
	out, stderr, err := runTool(cfg, weights, img, "--json", "--topk", "4")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "not part of this model") {
		t.Errorf("loading supernet weights into a subnet should note the unused ops; stderr: %q", stderr)
	}
	var got cli.Prediction
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	order := make([]int, len(ref.Probs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return ref.Probs[order[a]] > ref.Probs[order[b]] })
	if len(got.Classes) != 4 {
		t.Fatalf("%d classes, want 4", len(got.Classes))
	}
	for i, c := range got.Classes {
		if c != order[i] || math.Abs(float64(got.Scores[i])-ref.Probs[c]) > 1e-5 {
			t.Fatalf("rank %d: class %d with %g; PyTorch ranks class %d with %g", i+1, c, got.Scores[i], order[i], ref.Probs[order[i]])
		}
	}
	text, _, err := runTool(cfg, weights, img)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	// The default is the head's largest topk, 3.
	if len(lines) != 4 || !strings.HasPrefix(lines[1], fmt.Sprintf("1     %-6d", order[0])) {
		t.Fatalf("text output:\n%s", text)
	}
}

// TestRazorCheckpointWithModelKeys loads one of razor's checkpoints whose
// keys are the model's own (backbone.*, head.*), as a plain mmcls
// checkpoint names them.
func TestRazorCheckpointWithModelKeys(t *testing.T) {
	cfg, img, ref := setup(t)
	c, err := checkpoint.Read(weights)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := checkpoint.Remap(c.Model, []checkpoint.PrefixRule{{From: "architecture.model.", To: ""}}, false)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := checkpoint.Save(t.TempDir(), "plain", &checkpoint.Checkpoint{Model: sd})
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := runTool(cfg, plain, img, "--json", "--topk", "1")
	if err != nil {
		t.Fatal(err)
	}
	var got cli.Prediction
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(got.Scores[0])-ref.Probs[got.Classes[0]]) > 1e-5 {
		t.Fatalf("class %d with %g, PyTorch gives it %g", got.Classes[0], got.Scores[0], ref.Probs[got.Classes[0]])
	}
}

func TestErrors(t *testing.T) {
	cfg, img, _ := setup(t)
	other := filepath.Join(t.TempDir(), "other.yaml")
	if err := mutables.WriteSubnetFile(other, mutables.Subnet{"stage_0_block_0": "shuffle_3x3"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{cfg, weights}, "expected CONFIG, CHECKPOINT and IMAGE, got 2 arguments"},
		{[]string{cfg, weights, "/no/such.png"}, "image /no/such.png: no such file or directory"},
		{[]string{cfg, "/no/such.pth", img}, "/no/such.pth"},
		{[]string{sposSupnet, weights, img}, "is a supernet config without a subnet"},
		{[]string{sposSubnet, weights, img}, "weights of another shape than the model's"},
		{[]string{cfg, weights, img, "--topk", "-1"}, "--topk -1 must be positive"},
		{[]string{cfg, weights, img, "--cfg-options", "mutable_cfg=" + other}, "subnet has no choice for block stage_0_block_1"},
	}
	for _, c := range cases {
		_, _, err := runTool(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %v, want one line containing %q", c.args, err, c.want)
		}
	}
}

// TestShippedMNISTConfig infers with a shipped MNIST config, whose test
// pipeline starts from the dataset's decoded digits and asks for a label:
// infer loads the file in grayscale in front and leaves the label out, so
// a gray PNG and the same digit saved as RGB give the same scores.
func TestShippedMNISTConfig(t *testing.T) {
	const cfgPath = "../../configs/nas/spos/spos_subnet_shufflenetv2_mnist.yaml"
	dir := t.TempDir()
	ckpt := testkit.InitCheckpoint(t, testkit.Build(t, cfgPath), 3, dir, "iter_1")
	gray := image.NewGray(image.Rect(0, 0, 28, 28))
	rgb := image.NewRGBA(gray.Rect)
	for y := 6; y < 22; y++ {
		for x := 12; x < 16; x++ { // a "1"
			gray.SetGray(x, y, color.Gray{Y: 255})
		}
	}
	for y := range 28 {
		for x := range 28 {
			v := gray.GrayAt(x, y).Y
			rgb.Set(x, y, color.RGBA{v, v, v, 255})
		}
	}
	var preds []cli.Prediction
	for name, img := range map[string]image.Image{"gray.png": gray, "rgb.png": rgb} {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
		out, errOut, err := runTool(cfgPath, ckpt, p, "--json", "--topk", "10")
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, errOut)
		}
		var got cli.Prediction
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatal(err)
		}
		var sum float64
		for _, s := range got.Scores {
			sum += float64(s)
		}
		if len(got.Classes) != 10 || math.Abs(sum-1) > 1e-4 {
			t.Fatalf("%s: %+v, want the 10 digits' probabilities", name, got)
		}
		preds = append(preds, got)
	}
	if !reflect.DeepEqual(preds[0], preds[1]) {
		t.Errorf("the gray and the RGB file of one digit differ: %+v and %+v", preds[0], preds[1])
	}
}
