package bbox

import (
	"errors"
	"fmt"
)

// Box is one axis-aligned box (x1, y1, x2, y2) in pixels; its width is
// x2-x1 (no +1).
type Box = [4]float32

// overlapEps is the floor mmdet's bbox_overlaps puts under every union, so
// degenerate boxes give 0 instead of NaN.
const overlapEps float32 = 1e-6

// Overlaps is mmdet 2.x's bbox_overlaps(a, b, mode) with is_aligned false:
// entry [i*len(b)+j] relates a[i] to b[j]. mode is "iou" (intersection
// over union), "iof" (intersection over the area of a[i], the
// "foreground"), or "giou" (generalised IoU). Unions below 1e-6 are
// raised to 1e-6. Any other mode is a programming error and panics.
func Overlaps(a, b []Box, mode string) []float32 {
	m := overlapMode(mode)
	out := make([]float32, len(a)*len(b))
	for i := range a {
		for j := range b {
			out[i*len(b)+j] = overlap(a[i], b[j], m)
		}
	}
	return out
}

// AlignedOverlaps is bbox_overlaps with is_aligned true: entry i relates
// a[i] to b[i]. a and b must have the same length; a mismatch or an
// unknown mode is a programming error and panics.
func AlignedOverlaps(a, b []Box, mode string) []float32 {
	m := overlapMode(mode)
	if len(a) != len(b) {
		panic(fmt.Sprintf("bbox.AlignedOverlaps: %d boxes against %d; aligned overlaps need equal counts", len(a), len(b)))
	}
	out := make([]float32, len(a))
	for i := range a {
		out[i] = overlap(a[i], b[i], m)
	}
	return out
}

type overlapKind int

const (
	modeIoU overlapKind = iota
	modeIoF
	modeGIoU
)

func overlapMode(mode string) overlapKind {
	switch mode {
	case "iou":
		return modeIoU
	case "iof":
		return modeIoF
	case "giou":
		return modeGIoU
	}
	panic(fmt.Sprintf("bbox: overlap mode %q is not one of iou, iof, giou", mode))
}

// overlap computes one entry in the operation order of bbox_overlaps, each
// step rounded to float32 (the explicit conversions keep the compiler from
// fusing a multiply and an add).
func overlap(p, q Box, m overlapKind) float32 {
	area1 := area(p)
	area2 := area(q)
	w := max(min(p[2], q[2])-max(p[0], q[0]), 0)
	h := max(min(p[3], q[3])-max(p[1], q[1]), 0)
	inter := float32(w * h)
	union := area1
	if m != modeIoF {
		union = float32(area1+area2) - inter
	}
	union = max(union, overlapEps)
	iou := inter / union
	if m != modeGIoU {
		return iou
	}
	ew := max(max(p[2], q[2])-min(p[0], q[0]), 0)
	eh := max(max(p[3], q[3])-min(p[1], q[1]), 0)
	enclose := max(float32(ew*eh), overlapEps)
	return iou - float32(enclose-union)/enclose
}

// area is (x2-x1)*(y2-y1), rounded to float32 before any sum uses it.
func area(b Box) float32 { return float32((b[2] - b[0]) * (b[3] - b[1])) }

// BboxOverlaps2DOptions are mmdet's BboxOverlaps2D arguments. Only the
// float32 computation is supported: scale must stay 1 and dtype unset,
// because both only matter for mmdet's fp16 path.
type BboxOverlaps2DOptions struct {
	// Scale scales boxes before an fp16 computation; must be 1.
	Scale float64 `cfg:"scale"`
	// Dtype selects fp16; must be null.
	Dtype any `cfg:"dtype"`
}

// Defaults sets mmdet's defaults.
func (o *BboxOverlaps2DOptions) Defaults() { o.Scale = 1 }

// BboxOverlaps2D is the IoU calculator the assigner uses (`iou_calculator:
// {type: BboxOverlaps2D}`).
type BboxOverlaps2D struct{}

// NewBboxOverlaps2D checks the options.
func NewBboxOverlaps2D(o BboxOverlaps2DOptions) (*BboxOverlaps2D, error) {
	if o.Dtype != nil {
		return nil, fmt.Errorf("dtype %v is not supported; remove it (overlaps are computed in float32)", o.Dtype)
	}
	if o.Scale != 1 {
		return nil, errors.New("scale only applies with dtype fp16, which is not supported; remove it or set it to 1")
	}
	return &BboxOverlaps2D{}, nil
}

// Overlaps is the package's Overlaps.
func (*BboxOverlaps2D) Overlaps(a, b []Box, mode string) []float32 { return Overlaps(a, b, mode) }
