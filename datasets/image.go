package datasets

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // registers JPEG with image.Decode
	_ "image/png"  // registers PNG with image.Decode
	"os"
)

// Image is an image as mmcv keeps it between transforms: H rows of W pixels
// of C channels, interleaved (HWC), in BGR order for colour images. Exactly
// one of U8 and F32 holds the pixels: loading gives uint8, and Normalize (or
// LoadImageFromFile with to_float32) gives float32. After ImageToTensor or
// DefaultFormatBundle the layout is CHW (planar) and CHW is true; geometric
// transforms refuse such an image.
type Image struct {
	H, W, C int
	U8      []uint8
	F32     []float32
	CHW     bool
}

// NewImageU8 returns a zeroed uint8 image.
func NewImageU8(h, w, c int) Image {
	return Image{H: h, W: w, C: c, U8: make([]uint8, h*w*c)}
}

// Empty reports whether the image holds no pixels (no image loaded yet).
func (im Image) Empty() bool { return im.U8 == nil && im.F32 == nil }

// IsFloat reports whether the pixels are float32.
func (im Image) IsFloat() bool { return im.F32 != nil }

// Shape returns (H, W, C), the shape mmcv records as img_shape.
func (im Image) Shape() [3]int { return [3]int{im.H, im.W, im.C} }

// At returns channel c of pixel (y, x) as a float64, whatever the layout.
func (im Image) At(y, x, c int) float64 {
	i := (y*im.W+x)*im.C + c
	if im.CHW {
		i = (c*im.H+y)*im.W + x
	}
	if im.F32 != nil {
		return float64(im.F32[i])
	}
	return float64(im.U8[i])
}

// Float32 returns the image converted to float32 (a copy when it was uint8,
// the image itself otherwise).
func (im Image) Float32() Image {
	if im.F32 != nil {
		return im
	}
	out := Image{H: im.H, W: im.W, C: im.C, CHW: im.CHW, F32: make([]float32, len(im.U8))}
	for i, v := range im.U8 {
		out.F32[i] = float32(v)
	}
	return out
}

// ColorType selects how LoadImageFromFile converts a decoded image, as
// mmcv's imread flag does.
type ColorType string

// The color types mmcv's imread accepts and razor supports.
const (
	// ColorBGR gives 3 channels in BGR order; gray images are replicated.
	ColorBGR ColorType = "color"
	// Grayscale gives 1 channel (the luma of colour images).
	Grayscale ColorType = "grayscale"
	// Unchanged keeps 1 channel for gray images, 3 (BGR) for colour ones and
	// 4 (BGRA) for images with an alpha channel.
	Unchanged ColorType = "unchanged"
)

func (ct ColorType) valid() error {
	switch ct {
	case ColorBGR, Grayscale, Unchanged:
		return nil
	}
	return fmt.Errorf("color_type %q is not supported; use %q, %q or %q", string(ct), ColorBGR, Grayscale, Unchanged)
}

// ReadImage decodes a JPEG or PNG file into an HWC uint8 image with the
// channels ct asks for. Errors name the file.
func ReadImage(path string, ct ColorType) (Image, error) {
	if err := ct.valid(); err != nil {
		return Image{}, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Image{}, fmt.Errorf("image file %s does not exist", path)
		}
		return Image{}, fmt.Errorf("read image %s: %w", path, err)
	}
	im, err := DecodeImage(data, ct)
	if err != nil {
		return Image{}, fmt.Errorf("image file %s: %w", path, err)
	}
	return im, nil
}

// MaxImagePixels bounds the images razor decodes (8192x8192): COCO's are at
// most 640 pixels a side, mmdet's training scales 1333x800.
const MaxImagePixels = 1 << 26

// DecodeImage decodes JPEG or PNG bytes as ReadImage does.
func DecodeImage(data []byte, ct ColorType) (Image, error) {
	if err := ct.valid(); err != nil {
		return Image{}, err
	}
	// The header's size comes first: a few bytes of PNG may declare an
	// image of any size, which decoding would allocate.
	if cfg, format, err := image.DecodeConfig(bytes.NewReader(data)); err == nil && int64(cfg.Width)*int64(cfg.Height) > MaxImagePixels {
		return Image{}, fmt.Errorf("%s image of %dx%d pixels is larger than the %d pixels razor decodes", format, cfg.Width, cfg.Height, int64(MaxImagePixels))
	}
	src, format, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return Image{}, errors.New("not a JPEG or PNG image (unknown format)")
		}
		return Image{}, fmt.Errorf("corrupt image: %w", err)
	}
	b := src.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return Image{}, fmt.Errorf("%s image has no pixels (%dx%d)", format, b.Dx(), b.Dy())
	}
	return fromGoImage(src, ct), nil
}

