package bbox

import (
	"fmt"
	"slices"
)

// NMS is torchvision.ops.nms, and mmcv 1.x's nms with offset 0: boxes are
// visited in descending score order, and a box is dropped when its IoU
// with an already kept box is strictly greater than iouThr. Areas are
// (x2-x1)*(y2-y1); an IoU of 0/0 (zero-area boxes) is NaN and drops
// nothing. It returns the kept indices in visiting order.
//
// Equal scores are visited in index order: torchvision's kernels ask torch
// for a stable sort. mmcv 1.x's CPU kernel asks for torch's default sort
// instead, which on the CPU permutes ties among more than 16 scores (see
// sortDescending); the stable order is the deterministic one both
// torchvision's CPU and CUDA kernels give. The IoU is compared with iouThr
// in float32, as mmcv's kernel does; torchvision compares in float64,
// which differs only for an IoU exactly equal to float32(thr) where that
// rounds above thr (1/3 and 0.3 do). boxes and scores must have the same
// length; a mismatch panics.
func NMS(boxes []Box, scores []float32, iouThr float32) []int {
	return nmsTop(boxes, scores, iouThr, 0)
}

// NMSTop is NMS(boxes, scores, iouThr)[:limit] (all of it when fewer are
// kept), and stops as soon as limit boxes are kept: boxes are kept in
// visiting order, so the first limit of them do not depend on the rest.
// limit <= 0 keeps all.
func NMSTop(boxes []Box, scores []float32, iouThr float32, limit int) []int {
	return nmsTop(boxes, scores, iouThr, limit)
}

func nmsTop(boxes []Box, scores []float32, iouThr float32, limit int) []int {
	if len(boxes) != len(scores) {
		panic(fmt.Sprintf("bbox.NMS: %d boxes but %d scores", len(boxes), len(scores)))
	}
	if limit <= 0 {
		limit = len(boxes)
	}
	order := stableDescending(scores)
	// The boxes in visiting order, one array per coordinate: the inner
	// loop reads them in sequence, and a suppressed box is one flag.
	n := len(order)
	x1, y1, x2, y2 := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	areas := make([]float32, n)
	for k, i := range order {
		b := boxes[i]
		x1[k], y1[k], x2[k], y2[k] = b[0], b[1], b[2], b[3]
		areas[k] = area(b)
	}
	suppressed := make([]bool, n)
	keep := make([]int, 0, min(n, limit))
	for k := range n {
		if suppressed[k] {
			continue
		}
		keep = append(keep, order[k])
		if len(keep) == limit {
			break
		}
		ax1, ay1, ax2, ay2, aa := x1[k], y1[k], x2[k], y2[k], areas[k]
		for j := k + 1; j < n; j++ {
			if suppressed[j] {
				continue
			}
			w := max(0, min(ax2, x2[j])-max(ax1, x1[j]))
			h := max(0, min(ay2, y2[j])-max(ay1, y1[j]))
			// The conversions round each product and sum as mmcv's kernel
			// does: Go may otherwise fuse them into one multiply-add.
			inter := float32(w * h)
			if inter/(float32(aa+areas[j])-inter) > iouThr {
				suppressed[j] = true
			}
		}
	}
	return keep
}

// DefaultSplitThr is mmcv's batched_nms split_thr default: below this many
// boxes the classes are separated by offsets, at or above it they are
// suppressed class by class.
const DefaultSplitThr = 10000

// NMSOptions is the `nms:` mapping of mmdet 2.x's test_cfg, the nms_cfg
// mmcv 1.x's batched_nms reads: {type: nms, iou_threshold: 0.7}. A
// detector options struct holding a field of this type builds and checks
// it through NMSConfigs; decoded by config.Decode alone, call Validate.
type NMSOptions struct {
	// Type names the suppression; only "nms" is supported.
	Type string `cfg:"type"`
	// IoUThreshold drops a box whose IoU with a kept box exceeds it.
	IoUThreshold float64 `cfg:"iou_threshold,required"`
	// Offset is mmcv's +1 box-size convention; only 0 (mmdet 2.x) is
	// supported.
	Offset int `cfg:"offset"`
	// ClassAgnostic suppresses across classes (batched_nms pops it from
	// nms_cfg).
	ClassAgnostic bool `cfg:"class_agnostic"`
	// SplitThr is the box count from which batched NMS runs class by
	// class instead of offsetting boxes (default 10000).
	SplitThr int `cfg:"split_thr"`
}

