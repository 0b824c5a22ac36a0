package roi_heads

import (
	"fmt"

	"gorgonia.org/gorgonia"

	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/bbox"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/models/ops"
	"github.com/razorgo/razor/registry"
)

// StandardRoIHeadOptions are mmdet 2.x's StandardRoIHead keys (box branch
// only); train_cfg and test_cfg are the detector's rcnn parts.
type StandardRoIHeadOptions struct {
	BBoxRoIExtractor *SingleRoIExtractor `cfg:"bbox_roi_extractor,required"`
	BBoxHead         *ConvFCBBoxHead     `cfg:"bbox_head,required"`
	MaskRoIExtractor any                 `cfg:"mask_roi_extractor"`
	MaskHead         any                 `cfg:"mask_head"`
	SharedHead       any                 `cfg:"shared_head"`
	TrainCfg         *RCNNTrainCfg       `cfg:"train_cfg"`
	TestCfg          map[string]any      `cfg:"test_cfg"`
	Pretrained       any                 `cfg:"pretrained"`
	InitCfg          any                 `cfg:"init_cfg"`
}

// StandardRoIHead is mmdet's StandardRoIHead for boxes: RoI features from
// a SingleRoIExtractor, then a box head ("bbox_head").
type StandardRoIHead struct {
	nn.Base
	extractor *SingleRoIExtractor
	head      *ConvFCBBoxHead
	test      BBoxHeadCfg
	// Train is the detector's train_cfg.rcnn; nil for inference only.
	Train *RCNNTrainCfg
}

// Registries of the second stage. The detector builds `roi_head:` with
// RoIHeads, passing its train_cfg.rcnn and test_cfg.rcnn down as mmdet
// does; the RoI head's fields are built by the other two.
var (
	// RoIHeads builds `roi_head:` (StandardRoIHead).
	RoIHeads = registry.New[*StandardRoIHead]("roi head")
	// RoIExtractors builds `bbox_roi_extractor:` (SingleRoIExtractor).
	RoIExtractors = registry.New[*SingleRoIExtractor]("roi extractor")
	// BBoxHeads builds `bbox_head:` (ConvFCBBoxHead and its presets
	// Shared2FCBBoxHead and Shared4Conv1FCBBoxHead).
	BBoxHeads = registry.New[*ConvFCBBoxHead]("bbox head")
)

// shared2FCOptions are ConvFCBBoxHeadOptions with Shared2FCBBoxHead's
// layer counts as defaults.
type shared2FCOptions ConvFCBBoxHeadOptions

func (o *shared2FCOptions) Defaults() {
	(*ConvFCBBoxHeadOptions)(o).Defaults()
	o.NumSharedFCs = 2
}

// shared4Conv1FCOptions are ConvFCBBoxHeadOptions with
// Shared4Conv1FCBBoxHead's layer counts as defaults.
type shared4Conv1FCOptions ConvFCBBoxHeadOptions

func (o *shared4Conv1FCOptions) Defaults() {
	(*ConvFCBBoxHeadOptions)(o).Defaults()
	o.NumSharedConvs, o.NumSharedFCs = 4, 1
}

func init() {
	registry.MustRegister(RoIHeads, "StandardRoIHead", NewStandardRoIHead)
	registry.MustRegister(RoIExtractors, "SingleRoIExtractor", NewSingleRoIExtractor)
	registry.MustRegister(BBoxHeads, "ConvFCBBoxHead", NewConvFCBBoxHead)
	registry.MustRegister(BBoxHeads, "Shared2FCBBoxHead", func(o shared2FCOptions) (*ConvFCBBoxHead, error) {
		return NewConvFCBBoxHead(ConvFCBBoxHeadOptions(o))
	})
	registry.MustRegister(BBoxHeads, "Shared4Conv1FCBBoxHead", func(o shared4Conv1FCOptions) (*ConvFCBBoxHead, error) {
		return NewConvFCBBoxHead(ConvFCBBoxHeadOptions(o))
	})
}

