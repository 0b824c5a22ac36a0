package checkpoint

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/razorgo/razor/models/nn"
)

// holder is a bare module for tests.
type holder struct{ nn.Base }

// fixtureModel has the fixture script's backbone: conv 2->3 3x3 without
// bias, BN over 3 channels, and a 4->2 linear layer's two parameters.
func fixtureModel(t *testing.T) (*holder, *nn.BatchNorm2d) {
	t.Helper()
	root, backbone, fc := &holder{}, &holder{}, &holder{}
	conv, err := nn.NewConv2d(nn.Conv2dConfig{In: 2, Out: 3, Kernel: 3})
	if err != nil {
		t.Fatal(err)
	}
	bn, err := nn.NewBatchNorm2d(3)
	if err != nil {
		t.Fatal(err)
	}
	fc.AddParam("weight", nn.KindWeight, 2, 4)
	fc.AddParam("bias", nn.KindBias, 2)
	backbone.AddChild("conv", conv)
	backbone.AddChild("bn", bn)
	backbone.AddChild("fc", fc)
	root.AddChild("backbone", backbone)
	return root, bn
}

func TestLoadModelFromPth(t *testing.T) {
	want := readExpected(t)
	for _, file := range []string{"mmcv_zip.pth", "mmcv_legacy.pth"} {
		t.Run(file, func(t *testing.T) {
			path := filepath.Join("testdata", file)
			m, bn := fixtureModel(t)
			rep, c, err := LoadModel(path, m, LoadOptions{
				Strict:        true,
				Rules:         []PrefixRule{{From: "architecture.model.backbone.", To: "backbone."}},
				DropUnmatched: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Clean() {
				t.Errorf("report: %v", rep)
			}
			sd := m.StateDict()
			for k, w := range want.StateDict {
				if strings.HasPrefix(k, "backbone.") {
					checkExact(t, k, sd[k], w)
				}
			}
			if bn.State.NumBatchesTracked != 3 {
				t.Errorf("BN state counter = %d, want 3", bn.State.NumBatchesTracked)
			}
			if c.Meta.Iteration != 1000 || c.Meta.Epoch != 2 || !strings.Contains(c.Meta.Config, "ImageClassifier") {
				t.Errorf("meta = %+v", c.Meta)
			}

			// Without dropping, the extra keys are unexpected.
			m, _ = fixtureModel(t)
			rules := []PrefixRule{{From: "architecture.model.", To: ""}}
			rep, _, err = LoadModel(path, m, LoadOptions{Rules: rules})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Missing) != 0 || len(rep.Unexpected) != 5 || rep.Unexpected[0] != "extra.double" {
				t.Errorf("non-strict report: %+v", rep)
			}
			if _, _, err := LoadModel(path, m, LoadOptions{Strict: true, Rules: rules}); err == nil || !strings.Contains(err.Error(), "5 tensors of the state dict that the model lacks: extra.double") {
				t.Errorf("strict error = %v", err)
			}
		})
	}
}

func TestLoadModelFromOwnCheckpoint(t *testing.T) {
	src, srcBN := fixtureModel(t)
	for i, p := range src.NamedParameters() {
		for j := range p.Data() {
			p.Data()[j] = float32(i*100 + j)
		}
	}
	srcBN.State.NumBatchesTracked = 12
	dir := t.TempDir()
	path, err := Save(dir, "iter_12", &Checkpoint{Model: src.StateDict(), Meta: Meta{Iteration: 12}})
	if err != nil {
		t.Fatal(err)
	}
	dst, dstBN := fixtureModel(t)
	rep, c, err := LoadModel(path, dst, LoadOptions{Strict: true})
	if err != nil || !rep.Clean() || c.Meta.Iteration != 12 {
		t.Fatalf("load: %v %v %+v", rep, err, c)
	}
	for i, p := range dst.NamedParameters() {
		for j, v := range p.Data() {
			if v != float32(i*100+j) {
				t.Fatalf("%s[%d] = %v", p.Name(), j, v)
			}
		}
	}
	if dstBN.State.NumBatchesTracked != 12 {
		t.Errorf("num_batches_tracked = %d, want 12", dstBN.State.NumBatchesTracked)
	}
	if _, _, err := LoadModel(filepath.Join(dir, "nope"), dst, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "no checkpoint") {
		t.Errorf("missing checkpoint: %v", err)
	}
}
