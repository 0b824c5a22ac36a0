package dense_heads

import (
	"math"
	"strings"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
)

func rpnNode() map[string]any {
	return map[string]any{
		"type": "RPNHead", "in_channels": 2, "feat_channels": 2,
		"anchor_generator": map[string]any{"type": "AnchorGenerator", "scales": []any{2}, "ratios": []any{0.5, 1.0, 2.0}, "strides": []any{8}},
		"loss_cls":         map[string]any{"type": "CrossEntropyLoss", "use_sigmoid": true, "loss_weight": 1.0},
		"loss_bbox":        map[string]any{"type": "L1Loss", "loss_weight": 1.0},
	}
}

// TestProposals feeds hand-made head outputs through Proposals: zero
// deltas decode to the anchors themselves, clipped to the image; the
// best nms_pre scores are kept; overlapping anchors of one location are
// suppressed above the NMS threshold; max_per_img cuts the rest.
func TestProposals(t *testing.T) {
	node := rpnNode()
	node["test_cfg"] = map[string]any{"nms_pre": 5, "max_per_img": 3, "nms": map[string]any{"type": "nms", "iou_threshold": 0.5}, "min_bbox_size": 0}
	h, err := Heads.Build(node, "model.rpn_head", nil)
	if err != nil {
		t.Fatal(err)
	}
	// One level of 2x2 locations, 3 anchors each (16 px, ratios 0.5, 1,
	// 2, centred on the cell's corner since center_offset is 0).
	const a, fh, fw = 3, 2, 2
	logits := []float32{
		// anchor 0 at (y,x) = (0,0), (0,1), (1,0), (1,1)
		4, -1, 0.5, 3,
		// anchor 1
		2, -2, 1, -3,
		// anchor 2
		-4, 0, -1, 3.5,
	}
	b := nn.NewBinding()
	cls := b.Input("cls", tensor.New(tensor.WithShape(1, a, fh, fw), tensor.WithBacking(logits)))
	reg := b.Input("reg", tensor.New(tensor.WithShape(1, 4*a, fh, fw), tensor.Of(tensor.Float32)))
	if err := b.Eval(); err != nil {
		t.Fatal(err)
	}
	meta := models.ImageMeta{ImgShape: [3]int{16, 16, 3}}
	boxes, scores, err := h.Proposals(b, []*gorgonia.Node{cls}, []*gorgonia.Node{reg}, []models.ImageMeta{meta}, h.TestCfg())
	if err != nil {
		t.Fatal(err)
	}
	anchors := h.Anchors().GridAnchors(0, fh, fw)
	sig := func(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }
	clip := func(i int) [4]float32 {
		p := anchors[i]
		for k := range p {
			p[k] = min(max(p[k], 0), 16)
		}
		return p
	}
	// The nms_pre 5 best: (0,0)a0 logit 4 -> anchor index 0, (1,1)a2 3.5
	// -> 11, (1,1)a0 3 -> 9, (0,0)a1 2 -> 1, (1,0)a1 1 -> 7. Clipped to the
	// image, anchors 9 and 11 (the wide and the tall box at (8, 8)) overlap
	// with IoU 0.547, as do anchors 1 and 0, so 9 and 1 are suppressed at
	// 0.5; anchor 7 overlaps 0 by 0.30 and 11 by 0.41 and stays.
	want := []int{0, 11, 7}
	if len(boxes[0]) != len(want) {
		t.Fatalf("%d proposals %v, want %d", len(boxes[0]), boxes[0], len(want))
	}
	for i, idx := range want {
		if d := maxDiff(boxes[0][i], clip(idx)); d > 1e-5 || math.Abs(float64(scores[0][i]-sig(logits[(idx%a)*fh*fw+idx/a]))) > 1e-7 {
			t.Errorf("proposal %d: %v %.4f, want anchor %d clipped %v %.4f", i, boxes[0][i], scores[0][i], idx, clip(idx), sig(logits[(idx%a)*fh*fw+idx/a]))
		}
	}
}

func TestRPNHeadErrors(t *testing.T) {
	cases := []struct {
		key  string
		val  any
		want string
	}{
		{"num_classes", 2, "num_classes 2 is not supported"},
		{"loss_cls", map[string]any{"type": "CrossEntropyLoss", "use_sigmoid": false}, "loss_cls.use_sigmoid must be true"},
		{"loss_bbox", map[string]any{"type": "GIoULoss"}, `loss_bbox.type: unknown loss type "GIoULoss"`},
		{"test_cfg", map[string]any{"max_per_img": 0}, "test_cfg.max_per_img 0 must be positive"},
		{"test_cfg", map[string]any{"nms": map[string]any{"type": "nms", "iou_threshold": 0.7, "offset": 1}}, "offset 1 is not supported"},
		{"anchor_generator", map[string]any{"type": "AnchorGenerator", "ratios": []any{1.0}}, "strides"},
	}
	for _, c := range cases {
		node := rpnNode()
		node[c.key] = c.val
		_, err := Heads.Build(node, "model.rpn_head", nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "model.rpn_head") {
			t.Errorf("%s: error %v, want one naming model.rpn_head and containing %q", c.key, err, c.want)
		}
	}
}

// TestDeprecatedProposalKeys reads mmdet's older spellings max_num and
// nms_thr.
func TestDeprecatedProposalKeys(t *testing.T) {
	c, err := DecodeProposalCfg(map[string]any{"max_num": 300, "nms_thr": 0.6}, "test_cfg.rpn")
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxPerImg != 300 || c.NMS.IoUThreshold != 0.6 || c.NMSPre != 1000 {
		t.Errorf("max_per_img %d, iou %g, nms_pre %d; want 300, 0.6, 1000", c.MaxPerImg, c.NMS.IoUThreshold, c.NMSPre)
	}
}

func maxDiff(a, b [4]float32) float64 {
	var d float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}
