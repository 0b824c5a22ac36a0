// Package roi_heads holds the second stage of a two-stage detector
// (mmdet's roi_heads): the RoI feature extractor, the box heads and the
// StandardRoIHead that runs them on the first stage's proposals.
//
// It imports models, models/bbox, models/nn, models/ops, config and
// registry.
package roi_heads

import (
	"fmt"
	"math"

	"gorgonia.org/gorgonia"

	"github.com/razorgo/razor/models/bbox"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/models/ops"
)

// RoILayerOptions are mmcv's RoIAlign keys (roi_layer of an extractor).
type RoILayerOptions struct {
	// Type must be RoIAlign.
	Type string `cfg:"type,required"`
	// OutputSize is the pooled size: an int or [h, w].
	OutputSize any `cfg:"output_size,required"`
	// SamplingRatio is the samples per bin side (0: adaptive).
	SamplingRatio int `cfg:"sampling_ratio"`
	// PoolMode must be avg.
	PoolMode string `cfg:"pool_mode"`
	// Aligned shifts boxes by half a pixel (mmcv's default true).
	Aligned bool `cfg:"aligned"`
	// UseTorchvision is accepted; both implementations agree.
	UseTorchvision bool `cfg:"use_torchvision"`
}

// SingleRoIExtractorOptions are mmdet's SingleRoIExtractor keys.
type SingleRoIExtractorOptions struct {
	RoILayer       RoILayerOptions `cfg:"roi_layer,required"`
	OutChannels    int             `cfg:"out_channels,required"`
	FeatmapStrides []int           `cfg:"featmap_strides,required"`
	FinestScale    float64         `cfg:"finest_scale"`
	GCContext      bool            `cfg:"gc_context"`
	InitCfg        any             `cfg:"init_cfg"`
	RoIScaleFactor *float64        `cfg:"roi_scale_factor"`
}

// Defaults are mmcv's and mmdet's: aligned RoIAlign, avg pooling,
// finest_scale 56.
func (o *SingleRoIExtractorOptions) Defaults() {
	o.RoILayer.Aligned = true
	o.RoILayer.PoolMode = "avg"
	o.FinestScale = 56
}

// SingleRoIExtractor pools each RoI from one pyramid level chosen by its
// scale, as mmdet's SingleRoIExtractor does: level floor(log2(sqrt(area) /
// finest_scale + 1e-6)), clamped to the levels there are.
type SingleRoIExtractor struct {
	params      ops.RoIAlignParams
	strides     []int
	finestScale float64
	outChannels int
}

// NewSingleRoIExtractor checks the options.
func NewSingleRoIExtractor(o SingleRoIExtractorOptions) (*SingleRoIExtractor, error) {
	l := o.RoILayer
	if l.Type != "RoIAlign" {
		return nil, fmt.Errorf("roi_layer.type %q is not supported; use RoIAlign", l.Type)
	}
	if l.PoolMode != "avg" {
		return nil, fmt.Errorf("roi_layer.pool_mode %q is not supported; use avg", l.PoolMode)
	}
	if l.SamplingRatio < 0 {
		return nil, fmt.Errorf("roi_layer.sampling_ratio %d must be 0 (adaptive) or positive", l.SamplingRatio)
	}
	oh, ow, err := pair(l.OutputSize, "roi_layer.output_size")
	if err != nil {
		return nil, err
	}
	if o.GCContext {
		return nil, fmt.Errorf("gc_context: true is not supported; remove it")
	}
	if o.RoIScaleFactor != nil {
		return nil, fmt.Errorf("roi_scale_factor is not supported; remove it")
	}
	if len(o.FeatmapStrides) == 0 {
		return nil, fmt.Errorf("featmap_strides must list the strides of the levels pooled from")
	}
	scales := make([]float64, len(o.FeatmapStrides))
	for i, s := range o.FeatmapStrides {
		if s <= 0 {
			return nil, fmt.Errorf("featmap_strides[%d] = %d must be positive", i, s)
		}
		scales[i] = 1 / float64(s)
	}
	if o.FinestScale <= 0 {
		return nil, fmt.Errorf("finest_scale %g must be positive", o.FinestScale)
	}
	return &SingleRoIExtractor{
		params:      ops.RoIAlignParams{OutH: oh, OutW: ow, SpatialScales: scales, SamplingRatio: l.SamplingRatio, Aligned: l.Aligned},
		strides:     o.FeatmapStrides,
		finestScale: o.FinestScale,
		outChannels: o.OutChannels,
	}, nil
}

// pair reads an int or a two-element list as (h, w).
func pair(v any, path string) (int, int, error) {
	switch x := v.(type) {
	case int:
		if x > 0 {
			return x, x, nil
		}
	case []any:
		if len(x) == 2 {
			h, ok1 := x[0].(int)
			w, ok2 := x[1].(int)
			if ok1 && ok2 && h > 0 && w > 0 {
				return h, w, nil
			}
		}
	}
	return 0, 0, fmt.Errorf("%s must be a positive int or [h, w], not %v", path, v)
}

// NumLevels is the number of pyramid levels the extractor pools from.
func (e *SingleRoIExtractor) NumLevels() int { return len(e.strides) }

// OutSize is the pooled height and width.
func (e *SingleRoIExtractor) OutSize() (int, int) { return e.params.OutH, e.params.OutW }

// Level is the pyramid level of a box, mmdet's map_roi_levels.
func (e *SingleRoIExtractor) Level(b bbox.Box) int {
	// float32 throughout, as mmdet computes it, so boxes at a level's
	// boundary land where they land there.
	scale := float32(math.Sqrt(float64((b[2] - b[0]) * (b[3] - b[1]))))
	l := int(math.Floor(float64(float32(math.Log2(float64(scale/float32(e.finestScale) + 1e-6))))))
	return min(max(l, 0), len(e.strides)-1)
}

// Forward pools every RoI (image index and box) from its level of feats
// into a K×C×OutH×OutW node.
func (e *SingleRoIExtractor) Forward(b *nn.Binding, path string, feats []*gorgonia.Node, rois []ops.RoI) (*gorgonia.Node, error) {
	if len(feats) < len(e.strides) {
		return nil, fmt.Errorf("%s: %d feature levels, featmap_strides names %d", path, len(feats), len(e.strides))
	}
	for i := range rois {
		rois[i].Level = e.Level(rois[i].Box)
	}
	y, err := ops.RoIAlign(feats[:len(e.strides)], rois, e.params)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// mmcv's counter has no rule for RoIAlign; it counts nothing.
	return y, nil
}