// NewStandardRoIHead checks that the extractor and the box head fit each
// other and reads the test settings.
func NewStandardRoIHead(o StandardRoIHeadOptions) (*StandardRoIHead, error) {
	if o.MaskRoIExtractor != nil || o.MaskHead != nil || o.SharedHead != nil {
		return nil, fmt.Errorf("mask_roi_extractor, mask_head and shared_head are not supported (razor detects boxes); remove them")
	}
	if o.Pretrained != nil {
		return nil, fmt.Errorf("pretrained is not supported; load weights with load_from")
	}
	h := &StandardRoIHead{Train: o.TrainCfg, extractor: o.BBoxRoIExtractor, head: o.BBoxHead}
	if h.head.inChannels != h.extractor.outChannels {
		return nil, fmt.Errorf("bbox_head.in_channels %d differs from bbox_roi_extractor.out_channels %d", h.head.inChannels, h.extractor.outChannels)
	}
	if h.head.roiH != h.extractor.params.OutH || h.head.roiW != h.extractor.params.OutW {
		return nil, fmt.Errorf("bbox_head.roi_feat_size %dx%d differs from bbox_roi_extractor.roi_layer.output_size %dx%d", h.head.roiH, h.head.roiW, h.extractor.params.OutH, h.extractor.params.OutW)
	}
	h.test.Defaults()
	if o.TestCfg != nil {
		if err := config.Decode(o.TestCfg, "test_cfg", &h.test); err != nil {
			return nil, err
		}
	}
	if err := h.test.NMS.Validate(); err != nil {
		return nil, fmt.Errorf("test_cfg.nms: %w", err)
	}
	if h.test.MaxPerImg <= 0 {
		return nil, fmt.Errorf("test_cfg.max_per_img %d must be positive", h.test.MaxPerImg)
	}
	h.AddChild("bbox_head", h.head)
	return h, nil
}

// BBoxHead is the box head.
func (h *StandardRoIHead) BBoxHead() *ConvFCBBoxHead { return h.head }

// Extractor is the RoI feature extractor.
func (h *StandardRoIHead) Extractor() *SingleRoIExtractor { return h.extractor }

// TestCfg is the head's test settings.
func (h *StandardRoIHead) TestCfg() BBoxHeadCfg { return h.test }

// ForwardBoxes pools the RoIs from feats and runs the box head: class
// logits and box deltas, one row per RoI.
func (h *StandardRoIHead) ForwardBoxes(b *nn.Binding, feats []*gorgonia.Node, rois []ops.RoI) (cls, reg *gorgonia.Node, err error) {
	x, err := h.extractor.Forward(b, nn.JoinPath(h.Path(), "bbox_roi_extractor"), feats, rois)
	if err != nil {
		return nil, nil, err
	}
	return h.head.Forward(b, x)
}

// ForwardTest adds the box branch for each image's proposals and returns
// a function that reads the detections once the binding has run.
func (h *StandardRoIHead) ForwardTest(b *nn.Binding, feats []*gorgonia.Node, proposals [][]bbox.Box, metas []models.ImageMeta) (func() ([][]models.Detection, error), error) {
	var rois []ops.RoI
	counts := make([]int, len(proposals))
	for i, ps := range proposals {
		counts[i] = len(ps)
		for _, p := range ps {
			rois = append(rois, ops.RoI{Batch: i, Box: p})
		}
	}
	if len(rois) == 0 {
		return func() ([][]models.Detection, error) { return make([][]models.Detection, len(proposals)), nil }, nil
	}
	cls, reg, err := h.ForwardBoxes(b, feats, rois)
	if err != nil {
		return nil, err
	}
	return func() ([][]models.Detection, error) {
		cv, err := b.Value(cls)
		if err != nil {
			return nil, err
		}
		rv, err := b.Value(reg)
		if err != nil {
			return nil, err
		}
		nc1 := cls.Shape()[1]
		nr := reg.Shape()[1]
		out := make([][]models.Detection, len(proposals))
		start := 0
		for i, n := range counts {
			out[i] = h.head.Detections(proposals[i], cv[start*nc1:(start+n)*nc1], rv[start*nr:(start+n)*nr], metas[i], h.test)
			start += n
		}
		return out, nil
	}, nil
}
