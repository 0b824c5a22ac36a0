package bbox

import (
	"fmt"
	"math"
)

// DeltaXYWHBBoxCoderOptions are mmdet 2.x's DeltaXYWHBBoxCoder arguments.
// WhRatioClip is an argument of mmdet's decode call rather than of the
// coder; it is an option here so a config can change it.
type DeltaXYWHBBoxCoderOptions struct {
	// TargetMeans are subtracted from (dx, dy, dw, dh) after encoding.
	TargetMeans []float64 `cfg:"target_means"`
	// TargetStds divide the deltas after the means are subtracted.
	TargetStds []float64 `cfg:"target_stds"`
	// ClipBorder clips decoded boxes to the image when its shape is given.
	ClipBorder bool `cfg:"clip_border"`
	// AddCtrClamp clamps the centre shift to ±CtrClamp pixels and stops
	// clamping dw, dh from below.
	AddCtrClamp bool `cfg:"add_ctr_clamp"`
	// CtrClamp is the centre shift limit in pixels.
	CtrClamp float64 `cfg:"ctr_clamp"`
	// WhRatioClip bounds |dw|, |dh| by |log(WhRatioClip)| when decoding.
	WhRatioClip float64 `cfg:"wh_ratio_clip"`
}

// Defaults sets mmdet's defaults.
func (o *DeltaXYWHBBoxCoderOptions) Defaults() {
	o.TargetMeans = []float64{0, 0, 0, 0}
	o.TargetStds = []float64{1, 1, 1, 1}
	o.ClipBorder = true
	o.CtrClamp = 32
	o.WhRatioClip = 16.0 / 1000
}

// DeltaXYWHBBoxCoder encodes a box relative to a reference box as
// (dx, dy, dw, dh) = ((gx-px)/pw, (gy-py)/ph, log(gw/pw), log(gh/ph)),
// normalised by the target means and stds, and decodes such deltas back.
type DeltaXYWHBBoxCoder struct {
	means, stds [4]float32
	clipBorder  bool
	ctrClamp    float32 // 0 when add_ctr_clamp is off
	maxRatio    float32
}

// NewDeltaXYWHBBoxCoder checks the options.
func NewDeltaXYWHBBoxCoder(o DeltaXYWHBBoxCoderOptions) (*DeltaXYWHBBoxCoder, error) {
	c := &DeltaXYWHBBoxCoder{clipBorder: o.ClipBorder}
	if len(o.TargetMeans) != 4 {
		return nil, fmt.Errorf("target_means %v must be 4 numbers, one per (dx, dy, dw, dh)", o.TargetMeans)
	}
	if len(o.TargetStds) != 4 {
		return nil, fmt.Errorf("target_stds %v must be 4 numbers, one per (dx, dy, dw, dh)", o.TargetStds)
	}
	for k := range 4 {
		if !(o.TargetStds[k] > 0) {
			return nil, fmt.Errorf("target_stds %v must all be positive", o.TargetStds)
		}
		c.means[k], c.stds[k] = float32(o.TargetMeans[k]), float32(o.TargetStds[k])
	}
	if !(o.WhRatioClip > 0 && o.WhRatioClip < 1) {
		return nil, fmt.Errorf("wh_ratio_clip %v must lie in (0, 1); mmdet uses 0.016", o.WhRatioClip)
	}
	c.maxRatio = float32(math.Abs(math.Log(o.WhRatioClip)))
	if o.AddCtrClamp {
		if !(o.CtrClamp > 0) {
			return nil, fmt.Errorf("ctr_clamp %v must be positive", o.CtrClamp)
		}
		c.ctrClamp = float32(o.CtrClamp)
	}
	return c, nil
}

// Encode is mmdet's bbox2delta: the normalised deltas that move boxes[i]
// onto gts[i]. boxes and gts must have the same length; a mismatch panics.
func (c *DeltaXYWHBBoxCoder) Encode(boxes, gts []Box) [][4]float32 {
	if len(boxes) != len(gts) {
		panic(fmt.Sprintf("bbox.DeltaXYWHBBoxCoder.Encode: %d boxes but %d targets", len(boxes), len(gts)))
	}
	out := make([][4]float32, len(boxes))
	for i, p := range boxes {
		g := gts[i]
		px, py := (p[0]+p[2])*0.5, (p[1]+p[3])*0.5
		pw, ph := p[2]-p[0], p[3]-p[1]
		gx, gy := (g[0]+g[2])*0.5, (g[1]+g[3])*0.5
		gw, gh := g[2]-g[0], g[3]-g[1]
		d := [4]float32{
			(gx - px) / pw,
			(gy - py) / ph,
			log32(gw / pw),
			log32(gh / ph),
		}
		for k := range 4 {
			d[k] = (d[k] - c.means[k]) / c.stds[k]
		}
		out[i] = d
	}
	return out
}

// Decode is mmdet's delta2bbox: it applies deltas to rois. With
// len(deltas) == len(rois)*C (C per-class deltas for each roi, row-major)
// roi i serves deltas[i*C .. i*C+C-1] and the result is laid out the same
// way. When clip_border is on and maxH, maxW > 0 (the image height and
// width), coordinates are clipped to [0, maxW] and [0, maxH]. A delta
// count that is not a multiple of len(rois) panics.
func (c *DeltaXYWHBBoxCoder) Decode(rois []Box, deltas [][4]float32, maxH, maxW int) []Box {
	if len(rois) == 0 {
		if len(deltas) != 0 {
			panic(fmt.Sprintf("bbox.DeltaXYWHBBoxCoder.Decode: %d deltas for no rois", len(deltas)))
		}
		return []Box{}
	}
	if len(deltas)%len(rois) != 0 {
		panic(fmt.Sprintf("bbox.DeltaXYWHBBoxCoder.Decode: %d deltas are not a whole number per roi for %d rois", len(deltas), len(rois)))
	}
	perRoi := len(deltas) / len(rois)
	clip := c.clipBorder && maxH > 0 && maxW > 0
	limit := [2]float32{float32(maxW), float32(maxH)}
	out := make([]Box, len(deltas))
	for i, d := range deltas {
		r := rois[i/perRoi]
		var b Box
		for k := range 2 {
			dxy := float32(d[k]*c.stds[k]) + c.means[k]
			dwh := float32(d[k+2]*c.stds[k+2]) + c.means[k+2]
			pc := (r[k] + r[k+2]) * 0.5
			pwh := r[k+2] - r[k]
			shift := float32(pwh * dxy)
			if c.ctrClamp > 0 {
				shift = min(max(shift, -c.ctrClamp), c.ctrClamp)
				dwh = min(dwh, c.maxRatio)
			} else {
				dwh = min(max(dwh, -c.maxRatio), c.maxRatio)
			}
			center := pc + shift
			half := float32(float32(pwh*exp32(dwh)) * 0.5)
			lo, hi := center-half, center+half
			if clip {
				lo = min(max(lo, 0), limit[k])
				hi = min(max(hi, 0), limit[k])
			}
			b[k], b[k+2] = lo, hi
		}
		out[i] = b
	}
	return out
}

func log32(x float32) float32 { return float32(math.Log(float64(x))) }

func exp32(x float32) float32 { return float32(math.Exp(float64(x))) }
