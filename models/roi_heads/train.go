package roi_heads

import (
	"fmt"

	"gorgonia.org/gorgonia"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/bbox"
	"github.com/razorgo/razor/models/losses"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/models/ops"
)

// RCNNTrainCfg is the `rcnn` part of mmdet's train_cfg: how proposals
// become the box head's training samples.
type RCNNTrainCfg struct {
	Assigner *bbox.MaxIoUAssigner `cfg:"assigner,required"`
	Sampler  *bbox.RandomSampler  `cfg:"sampler,required"`
	// PosWeight weighs positive samples' classification (<= 0: 1).
	PosWeight float64 `cfg:"pos_weight"`
	// Debug is accepted and ignored, as in mmdet's configs.
	Debug bool `cfg:"debug"`
}

// Defaults are mmdet's.
func (c *RCNNTrainCfg) Defaults() { c.PosWeight = -1 }

// ForwardTrain adds the box branch's training losses for the batch,
// mmdet 2.x's StandardRoIHead.forward_train with BBoxHead.loss: each
// image's proposals assigned to its ground truths and sampled (ground
// truths added as proposals when the sampler says so), the samples
// pooled and run through the box head, softmax cross-entropy over every
// sample averaged by the samples with weight (loss_cls), the top-1
// accuracy in percent (acc), and the box loss of the positives' deltas
// for their own class averaged over all samples (loss_bbox). Draws come
// from in.Rand.
func (h *StandardRoIHead) ForwardTrain(b *nn.Binding, feats []*gorgonia.Node, proposals [][]bbox.Box, in *models.Batch) (models.Losses, error) {
	if h.Train == nil {
		return nil, fmt.Errorf("%s: training needs model.train_cfg.rcnn (assigner, sampler)", h.Path())
	}
	bh := h.head
	if bh.lossCls == nil || bh.lossBBox == nil {
		return nil, fmt.Errorf("%s: training needs bbox_head.loss_cls and loss_bbox", h.Path())
	}
	if bh.lossCls.UseSigmoid() {
		return nil, fmt.Errorf("%s.bbox_head.loss_cls.use_sigmoid: true is not supported; the box head scores classes with a softmax", h.Path())
	}
	if in.Rand == nil {
		return nil, fmt.Errorf("%s: the training batch carries no random source for sampling RoIs", h.Path())
	}
	nc := bh.numClasses
	posW := float32(1)
	if h.Train.PosWeight > 0 {
		posW = float32(h.Train.PosWeight)
	}
	var rois []ops.RoI
	var labels []int
	var labelWeights []float32
	type posTarget struct {
		row, label int
		delta      [4]float32
	}
	var pos []posTarget
	for i, props := range proposals {
		var ignore []bbox.Box
		if i < len(in.GTIgnore) {
			ignore = in.GTIgnore[i]
		}
		gts, gtLabels := in.GTBoxes[i], in.GTLabels[i]
		for _, l := range gtLabels {
			if l < 0 || l >= nc {
				return nil, fmt.Errorf("%s: image %d has a ground-truth label %d outside the box head's %d classes", h.Path(), i, l, nc)
			}
		}
		assign := h.Train.Assigner.Assign(props, gts, ignore, gtLabels)
		s := h.Train.Sampler.Sample(assign, props, gts, gtLabels, in.Rand)
		deltas := bh.coder.Encode(s.PosBoxes, s.PosGtBoxes)
		for k, box := range s.PosBoxes {
			pos = append(pos, posTarget{row: len(rois), label: s.PosGtLabels[k], delta: deltas[k]})
			rois = append(rois, ops.RoI{Batch: i, Box: box})
			labels = append(labels, s.PosGtLabels[k])
			labelWeights = append(labelWeights, posW)
		}
		for _, box := range s.NegBoxes {
			rois = append(rois, ops.RoI{Batch: i, Box: box})
			labels = append(labels, nc)
			labelWeights = append(labelWeights, 1)
		}
	}
	if len(rois) == 0 {
		return nil, fmt.Errorf("%s: no RoI was sampled in this batch (no proposals and no ground truths)", h.Path())
	}
	cls, reg, err := h.ForwardBoxes(b, feats, rois)
	if err != nil {
		return nil, err
	}
	withWeight := 0
	for _, w := range labelWeights {
		if w > 0 {
			withWeight++
		}
	}
	lossCls, err := bh.lossCls.Loss(b, cls, labels, labelWeights, float64(max(withWeight, 1)))
	if err != nil {
		return nil, fmt.Errorf("%s.bbox_head.loss_cls: %w", h.Path(), err)
	}
	// The positives' deltas for their own class, as targets in the head's
	// K×4C (or K×4) layout with weight one there and zero elsewhere: the
	// weighted sum is the loss of the selected deltas.
	width := reg.Shape()[1]
	target := make([]float32, len(rois)*width)
	weight := make([]float32, len(rois)*width)
	for _, p := range pos {
		col := 4 * p.label
		if bh.classAgnostic {
			col = 0
		}
		for c := range 4 {
			target[p.row*width+col+c] = p.delta[c]
			weight[p.row*width+col+c] = 1
		}
	}
	lossBox, err := bh.lossBBox.Loss(b, reg, target, weight, float64(len(rois)))
	if err != nil {
		return nil, fmt.Errorf("%s.bbox_head.loss_bbox: %w", h.Path(), err)
	}
	acc, err := h.accuracy(b, cls, labels)
	if err != nil {
		return nil, err
	}
	return models.Losses{{Name: "loss_cls", Node: lossCls}, {Name: "acc", Node: acc}, {Name: "loss_bbox", Node: lossBox}}, nil
}

// accuracy is a node that reads the class logits once the graph has run
// and gives mmdet's top-1 accuracy over the samples, in percent; it
// carries no gradient.
func (h *StandardRoIHead) accuracy(b *nn.Binding, cls *gorgonia.Node, labels []int) (*gorgonia.Node, error) {
	acc, err := ops.Observe(cls, "acc", func(v []float32) float32 {
		return float32(losses.Accuracy(v, len(labels), cls.Shape()[1], labels))
	})
	if err != nil {
		return nil, fmt.Errorf("%s: accuracy: %w", h.Path(), err)
	}
	return acc, nil
}
