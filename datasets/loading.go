package datasets

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"

	"github.com/razorgo/razor/registry"
)

// LoadImageFromFile reads the sample's image file (ImgPrefix joined with
// ImgInfo.Filename) as mmcv's LoadImageFromFile does: BGR uint8 unless
// to_float32, channels as color_type asks.
type LoadImageFromFile struct {
	ToFloat32      bool           `cfg:"to_float32"`
	ColorType      ColorType      `cfg:"color_type"`
	ChannelOrder   string         `cfg:"channel_order"`
	FileClientArgs FileClientArgs `cfg:"file_client_args"`
}

// FileClientArgs is mmcv's file_client_args; razor reads local files only,
// so the one backend accepted is "disk", the default.
type FileClientArgs struct {
	Backend string `cfg:"backend"`
}

func (a FileClientArgs) check() error {
	if a.Backend != "" && a.Backend != "disk" {
		return fmt.Errorf("file_client_args.backend %q is not supported; razor reads local files (backend: disk)", a.Backend)
	}
	return nil
}

// Defaults sets mmcv's defaults.
func (t *LoadImageFromFile) Defaults() {
	t.ColorType = ColorBGR
	t.ChannelOrder = "bgr"
}

func (t *LoadImageFromFile) check() error {
	if err := t.ColorType.valid(); err != nil {
		return err
	}
	if err := t.FileClientArgs.check(); err != nil {
		return err
	}
	if t.ChannelOrder != "bgr" && t.ChannelOrder != "rgb" {
		return fmt.Errorf("channel_order %q must be \"bgr\" or \"rgb\"", t.ChannelOrder)
	}
	return nil
}

// Apply loads the image and records filename, ori_filename, img_shape and
// ori_shape.
func (t *LoadImageFromFile) Apply(s *Sample, _ *rand.Rand) error {
	if s.ImgInfo.Filename == "" {
		return errors.New("the sample names no image file; in-memory datasets such as MNIST give the image directly, so drop LoadImageFromFile from their pipeline")
	}
	path := s.ImgInfo.Filename
	if s.ImgPrefix != "" {
		path = filepath.Join(s.ImgPrefix, path)
	}
	img, err := ReadImage(path, t.ColorType)
	if err != nil {
		return err
	}
	if s.ImgInfo.Width > 0 && (img.W != s.ImgInfo.Width || img.H != s.ImgInfo.Height) {
		return fmt.Errorf("image file %s is %dx%d but the annotations say %dx%d (width x height); its boxes would not fit it", path, img.W, img.H, s.ImgInfo.Width, s.ImgInfo.Height)
	}
	if t.ChannelOrder == "rgb" && img.C >= 3 {
		for i := 0; i < len(img.U8); i += img.C {
			img.U8[i], img.U8[i+2] = img.U8[i+2], img.U8[i]
		}
	}
	if t.ToFloat32 {
		img = img.Float32()
	}
	s.Img = img
	s.Filename = path
	s.OriFilename = s.ImgInfo.Filename
	s.ImgShape = img.Shape()
	s.OriShape = img.Shape()
	return nil
}

// LoadAnnotations copies the dataset's annotation into the sample's GT, as
// mmdet's LoadAnnotations does with ann_info.
type LoadAnnotations struct {
	WithBBox  bool `cfg:"with_bbox"`
	WithLabel bool `cfg:"with_label"`
	WithMask  bool `cfg:"with_mask"`
	WithSeg   bool `cfg:"with_seg"`
	// Poly2Mask only shapes masks, which razor does not read; accepted so
	// mmdet configs load.
	Poly2Mask bool `cfg:"poly2mask"`
	// DenormBBox (scaling normalised boxes by the image size) must stay
	// false: COCO boxes are in pixels.
	DenormBBox     bool           `cfg:"denorm_bbox"`
	FileClientArgs FileClientArgs `cfg:"file_client_args"`
}

// Defaults sets mmdet's defaults.
func (t *LoadAnnotations) Defaults() {
	t.WithBBox = true
	t.WithLabel = true
	t.Poly2Mask = true
}

func (t *LoadAnnotations) check() error {
	if t.WithMask || t.WithSeg {
		return errors.New("with_mask and with_seg are not supported: razor reads boxes only")
	}
	if t.DenormBBox {
		return errors.New("denorm_bbox: true is not supported: CocoDataset boxes are in pixels already")
	}
	return t.FileClientArgs.check()
}

// Apply sets GT from the dataset's annotation.
func (t *LoadAnnotations) Apply(s *Sample, _ *rand.Rand) error {
	if s.Ann == nil {
		return errors.New("the dataset gives no box annotations; LoadAnnotations belongs in detection pipelines (CocoDataset)")
	}
	ann := s.Ann.Clone()
	gt := &Instances{}
	if t.WithBBox {
		gt.BBoxes = ann.BBoxes
		gt.BBoxesIgnore = ann.BBoxesIgnore
		if gt.BBoxes == nil {
			gt.BBoxes = []Box{}
		}
		if gt.BBoxesIgnore == nil {
			gt.BBoxesIgnore = []Box{}
		}
	}
	if t.WithLabel {
		gt.Labels = ann.Labels
		if gt.Labels == nil {
			gt.Labels = []int{}
		}
	}
	s.GT = gt
	return nil
}

// checked adapts a transform constructor with a check method to a builder.
func checked[T interface {
	Transform
	check() error
}](t T) (Transform, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return t, nil
}

func init() {
	registry.MustRegister(Transforms, "LoadImageFromFile", func(o LoadImageFromFile) (Transform, error) { return checked(&o) })
	registry.MustRegister(Transforms, "LoadAnnotations", func(o LoadAnnotations) (Transform, error) { return checked(&o) })
}
