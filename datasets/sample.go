package datasets

import "slices"

// NoLabel is Sample.GTLabel when a sample has no classification label.
const NoLabel = -1

// Box is an axis-aligned box (x1, y1, x2, y2) in pixels, x2 = x + w as mmdet
// converts COCO's xywh (no -1).
type Box [4]float32

// Instances are the boxes of one image: labelled boxes and the boxes to
// ignore (COCO crowd regions), as mmdet's gt_bboxes, gt_labels and
// gt_bboxes_ignore.
type Instances struct {
	BBoxes       []Box
	Labels       []int
	BBoxesIgnore []Box
}

// Clone returns a deep copy, so transforms never alias a dataset's cache.
func (in *Instances) Clone() *Instances {
	if in == nil {
		return nil
	}
	return &Instances{BBoxes: slices.Clone(in.BBoxes), Labels: slices.Clone(in.Labels), BBoxesIgnore: slices.Clone(in.BBoxesIgnore)}
}

// NormCfg records what Normalize did (mmcv's img_norm_cfg), so a model or a
// visualiser can undo it.
type NormCfg struct {
	Mean  []float32
	Std   []float32
	ToRGB bool
}

// Meta is the per-image information mmcv collects into img_metas. Shapes
// are (H, W, C). ScaleFactor is (w, h, w, h) as mmdet records it, so that
// boxes predicted on the resized image divide by it to return to the
// original image.
type Meta struct {
	Filename      string
	OriFilename   string
	OriShape      [3]int
	ImgShape      [3]int
	PadShape      [3]int
	ScaleFactor   [4]float32
	Flip          bool
	FlipDirection string
	ImgNormCfg    NormCfg
}

// ImgInfo describes a sample's image file before it is loaded (mmdet's
// img_info). ID is the COCO image id, 0 for datasets without one.
type ImgInfo struct {
	Filename string
	Width    int
	Height   int
	ID       int64
}

// Sample is one item flowing through a pipeline: mmcv's `results` dict with
// typed fields. A dataset's Get fills the source fields (ImgPrefix, ImgInfo,
// Ann, or Img directly for in-memory sets such as MNIST, and GTLabel); the
// transforms fill the rest.
type Sample struct {
	// Index is the sample's position in its dataset.
	Index int
	// Source names the entry the sample came from (an annotation file and
	// image id, a list file and line) for error messages.
	Source string
	// ImgPrefix is joined with ImgInfo.Filename by LoadImageFromFile.
	ImgPrefix string
	ImgInfo   ImgInfo
	// Ann is the dataset's annotation (mmdet's ann_info); LoadAnnotations
	// copies it into GT.
	Ann *Instances

	Img Image
	Meta
	// GTLabel is the classification label, or NoLabel.
	GTLabel int
	// GT holds the detection targets once LoadAnnotations ran; nil before.
	GT *Instances
	// Scale is the target (w, h) a test-time wrapper such as
	// MultiScaleFlipAug fixes for Resize; zero when Resize draws its own.
	Scale [2]int
	// FlipFixed tells RandomFlip that Flip and FlipDirection were decided
	// by a wrapper (MultiScaleFlipAug) and must not be drawn again.
	FlipFixed bool
}

// Batch is what a loader yields: samples_per_gpu samples collated.
type Batch struct {
	// Img holds the images as one NCHW float32 tensor of shape Shape,
	// zero-padded at the bottom and right to the largest image in the batch
	// (rounded up to the loader's size_divisor); nil when Collect dropped img.
	Img   []float32
	Shape [4]int
	// Labels are the classification labels, nil unless gt_label was collected.
	Labels []int
	// GT are the per-image detection targets, nil unless gt_bboxes was
	// collected.
	GT []Instances
	// Metas are the per-image metas Collect kept.
	Metas []Meta
	// Indices are the samples' positions in the dataset.
	Indices []int
	// Epoch is the pass over the data the batch belongs to (for endless
	// iteration, the pass of its first sample).
	Epoch int
}

// Len is the number of samples in the batch.
func (b *Batch) Len() int { return len(b.Indices) }
