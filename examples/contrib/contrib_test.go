package contrib_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/razorgo/razor/algorithms"
	_ "github.com/razorgo/razor/all"
	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/examples/contrib"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/runners"
	"github.com/razorgo/razor/runners/checkpoint"
	"github.com/razorgo/razor/tools/cli"
)

const diffnasConfig = "configs/diffnas_mnist.yaml"

// train runs tools/train's library entry point on the contrib config.
func train(t *testing.T, dir string, extra ...string) string {
	t.Helper()
	args := append([]string{diffnasConfig, "--work-dir", dir, "--seed", "3"}, extra...)
	var out bytes.Buffer
	if err := cli.Train(context.Background(), args, &out, &out); err != nil {
		t.Fatalf("train %v: %v\n%s", args, err, out.String())
	}
	return out.String()
}

// logRecords reads the JSON log lines of the run in dir.
func logRecords(t *testing.T, dir string) []map[string]any {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.log.json"))
	if len(files) != 1 {
		t.Fatalf("%d JSON logs in %s", len(files), dir)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestDiffNASTrainsThroughTrain(t *testing.T) {
	dir := t.TempDir()
	train(t, dir, "--cfg-options", "runner.max_iters=200", "evaluation.interval=200", "custom_hooks.0.interval=10", "log_config.interval=10")
	recs := logRecords(t, dir)
	var val map[string]any
	norms := 0
	for _, r := range recs {
		if r["mode"] == "val" {
			val = r
		}
		if r["mode"] == "train" {
			if _, ok := r["arch_loss"]; !ok {
				t.Errorf("train record without arch_loss: %v", r)
			}
			if _, ok := r["param_norm"]; ok {
				norms++
			}
		}
	}
	if norms != 20 {
		t.Errorf("param_norm in %d of the 20 log lines", norms)
	}
	// The custom metric scores the trained network on the 10000 test
	// digits; 200 steps of 16 images per half measured 81.8% with seed 3
	// (chance is 10%; the config's 500 steps measured 95.4%).
	if acc, _ := val["mean_class_accuracy"].(float64); acc < 70 {
		t.Errorf("mean_class_accuracy %v after 200 iterations, want at least 70", val["mean_class_accuracy"])
	}

	// The architecture weights moved (they start at zero) although the
	// runner's optimizer does not step them: the algorithm's own did.
	ck, err := checkpoint.Load(filepath.Join(dir, "iter_200.json"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		a := ck.Model["architecture.model.backbone.cells."+string(rune('0'+i))+".alpha"]
		if a == nil {
			t.Fatalf("no architecture weights of cell %d in the checkpoint", i)
		}
		if d := a.Float32s(); d[0] == 0 && d[1] == 0 {
			t.Errorf("cell %d's architecture weights never moved: %v", i, d)
		}
	}
}

func TestRunnerLeavesArchitectureWeights(t *testing.T) {
	cfg, err := config.Load(diffnasConfig, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	alg, err := algorithms.FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	all, stepped := alg.NamedParameters(), runners.RunnerParameters(alg)
	if len(all)-len(stepped) != 3 {
		t.Fatalf("the runner steps %d of %d parameters, want all but the 3 architecture weights", len(stepped), len(all))
	}
	for _, p := range stepped {
		if strings.HasSuffix(p.Name(), ".alpha") {
			t.Errorf("the runner's optimizer steps %s", p.Name())
		}
	}
}

func TestDiffNASResumesExactly(t *testing.T) {
	straight, resumed := t.TempDir(), t.TempDir()
	opts := []string{"--no-validate", "--cfg-options", "runner.max_iters=40", "checkpoint_config.interval=20", "log_config.interval=10"}
	train(t, straight, opts...)
	train(t, resumed, append(opts, "runner.max_iters=20")...)
	train(t, resumed, append(opts, "--auto-resume")...)
	a, err := os.ReadFile(filepath.Join(straight, "iter_40.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(resumed, "iter_40.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("a run resumed at iteration 20 ends with other weights than an uninterrupted one")
	}
}

func TestDiffNASErrors(t *testing.T) {
	for _, tc := range []struct {
		overrides []string
		want      string
	}{
		{[]string{"algorithm.arch_optimizer.type=Adam"}, `algorithm.arch_optimizer.type: unknown optimizer type "Adam"`},
		{[]string{"algorithm.arch_optimizer=null"}, "arch_optimizer"},
		{[]string{"optimizer.momentum=1.5"}, "momentum 1.5 in [0, 1)"},
		{[]string{"custom_hooks.0.interval=0"}, "custom_hooks.0 (hook ParamNormHook): interval must be positive"},
		{[]string{"algorithm.architecture.model.backbone.kernels=[3,4]"}, "kernels: 4 is not a positive odd size"},
	} {
		args := append([]string{diffnasConfig, "--work-dir", t.TempDir(), "--cfg-options"}, tc.overrides...)
		err := cli.Train(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.overrides, err, tc.want)
		}
	}
}

func TestMeanClassAccuracy(t *testing.T) {
	m, err := runners.Metrics.Build(map[string]any{"type": "mean_class_accuracy"}, "evaluation.metric", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Class 0: 3 of 4 right; class 1: 0 of 1. Plain accuracy would be 60%.
	scores := [][]float32{{0.9, 0.1}, {0.8, 0.2}, {0.7, 0.3}, {0.4, 0.6}, {0.6, 0.4}}
	if err := m.Process(&models.Batch{Labels: []int{0, 0, 0, 0, 1}}, models.Result{Scores: scores}); err != nil {
		t.Fatal(err)
	}
	vals, err := m.Compute()
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) != 1 || vals[0].Name != "mean_class_accuracy" || vals[0].Value != 37.5 {
		t.Errorf("values %v, want mean_class_accuracy 37.5", vals)
	}
}

func TestSignumStep(t *testing.T) {
	root := &nn.Base{}
	p := root.AddParam("w", nn.KindWeight, 3)
	copy(p.Data(), []float32{1, -2, 0.5})
	opt, err := contrib.SignumOptions{LR: 0.1, Momentum: 0.5, WeightDecay: 0.1}.New([]*nn.Param{p})
	if err != nil {
		t.Fatal(err)
	}
	step := func(g ...float32) {
		opt.ZeroGrad(false)
		if err := p.AccumulateGrad(g); err != nil {
			t.Fatal(err)
		}
		opt.Step()
	}
	// m = 0.5*g = (1, -1, 0): w -= 0.01*w, then -0.1*sign(m).
	step(2, -2, 0)
	want := []float32{1 - 0.01 - 0.1, -2 + 0.02 + 0.1, 0.5 - 0.005}
	for i, w := range p.Data() {
		if w != want[i] {
			t.Fatalf("after one step %v, want %v", p.Data(), want)
		}
	}
	// A state round trip continues identically.
	ts, st, err := opt.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := contrib.SignumOptions{LR: 0.1, Momentum: 0.5, WeightDecay: 0.1}.New([]*nn.Param{p})
	if err := other.LoadStateDict(ts, st); err != nil {
		t.Fatal(err)
	}
	if m := ts["momentum/w"].Float32s(); m[0] != 1 || m[1] != -1 || m[2] != 0 {
		t.Errorf("momentum %v, want [1 -1 0]", m)
	}
	bad := map[string]*tensor.Dense{"momentum/v": tensor.New(tensor.WithShape(3), tensor.Of(tensor.Float32))}
	if err := other.LoadStateDict(bad, st); err == nil || !strings.Contains(err.Error(), `"momentum/v"`) {
		t.Errorf("a buffer of no parameter: %v", err)
	}
}

// TestReadmeShowsThisCode keeps the README's contributor section true: every
// Go block it marks with <!-- contrib: FILE --> appears verbatim in FILE,
// which this package compiles and tests.
func TestReadmeShowsThisCode(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)<!-- contrib: (\\S+) -->\n```(?:go|yaml)\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(blocks) < 5 {
		t.Fatalf("README marks %d contrib blocks, want the algorithm, hook, metric, optimizer and config", len(blocks))
	}
	for _, b := range blocks {
		src, err := os.ReadFile(filepath.Join("../..", string(b[1])))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(src, b[2]) {
			t.Errorf("README's block for %s is not in the file:\n%s", b[1], b[2])
		}
	}
}
