package dense_heads

import (
	"fmt"
	"math/rand/v2"

	"gorgonia.org/gorgonia"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/bbox"
	"github.com/razorgo/razor/models/nn"
)

// RPNTrainCfg is the `rpn` part of mmdet's train_cfg: how anchors become
// training targets.
type RPNTrainCfg struct {
	Assigner *bbox.MaxIoUAssigner `cfg:"assigner,required"`
	Sampler  *bbox.RandomSampler  `cfg:"sampler,required"`
	// AllowedBorder keeps anchors reaching at most this many pixels past
	// the image as candidates; negative: every valid anchor.
	AllowedBorder int `cfg:"allowed_border"`
	// PosWeight weighs positive anchors' classification (<= 0: 1).
	PosWeight float64 `cfg:"pos_weight"`
	// Debug is accepted and ignored, as in mmdet's configs.
	Debug bool `cfg:"debug"`
}

// Defaults are mmdet's.
func (c *RPNTrainCfg) Defaults() { c.AllowedBorder, c.PosWeight = -1, -1 }

// anchorTargets are one image's targets over the anchors of every level,
// concatenated level by level in GridAnchors order.
type anchorTargets struct {
	labels       []int // 0: object, 1: background
	labelWeights []float32
	boxTargets   [][4]float32
	boxWeights   []float32
	numPos       int
	numNeg       int
}

// targets assigns and samples one image's anchors as mmdet 2.x's
// AnchorHead._get_targets_single does for an RPN: anchors outside the
// allowed border (or invalid for the padded image) get no weight;
// sampled positives are labelled 0 with their box deltas, sampled
// negatives 1 (background).
func (h *RPNHead) targets(cfg *RPNTrainCfg, anchors []bbox.Box, valid []bool, meta models.ImageMeta, gts, ignore []bbox.Box, rng *rand.Rand) anchorTargets {
	n := len(anchors)
	var inside []int
	for i, a := range anchors {
		if !valid[i] {
			continue
		}
		if ab := float32(cfg.AllowedBorder); cfg.AllowedBorder >= 0 {
			w, hgt := float32(meta.ImgShape[1]), float32(meta.ImgShape[0])
			if !(a[0] >= -ab && a[1] >= -ab && a[2] < w+ab && a[3] < hgt+ab) {
				continue
			}
		}
		inside = append(inside, i)
	}
	t := anchorTargets{labels: make([]int, n), labelWeights: make([]float32, n), boxTargets: make([][4]float32, n), boxWeights: make([]float32, n)}
	for i := range t.labels {
		t.labels[i] = 1
	}
	cand := make([]bbox.Box, len(inside))
	for j, i := range inside {
		cand[j] = anchors[i]
	}
	assign := cfg.Assigner.Assign(cand, gts, ignore, nil)
	s := cfg.Sampler.Sample(assign, cand, gts, nil, rng)
	posW := float32(1)
	if cfg.PosWeight > 0 {
		posW = float32(cfg.PosWeight)
	}
	if len(s.PosInds) > 0 {
		deltas := h.coder.Encode(s.PosBoxes, s.PosGtBoxes)
		for k, j := range s.PosInds {
			i := inside[j]
			t.labels[i], t.labelWeights[i] = 0, posW
			t.boxTargets[i], t.boxWeights[i] = deltas[k], 1
		}
	}
	for _, j := range s.NegInds {
		t.labelWeights[inside[j]] = 1
	}
	t.numPos, t.numNeg = len(s.PosInds), len(s.NegInds)
	return t
}

