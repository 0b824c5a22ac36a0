package roi_heads

import (
	"fmt"

	"gorgonia.org/gorgonia"

	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/bbox"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/models/ops"
)

// StandardRoIHeadOptions are mmdet 2.x's StandardRoIHead keys (box branch
// only); train_cfg and test_cfg are the detector's rcnn parts.
type StandardRoIHeadOptions struct {
	Type             string                    `cfg:"type"`
	BBoxRoIExtractor SingleRoIExtractorOptions `cfg:"bbox_roi_extractor,required"`
	BBoxHead         map[string]any            `cfg:"bbox_head,required"`
	MaskRoIExtractor any                       `cfg:"mask_roi_extractor"`
	MaskHead         any                       `cfg:"mask_head"`
	SharedHead       any                       `cfg:"shared_head"`
	TrainCfg         map[string]any            `cfg:"train_cfg"`
	TestCfg          map[string]any            `cfg:"test_cfg"`
	Pretrained       any                       `cfg:"pretrained"`
	InitCfg          any                       `cfg:"init_cfg"`
}

// StandardRoIHead is mmdet's StandardRoIHead for boxes: RoI features from
// a SingleRoIExtractor, then a box head ("bbox_head").
type StandardRoIHead struct {
	nn.Base
	extractor *SingleRoIExtractor
	head      *ConvFCBBoxHead
	test      BBoxHeadCfg
	// TrainCfg is the detector's train_cfg.rcnn, kept for training.
	TrainCfg map[string]any
}

// bboxHeadTypes preset ConvFCBBoxHead's layer counts as mmdet's
// subclasses do.
var bboxHeadTypes = map[string]func(*ConvFCBBoxHeadOptions){
	"ConvFCBBoxHead":         func(*ConvFCBBoxHeadOptions) {},
	"Shared2FCBBoxHead":      func(o *ConvFCBBoxHeadOptions) { o.NumSharedFCs = 2 },
	"Shared4Conv1FCBBoxHead": func(o *ConvFCBBoxHeadOptions) { o.NumSharedConvs, o.NumSharedFCs = 4, 1 },
}

// NewStandardRoIHead builds the head; path names it in errors
// ("model.roi_head").
func NewStandardRoIHead(o StandardRoIHeadOptions, path string) (*StandardRoIHead, error) {
	if o.Type != "" && o.Type != "StandardRoIHead" {
		return nil, fmt.Errorf("%s.type %q is not supported; use StandardRoIHead", path, o.Type)
	}
	if o.MaskRoIExtractor != nil || o.MaskHead != nil || o.SharedHead != nil {
		return nil, fmt.Errorf("%s: mask_roi_extractor, mask_head and shared_head are not supported (razor detects boxes); remove them", path)
	}
	h := &StandardRoIHead{TrainCfg: o.TrainCfg}
	var err error
	if h.extractor, err = NewSingleRoIExtractor(o.BBoxRoIExtractor, path+".bbox_roi_extractor"); err != nil {
		return nil, err
	}
	typ, _ := o.BBoxHead["type"].(string)
	typ = trimScope(typ)
	preset, ok := bboxHeadTypes[typ]
	if !ok {
		return nil, fmt.Errorf("%s.bbox_head.type %q is not supported; use Shared2FCBBoxHead, Shared4Conv1FCBBoxHead or ConvFCBBoxHead", path, typ)
	}
	var ho ConvFCBBoxHeadOptions
	ho.Defaults()
	preset(&ho)
	rest := map[string]any{}
	for k, v := range o.BBoxHead {
		if k != "type" {
			rest[k] = v
		}
	}
	if err := config.Decode(rest, path+".bbox_head", &ho); err != nil {
		return nil, err
	}
	if h.head, err = NewConvFCBBoxHead(ho, path+".bbox_head"); err != nil {
		return nil, err
	}
	if ho.InChannels != o.BBoxRoIExtractor.OutChannels {
		return nil, fmt.Errorf("%s: bbox_head.in_channels %d differs from bbox_roi_extractor.out_channels %d", path, ho.InChannels, o.BBoxRoIExtractor.OutChannels)
	}
	if rh, rw, _ := pair(ho.RoIFeatSize, ""); rh != h.extractor.params.OutH || rw != h.extractor.params.OutW {
		return nil, fmt.Errorf("%s: bbox_head.roi_feat_size %v differs from the extractor's output_size %dx%d", path, ho.RoIFeatSize, h.extractor.params.OutH, h.extractor.params.OutW)
	}
	h.test.Defaults()
	if o.TestCfg != nil {
		if err := config.Decode(o.TestCfg, "test_cfg.rcnn", &h.test); err != nil {
			return nil, err
		}
	}
	if err := h.test.NMS.Validate("test_cfg.rcnn.nms"); err != nil {
		return nil, err
	}
	if h.test.MaxPerImg <= 0 {
		return nil, fmt.Errorf("test_cfg.rcnn.max_per_img %d must be positive", h.test.MaxPerImg)
	}
	h.AddChild("bbox_head", h.head)
	return h, nil
}

// trimScope drops an OpenMMLab scope prefix ("mmdet.").
func trimScope(t string) string {
	for i := len(t) - 1; i >= 0; i-- {
		if t[i] == '.' {
			return t[i+1:]
		}
	}
	return t
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
