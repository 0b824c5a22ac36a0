package ops

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"

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
//
// RoIAlign is separable. Sample (iy, ix) of bin (ph, pw) weighs pixel
// (y, x) by wy·wx, where wy depends only on the sample's row coordinate
// and wx only on its column, so a bin's output is Σ_y Σ_x A[ph][y]·F[y][x]·
// B[pw][x]: A sums the row weights of bin ph's samples (divided by the
// bin's sample count), B the column weights of bin pw's. The kernels
// compute F·Bᵀ on the rows any bin reads, then A times that. In
// BenchmarkRoIAlign's detector-scale setup that is 825 multiply-adds per
// RoI and channel where interpolating sample by sample, as torchvision
// does, takes 2049; the results differ from torchvision's only in
// rounding.
type roiAlignPlan[T blas.Float] struct {
	c, outH, outW int
	levels        []tensor.Shape
	rois          []roiSamples[T]
	// maxRows is the most rows any RoI reads, to size scratch space.
	maxRows int
	// byImage lists, per level and image, the RoIs that read it in RoI
	// order: the backward walks them plane by plane.
	byImage [][][]int
}

// roiSamples is what one RoI reads: rows lists the rows any of its bins
// reads, ascending, and rowTaps[ph] weighs them for output row ph (a tap's
// index is a position in rows). Output column pw weighs the run of columns
// from colFirst[pw] by colW[colOff[pw]:colOff[pw+1]]: a dense run (zero
// where samples skip a column) makes the column sums short dot products,
// the kernels' innermost loop.
type roiSamples[T blas.Float] struct {
	batch, level int
	rows         []int
	rowTaps      [][]tap[T]
	colFirst     []int
	colOff       []int
	colW         []T
}

// tap is one pixel's weight in an output bin along one axis.
type tap[T blas.Float] struct {
	at int
	w  T
}

// newRoIAlignPlan checks the RoIs against the levels' shapes and computes
// their sampling weights in T, with torchvision's arithmetic: a box's
// corners are scaled in float64 and rounded to T, everything after is in T.
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
		ys, gh := roiAxis(corner[1], corner[3], p.OutH, p.SamplingRatio, !p.Aligned, levels[r.Level][2])
		xs, gw := roiAxis(corner[0], corner[2], p.OutW, p.SamplingRatio, !p.Aligned, levels[r.Level][3])
		rows, rowTaps := indexRows(ys, 1/T(max(gh*gw, 1)))
		rs := roiSamples[T]{batch: r.Batch, level: r.Level, rows: rows, rowTaps: rowTaps,
			colFirst: make([]int, p.OutW), colOff: make([]int, p.OutW+1)}
		for pw, taps := range xs {
			if len(taps) > 0 {
				rs.colFirst[pw] = taps[0].at
				run := make([]T, taps[len(taps)-1].at-taps[0].at+1)
				for _, t := range taps {
					run[t.at-taps[0].at] = t.w
				}
				rs.colW = append(rs.colW, run...)
			}
			rs.colOff[pw+1] = len(rs.colW)
		}
		plan.rois[k] = rs
		plan.maxRows = max(plan.maxRows, len(rows))
		plan.byImage[r.Level][r.Batch] = append(plan.byImage[r.Level][r.Batch], k)
	}
	return plan, nil
}

// roiAxis places the samples of one axis of a RoI spanning [start, end)
// in feature pixels over out bins of a map of size pixels. It returns each
// bin's taps (pixels in ascending order, each once) and the number of
// samples per bin along the axis.
func roiAxis[T blas.Float](start, end T, out, ratio int, atLeastOne bool, size int) ([][]tap[T], int) {
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
	taps := make([][]tap[T], out)
	for b := range out {
		for i := range grid {
			// The explicit conversions round each product as torchvision's
			// float arithmetic does, rather than letting it fuse into the sum.
			at := start + T(T(b)*bin) + T(T(T(i)+0.5)*bin)/T(grid)
			taps[b] = addSample(taps[b], at, size)
		}
	}
	return taps, grid
}

// addSample adds to a bin's taps the bilinear weights of a sample at
// coordinate v, with mmcv's border rules: beyond one pixel outside, nothing;
// within a pixel before the start, the first pixel; at or past the last
// pixel, the last pixel. Samples come in ascending order, so a pixel
// already tapped is the last tap or the one before.
func addSample[T blas.Float](taps []tap[T], v T, size int) []tap[T] {
	if v < -1 || v > T(size) {
		return taps
	}
	v = max(v, 0)
	lo := int(v)
	if lo >= size-1 {
		return addTap(taps, size-1, 1)
	}
	frac := v - T(lo)
	return addTap(addTap(taps, lo, 1-frac), lo+1, frac)
}

