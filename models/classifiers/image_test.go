package classifiers_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/classifiers"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/mutables"

	_ "github.com/razorgo/razor/models/backbones"
	_ "github.com/razorgo/razor/models/heads"
	_ "github.com/razorgo/razor/models/necks"
)

// tinyClassifier builds a ShuffleNet classifier at a small width with a
// fixed path, randomly initialised.
func tinyClassifier(t *testing.T) *classifiers.ImageClassifier {
	t.Helper()
	m, err := models.Models.Build(map[string]any{
		"type":     "mmcls.ImageClassifier",
		"backbone": map[string]any{"type": "SearchableShuffleNetV2", "widen_factor": 0.125},
		"neck":     map[string]any{"type": "GlobalAveragePooling"},
		"head": map[string]any{"type": "LinearClsHead", "num_classes": 4, "in_channels": 1024,
			"loss": map[string]any{"type": "LabelSmoothLoss", "label_smooth_val": 0.1, "num_classes": 4}},
	}, "model", nil)
	if err != nil {
		t.Fatal(err)
	}
	mut, err := mutables.NewOneShotMutator(mutables.OneShotMutatorOptions{PlaceholderMapping: map[string]map[string]any{
		"all_blocks": {"type": "OneShotOP", "choices": map[string]any{"k3": map[string]any{"type": "ShuffleBlock", "kernel_size": 3}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mut.Prepare(m); err != nil {
		t.Fatal(err)
	}
	clf := m.(*classifiers.ImageClassifier)
	if err := clf.InitWeights(rand.New(rand.NewPCG(1, 2))); err != nil {
		t.Fatal(err)
	}
	return clf
}

func images(n int) *tensor.Dense {
	rng := rand.New(rand.NewPCG(5, 6))
	v := make([]float32, n*3*32*32)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return tensor.New(tensor.WithShape(n, 3, 32, 32), tensor.WithBacking(v))
}

func TestForwardTrainAndTest(t *testing.T) {
	clf := tinyClassifier(t)
	labels := []int{1, 3}
	lb := nn.NewBinding()
	logitsNode, err := clf.Logits(lb, lb.Input("x", images(2)))
	if err != nil {
		t.Fatal(err)
	}
	if err := lb.Run(); err != nil {
		t.Fatal(err)
	}
	logits := logitsNode.Value().(*tensor.Dense).Float32s()
	want := 0.0
	for i, label := range labels {
		row := logits[i*4 : i*4+4]
		var s float64
		for _, v := range row {
			s += math.Exp(float64(v))
		}
		for k, v := range row {
			target := 0.1 / 4
			if k == label {
				target += 0.9
			}
			want -= target * (float64(v) - math.Log(s)) / 2
		}
	}

	b := nn.NewBinding()
	losses, err := clf.ForwardTrain(b, &models.Batch{Images: images(2), Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	if len(losses) != 1 || losses[0].Name != "loss" {
		t.Fatalf("losses %v", losses)
	}
	if err := b.Backward(losses[0].Node); err != nil {
		t.Fatal(err)
	}
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
	var loss float64
	switch v := losses[0].Node.Value().(type) {
	case *gorgonia.F32:
		loss = float64(*v)
	case *tensor.Dense:
		loss = float64(v.Float32s()[0])
	}
	if math.Abs(loss-want) > 1e-5 {
		t.Fatalf("loss %g, want the label-smoothed cross-entropy of the logits, %g", loss, want)
	}
	if g := clf.Head().(nn.Module).NamedParameters()[0].Grad(); g == nil {
		t.Fatal("the head's weight got no gradient")
	}

	clf.SetTraining(false)
	tb := nn.NewBinding()
	pending, err := clf.ForwardTest(tb, &models.Batch{Images: images(3)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pending(); err == nil {
		t.Fatal("the result was readable before the graph ran")
	}
	if err := tb.Run(); err != nil {
		t.Fatal(err)
	}
	res, err := pending()
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Scores) != 3 || len(res.Scores[0]) != 4 {
		t.Fatalf("scores %v", res.Scores)
	}
	for _, row := range res.Scores {
		var s float64
		for _, p := range row {
			s += float64(p)
		}
		if math.Abs(s-1) > 1e-5 {
			t.Fatalf("probabilities %v sum to %g", row, s)
		}
	}
}

func TestForwardErrors(t *testing.T) {
	clf := tinyClassifier(t)
	cases := []struct {
		batch *models.Batch
		want  string
	}{
		{&models.Batch{}, "the batch has no images"},
		{&models.Batch{Images: images(2), Labels: []int{1}}, "1 labels for 2 images"},
		{&models.Batch{Images: tensor.New(tensor.WithShape(2, 3), tensor.Of(tensor.Float32)), Labels: []int{0, 0}}, "N×C×H×W"},
	}
	for _, c := range cases {
		if _, err := clf.ForwardTrain(nn.NewBinding(), c.batch); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want it to contain %q", err, c.want)
		}
	}
	if _, err := models.Models.Build(map[string]any{"type": "ImageClassifier", "neck": nil}, "model", nil); err == nil || !strings.Contains(err.Error(), "backbone") {
		t.Fatalf("a classifier without backbone: %v", err)
	}
}
