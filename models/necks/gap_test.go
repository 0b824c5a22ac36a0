package necks

import (
	"slices"
	"strings"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
)

func TestGlobalAveragePooling(t *testing.T) {
	neck, err := models.Necks.Build(map[string]any{"type": "mmcls.GlobalAveragePooling"}, "neck", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := nn.NewBinding()
	b.CountCosts()
	x := tensor.New(tensor.WithShape(1, 2, 2, 2), tensor.WithBacking([]float32{1, 2, 3, 4, -1, -1, -1, 5}))
	outs, err := neck.Forward(b, []*gorgonia.Node{b.Input("x", x)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
	if got := outs[0].Value().(*tensor.Dense).Float32s(); !slices.Equal(got, []float32{2.5, 0.5}) {
		t.Fatalf("pooled %v, want [2.5 0.5]", got)
	}
	if c := b.Costs(); len(c) != 1 || c[0].FLOPs != 8 || c[0].Type != "AdaptiveAvgPool2d" || c[0].Path != "gap" {
		t.Fatalf("costs %+v", c)
	}
	if _, err := models.Necks.Build(map[string]any{"type": "GlobalAveragePooling", "dim": 3}, "neck", nil); err == nil || !strings.Contains(err.Error(), "dim 3 is not supported") {
		t.Fatalf("dim 3: %v", err)
	}
}
