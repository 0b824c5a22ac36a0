package bbox

import (
	"errors"
	"fmt"
	"math"
)

// AnchorGeneratorOptions are mmdet 2.x's AnchorGenerator arguments. Give
// either scales or both octave_base_scale and scales_per_octave.
type AnchorGeneratorOptions struct {
	// Strides are the feature-map strides, one per level: an int, or a
	// [w, h] pair.
	Strides []any `cfg:"strides,required"`
	// Ratios are the anchor height/width ratios.
	Ratios []float64 `cfg:"ratios,required"`
	// Scales multiply the base size.
	Scales []float64 `cfg:"scales"`
	// BaseSizes are the per-level base sizes (default: the smaller stride
	// of each level).
	BaseSizes []float64 `cfg:"base_sizes"`
	// ScaleMajor orders each location's anchors ratio by ratio, all scales
	// of a ratio together (true), or scale by scale (false).
	ScaleMajor bool `cfg:"scale_major"`
	// OctaveBaseScale and ScalesPerOctave give the scales
	// OctaveBaseScale * 2^(i/ScalesPerOctave), i < ScalesPerOctave.
	OctaveBaseScale *float64 `cfg:"octave_base_scale"`
	ScalesPerOctave *int     `cfg:"scales_per_octave"`
	// Centers are explicit (x, y) base-anchor centres, one per level.
	Centers [][]float64 `cfg:"centers"`
	// CenterOffset puts base-anchor centres at offset*base_size (0: the
	// top-left corner of the stride cell, 0.5: its centre).
	CenterOffset float64 `cfg:"center_offset"`
}

// Defaults sets mmdet's defaults.
func (o *AnchorGeneratorOptions) Defaults() { o.ScaleMajor = true }

// AnchorGenerator makes the anchors of each feature-map level: a set of
// base anchors around a centre, repeated at every location shifted by the
// level's stride.
type AnchorGenerator struct {
	strides [][2]int // (w, h)
	base    [][]Box
}

// NewAnchorGenerator checks the options and builds the base anchors.
func NewAnchorGenerator(o AnchorGeneratorOptions) (*AnchorGenerator, error) {
	if len(o.Strides) == 0 {
		return nil, errors.New("strides must list at least one level's stride, such as [4, 8, 16, 32, 64]")
	}
	g := &AnchorGenerator{strides: make([][2]int, len(o.Strides))}
	for i, s := range o.Strides {
		st, err := stridePair(s)
		if err != nil {
			return nil, fmt.Errorf("strides[%d]: %w", i, err)
		}
		g.strides[i] = st
	}
	if len(o.Ratios) == 0 {
		return nil, errors.New("ratios must list at least one ratio, such as [0.5, 1.0, 2.0]")
	}
	ratios := make([]float32, len(o.Ratios))
	for i, r := range o.Ratios {
		if !(r > 0) {
			return nil, fmt.Errorf("ratios[%d] = %v must be positive", i, r)
		}
		ratios[i] = float32(r)
	}
	scales, err := anchorScales(o)
	if err != nil {
		return nil, err
	}
	baseSizes := o.BaseSizes
	if baseSizes == nil {
		for _, s := range g.strides {
			baseSizes = append(baseSizes, float64(min(s[0], s[1])))
		}
	}
	if len(baseSizes) != len(g.strides) {
		return nil, fmt.Errorf("base_sizes has %d entries for %d strides; give one per level", len(baseSizes), len(g.strides))
	}
	if !(o.CenterOffset >= 0 && o.CenterOffset <= 1) {
		return nil, fmt.Errorf("center_offset %v must lie in [0, 1]", o.CenterOffset)
	}
	if o.Centers != nil {
		if o.CenterOffset != 0 {
			return nil, errors.New("centers cannot be set when center_offset is not 0; give one of them")
		}
		if len(o.Centers) != len(g.strides) {
			return nil, fmt.Errorf("centers has %d entries for %d strides; give one (x, y) per level", len(o.Centers), len(g.strides))
		}
	}
	for lv, size := range baseSizes {
		if !(size > 0) {
			return nil, fmt.Errorf("base_sizes[%d] = %v must be positive", lv, size)
		}
		w := float32(size)
		cx, cy := float32(o.CenterOffset*size), float32(o.CenterOffset*size)
		if o.Centers != nil {
			c := o.Centers[lv]
			if len(c) != 2 {
				return nil, fmt.Errorf("centers[%d] = %v must be an (x, y) pair", lv, c)
			}
			cx, cy = float32(c[0]), float32(c[1])
		}
		g.base = append(g.base, baseAnchors(w, cx, cy, ratios, scales, o.ScaleMajor))
	}
	return g, nil
}

// stridePair reads an int stride or a [w, h] pair.
func stridePair(v any) ([2]int, error) {
	whole := func(x any) (int, bool) {
		switch n := x.(type) {
		case int:
			return n, n > 0
		case float64:
			return int(n), n > 0 && n == math.Trunc(n) && n < 1<<30
		}
		return 0, false
	}
	if n, ok := whole(v); ok {
		return [2]int{n, n}, nil
	}
	if l, ok := v.([]any); ok && len(l) == 2 {
		w, okW := whole(l[0])
		h, okH := whole(l[1])
		if okW && okH {
			return [2]int{w, h}, nil
		}
	}
	return [2]int{}, fmt.Errorf("%v must be a positive whole number or a [w, h] pair of them", v)
}

