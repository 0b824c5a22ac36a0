package datasets

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/razorgo/razor/registry"
)

// ColorJitter randomly changes brightness, contrast and saturation, in a
// random order, as mmcls 0.x does: each magnitude is drawn uniformly from
// [0, value] and negated with probability 0.5, and the image is blended
// with black (brightness), its mean gray level (contrast) or its gray
// version (saturation) with factor 1 + magnitude.
type ColorJitter struct {
	Brightness float64 `cfg:"brightness,required"`
	Contrast   float64 `cfg:"contrast,required"`
	Saturation float64 `cfg:"saturation,required"`
}

func (t *ColorJitter) check() error {
	for _, v := range []float64{t.Brightness, t.Contrast, t.Saturation} {
		if v < 0 {
			return fmt.Errorf("brightness, contrast and saturation must not be negative, got %v", v)
		}
	}
	return nil
}

// Apply jitters the image.
func (t *ColorJitter) Apply(s *Sample, rng *rand.Rand) error {
	if err := needHWC(s); err != nil {
		return err
	}
	if s.Img.C != 1 && s.Img.C != 3 {
		return fmt.Errorf("ColorJitter needs a 1- or 3-channel image, not %d channels", s.Img.C)
	}
	mags := [3]float64{
		rng.Float64() * t.Brightness,
		rng.Float64() * t.Contrast,
		rng.Float64() * t.Saturation,
	}
	order := [3]int{0, 1, 2}
	rng.Shuffle(3, func(i, j int) { order[i], order[j] = order[j], order[i] })
	for _, k := range order {
		m := mags[k]
		if rng.Float64() < 0.5 {
			m = -m
		}
		factor := 1 + m
		switch k {
		case 0:
			adjustBrightness(s.Img, factor)
		case 1:
			adjustContrast(s.Img, factor)
		case 2:
			adjustSaturation(s.Img, factor)
		}
	}
	return nil
}

// grayPlane returns the luma of every pixel (the image itself when gray),
// as cv2's BGR2GRAY computes it for the image's pixel type.
func grayPlane(im Image) []float32 {
	n := im.H * im.W
	out := make([]float32, n)
	for i := range n {
		if im.C == 1 {
			if im.F32 != nil {
				out[i] = im.F32[i]
			} else {
				out[i] = float32(im.U8[i])
			}
			continue
		}
		if im.F32 != nil {
			b, g, r := im.F32[3*i], im.F32[3*i+1], im.F32[3*i+2]
			out[i] = 0.299*r + 0.587*g + 0.114*b
		} else {
			out[i] = float32(grayOf(im.U8[3*i+2], im.U8[3*i+1], im.U8[3*i]))
		}
	}
	return out
}

// blendConst sets every value v to v*factor + deg*(1-factor), clipped to
// [0, 255] and, for uint8 pixels, truncated: mmcv's float blend followed by
// astype. For uint8 the result depends on v alone, so a table does it.
func blendConst(im Image, factor float64, deg float32) {
	f := float32(factor)
	o := deg * (1 - f)
	if im.F32 != nil {
		for k, v := range im.F32 {
			im.F32[k] = max(0, min(255, v*f+o))
		}
		return
	}
	var lut [256]uint8
	for v := range lut {
		lut[v] = uint8(max(0, min(255, float32(v)*f+o)))
	}
	for k, v := range im.U8 {
		im.U8[k] = lut[v]
	}
}

func adjustBrightness(im Image, factor float64) {
	blendConst(im, factor, 0)
}

func adjustContrast(im Image, factor float64) {
	gray := grayPlane(im)
	var sum float64
	count := 0
	for _, g := range gray {
		sum += float64(g)
		if g >= 0 && g <= 255 {
			count++
		}
	}
	mean := float32(0)
	if count > 0 {
		mean = float32(math.RoundToEven(sum / float64(count)))
	}
	blendConst(im, factor, mean)
}

