//go:build amd64 && !purego

package ops

import "github.com/razorgo/razor/models/ops/internal/simd"

// On amd64 with AVX2 and FMA, float32 batch norm runs on the eight-wide
// assembly loops of package simd (no C compiler needed); this file walks
// the planes and images around them. Sums are kept in float lanes over a
// plane (or, for planes smaller than bnSmall values, across up to bnFlush
// images) and added in float64, like the Go loops of batchnorm.go, which
// run for float64, on CPUs without AVX2 and with the purego tag.
//
// The small maps of a supernet's last stages have thousands of planes of 4
// or 16 values per call, too short for a vector along one plane; there the
// sums run along a run of whole channels of one image at a time, and the
// normalization and input gradient along whole images, with the
// per-channel coefficients spread over the values.

const (
	// bnSmall is the plane size below which sums run across images
	// instead of along planes.
	bnSmall = 16
	// bnRunLen is how many values of one image such a sum covers at a time.
	bnRunLen = 2048
	// bnFlush is how many images it adds in float before moving the sums
	// to float64.
	bnFlush = 16
	// bnSpreadMax bounds one image's values for spreading per-channel
	// coefficients over them (4 MiB of float32 per coefficient).
	bnSpreadMax = 1 << 20
)

func batchStatsNative(n, c, hw int, x []float32, mean, variance []float64) bool {
	if !simd.AVX2FMA {
		return false
	}
	m := float64(n * hw)
	parallel(c, func(_, lo, hi int) {
		if hw < bnSmall {
			// mean and variance hold the sums until the end.
			acrossImages(n, c, hw, lo, hi, mean, variance,
				func(ch int) float32 { return x[ch*hw] },
				func(off int, ev, acc1, acc2 []float32) {
					v := x[off:][:len(ev)]
					j := len(ev) &^ 7
					if j > 0 {
						simd.BNAccShifted(&v[0], &ev[0], &acc1[0], &acc2[0], j)
					}
					for ; j < len(ev); j++ {
						d := v[j] - ev[j]
						acc1[j] += d
						acc2[j] += d * d
					}
				})
			for ch := lo; ch < hi; ch++ {
				shift := float64(x[ch*hw])
				d := mean[ch] / m
				mean[ch] = shift + d
				variance[ch] = max(0, variance[ch]/m-d*d)
			}
			return
		}
		for ch := lo; ch < hi; ch++ {
			shift := x[ch*hw]
			var s, s2 float64
			for i := 0; i < n; i++ {
				a, b := planeShiftedSums(x[(i*c+ch)*hw:][:hw], shift)
				s += a
				s2 += b
			}
			d := s / m
			mean[ch] = float64(shift) + d
			variance[ch] = max(0, s2/m-d*d)
		}
	})
	return true
}

// planeShiftedSums returns Σ(v-k) and Σ(v-k)² over one plane.
func planeShiftedSums(p []float32, k float32) (sum, squares float64) {
	i := len(p) &^ 15
	if i > 0 {
		a, b := simd.BNShiftedSums(&p[0], i, k)
		sum, squares = float64(a), float64(b)
	}
	for ; i < len(p); i++ {
		d := float64(p[i]) - float64(k)
		sum += d
		squares += d * d
	}
	return sum, squares
}

// acrossImages writes into s1 and s2, for channels [ch0, ch1) of small
// planes, two sums over every value of the channel, running along each
// image's contiguous values of a block of channels. constant(ch) is the
// per-channel value the sums subtract (a shift or the mean), spread over
// the channel's values as ev; add(off, ev, acc1, acc2) adds the terms of
// the values at x[off:off+len(ev)] onto acc1 and acc2.
func acrossImages(n, c, hw, ch0, ch1 int, s1, s2 []float64, constant func(ch int) float32, add func(off int, ev, acc1, acc2 []float32)) {
	block := max(1, bnRunLen/hw)
	ev, acc1, acc2 := make([]float32, block*hw), make([]float32, block*hw), make([]float32, block*hw)
	for a := ch0; a < ch1; a += block {
		b := min(a+block, ch1)
		size := (b - a) * hw
		ev, acc1, acc2 := ev[:size], acc1[:size], acc2[:size]
		for j := range ev {
			ev[j] = constant(a + j/hw)
		}
		clear(acc1)
		clear(acc2)
		for ch := a; ch < b; ch++ {
			s1[ch], s2[ch] = 0, 0
		}
		for i := 0; i < n; i++ {
			add((i*c+a)*hw, ev, acc1, acc2)
			if (i+1)%bnFlush == 0 || i+1 == n {
				for j := range acc1 {
					s1[a+j/hw] += float64(acc1[j])
					s2[a+j/hw] += float64(acc2[j])
				}
				clear(acc1)
				clear(acc2)
			}
		}
	}
}