// anchorScales resolves scales or the octave pair, as float32 values.
func anchorScales(o AnchorGeneratorOptions) ([]float32, error) {
	octave := o.OctaveBaseScale != nil || o.ScalesPerOctave != nil
	switch {
	case o.Scales != nil && octave:
		return nil, errors.New("scales and octave_base_scale/scales_per_octave cannot be set together; give one")
	case o.Scales != nil:
		if len(o.Scales) == 0 {
			return nil, errors.New("scales must list at least one scale, such as [8]")
		}
		out := make([]float32, len(o.Scales))
		for i, s := range o.Scales {
			if !(s > 0) {
				return nil, fmt.Errorf("scales[%d] = %v must be positive", i, s)
			}
			out[i] = float32(s)
		}
		return out, nil
	case o.OctaveBaseScale == nil || o.ScalesPerOctave == nil:
		return nil, errors.New("give scales, or both octave_base_scale and scales_per_octave")
	case !(*o.OctaveBaseScale > 0):
		return nil, fmt.Errorf("octave_base_scale %v must be positive", *o.OctaveBaseScale)
	case *o.ScalesPerOctave <= 0:
		return nil, fmt.Errorf("scales_per_octave %d must be positive", *o.ScalesPerOctave)
	}
	n := *o.ScalesPerOctave
	out := make([]float32, n)
	for i := range n {
		out[i] = float32(math.Pow(2, float64(i)/float64(n)) * *o.OctaveBaseScale)
	}
	return out, nil
}

// baseAnchors is gen_single_level_base_anchors in float32: widths
// size*w_ratio*scale with w_ratio = 1/sqrt(ratio), heights with
// sqrt(ratio), centred on (cx, cy).
func baseAnchors(size, cx, cy float32, ratios, scales []float32, scaleMajor bool) []Box {
	out := make([]Box, 0, len(ratios)*len(scales))
	add := func(ws, hs float32) {
		hw, hh := float32(0.5*ws), float32(0.5*hs)
		out = append(out, Box{cx - hw, cy - hh, cx + hw, cy + hh})
	}
	hRatio := func(r float32) float32 { return float32(math.Sqrt(float64(r))) }
	if scaleMajor {
		for _, r := range ratios {
			h := hRatio(r)
			w := 1 / h
			for _, s := range scales {
				add(float32(size*w)*s, float32(size*h)*s)
			}
		}
		return out
	}
	for _, s := range scales {
		for _, r := range ratios {
			h := hRatio(r)
			w := 1 / h
			add(float32(size*s)*w, float32(size*s)*h)
		}
	}
	return out
}

// NumLevels is the number of feature-map levels.
func (g *AnchorGenerator) NumLevels() int { return len(g.strides) }

// NumBaseAnchors is the number of anchors per location of each level
// (len(scales)*len(ratios)).
func (g *AnchorGenerator) NumBaseAnchors() []int {
	out := make([]int, len(g.base))
	for i, b := range g.base {
		out[i] = len(b)
	}
	return out
}

// Stride is level's (w, h) stride in pixels.
func (g *AnchorGenerator) Stride(level int) (w, h int) {
	return g.strides[level][0], g.strides[level][1]
}

// BaseAnchors is a copy of level's base anchors (those of location (0, 0)).
func (g *AnchorGenerator) BaseAnchors(level int) []Box {
	return append([]Box(nil), g.base[level]...)
}

// GridAnchors is mmdet's single_level_grid_priors: the anchors of a
// featH x featW map, anchor a of location (y, x) at index
// ((y*featW)+x)*A + a, each base anchor shifted by (x*stride_w, y*stride_h).
func (g *AnchorGenerator) GridAnchors(level, featH, featW int) []Box {
	base := g.base[level]
	sw, sh := float32(g.strides[level][0]), float32(g.strides[level][1])
	out := make([]Box, 0, featH*featW*len(base))
	for y := range featH {
		dy := float32(y) * sh
		for x := range featW {
			dx := float32(x) * sw
			for _, b := range base {
				out = append(out, Box{b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy})
			}
		}
	}
	return out
}

// ValidFlags is mmdet's valid_flags for one level of a batch padded to
// padH x padW: location (y, x) is valid when x < ceil(padW/stride_w) and
// y < ceil(padH/stride_h) (both capped at the feature size), so anchors
// over padding that only a larger image in the batch needed are left out.
// The flag repeats for each base anchor, in GridAnchors' order.
func (g *AnchorGenerator) ValidFlags(level, featH, featW, padH, padW int) []bool {
	a := len(g.base[level])
	validW := min(ceilDiv(padW, g.strides[level][0]), featW)
	validH := min(ceilDiv(padH, g.strides[level][1]), featH)
	out := make([]bool, featH*featW*a)
	for y := range validH {
		for x := range validW {
			for k := range a {
				out[(y*featW+x)*a+k] = true
			}
		}
	}
	return out
}

func ceilDiv(a, b int) int {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}
