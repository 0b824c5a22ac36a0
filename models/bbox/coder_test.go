package bbox

import "testing"

// TestDeltaXYWHBBoxCoderMatchesMmdet checks bbox2delta and delta2bbox
// against mmdet 2.x, with means and stds, per-class deltas, deltas beyond
// the wh_ratio_clip bound, and clipping to an image.
func TestDeltaXYWHBBoxCoderMatchesMmdet(t *testing.T) {
	var cases []struct {
		Means    []float64   `json:"means"`
		Stds     []float64   `json:"stds"`
		Rois     [][]float64 `json:"rois"`
		Gts      [][]float64 `json:"gts"`
		Encoded  [][]float64 `json:"encoded"`
		Deltas   [][]float64 `json:"deltas"`
		MaxShape []int       `json:"max_shape"`
		Decoded  [][]float64 `json:"decoded"`
	}
	loadFixture(t, "coder.json", &cases)
	for i, c := range cases {
		o := DeltaXYWHBBoxCoderOptions{}
		o.Defaults()
		o.TargetMeans, o.TargetStds = c.Means, c.Stds
		coder, err := NewDeltaXYWHBBoxCoder(o)
		if err != nil {
			t.Fatal(err)
		}
		rois := toBoxes(c.Rois)
		enc := coder.Encode(rois, toBoxes(c.Gts))
		encBoxes := make([]Box, len(enc))
		for k, d := range enc {
			encBoxes[k] = Box(d)
		}
		checkBoxes(t, "encode", encBoxes, toBoxes(c.Encoded), 1e-5)
		deltas := make([][4]float32, len(c.Deltas))
		for k, b := range toBoxes(c.Deltas) {
			deltas[k] = b
		}
		h, w := 0, 0
		if c.MaxShape != nil {
			h, w = c.MaxShape[0], c.MaxShape[1]
		}
		got := coder.Decode(rois, deltas, h, w)
		checkBoxes(t, "decode", got, toBoxes(c.Decoded), 1e-5)
		if i == 0 {
			back := coder.Decode(rois, enc, 0, 0)
			checkBoxes(t, "decode(encode)", back, toBoxes(c.Gts), 1e-4)
		}
	}
}

func TestDeltaXYWHBBoxCoderClipBorderOff(t *testing.T) {
	o := DeltaXYWHBBoxCoderOptions{}
	o.Defaults()
	o.ClipBorder = false
	c, err := NewDeltaXYWHBBoxCoder(o)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Decode([]Box{{0, 0, 10, 10}}, [][4]float32{{-1, 0, 0, 0}}, 5, 5)
	if got[0] != (Box{-10, 0, 0, 10}) {
		t.Errorf("clip_border false: %v, want [-10 0 0 10] unclipped", got[0])
	}
}

func TestDeltaXYWHBBoxCoderOptionErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*DeltaXYWHBBoxCoderOptions)
	}{
		{"target_means", func(o *DeltaXYWHBBoxCoderOptions) { o.TargetMeans = []float64{0, 0} }},
		{"target_stds", func(o *DeltaXYWHBBoxCoderOptions) { o.TargetStds = []float64{1, 1, 0, 1} }},
		{"wh_ratio_clip", func(o *DeltaXYWHBBoxCoderOptions) { o.WhRatioClip = 0 }},
		{"ctr_clamp", func(o *DeltaXYWHBBoxCoderOptions) { o.AddCtrClamp, o.CtrClamp = true, -1 }},
	} {
		o := DeltaXYWHBBoxCoderOptions{}
		o.Defaults()
		c.edit(&o)
		_, err := NewDeltaXYWHBBoxCoder(o)
		if err == nil || !containsKey(err, c.name) {
			t.Errorf("bad %s: error %v does not name it", c.name, err)
		}
	}
}
