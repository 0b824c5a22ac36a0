package roi_heads

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"

	"gorgonia.org/gorgonia"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/bbox"
	"github.com/razorgo/razor/models/losses"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/models/ops"
)

// ConvFCBBoxHeadOptions are mmdet 2.x's ConvFCBBoxHead keys (with those of
// its base, BBoxHead). Shared2FCBBoxHead and Shared4Conv1FCBBoxHead preset
// the layer counts.
type ConvFCBBoxHeadOptions struct {
	NumSharedConvs   int                      `cfg:"num_shared_convs"`
	NumSharedFCs     int                      `cfg:"num_shared_fcs"`
	NumClsConvs      int                      `cfg:"num_cls_convs"`
	NumClsFCs        int                      `cfg:"num_cls_fcs"`
	NumRegConvs      int                      `cfg:"num_reg_convs"`
	NumRegFCs        int                      `cfg:"num_reg_fcs"`
	ConvOutChannels  int                      `cfg:"conv_out_channels"`
	FCOutChannels    int                      `cfg:"fc_out_channels"`
	ConvCfg          any                      `cfg:"conv_cfg"`
	NormCfg          *nn.NormCfg              `cfg:"norm_cfg"`
	InChannels       int                      `cfg:"in_channels"`
	RoIFeatSize      any                      `cfg:"roi_feat_size"`
	NumClasses       int                      `cfg:"num_classes"`
	WithAvgPool      bool                     `cfg:"with_avg_pool"`
	WithCls          bool                     `cfg:"with_cls"`
	WithReg          bool                     `cfg:"with_reg"`
	BBoxCoder        *bbox.DeltaXYWHBBoxCoder `cfg:"bbox_coder"`
	RegClassAgnostic bool                     `cfg:"reg_class_agnostic"`
	RegDecodedBBox   bool                     `cfg:"reg_decoded_bbox"`
	RegPredictor     any                      `cfg:"reg_predictor_cfg"`
	ClsPredictor     any                      `cfg:"cls_predictor_cfg"`
	LossCls          losses.ClsLoss           `cfg:"loss_cls"`
	LossBBox         losses.RegLoss           `cfg:"loss_bbox"`
	InitCfg          any                      `cfg:"init_cfg"`
}

// Defaults are BBoxHead's and ConvFCBBoxHead's: 256 in and conv channels,
// 1024 fc channels, 7x7 RoIs, 80 classes, stds 0.1/0.1/0.2/0.2.
func (o *ConvFCBBoxHeadOptions) Defaults() {
	o.ConvOutChannels, o.FCOutChannels, o.InChannels = 256, 1024, 256
	o.RoIFeatSize, o.NumClasses = 7, 80
	o.WithCls, o.WithReg = true, true
	var c bbox.DeltaXYWHBBoxCoderOptions
	c.Defaults()
	c.TargetStds = []float64{0.1, 0.1, 0.2, 0.2}
	o.BBoxCoder, _ = bbox.NewDeltaXYWHBBoxCoder(c)
	o.LossCls, _ = losses.ClsLosses.Build(map[string]any{"type": "CrossEntropyLoss", "use_sigmoid": false, "loss_weight": 1.0}, "loss_cls", nil)
	o.LossBBox, _ = losses.RegLosses.Build(map[string]any{"type": "L1Loss", "loss_weight": 1.0}, "loss_bbox", nil)
}

// BBoxHeadCfg is the `rcnn` part of mmdet's test_cfg: which boxes a box
// head keeps.
type BBoxHeadCfg struct {
	ScoreThr  float64         `cfg:"score_thr"`
	NMS       bbox.NMSOptions `cfg:"nms"`
	MaxPerImg int             `cfg:"max_per_img"`
}

// Defaults are mmdet's Faster R-CNN test settings.
func (c *BBoxHeadCfg) Defaults() {
	c.ScoreThr, c.MaxPerImg = 0.05, 100
	c.NMS = bbox.NMSOptions{Type: "nms", IoUThreshold: 0.5}
}

// ConvFCBBoxHead is mmdet's ConvFCBBoxHead: shared 3x3 ConvModules
// ("shared_convs.i") and fully connected layers with ReLU
// ("shared_fcs.i"), then class and box branches of their own ("cls_convs",
// "cls_fcs", "reg_convs", "reg_fcs"), ending in the class scores
// ("fc_cls", num_classes+1 with background last) and box deltas ("fc_reg",
// 4 per class, or 4 when class-agnostic).
type ConvFCBBoxHead struct {
	nn.Base
	sharedConvs, clsConvs, regConvs []*nn.ConvModule
	sharedFCs, clsFCs, regFCs       []*nn.Linear
	fcCls, fcReg                    *nn.Linear
	numClasses                      int
	inChannels, roiH, roiW          int
	classAgnostic                   bool
	withAvgPool                     bool
	coder                           *bbox.DeltaXYWHBBoxCoder
	lossCls                         losses.ClsLoss
	lossBBox                        losses.RegLoss
}

