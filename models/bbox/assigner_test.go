package bbox

import (
	"slices"
	"testing"
)

// TestMaxIoUAssignerMatchesMmdet checks gt_inds, max_overlaps and labels
// against mmdet 2.x for the RPN setting (0.7/0.3/0.3), ignore boxes
// measured both ways, a [lo, hi) negative range with gt_max_assign_all
// off, and low-quality matching off. Two boxes tie for a ground truth's
// best IoU, and one ground truth is matched only by a low-quality box.
func TestMaxIoUAssignerMatchesMmdet(t *testing.T) {
	var cases []struct {
		Cfg            map[string]any `json:"cfg"`
		Boxes          [][]float64    `json:"boxes"`
		Gts            [][]float64    `json:"gts"`
		Ignore         [][]float64    `json:"ignore"`
		Labels         []int          `json:"labels"`
		GtInds         []int          `json:"gt_inds"`
		MaxOverlaps    []float64      `json:"max_overlaps"`
		AssignedLabels []int          `json:"assigned_labels"`
	}
	loadFixture(t, "assign.json", &cases)
	for _, c := range cases {
		node := map[string]any{"type": "MaxIoUAssigner", "iou_calculator": map[string]any{"type": "BboxOverlaps2D"}}
		for k, v := range c.Cfg {
			node[k] = jsonToConfig(v)
		}
		a, err := Assigners.Build(node, "assigner", nil)
		if err != nil {
			t.Fatalf("%v: %v", c.Cfg, err)
		}
		r := a.Assign(toBoxes(c.Boxes), toBoxes(c.Gts), toBoxes(c.Ignore), c.Labels)
		if r.NumGts != len(c.Gts) {
			t.Errorf("%v: NumGts %d", c.Cfg, r.NumGts)
		}
		if !slices.Equal(r.GtInds, c.GtInds) {
			t.Errorf("%v: gt_inds\n got %v\nwant %v", c.Cfg, r.GtInds, c.GtInds)
		}
		if !slices.Equal(r.Labels, c.AssignedLabels) {
			t.Errorf("%v: labels\n got %v\nwant %v", c.Cfg, r.Labels, c.AssignedLabels)
		}
		for j, m := range r.MaxOverlaps {
			if !closeTo(m, float32(c.MaxOverlaps[j]), 1e-6) {
				t.Errorf("%v: max_overlaps[%d] = %v, want %v", c.Cfg, j, m, c.MaxOverlaps[j])
				break
			}
		}
	}
}

func TestMaxIoUAssignerNoGts(t *testing.T) {
	a, err := NewMaxIoUAssigner(MaxIoUAssignerOptions{PosIoUThr: 0.7, NegIoUThr: 0.3})
	if err != nil {
		t.Fatal(err)
	}
	r := a.Assign([]Box{{0, 0, 1, 1}, {1, 1, 2, 2}}, nil, nil, []int{})
	if !slices.Equal(r.GtInds, []int{0, 0}) || !slices.Equal(r.Labels, []int{-1, -1}) {
		t.Errorf("no ground truths: gt_inds %v labels %v, want all negative, labels -1", r.GtInds, r.Labels)
	}
	if r = a.Assign(nil, []Box{{0, 0, 1, 1}}, nil, nil); len(r.GtInds) != 0 || r.Labels != nil {
		t.Errorf("no boxes: %+v", r)
	}
}

func TestMaxIoUAssignerOptionErrors(t *testing.T) {
	for _, c := range []struct {
		key string
		o   MaxIoUAssignerOptions
	}{
		{"pos_iou_thr", MaxIoUAssignerOptions{PosIoUThr: 1.5, NegIoUThr: 0.3}},
		{"neg_iou_thr", MaxIoUAssignerOptions{PosIoUThr: 0.7}},
		{"neg_iou_thr", MaxIoUAssignerOptions{PosIoUThr: 0.7, NegIoUThr: []any{0.5, 0.1}}},
		{"neg_iou_thr", MaxIoUAssignerOptions{PosIoUThr: 0.7, NegIoUThr: "low"}},
		{"min_pos_iou", MaxIoUAssignerOptions{PosIoUThr: 0.7, NegIoUThr: 0.3, MinPosIoU: -0.1}},
	} {
		if _, err := NewMaxIoUAssigner(c.o); !containsKey(err, c.key) {
			t.Errorf("bad %s: error %v does not name it", c.key, err)
		}
	}
}
