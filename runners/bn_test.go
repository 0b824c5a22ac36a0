package runners

import (
	"strings"
	"testing"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/config"
)

// bnTrainingAlg is an Algorithm that asks for bn_training_mode.
type bnTrainingAlg struct{ algorithms.Algorithm }

func (bnTrainingAlg) BNTrainingMode() bool { return true }

func TestBNPolicyModes(t *testing.T) {
	// Batches of 64: 938 of them make an MNIST epoch.
	cfg, err := config.Load("../configs/nas/spos/spos_supernet_shufflenetv2_mnist.yaml", config.Options{Overrides: []string{"data.samples_per_gpu=64"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		alg     algorithms.Algorithm
		mode    string
		batches int
		want    string // the mode, or an error's text
	}{
		{nil, "", 0, BNEval},
		{bnTrainingAlg{}, "", 0, BNTrain},
		{bnTrainingAlg{}, "eval", 0, BNEval},
		{nil, "recalibrate", 3, BNRecalibrate},
		{nil, "recalibrate", 0, "evaluation.recalibrate_batches must be positive for bn_mode recalibrate, got 0"},
		{nil, "recalibrate", 1 << 20, "evaluation.recalibrate_batches 1048576 exceeds the 938 batches of data.train"},
		{nil, "running", 0, `evaluation.bn_mode "running" is not one of train, recalibrate, eval`},
	} {
		p, err := NewBNPolicy(cfg, "evaluation", tc.alg, tc.mode, tc.batches, 0)
		switch {
		case err != nil && err.Error() != tc.want:
			t.Errorf("%q/%d: error %q, want %q", tc.mode, tc.batches, err, tc.want)
		case err == nil && p.Mode != tc.want:
			t.Errorf("%q/%d: mode %s, want %s", tc.mode, tc.batches, p.Mode, tc.want)
		case err == nil && p.Mode == BNRecalibrate && !strings.Contains(p.Describe(), "recalibrated on 3 training batches of 64"):
			t.Errorf("description %q", p.Describe())
		}
	}
}
