// Package detectors holds whole detection models (mmdet's detectors):
// FasterRCNN, a two-stage detector of backbone, neck, RPN head and RoI
// head, registered in models.Models under mmdet's name so detection
// configs build it.
//
// A two-stage forward runs in one graph: the binding evaluates the first
// stage (backbone, neck, RPN head), the RPN's proposals are computed from
// those values in plain Go with no gradient, and the second stage (RoI
// pooling and the box head) is added to the same graph.
//
// It imports models and its sub-packages, config and registry.
package detectors

import (
	"fmt"
	"math/rand/v2"

	"gorgonia.org/gorgonia"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/bbox"
	"github.com/razorgo/razor/models/dense_heads"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/models/roi_heads"
	"github.com/razorgo/razor/registry"
)

// FasterRCNNOptions are mmdet 2.x's FasterRCNN (TwoStageDetector) keys.
type FasterRCNNOptions struct {
	Backbone models.Backbone `cfg:"backbone,required"`
	Neck     models.Neck     `cfg:"neck"`
	RPNHead  map[string]any  `cfg:"rpn_head,required"`
	RoIHead  map[string]any  `cfg:"roi_head,required"`
	// TrainCfg and TestCfg hold the rpn, rpn_proposal and rcnn settings
	// the heads receive, as mmdet passes them down.
	TrainCfg   map[string]any `cfg:"train_cfg"`
	TestCfg    map[string]any `cfg:"test_cfg"`
	Pretrained any            `cfg:"pretrained"`
	InitCfg    any            `cfg:"init_cfg"`
}

// FasterRCNN is mmdet's Faster R-CNN: children "backbone", "neck",
// "rpn_head" and "roi_head", so its weights carry mmdet's names.
type FasterRCNN struct {
	nn.Base
	backbone models.Backbone
	neck     models.Neck
	rpn      *dense_heads.RPNHead
	roi      *roi_heads.StandardRoIHead
}

// dummyProposals is how many proposals per image a forward without values
// (FLOPs counting) pools, mmdet's forward_dummy count.
const dummyProposals = 1000

// NewFasterRCNN builds the detector, passing train_cfg and test_cfg's
// parts to the heads as mmdet does.
func NewFasterRCNN(o FasterRCNNOptions) (*FasterRCNN, error) {
	if o.Pretrained != nil {
		return nil, fmt.Errorf("model.pretrained is not supported; load weights with load_from (a classifier checkpoint fills the backbone)")
	}
	if o.Neck == nil {
		return nil, fmt.Errorf("model.neck is required: razor's Faster R-CNN pools RoIs from a feature pyramid (type: FPN)")
	}
	part := func(m map[string]any, key string) (map[string]any, error) {
		if m == nil || m[key] == nil {
			return nil, nil
		}
		v, ok := m[key].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s must be a mapping, not %v", key, m[key])
		}
		return v, nil
	}
	rpnTrain, err := part(o.TrainCfg, "rpn")
	if err != nil {
		return nil, fmt.Errorf("model.train_cfg.%w", err)
	}
	rpnTest, err := part(o.TestCfg, "rpn")
	if err != nil {
		return nil, fmt.Errorf("model.test_cfg.%w", err)
	}
	rcnnTrain, err := part(o.TrainCfg, "rcnn")
	if err != nil {
		return nil, fmt.Errorf("model.train_cfg.%w", err)
	}
	rcnnTest, err := part(o.TestCfg, "rcnn")
	if err != nil {
		return nil, fmt.Errorf("model.test_cfg.%w", err)
	}
	d := &FasterRCNN{backbone: o.Backbone, neck: o.Neck}
	if d.rpn, err = dense_heads.Heads.Build(o.RPNHead, "model.rpn_head", map[string]any{"train_cfg": rpnTrain, "test_cfg": rpnTest}); err != nil {
		return nil, err
	}
	if prop, err := part(o.TrainCfg, "rpn_proposal"); err != nil {
		return nil, fmt.Errorf("model.train_cfg.%w", err)
	} else if prop != nil {
		pc, err := dense_heads.DecodeProposalCfg(prop, "model.train_cfg.rpn_proposal")
		if err != nil {
			return nil, err
		}
		d.rpn.ProposalTrain = &pc
	}
	if d.roi, err = roi_heads.RoIHeads.Build(o.RoIHead, "model.roi_head", map[string]any{"train_cfg": rcnnTrain, "test_cfg": rcnnTest}); err != nil {
		return nil, err
	}
	d.AddChild("backbone", d.backbone)
	d.AddChild("neck", d.neck)
	d.AddChild("rpn_head", d.rpn)
	d.AddChild("roi_head", d.roi)
	return d, nil
}

// Backbone is the detector's backbone.
func (d *FasterRCNN) Backbone() models.Backbone { return d.backbone }

// Neck is the detector's neck.
func (d *FasterRCNN) Neck() models.Neck { return d.neck }

// RPNHead is the first stage's head.
func (d *FasterRCNN) RPNHead() *dense_heads.RPNHead { return d.rpn }

// RoIHead is the second stage.
func (d *FasterRCNN) RoIHead() *roi_heads.StandardRoIHead { return d.roi }

// features runs backbone and neck on the batch's images.
func (d *FasterRCNN) features(b *nn.Binding, in *models.Batch) ([]*gorgonia.Node, error) {
	if in.Images == nil {
		return nil, fmt.Errorf("the batch has no images")
	}
	x := b.Input("img", in.Images)
	feats, err := d.backbone.Forward(b, x)
	if err != nil {
		return nil, err
	}
	return d.neck.Forward(b, feats)
}