func gradSumsNative(n, c, hw int, x, gy, y, mean []float32, sum, dot []float64) bool {
	if !simd.AVX2FMA {
		return false
	}
	relu := y != nil
	parallel(c, func(_, lo, hi int) {
		if hw < bnSmall {
			acrossImages(n, c, hw, lo, hi, sum, dot,
				func(ch int) float32 { return mean[ch] },
				func(off int, ev, acc1, acc2 []float32) {
					g, xs := gy[off:][:len(ev)], x[off:][:len(ev)]
					var ys []float32
					if relu {
						ys = y[off:][:len(ev)]
					}
					j := len(ev) &^ 7
					if j > 0 {
						if relu {
							simd.BNAccGradReLU(&g[0], &ys[0], &xs[0], &ev[0], &acc1[0], &acc2[0], j)
						} else {
							simd.BNAccGrad(&g[0], &xs[0], &ev[0], &acc1[0], &acc2[0], j)
						}
					}
					for ; j < len(ev); j++ {
						gi := g[j]
						if relu {
							gi = reluGrad(gi, ys[j])
						}
						acc1[j] += gi
						acc2[j] += gi * (xs[j] - ev[j])
					}
				})
			return
		}
		for ch := lo; ch < hi; ch++ {
			var s, d float64
			for i := 0; i < n; i++ {
				off := (i*c + ch) * hw
				var ys []float32
				if relu {
					ys = y[off:][:hw]
				}
				a, b := planeGradSums(gy[off:][:hw], x[off:][:hw], ys, mean[ch])
				s += a
				d += b
			}
			sum[ch], dot[ch] = s, d
		}
	})
	return true
}

// planeGradSums returns Σg and Σg·(x-mu) over one plane, g being gy masked
// by the ReLU output y when y is not nil.
func planeGradSums(gy, x, y []float32, mu float32) (sum, dot float64) {
	i := len(gy) &^ 15
	if i > 0 {
		var a, b float32
		if y != nil {
			a, b = simd.BNGradSumsReLU(&gy[0], &x[0], &y[0], i, mu)
		} else {
			a, b = simd.BNGradSums(&gy[0], &x[0], i, mu)
		}
		sum, dot = float64(a), float64(b)
	}
	for ; i < len(gy); i++ {
		g := gy[i]
		if y != nil {
			g = reluGrad(g, y[i])
		}
		sum += float64(g)
		dot += float64(g) * (float64(x[i]) - float64(mu))
	}
	return sum, dot
}

// spread returns v's per-channel values spread over one image's c·hw values
// (out[ch·hw+p] = v[ch]), or nil when the planes are large enough to go
// plane by plane.
func spread(v []float32, c, hw int) []float32 {
	if v == nil || hw >= bnSmall || c*hw > bnSpreadMax {
		return nil
	}
	out := make([]float32, c*hw)
	for ch, s := range v {
		for p := range hw {
			out[ch*hw+p] = s
		}
	}
	return out
}

// imageRuns calls run(j, at, len) for the values [t0·hw, t1·hw) of an
// n×c×hw tensor, cut where an image ends: at is j's offset within its
// image.
func imageRuns(c, hw, t0, t1 int, run func(j, at, size int)) {
	image := c * hw
	for j, end := t0*hw, t1*hw; j < end; {
		at := j % image
		size := min(end-j, image-at)
		run(j, at, size)
		j += size
	}
}