// hasColor reports whether src's model can carry colour; gray models give
// 1 channel for Unchanged, as cv2 does for gray files.
func hasColor(src image.Image) bool {
	switch src.ColorModel() {
	case color.GrayModel, color.Gray16Model:
		return false
	}
	return true
}

// hasAlpha reports whether the file had an alpha channel: Go's PNG decoder
// returns non-premultiplied types exactly for those.
func hasAlpha(src image.Image) bool {
	switch src.(type) {
	case *image.NRGBA, *image.NRGBA64:
		return true
	}
	return false
}

// fromGoImage converts a decoded image into HWC uint8 with BGR(A) order.
func fromGoImage(src image.Image, ct ColorType) Image {
	b := src.Bounds()
	h, w := b.Dy(), b.Dx()
	channels := 3
	switch {
	case ct == Grayscale:
		channels = 1
	case ct == Unchanged && !hasColor(src):
		channels = 1
	case ct == Unchanged && hasAlpha(src):
		channels = 4
	}
	out := NewImageU8(h, w, channels)
	switch s := src.(type) {
	case *image.YCbCr:
		fromYCbCr(s, out)
		return out
	case *image.Gray:
		for y := range h {
			row := s.Pix[y*s.Stride : y*s.Stride+w]
			for x, v := range row {
				o := (y*w + x) * channels
				for c := range channels {
					out.U8[o+c] = v
				}
			}
		}
		return out
	}
	for y := range h {
		for x := range w {
			p := color.NRGBAModel.Convert(src.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			o := (y*w + x) * channels
			switch channels {
			case 1:
				out.U8[o] = grayOf(p.R, p.G, p.B)
			case 3:
				out.U8[o], out.U8[o+1], out.U8[o+2] = p.B, p.G, p.R
			case 4:
				out.U8[o], out.U8[o+1], out.U8[o+2], out.U8[o+3] = p.B, p.G, p.R, p.A
			}
		}
	}
	return out
}

// fromYCbCr converts a decoded JPEG; for grayscale it keeps the luma plane as
// libjpeg's grayscale decoding (cv2.IMREAD_GRAYSCALE) does.
func fromYCbCr(s *image.YCbCr, out Image) {
	b := s.Rect
	hs, vs := chromaSubsampling(s.SubsampleRatio)
	for y := range out.H {
		yRow := s.Y[(y)*s.YStride:]
		o := y * out.W * out.C
		if out.C == 1 {
			copy(out.U8[o:o+out.W], yRow[:out.W])
			continue
		}
		cRow := ((b.Min.Y+y)/vs - b.Min.Y/vs) * s.CStride
		for x := range out.W {
			ci := cRow + (b.Min.X+x)/hs - b.Min.X/hs
			r, g, bl := color.YCbCrToRGB(yRow[x], s.Cb[ci], s.Cr[ci])
			p := o + x*3
			out.U8[p], out.U8[p+1], out.U8[p+2] = bl, g, r
		}
	}
}

// chromaSubsampling gives the horizontal and vertical chroma subsampling
// factors of a JPEG's ratio.
func chromaSubsampling(r image.YCbCrSubsampleRatio) (int, int) {
	switch r {
	case image.YCbCrSubsampleRatio422:
		return 2, 1
	case image.YCbCrSubsampleRatio420:
		return 2, 2
	case image.YCbCrSubsampleRatio440:
		return 1, 2
	case image.YCbCrSubsampleRatio411:
		return 4, 1
	case image.YCbCrSubsampleRatio410:
		return 4, 2
	}
	return 1, 1
}

// grayOf is the BT.601 luma in cv2's fixed-point form (COLOR_BGR2GRAY on
// uint8: weights 4899, 9617, 1868 over 2^14, rounded).
func grayOf(r, g, b uint8) uint8 {
	return uint8((4899*int(r) + 9617*int(g) + 1868*int(b) + 1<<13) >> 14)
}
