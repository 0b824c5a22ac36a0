//go:build amd64 && !purego

package ops

import (
	"unsafe"

	"github.com/razorgo/razor/models/ops/internal/simd"
)

// On amd64 with AVX2 and FMA, float32 depthwise convolutions run on the
// assembly kernels of package simd (no C compiler needed); float64
// (gradient checks) and CPUs without AVX2 stay on the Go loops, as does a
// build with the purego tag.
//
// Eight channels of one image are interleaved into a block
// [rows][cols][8], padded by the convolution's padding, so one filter tap
// is one 8-wide multiply-add for a pixel whatever the plane's size (the
// small planes of a supernet's last stages are 7x7 or smaller). The kernels
// take pixel and tap positions as byte offsets into the block.

// dwAsm says whether this CPU runs the kernels.
var dwAsm = simd.AVX2FMA

// dwLanes is how many channels one block interleaves.
const dwLanes = 8

func dwBlocks(g convGeom) int { return (g.cin + dwLanes - 1) / dwLanes }

// dwPlace returns, for every pixel p of a rows×cols plane, the float offset
// of pixel (p/cols+top, p%cols+left) in a block whose rows are bcols
// pixels wide.
func dwPlace(rows, cols, bcols, top, left int) []int {
	at := make([]int, rows*cols)
	for r := 0; r < rows; r++ {
		for q := 0; q < cols; q++ {
			at[r*cols+q] = ((r+top)*bcols + q + left) * dwLanes
		}
	}
	return at
}

// dwPack interleaves channels [c0, c0+8) of planes (c planes of pixels
// values) into buf at the offsets at. Pixels outside at (the padding) are
// never written, so a block zeroed once keeps its zero border; lanes past
// the last channel are written as zeros.
func dwPack(planes []float32, c, c0, pixels int, at []int, buf []float32) {
	lanes := min(dwLanes, c-c0)
	at = at[:pixels]
	p0 := 0
	if lanes == dwLanes && pixels >= 8 {
		// Whole groups of eight pixels: eight loads, a transpose, eight
		// stores. at's offsets lie inside buf by construction.
		_ = planes[(c0+dwLanes)*pixels-1]
		groups := pixels / 8
		simd.DWPack8(&planes[c0*pixels], pixels*4, &at[0], groups, unsafe.SliceData(buf))
		p0 = groups * 8
	}
	for l := 0; l < dwLanes; l++ {
		if l >= lanes {
			for _, o := range at[p0:] {
				buf[o+l] = 0
			}
			continue
		}
		src := planes[(c0+l)*pixels:][:pixels]
		for p, o := range at[p0:] {
			buf[o+l] = src[p0+p]
		}
	}
}

// dwUnpack is the inverse of dwPack: lane l of the block pixel at at[p]
// goes to pixel p of plane c0+l.
func dwUnpack(buf []float32, at []int, planes []float32, c, c0, pixels int) {
	lanes := min(dwLanes, c-c0)
	at = at[:pixels]
	p0 := 0
	if lanes == dwLanes && pixels >= 8 {
		_ = planes[(c0+dwLanes)*pixels-1]
		groups := pixels / 8
		simd.DWUnpack8(unsafe.SliceData(buf), &at[0], groups, &planes[c0*pixels], pixels*4)
		p0 = groups * 8
	}
	for l := 0; l < lanes; l++ {
		dst := planes[(c0+l)*pixels:][:pixels]
		for p, o := range at[p0:] {
			dst[p0+p] = buf[o+l]
		}
	}
}

// dwPackWeights interleaves the kh×kw filters of channels [c0, c0+8),
// rotated by 180 degrees when flip is set, one tap a row of eight.
func dwPackWeights(w []float32, g convGeom, c0 int, flip bool, wb []float32) {
	kk := g.kh * g.kw
	clear(wb)
	for l := 0; l < min(dwLanes, g.cin-c0); l++ {
		for j := 0; j < kk; j++ {
			src := j
			if flip {
				src = kk - 1 - j
			}
			wb[j*dwLanes+l] = w[(c0+l)*kk+src]
		}
	}
}

