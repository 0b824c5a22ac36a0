package metrics

import (
	"fmt"
	"math"
	"strings"
)

// statSpec is one of pycocotools' 12 summary numbers: average precision
// (ap) or recall over the IoU thresholds (iouThr 0 means all of them), one
// area range, and one maxDets value.
type statSpec struct {
	ap      bool
	iouThr  float64
	area    int
	maxDets int
}

// statSpecs lists the summary numbers in pycocotools' order. The first
// always asks for maxDets=100, whatever the Params; the others use the
// configured limits, as _summarizeDets does.
func (e *Eval) statSpecs() [12]statSpec {
	m := e.params.MaxDets
	return [12]statSpec{
		{true, 0, 0, 100},
		{true, 0.5, 0, m[2]},
		{true, 0.75, 0, m[2]},
		{true, 0, 1, m[2]},
		{true, 0, 2, m[2]},
		{true, 0, 3, m[2]},
		{false, 0, 0, m[0]},
		{false, 0, 0, m[1]},
		{false, 0, 0, m[2]},
		{false, 0, 1, m[2]},
		{false, 0, 2, m[2]},
		{false, 0, 3, m[2]},
	}
}

// summaryStats computes the 12 numbers: the mean of every defined (> -1)
// entry of the selected precision or recall slice, or -1 when none is.
func (e *Eval) summaryStats() [12]float64 {
	var stats [12]float64
	for i, s := range e.statSpecs() {
		stats[i] = e.summarize(s)
	}
	return stats
}

func (e *Eval) summarize(s statSpec) float64 {
	var ts []int
	for t, thr := range e.iouThrs {
		if s.iouThr == 0 || thr == s.iouThr {
			ts = append(ts, t)
		}
	}
	m := -1
	for i, md := range e.params.MaxDets {
		if md == s.maxDets {
			m = i
		}
	}
	if m < 0 {
		return -1
	}
	K := len(e.catIDs)
	// Values are gathered in numpy's C order (threshold, recall point,
	// category) so that numpyMean adds them up in the same order.
	var values []float64
	for _, t := range ts {
		if s.ap {
			for r := range numRecallThresholds {
				for k := range K {
					if v := e.precision[(((t*numRecallThresholds+r)*K+k)*numAreas+s.area)*numMaxDets+m]; v > -1 {
						values = append(values, v)
					}
				}
			}
			continue
		}
		for k := range K {
			if v := e.recall[((t*K+k)*numAreas+s.area)*numMaxDets+m]; v > -1 {
				values = append(values, v)
			}
		}
	}
	if len(values) == 0 {
		return -1
	}
	return numpySum(values) / float64(len(values))
}

// numpyBuffer is numpy's default ufunc buffer size: a reduction adds
// blocks of this many elements one after another.
const numpyBuffer = 8192

// numpySum adds values in the order numpy.add.reduce does for a contiguous
// float64 array, so means agree with numpy.mean to the last bit.
func numpySum(values []float64) float64 {
	sum := 0.0
	for len(values) > 0 {
		n := min(len(values), numpyBuffer)
		sum += pairwiseSum(values[:n])
		values = values[n:]
	}
	return sum
}

// pairwiseSum is numpy's pairwise summation: short runs are added in
// order, runs up to 128 with eight interleaved partial sums, longer runs
// are split in two at a multiple of eight.
func pairwiseSum(a []float64) float64 {
	n := len(a)
	switch {
	case n < 8:
		sum := 0.0
		for _, v := range a {
			sum += v
		}
		return sum
	case n <= 128:
		var r [8]float64
		copy(r[:], a[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := range r {
				r[j] += a[i+j]
			}
		}
		sum := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			sum += a[i]
		}
		return sum
	}
	half := n / 2
	half -= half % 8
	return pairwiseSum(a[:half]) + pairwiseSum(a[half:])
}

// Stats returns pycocotools' 12 summary numbers in its order: AP at
// IoU=0.50:0.95, 0.50 and 0.75, AP for small, medium and large objects,
// AR at the three maxDets, AR for small, medium and large objects.
// Undefined numbers (no ground truth in that setting) are -1.
func (e *Eval) Stats() [12]float64 { return e.stats }

// Summary returns the 12 lines pycocotools' summarize() prints, each ending
// in a newline, for example
// " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.373".
func (e *Eval) Summary() string {
	var b strings.Builder
	for i, s := range e.statSpecs() {
		title, kind := "Average Precision", "(AP)"
		if !s.ap {
			title, kind = "Average Recall", "(AR)"
		}
		iou := fmt.Sprintf("%.2f:%.2f", e.iouThrs[0], e.iouThrs[len(e.iouThrs)-1])
		if s.iouThr != 0 {
			iou = fmt.Sprintf("%.2f", s.iouThr)
		}
		fmt.Fprintf(&b, " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3d ] = %.3f\n", title, kind, iou, areaLabels[s.area], s.maxDets, e.stats[i])
	}
	return b.String()
}

// CategoryAP is one category's average precision over the IoU thresholds
// and recall points, for all areas at the largest maxDets: what mmdet's
// classwise table shows.
type CategoryAP struct {
	// CategoryID is the ground truth's category id.
	CategoryID int64
	// AP is NaN when the category has no ground truth to score against.
	AP float64
}

// CategoryAPs returns every ground-truth category's AP in increasing id
// order (the order pycocotools' precision table keeps).
func (e *Eval) CategoryAPs() []CategoryAP {
	K := len(e.catIDs)
	m := numMaxDets - 1
	out := make([]CategoryAP, K)
	for k, id := range e.catIDs {
		var values []float64
		for t := range e.iouThrs {
			for r := range numRecallThresholds {
				if v := e.precision[(((t*numRecallThresholds+r)*K+k)*numAreas+0)*numMaxDets+m]; v > -1 {
					values = append(values, v)
				}
			}
		}
		out[k] = CategoryAP{CategoryID: id, AP: math.NaN()}
		if len(values) > 0 {
			out[k].AP = numpySum(values) / float64(len(values))
		}
	}
	return out
}
