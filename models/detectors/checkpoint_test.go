package detectors_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/internal/hashfill"
	"github.com/razorgo/razor/models/detectors"
	"github.com/razorgo/razor/runners"
	"github.com/razorgo/razor/runners/checkpoint"
	"github.com/razorgo/razor/tools/cli"
)

// The checkpoints scripts/fixtures/frcnn_pth.py writes: the DetNAS subnet
// detector at small widths in mmrazor's and mmdet's layouts, and a DetNAS
// step-4 classifier of the same subnet.
const (
	mmrazorPth    = "testdata/frcnn_small_mmrazor.pth"
	mmdetPth      = "testdata/frcnn_small_mmdet.pth"
	classifierPth = "testdata/shufflenet_small_cls.pth"

	subnetDetConfig   = "../../configs/nas/detnas/detnas_subnet_frcnn_shufflenetv2_fpn_1x_coco.yaml"
	supernetDetConfig = "../../configs/nas/detnas/detnas_supernet_frcnn_shufflenetv2_fpn_1x_coco.yaml"
	subnetClsConfig   = "../../configs/nas/detnas/detnas_subnet_shufflenetv2_8xb128_in1k.yaml"
	supernetClsConfig = "../../configs/nas/detnas/detnas_supernet_shufflenetv2_8xb128_in1k.yaml"

	// numBatchesTracked is what the fixture stores in every BN's counter.
	numBatchesTracked = 29316
)

// smallDetector are the --cfg-options that shrink the DetNAS detector to
// the fixture's widths.
var smallDetector = []string{
	"algorithm.architecture.model.backbone.widen_factor=0.125",
	"algorithm.architecture.model.neck.in_channels=[8,20,40,80]",
	"algorithm.architecture.model.neck.out_channels=16",
	"algorithm.architecture.model.rpn_head.in_channels=16",
	"algorithm.architecture.model.rpn_head.feat_channels=16",
	"algorithm.architecture.model.roi_head.bbox_roi_extractor.out_channels=16",
	"algorithm.architecture.model.roi_head.bbox_head.in_channels=16",
	"algorithm.architecture.model.roi_head.bbox_head.conv_out_channels=16",
	"algorithm.architecture.model.roi_head.bbox_head.fc_out_channels=32",
	"algorithm.architecture.model.roi_head.bbox_head.num_classes=3",
}

// smallClassifier are the --cfg-options that shrink the DetNAS classifier
// to the fixture's.
var smallClassifier = []string{
	"algorithm.architecture.model.backbone.widen_factor=0.125",
	"algorithm.architecture.model.head.num_classes=10",
	"algorithm.architecture.model.head.loss.num_classes=10",
}

// buildAlg builds the algorithm of a shipped config with overrides and
// draws its initial weights, which differ from every fixture value.
func buildAlg(t *testing.T, file string, overrides ...string) algorithms.Algorithm {
	t.Helper()
	cfg, err := config.Load(file, config.Options{Overrides: overrides})
	if err != nil {
		t.Fatal(err)
	}
	alg, err := algorithms.FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := alg.InitWeights(rand.New(rand.NewPCG(7, 7))); err != nil {
		t.Fatal(err)
	}
	return alg
}

// fixtureValue is the value the fixture stores under a model weight's name.
func fixtureValue(name string, shape []int) any {
	mmName := strings.TrimPrefix(name, runners.ModelPrefix)
	if strings.HasSuffix(mmName, ".num_batches_tracked") {
		v := make([]int64, max(1, tensor.Shape(shape).TotalSize()))
		for i := range v {
			v[i] = numBatchesTracked
		}
		return v
	}
	return hashfill.DetectorTensor(mmName, shape)
}

