// Package dense_heads holds the detection heads that predict at every
// feature-map location (mmdet's dense_heads): the RPN head of a two-stage
// detector, which scores anchors and turns the best into proposals.
//
// It imports models, models/bbox, models/nn, models/ops, config and
// registry.
package dense_heads

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gorgonia.org/gorgonia"

	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/bbox"
	"github.com/razorgo/razor/models/losses"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/models/ops"
	"github.com/razorgo/razor/registry"
)

// Heads builds a detector's `rpn_head:` (RPNHead). The detector passes its
// train_cfg.rpn and test_cfg.rpn as the head's train_cfg and test_cfg, as
// mmdet does.
var Heads = registry.New[*RPNHead]("dense head")

func init() {
	registry.MustRegister(Heads, "RPNHead", NewRPNHead)
}

// ProposalCfg is the `rpn` part of mmdet's test_cfg (and train_cfg's
// rpn_proposal): how the RPN's scores become proposals.
type ProposalCfg struct {
	// NMSPre keeps the NMSPre best-scored anchors of each level before
	// decoding (0 or less: all).
	NMSPre int `cfg:"nms_pre"`
	// MaxPerImg keeps the first MaxPerImg proposals after NMS.
	MaxPerImg int `cfg:"max_per_img"`
	// NMS is the non-maximum suppression over all levels (by level).
	NMS bbox.NMSOptions `cfg:"nms"`
	// MinBBoxSize drops proposals whose width or height is not above it
	// (negative: keep all).
	MinBBoxSize float64 `cfg:"min_bbox_size"`
	// MaxNum and NMSThr are mmdet's deprecated spellings of max_per_img
	// and nms.iou_threshold.
	MaxNum *int     `cfg:"max_num"`
	NMSThr *float64 `cfg:"nms_thr"`
}

// Defaults are mmdet's RPN test settings.
func (c *ProposalCfg) Defaults() {
	c.NMSPre, c.MaxPerImg = 1000, 1000
	c.NMS.Defaults()
	c.NMS.IoUThreshold = 0.7
}

// DecodeProposalCfg reads an rpn test_cfg (or train_cfg.rpn_proposal)
// mapping over mmdet's defaults, folds the deprecated keys in and checks
// the values; path names it in errors.
func DecodeProposalCfg(node map[string]any, path string) (ProposalCfg, error) {
	var c ProposalCfg
	c.Defaults()
	if node != nil {
		if err := config.Decode(node, path, &c); err != nil {
			return c, err
		}
	}
	if c.MaxNum != nil {
		if _, both := node["max_per_img"]; both && c.MaxPerImg != *c.MaxNum {
			return c, fmt.Errorf("%s: max_num %d (deprecated) and max_per_img %d disagree; keep max_per_img only", path, *c.MaxNum, c.MaxPerImg)
		}
		c.MaxPerImg = *c.MaxNum
	}
	if c.NMSThr != nil {
		c.NMS.IoUThreshold = *c.NMSThr
	}
	if c.MaxPerImg <= 0 {
		return c, fmt.Errorf("%s.max_per_img %d must be positive", path, c.MaxPerImg)
	}
	if err := c.NMS.Validate(); err != nil {
		return c, fmt.Errorf("%s.nms: %w", path, err)
	}
	return c, nil
}

// RPNHeadOptions are mmdet 2.x's RPNHead keys; train_cfg and test_cfg are
// the detector's rpn parts, which the detector passes down.
type RPNHeadOptions struct {
	InChannels      int                      `cfg:"in_channels,required"`
	FeatChannels    int                      `cfg:"feat_channels"`
	NumClasses      int                      `cfg:"num_classes"`
	AnchorGenerator *bbox.AnchorGenerator    `cfg:"anchor_generator,required"`
	BBoxCoder       *bbox.DeltaXYWHBBoxCoder `cfg:"bbox_coder"`
	// LossCls and LossBBox are the training losses: sigmoid cross-entropy
	// and an L1-type loss in mmdet's configs.
	LossCls  losses.ClsLoss `cfg:"loss_cls"`
	LossBBox losses.RegLoss `cfg:"loss_bbox"`
	// TrainCfg is the detector's train_cfg.rpn; nil for inference only.
	TrainCfg *RPNTrainCfg   `cfg:"train_cfg"`
	TestCfg  map[string]any `cfg:"test_cfg"`
	InitCfg  any            `cfg:"init_cfg"`
}

