package ops

import "github.com/razorgo/razor/models/ops/blas"

// Depthwise convolution (one kh×kw filter per channel) as direct loops over
// zero-padded planes. Every output row is a sum of kh row passes, and each
// pass applies a whole kernel row at once, so an output element is loaded
// and stored kh times rather than kh·kw times. The input gradient of a
// stride-1 convolution is the same loop run on the padded output gradient
// with the kernel flipped; other strides scatter. The weight gradient is
// a dot product per tap, summed over images.

// padPlane copies an h×w plane into the interior of pad, a plane with ph
// rows and pw columns of zeros around it. The border is never written, so a
// buffer zeroed once can be reused for every plane of the same geometry.
func padPlane[T blas.Float](src []T, h, w, ph, pw int, pad []T) {
	wp := w + 2*pw
	for y := 0; y < h; y++ {
		copy(pad[(y+ph)*wp+pw:(y+ph)*wp+pw+w], src[y*w:(y+1)*w])
	}
}

// planeWindow describes sliding a kh×kw kernel over a padded plane whose
// rows are wp wide, producing hout×wout outputs.
type planeWindow struct {
	wp, kh, kw, sh, sw, dh, dw, hout, wout int
}

// correlate computes out[oy][ox] = Σ k[ky][kx]·pad[oy·sh+ky·dh][ox·sw+kx·dw].
func correlate[T blas.Float](p planeWindow, pad, k, out []T) {
	for oy := 0; oy < p.hout; oy++ {
		orow := out[oy*p.wout : (oy+1)*p.wout]
		clear(orow)
		for ky := 0; ky < p.kh; ky++ {
			rowTaps(orow, pad[(oy*p.sh+ky*p.dh)*p.wp:], k[ky*p.kw:(ky+1)*p.kw], p.sw, p.dw)
		}
	}
}

// rowTaps adds Σ_kx taps[kx]·in[ox·s+kx·d] to every out[ox]. The common
// unit-stride 3, 5 and 7 tap rows are unrolled so each output element is
// read and written once per row.
func rowTaps[T blas.Float](out, in, taps []T, s, d int) {
	n := len(out)
	if s == 1 && d == 1 {
		switch len(taps) {
		case 3:
			t0, t1, t2 := taps[0], taps[1], taps[2]
			i0, i1, i2 := in[0:n], in[1:n+1], in[2:n+2]
			for ox := range out {
				out[ox] += t0*i0[ox] + t1*i1[ox] + t2*i2[ox]
			}
			return
		case 5:
			t0, t1, t2, t3, t4 := taps[0], taps[1], taps[2], taps[3], taps[4]
			i0, i1, i2, i3, i4 := in[0:n], in[1:n+1], in[2:n+2], in[3:n+3], in[4:n+4]
			for ox := range out {
				out[ox] += t0*i0[ox] + t1*i1[ox] + t2*i2[ox] + t3*i3[ox] + t4*i4[ox]
			}
			return
		case 7:
			t0, t1, t2, t3, t4, t5, t6 := taps[0], taps[1], taps[2], taps[3], taps[4], taps[5], taps[6]
			i0, i1, i2, i3 := in[0:n], in[1:n+1], in[2:n+2], in[3:n+3]
			i4, i5, i6 := in[4:n+4], in[5:n+5], in[6:n+6]
			for ox := range out {
				out[ox] += t0*i0[ox] + t1*i1[ox] + t2*i2[ox] + t3*i3[ox] + t4*i4[ox] + t5*i5[ox] + t6*i6[ox]
			}
			return
		}
	}
	for kx, t := range taps {
		off := kx * d
		if s == 1 {
			src := in[off : off+n]
			for ox := range out {
				out[ox] += t * src[ox]
			}
			continue
		}
		for ox := range out {
			out[ox] += t * in[ox*s+off]
		}
	}
}