// compareWeights checks every weight of alg whose name is under one of
// prefixes against the fixture's value, and every other weight against
// before (its value before the load); it returns how many it compared
// with the fixture.
func compareWeights(t *testing.T, alg algorithms.Algorithm, before map[string]*tensor.Dense, prefixes ...string) int {
	t.Helper()
	n, bad := 0, 0
	for name, got := range alg.StateDict() {
		want := any(nil)
		for _, p := range prefixes {
			if strings.HasPrefix(name, runners.ModelPrefix+p) {
				want = fixtureValue(name, got.Shape())
			}
		}
		what := "the fixture's value"
		if want == nil {
			want, what = before[name].Data(), "its initial value"
		} else {
			n++
		}
		if !equalData(got.Data(), want) {
			if bad++; bad <= 5 {
				t.Errorf("%s %v is not %s", name, got.Shape(), what)
			}
		}
	}
	if bad > 5 {
		t.Errorf("... %d weights differ in all", bad)
	}
	return n
}

func equalData(got, want any) bool {
	switch g := got.(type) {
	case []float32:
		w, ok := want.([]float32)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range g {
			// Bitwise: a load copies, it does not compute.
			if g[i] != w[i] {
				return false
			}
		}
		return true
	case []int64:
		w, ok := want.([]int64)
		return ok && fmt.Sprint(g) == fmt.Sprint(w)
	case int64:
		switch w := want.(type) {
		case int64:
			return w == g
		case []int64:
			return len(w) == 1 && w[0] == g
		}
	}
	return false
}

// snapshot copies every weight of alg.
func snapshot(alg algorithms.Algorithm) map[string]*tensor.Dense {
	out := map[string]*tensor.Dense{}
	for k, v := range alg.StateDict() {
		out[k] = v.Clone().(*tensor.Dense)
	}
	return out
}

// TestDetectorCheckpointLayouts loads the detector from mmrazor's and
// mmdet's checkpoint layouts through the tools' and the library's entry
// points, and from razor's own checkpoint of the loaded detector.
func TestDetectorCheckpointLayouts(t *testing.T) {
	alg := buildAlg(t, subnetDetConfig, smallDetector...)
	if _, ok := alg.Model().(*detectors.FasterRCNN); !ok {
		t.Fatalf("the DetNAS detection config builds %T", alg.Model())
	}
	total := len(alg.StateDict())
	for _, path := range []string{mmrazorPth, mmdetPth} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			alg := buildAlg(t, subnetDetConfig, smallDetector...)
			var warn bytes.Buffer
			if err := cli.LoadWeights(path, alg, &warn); err != nil {
				t.Fatal(err)
			}
			if warn.Len() > 0 {
				t.Errorf("LoadWeights noted %q; the fixture has exactly the model's tensors", warn.String())
			}
			if n := compareWeights(t, alg, nil, ""); n != total {
				t.Errorf("compared %d weights, the model has %d", n, total)
			}

			alg = buildAlg(t, subnetDetConfig, smallDetector...)
			rep, c, err := checkpoint.LoadModel(path, alg, checkpoint.LoadOptions{Strict: true, Rules: runners.DefaultLoadRules})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Clean() || len(rep.Loaded) != total {
				t.Errorf("strict load: %d loaded of %d; %s", len(rep.Loaded), total, rep)
			}
			if c.Meta.Epoch != 12 || c.Meta.Iteration != 87936 {
				t.Errorf("meta epoch %d iteration %d, want mmcv's 12 and 87936", c.Meta.Epoch, c.Meta.Iteration)
			}
			compareWeights(t, alg, nil, "")
		})
	}

	t.Run("razor round trip", func(t *testing.T) {
		alg := buildAlg(t, subnetDetConfig, smallDetector...)
		if err := cli.LoadWeights(mmrazorPth, alg, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		saved, err := checkpoint.Save(t.TempDir(), "frcnn", &checkpoint.Checkpoint{Model: alg.StateDict()})
		if err != nil {
			t.Fatal(err)
		}
		// Saved as mmrazor names them, so either program reads the other's.
		c, err := checkpoint.Load(saved)
		if err != nil {
			t.Fatal(err)
		}
		p, err := checkpoint.ReadPth(mmrazorPth)
		if err != nil {
			t.Fatal(err)
		}
		for k := range p.StateDict {
			if _, ok := c.Model[k]; !ok {
				t.Errorf("razor's checkpoint lacks mmrazor's key %s", k)
			}
		}
		if len(c.Model) != len(p.StateDict) {
			t.Errorf("razor's checkpoint has %d tensors, mmrazor's %d", len(c.Model), len(p.StateDict))
		}
		fresh := buildAlg(t, subnetDetConfig, smallDetector...)
		var warn bytes.Buffer
		if err := cli.LoadWeights(saved, fresh, &warn); err != nil {
			t.Fatal(err)
		}
		if n := compareWeights(t, fresh, nil, ""); n != total || warn.Len() > 0 {
			t.Errorf("compared %d of %d weights; note %q", n, total, warn.String())
		}
	})
}