// Defaults are mmdet's: 256 feature channels, one (objectness) class,
// a delta-xywh coder with means 0 and stds 1.
func (o *RPNHeadOptions) Defaults() {
	o.FeatChannels, o.NumClasses = 256, 1
	var c bbox.DeltaXYWHBBoxCoderOptions
	c.Defaults()
	o.BBoxCoder, _ = bbox.NewDeltaXYWHBBoxCoder(c)
	o.LossCls, _ = losses.ClsLosses.Build(map[string]any{"type": "CrossEntropyLoss", "use_sigmoid": true, "loss_weight": 1.0}, "loss_cls", nil)
	o.LossBBox, _ = losses.RegLosses.Build(map[string]any{"type": "L1Loss", "loss_weight": 1.0}, "loss_bbox", nil)
}

// RPNHead is mmdet's RPNHead: a shared 3x3 convolution with ReLU
// ("rpn_conv"), then per location a sigmoid objectness score per anchor
// ("rpn_cls") and the anchor's box deltas ("rpn_reg"), on every pyramid
// level with the same weights.
type RPNHead struct {
	nn.Base
	conv, cls, reg *nn.Conv2d
	anchors        *bbox.AnchorGenerator
	coder          *bbox.DeltaXYWHBBoxCoder
	test           ProposalCfg
	lossCls        losses.ClsLoss
	lossBBox       losses.RegLoss
	// Train is the detector's train_cfg.rpn; nil for inference only.
	Train *RPNTrainCfg
	// ProposalTrain is train_cfg.rpn_proposal, set by the detector.
	ProposalTrain *ProposalCfg
	numAnchors    int
}

// NewRPNHead builds the head.
func NewRPNHead(o RPNHeadOptions) (*RPNHead, error) {
	if o.InChannels <= 0 || o.FeatChannels <= 0 {
		return nil, fmt.Errorf("in_channels %d and feat_channels %d must be positive", o.InChannels, o.FeatChannels)
	}
	if o.NumClasses != 1 {
		return nil, fmt.Errorf("num_classes %d is not supported; an RPN scores objectness (num_classes: 1)", o.NumClasses)
	}
	if o.LossCls != nil && !o.LossCls.UseSigmoid() {
		return nil, fmt.Errorf("loss_cls.use_sigmoid must be true: razor's RPN scores each anchor with a sigmoid")
	}
	if o.BBoxCoder == nil {
		return nil, fmt.Errorf("bbox_coder must not be null; use {type: DeltaXYWHBBoxCoder}")
	}
	h := &RPNHead{Train: o.TrainCfg, anchors: o.AnchorGenerator, coder: o.BBoxCoder, lossCls: o.LossCls, lossBBox: o.LossBBox}
	counts := h.anchors.NumBaseAnchors()
	for _, c := range counts {
		if c != counts[0] {
			return nil, fmt.Errorf("anchor_generator: levels have different anchor counts %v; the RPN head shares its layers over levels and needs one count", counts)
		}
	}
	h.numAnchors = counts[0]
	var err error
	if h.test, err = DecodeProposalCfg(o.TestCfg, "test_cfg"); err != nil {
		return nil, err
	}
	if h.conv, err = nn.NewConv2d(nn.Conv2dConfig{In: o.InChannels, Out: o.FeatChannels, Kernel: 3, Padding: 1, Bias: true}); err != nil {
		return nil, err
	}
	if h.cls, err = nn.NewConv2d(nn.Conv2dConfig{In: o.FeatChannels, Out: h.numAnchors, Kernel: 1, Bias: true}); err != nil {
		return nil, err
	}
	if h.reg, err = nn.NewConv2d(nn.Conv2dConfig{In: o.FeatChannels, Out: 4 * h.numAnchors, Kernel: 1, Bias: true}); err != nil {
		return nil, err
	}
	h.AddChild("rpn_conv", h.conv)
	h.AddChild("rpn_cls", h.cls)
	h.AddChild("rpn_reg", h.reg)
	return h, nil
}

// Anchors is the head's anchor generator.
func (h *RPNHead) Anchors() *bbox.AnchorGenerator { return h.anchors }

// Coder is the head's box coder.
func (h *RPNHead) Coder() *bbox.DeltaXYWHBBoxCoder { return h.coder }

// TestCfg is the head's proposal settings at test time.
func (h *RPNHead) TestCfg() ProposalCfg { return h.test }

