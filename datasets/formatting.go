package datasets

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/razorgo/razor/registry"
)

// sampleKeys are the keys Collect, ToTensor and ImageToTensor may name.
var sampleKeys = []string{"img", "gt_label", "gt_bboxes", "gt_labels", "gt_bboxes_ignore"}

// metaKeys are the img_metas entries Collect may keep.
var metaKeys = []string{"filename", "ori_filename", "ori_shape", "img_shape", "pad_shape", "scale_factor", "flip", "flip_direction", "img_norm_cfg"}

func checkKeys(keys []string, known []string, what string) error {
	for _, k := range keys {
		if !slices.Contains(known, k) {
			return fmt.Errorf("unknown %s %q; known: %s", what, k, strings.Join(known, ", "))
		}
	}
	return nil
}

// present reports whether the sample carries key, for the "key missing"
// errors mmcv raises as KeyError.
func present(s *Sample, key string) bool {
	switch key {
	case "img":
		return !s.Img.Empty()
	case "gt_label":
		return s.GTLabel != NoLabel
	case "gt_bboxes":
		return s.GT != nil && s.GT.BBoxes != nil
	case "gt_labels":
		return s.GT != nil && s.GT.Labels != nil
	case "gt_bboxes_ignore":
		return s.GT != nil && s.GT.BBoxesIgnore != nil
	}
	return false
}

func missingKey(key string) error {
	hint := ""
	switch key {
	case "img":
		hint = " (load it with LoadImageFromFile)"
	case "gt_bboxes", "gt_labels", "gt_bboxes_ignore":
		hint = " (add LoadAnnotations after LoadImageFromFile)"
	case "gt_label":
		hint = " (the dataset gives no classification label)"
	}
	return fmt.Errorf("the sample has no %s%s", key, hint)
}

// ImageToTensor transposes the image to CHW, as mmcv's ImageToTensor; the
// pixel type is kept (the loader makes the batch float32).
type ImageToTensor struct {
	Keys []string `cfg:"keys,required"`
}

func (t *ImageToTensor) check() error {
	for _, k := range t.Keys {
		if k != "img" {
			return fmt.Errorf("keys: %q is not an image; razor samples have one image, \"img\"", k)
		}
	}
	return nil
}

// Apply transposes.
func (t *ImageToTensor) Apply(s *Sample, _ *rand.Rand) error {
	for _, k := range t.Keys {
		if !present(s, k) {
			return missingKey(k)
		}
		s.Img = s.Img.ToCHW()
	}
	return nil
}

// ToTensor marks non-image keys as tensors, as mmcv's ToTensor. Razor's
// batches hold them typed already, so the step only checks the keys exist.
type ToTensor struct {
	Keys []string `cfg:"keys,required"`
}

func (t *ToTensor) check() error {
	if slices.Contains(t.Keys, "img") {
		return errors.New("keys: use ImageToTensor for img, which also transposes it to CHW")
	}
	return checkKeys(t.Keys, sampleKeys, "key")
}

// Apply checks the keys.
func (t *ToTensor) Apply(s *Sample, _ *rand.Rand) error {
	for _, k := range t.Keys {
		if !present(s, k) {
			return missingKey(k)
		}
	}
	return nil
}

// DefaultFormatBundle transposes the image to CHW (as float32 when
// img_to_float) and fills the metas a detector needs that earlier steps did
// not set: pad_shape = img_shape, scale_factor = 1, img_norm_cfg identity.
type DefaultFormatBundle struct {
	ImgToFloat bool `cfg:"img_to_float"`
}

// Defaults sets mmdet's default img_to_float: true.
func (t *DefaultFormatBundle) Defaults() { t.ImgToFloat = true }

// Apply formats.
func (t *DefaultFormatBundle) Apply(s *Sample, _ *rand.Rand) error {
	if s.Img.Empty() {
		return nil
	}
	if s.PadShape == [3]int{} {
		s.PadShape = s.Img.Shape()
	}
	if s.ScaleFactor == [4]float32{} {
		s.ScaleFactor = [4]float32{1, 1, 1, 1}
	}
	if s.ImgNormCfg.Mean == nil {
		s.ImgNormCfg = NormCfg{Mean: make([]float32, s.Img.C), Std: slices.Repeat([]float32{1}, s.Img.C)}
	}
	if t.ImgToFloat {
		s.Img = s.Img.Float32()
	}
	s.Img = s.Img.ToCHW()
	return nil
}

// CollectOptions configure Collect.
type CollectOptions struct {
	Keys     []string `cfg:"keys,required"`
	MetaKeys []string `cfg:"meta_keys"`
}

// Defaults sets mmdet's default meta_keys.
func (o *CollectOptions) Defaults() {
	o.MetaKeys = []string{"filename", "ori_filename", "ori_shape", "img_shape", "pad_shape", "scale_factor", "flip", "flip_direction", "img_norm_cfg"}
}

// Collect keeps the listed keys and metas and clears the rest, so a batch
// carries exactly what the config asked for. It ends a pipeline, as in mmcv.
type Collect struct {
	keys []string
	meta []string
}

// NewCollect checks the options.
func NewCollect(o CollectOptions) (*Collect, error) {
	if err := checkKeys(o.Keys, sampleKeys, "key"); err != nil {
		return nil, err
	}
	if err := checkKeys(o.MetaKeys, metaKeys, "meta key"); err != nil {
		return nil, err
	}
	return &Collect{keys: slices.Clone(o.Keys), meta: slices.Clone(o.MetaKeys)}, nil
}

// Apply collects.
func (t *Collect) Apply(s *Sample, _ *rand.Rand) error {
	for _, k := range t.keys {
		if !present(s, k) {
			return missingKey(k)
		}
	}
	keep := func(k string) bool { return slices.Contains(t.keys, k) }
	if !keep("img") {
		s.Img = Image{}
	}
	if !keep("gt_label") {
		s.GTLabel = NoLabel
	}
	if s.GT != nil {
		if !keep("gt_bboxes") {
			s.GT.BBoxes = nil
		}
		if !keep("gt_labels") {
			s.GT.Labels = nil
		}
		if !keep("gt_bboxes_ignore") {
			s.GT.BBoxesIgnore = nil
		}
		if s.GT.BBoxes == nil && s.GT.Labels == nil && s.GT.BBoxesIgnore == nil {
			s.GT = nil
		}
	}
	var m Meta
	for _, k := range t.meta {
		switch k {
		case "filename":
			m.Filename = s.Filename
		case "ori_filename":
			m.OriFilename = s.OriFilename
		case "ori_shape":
			m.OriShape = s.OriShape
		case "img_shape":
			m.ImgShape = s.ImgShape
		case "pad_shape":
			m.PadShape = s.PadShape
		case "scale_factor":
			m.ScaleFactor = s.ScaleFactor
		case "flip":
			m.Flip = s.Flip
		case "flip_direction":
			m.FlipDirection = s.FlipDirection
		case "img_norm_cfg":
			m.ImgNormCfg = s.ImgNormCfg
		}
	}
	s.Meta = m
	return nil
}

func init() {
	registry.MustRegister(Transforms, "ImageToTensor", func(o ImageToTensor) (Transform, error) { return checked(&o) })
	registry.MustRegister(Transforms, "ToTensor", func(o ToTensor) (Transform, error) { return checked(&o) })
	registry.MustRegister(Transforms, "DefaultFormatBundle", func(o DefaultFormatBundle) (Transform, error) { return &o, nil })
	registry.MustRegister(Transforms, "Collect", func(o CollectOptions) (Transform, error) { return NewCollect(o) })
}
