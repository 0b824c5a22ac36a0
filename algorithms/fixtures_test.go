package algorithms_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/mutables"

	_ "github.com/razorgo/razor/models/backbones"
	_ "github.com/razorgo/razor/models/classifiers"
	_ "github.com/razorgo/razor/models/heads"
	_ "github.com/razorgo/razor/models/necks"
)

// The shipped configs this package's tests build.
const (
	sposSupernet   = "../configs/nas/spos/spos_supernet_shufflenetv2_8xb128_in1k.yaml"
	sposSubnet     = "../configs/nas/spos/spos_subnet_shufflenetv2_8xb128_in1k.yaml"
	detnasSupernet = "../configs/nas/detnas/detnas_supernet_frcnn_shufflenetv2_fpn_1x_coco.yaml"
	detnasSubnet   = "../configs/nas/detnas/detnas_subnet_frcnn_shufflenetv2_fpn_1x_coco.yaml"
	detnasClsSub   = "../configs/nas/detnas/detnas_subnet_shufflenetv2_8xb128_in1k.yaml"
	sposPaper      = "../configs/nas/spos/SPOS_SHUFFLENETV2_330M_IN1k_PAPER.yaml"
	detnasPaper    = "../configs/nas/detnas/DETNAS_FRCNN_SHUFFLENETV2_340M_COCO_MMRAZOR.yaml"
)

// smallOverrides shrink the SPOS classifier to the fixture's model:
// widen_factor 0.125 and 10 classes.
var smallOverrides = []string{
	"algorithm.architecture.model.backbone.widen_factor=0.125",
	"algorithm.architecture.model.head.num_classes=10",
	"algorithm.architecture.model.head.loss.num_classes=10",
}

// build loads a config with overrides and builds its algorithm.
func build(t testing.TB, file string, overrides ...string) algorithms.OneShot {
	t.Helper()
	cfg, err := config.Load(file, config.Options{Overrides: overrides})
	if err != nil {
		t.Fatal(err)
	}
	alg, err := algorithms.FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return alg.(algorithms.OneShot)
}

// readSubnet reads a shipped subnet file against alg's space.
func readSubnet(t testing.TB, file string, space *mutables.Space) mutables.Subnet {
	t.Helper()
	sub, err := mutables.ReadSubnetFile(file, space)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func readJSON(t testing.TB, name string, out any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatal(err)
	}
}

// logitsOf runs the classifier on x and returns its logits.
func logitsOf(t testing.TB, alg algorithms.Algorithm, x *tensor.Dense) []float32 {
	t.Helper()
	clf, ok := alg.Model().(interface {
		Logits(*nn.Binding, *gorgonia.Node) (*gorgonia.Node, error)
	})
	if !ok {
		t.Fatalf("model %T has no Logits", alg.Model())
	}
	b := nn.NewBinding()
	y, err := clf.Logits(b, b.Input("x", x))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), y.Value().(*tensor.Dense).Float32s()...)
}

// assertClose fails when got and want differ by more than tol anywhere.
func assertClose(t testing.TB, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	worst, at := 0.0, 0
	for i := range got {
		if d := math.Abs(float64(got[i]) - want[i]); d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	if worst > tol || math.IsNaN(worst) {
		t.Fatalf("%s: value %d is %g, want %g (difference %g > %g)", what, at, got[at], want[at], worst, tol)
	}
}
