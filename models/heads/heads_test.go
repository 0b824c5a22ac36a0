package heads

import (
	"math"
	"strings"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
)

// smoothCE is the reference: mean over samples of -sum_k t_k log softmax_k
// with t = (1-eps) onehot + eps/K.
func smoothCE(logits [][]float64, labels []int, eps float64) float64 {
	var total float64
	for i, row := range logits {
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, v)
		}
		var s float64
		for _, v := range row {
			s += math.Exp(v - m)
		}
		lse := m + math.Log(s)
		for k, v := range row {
			tk := eps / float64(len(row))
			if k == labels[i] {
				tk += 1 - eps
			}
			total -= tk * (v - lse)
		}
	}
	return total / float64(len(logits))
}

func lossValue(t *testing.T, loss ClsLoss, logits [][]float64, labels []int) (float64, error) {
	t.Helper()
	var flat []float32
	for _, r := range logits {
		for _, v := range r {
			flat = append(flat, float32(v))
		}
	}
	b := nn.NewBinding()
	x := b.Input("logits", tensor.New(tensor.WithShape(len(logits), len(logits[0])), tensor.WithBacking(flat)))
	l, err := loss.Loss(x, labels)
	if err != nil {
		return 0, err
	}
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
	switch v := l.Value().(type) {
	case *gorgonia.F32:
		return float64(*v), nil
	case *tensor.Dense:
		return float64(v.Float32s()[0]), nil
	}
	t.Fatalf("loss value %T", l.Value())
	return 0, nil
}

func TestClsLosses(t *testing.T) {
	logits := [][]float64{{1, -2, 0.5}, {0.1, 0.2, 3}}
	labels := []int{0, 2}
	build := func(node map[string]any) ClsLoss {
		l, err := ClsLosses.Build(node, "loss", nil)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	cases := []struct {
		name string
		loss ClsLoss
		want float64
	}{
		{"label smoothing, original", build(map[string]any{"type": "LabelSmoothLoss", "label_smooth_val": 0.1, "num_classes": 3, "mode": "original"}), smoothCE(logits, labels, 0.1)},
		{"label smoothing, weighted", build(map[string]any{"type": "mmcls.LabelSmoothLoss", "label_smooth_val": 0.1, "loss_weight": 2.5}), 2.5 * smoothCE(logits, labels, 0.1)},
		{"label smoothing, classy_vision", build(map[string]any{"type": "LabelSmoothLoss", "label_smooth_val": 0.2, "mode": "classy_vision"}), smoothCE(logits, labels, 0.2/1.2)},
		{"cross-entropy", build(map[string]any{"type": "CrossEntropyLoss"}), smoothCE(logits, labels, 0)},
		{"cross-entropy, weighted", build(map[string]any{"type": "CrossEntropyLoss", "loss_weight": 0.5}), 0.5 * smoothCE(logits, labels, 0)},
	}
	for _, c := range cases {
		got, err := lossValue(t, c.loss, logits, labels)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if math.Abs(got-c.want) > 1e-5 {
			t.Errorf("%s: %g, want %g", c.name, got, c.want)
		}
	}
	wrongK := build(map[string]any{"type": "LabelSmoothLoss", "label_smooth_val": 0.1, "num_classes": 1000})
	if _, err := lossValue(t, wrongK, logits, labels); err == nil || !strings.Contains(err.Error(), "num_classes is 1000 but the logits have 3 classes") {
		t.Fatalf("num_classes mismatch: %v", err)
	}
}

func TestClsLossErrors(t *testing.T) {
	cases := []struct {
		node map[string]any
		want string
	}{
		{map[string]any{"type": "LabelSmoothLoss", "label_smooth_val": 1.0}, "label_smooth_val 1 must lie in [0, 1)"},
		{map[string]any{"type": "LabelSmoothLoss", "label_smooth_val": 0.1, "mode": "multi_label"}, `mode "multi_label" is not supported`},
		{map[string]any{"type": "LabelSmoothLoss", "label_smooth_val": 0.1, "reduction": "sum"}, `reduction "sum" is not supported`},
		{map[string]any{"type": "LabelSmoothLoss"}, "label_smooth_val"},
		{map[string]any{"type": "CrossEntropyLoss", "use_sigmoid": true}, "use_sigmoid: true is not supported"},
	}
	for _, c := range cases {
		if _, err := ClsLosses.Build(c.node, "head.loss", nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want it to contain %q", c.node, err, c.want)
		}
	}
}

func TestLinearClsHead(t *testing.T) {
	h, err := models.ClsHeads.Build(map[string]any{"type": "LinearClsHead", "num_classes": 3, "in_channels": 2, "topk": []any{1, 2}}, "head", nil)
	if err != nil {
		t.Fatal(err)
	}
	lh := h.(*LinearClsHead)
	if lh.NumClasses() != 3 || len(lh.TopK()) != 2 {
		t.Fatalf("classes %d, topk %v", lh.NumClasses(), lh.TopK())
	}
	copy(lh.fc.Weight.Data(), []float32{1, 0, 0, 1, 1, 1})
	copy(lh.fc.Bias.Data(), []float32{0, 0, -1})
	b := nn.NewBinding()
	feat := b.Input("f", tensor.New(tensor.WithShape(1, 2), tensor.WithBacking([]float32{2, 3})))
	logits, err := h.Forward(b, []*gorgonia.Node{feat})
	if err != nil {
		t.Fatal(err)
	}
	losses, err := h.Loss(b, logits, []int{1})
	if err != nil {
		t.Fatal(err)
	}
	b.Keep(logits) // read below, though the loss reads it too
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
	got := logits.Value().(*tensor.Dense).Float32s()
	if got[0] != 2 || got[1] != 3 || got[2] != 4 {
		t.Fatalf("logits %v, want [2 3 4]", got)
	}
	if len(losses) != 1 || losses[0].Name != "loss" {
		t.Fatalf("losses %v", losses)
	}
	for _, node := range []map[string]any{
		{"type": "LinearClsHead", "num_classes": 3, "in_channels": 2, "topk": []any{5}},
		{"type": "LinearClsHead", "num_classes": 0, "in_channels": 2},
	} {
		if _, err := models.ClsHeads.Build(node, "head", nil); err == nil {
			t.Errorf("%v built", node)
		}
	}
	b2 := nn.NewBinding()
	if _, err := h.Forward(b2, []*gorgonia.Node{b2.Input("f", tensor.New(tensor.WithShape(1, 2, 1, 1), tensor.Of(tensor.Float32)))}); err == nil || !strings.Contains(err.Error(), "GlobalAveragePooling") {
		t.Fatalf("a 4-D feature: %v", err)
	}
}
