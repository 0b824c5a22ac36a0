package metrics

import (
	"cmp"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// Params chooses the evaluation settings that users change in pycocotools;
// everything else (101 recall points, the all/small/medium/large area
// ranges) is fixed to pycocotools' defaults.
type Params struct {
	// MaxDets are the three per-image detection limits, strictly
	// ascending. The zero value means pycocotools' 1, 10, 100; mmdet's
	// CocoDataset.evaluate uses its proposal_nums, 100, 300, 1000.
	MaxDets [3]int
	// IoUThrs are the IoU thresholds (mmdet's iou_thrs): nil means
	// pycocotools' 0.50:0.05:0.95. A summary number asking for IoU 0.50 or
	// 0.75 is -1 when that exact threshold is not listed, as in pycocotools.
	IoUThrs []float64
}

// DefaultParams returns pycocotools' bbox settings (maxDets 1, 10, 100).
func DefaultParams() Params { return Params{MaxDets: [3]int{1, 10, 100}} }

// maxIoUThresholds bounds len(Params.IoUThrs): a detection's matches at
// every threshold are bits of a uint16.
const maxIoUThresholds = 16

func (p Params) resolved() (Params, error) {
	if p.MaxDets == ([3]int{}) {
		p.MaxDets = DefaultParams().MaxDets
	}
	if p.MaxDets[0] < 1 || p.MaxDets[0] >= p.MaxDets[1] || p.MaxDets[1] >= p.MaxDets[2] {
		return p, fmt.Errorf("coco eval: maxDets %v are invalid; they must be positive and strictly ascending, such as [1 10 100]", p.MaxDets)
	}
	if p.IoUThrs == nil {
		p.IoUThrs = linspace(0.5, 0.95, numIoUThresholds)
		return p, nil
	}
	if len(p.IoUThrs) == 0 || len(p.IoUThrs) > maxIoUThresholds {
		return p, fmt.Errorf("coco eval: %d IoU thresholds given; give between 1 and %d, such as [0.5, 0.75]", len(p.IoUThrs), maxIoUThresholds)
	}
	for _, t := range p.IoUThrs {
		if !(t >= 0 && t <= 1) {
			return p, fmt.Errorf("coco eval: IoU threshold %v is not between 0 and 1", t)
		}
	}
	p.IoUThrs = slices.Clone(p.IoUThrs)
	return p, nil
}

const (
	numIoUThresholds    = 10  // int(round((0.95 - 0.5) / 0.05)) + 1, as pycocotools computes it
	numRecallThresholds = 101 // int(round((1.00 - 0.0) / 0.01)) + 1
	numAreas            = 4
	numMaxDets          = 3
)

// areaRanges are pycocotools' [lo, hi] bounds, both inclusive, for the
// labels in areaLabels: 0..1e5², 0..32², 32²..96², 96²..1e5².
var (
	areaRanges = [numAreas][2]float64{{0, 1e10}, {0, 32 * 32}, {32 * 32, 96 * 96}, {96 * 96, 1e10}}
	areaLabels = [numAreas]string{"all", "small", "medium", "large"}
)

// linspace reproduces numpy.linspace(start, stop, num) bit for bit: each
// point is i*step + start with step = (stop-start)/(num-1), rounded after
// the product, and the last point is stop itself. Thresholds must be these
// exact doubles because matching and searchsorted compare against them.
func linspace(start, stop float64, num int) []float64 {
	step := (stop - start) / float64(num-1)
	out := make([]float64, num)
	for i := range out {
		out[i] = float64(float64(i)*step) + start
	}
	out[num-1] = stop
	return out
}

// Eval is a finished COCO bbox evaluation: the accumulated precision and
// recall tables and the 12 summary numbers.
type Eval struct {
	params  Params
	iouThrs []float64
	recThrs []float64
	catIDs  []int64
	// precision is [T][R][K][A][M] and recall [T][K][A][M], -1 where a
	// setting has no ground truth to recall, as in pycocotools.
	precision []float64
	recall    []float64
	stats     [12]float64
}

// EvaluateBBox scores detections against ground truth exactly as
// pycocotools' COCOeval with iouType "bbox" does after COCO.loadRes:
// every image and category of gt is evaluated; detections are ranked by
// score with a stable sort (ties keep their order in dets), at most the
// largest maxDets per image and category are kept; a detection's area is
// its width times height, a ground truth's area is its Area field; crowd
// ground truth may absorb many detections and is matched by intersection
// over the detection's area; categories without ground truth count as
// undefined (-1) and are left out of the means.
//
// One pycocotools quirk is kept on purpose, so numbers agree with it: a
// detection matched to a ground-truth annotation whose id is 0 is treated
// as unmatched (pycocotools stores the matched id and tests it for zero).
//
// Every detection must name an image and a category of gt and carry a
// finite box and score; the first one that does not is reported as an
// error and nothing is evaluated.
func EvaluateBBox(gt *GroundTruth, dets []Detection, p Params) (*Eval, error) {
	if gt == nil {
		return nil, errors.New("coco eval: the ground truth is nil; load it with LoadCOCOGT or build it with NewGroundTruth")
	}
	p, err := p.resolved()
	if err != nil {
		return nil, err
	}
	// GroundTruth's fields are exported and may have been edited since it
	// was built; validating again keeps the indexes below trustworthy.
	gt, err = NewGroundTruth(gt.Source, gt.Images, gt.Annotations, gt.Categories)
	if err != nil {
		return nil, fmt.Errorf("coco eval: %w", err)
	}
	for i, d := range dets {
		if err := gt.checkDetection(d); err != nil {
			return nil, fmt.Errorf("coco eval: detection %d: %w", i, err)
		}
	}
	e := &Eval{
		params:  p,
		iouThrs: p.IoUThrs,
		recThrs: linspace(0, 1, numRecallThresholds),
	}
	for _, c := range gt.Categories {
		e.catIDs = append(e.catIDs, c.ID)
	}
	slices.Sort(e.catIDs)
	K := len(e.catIDs)
	T := len(e.iouThrs)
	e.precision = make([]float64, T*numRecallThresholds*K*numAreas*numMaxDets)
	e.recall = make([]float64, T*K*numAreas*numMaxDets)
	for i := range e.precision {
		e.precision[i] = -1
	}
	for i := range e.recall {
		e.recall[i] = -1
	}

	imgIDs := make([]int64, len(gt.Images))
	for i, img := range gt.Images {
		imgIDs[i] = img.ID
	}
	slices.Sort(imgIDs)
	imgPos := make(map[int64]int32, len(imgIDs))
	for i, id := range imgIDs {
		imgPos[id] = int32(i)
	}
	catPos := make(map[int64]int32, K)
	for k, id := range e.catIDs {
		catPos[id] = int32(k)
	}

	gtGroups := groupByCategoryImage(len(gt.Annotations), func(i int) (int32, int32) {
		a := &gt.Annotations[i]
		return catPos[a.CategoryID], imgPos[a.ImageID]
	})
	dtGroups := groupByCategoryImage(len(dets), func(i int) (int32, int32) {
		d := &dets[i]
		return catPos[d.CategoryID], imgPos[d.ImageID]
	})

	gtByCat, dtByCat := splitByCategory(gtGroups, K), splitByCategory(dtGroups, K)

	// Categories are independent, so workers take them in turn; each owns
	// its scratch space and writes only its own category's table entries.
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), K) {
		wg.Go(func() {
			w := &categoryWork{eval: e, gt: gt, dets: dets}
			for k := int(next.Add(1) - 1); k < K; k = int(next.Add(1) - 1) {
				w.evalCategory(k, gtByCat[k], dtByCat[k])
			}
		})
	}
	wg.Wait()
	e.stats = e.summaryStats()
	return e, nil
}