// NewConvFCBBoxHead checks the options and builds the layers.
func NewConvFCBBoxHead(o ConvFCBBoxHeadOptions) (*ConvFCBBoxHead, error) {
	for _, c := range []struct {
		key string
		v   int
	}{{"num_shared_convs", o.NumSharedConvs}, {"num_shared_fcs", o.NumSharedFCs}, {"num_cls_convs", o.NumClsConvs},
		{"num_cls_fcs", o.NumClsFCs}, {"num_reg_convs", o.NumRegConvs}, {"num_reg_fcs", o.NumRegFCs}} {
		if c.v < 0 {
			return nil, fmt.Errorf("%s %d must not be negative", c.key, c.v)
		}
	}
	if o.NumSharedConvs+o.NumSharedFCs+o.NumClsConvs+o.NumClsFCs+o.NumRegConvs+o.NumRegFCs == 0 {
		return nil, fmt.Errorf("the head has no layers; set num_shared_convs or num_shared_fcs (or the branch counts)")
	}
	if o.NumClsFCs == 0 && o.NumClsConvs > 0 || o.NumRegFCs == 0 && o.NumRegConvs > 0 {
		return nil, fmt.Errorf("a branch with convolutions needs a fully connected layer after them (num_cls_fcs / num_reg_fcs)")
	}
	if !o.WithCls || !o.WithReg {
		return nil, fmt.Errorf("with_cls and with_reg must both be true for a detector's box head")
	}
	if o.ConvCfg != nil || o.RegPredictor != nil || o.ClsPredictor != nil {
		return nil, fmt.Errorf("conv_cfg, reg_predictor_cfg and cls_predictor_cfg are not supported; remove them")
	}
	if o.RegDecodedBBox {
		return nil, fmt.Errorf("reg_decoded_bbox: true (IoU-type box losses) is not supported; use false")
	}
	if o.NumClasses <= 0 || o.InChannels <= 0 || o.ConvOutChannels <= 0 || o.FCOutChannels <= 0 {
		return nil, fmt.Errorf("num_classes %d, in_channels %d, conv_out_channels %d and fc_out_channels %d must be positive",
			o.NumClasses, o.InChannels, o.ConvOutChannels, o.FCOutChannels)
	}
	rh, rw, err := pair(o.RoIFeatSize, "roi_feat_size")
	if err != nil {
		return nil, err
	}
	h := &ConvFCBBoxHead{inChannels: o.InChannels, roiH: rh, roiW: rw, numClasses: o.NumClasses, classAgnostic: o.RegClassAgnostic, withAvgPool: o.WithAvgPool, lossCls: o.LossCls, lossBBox: o.LossBBox}
	if o.BBoxCoder == nil {
		return nil, fmt.Errorf("bbox_coder must not be null; use {type: DeltaXYWHBBoxCoder}")
	}
	h.coder = o.BBoxCoder
	var norm nn.NormCfg
	if o.NormCfg != nil {
		norm = *o.NormCfg
		if err := norm.Validate(); err != nil {
			return nil, fmt.Errorf("%w", err)
		}
	}
	area := rh * rw
	// branch builds numConvs ConvModules and numFCs linear layers under
	// convName and fcName, returning the width of what comes out.
	branch := func(convName, fcName string, numConvs, numFCs, in int, flatIn bool) ([]*nn.ConvModule, []*nn.Linear, int, bool, error) {
		convs, fcs := nn.NewSequential(), nn.NewSequential()
		var cms []*nn.ConvModule
		var ls []*nn.Linear
		for i := 0; i < numConvs; i++ {
			if flatIn {
				return nil, nil, 0, false, fmt.Errorf("%s come after fully connected layers; razor follows mmdet and needs convolutions first", convName)
			}
			cfg := nn.ConvModuleConfig{In: in, Out: o.ConvOutChannels, Kernel: 3, Padding: 1, Norm: o.NormCfg != nil, ReLU: true}
			var c *nn.ConvModule
			var err error
			if o.NormCfg != nil {
				c, err = nn.NewConvModuleNorm(cfg, norm)
			} else {
				c, err = nn.NewConvModule(cfg)
			}
			if err != nil {
				return nil, nil, 0, false, err
			}
			convs.Append(c)
			cms = append(cms, c)
			in = o.ConvOutChannels
		}
		if numFCs > 0 {
			if !flatIn {
				if !o.WithAvgPool {
					in *= area
				}
				flatIn = true
			}
			for i := 0; i < numFCs; i++ {
				l, err := nn.NewLinear(in, o.FCOutChannels, true)
				if err != nil {
					return nil, nil, 0, false, err
				}
				fcs.Append(l)
				ls = append(ls, l)
				in = o.FCOutChannels
			}
		}
		h.AddChild(convName, convs)
		h.AddChild(fcName, fcs)
		return cms, ls, in, flatIn, nil
	}
	shared, flat := o.InChannels, false
	if h.sharedConvs, h.sharedFCs, shared, flat, err = branch("shared_convs", "shared_fcs", o.NumSharedConvs, o.NumSharedFCs, shared, flat); err != nil {
		return nil, err
	}
	clsIn, regIn := shared, shared
	var clsFlat, regFlat bool
	if h.clsConvs, h.clsFCs, clsIn, clsFlat, err = branch("cls_convs", "cls_fcs", o.NumClsConvs, o.NumClsFCs, shared, flat); err != nil {
		return nil, err
	}
	if h.regConvs, h.regFCs, regIn, regFlat, err = branch("reg_convs", "reg_fcs", o.NumRegConvs, o.NumRegFCs, shared, flat); err != nil {
		return nil, err
	}
	// A branch ending on a feature map is flattened (or pooled) into the
	// predictor.
	if !clsFlat && !o.WithAvgPool {
		clsIn *= area
	}
	if !regFlat && !o.WithAvgPool {
		regIn *= area
	}
	if h.fcCls, err = nn.NewLinear(clsIn, o.NumClasses+1, true); err != nil {
		return nil, err
	}
	regOut := 4 * o.NumClasses
	if o.RegClassAgnostic {
		regOut = 4
	}
	if h.fcReg, err = nn.NewLinear(regIn, regOut, true); err != nil {
		return nil, err
	}
	h.AddChild("fc_cls", h.fcCls)
	h.AddChild("fc_reg", h.fcReg)
	return h, nil
}

