package bbox

import "testing"

// TestOverlapsMatchMmdet checks bbox_overlaps in iou, iof and giou modes,
// full and aligned, including a zero-area box (the 1e-6 union floor) and a
// box shared by both sides.
func TestOverlapsMatchMmdet(t *testing.T) {
	var cases []struct {
		Mode     string      `json:"mode"`
		A        [][]float64 `json:"a"`
		B        [][]float64 `json:"b"`
		Overlaps []float64   `json:"overlaps"`
		AlignedB [][]float64 `json:"aligned_b"`
		Aligned  []float64   `json:"aligned"`
	}
	loadFixture(t, "overlaps.json", &cases)
	for _, c := range cases {
		check := func(what string, got []float32, want []float64) {
			t.Helper()
			if len(got) != len(want) {
				t.Fatalf("%s %s: %d values, want %d", c.Mode, what, len(got), len(want))
			}
			for i := range got {
				if !closeTo(got[i], float32(want[i]), 1e-6) {
					t.Errorf("%s %s[%d] = %v, want %v", c.Mode, what, i, got[i], want[i])
				}
			}
		}
		a := toBoxes(c.A)
		check("overlaps", Overlaps(a, toBoxes(c.B), c.Mode), c.Overlaps)
		check("aligned", AlignedOverlaps(a, toBoxes(c.AlignedB), c.Mode), c.Aligned)
	}
}

func TestOverlapsByHand(t *testing.T) {
	a := []Box{{0, 0, 10, 10}}
	b := []Box{{5, 0, 15, 10}, {20, 20, 30, 30}, {2, 2, 4, 4}}
	for _, c := range []struct {
		mode string
		want []float32
	}{
		{"iou", []float32{50.0 / 150, 0, 4.0 / 100}},
		{"iof", []float32{0.5, 0, 0.04}},
		{"giou", []float32{50.0/150 - 0, 0 - (900-200)/900.0, 0.04}},
	} {
		got := Overlaps(a, b, c.mode)
		for j := range got {
			if !closeTo(got[j], c.want[j], 1e-6) {
				t.Errorf("%s[%d] = %v, want %v", c.mode, j, got[j], c.want[j])
			}
		}
	}
}

func TestBboxOverlaps2DOptions(t *testing.T) {
	if _, err := NewBboxOverlaps2D(BboxOverlaps2DOptions{Scale: 1, Dtype: "fp16"}); err == nil {
		t.Error("dtype fp16: want an error")
	}
	if _, err := NewBboxOverlaps2D(BboxOverlaps2DOptions{Scale: 512}); err == nil {
		t.Error("scale 512: want an error")
	}
}
