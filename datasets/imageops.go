package datasets

import (
	"fmt"
	"math"
)

// pixel is the element type of an Image's pixels.
type pixel interface{ uint8 | float32 }

// Interpolation names a resampling method, as mmcv's imresize calls them.
type Interpolation string

// The interpolations razor implements, with cv2's sampling conventions.
const (
	Bilinear Interpolation = "bilinear"
	Nearest  Interpolation = "nearest"
)

func (in Interpolation) valid() error {
	switch in {
	case Bilinear, Nearest:
		return nil
	}
	return fmt.Errorf("interpolation %q is not supported; use %q or %q", string(in), Bilinear, Nearest)
}

// mapImage applies the same operation to whichever pixel slice im holds.
func mapImage(im Image, h, w int, u8 func([]uint8) []uint8, f32 func([]float32) []float32) Image {
	out := Image{H: h, W: w, C: im.C}
	if im.F32 != nil {
		out.F32 = f32(im.F32)
	} else {
		out.U8 = u8(im.U8)
	}
	return out
}

// Crop returns the region x0 <= x < x0+cw, y0 <= y < y0+ch; the region must
// lie inside the image.
func (im Image) Crop(x0, y0, cw, ch int) Image {
	return mapImage(im, ch, cw,
		func(p []uint8) []uint8 { return cropHWC(p, im.W, im.C, x0, y0, cw, ch) },
		func(p []float32) []float32 { return cropHWC(p, im.W, im.C, x0, y0, cw, ch) })
}

func cropHWC[T pixel](src []T, w, c, x0, y0, cw, ch int) []T {
	out := make([]T, cw*ch*c)
	for y := range ch {
		s := ((y0+y)*w + x0) * c
		copy(out[y*cw*c:(y+1)*cw*c], src[s:s+cw*c])
	}
	return out
}

// Flip mirrors the image: "horizontal" (left-right), "vertical" (top-bottom)
// or "diagonal" (both), as mmcv's imflip.
func (im Image) Flip(direction string) Image {
	return mapImage(im, im.H, im.W,
		func(p []uint8) []uint8 { return flipHWC(p, im.H, im.W, im.C, direction) },
		func(p []float32) []float32 { return flipHWC(p, im.H, im.W, im.C, direction) })
}

func flipHWC[T pixel](src []T, h, w, c int, direction string) []T {
	out := make([]T, len(src))
	fx := direction == "horizontal" || direction == "diagonal"
	fy := direction == "vertical" || direction == "diagonal"
	for y := range h {
		sy := y
		if fy {
			sy = h - 1 - y
		}
		for x := range w {
			sx := x
			if fx {
				sx = w - 1 - x
			}
			copy(out[(y*w+x)*c:(y*w+x+1)*c], src[(sy*w+sx)*c:(sy*w+sx+1)*c])
		}
	}
	return out
}

// Resize resamples the image to nh rows and nw columns. Bilinear follows
// cv2.INTER_LINEAR (pixel centres at +0.5, edge pixels replicated, no
// antialiasing); uint8 results are rounded and saturated as cv2 does.
func (im Image) Resize(nh, nw int, interp Interpolation) Image {
	return mapImage(im, nh, nw,
		func(p []uint8) []uint8 { return resizeHWC(p, im.H, im.W, im.C, nh, nw, interp) },
		func(p []float32) []float32 { return resizeHWC(p, im.H, im.W, im.C, nh, nw, interp) })
}

// linearTaps gives, for each output coordinate, the first source index and
// the weight of the second one, as cv2 computes them for INTER_LINEAR.
func linearTaps(src, dst int) ([]int, []float32) {
	idx := make([]int, dst)
	wt := make([]float32, dst)
	scale := float64(src) / float64(dst)
	for d := range dst {
		f := (float64(d)+0.5)*scale - 0.5
		s := int(math.Floor(f))
		f -= float64(s)
		if s < 0 {
			s, f = 0, 0
		}
		if s >= src-1 {
			s, f = src-1, 0
		}
		idx[d], wt[d] = s, float32(f)
	}
	return idx, wt
}

func resizeHWC[T pixel](src []T, h, w, c, nh, nw int, interp Interpolation) []T {
	out := make([]T, nh*nw*c)
	if interp == Nearest {
		for y := range nh {
			sy := min(int(math.Floor(float64(y)*float64(h)/float64(nh))), h-1)
			for x := range nw {
				sx := min(int(math.Floor(float64(x)*float64(w)/float64(nw))), w-1)
				copy(out[(y*nw+x)*c:(y*nw+x+1)*c], src[(sy*w+sx)*c:(sy*w+sx+1)*c])
			}
		}
		return out
	}
	xi, xw := linearTaps(w, nw)
	yi, yw := linearTaps(h, nh)
	var zero T
	_, isU8 := any(zero).(uint8)
	for y := range nh {
		fy := yw[y]
		row0 := src[yi[y]*w*c:]
		row1 := src[min(yi[y]+1, h-1)*w*c:]
		o := y * nw * c
		for x := range nw {
			fx := xw[x]
			p0 := xi[x] * c
			p1 := min(xi[x]+1, w-1) * c
			w00, w01 := (1-fy)*(1-fx), (1-fy)*fx
			w10, w11 := fy*(1-fx), fy*fx
			for k := range c {
				v := w00*float32(row0[p0+k]) + w01*float32(row0[p1+k]) + w10*float32(row1[p0+k]) + w11*float32(row1[p1+k])
				if isU8 {
					// v is in [0, 255]: adding 0.5 and truncating rounds it.
					v = min(v+0.5, 255)
				}
				out[o+k] = T(v)
			}
			o += c
		}
	}
	return out
}

// Pad returns the image placed at the top-left of an nh x nw canvas filled
// with val, as mmcv's impad with padding_mode "constant".
func (im Image) Pad(nh, nw int, val float64) Image {
	return mapImage(im, nh, nw,
		func(p []uint8) []uint8 { return padHWC(p, im.H, im.W, im.C, nh, nw, uint8(max(0, min(255, val)))) },
		func(p []float32) []float32 { return padHWC(p, im.H, im.W, im.C, nh, nw, float32(val)) })
}

func padHWC[T pixel](src []T, h, w, c, nh, nw int, val T) []T {
	out := make([]T, nh*nw*c)
	if val != 0 {
		for i := range out {
			out[i] = val
		}
	}
	for y := range h {
		copy(out[y*nw*c:y*nw*c+w*c], src[y*w*c:(y+1)*w*c])
	}
	return out
}

// ToCHW returns the image with planar (CHW) layout, as the transpose(2, 0, 1)
// of mmcv's formatting steps.
func (im Image) ToCHW() Image {
	if im.CHW {
		return im
	}
	out := mapImage(im, im.H, im.W,
		func(p []uint8) []uint8 { return toCHW(p, im.H, im.W, im.C) },
		func(p []float32) []float32 { return toCHW(p, im.H, im.W, im.C) })
	out.CHW = true
	return out
}

func toCHW[T pixel](src []T, h, w, c int) []T {
	out := make([]T, len(src))
	hw := h * w
	for i := range hw {
		for k := range c {
			out[k*hw+i] = src[i*c+k]
		}
	}
	return out
}