// TestClassifierCheckpoint checks that the classifier fixture is what
// razor's DetNAS step-4 classifier saves, so the load_from test below
// starts from a real step-4 checkpoint.
func TestClassifierCheckpoint(t *testing.T) {
	alg := buildAlg(t, subnetClsConfig, smallClassifier...)
	var warn bytes.Buffer
	if err := cli.LoadWeights(classifierPth, alg, &warn); err != nil {
		t.Fatal(err)
	}
	if n, total := compareWeights(t, alg, nil, ""), len(alg.StateDict()); n != total || warn.Len() > 0 {
		t.Errorf("compared %d of %d weights; note %q", n, total, warn.String())
	}
}

// TestLoadFromClassifier is DetNAS step 5: the detector's training starts
// from step 4's classifier, which fills the backbone and nothing else.
func TestLoadFromClassifier(t *testing.T) {
	alg := buildAlg(t, subnetDetConfig, smallDetector...)
	before := snapshot(alg)
	summary, err := runners.LoadFrom(classifierPth, alg)
	if err != nil {
		t.Fatal(err)
	}
	if n := compareWeights(t, alg, before, "backbone."); n == 0 {
		t.Error("no backbone weight compared")
	}
	want := "skipped 8 checkpoint tensors the model lacks: backbone.layers.4.* (6), head.fc.* (2); " +
		"lacked 84 of the model's tensors, which keep their initial values: neck.* (48), roi_head.bbox_head.* (30), rpn_head.* (6)"
	if summary != want {
		t.Errorf("load_from summary\n%s\nwant\n%s", summary, want)
	}

	// A checkpoint of which nothing fits would leave training to start
	// from scratch unnoticed.
	unrelated := "../../runners/checkpoint/testdata/bare_zip.pth"
	_, err = runners.LoadFrom(unrelated, buildAlg(t, subnetDetConfig, smallDetector...))
	if err == nil || !strings.HasPrefix(err.Error(), "load_from "+unrelated+": no tensor of the checkpoint fits the model (skipped 13 checkpoint tensors the model lacks: backbone.* (8), extra.* (5); lacked 606 ") {
		t.Errorf("load_from an unrelated checkpoint: %v", err)
	}
}

// TestLoadFromSupernetClassifier is DetNAS step 2: the supernet detector
// starts from step 1's supernet classifier, every op of every block.
func TestLoadFromSupernetClassifier(t *testing.T) {
	cls := buildAlg(t, supernetClsConfig, smallClassifier...)
	sd := map[string]*tensor.Dense{}
	for name, v := range cls.StateDict() {
		switch w := fixtureValue(name, v.Shape()).(type) {
		case []float32:
			sd[name] = tensor.New(tensor.WithShape(v.Shape()...), tensor.WithBacking(w))
		case []int64:
			sd[name] = tensor.New(tensor.WithShape(v.Shape()...), tensor.WithBacking(w))
		}
	}
	saved, err := checkpoint.Save(t.TempDir(), "supernet_cls", &checkpoint.Checkpoint{Model: sd})
	if err != nil {
		t.Fatal(err)
	}
	det := buildAlg(t, supernetDetConfig, smallDetector...)
	before := snapshot(det)
	summary, err := runners.LoadFrom(saved, det)
	if err != nil {
		t.Fatal(err)
	}
	compareWeights(t, det, before, "backbone.")
	if !strings.HasPrefix(summary, "skipped 8 checkpoint tensors the model lacks: backbone.layers.4.* (6), head.fc.* (2); lacked ") {
		t.Errorf("load_from summary %q", summary)
	}
}