// group is the members (indices, in input order) of one category on one image.
type group struct {
	cat, img int32
	members  []int
}

// groupByCategoryImage buckets n items by (category position, image
// position), ordered by category then image, keeping input order inside
// each bucket as pycocotools' per-image lists do.
func groupByCategoryImage(n int, key func(i int) (cat, img int32)) []group {
	type keyed struct {
		cat, img int32
		i        int
	}
	items := make([]keyed, n)
	for i := range items {
		c, m := key(i)
		items[i] = keyed{c, m, i}
	}
	slices.SortStableFunc(items, func(a, b keyed) int {
		if c := cmp.Compare(a.cat, b.cat); c != 0 {
			return c
		}
		return cmp.Compare(a.img, b.img)
	})
	members := make([]int, n)
	var groups []group
	for i, it := range items {
		members[i] = it.i
		if len(groups) == 0 || groups[len(groups)-1].cat != it.cat || groups[len(groups)-1].img != it.img {
			groups = append(groups, group{cat: it.cat, img: it.img, members: members[i : i+1 : i+1]})
			continue
		}
		last := &groups[len(groups)-1]
		last.members = members[i-len(last.members) : i+1 : i+1]
	}
	return groups
}

// splitByCategory cuts groups, ordered by category, into one run per
// category position.
func splitByCategory(groups []group, K int) [][]group {
	out := make([][]group, K)
	for start := 0; start < len(groups); {
		end := start
		for end < len(groups) && groups[end].cat == groups[start].cat {
			end++
		}
		out[groups[start].cat] = groups[start:end]
		start = end
	}
	return out
}

