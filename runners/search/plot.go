package search

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/razorgo/razor/config"
)

// Colors of the plot: every candidate, the top-k from the first epoch's
// colour to the last's, the random baseline, the best subnet, the bound.
var (
	candidateColor = color.RGBA{R: 160, G: 160, B: 160, A: 255}
	firstTopColor  = color.RGBA{R: 150, G: 200, B: 240, A: 255}
	lastTopColor   = color.RGBA{R: 10, G: 50, B: 140, A: 255}
	baselineColor  = color.RGBA{R: 240, G: 140, B: 20, A: 255}
	bestColor      = color.RGBA{R: 210, G: 20, B: 30, A: 255}
	boundColor     = color.RGBA{R: 90, G: 90, B: 90, A: 255}
	referenceColor = color.RGBA{R: 30, G: 150, B: 60, A: 255}
)

// blend mixes a into b by t in [0, 1].
func blend(a, b color.RGBA, t float64) color.RGBA {
	mix := func(x, y uint8) uint8 { return uint8(math.Round(float64(x) + t*(float64(y)-float64(x)))) }
	return color.RGBA{R: mix(a.R, b.R), G: mix(a.G, b.G), B: mix(a.B, b.B), A: 255}
}

// writePlot draws score against FLOPs (millions) for every candidate of
// the state, rings around each epoch's top-k (larger and darker for later
// epochs), triangles for the random baseline, a cross on the best subnet,
// a square on each reference subnet (named in the legend) and, for a
// {flops: N} constraint, its bound; and writes it as a PNG.
func writePlot(path string, st *State, scoreKey string, constraint *Constraint, bestKey string, refs []Reference) error {
	byKey := map[string]Candidate{}
	var all, baseline plotter.XYs
	for _, c := range st.Candidates {
		byKey[c.Key] = c
		xy := plotter.XY{X: float64(c.FLOPs) / 1e6, Y: c.Score}
		switch c.Origin {
		case OriginBaseline:
			baseline = append(baseline, xy)
		case OriginReference:
		default:
			all = append(all, xy)
		}
	}
	for _, c := range st.Baseline {
		if s, ok := byKey[c.Key]; ok && s.Origin != OriginBaseline {
			baseline = append(baseline, plotter.XY{X: float64(s.FLOPs) / 1e6, Y: s.Score})
		}
	}
	p := plot.New()
	p.Title.Text = "evolution search: " + scoreKey + " against FLOPs"
	p.X.Label.Text = "FLOPs (M)"
	p.Y.Label.Text = scoreKey
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true

	if err := addScatter(p, all, draw.CircleGlyph{}, candidateColor, 2, fmt.Sprintf("candidates (%d)", len(all))); err != nil {
		return err
	}
	last := len(st.TopK) - 1
	for e, keys := range st.TopK {
		var xys plotter.XYs
		for _, k := range keys {
			if c, ok := byKey[k]; ok {
				xys = append(xys, plotter.XY{X: float64(c.FLOPs) / 1e6, Y: c.Score})
			}
		}
		t := 1.0
		if last > 0 {
			t = float64(e) / float64(last)
		}
		label := ""
		if e == 0 || e == last {
			label = fmt.Sprintf("top-%d after epoch %d", len(keys), e+1)
		}
		if err := addScatter(p, xys, draw.RingGlyph{}, blend(firstTopColor, lastTopColor, t), vg.Length(3+2*t), label); err != nil {
			return err
		}
	}
	if err := addScatter(p, baseline, draw.TriangleGlyph{}, baselineColor, 3, fmt.Sprintf("random baseline (%d)", len(baseline))); err != nil {
		return err
	}
	if best, ok := byKey[bestKey]; ok {
		if err := addScatter(p, plotter.XYs{{X: float64(best.FLOPs) / 1e6, Y: best.Score}}, draw.CrossGlyph{}, bestColor, 6, "best subnet"); err != nil {
			return err
		}
	}
	for _, r := range refs {
		xy := plotter.XYs{{X: float64(r.FLOPs) / 1e6, Y: r.Score}}
		if err := addScatter(p, xy, draw.SquareGlyph{}, referenceColor, 4, "reference: "+r.Name); err != nil {
			return err
		}
		all = append(all, xy...)
	}
	if bound, ok := constraint.FLOPsBound(); ok && len(all) > 0 {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, xy := range append(append(plotter.XYs{}, all...), baseline...) {
			lo, hi = math.Min(lo, xy.Y), math.Max(hi, xy.Y)
		}
		l, err := plotter.NewLine(plotter.XYs{{X: bound / 1e6, Y: lo}, {X: bound / 1e6, Y: hi}})
		if err != nil {
			return err
		}
		l.LineStyle.Color = boundColor
		l.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(l)
		p.Legend.Add("flops bound "+strconv.FormatFloat(bound/1e6, 'g', -1, 64)+"M", l)
	}
	// Headroom above the points keeps the legend off them.
	p.Y.Max += 0.35 * math.Max(p.Y.Max-p.Y.Min, 1e-9)
	pad := 0.04 * math.Max(p.X.Max-p.X.Min, 1e-9)
	p.X.Min, p.X.Max = p.X.Min-pad, p.X.Max+pad
	wt, err := p.WriterTo(8*vg.Inch, 5*vg.Inch, "png")
	if err != nil {
		return fmt.Errorf("drawing %s: %w", path, err)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return fmt.Errorf("drawing %s: %w", path, err)
	}
	return config.WriteFileAtomic(path, buf.Bytes())
}

// addScatter adds points drawn with one glyph, with a legend entry when
// label is set.
func addScatter(p *plot.Plot, xys plotter.XYs, shape draw.GlyphDrawer, c color.Color, radius vg.Length, label string) error {
	if len(xys) == 0 {
		return nil
	}
	s, err := plotter.NewScatter(xys)
	if err != nil {
		return fmt.Errorf("plotting: %w", err)
	}
	s.GlyphStyle.Shape = shape
	s.GlyphStyle.Color = c
	s.GlyphStyle.Radius = radius
	p.Add(s)
	if label != "" {
		p.Legend.Add(label, s)
	}
	return nil
}