func addTap[T blas.Float](taps []tap[T], at int, w T) []tap[T] {
	if w == 0 {
		return taps
	}
	for i := len(taps) - 1; i >= 0 && taps[i].at >= at; i-- {
		if taps[i].at == at {
			taps[i].w += w
			return taps
		}
	}
	return append(taps, tap[T]{at, w})
}

// indexRows lists the rows the bins' taps read and rewrites each tap to
// point at its row's position in that list, with its weight scaled.
func indexRows[T blas.Float](bins [][]tap[T], scale T) ([]int, [][]tap[T]) {
	var rows []int
	for _, taps := range bins {
		for _, t := range taps {
			rows = append(rows, t.at)
		}
	}
	slices.Sort(rows)
	rows = slices.Compact(rows)
	for _, taps := range bins {
		for i, t := range taps {
			pos, _ := slices.BinarySearch(rows, t.at)
			taps[i] = tap[T]{pos, t.w * scale}
		}
	}
	return rows, bins
}

// roiAlignForward pools every RoI. Workers split the channels and walk
// each plane's RoIs together: the RoIs on one image and level read the
// same plane, which stays in cache while they do. Splitting the RoIs
// instead, each RoI walking all channels, misses the cache on nearly every
// row it reads: it took 2.5 times as long in BenchmarkRoIAlign.
func roiAlignForward[T blas.Float](plan *roiAlignPlan[T], feats [][]T, y []T) {
	c, binArea := plan.c, plan.outH*plan.outW
	parallel(c, func(_, lo, hi int) {
		tmp := make([]T, plan.maxRows*plan.outW)
		for ch := lo; ch < hi; ch++ {
			for l, byImage := range plan.byImage {
				s := plan.levels[l]
				hw := s[2] * s[3]
				for b, rois := range byImage {
					plane := feats[l][(b*c+ch)*hw : (b*c+ch+1)*hw]
					for _, k := range rois {
						roiPool(plan, &plan.rois[k], plane, s[3], tmp, y[(k*c+ch)*binArea:(k*c+ch+1)*binArea])
					}
				}
			}
		}
	})
}

// roiPool pools one RoI from one plane of width w into out (OutH×OutW),
// using tmp for the rows' column sums.
func roiPool[T blas.Float](plan *roiAlignPlan[T], r *roiSamples[T], plane []T, w int, tmp, out []T) {
	outW := plan.outW
	for i, row := range r.rows {
		src, dst := plane[row*w:(row+1)*w], tmp[i*outW:(i+1)*outW]
		for pw := range dst {
			ws := r.colW[r.colOff[pw]:r.colOff[pw+1]]
			run := src[r.colFirst[pw]:]
			run = run[:len(ws)]
			var sum T
			for j, wv := range ws {
				sum += wv * run[j]
			}
			dst[pw] = sum
		}
	}
	for ph, taps := range r.rowTaps {
		dst := out[ph*outW : (ph+1)*outW]
		clear(dst)
		for _, t := range taps {
			src := tmp[t.at*outW : (t.at+1)*outW]
			for pw, v := range src {
				dst[pw] += t.w * v
			}
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
		tmp := make([]T, plan.maxRows*plan.outW)
		for p := lo; p < hi; p++ {
			b, ch := p/c, p%c
			plane := gx[p*hw : (p+1)*hw]
			clear(plane)
			for _, k := range plan.byImage[level][b] {
				roiScatter(plan, &plan.rois[k], gy[(k*c+ch)*binArea:(k*c+ch+1)*binArea], tmp, plane, s[3])
			}
		}
	})
}

// roiScatter adds the gradient g (OutH×OutW) of one RoI's output to the
// plane of width w it was pooled from, the transpose of roiPool.
func roiScatter[T blas.Float](plan *roiAlignPlan[T], r *roiSamples[T], g, tmp, plane []T, w int) {
	outW := plan.outW
	tmp = tmp[:len(r.rows)*outW]
	clear(tmp)
	for ph, taps := range r.rowTaps {
		src := g[ph*outW : (ph+1)*outW]
		for _, t := range taps {
			dst := tmp[t.at*outW : (t.at+1)*outW]
			for pw, v := range src {
				dst[pw] += t.w * v
			}
		}
	}
	for i, row := range r.rows {
		src, dst := tmp[i*outW:(i+1)*outW], plane[row*w:(row+1)*w]
		for pw, v := range src {
			ws := r.colW[r.colOff[pw]:r.colOff[pw+1]]
			run := dst[r.colFirst[pw]:]
			run = run[:len(ws)]
			for j, wv := range ws {
				run[j] += wv * v
			}
		}
	}
}