// metas are the batch's image metas, or, for a bare tensor (FLOPs
// counting, benchmarks), metas saying every image fills the whole tensor
// at scale 1.
func metas(in *models.Batch) []models.ImageMeta {
	if len(in.Metas) > 0 {
		return in.Metas
	}
	s := in.Images.Shape()
	m := models.ImageMeta{
		OriShape: [3]int{s[2], s[3], s[1]}, ImgShape: [3]int{s[2], s[3], s[1]}, PadShape: [3]int{s[2], s[3], s[1]},
		ScaleFactor: [4]float32{1, 1, 1, 1},
	}
	out := make([]models.ImageMeta, s[0])
	for i := range out {
		out[i] = m
	}
	return out
}

// ForwardTest adds mmdet's simple_test to the graph: the first stage runs
// at once (Eval), its values give each image's proposals, and the second
// stage is added; the Pending reads detections in original-image pixels.
// While the binding counts FLOPs nothing runs, and the second stage pools
// mmdet's forward_dummy count of proposals per image.
func (d *FasterRCNN) ForwardTest(b *nn.Binding, in *models.Batch) (models.Pending, error) {
	feats, err := d.features(b, in)
	if err != nil {
		return nil, err
	}
	ms := metas(in)
	for i, m := range ms {
		if m.Flip {
			return nil, fmt.Errorf("image %d (%s) is flipped; test pipelines must not flip (MultiScaleFlipAug flip: false)", i, m.Filename)
		}
	}
	cls, reg, err := d.rpn.Forward(b, feats)
	if err != nil {
		return nil, err
	}
	var proposals [][]bbox.Box
	if b.Counting() {
		proposals = make([][]bbox.Box, len(ms))
		for i, m := range ms {
			full := bbox.Box{0, 0, float32(m.ImgShape[1]), float32(m.ImgShape[0])}
			for range dummyProposals {
				proposals[i] = append(proposals[i], full)
			}
		}
	} else {
		if err := b.Eval(); err != nil {
			return nil, err
		}
		if proposals, _, err = d.rpn.Proposals(b, cls, reg, ms, d.rpn.TestCfg()); err != nil {
			return nil, err
		}
	}
	read, err := d.roi.ForwardTest(b, feats, proposals, ms)
	if err != nil {
		return nil, err
	}
	return func() (models.Result, error) {
		dets, err := read()
		if err != nil {
			return models.Result{}, err
		}
		return models.Result{Detections: dets}, nil
	}, nil
}

// ForwardTrain adds mmdet 2.x's two-stage training forward to the graph:
// the RPN's losses over its assigned and sampled anchors (loss_rpn_cls,
// loss_rpn_bbox); then the first stage runs at once (Eval) and its values
// give each image's proposals (train_cfg.rpn_proposal), plain boxes with
// no gradient; the RoI head samples them against the ground truths and
// adds its losses (loss_cls, acc, loss_bbox), whose gradients reach the
// features through RoIAlign. Every draw comes from in.Rand.
func (d *FasterRCNN) ForwardTrain(b *nn.Binding, in *models.Batch) (models.Losses, error) {
	if b.Counting() {
		return nil, fmt.Errorf("a detector's training forward cannot be counted; count its test forward")
	}
	feats, err := d.features(b, in)
	if err != nil {
		return nil, err
	}
	if len(in.Metas) != in.Images.Shape()[0] {
		return nil, fmt.Errorf("%d image metas for a batch of %d images; the training pipeline must collect the metas", len(in.Metas), in.Images.Shape()[0])
	}
	if len(in.GTBoxes) != len(in.Metas) || len(in.GTLabels) != len(in.Metas) {
		return nil, fmt.Errorf("the training batch has ground truths for %d (boxes) and %d (labels) of its %d images; collect gt_bboxes and gt_labels", len(in.GTBoxes), len(in.GTLabels), len(in.Metas))
	}
	cls, reg, err := d.rpn.Forward(b, feats)
	if err != nil {
		return nil, err
	}
	out, err := d.rpn.Loss(b, cls, reg, in)
	if err != nil {
		return nil, err
	}
	if err := b.Eval(); err != nil {
		return nil, err
	}
	cfg := d.rpn.TestCfg()
	if d.rpn.ProposalTrain != nil {
		cfg = *d.rpn.ProposalTrain
	}
	proposals, _, err := d.rpn.Proposals(b, cls, reg, in.Metas, cfg)
	if err != nil {
		return nil, err
	}
	roi, err := d.roi.ForwardTrain(b, feats, proposals, in)
	if err != nil {
		return nil, err
	}
	return append(out, roi...), nil
}

// InitWeights initialises every part as mmdet does.
func (d *FasterRCNN) InitWeights(rng *rand.Rand) error {
	for _, m := range []any{d.backbone, d.neck, d.rpn, d.roi.BBoxHead()} {
		if wi, ok := m.(models.WeightInitializer); ok {
			if err := wi.InitWeights(rng); err != nil {
				return err
			}
		}
	}
	return nil
}

func init() {
	registry.MustRegister(models.Models, "FasterRCNN", func(o FasterRCNNOptions) (models.Model, error) { return NewFasterRCNN(o) })
}
