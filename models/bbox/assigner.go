package bbox

import (
	"errors"
	"fmt"
)

// MaxIoUAssignerOptions are mmdet 2.x's MaxIoUAssigner arguments.
type MaxIoUAssignerOptions struct {
	// PosIoUThr makes a box positive when its best IoU reaches it.
	PosIoUThr float64 `cfg:"pos_iou_thr,required"`
	// NegIoUThr makes a box negative when its best IoU lies in [0, thr),
	// or, given as a [lo, hi] pair, in [lo, hi).
	NegIoUThr any `cfg:"neg_iou_thr,required"`
	// MinPosIoU is the least IoU a low-quality match may have.
	MinPosIoU float64 `cfg:"min_pos_iou"`
	// GtMaxAssignAll gives a ground truth every box tied at its best IoU in
	// low-quality matching, not only the first.
	GtMaxAssignAll bool `cfg:"gt_max_assign_all"`
	// IgnoreIofThr ignores boxes whose IoF with an ignored ground truth
	// exceeds it; <= 0 turns ignoring off.
	IgnoreIofThr float64 `cfg:"ignore_iof_thr"`
	// IgnoreWrtCandidates measures that IoF over the box's area (true) or
	// over the ignored ground truth's area (false).
	IgnoreWrtCandidates bool `cfg:"ignore_wrt_candidates"`
	// MatchLowQuality gives each ground truth its best boxes even below
	// PosIoUThr (as long as they reach MinPosIoU).
	MatchLowQuality bool `cfg:"match_low_quality"`
	// GpuAssignThr moves assignment to the CPU in mmdet when there are more
	// ground truths; accepted for compatibility, it changes nothing here.
	GpuAssignThr float64 `cfg:"gpu_assign_thr"`
	// IoUCalculator computes the overlaps (default BboxOverlaps2D).
	IoUCalculator *BboxOverlaps2D `cfg:"iou_calculator"`
}

// Defaults sets mmdet's defaults.
func (o *MaxIoUAssignerOptions) Defaults() {
	o.GtMaxAssignAll = true
	o.IgnoreIofThr = -1
	o.IgnoreWrtCandidates = true
	o.MatchLowQuality = true
	o.GpuAssignThr = -1
}

// AssignResult says which ground truth each box is assigned to.
type AssignResult struct {
	// NumGts is the number of ground truths.
	NumGts int
	// GtInds holds, per box, 0 for a negative, -1 for a box neither
	// positive nor negative (ignored), and k+1 for a box assigned to
	// ground truth k.
	GtInds []int
	// MaxOverlaps is each box's best IoU with any ground truth (-1 for a
	// box ignored because of an ignored ground truth).
	MaxOverlaps []float32
	// Labels is the assigned ground truth's label for positive boxes and
	// -1 elsewhere; nil when no labels were given.
	Labels []int
}

// MaxIoUAssigner assigns each box to the ground truth it overlaps most,
// positive above pos_iou_thr, negative below neg_iou_thr, and then gives
// every ground truth its best-overlapping boxes (low-quality matches).
type MaxIoUAssigner struct {
	o      MaxIoUAssignerOptions
	pos    float32
	negLo  float32
	negHi  float32
	minPos float32
	ignore float32
}

// NewMaxIoUAssigner checks the options.
func NewMaxIoUAssigner(o MaxIoUAssignerOptions) (*MaxIoUAssigner, error) {
	a := &MaxIoUAssigner{o: o, pos: float32(o.PosIoUThr), minPos: float32(o.MinPosIoU), ignore: float32(o.IgnoreIofThr)}
	if !(o.PosIoUThr >= 0 && o.PosIoUThr <= 1) {
		return nil, fmt.Errorf("pos_iou_thr %v must lie in [0, 1]", o.PosIoUThr)
	}
	if !(o.MinPosIoU >= 0 && o.MinPosIoU <= 1) {
		return nil, fmt.Errorf("min_pos_iou %v must lie in [0, 1]", o.MinPosIoU)
	}
	lo, hi, err := negRange(o.NegIoUThr)
	if err != nil {
		return nil, err
	}
	a.negLo, a.negHi = float32(lo), float32(hi)
	if a.o.IoUCalculator == nil {
		a.o.IoUCalculator = &BboxOverlaps2D{}
	}
	return a, nil
}