// scoredDet is one kept detection of a category, with the outcome of
// matching it at every IoU threshold (bit t) for every area range.
type scoredDet struct {
	score   float64
	rank    int32 // position in its image's score order
	matched [numAreas]uint16
	ignored [numAreas]uint16
}

// categoryWork holds one category's matched detections across images and
// scratch space reused from image to image.
type categoryWork struct {
	eval *Eval
	gt   *GroundTruth
	dets []Detection

	kept  []scoredDet
	npig  [numAreas]int
	ious  []float64
	order []int
	gtIg  []bool
	taken []bool

	sorted []int
	ranked []scoredDet // kept, best score first
	rc, pr []float64
}

// evalCategory matches category k on every image where it has ground
// truth or detections (both runs are ordered by image) and accumulates it.
func (w *categoryWork) evalCategory(k int, gts, dts []group) {
	w.kept = w.kept[:0]
	w.npig = [numAreas]int{}
	gi, di := 0, 0
	for gi < len(gts) || di < len(dts) {
		switch {
		case di == len(dts) || gi < len(gts) && gts[gi].img < dts[di].img:
			w.addImage(gts[gi].members, nil)
			gi++
		case gi == len(gts) || dts[di].img < gts[gi].img:
			w.addImage(nil, dts[di].members)
			di++
		default:
			w.addImage(gts[gi].members, dts[di].members)
			gi++
			di++
		}
	}
	w.accumulate(k)
}

// addImage matches one image's detections of the category against its
// ground truth, as pycocotools' computeIoU and evaluateImg do.
func (w *categoryWork) addImage(gtIdx, dtIdx []int) {
	maxDet := w.eval.params.MaxDets[numMaxDets-1]
	dt := slices.Clone(dtIdx)
	slices.SortStableFunc(dt, func(a, b int) int {
		return cmp.Compare(w.dets[b].Score, w.dets[a].Score)
	})
	if len(dt) > maxDet {
		dt = dt[:maxDet]
	}
	G, D := len(gtIdx), len(dt)

	w.ious = slices.Grow(w.ious[:0], D*G)[:D*G]
	for di, d := range dt {
		for gi, g := range gtIdx {
			a := &w.gt.Annotations[g]
			w.ious[di*G+gi] = boxIoU(w.dets[d].BBox, a.BBox, a.IsCrowd)
		}
	}

	base := len(w.kept)
	for r, d := range dt {
		w.kept = append(w.kept, scoredDet{score: w.dets[d].Score, rank: int32(r)})
	}
	kept := w.kept[base:]

	w.gtIg = slices.Grow(w.gtIg[:0], G)[:G]
	w.taken = slices.Grow(w.taken[:0], G)[:G]
	for a, rng := range areaRanges {
		w.order = w.order[:0]
		for gi, g := range gtIdx {
			ann := &w.gt.Annotations[g]
			w.gtIg[gi] = ann.IsCrowd || ann.Area < rng[0] || ann.Area > rng[1]
			if !w.gtIg[gi] {
				w.order = append(w.order, gi)
				w.npig[a]++
			}
		}
		for gi := range gtIdx {
			if w.gtIg[gi] {
				w.order = append(w.order, gi)
			}
		}
		for t, thr := range w.eval.iouThrs {
			bit := uint16(1) << t
			clear(w.taken)
			for di := range dt {
				best := min(thr, 1-1e-10)
				m := -1
				for _, gi := range w.order {
					if w.taken[gi] && !w.gt.Annotations[gtIdx[gi]].IsCrowd {
						continue
					}
					// Once matched to a regular box, ignored boxes (sorted
					// last) cannot take the detection away.
					if m > -1 && !w.gtIg[m] && w.gtIg[gi] {
						break
					}
					if iou := w.ious[di*G+gi]; iou >= best {
						best, m = iou, gi
					}
				}
				if m == -1 {
					continue
				}
				w.taken[m] = true
				if w.gtIg[m] {
					kept[di].ignored[a] |= bit
				}
				if w.gt.Annotations[gtIdx[m]].ID != 0 {
					kept[di].matched[a] |= bit
				}
			}
		}
		for di, d := range dt {
			b := w.dets[d].BBox
			area := float64(b[2] * b[3])
			if area < rng[0] || area > rng[1] {
				kept[di].ignored[a] |= ^kept[di].matched[a] & uint16(1<<len(w.eval.iouThrs)-1)
			}
		}
	}
}