func normalizeNative(n, c, hw int, x, scale, shift []float32, relu bool, y []float32) bool {
	if !simd.AVX2FMA {
		return false
	}
	se, sh := spread(scale, c, hw), spread(shift, c, hw)
	parallel(n*c, func(_, lo, hi int) {
		if se != nil {
			imageRuns(c, hw, lo, hi, func(j, at, size int) {
				xs, ys, as, bs := x[j:][:size], y[j:][:size], se[at:][:size], sh[at:][:size]
				i := size &^ 7
				if i > 0 {
					if relu {
						simd.BNAffineVecReLU(&xs[0], &as[0], &bs[0], i, &ys[0])
					} else {
						simd.BNAffineVec(&xs[0], &as[0], &bs[0], i, &ys[0])
					}
				}
				for ; i < size; i++ {
					ys[i] = affine1(xs[i], as[i], bs[i], relu)
				}
			})
			return
		}
		for t := lo; t < hi; t++ {
			a, b := scale[t%c], shift[t%c]
			xs, ys := x[t*hw:][:hw], y[t*hw:][:hw]
			i := hw &^ 7
			if i > 0 {
				if relu {
					simd.BNAffineReLU(&xs[0], a, b, i, &ys[0])
				} else {
					simd.BNAffine(&xs[0], a, b, i, &ys[0])
				}
			}
			for ; i < hw; i++ {
				ys[i] = affine1(xs[i], a, b, relu)
			}
		}
	})
	return true
}

// affine1 is x·a+b, cleared when relu and negative (NaN passes).
func affine1(x, a, b float32, relu bool) float32 {
	v := x*a + b
	if relu && v < 0 {
		return 0
	}
	return v
}

func inputGradNative(n, c, hw int, x, gy, y, k, a, b, gx []float32) bool {
	if !simd.AVX2FMA {
		return false
	}
	relu, withA := y != nil, a != nil
	ke, ae, be := spread(k, c, hw), spread(a, c, hw), spread(b, c, hw)
	// grad writes size values from offset j, the coefficients given per
	// value (vec) or once.
	grad := func(j, size int, kv, av, bv []float32, vec bool) {
		g, out := gy[j:][:size], gx[j:][:size]
		var xs, ys []float32
		if withA {
			xs = x[j:][:size]
		}
		if relu {
			ys = y[j:][:size]
		}
		i := size &^ 7
		if i > 0 {
			inputGradVector(xs, g, ys, kv, av, bv, vec, i, out)
		}
		for ; i < size; i++ {
			ci := i
			if !vec {
				ci = 0
			}
			gi := g[i]
			if relu {
				gi = reluGrad(gi, ys[i])
			}
			if withA {
				out[i] = kv[ci]*gi + xs[i]*av[ci] + bv[ci]
			} else {
				out[i] = kv[ci] * gi
			}
		}
	}
	parallel(n*c, func(_, lo, hi int) {
		if ke != nil {
			imageRuns(c, hw, lo, hi, func(j, at, size int) {
				var av, bv []float32
				if withA {
					av, bv = ae[at:][:size], be[at:][:size]
				}
				grad(j, size, ke[at:][:size], av, bv, true)
			})
			return
		}
		for t := lo; t < hi; t++ {
			ch := t % c
			var av, bv []float32
			if withA {
				av, bv = a[ch:ch+1], b[ch:ch+1]
			}
			grad(t*hw, hw, k[ch:ch+1], av, bv, false)
		}
	})
	return true
}

// inputGradVector runs the assembly loop for the first n values (a
// multiple of 8): xs is nil without the batch-statistics terms, ys nil
// without a ReLU; with vec the coefficients are per value, otherwise one
// each.
func inputGradVector(xs, g, ys, k, a, b []float32, vec bool, n int, out []float32) {
	switch {
	case vec && xs != nil && ys != nil:
		simd.BNInputGradVecReLU(&xs[0], &g[0], &ys[0], &k[0], &a[0], &b[0], n, &out[0])
	case vec && xs != nil:
		simd.BNInputGradVec(&xs[0], &g[0], &k[0], &a[0], &b[0], n, &out[0])
	case vec && ys != nil:
		simd.BNInputGradScaleVecReLU(&g[0], &ys[0], &k[0], n, &out[0])
	case vec:
		simd.BNInputGradScaleVec(&g[0], &k[0], n, &out[0])
	case xs != nil && ys != nil:
		simd.BNInputGradReLU(&xs[0], &g[0], &ys[0], k[0], a[0], b[0], n, &out[0])
	case xs != nil:
		simd.BNInputGrad(&xs[0], &g[0], k[0], a[0], b[0], n, &out[0])
	case ys != nil:
		simd.BNInputGradScaleReLU(&g[0], &ys[0], k[0], n, &out[0])
	default:
		simd.BNInputGradScale(&g[0], k[0], n, &out[0])
	}
}
