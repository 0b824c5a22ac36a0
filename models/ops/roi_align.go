package ops

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"

	"github.com/razorgo/razor/models/ops/blas"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// RoI is one region: the image it belongs to in the batch, the feature
// level it is pooled from, and its box (x1, y1, x2, y2) in input-image
// pixels.
type RoI struct {
	Batch, Level int
	Box          [4]float32
}

// RoIAlignParams configures RoIAlign the way mmcv's RoIAlign layer is
// configured (output_size, spatial_scale, sampling_ratio, aligned), with
// one spatial scale per feature level.
type RoIAlignParams struct {
	// OutH and OutW are the pooled size of every RoI (7x7 in Faster R-CNN).
	OutH, OutW int
	// SpatialScales holds, per level, the factor from image pixels to that
	// level's feature pixels: 1/stride (0.25, 0.125, ... for FPN).
	SpatialScales []float64
	// SamplingRatio is how many samples each output bin takes per axis; 0
	// picks ceil(roi size / output size) per RoI, as mmcv does.
	SamplingRatio int
	// Aligned shifts boxes by half a feature pixel so that pixel centres
	// line up (mmdet 2.x configs set aligned=True); when false, boxes are
	// not shifted and their size is forced to at least one feature pixel.
	Aligned bool
}

// RoIAlign pools every RoI from its level's feature map (feats[level], each
// N×C×H×W with the same N and C) into a K×C×OutH×OutW tensor in RoI order,
// with the semantics of mmcv's RoIAlign (pool_mode "avg"), which equals
// torchvision.ops.roi_align(aligned=p.Aligned): each output bin averages
// bilinearly interpolated samples on a regular grid inside it, a sample
// more than one pixel outside the map counting as zero. Doing every level
// in one op makes mmdet's SingleRoIExtractor one graph node.
//
// The gradient flows to every level's features (zero where no RoI reads);
// the RoIs are constants, as in mmdet, where boxes carry no gradient.
//
// An empty rois is an error: gorgonia's own ops cannot run on a tensor with
// no rows, so a detector without proposals must skip its RoI head (mmdet
// returns empty detections for that image at test time, and at training
// time the ground-truth boxes are always among the proposals).
func RoIAlign(feats []*gorgonia.Node, rois []RoI, p RoIAlignParams) (*gorgonia.Node, error) {
	levels, err := roiAlignLevels(feats, p)
	if err != nil {
		return nil, err
	}
	plan, err := newRoIAlignPlan[float32](levels, rois, p)
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("RoIAlign{%d RoIs #%08x from %v, out %dx%d, scales %v, sampling %d, aligned %t}",
		len(rois), roisHash(rois), levels, p.OutH, p.OutW, p.SpatialScales, p.SamplingRatio, p.Aligned)
	return apply(&kernelOp{
		name:    name,
		in:      shapes(feats...),
		out:     tensor.Shape{len(rois), plan.c, p.OutH, p.OutW},
		kernel:  func(o []float32, in [][]float32) { roiAlignForward(plan, in, o) },
		diffWRT: trues(len(feats)),
		symDiff: func(inputs gorgonia.Nodes, _, grad *gorgonia.Node) (gorgonia.Nodes, error) {
			grads := make(gorgonia.Nodes, len(inputs))
			for l := range inputs {
				var err error
				grads[l], err = apply(&kernelOp{
					name:   fmt.Sprintf("RoIAlignGrad{level %d of %s}", l, name),
					in:     shapes(grad),
					out:    levels[l].Clone(),
					kernel: func(o []float32, in [][]float32) { roiAlignBackward(plan, l, in[0], o) },
				}, grad)
				if err != nil {
					return nil, err
				}
			}
			return grads, nil
		},
	}, feats...)
}

// roiAlignLevels checks the feature maps and parameters and returns the
// maps' shapes.
func roiAlignLevels(feats []*gorgonia.Node, p RoIAlignParams) ([]tensor.Shape, error) {
	switch {
	case len(feats) == 0:
		return nil, errors.New("RoIAlign: no feature maps")
	case len(p.SpatialScales) != len(feats):
		return nil, fmt.Errorf("RoIAlign: %d spatial scales for %d feature levels; give one per level", len(p.SpatialScales), len(feats))
	case p.OutH < 1 || p.OutW < 1:
		return nil, fmt.Errorf("RoIAlign: output size %dx%d must be positive", p.OutH, p.OutW)
	case p.SamplingRatio < 0:
		return nil, fmt.Errorf("RoIAlign: sampling ratio %d must be 0 (adaptive) or positive", p.SamplingRatio)
	}
	levels := make([]tensor.Shape, len(feats))
	for l, f := range feats {
		if err := checkNode("RoIAlign", fmt.Sprintf("level %d", l), f, 4); err != nil {
			return nil, err
		}
		levels[l] = f.Shape().Clone()
		if s := levels[l]; s[0] != levels[0][0] || s[1] != levels[0][1] {
			return nil, fmt.Errorf("RoIAlign: level %d %q has shape %v, but level 0 has %v: every level needs the same batch size and channels",
				l, f.Name(), s, levels[0])
		}
		if sc := p.SpatialScales[l]; !(sc > 0) || math.IsInf(sc, 1) {
			return nil, fmt.Errorf("RoIAlign: spatial scale %g of level %d must be positive and finite", sc, l)
		}
	}
	return levels, nil
}