// dwPackAllWeights packs every block's filters once for all images.
func dwPackAllWeights(w []float32, g convGeom, flip bool) [][]float32 {
	kk := g.kh * g.kw * dwLanes
	nb := dwBlocks(g)
	all := make([]float32, nb*kk)
	wbs := make([][]float32, nb)
	for b := range wbs {
		wbs[b] = all[b*kk : (b+1)*kk]
		dwPackWeights(w, g, b*dwLanes, flip, wbs[b])
	}
	return wbs
}

// dwLayout is where a kernel reads: the byte offset in a padded block
// (rows wp pixels wide) of the top-left input pixel under every output
// pixel, padded to a multiple of eight pixels with the first one so the
// forward kernel always runs whole groups, and the byte offset of every
// tap from it.
type dwLayout struct {
	base, taps []int
	pixels     int
}

func newDWLayout(g convGeom, wp int) dwLayout {
	pixels := g.hout * g.wout
	base := make([]int, (pixels+7)/8*8)
	for oy := 0; oy < g.hout; oy++ {
		for ox := 0; ox < g.wout; ox++ {
			base[oy*g.wout+ox] = (oy*g.sh*wp + ox*g.sw) * dwLanes * 4
		}
	}
	for i := pixels; i < len(base); i++ {
		base[i] = base[0]
	}
	taps := make([]int, g.kh*g.kw)
	for ky := 0; ky < g.kh; ky++ {
		for kx := 0; kx < g.kw; kx++ {
			taps[ky*g.kw+kx] = (ky*g.dh*wp + kx*g.dw) * dwLanes * 4
		}
	}
	return dwLayout{base: base, taps: taps, pixels: pixels}
}

// forward correlates the padded block in with the packed filters wb into
// out, which holds len(base) pixels of eight floats.
func (l dwLayout) forward(in, wb, out []float32) {
	_ = out[len(l.base)*dwLanes-1]
	simd.DWForward8(unsafe.SliceData(in), unsafe.SliceData(l.base), len(l.base)/8, unsafe.SliceData(wb), unsafe.SliceData(l.taps), len(l.taps), unsafe.SliceData(out))
}

// scatter adds every output gradient in gb, times the filter, onto the
// padded input gradient dbuf (the adjoint of forward, for any stride).
func (l dwLayout) scatter(gb, wb, dbuf []float32) {
	_ = gb[l.pixels*dwLanes-1]
	for t, off := range l.taps {
		simd.DWScatter((*float32)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(dbuf)), off)), unsafe.SliceData(l.base), l.pixels, &wb[t*dwLanes], unsafe.SliceData(gb))
	}
}

// weight adds one image's weight gradient to acc, tap by tap.
func (l dwLayout) weight(in, gb, acc []float32) {
	_ = gb[l.pixels*dwLanes-1]
	for t, off := range l.taps {
		simd.DWWeightTap((*float32)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(in)), off)), unsafe.SliceData(l.base), l.pixels, unsafe.SliceData(gb), &acc[t*dwLanes])
	}
}

func depthwiseForwardNative(g convGeom, x, w, y []float32) bool {
	if !dwAsm {
		return false
	}
	hp, wp, nb := g.h+2*g.ph, g.w+2*g.pw, dwBlocks(g)
	in, out := g.h*g.w, g.hout*g.wout
	lay := newDWLayout(g, wp)
	atIn, atOut := dwPlace(g.h, g.w, wp, g.ph, g.pw), dwPlace(g.hout, g.wout, g.wout, 0, 0)
	wbs := dwPackAllWeights(w, g, false)
	parallel(g.n*nb, func(_, lo, hi int) {
		buf := make([]float32, hp*wp*dwLanes)
		ob := make([]float32, len(lay.base)*dwLanes)
		for t := lo; t < hi; t++ {
			img, c0 := t/nb, t%nb*dwLanes
			dwPack(x[img*g.cin*in:], g.cin, c0, in, atIn, buf)
			lay.forward(buf, wbs[t%nb], ob)
			dwUnpack(ob, atOut, y[img*g.cin*out:], g.cin, c0, out)
		}
	})
	return true
}

