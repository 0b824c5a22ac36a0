package roi_heads

import (
	"strings"
	"testing"

	"github.com/razorgo/razor/models/bbox"
)

func extractor(t *testing.T) *SingleRoIExtractor {
	t.Helper()
	e, err := RoIExtractors.Build(map[string]any{
		"type":            "SingleRoIExtractor",
		"roi_layer":       map[string]any{"type": "RoIAlign", "output_size": 7, "sampling_ratio": 0},
		"out_channels":    256,
		"featmap_strides": []any{4, 8, 16, 32},
	}, "model.roi_head.bbox_roi_extractor", nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestLevelMapping checks mmdet's map_roi_levels: floor(log2(scale/56 +
// 1e-6)) clamped to the four levels, with scale the square root of the
// area, so 112 px lands on level 1 exactly at its boundary.
func TestLevelMapping(t *testing.T) {
	e := extractor(t)
	for _, c := range []struct {
		side float32
		want int
	}{{8, 0}, {111.9, 0}, {112, 1}, {223.9, 1}, {224, 2}, {448, 3}, {2000, 3}, {0, 0}} {
		if got := e.Level(bbox.Box{10, 10, 10 + c.side, 10 + c.side}); got != c.want {
			t.Errorf("a %g px box maps to level %d, want %d", c.side, got, c.want)
		}
	}
	if h, w := e.OutSize(); h != 7 || w != 7 || !e.params.Aligned {
		t.Errorf("output %dx%d aligned %v, want 7x7 aligned (mmcv's default)", h, w, e.params.Aligned)
	}
}

func TestBBoxHeadPresets(t *testing.T) {
	for _, c := range []struct {
		typ          string
		convs, fcs   int
		params       []string
		clsIn, regIn int
	}{
		{"Shared2FCBBoxHead", 0, 2, []string{"shared_fcs.0.weight", "shared_fcs.1.weight", "fc_cls.weight", "fc_reg.weight"}, 1024, 1024},
		{"mmdet.Shared4Conv1FCBBoxHead", 4, 1, []string{"shared_convs.3.conv.weight", "shared_convs.3.bn.running_var", "shared_fcs.0.weight"}, 1024, 1024},
	} {
		node := map[string]any{"type": c.typ, "num_classes": 3}
		if c.convs > 0 {
			node["norm_cfg"] = map[string]any{"type": "BN", "requires_grad": true}
		}
		h, err := BBoxHeads.Build(node, "bbox_head", nil)
		if err != nil {
			t.Fatalf("%s: %v", c.typ, err)
		}
		if len(h.sharedConvs) != c.convs || len(h.sharedFCs) != c.fcs {
			t.Errorf("%s: %d convs, %d fcs; want %d, %d", c.typ, len(h.sharedConvs), len(h.sharedFCs), c.convs, c.fcs)
		}
		sd := h.StateDict()
		for _, p := range c.params {
			if _, ok := sd[p]; !ok {
				t.Errorf("%s has no %s", c.typ, p)
			}
		}
		if s := sd["fc_cls.weight"].Shape(); s[0] != 4 || s[1] != c.clsIn {
			t.Errorf("%s: fc_cls %v, want [4 %d] (3 classes and background)", c.typ, s, c.clsIn)
		}
		if s := sd["fc_reg.weight"].Shape(); s[0] != 12 || s[1] != c.regIn {
			t.Errorf("%s: fc_reg %v, want [12 %d] (4 deltas per class)", c.typ, s, c.regIn)
		}
		if _, ok := sd["shared_convs.0.conv.bias"]; ok {
			t.Errorf("%s: a conv followed by a norm has a bias", c.typ)
		}
	}
	// The first shared fc of Shared2FC flattens 256x7x7.
	h, err := BBoxHeads.Build(map[string]any{"type": "Shared2FCBBoxHead"}, "bbox_head", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := h.StateDict()["shared_fcs.0.weight"].Shape(); s[1] != 256*49 {
		t.Errorf("shared_fcs.0 takes %d inputs, want 256*7*7", s[1])
	}
}

func TestRoIHeadErrors(t *testing.T) {
	ext := map[string]any{
		"type": "SingleRoIExtractor", "roi_layer": map[string]any{"type": "RoIAlign", "output_size": 7, "sampling_ratio": 0},
		"out_channels": 256, "featmap_strides": []any{4, 8, 16, 32},
	}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range ext {
			m[kk] = vv
		}
		m[k] = v
		return m
	}
	head := map[string]any{"type": "Shared2FCBBoxHead", "num_classes": 80}
	cases := []struct {
		node map[string]any
		want string
	}{
		{map[string]any{"type": "StandardRoIHead", "bbox_roi_extractor": with("roi_layer", map[string]any{"type": "RoIPool", "output_size": 7}), "bbox_head": head},
			"roi_layer.type \"RoIPool\" is not supported; use RoIAlign"},
		{map[string]any{"type": "StandardRoIHead", "bbox_roi_extractor": with("out_channels", 128), "bbox_head": head},
			"bbox_head.in_channels 256 differs from bbox_roi_extractor.out_channels 128"},
		{map[string]any{"type": "StandardRoIHead", "bbox_roi_extractor": ext, "bbox_head": map[string]any{"type": "Shared2FCBBoxHead", "roi_feat_size": 5}},
			"roi_feat_size 5x5 differs from bbox_roi_extractor.roi_layer.output_size 7x7"},
		{map[string]any{"type": "StandardRoIHead", "bbox_roi_extractor": ext, "bbox_head": map[string]any{"type": "Shared2FCBBoxHead", "reg_decoded_bbox": true}},
			"reg_decoded_bbox: true"},
		{map[string]any{"type": "StandardRoIHead", "bbox_roi_extractor": ext, "bbox_head": head, "mask_head": map[string]any{}},
			"mask_roi_extractor, mask_head and shared_head are not supported"},
		{map[string]any{"type": "StandardRoIHead", "bbox_roi_extractor": ext, "bbox_head": head, "test_cfg": map[string]any{"nms": map[string]any{"type": "soft_nms", "iou_threshold": 0.5}}},
			"test_cfg.nms: type \"soft_nms\" is not supported"},
		{map[string]any{"type": "StandardRoIHead", "bbox_roi_extractor": ext, "bbox_head": map[string]any{"type": "Shared3FCBBoxHead"}},
			"unknown bbox head type \"Shared3FCBBoxHead\""},
	}
	for _, c := range cases {
		_, err := RoIHeads.Build(c.node, "model.roi_head", nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "model.roi_head") {
			t.Errorf("error %v, want one naming model.roi_head and containing %q", err, c.want)
		}
	}
}