// Forward runs the head on every level: objectness logits (N×A×H×W) and
// box deltas (N×4A×H×W) per level.
func (h *RPNHead) Forward(b *nn.Binding, feats []*gorgonia.Node) (cls, reg []*gorgonia.Node, err error) {
	if len(feats) != h.anchors.NumLevels() {
		return nil, nil, fmt.Errorf("%s: %d feature levels, but the anchor generator has %d strides", h.Path(), len(feats), h.anchors.NumLevels())
	}
	for _, x := range feats {
		y, err := h.conv.Forward(b, x)
		if err != nil {
			return nil, nil, err
		}
		if y, err = ops.ReLU(y); err != nil {
			return nil, nil, err
		}
		b.AddCost(nn.Cost{Path: nn.JoinPath(h.Path(), "relu"), Type: "ReLU", FLOPs: nn.Elements(y)})
		c, err := h.cls.Forward(b, y)
		if err != nil {
			return nil, nil, err
		}
		r, err := h.reg.Forward(b, y)
		if err != nil {
			return nil, nil, err
		}
		cls, reg = append(cls, c), append(reg, r)
	}
	return cls, reg, nil
}

// Proposals turns the values of Forward's outputs (after the binding's
// Eval) into each image's proposals, best first, as mmdet 2.x's
// RPNHead.get_bboxes does: per level the cfg.NMSPre best sigmoid scores,
// their anchors decoded and clipped to the image, boxes not larger than
// min_bbox_size dropped, NMS within each level, the first max_per_img
// kept.
func (h *RPNHead) Proposals(b *nn.Binding, cls, reg []*gorgonia.Node, metas []models.ImageMeta, cfg ProposalCfg) ([][]bbox.Box, [][]float32, error) {
	clsVals := make([][]float32, len(cls))
	regVals := make([][]float32, len(reg))
	for l := range cls {
		var err error
		if clsVals[l], err = b.Value(cls[l]); err != nil {
			return nil, nil, err
		}
		if regVals[l], err = b.Value(reg[l]); err != nil {
			return nil, nil, err
		}
	}
	boxes := make([][]bbox.Box, len(metas))
	scores := make([][]float32, len(metas))
	for i, m := range metas {
		var cand []bbox.Box
		var candScores []float32
		var levels []int
		for l := range cls {
			s := cls[l].Shape()
			n, a, fh, fw := s[0], s[1], s[2], s[3]
			if i >= n {
				return nil, nil, fmt.Errorf("%s: %d image metas for a batch of %d", h.Path(), len(metas), n)
			}
			anchors := h.anchors.GridAnchors(l, fh, fw)
			plane := fh * fw
			count := plane * a
			lvlScores := make([]float32, count)
			cv := clsVals[l][i*a*plane : (i+1)*a*plane]
			for p := 0; p < plane; p++ {
				for k := 0; k < a; k++ {
					lvlScores[p*a+k] = sigmoid(cv[k*plane+p])
				}
			}
			order := topK(lvlScores, cfg.NMSPre)
			rv := regVals[l][i*4*a*plane : (i+1)*4*a*plane]
			rois := make([]bbox.Box, len(order))
			deltas := make([][4]float32, len(order))
			for j, idx := range order {
				p, k := idx/a, idx%a
				rois[j] = anchors[idx]
				for c := 0; c < 4; c++ {
					deltas[j][c] = rv[(k*4+c)*plane+p]
				}
			}
			dec := h.coder.Decode(rois, deltas, m.ImgShape[0], m.ImgShape[1])
			for j, box := range dec {
				if cfg.MinBBoxSize >= 0 {
					if !(float64(box[2]-box[0]) > cfg.MinBBoxSize && float64(box[3]-box[1]) > cfg.MinBBoxSize) {
						continue
					}
				}
				cand = append(cand, box)
				candScores = append(candScores, lvlScores[order[j]])
				levels = append(levels, l)
			}
		}
		if len(cand) == 0 {
			continue
		}
		keep := bbox.BatchedNMSTop(cand, candScores, levels, float32(cfg.NMS.IoUThreshold), false, cfg.MaxPerImg)
		boxes[i] = make([]bbox.Box, len(keep))
		scores[i] = make([]float32, len(keep))
		for j, k := range keep {
			boxes[i][j], scores[i][j] = cand[k], candScores[k]
		}
	}
	return boxes, scores, nil
}

// sigmoid is the logistic function in float32, as torch computes it.
func sigmoid(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }

// topK returns the indices of the k best scores, best first, as mmdet's
// RPN takes them (torch's descending sort, ties included); when k <= 0 or
// there are no more than k scores, all indices in their own order, since
// mmdet then does not sort.
func topK(scores []float32, k int) []int {
	if k <= 0 || len(scores) <= k {
		idx := make([]int, len(scores))
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	return bbox.SortDescending(scores)[:k]
}

// InitWeights draws every convolution from N(0, 0.01) with zero bias,
// mmdet's RPNHead init.
func (h *RPNHead) InitWeights(rng *rand.Rand) error {
	for _, c := range []*nn.Conv2d{h.conv, h.cls, h.reg} {
		nn.InitNormal(c.Weight, 0, 0.01, rng)
		nn.InitConstant(c.Bias, 0)
	}
	return nil
}