// Loss adds the RPN's training losses for the batch to the graph, mmdet
// 2.x's RPNHead.loss: anchors of every level assigned and sampled per
// image (train_cfg.rpn), the objectness loss and the box loss of each
// level averaged over the batch's sampled anchors, summed over levels as
// loss_rpn_cls and loss_rpn_bbox. Draws come from in.Rand.
func (h *RPNHead) Loss(b *nn.Binding, cls, reg []*gorgonia.Node, in *models.Batch) (models.Losses, error) {
	if h.Train == nil {
		return nil, fmt.Errorf("%s: training needs model.train_cfg.rpn (assigner, sampler)", h.Path())
	}
	if h.lossCls == nil || h.lossBBox == nil {
		return nil, fmt.Errorf("%s: training needs loss_cls and loss_bbox", h.Path())
	}
	if in.Rand == nil {
		return nil, fmt.Errorf("%s: the training batch carries no random source for sampling anchors", h.Path())
	}
	nImg := len(in.Metas)
	if len(in.GTBoxes) != nImg {
		return nil, fmt.Errorf("%s: %d images with metas but %d lists of ground-truth boxes; the training pipeline must collect gt_bboxes", h.Path(), nImg, len(in.GTBoxes))
	}
	// Anchors and valid flags per level, then per image over all levels.
	type level struct {
		h, w, offset int
	}
	levels := make([]level, len(cls))
	var anchors []bbox.Box
	for l, c := range cls {
		s := c.Shape()
		levels[l] = level{s[2], s[3], len(anchors)}
		anchors = append(anchors, h.anchors.GridAnchors(l, s[2], s[3])...)
	}
	all := make([]anchorTargets, nImg)
	numPos, numNeg := 0, 0
	for i, m := range in.Metas {
		var valid []bool
		for l, lv := range levels {
			valid = append(valid, h.anchors.ValidFlags(l, lv.h, lv.w, m.PadShape[0], m.PadShape[1])...)
		}
		var ignore []bbox.Box
		if i < len(in.GTIgnore) {
			ignore = in.GTIgnore[i]
		}
		all[i] = h.targets(h.Train, anchors, valid, m, in.GTBoxes[i], ignore, in.Rand)
		// mmdet counts at least one of each per image.
		numPos += max(all[i].numPos, 1)
		numNeg += max(all[i].numNeg, 1)
	}
	avg := float64(numPos + numNeg)
	a := h.numAnchors
	var lossCls, lossBox *gorgonia.Node
	for l, lv := range levels {
		plane := lv.h * lv.w
		// Objectness: the level's N×A×H×W logits as one column, rows in
		// (image, anchor, y, x) order, with the targets in that order.
		col, err := gorgonia.Reshape(cls[l], []int{nImg * a * plane, 1})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h.Path(), err)
		}
		labels := make([]int, nImg*a*plane)
		weights := make([]float32, nImg*a*plane)
		// Box deltas in the N×4A×H×W layout of the head's output.
		boxT := make([]float32, nImg*4*a*plane)
		boxW := make([]float32, nImg*4*a*plane)
		for i := range nImg {
			t := all[i]
			for k := range a {
				for p := range plane {
					src := lv.offset + p*a + k
					row := (i*a+k)*plane + p
					labels[row], weights[row] = t.labels[src], t.labelWeights[src]
					for c := range 4 {
						dst := ((i*4*a)+k*4+c)*plane + p
						boxT[dst], boxW[dst] = t.boxTargets[src][c], t.boxWeights[src]
					}
				}
			}
		}
		lc, err := h.lossCls.Loss(b, col, labels, weights, avg)
		if err != nil {
			return nil, fmt.Errorf("%s.loss_cls, level %d: %w", h.Path(), l, err)
		}
		lb, err := h.lossBBox.Loss(b, reg[l], boxT, boxW, avg)
		if err != nil {
			return nil, fmt.Errorf("%s.loss_bbox, level %d: %w", h.Path(), l, err)
		}
		if lossCls == nil {
			lossCls, lossBox = lc, lb
			continue
		}
		if lossCls, err = gorgonia.Add(lossCls, lc); err != nil {
			return nil, err
		}
		if lossBox, err = gorgonia.Add(lossBox, lb); err != nil {
			return nil, err
		}
	}
	return models.Losses{{Name: "loss_rpn_cls", Node: lossCls}, {Name: "loss_rpn_bbox", Node: lossBox}}, nil
}
