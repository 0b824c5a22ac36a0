package cli

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// BoxColour is the colour infer draws boxes in: mmdet 2.x show_result's bbox_color and text_color.
var BoxColour = color.RGBA{72, 101, 241, 255}

// boxThickness is show_result's line thickness in pixels.
const boxThickness = 2

// Shown is one detection as infer reports and draws it.
type Shown struct {
	Class string     `json:"class"`
	Label int        `json:"label"`
	Score float32    `json:"score"`
	BBox  [4]float32 `json:"bbox"`
}

// drawDetections returns a copy of img with every detection's box outlined
// and labelled "class|score", as mmdet's imshow_det_bboxes draws them: the
// label on a filled tab above the box's top-left corner (inside the box
// when the box touches the top edge).
func drawDetections(img image.Image, dets []Shown) *image.RGBA {
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Bounds(), img, b.Min, draw.Src)
	fill := image.NewUniform(BoxColour)
	face := basicfont.Face7x13
	for _, d := range dets {
		r := image.Rect(int(d.BBox[0]), int(d.BBox[1]), int(d.BBox[2]), int(d.BBox[3])).Intersect(out.Bounds())
		if r.Empty() {
			continue
		}
		for _, edge := range []image.Rectangle{
			image.Rect(r.Min.X, r.Min.Y, r.Max.X, r.Min.Y+boxThickness),
			image.Rect(r.Min.X, r.Max.Y-boxThickness, r.Max.X, r.Max.Y),
			image.Rect(r.Min.X, r.Min.Y, r.Min.X+boxThickness, r.Max.Y),
			image.Rect(r.Max.X-boxThickness, r.Min.Y, r.Max.X, r.Max.Y),
		} {
			draw.Draw(out, edge.Intersect(r), fill, image.Point{}, draw.Src)
		}
		text := fmt.Sprintf("%s|%.2f", d.Class, d.Score)
		w := font.MeasureString(face, text).Ceil() + 2
		h := face.Metrics().Height.Ceil()
		top := r.Min.Y - h
		if top < 0 {
			top = r.Min.Y
		}
		tab := image.Rect(r.Min.X, top, r.Min.X+w, top+h)
		draw.Draw(out, tab.Intersect(out.Bounds()), fill, image.Point{}, draw.Src)
		dr := font.Drawer{Dst: out, Src: image.White, Face: face, Dot: fixed.P(tab.Min.X+1, tab.Min.Y+face.Metrics().Ascent.Ceil())}
		dr.DrawString(text)
	}
	return out
}