// adjustSaturation blends each pixel with its gray level as cv2.addWeighted
// does: uint8 results are rounded half to even and saturated.
func adjustSaturation(im Image, factor float64) {
	gray := grayPlane(im)
	f := float32(factor)
	for i, g := range gray {
		o := g * (1 - f)
		for c := range im.C {
			k := i*im.C + c
			if im.F32 != nil {
				im.F32[k] = max(0, min(255, im.F32[k]*f+o))
				continue
			}
			v := math.RoundToEven(float64(float32(im.U8[k])*f + o))
			im.U8[k] = uint8(max(0, min(255, v)))
		}
	}
}

// Normalize converts the image to float32, optionally swaps BGR to RGB, then
// subtracts mean and divides by std per channel, recording img_norm_cfg.
type Normalize struct {
	Mean  []float64 `cfg:"mean,required"`
	Std   []float64 `cfg:"std,required"`
	ToRGB bool      `cfg:"to_rgb"`
}

// Defaults sets mmcv's default to_rgb: true.
func (t *Normalize) Defaults() { t.ToRGB = true }

func (t *Normalize) check() error {
	if len(t.Mean) == 0 || len(t.Mean) != len(t.Std) {
		return fmt.Errorf("mean %v and std %v must be non-empty and of equal length", t.Mean, t.Std)
	}
	for _, v := range t.Std {
		if v == 0 {
			return fmt.Errorf("std %v has a zero", t.Std)
		}
	}
	return nil
}

// Apply normalizes.
func (t *Normalize) Apply(s *Sample, _ *rand.Rand) error {
	if err := needHWC(s); err != nil {
		return err
	}
	c := s.Img.C
	if len(t.Mean) != 1 && len(t.Mean) != c {
		return fmt.Errorf("%d mean/std values for a %d-channel image; give %d (or add GrayToColor / color_type: color for a gray image)", len(t.Mean), c, c)
	}
	if t.ToRGB && c != 3 {
		return fmt.Errorf("to_rgb needs a 3-channel image, this one has %d channels; set to_rgb: false", c)
	}
	s.Img = s.Img.Float32()
	mean := make([]float32, c)
	inv := make([]float32, c)
	for k := range c {
		j := min(k, len(t.Mean)-1)
		mean[k] = float32(t.Mean[j])
		inv[k] = float32(1 / t.Std[j])
	}
	p := s.Img.F32
	for i := 0; i < len(p); i += c {
		if t.ToRGB {
			p[i], p[i+2] = p[i+2], p[i]
		}
		for k := range c {
			p[i+k] = (p[i+k] - mean[k]) * inv[k]
		}
	}
	s.ImgNormCfg = NormCfg{Mean: toF32(t.Mean), Std: toF32(t.Std), ToRGB: t.ToRGB}
	return nil
}

func toF32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// GrayToColor replicates a 1-channel image into 3 channels (mmcv's
// gray2bgr), so gray data sets such as MNIST feed networks with a
// 3-channel stem. A 3-channel image passes unchanged.
type GrayToColor struct{}

// Apply converts.
func (t *GrayToColor) Apply(s *Sample, _ *rand.Rand) error {
	if err := needHWC(s); err != nil {
		return err
	}
	switch s.Img.C {
	case 3:
		return nil
	case 1:
	default:
		return fmt.Errorf("GrayToColor needs a 1- or 3-channel image, not %d channels", s.Img.C)
	}
	src := s.Img
	out := Image{H: src.H, W: src.W, C: 3}
	if src.F32 != nil {
		out.F32 = make([]float32, 3*len(src.F32))
		for i, v := range src.F32 {
			out.F32[3*i], out.F32[3*i+1], out.F32[3*i+2] = v, v, v
		}
	} else {
		out.U8 = make([]uint8, 3*len(src.U8))
		for i, v := range src.U8 {
			out.U8[3*i], out.U8[3*i+1], out.U8[3*i+2] = v, v, v
		}
	}
	s.Img = out
	s.ImgShape = out.Shape()
	return nil
}

func init() {
	registry.MustRegister(Transforms, "ColorJitter", func(o ColorJitter) (Transform, error) { return checked(&o) })
	registry.MustRegister(Transforms, "Normalize", func(o Normalize) (Transform, error) { return checked(&o) })
	registry.MustRegister(Transforms, "GrayToColor", func(o GrayToColor) (Transform, error) { return &o, nil })
}