// TestDetectorCheckpointErrors gives the detector checkpoints it cannot
// use; each error names the file, says what is wrong by module in a few
// words and what to do.
func TestDetectorCheckpointErrors(t *testing.T) {
	p, err := checkpoint.ReadPth(mmdetPth)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// save writes an edited copy of the mmdet fixture in razor's format.
	save := func(name string, edit func(sd map[string]*tensor.Dense)) string {
		sd := map[string]*tensor.Dense{}
		for k, v := range p.StateDict {
			sd[k] = v
		}
		edit(sd)
		path, err := checkpoint.Save(dir, name, &checkpoint.Checkpoint{Model: sd})
		if err != nil {
			t.Fatal(err)
		}
		return path
	}
	zeros := func(shape ...int) *tensor.Dense {
		return tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
	}
	coco := save("coco80", func(sd map[string]*tensor.Dense) {
		sd["roi_head.bbox_head.fc_cls.weight"], sd["roi_head.bbox_head.fc_cls.bias"] = zeros(81, 32), zeros(81)
		sd["roi_head.bbox_head.fc_reg.weight"], sd["roi_head.bbox_head.fc_reg.bias"] = zeros(320, 32), zeros(320)
	})
	// A single-stage detector on the same backbone and neck: no RPN, no
	// RoI head, a dense bbox_head instead.
	retina := save("retinanet", func(sd map[string]*tensor.Dense) {
		for k := range sd {
			if strings.HasPrefix(k, "rpn_head.") || strings.HasPrefix(k, "roi_head.") {
				delete(sd, k)
			}
		}
		for i := range 4 {
			for _, branch := range []string{"cls_convs", "reg_convs"} {
				sd[fmt.Sprintf("bbox_head.%s.%d.conv.weight", branch, i)] = zeros(16, 16, 3, 3)
				sd[fmt.Sprintf("bbox_head.%s.%d.conv.bias", branch, i)] = zeros(16)
			}
		}
		sd["bbox_head.retina_cls.weight"], sd["bbox_head.retina_cls.bias"] = zeros(27, 16, 3, 3), zeros(27)
		sd["bbox_head.retina_reg.weight"], sd["bbox_head.retina_reg.bias"] = zeros(36, 16, 3, 3), zeros(36)
	})

	for _, tc := range []struct {
		name, path string
		want       []string
	}{
		{"another num_classes", coco, []string{
			"checkpoint " + coco + " has 4 weights of another shape than the model's, in roi_head.bbox_head.* (4)",
			"such as roi_head.bbox_head.fc_cls.bias: shape [81] in the state dict, [4] in the model",
			"another num_classes",
		}},
		{"another detector", retina, []string{
			"checkpoint " + retina + " lacks 36 of the model's weights: roi_head.bbox_head.* (30), rpn_head.* (6)",
			"and holds 20 tensors the model does not use: bbox_head.* (20)",
			"is it a checkpoint of this config's model",
		}},
		{"a classifier", classifierPth, []string{
			"checkpoint " + classifierPth + " holds weights for the backbone only and none for neck.* (48), roi_head.bbox_head.* (30), rpn_head.* (6)",
			"Evaluating needs the whole model's weights",
			"train with --cfg-options load_from=" + classifierPth,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alg := buildAlg(t, subnetDetConfig, smallDetector...)
			err := cli.LoadWeights(tc.path, alg, &bytes.Buffer{})
			if err == nil {
				t.Fatal("LoadWeights accepted the checkpoint")
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error\n%s\nlacks\n%s", msg, w)
				}
			}
			// One short sentence, whatever the number of keys.
			if n := len(strings.ReplaceAll(msg, tc.path, "PATH")); n > 320 {
				t.Errorf("error is %d characters without its paths: %s", n, msg)
			}
		})
	}

	t.Run("tools/test with a classifier", func(t *testing.T) {
		args := []string{subnetDetConfig, classifierPth, "--cfg-options"}
		err := cli.Test(context.Background(), append(args, smallDetector...), &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "holds weights for the backbone only") || !strings.Contains(err.Error(), "load_from="+classifierPth) {
			t.Errorf("test CONFIG CLASSIFIER: %v", err)
		}
	})
}