// roisHash tells RoI sets apart in an op's name.
func roisHash(rois []RoI) uint32 {
	h := fnv.New32a()
	var b [24]byte
	for _, r := range rois {
		binary.LittleEndian.PutUint32(b[0:], uint32(r.Batch))
		binary.LittleEndian.PutUint32(b[4:], uint32(r.Level))
		for i, v := range r.Box {
			binary.LittleEndian.PutUint32(b[8+4*i:], math.Float32bits(v))
		}
		h.Write(b[:])
	}
	return h.Sum32()
}

// roiAlignPlan is where every RoI samples its level, worked out once when
// the graph is built: the RoIs are constants, and the forward and backward
// kernels share the plan.
type roiAlignPlan[T blas.Float] struct {
	c, outH, outW int
	levels        []tensor.Shape
	rois          []roiSamples[T]
	// byImage lists, per level and image, the RoIs that read it in RoI
	// order: the backward walks them plane by plane.
	byImage [][][]int
}

// roiSamples is one RoI's sampling grid. The grid is separable: sample
// (iy, ix) of bin (ph, pw) sits at row ys[ph·gh+iy] and column
// xs[pw·gw+ix], and its bilinear weights are products of the two axes'.
type roiSamples[T blas.Float] struct {
	batch, level int
	gh, gw       int
	count        T // the divisor of every bin: max(gh·gw, 1)
	ys, xs       []axisSample[T]
}

// axisSample is one sample coordinate along an axis: the two neighbouring
// pixels and their interpolation weights. Rows hold offsets into the
// plane (row·W), columns hold column indices. A coordinate more than one
// pixel outside the map has zero weights, so every sample on its row or
// column contributes nothing (its count still divides the bin).
type axisSample[T blas.Float] struct {
	lo, hi   int32
	wlo, whi T
}

// newRoIAlignPlan checks the RoIs against the levels' shapes and computes
// their sampling grids in T, with torchvision's arithmetic: a box's corners
// are scaled in float64 and rounded to T, everything after is in T.
func newRoIAlignPlan[T blas.Float](levels []tensor.Shape, rois []RoI, p RoIAlignParams) (*roiAlignPlan[T], error) {
	if len(rois) == 0 {
		return nil, errors.New("RoIAlign: no RoIs: a detector with no proposals must skip its RoI head, as mmdet does (gorgonia cannot run ops on an empty tensor)")
	}
	n := levels[0][0]
	plan := &roiAlignPlan[T]{c: levels[0][1], outH: p.OutH, outW: p.OutW, levels: levels,
		rois: make([]roiSamples[T], len(rois)), byImage: make([][][]int, len(levels))}
	for l := range levels {
		plan.byImage[l] = make([][]int, n)
	}
	offset := 0.0
	if p.Aligned {
		offset = 0.5
	}
	for k, r := range rois {
		if r.Level < 0 || r.Level >= len(levels) {
			return nil, fmt.Errorf("RoIAlign: RoI %d has level %d; the feature maps have levels 0 to %d", k, r.Level, len(levels)-1)
		}
		if r.Batch < 0 || r.Batch >= n {
			return nil, fmt.Errorf("RoIAlign: RoI %d has batch index %d; the batch has %d images", k, r.Batch, n)
		}
		for _, v := range r.Box {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("RoIAlign: RoI %d has box %v; coordinates must be finite", k, r.Box)
			}
		}
		scale := p.SpatialScales[r.Level]
		var corner [4]T
		for i, v := range r.Box {
			corner[i] = T(float64(v)*scale - offset)
		}
		h, w := levels[r.Level][2], levels[r.Level][3]
		ys, gh := roiAxis(corner[1], corner[3], p.OutH, p.SamplingRatio, !p.Aligned, h, w)
		xs, gw := roiAxis(corner[0], corner[2], p.OutW, p.SamplingRatio, !p.Aligned, w, 1)
		plan.rois[k] = roiSamples[T]{batch: r.Batch, level: r.Level, gh: gh, gw: gw,
			count: T(max(gh*gw, 1)), ys: ys, xs: xs}
		plan.byImage[r.Level][r.Batch] = append(plan.byImage[r.Level][r.Batch], k)
	}
	return plan, nil
}