func depthwiseBackwardInputNative(g convGeom, w, gy, gx []float32) bool {
	if !dwAsm {
		return false
	}
	nb, in, out := dwBlocks(g), g.h*g.w, g.hout*g.wout
	// With stride 1 and padding at most (k-1)·d, the input gradient is the
	// output gradient, padded by (k-1)·d-p, correlated with the flipped
	// filter: the forward kernel, free of scattered stores.
	qh, qw := (g.kh-1)*g.dh-g.ph, (g.kw-1)*g.dw-g.pw
	gather := g.sh == 1 && g.sw == 1 && qh >= 0 && qw >= 0
	t := convGeom{cin: g.cin, h: g.hout, w: g.wout, kh: g.kh, kw: g.kw, sh: 1, sw: 1, ph: qh, pw: qw, dh: g.dh, dw: g.dw, hout: g.h, wout: g.w}
	hp, wp := g.h+2*g.ph, g.w+2*g.pw
	lay := newDWLayout(g, wp)
	var atGy, atGx []int
	if gather {
		hp, wp = g.hout+2*qh, g.wout+2*qw
		lay = newDWLayout(t, wp)
		atGy, atGx = dwPlace(g.hout, g.wout, wp, qh, qw), dwPlace(g.h, g.w, g.w, 0, 0)
	} else {
		atGy, atGx = dwPlace(g.hout, g.wout, g.wout, 0, 0), dwPlace(g.h, g.w, wp, g.ph, g.pw)
	}
	wbs := dwPackAllWeights(w, g, gather)
	parallel(g.n*nb, func(_, lo, hi int) {
		buf := make([]float32, hp*wp*dwLanes)
		gb := make([]float32, max(len(lay.base), out)*dwLanes)
		for k := lo; k < hi; k++ {
			img, c0 := k/nb, k%nb*dwLanes
			gyi, gxi := gy[img*g.cin*out:], gx[img*g.cin*in:]
			wb := wbs[k%nb]
			if gather {
				dwPack(gyi, g.cin, c0, out, atGy, buf)
				lay.forward(buf, wb, gb)
				dwUnpack(gb, atGx, gxi, g.cin, c0, in)
				continue
			}
			dwPack(gyi, g.cin, c0, out, atGy, gb)
			clear(buf)
			lay.scatter(gb, wb, buf)
			dwUnpack(buf, atGx, gxi, g.cin, c0, in)
		}
	})
	return true
}

func depthwiseBackwardWeightNative(g convGeom, x, gy, gw []float32) bool {
	if !dwAsm {
		return false
	}
	hp, wp, kk := g.h+2*g.ph, g.w+2*g.pw, g.kh*g.kw
	in, out := g.h*g.w, g.hout*g.wout
	lay := newDWLayout(g, wp)
	atX, atGy := dwPlace(g.h, g.w, wp, g.ph, g.pw), dwPlace(g.hout, g.wout, g.wout, 0, 0)
	parallel(dwBlocks(g), func(_, lo, hi int) {
		buf := make([]float32, hp*wp*dwLanes)
		gb := make([]float32, out*dwLanes)
		acc := make([]float32, kk*dwLanes)
		for b := lo; b < hi; b++ {
			c0 := b * dwLanes
			clear(acc)
			for img := 0; img < g.n; img++ {
				dwPack(x[img*g.cin*in:], g.cin, c0, in, atX, buf)
				dwPack(gy[img*g.cin*out:], g.cin, c0, out, atGy, gb)
				lay.weight(buf, gb, acc)
			}
			for l := 0; l < min(dwLanes, g.cin-c0); l++ {
				for j := 0; j < kk; j++ {
					gw[(c0+l)*kk+j] = acc[j*dwLanes+l]
				}
			}
		}
	})
	return true
}