// Defaults sets mmcv's defaults.
func (o *NMSOptions) Defaults() {
	o.Type = "nms"
	o.SplitThr = DefaultSplitThr
}

// Validate reports the first bad setting, naming its key.
func (o NMSOptions) Validate() error {
	switch {
	case o.Type != "nms":
		return fmt.Errorf("type %q is not supported; use type: nms", o.Type)
	case !(o.IoUThreshold >= 0 && o.IoUThreshold <= 1):
		return fmt.Errorf("iou_threshold %v must lie in [0, 1]", o.IoUThreshold)
	case o.Offset != 0:
		return fmt.Errorf("offset %d is not supported; boxes here have no +1 convention, so set offset: 0 or remove it", o.Offset)
	case o.SplitThr < 0:
		return fmt.Errorf("split_thr %d must not be negative", o.SplitThr)
	}
	return nil
}

// nmsArgs is NMSOptions as NMSConfigs decodes it: a type of its own, so
// decoding it does not re-enter the registry that NMSOptions fields use.
type nmsArgs NMSOptions

// Defaults sets mmcv's defaults.
func (a *nmsArgs) Defaults() { (*NMSOptions)(a).Defaults() }

// newNMSOptions is the NMSConfigs builder: the registry has consumed the
// `type` key, so the type is the registered name.
func newNMSOptions(a nmsArgs) (NMSOptions, error) {
	o := NMSOptions(a)
	o.Type = "nms"
	return o, o.Validate()
}

// BatchedNMS is mmcv 1.x's batched_nms with the default split_thr: NMS
// that never suppresses across different idxs (unless classAgnostic). It
// returns the kept indices in descending score order.
func BatchedNMS(boxes []Box, scores []float32, idxs []int, iouThr float32, classAgnostic bool) []int {
	return batchedNMS(boxes, scores, idxs, iouThr, classAgnostic, DefaultSplitThr, 0)
}

// BatchedNMSTop is BatchedNMS(...)[:limit] (all of it when fewer are
// kept); below DefaultSplitThr boxes it stops as soon as limit boxes are
// kept, as an RPN that keeps max_per_img proposals needs no more.
func BatchedNMSTop(boxes []Box, scores []float32, idxs []int, iouThr float32, classAgnostic bool, limit int) []int {
	keep := batchedNMS(boxes, scores, idxs, iouThr, classAgnostic, DefaultSplitThr, limit)
	if limit > 0 && len(keep) > limit {
		keep = keep[:limit]
	}
	return keep
}

// Batched runs mmcv 1.x's batched_nms with these settings (the IoU
// threshold rounded to float32 as mmcv passes it to its kernel).
func (o NMSOptions) Batched(boxes []Box, scores []float32, idxs []int) []int {
	return batchedNMS(boxes, scores, idxs, float32(o.IoUThreshold), o.ClassAgnostic, o.SplitThr, 0)
}