// NumClasses is the number of object classes (without background).
func (h *ConvFCBBoxHead) NumClasses() int { return h.numClasses }

// Coder is the head's box coder.
func (h *ConvFCBBoxHead) Coder() *bbox.DeltaXYWHBBoxCoder { return h.coder }

// ClassAgnostic reports whether the head regresses one box per RoI.
func (h *ConvFCBBoxHead) ClassAgnostic() bool { return h.classAgnostic }

// Forward maps pooled RoI features (K×C×h×w) to class logits (K×(C+1))
// and box deltas (K×4C, or K×4).
func (h *ConvFCBBoxHead) Forward(b *nn.Binding, x *gorgonia.Node) (cls, reg *gorgonia.Node, err error) {
	if x, err = h.run(b, x, h.sharedConvs, h.sharedFCs, "shared"); err != nil {
		return nil, nil, err
	}
	xc, err := h.run(b, x, h.clsConvs, h.clsFCs, "cls")
	if err != nil {
		return nil, nil, err
	}
	xr, err := h.run(b, x, h.regConvs, h.regFCs, "reg")
	if err != nil {
		return nil, nil, err
	}
	if xc, err = h.flatten(b, xc); err != nil {
		return nil, nil, err
	}
	if xr, err = h.flatten(b, xr); err != nil {
		return nil, nil, err
	}
	if cls, err = h.fcCls.Forward(b, xc); err != nil {
		return nil, nil, err
	}
	if reg, err = h.fcReg.Forward(b, xr); err != nil {
		return nil, nil, err
	}
	return cls, reg, nil
}

// run applies a branch: its convolutions, then (flattened) its fully
// connected layers, each followed by ReLU.
func (h *ConvFCBBoxHead) run(b *nn.Binding, x *gorgonia.Node, convs []*nn.ConvModule, fcs []*nn.Linear, name string) (*gorgonia.Node, error) {
	var err error
	for _, c := range convs {
		if x, err = c.Forward(b, x); err != nil {
			return nil, err
		}
	}
	if len(fcs) == 0 {
		return x, nil
	}
	if x, err = h.flatten(b, x); err != nil {
		return nil, err
	}
	for i, l := range fcs {
		if x, err = l.Forward(b, x); err != nil {
			return nil, err
		}
		if x, err = ops.ReLU(x); err != nil {
			return nil, err
		}
		b.AddCost(nn.Cost{Path: nn.JoinPath(h.Path(), name+"_relu"+strconv.Itoa(i)), Type: "ReLU", FLOPs: nn.Elements(x)})
	}
	return x, nil
}