// rowDots adds Σ_ox g[ox]·in[ox·s+kx·d] to acc[kx] for every tap kx.
func rowDots[T blas.Float](acc []float64, g, in []T, s, d int) {
	n := len(g)
	if s == 1 && d == 1 {
		switch len(acc) {
		case 3:
			i0, i1, i2 := in[0:n], in[1:n+1], in[2:n+2]
			var s0, s1, s2 T
			for ox, v := range g {
				s0 += v * i0[ox]
				s1 += v * i1[ox]
				s2 += v * i2[ox]
			}
			acc[0], acc[1], acc[2] = acc[0]+float64(s0), acc[1]+float64(s1), acc[2]+float64(s2)
			return
		case 5:
			i0, i1, i2, i3, i4 := in[0:n], in[1:n+1], in[2:n+2], in[3:n+3], in[4:n+4]
			var s0, s1, s2, s3, s4 T
			for ox, v := range g {
				s0 += v * i0[ox]
				s1 += v * i1[ox]
				s2 += v * i2[ox]
				s3 += v * i3[ox]
				s4 += v * i4[ox]
			}
			acc[0], acc[1], acc[2] = acc[0]+float64(s0), acc[1]+float64(s1), acc[2]+float64(s2)
			acc[3], acc[4] = acc[3]+float64(s3), acc[4]+float64(s4)
			return
		case 7:
			i0, i1, i2, i3 := in[0:n], in[1:n+1], in[2:n+2], in[3:n+3]
			i4, i5, i6 := in[4:n+4], in[5:n+5], in[6:n+6]
			var s0, s1, s2, s3, s4, s5, s6 T
			for ox, v := range g {
				s0 += v * i0[ox]
				s1 += v * i1[ox]
				s2 += v * i2[ox]
				s3 += v * i3[ox]
				s4 += v * i4[ox]
				s5 += v * i5[ox]
				s6 += v * i6[ox]
			}
			acc[0], acc[1], acc[2] = acc[0]+float64(s0), acc[1]+float64(s1), acc[2]+float64(s2)
			acc[3], acc[4], acc[5] = acc[3]+float64(s3), acc[4]+float64(s4), acc[5]+float64(s5)
			acc[6] += float64(s6)
			return
		}
	}
	for kx := range acc {
		off := kx * d
		var sum T
		for ox, v := range g {
			sum += v * in[ox*s+off]
		}
		acc[kx] += float64(sum)
	}
}

// depthwiseForward computes y = depthwise(x, w), one plane per task.
func depthwiseForward[T blas.Float](g convGeom, x, w, y []T) {
	if x32, ok := any(x).([]float32); ok && depthwiseForwardNative(g, x32, any(w).([]float32), any(y).([]float32)) {
		return
	}
	hw, hwOut, kk := g.h*g.w, g.hout*g.wout, g.kh*g.kw
	win := planeWindow{wp: g.w + 2*g.pw, kh: g.kh, kw: g.kw, sh: g.sh, sw: g.sw, dh: g.dh, dw: g.dw, hout: g.hout, wout: g.wout}
	padded := g.ph > 0 || g.pw > 0
	parallel(g.n*g.cin, func(_, lo, hi int) {
		var pad []T
		if padded {
			pad = make([]T, (g.h+2*g.ph)*win.wp)
		}
		for t := lo; t < hi; t++ {
			src := x[t*hw : (t+1)*hw]
			if padded {
				padPlane(src, g.h, g.w, g.ph, g.pw, pad)
				src = pad
			}
			c := t % g.cin
			correlate(win, src, w[c*kk:(c+1)*kk], y[t*hwOut:(t+1)*hwOut])
		}
	})
}