// boxIoU is pycocotools' bbIou for one [x, y, w, h] pair: intersection over
// union, or over the detection's area when the ground truth is a crowd.
// The explicit float64 conversions stop fused multiply-adds so that every
// product rounds as it does in the C original.
func boxIoU(d, g [4]float64, crowd bool) float64 {
	w := min(float64(d[2]+d[0]), float64(g[2]+g[0])) - max(d[0], g[0])
	if w <= 0 {
		return 0
	}
	h := min(float64(d[3]+d[1]), float64(g[3]+g[1])) - max(d[1], g[1])
	if h <= 0 {
		return 0
	}
	inter := float64(w * h)
	da := float64(d[2] * d[3])
	if crowd {
		return inter / da
	}
	ga := float64(g[2] * g[3])
	return inter / (da + ga - inter)
}

// accumulate fills category k's precision and recall, as pycocotools'
// accumulate does: detections of all images are ranked by score with a
// stable sort (image order, then rank, break ties), precision is made
// monotone from the right and read at the first rank whose recall reaches
// each recall threshold.
func (w *categoryWork) accumulate(k int) {
	e := w.eval
	K := len(e.catIDs)
	w.sorted = w.sorted[:0]
	for i := range w.kept {
		w.sorted = append(w.sorted, i)
	}
	slices.SortStableFunc(w.sorted, func(a, b int) int {
		return cmp.Compare(w.kept[b].score, w.kept[a].score)
	})
	w.ranked = w.ranked[:0]
	for _, i := range w.sorted {
		w.ranked = append(w.ranked, w.kept[i])
	}
	for a := range numAreas {
		if w.npig[a] == 0 {
			continue
		}
		npig := float64(w.npig[a])
		for m, maxDet := range e.params.MaxDets {
			for t := range e.iouThrs {
				bit := uint16(1) << t
				w.rc, w.pr = w.rc[:0], w.pr[:0]
				tp, fp := 0, 0
				for i := range w.ranked {
					d := &w.ranked[i]
					if int(d.rank) >= maxDet {
						continue
					}
					if d.ignored[a]&bit == 0 {
						if d.matched[a]&bit != 0 {
							tp++
						} else {
							fp++
						}
					}
					w.rc = append(w.rc, float64(tp)/npig)
					w.pr = append(w.pr, float64(tp)/(float64(fp+tp)+epsilon))
				}
				nd := len(w.rc)
				rIdx := ((t*K+k)*numAreas+a)*numMaxDets + m
				e.recall[rIdx] = 0
				if nd > 0 {
					e.recall[rIdx] = w.rc[nd-1]
				}
				for i := nd - 1; i > 0; i-- {
					if w.pr[i] > w.pr[i-1] {
						w.pr[i-1] = w.pr[i]
					}
				}
				i := 0
				for r, thr := range e.recThrs {
					for i < nd && w.rc[i] < thr {
						i++
					}
					q := 0.0
					if i < nd {
						q = w.pr[i]
					}
					e.precision[(((t*numRecallThresholds+r)*K+k)*numAreas+a)*numMaxDets+m] = q
				}
			}
		}
	}
}

// epsilon is numpy.spacing(1) = 2^-52, which pycocotools adds to
// precision's denominator.
const epsilon = 0x1p-52