// flatten turns K×C×h×w into K×(C·h·w), or K×C by average pooling with
// with_avg_pool; a 2-D input passes through.
func (h *ConvFCBBoxHead) flatten(b *nn.Binding, x *gorgonia.Node) (*gorgonia.Node, error) {
	s := x.Shape()
	if len(s) == 2 {
		return x, nil
	}
	if h.withAvgPool {
		y, err := ops.GlobalAvgPool2d(x)
		if err == nil {
			b.AddCost(nn.Cost{Path: nn.JoinPath(h.Path(), "avg_pool"), Type: "AvgPool2d", FLOPs: nn.Elements(x)})
		}
		return y, err
	}
	y, err := gorgonia.Reshape(x, []int{s[0], s.TotalSize() / s[0]})
	if err != nil {
		return nil, fmt.Errorf("%s: flatten %v: %w", h.Path(), s, err)
	}
	return y, nil
}

// Detections turns one image's RoIs and the head's outputs for them (rows
// of cls and reg) into detections in original-image pixels, as mmdet
// 2.x's BBoxHead.get_bboxes with rescale does: softmax scores, boxes
// decoded per class and clipped to the resized image, divided by the
// scale factor, then multiclass NMS.
func (h *ConvFCBBoxHead) Detections(rois []bbox.Box, cls, reg []float32, meta models.ImageMeta, cfg BBoxHeadCfg) []models.Detection {
	k := len(rois)
	nc := h.numClasses
	scores := make([]float32, k*(nc+1))
	for i := 0; i < k; i++ {
		softmax(cls[i*(nc+1):(i+1)*(nc+1)], scores[i*(nc+1):(i+1)*(nc+1)])
	}
	per := nc
	if h.classAgnostic {
		per = 1
	}
	rep := make([]bbox.Box, 0, k*per)
	deltas := make([][4]float32, 0, k*per)
	for i := 0; i < k; i++ {
		for c := 0; c < per; c++ {
			rep = append(rep, rois[i])
			d := reg[(i*per+c)*4 : (i*per+c)*4+4]
			deltas = append(deltas, [4]float32{d[0], d[1], d[2], d[3]})
		}
	}
	boxes := h.coder.Decode(rep, deltas, meta.ImgShape[0], meta.ImgShape[1])
	sf := meta.ScaleFactor
	for i := range boxes {
		for j := 0; j < 4; j++ {
			boxes[i][j] /= sf[j]
		}
	}
	dets := bbox.MulticlassNMS(boxes, scores, nc, float32(cfg.ScoreThr), float32(cfg.NMS.IoUThreshold), cfg.MaxPerImg)
	out := make([]models.Detection, len(dets))
	for i, d := range dets {
		out[i] = models.Detection{Box: d.Box, Score: d.Score, Label: d.Label}
	}
	return out
}

// softmax writes the softmax of x to out, in float32 as torch computes it
// (exponentials of x minus its maximum, divided by their sum).
func softmax(x, out []float32) {
	m := x[0]
	for _, v := range x[1:] {
		m = max(m, v)
	}
	var sum float32
	for i, v := range x {
		out[i] = float32(math.Exp(float64(v - m)))
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
}

// InitWeights initialises as mmdet 2.x does: fc_cls from N(0, 0.01),
// fc_reg from N(0, 0.001), the fully connected layers of the branches
// Xavier-uniform, all biases zero, and the ConvModules as mmcv's
// ConvModule (Kaiming normal, fan_out).
func (h *ConvFCBBoxHead) InitWeights(rng *rand.Rand) error {
	for _, group := range [][]*nn.ConvModule{h.sharedConvs, h.clsConvs, h.regConvs} {
		for _, c := range group {
			if err := c.InitKaiming(rng); err != nil {
				return err
			}
		}
	}
	for _, group := range [][]*nn.Linear{h.sharedFCs, h.clsFCs, h.regFCs} {
		for _, l := range group {
			if err := nn.InitXavierUniform(l.Weight, 1, rng); err != nil {
				return err
			}
			nn.InitConstant(l.Bias, 0)
		}
	}
	nn.InitNormal(h.fcCls.Weight, 0, 0.01, rng)
	nn.InitConstant(h.fcCls.Bias, 0)
	nn.InitNormal(h.fcReg.Weight, 0, 0.001, rng)
	nn.InitConstant(h.fcReg.Bias, 0)
	return nil
}