// roiAxis places the samples of one axis of a RoI spanning [start, end)
// in feature pixels over out bins of a map of size pixels (stride apart),
// and returns them with the per-bin grid size.
func roiAxis[T blas.Float](start, end T, out, ratio int, atLeastOne bool, size, stride int) ([]axisSample[T], int) {
	length := end - start
	if atLeastOne {
		length = max(length, 1)
	}
	bin := length / T(out)
	grid := ratio
	if grid == 0 {
		// A box of negative size (possible when aligned) takes no samples.
		grid = max(int(math.Ceil(float64(length/T(out)))), 0)
	}
	samples := make([]axisSample[T], 0, out*grid)
	for b := range out {
		for i := range grid {
			// The explicit conversions round each product as torchvision's
			// float arithmetic does, rather than letting it fuse into the sum.
			at := start + T(T(b)*bin) + T(T(T(i)+0.5)*bin)/T(grid)
			samples = append(samples, bilinearAxis(at, size, stride))
		}
	}
	return samples, grid
}

// bilinearAxis interpolates at coordinate v along an axis of size pixels
// with mmcv's border rules: beyond one pixel outside, nothing; within a
// pixel before the start, the first pixel; at or past the last pixel, the
// last pixel.
func bilinearAxis[T blas.Float](v T, size, stride int) axisSample[T] {
	if v < -1 || v > T(size) {
		return axisSample[T]{}
	}
	v = max(v, 0)
	lo := int(v)
	hi := lo + 1
	if lo >= size-1 {
		lo, hi = size-1, size-1
		v = T(lo)
	}
	frac := v - T(lo)
	return axisSample[T]{lo: int32(lo * stride), hi: int32(hi * stride), wlo: 1 - frac, whi: frac}
}

// roiAlignForward pools every RoI, the RoIs split across workers: each
// writes only its own RoIs' outputs.
func roiAlignForward[T blas.Float](plan *roiAlignPlan[T], feats [][]T, y []T) {
	c, binArea := plan.c, plan.outH*plan.outW
	parallel(len(plan.rois), func(_, lo, hi int) {
		for k := lo; k < hi; k++ {
			r := &plan.rois[k]
			s := plan.levels[r.level]
			hw := s[2] * s[3]
			image := feats[r.level][r.batch*c*hw : (r.batch+1)*c*hw]
			for ch := range c {
				roiPool(plan, r, image[ch*hw:(ch+1)*hw], y[(k*c+ch)*binArea:(k*c+ch+1)*binArea])
			}
		}
	})
}

// roiPool averages the samples of every bin of one RoI in one plane, in
// torchvision's order and rounding.
func roiPool[T blas.Float](plan *roiAlignPlan[T], r *roiSamples[T], plane, out []T) {
	for ph := range plan.outH {
		ys := r.ys[ph*r.gh : (ph+1)*r.gh]
		for pw := range plan.outW {
			xs := r.xs[pw*r.gw : (pw+1)*r.gw]
			var sum T
			for _, sy := range ys {
				top, bottom := plane[sy.lo:], plane[sy.hi:]
				for _, sx := range xs {
					sum += sy.wlo*sx.wlo*top[sx.lo] + sy.wlo*sx.whi*top[sx.hi] +
						sy.whi*sx.wlo*bottom[sx.lo] + sy.whi*sx.whi*bottom[sx.hi]
				}
			}
			out[ph*plan.outW+pw] = sum / r.count
		}
	}
}

// roiAlignBackward writes the gradient of level's features from gy, the
// gradient of RoIAlign's output. RoIs overlap, so their scatters would
// race if RoIs were split across workers; instead each worker owns whole
// planes (one image, one channel) and adds the RoIs reading a plane in RoI
// order, which makes the result the same on every run and for any number
// of workers.
func roiAlignBackward[T blas.Float](plan *roiAlignPlan[T], level int, gy, gx []T) {
	s := plan.levels[level]
	c, hw, binArea := plan.c, s[2]*s[3], plan.outH*plan.outW
	parallel(s[0]*c, func(_, lo, hi int) {
		for p := lo; p < hi; p++ {
			b, ch := p/c, p%c
			plane := gx[p*hw : (p+1)*hw]
			clear(plane)
			for _, k := range plan.byImage[level][b] {
				roiScatter(plan, &plan.rois[k], gy[(k*c+ch)*binArea:(k*c+ch+1)*binArea], plane)
			}
		}
	})
}

// roiScatter adds one RoI's bin gradients g to the pixels its samples read,
// with the weights they were read with. Dividing each bin's gradient by the
// count first, instead of every product as torchvision does, differs only
// in rounding and saves four divisions per sample.
func roiScatter[T blas.Float](plan *roiAlignPlan[T], r *roiSamples[T], g, plane []T) {
	for ph := range plan.outH {
		ys := r.ys[ph*r.gh : (ph+1)*r.gh]
		for pw := range plan.outW {
			xs := r.xs[pw*r.gw : (pw+1)*r.gw]
			v := g[ph*plan.outW+pw] / r.count
			for _, sy := range ys {
				top, bottom := plane[sy.lo:], plane[sy.hi:]
				for _, sx := range xs {
					top[sx.lo] += v * (sy.wlo * sx.wlo)
					top[sx.hi] += v * (sy.wlo * sx.whi)
					bottom[sx.lo] += v * (sy.whi * sx.wlo)
					bottom[sx.hi] += v * (sy.whi * sx.whi)
				}
			}
		}
	}
}
