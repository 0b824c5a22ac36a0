package bbox

import (
	"strings"
	"testing"

	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/registry"
)

// testHead stands for a detector head whose options embed the box
// machinery, so nested `type:` mappings are built by this package's
// registries.
type testHead struct{ o testHeadOptions }

type testHeadOptions struct {
	AnchorGenerator *AnchorGenerator    `cfg:"anchor_generator"`
	BBoxCoder       *DeltaXYWHBBoxCoder `cfg:"bbox_coder"`
	Assigner        *MaxIoUAssigner     `cfg:"assigner"`
	Sampler         *RandomSampler      `cfg:"sampler"`
	NMS             NMSOptions          `cfg:"nms"`
}

var testHeads = registry.New[*testHead]("test head")

func init() {
	registry.MustRegister(testHeads, "TestHead", func(o testHeadOptions) (*testHead, error) { return &testHead{o}, nil })
}

// rpnNode is the DetNAS RPN head's box settings as mmdet writes them.
func rpnNode() map[string]any {
	return map[string]any{
		"type": "TestHead",
		"anchor_generator": map[string]any{
			"type": "AnchorGenerator", "scales": []any{8}, "ratios": []any{0.5, 1.0, 2.0},
			"strides": []any{4, 8, 16, 32, 64},
		},
		"bbox_coder": map[string]any{
			"type": "DeltaXYWHBBoxCoder", "target_means": []any{0.0, 0.0, 0.0, 0.0},
			"target_stds": []any{1.0, 1.0, 1.0, 1.0},
		},
		"assigner": map[string]any{
			"type": "mmdet.MaxIoUAssigner", "pos_iou_thr": 0.7, "neg_iou_thr": 0.3, "min_pos_iou": 0.3,
			"match_low_quality": true, "ignore_iof_thr": -1,
		},
		"sampler": map[string]any{
			"type": "RandomSampler", "num": 256, "pos_fraction": 0.5, "neg_pos_ub": -1,
			"add_gt_as_proposals": false,
		},
		"nms": map[string]any{"type": "nms", "iou_threshold": 0.7},
	}
}

func TestBuildFromConfig(t *testing.T) {
	h, err := testHeads.Build(rpnNode(), "model.rpn_head", nil)
	if err != nil {
		t.Fatal(err)
	}
	o := h.o
	if o.AnchorGenerator.NumLevels() != 5 || o.AnchorGenerator.NumBaseAnchors()[4] != 3 {
		t.Errorf("anchor generator: %d levels, %v base anchors", o.AnchorGenerator.NumLevels(), o.AnchorGenerator.NumBaseAnchors())
	}
	if !o.BBoxCoder.clipBorder || o.BBoxCoder.stds != [4]float32{1, 1, 1, 1} {
		t.Errorf("coder: %+v", o.BBoxCoder)
	}
	if a := o.Assigner; a.pos != 0.7 || a.negHi != 0.3 || a.minPos != 0.3 || !a.o.GtMaxAssignAll || a.o.IoUCalculator == nil {
		t.Errorf("assigner: %+v", a)
	}
	if s := o.Sampler.o; s.Num != 256 || s.PosFraction != 0.5 || s.AddGtAsProposals {
		t.Errorf("sampler: %+v", s)
	}
	if o.NMS.IoUThreshold != 0.7 || o.NMS.SplitThr != DefaultSplitThr || o.NMS.Type != "nms" {
		t.Errorf("nms: %+v", o.NMS)
	}
}

// TestBuildErrorsNameTheKey edits one key of the RPN config at a time and
// expects one error naming that key's path.
func TestBuildErrorsNameTheKey(t *testing.T) {
	for _, c := range []struct {
		section, key string
		value        any
		want         []string
	}{
		{"anchor_generator", "scale", []any{8}, []string{"model.rpn_head.anchor_generator", "scale", `"scales"`}},
		{"anchor_generator", "strides", []any{4, -8}, []string{"anchor_generator", "strides[1]"}},
		{"bbox_coder", "target_stds", []any{1.0, 1.0}, []string{"bbox_coder", "target_stds"}},
		{"bbox_coder", "clip_border", "yes", []string{"bbox_coder.clip_border"}},
		{"assigner", "neg_iou_thr", []any{0.3}, []string{"assigner", "neg_iou_thr"}},
		{"assigner", "pos_iou", 0.5, []string{"assigner", "pos_iou", "pos_iou_thr"}},
		{"assigner", "iou_calculator", map[string]any{"type": "BboxOverlaps2D", "dtype": "fp16"}, []string{"assigner.iou_calculator", "dtype"}},
		{"sampler", "num", 0, []string{"sampler", "num"}},
		{"sampler", "pos_fraction", 2, []string{"sampler", "pos_fraction"}},
		{"nms", "type", "soft_nms", []string{"nms.type", "soft_nms", "nms"}},
		{"nms", "offset", 1, []string{"nms", "offset"}},
		{"nms", "iou_thr", 0.5, []string{"nms", "iou_thr", "iou_threshold"}},
	} {
		node := rpnNode()
		node[c.section].(map[string]any)[c.key] = c.value
		_, err := testHeads.Build(node, "model.rpn_head", nil)
		if err == nil {
			t.Errorf("%s.%s = %v: no error", c.section, c.key, c.value)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s.%s = %v: error %q lacks %q", c.section, c.key, c.value, err, w)
			}
		}
	}
}

func TestBuildRequiredKeys(t *testing.T) {
	node := rpnNode()
	delete(node["nms"].(map[string]any), "iou_threshold")
	if _, err := testHeads.Build(node, "model.rpn_head", nil); err == nil || !strings.Contains(err.Error(), "iou_threshold") {
		t.Errorf("nms without iou_threshold: %v", err)
	}
	node = rpnNode()
	delete(node["sampler"].(map[string]any), "num")
	if _, err := testHeads.Build(node, "model.rpn_head", nil); err == nil || !strings.Contains(err.Error(), "num") {
		t.Errorf("sampler without num: %v", err)
	}
}

// TestNMSOptionsPlainDecode: decoded by config.Decode alone (no registry),
// the options keep their type key and Validate checks it.
func TestNMSOptionsPlainDecode(t *testing.T) {
	var o NMSOptions
	o.Defaults()
	if err := config.Decode(map[string]any{"type": "nms", "iou_threshold": 0.5}, "test_cfg.rcnn.nms", &o); err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(); err != nil || o.IoUThreshold != 0.5 {
		t.Errorf("%+v: %v", o, err)
	}
	o.Type = "soft_nms"
	if err := o.Validate(); !containsKey(err, "type") {
		t.Errorf("type soft_nms: %v", err)
	}
}
