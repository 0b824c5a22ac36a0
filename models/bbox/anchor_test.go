package bbox

import (
	"slices"
	"testing"
)

// TestAnchorGeneratorMatchesMmdet checks base anchors, grid anchors and
// valid flags against mmdet 2.x's AnchorGenerator for the DetNAS RPN
// config (scales [8], ratios [0.5, 1, 2], strides 4..64), RetinaNet's
// octave scales, center_offset 0.5 with scale_major false, and explicit
// base sizes with uneven ratios.
func TestAnchorGeneratorMatchesMmdet(t *testing.T) {
	var cases []struct {
		Note   string         `json:"note"`
		Cfg    map[string]any `json:"cfg"`
		Pad    []int          `json:"pad"`
		Levels []struct {
			Feat  []int       `json:"feat"`
			Base  [][]float64 `json:"base"`
			Grid  [][]float64 `json:"grid"`
			Valid []bool      `json:"valid"`
		} `json:"levels"`
	}
	loadFixture(t, "anchors.json", &cases)
	for _, c := range cases {
		node := map[string]any{"type": "AnchorGenerator"}
		for k, v := range c.Cfg {
			node[k] = jsonToConfig(v)
		}
		g, err := AnchorGenerators.Build(node, "anchor_generator", nil)
		if err != nil {
			t.Fatalf("%s: %v", c.Note, err)
		}
		if g.NumLevels() != len(c.Levels) {
			t.Fatalf("%s: %d levels, want %d", c.Note, g.NumLevels(), len(c.Levels))
		}
		for lv, l := range c.Levels {
			if n := g.NumBaseAnchors()[lv]; n != len(l.Base) {
				t.Fatalf("%s level %d: %d base anchors, want %d", c.Note, lv, n, len(l.Base))
			}
			checkBoxes(t, c.Note+" base", g.BaseAnchors(lv), toBoxes(l.Base), 1e-6)
			checkBoxes(t, c.Note+" grid", g.GridAnchors(lv, l.Feat[0], l.Feat[1]), toBoxes(l.Grid), 1e-6)
			if got := g.ValidFlags(lv, l.Feat[0], l.Feat[1], c.Pad[0], c.Pad[1]); !slices.Equal(got, l.Valid) {
				t.Errorf("%s level %d: valid flags %v, want %v", c.Note, lv, got, l.Valid)
			}
		}
	}
}

// jsonToConfig turns JSON numbers that are whole into ints, as the YAML
// loader produces them.
func jsonToConfig(v any) any {
	switch x := v.(type) {
	case float64:
		if x == float64(int(x)) {
			return int(x)
		}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonToConfig(e)
		}
		return out
	}
	return v
}

func TestAnchorGeneratorDetNASBaseAnchors(t *testing.T) {
	g, err := NewAnchorGenerator(AnchorGeneratorOptions{
		Strides: []any{4, 8}, Ratios: []float64{0.5, 1, 2}, Scales: []float64{8}, ScaleMajor: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Stride 4, scale 8: a 32x32 square around (0, 0) for ratio 1.
	if b := g.BaseAnchors(0)[1]; b != (Box{-16, -16, 16, 16}) {
		t.Errorf("ratio 1 base anchor %v, want [-16 -16 16 16]", b)
	}
	grid := g.GridAnchors(1, 2, 3)
	// Location (y=1, x=2), ratio 1: shifted by (16, 8).
	if b := grid[((1*3)+2)*3+1]; b != (Box{-32 + 16, -32 + 8, 32 + 16, 32 + 8}) {
		t.Errorf("grid anchor at (1, 2) ratio 1 = %v", b)
	}
}

func TestAnchorGeneratorOptionErrors(t *testing.T) {
	two, three := 2.0, 3
	for _, c := range []struct {
		key string
		o   AnchorGeneratorOptions
	}{
		{"strides", AnchorGeneratorOptions{Ratios: []float64{1}, Scales: []float64{8}}},
		{"strides[1]", AnchorGeneratorOptions{Strides: []any{4, "x"}, Ratios: []float64{1}, Scales: []float64{8}}},
		{"ratios[0]", AnchorGeneratorOptions{Strides: []any{4}, Ratios: []float64{-1}, Scales: []float64{8}}},
		{"scales", AnchorGeneratorOptions{Strides: []any{4}, Ratios: []float64{1}, Scales: []float64{8}, OctaveBaseScale: &two, ScalesPerOctave: &three}},
		{"scales_per_octave", AnchorGeneratorOptions{Strides: []any{4}, Ratios: []float64{1}, OctaveBaseScale: &two}},
		{"base_sizes", AnchorGeneratorOptions{Strides: []any{4, 8}, Ratios: []float64{1}, Scales: []float64{8}, BaseSizes: []float64{4}}},
		{"center_offset", AnchorGeneratorOptions{Strides: []any{4}, Ratios: []float64{1}, Scales: []float64{8}, CenterOffset: 2}},
		{"centers", AnchorGeneratorOptions{Strides: []any{4}, Ratios: []float64{1}, Scales: []float64{8}, CenterOffset: 0.5, Centers: [][]float64{{1, 1}}}},
	} {
		if _, err := NewAnchorGenerator(c.o); !containsKey(err, c.key) {
			t.Errorf("bad %s: error %v does not name it", c.key, err)
		}
	}
}
