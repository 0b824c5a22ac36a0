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

// dwAsm says whether this CPU runs the kernels; dwAsm512 whether it runs
// the AVX-512 forward kernel, on blocks of sixteen channels.
var (
	dwAsm    = simd.AVX2FMA
	dwAsm512 = simd.AVX2FMA && simd.AVX512
)

// dwLanes is how many channels one block interleaves (the backward
// kernels'; the forward kernel takes dwBlock's lanes).
const dwLanes = 8

func dwBlocks(g convGeom) int { return (g.cin + dwLanes - 1) / dwLanes }

// dwPlace returns, for every pixel p of a rows×cols plane, the float offset
// of pixel (p/cols+top, p%cols+left) in a block of lanes channels whose
// rows are bcols pixels wide.
func dwPlace(rows, cols, bcols, top, left, lanes int) []int {
	at := make([]int, rows*cols)
	for r := 0; r < rows; r++ {
		for q := 0; q < cols; q++ {
			at[r*cols+q] = ((r+top)*bcols + q + left) * lanes
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

// dwPackWeights interleaves the kh×kw filters of channels [c0, c0+lanes),
// rotated by 180 degrees when flip is set, one tap a row of lanes.
func dwPackWeights(w []float32, g convGeom, c0, lanes int, flip bool, wb []float32) {
	kk := g.kh * g.kw
	clear(wb)
	for l := 0; l < min(lanes, g.cin-c0); l++ {
		for j := 0; j < kk; j++ {
			src := j
			if flip {
				src = kk - 1 - j
			}
			wb[j*lanes+l] = w[(c0+l)*kk+src]
		}
	}
}

// dwPackAllWeights packs every block's filters once for all images.
func dwPackAllWeights(w []float32, g convGeom, blocks []dwBlock, flip bool) [][]float32 {
	kk := g.kh * g.kw
	wbs := make([][]float32, len(blocks))
	for b, bl := range blocks {
		wbs[b] = make([]float32, kk*bl.lanes)
		dwPackWeights(w, g, bl.c0, bl.lanes, flip, wbs[b])
	}
	return wbs
}

// dwBlock is a run of channels interleaved in one block: sixteen for the
// AVX-512 forward kernel, eight for the others.
type dwBlock struct{ c0, lanes int }

// dwEights cuts c channels into blocks of eight.
func dwEights(c int) []dwBlock {
	var bs []dwBlock
	for c0 := 0; c0 < c; c0 += 8 {
		bs = append(bs, dwBlock{c0, 8})
	}
	return bs
}

// dwForwardBlocks cuts c channels into the forward kernel's blocks:
// sixteen at a time where AVX-512 runs, eight for the rest (the half-width
// supernet's 40 channels are 16+16+8, not 48 with 8 of them padding).
func dwForwardBlocks(c int) []dwBlock {
	if !dwAsm512 {
		return dwEights(c)
	}
	var bs []dwBlock
	c0 := 0
	for ; c0+16 <= c; c0 += 16 {
		bs = append(bs, dwBlock{c0, 16})
	}
	for _, b := range dwEights(c - c0) {
		bs = append(bs, dwBlock{c0 + b.c0, 8})
	}
	return bs
}

// dwPackLanes is dwPack for a block of lanes channels (a multiple of
// eight), eight channels at a time; at holds offsets into the wider block.
func dwPackLanes(planes []float32, c, c0, lanes, pixels int, at []int, buf []float32) {
	for h := 0; h < lanes; h += dwLanes {
		dwPack(planes, c, c0+h, pixels, at, buf[h:])
	}
}

// dwUnpackLanes is dwPackLanes's inverse.
func dwUnpackLanes(buf []float32, at []int, planes []float32, c, c0, lanes, pixels int) {
	for h := 0; h < lanes && c0+h < c; h += dwLanes {
		dwUnpack(buf[h:], at, planes, c, c0+h, pixels)
	}
}

// dwLayout is where a kernel reads: the byte offset in a padded block
// (rows wp pixels wide) of the top-left input pixel under every output
// pixel, padded to a multiple of eight pixels with the first one so the
// forward kernel always runs whole groups, and the byte offset of every
// tap from it.
type dwLayout struct {
	base, taps []int
	pixels     int
	lanes      int
}

func newDWLayout(g convGeom, wp, lanes int) dwLayout {
	pixels := g.hout * g.wout
	base := make([]int, (pixels+7)/8*8)
	for oy := 0; oy < g.hout; oy++ {
		for ox := 0; ox < g.wout; ox++ {
			base[oy*g.wout+ox] = (oy*g.sh*wp + ox*g.sw) * lanes * 4
		}
	}
	for i := pixels; i < len(base); i++ {
		base[i] = base[0]
	}
	taps := make([]int, g.kh*g.kw)
	for ky := 0; ky < g.kh; ky++ {
		for kx := 0; kx < g.kw; kx++ {
			taps[ky*g.kw+kx] = (ky*g.dh*wp + kx*g.dw) * lanes * 4
		}
	}
	return dwLayout{base: base, taps: taps, pixels: pixels, lanes: lanes}
}

// forward correlates the padded block in with the packed filters wb into
// out, which holds len(base) pixels of lanes floats.
func (l dwLayout) forward(in, wb, out []float32) {
	_ = out[len(l.base)*l.lanes-1]
	_ = wb[len(l.taps)*l.lanes-1]
	kernel := simd.DWForward8
	if l.lanes == 16 {
		kernel = simd.DWForward16AVX512
	}
	kernel(unsafe.SliceData(in), unsafe.SliceData(l.base), len(l.base)/8, unsafe.SliceData(wb), unsafe.SliceData(l.taps), len(l.taps), unsafe.SliceData(out))
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
	dwCorrelate(g, g.n, g.ph, g.pw, x, w, false, y)
	return true
}

// dwCorrelate correlates every image's channels, padded by top rows and
// left columns on each side, with the filters w (rotated by 180 degrees
// when flip is set) on the forward kernel: lg is the correlation's
// geometry, its h×w planes read from src and its hout×wout planes written
// to dst, n images of lg.cin channels each.
func dwCorrelate(lg convGeom, n, top, left int, src, w []float32, flip bool, dst []float32) {
	hp, wp := lg.h+2*top, lg.w+2*left
	in, out := lg.h*lg.w, lg.hout*lg.wout
	blocks := dwForwardBlocks(lg.cin)
	wbs := dwPackAllWeights(w, lg, blocks, flip)
	// Where a block of each width reads and writes.
	type plan struct {
		lay         dwLayout
		atIn, atOut []int
	}
	var plans [17]*plan
	for _, b := range blocks {
		if plans[b.lanes] == nil {
			plans[b.lanes] = &plan{newDWLayout(lg, wp, b.lanes), dwPlace(lg.h, lg.w, wp, top, left, b.lanes), dwPlace(lg.hout, lg.wout, lg.wout, 0, 0, b.lanes)}
		}
	}
	parallel(n*len(blocks), func(_, lo, hi int) {
		// A padded block and an output block of each width, zeroed once:
		// packing never writes the border.
		var bufs, obs [17][]float32
		for t := lo; t < hi; t++ {
			img, b := t/len(blocks), blocks[t%len(blocks)]
			p := plans[b.lanes]
			if bufs[b.lanes] == nil {
				bufs[b.lanes] = make([]float32, hp*wp*b.lanes)
				obs[b.lanes] = make([]float32, len(p.lay.base)*b.lanes)
			}
			buf, ob := bufs[b.lanes], obs[b.lanes]
			dwPackLanes(src[img*lg.cin*in:], lg.cin, b.c0, b.lanes, in, p.atIn, buf)
			p.lay.forward(buf, wbs[t%len(blocks)], ob)
			dwUnpackLanes(ob, p.atOut, dst[img*lg.cin*out:], lg.cin, b.c0, b.lanes, out)
		}
	})
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
	if gather {
		dwCorrelate(t, g.n, qh, qw, gy, w, true, gx)
		return true
	}
	hp, wp := g.h+2*g.ph, g.w+2*g.pw
	lay := newDWLayout(g, wp, dwLanes)
	atGy, atGx := dwPlace(g.hout, g.wout, g.wout, 0, 0, dwLanes), dwPlace(g.h, g.w, wp, g.ph, g.pw, dwLanes)
	wbs := dwPackAllWeights(w, g, dwEights(g.cin), false)
	parallel(g.n*nb, func(_, lo, hi int) {
		buf := make([]float32, hp*wp*dwLanes)
		gb := make([]float32, out*dwLanes)
		for k := lo; k < hi; k++ {
			img, c0 := k/nb, k%nb*dwLanes
			gyi, gxi := gy[img*g.cin*out:], gx[img*g.cin*in:]
			wb := wbs[k%nb]
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
	lay := newDWLayout(g, wp, dwLanes)
	atX, atGy := dwPlace(g.h, g.w, wp, g.ph, g.pw, dwLanes), dwPlace(g.hout, g.wout, g.wout, 0, 0, dwLanes)
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