// depthwiseBackwardInput computes the input gradient of a depthwise
// convolution.
func depthwiseBackwardInput[T blas.Float](g convGeom, w, gy, gx []T) {
	if w32, ok := any(w).([]float32); ok && depthwiseBackwardInputNative(g, w32, any(gy).([]float32), any(gx).([]float32)) {
		return
	}
	hw, hwOut, kk := g.h*g.w, g.hout*g.wout, g.kh*g.kw
	// With stride 1, gx[i] = Σ_k w[k]·gy[i+p-k·d]: a correlation of gy,
	// padded by (k-1)·d-p, with the flipped kernel. It needs p <= (k-1)·d.
	qh, qw := (g.kh-1)*g.dh-g.ph, (g.kw-1)*g.dw-g.pw
	if g.sh == 1 && g.sw == 1 && qh >= 0 && qw >= 0 {
		flipped := make([]T, len(w))
		for c := 0; c < g.cin; c++ {
			for j := 0; j < kk; j++ {
				flipped[c*kk+j] = w[c*kk+kk-1-j]
			}
		}
		win := planeWindow{wp: g.wout + 2*qw, kh: g.kh, kw: g.kw, sh: 1, sw: 1, dh: g.dh, dw: g.dw, hout: g.h, wout: g.w}
		parallel(g.n*g.cin, func(_, lo, hi int) {
			pad := make([]T, (g.hout+2*qh)*win.wp)
			for t := lo; t < hi; t++ {
				padPlane(gy[t*hwOut:(t+1)*hwOut], g.hout, g.wout, qh, qw, pad)
				c := t % g.cin
				correlate(win, pad, flipped[c*kk:(c+1)*kk], gx[t*hw:(t+1)*hw])
			}
		})
		return
	}
	wp := g.w + 2*g.pw
	parallel(g.n*g.cin, func(_, lo, hi int) {
		pad := make([]T, (g.h+2*g.ph)*wp)
		for t := lo; t < hi; t++ {
			clear(pad)
			c := t % g.cin
			k := w[c*kk : (c+1)*kk]
			for oy := 0; oy < g.hout; oy++ {
				grow := gy[t*hwOut+oy*g.wout : t*hwOut+(oy+1)*g.wout]
				for ky := 0; ky < g.kh; ky++ {
					drow := pad[(oy*g.sh+ky*g.dh)*wp:]
					for kx, tap := range k[ky*g.kw : (ky+1)*g.kw] {
						off := kx * g.dw
						for ox, v := range grow {
							drow[ox*g.sw+off] += tap * v
						}
					}
				}
			}
			plane := gx[t*hw : (t+1)*hw]
			for y := 0; y < g.h; y++ {
				copy(plane[y*g.w:(y+1)*g.w], pad[(y+g.ph)*wp+g.pw:])
			}
		}
	})
}

// depthwiseBackwardWeight computes the weight gradient of a depthwise
// convolution, one channel per task so no two tasks write the same tap.
func depthwiseBackwardWeight[T blas.Float](g convGeom, x, gy, gw []T) {
	if x32, ok := any(x).([]float32); ok && depthwiseBackwardWeightNative(g, x32, any(gy).([]float32), any(gw).([]float32)) {
		return
	}
	hw, hwOut, kk := g.h*g.w, g.hout*g.wout, g.kh*g.kw
	wp := g.w + 2*g.pw
	padded := g.ph > 0 || g.pw > 0
	parallel(g.cin, func(_, lo, hi int) {
		var pad []T
		if padded {
			pad = make([]T, (g.h+2*g.ph)*wp)
		}
		acc := make([]float64, kk)
		for c := lo; c < hi; c++ {
			clear(acc)
			for i := 0; i < g.n; i++ {
				t := i*g.cin + c
				src := x[t*hw : (t+1)*hw]
				if padded {
					padPlane(src, g.h, g.w, g.ph, g.pw, pad)
					src = pad
				}
				for oy := 0; oy < g.hout; oy++ {
					grow := gy[t*hwOut+oy*g.wout : t*hwOut+(oy+1)*g.wout]
					for ky := 0; ky < g.kh; ky++ {
						rowDots(acc[ky*g.kw:(ky+1)*g.kw], grow, src[(oy*g.sh+ky*g.dh)*wp:], g.sw, g.dw)
					}
				}
			}
			for j, v := range acc {
				gw[c*kk+j] = T(v)
			}
		}
	})
}