// batchedNMS follows batched_nms. Below splitThr boxes, each box is moved
// by idx*(max coordinate+1) so boxes of different idxs cannot overlap, and
// one NMS runs; the IoUs are those of the moved boxes, rounding included.
// From splitThr on, NMS runs per idx (on the moved boxes too, as mmcv
// does) and the survivors, taken in index order, are sorted by score with
// torch's default CPU sort, ties permuted as it permutes them
// (sortDescending). Kept indices refer to the original boxes. A positive
// limit stops the single NMS after limit kept boxes (the caller keeps no
// more); the per-idx path ignores it.
func batchedNMS(boxes []Box, scores []float32, idxs []int, iouThr float32, classAgnostic bool, splitThr, limit int) []int {
	if len(boxes) != len(scores) || len(boxes) != len(idxs) {
		panic(fmt.Sprintf("bbox.BatchedNMS: %d boxes, %d scores and %d idxs; they must match", len(boxes), len(scores), len(idxs)))
	}
	if len(boxes) == 0 {
		return []int{}
	}
	moved := boxes
	if !classAgnostic {
		maxCoord := boxes[0][0]
		for _, b := range boxes {
			for _, c := range b {
				maxCoord = max(maxCoord, c)
			}
		}
		step := maxCoord + 1
		moved = make([]Box, len(boxes))
		for i, b := range boxes {
			off := float32(idxs[i]) * step
			moved[i] = Box{b[0] + off, b[1] + off, b[2] + off, b[3] + off}
		}
	}
	if len(boxes) < splitThr {
		return nmsTop(moved, scores, iouThr, limit)
	}
	ids := slices.Clone(idxs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	kept := make([]bool, len(boxes))
	for _, id := range ids {
		var members []int
		for i, x := range idxs {
			if x == id {
				members = append(members, i)
			}
		}
		sub := make([]Box, len(members))
		subScores := make([]float32, len(members))
		for k, i := range members {
			sub[k], subScores[k] = moved[i], scores[i]
		}
		for _, k := range NMS(sub, subScores, iouThr) {
			kept[members[k]] = true
		}
	}
	var keep []int
	var keptScores []float32
	for i, k := range kept {
		if k {
			keep = append(keep, i)
			keptScores = append(keptScores, scores[i])
		}
	}
	out := make([]int, len(keep))
	for r, k := range sortDescending(keptScores) {
		out[r] = keep[k]
	}
	return out
}

// Detection is one box that survived MulticlassNMS.
type Detection struct {
	// Box is the class's box.
	Box Box
	// Score is the class score.
	Score float32
	// Label is the class, 0..numClasses-1.
	Label int
}

// MulticlassNMS is mmdet 2.x's multiclass_nms with nms_cfg {type: nms,
// iou_threshold: iouThr}: see NMSOptions.Multiclass.
func MulticlassNMS(boxes []Box, scores []float32, numClasses int, scoreThr, iouThr float32, maxNum int) []Detection {
	o := NMSOptions{Type: "nms", IoUThreshold: float64(iouThr), SplitThr: DefaultSplitThr}
	dets, err := o.multiclass(boxes, scores, numClasses, scoreThr, iouThr, maxNum)
	if err != nil {
		panic("bbox.MulticlassNMS: " + err.Error())
	}
	return dets
}

// Multiclass is mmdet 2.x's multiclass_nms with these settings. scores
// holds N rows of numClasses+1 scores, the background last (dropped).
// boxes holds N*numClasses boxes, row-major (proposal, class), or N boxes
// shared by all classes. Every (proposal, class) pair whose score is
// strictly above scoreThr (compared in float32, as torch does) enters
// batched NMS with the class as its idx; the first maxNum survivors (all
// when maxNum <= 0) are returned in descending score order. Shapes that
// do not fit are an error.
func (o NMSOptions) Multiclass(boxes []Box, scores []float32, numClasses int, scoreThr float32, maxNum int) ([]Detection, error) {
	return o.multiclass(boxes, scores, numClasses, scoreThr, float32(o.IoUThreshold), maxNum)
}

func (o NMSOptions) multiclass(boxes []Box, scores []float32, numClasses int, scoreThr, iouThr float32, maxNum int) ([]Detection, error) {
	if numClasses <= 0 {
		return nil, fmt.Errorf("numClasses %d must be positive", numClasses)
	}
	if len(scores)%(numClasses+1) != 0 {
		return nil, fmt.Errorf("%d scores are not rows of numClasses+1 = %d", len(scores), numClasses+1)
	}
	n := len(scores) / (numClasses + 1)
	shared := len(boxes) == n
	if !shared && len(boxes) != n*numClasses {
		return nil, fmt.Errorf("%d boxes for %d proposals and %d classes; give %d (per class) or %d (shared)", len(boxes), n, numClasses, n*numClasses, n)
	}
	var cand []Box
	var candScores []float32
	var labels []int
	for p := range n {
		for c := range numClasses {
			s := scores[p*(numClasses+1)+c]
			if !(s > scoreThr) {
				continue
			}
			b := boxes[p]
			if !shared {
				b = boxes[p*numClasses+c]
			}
			cand = append(cand, b)
			candScores = append(candScores, s)
			labels = append(labels, c)
		}
	}
	keep := batchedNMS(cand, candScores, labels, iouThr, o.ClassAgnostic, o.SplitThr, 0)
	if maxNum > 0 && len(keep) > maxNum {
		keep = keep[:maxNum]
	}
	out := make([]Detection, len(keep))
	for r, k := range keep {
		out[r] = Detection{Box: cand[k], Score: candScores[k], Label: labels[k]}
	}
	return out, nil
}