// negRange reads neg_iou_thr: a number t means [0, t), a pair [lo, hi).
func negRange(v any) (float64, float64, error) {
	num := func(x any) (float64, bool) {
		switch n := x.(type) {
		case int:
			return float64(n), true
		case float64:
			return n, true
		}
		return 0, false
	}
	in01 := func(x float64) bool { return x >= 0 && x <= 1 }
	if t, ok := num(v); ok {
		if !in01(t) {
			return 0, 0, fmt.Errorf("neg_iou_thr %v must lie in [0, 1]", t)
		}
		return 0, t, nil
	}
	if l, ok := v.([]any); ok && len(l) == 2 {
		lo, okLo := num(l[0])
		hi, okHi := num(l[1])
		if okLo && okHi && in01(lo) && in01(hi) && lo <= hi {
			return lo, hi, nil
		}
	}
	if v == nil {
		return 0, 0, errors.New("neg_iou_thr is required: a number such as 0.3, or a [lo, hi] pair")
	}
	return 0, 0, fmt.Errorf("neg_iou_thr %v must be a number in [0, 1] or a [lo, hi] pair with 0 <= lo <= hi <= 1", v)
}

// Assign is mmdet 2.x's MaxIoUAssigner.assign. gtIgnore (may be empty)
// holds ground truths marked crowd/ignore; gtLabels (may be nil) holds one
// label per ground truth. Thresholds are compared in float32, as torch
// compares a float32 tensor with a Python number. Ties for a box's best
// ground truth go to the first ground truth, as torch's max does.
func (a *MaxIoUAssigner) Assign(boxes, gts, gtIgnore []Box, gtLabels []int) AssignResult {
	if gtLabels != nil && len(gtLabels) != len(gts) {
		panic(fmt.Sprintf("bbox.MaxIoUAssigner.Assign: %d labels for %d ground truths", len(gtLabels), len(gts)))
	}
	g, n := len(gts), len(boxes)
	res := AssignResult{NumGts: g, GtInds: make([]int, n), MaxOverlaps: make([]float32, n)}
	if gtLabels != nil {
		res.Labels = make([]int, n)
		for j := range res.Labels {
			res.Labels[j] = -1
		}
	}
	if g == 0 || n == 0 {
		return res
	}
	ov := a.o.IoUCalculator.Overlaps(gts, boxes, "iou")
	if a.o.IgnoreIofThr > 0 && len(gtIgnore) > 0 {
		for j, m := range a.ignoreOverlaps(boxes, gtIgnore) {
			if m > a.ignore {
				for i := range g {
					ov[i*n+j] = -1
				}
			}
		}
	}
	argmax := make([]int, n)
	for j := range n {
		best := ov[j]
		for i := 1; i < g; i++ {
			if ov[i*n+j] > best {
				best, argmax[j] = ov[i*n+j], i
			}
		}
		res.MaxOverlaps[j] = best
		switch {
		case best >= a.pos:
			res.GtInds[j] = argmax[j] + 1
		case best >= a.negLo && best < a.negHi:
			res.GtInds[j] = 0
		default:
			res.GtInds[j] = -1
		}
	}
	if a.o.MatchLowQuality {
		for i := range g {
			row := ov[i*n : (i+1)*n]
			best, first := row[0], 0
			for j := 1; j < n; j++ {
				if row[j] > best {
					best, first = row[j], j
				}
			}
			if !(best >= a.minPos) {
				continue
			}
			if !a.o.GtMaxAssignAll {
				res.GtInds[first] = i + 1
				continue
			}
			for j, v := range row {
				if v == best {
					res.GtInds[j] = i + 1
				}
			}
		}
	}
	if gtLabels != nil {
		for j, k := range res.GtInds {
			if k > 0 {
				res.Labels[j] = gtLabels[k-1]
			}
		}
	}
	return res
}

// ignoreOverlaps is each box's largest IoF with an ignored ground truth.
func (a *MaxIoUAssigner) ignoreOverlaps(boxes, gtIgnore []Box) []float32 {
	n, m := len(boxes), len(gtIgnore)
	out := make([]float32, n)
	if a.o.IgnoreWrtCandidates {
		iof := a.o.IoUCalculator.Overlaps(boxes, gtIgnore, "iof")
		for j := range n {
			out[j] = iof[j*m]
			for k := 1; k < m; k++ {
				out[j] = max(out[j], iof[j*m+k])
			}
		}
		return out
	}
	iof := a.o.IoUCalculator.Overlaps(gtIgnore, boxes, "iof")
	for j := range n {
		out[j] = iof[j]
		for k := 1; k < m; k++ {
			out[j] = max(out[j], iof[k*n+j])
		}
	}
	return out
}
