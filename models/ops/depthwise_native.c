//go:build cgo && !purego && !amd64

// Depthwise convolution kernels for the cgo build. Go's compiler
// does not vectorize, and a depthwise convolution over small planes (7x7,
// 14x14) is a poor fit for row-wise scalar loops. Here eight channels are
// interleaved into one block [rows][cols][8], so every tap of a filter is
// one 8-wide multiply-add whatever the plane size. GCC's vector extension
// keeps the arithmetic 8 wide; target_clones compiles an AVX2+FMA version
// chosen at load time, with a generic fallback for older CPUs.
//
// Every block buffer is 64-byte aligned and every offset into one is a
// multiple of 8 floats, so whole-vector loads and stores are aligned.

#include <stdlib.h>
#include <string.h>

#include "depthwise_native.h"

#define LANES 8

typedef float v8f __attribute__((vector_size(LANES * sizeof(float))));

#define VEC(p) (*(v8f *)(p))

#if defined(__x86_64__) && defined(__GNUC__)
#define VECTORIZED __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define VECTORIZED
#endif

// alloc_floats returns n zeroed floats, 64-byte aligned.
static float *alloc_floats(size_t n) {
	size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
	float *p = aligned_alloc(64, bytes ? bytes : 64);
	if (p) {
		memset(p, 0, bytes);
	}
	return p;
}

static int lanes_from(int c, int c0) { return c - c0 < LANES ? c - c0 : LANES; }

typedef int v8i __attribute__((vector_size(LANES * sizeof(int))));
typedef float v8fu __attribute__((vector_size(LANES * sizeof(float)), aligned(sizeof(float))));

// transpose8 turns eight vectors of eight pixels each (one vector per
// channel) into eight vectors of eight channels each (one per pixel).
static inline void transpose8(v8f r[LANES]) {
	const v8i lo = {0, 8, 1, 9, 4, 12, 5, 13}, hi = {2, 10, 3, 11, 6, 14, 7, 15};
	const v8i lo2 = {0, 1, 8, 9, 4, 5, 12, 13}, hi2 = {2, 3, 10, 11, 6, 7, 14, 15};
	const v8i lo4 = {0, 1, 2, 3, 8, 9, 10, 11}, hi4 = {4, 5, 6, 7, 12, 13, 14, 15};
	v8f a0 = __builtin_shuffle(r[0], r[1], lo), a1 = __builtin_shuffle(r[0], r[1], hi);
	v8f a2 = __builtin_shuffle(r[2], r[3], lo), a3 = __builtin_shuffle(r[2], r[3], hi);
	v8f a4 = __builtin_shuffle(r[4], r[5], lo), a5 = __builtin_shuffle(r[4], r[5], hi);
	v8f a6 = __builtin_shuffle(r[6], r[7], lo), a7 = __builtin_shuffle(r[6], r[7], hi);
	v8f b0 = __builtin_shuffle(a0, a2, lo2), b1 = __builtin_shuffle(a0, a2, hi2);
	v8f b2 = __builtin_shuffle(a1, a3, lo2), b3 = __builtin_shuffle(a1, a3, hi2);
	v8f b4 = __builtin_shuffle(a4, a6, lo2), b5 = __builtin_shuffle(a4, a6, hi2);
	v8f b6 = __builtin_shuffle(a5, a7, lo2), b7 = __builtin_shuffle(a5, a7, hi2);
	r[0] = __builtin_shuffle(b0, b4, lo4), r[4] = __builtin_shuffle(b0, b4, hi4);
	r[1] = __builtin_shuffle(b1, b5, lo4), r[5] = __builtin_shuffle(b1, b5, hi4);
	r[2] = __builtin_shuffle(b2, b6, lo4), r[6] = __builtin_shuffle(b2, b6, hi4);
	r[3] = __builtin_shuffle(b3, b7, lo4), r[7] = __builtin_shuffle(b3, b7, hi4);
}

// place returns, for every pixel p of a rows x cols plane, the offset of
// pixel (p / cols + top, p % cols + left) in a block whose rows are bcols
// pixels wide. Packing looks positions up rather than divide.
static size_t *place(int rows, int cols, int bcols, int top, int left) {
	size_t *at = malloc((size_t)rows * cols * sizeof(size_t) + 1);
	if (!at) {
		return NULL;
	}
	for (int r = 0; r < rows; r++) {
		for (int q = 0; q < cols; q++) {
			at[(size_t)r * cols + q] = ((size_t)(r + top) * bcols + q + left) * LANES;
		}
	}
	return at;
}

// pack interleaves channels [c0, c0+8) of planes (pixels values each, one
// plane per channel, c channels) into buf at the offsets at[p]. Pixels
// outside at (the padding) are never written, so a buffer zeroed once keeps
// its zero border; lanes past the last channel are written as zeros.
VECTORIZED
static void pack(const float *planes, int c, int c0, int pixels, const size_t *at, float *buf) {
	const int lanes = lanes_from(c, c0);
	const float *src[LANES];
	for (int l = 0; l < lanes; l++) {
		src[l] = planes + (size_t)(c0 + l) * pixels;
	}
	int p = 0;
	if (lanes == LANES) {
		for (; p + LANES <= pixels; p += LANES) {
			v8f r[LANES];
			for (int l = 0; l < LANES; l++) {
				r[l] = *(const v8fu *)(src[l] + p);
			}
			transpose8(r);
			for (int j = 0; j < LANES; j++) {
				VEC(buf + at[p + j]) = r[j];
			}
		}
	}
	for (; p < pixels; p++) {
		float *dst = buf + at[p];
		for (int l = 0; l < LANES; l++) {
			dst[l] = l < lanes ? src[l][p] : 0;
		}
	}
}

// unpack is the inverse of pack: channel l of the block pixel at at[p]
// goes to pixel p of plane c0+l.
VECTORIZED
static void unpack(const float *buf, const size_t *at, float *planes, int c, int c0, int pixels) {
	const int lanes = lanes_from(c, c0);
	float *dst[LANES];
	for (int l = 0; l < lanes; l++) {
		dst[l] = planes + (size_t)(c0 + l) * pixels;
	}
	int p = 0;
	if (lanes == LANES) {
		for (; p + LANES <= pixels; p += LANES) {
			v8f r[LANES];
			for (int j = 0; j < LANES; j++) {
				r[j] = VEC(buf + at[p + j]);
			}
			transpose8(r);
			for (int l = 0; l < LANES; l++) {
				*(v8fu *)(dst[l] + p) = r[l];
			}
		}
	}
	for (; p < pixels; p++) {
		const float *src = buf + at[p];
		for (int l = 0; l < lanes; l++) {
			dst[l][p] = src[l];
		}
	}
}

// pack_weights interleaves the kh x kw filters of channels [c0, c0+8),
// flipped (rotated by 180 degrees) when flip is set.
static void pack_weights(const float *w, const dw_geom *g, int c0, int flip, float *wb) {
	const int kk = g->kh * g->kw, lanes = lanes_from(g->c, c0);
	memset(wb, 0, (size_t)kk * LANES * sizeof(float));
	for (int l = 0; l < lanes; l++) {
		for (int j = 0; j < kk; j++) {
			wb[(size_t)j * LANES + l] = w[(size_t)(c0 + l) * kk + (flip ? kk - 1 - j : j)];
		}
	}
}

// pixel_bases returns, for every output pixel i (row-major over hout x
// wout), the offset in a padded block (rows wp pixels wide) of the top-left
// input pixel under it. The kernels look offsets up rather than divide.
static size_t *pixel_bases(const dw_geom *g, int wp) {
	size_t *base = malloc((size_t)g->hout * g->wout * sizeof(size_t) + 1);
	if (!base) {
		return NULL;
	}
	for (int oy = 0; oy < g->hout; oy++) {
		for (int ox = 0; ox < g->wout; ox++) {
			base[(size_t)oy * g->wout + ox] = ((size_t)oy * g->sh * wp + (size_t)ox * g->sw) * LANES;
		}
	}
	return base;
}

static inline size_t tap_offset(const dw_geom *g, int wp, int ky, int kx) {
	return ((size_t)ky * g->dh * wp + (size_t)kx * g->dw) * LANES;
}

// block_forward correlates a padded block with the packed filters. Output
// pixels go eight at a time in row-major order (across row ends), so eight
// independent multiply-add chains hide the FMA latency and every filter tap
// loaded feeds eight pixels, even on 7-pixel-wide planes.
VECTORIZED
static void block_forward(const float *in, int wp, const size_t *base, const float *wb, const dw_geom *g, float *out) {
	const int pixels = g->hout * g->wout;
	int i = 0;
	for (; i + 8 <= pixels; i += 8) {
		const float *b[8];
		for (int j = 0; j < 8; j++) {
			b[j] = in + base[i + j];
		}
		v8f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};
		for (int ky = 0; ky < g->kh; ky++) {
			for (int kx = 0; kx < g->kw; kx++) {
				const size_t off = tap_offset(g, wp, ky, kx);
				const v8f q = VEC(wb + (size_t)(ky * g->kw + kx) * LANES);
				a0 += q * VEC(b[0] + off);
				a1 += q * VEC(b[1] + off);
				a2 += q * VEC(b[2] + off);
				a3 += q * VEC(b[3] + off);
				a4 += q * VEC(b[4] + off);
				a5 += q * VEC(b[5] + off);
				a6 += q * VEC(b[6] + off);
				a7 += q * VEC(b[7] + off);
			}
		}
		float *o = out + (size_t)i * LANES;
		VEC(o) = a0;
		VEC(o + LANES) = a1;
		VEC(o + 2 * LANES) = a2;
		VEC(o + 3 * LANES) = a3;
		VEC(o + 4 * LANES) = a4;
		VEC(o + 5 * LANES) = a5;
		VEC(o + 6 * LANES) = a6;
		VEC(o + 7 * LANES) = a7;
	}
	for (; i < pixels; i++) {
		const float *b0 = in + base[i];
		v8f a0 = {0};
		for (int ky = 0; ky < g->kh; ky++) {
			for (int kx = 0; kx < g->kw; kx++) {
				a0 += VEC(wb + (size_t)(ky * g->kw + kx) * LANES) * VEC(b0 + tap_offset(g, wp, ky, kx));
			}
		}
		VEC(out + (size_t)i * LANES) = a0;
	}
}

// block_scatter adds every output gradient, times the filter, onto the
// padded input gradient (the adjoint of block_forward for any stride). It
// goes tap by tap, so consecutive updates touch distinct pixels.
VECTORIZED
static void block_scatter(const float *gb, const float *wb, const dw_geom *g, int wp, const size_t *base, float *dbuf) {
	const int pixels = g->hout * g->wout;
	for (int ky = 0; ky < g->kh; ky++) {
		for (int kx = 0; kx < g->kw; kx++) {
			const size_t off = tap_offset(g, wp, ky, kx);
			const v8f q = VEC(wb + (size_t)(ky * g->kw + kx) * LANES);
			for (int i = 0; i < pixels; i++) {
				float *d = dbuf + base[i] + off;
				VEC(d) += q * VEC(gb + (size_t)i * LANES);
			}
		}
	}
}

// block_backward_weight adds one image's weight gradient to acc: tap by
// tap, a dot product over all output pixels with four partial sums.
VECTORIZED
static void block_backward_weight(const float *in, int wp, const size_t *base, const float *gb, const dw_geom *g, float *acc) {
	const int pixels = g->hout * g->wout;
	for (int ky = 0; ky < g->kh; ky++) {
		for (int kx = 0; kx < g->kw; kx++) {
			const size_t off = tap_offset(g, wp, ky, kx);
			v8f s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
			int i = 0;
			for (; i + 4 <= pixels; i += 4) {
				const float *q = gb + (size_t)i * LANES;
				s0 += VEC(q) * VEC(in + base[i] + off);
				s1 += VEC(q + LANES) * VEC(in + base[i + 1] + off);
				s2 += VEC(q + 2 * LANES) * VEC(in + base[i + 2] + off);
				s3 += VEC(q + 3 * LANES) * VEC(in + base[i + 3] + off);
			}
			for (; i < pixels; i++) {
				s0 += VEC(gb + (size_t)i * LANES) * VEC(in + base[i] + off);
			}
			VEC(acc + (size_t)(ky * g->kw + kx) * LANES) += (s0 + s1) + (s2 + s3);
		}
	}
}

static int blocks(const dw_geom *g) { return (g->c + LANES - 1) / LANES; }

int dw_forward(const float *x, const float *w, float *y, dw_geom g, int task0, int task1) {
	const int hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw, nb = blocks(&g);
	const int in = g.h * g.w, out = g.hout * g.wout;
	float *buf = alloc_floats((size_t)hp * wp * LANES);
	float *ob = alloc_floats((size_t)out * LANES);
	float *wb = alloc_floats((size_t)g.kh * g.kw * LANES);
	size_t *base = pixel_bases(&g, wp);
	size_t *at_in = place(g.h, g.w, wp, g.ph, g.pw), *at_out = place(g.hout, g.wout, g.wout, 0, 0);
	int status = buf && ob && wb && base && at_in && at_out ? 0 : -1;
	for (int t = task0; t < task1 && status == 0; t++) {
		const int img = t / nb, c0 = (t % nb) * LANES;
		pack(x + (size_t)img * g.c * in, g.c, c0, in, at_in, buf);
		pack_weights(w, &g, c0, 0, wb);
		block_forward(buf, wp, base, wb, &g, ob);
		unpack(ob, at_out, y + (size_t)img * g.c * out, g.c, c0, out);
	}
	free(buf), free(ob), free(wb), free(base), free(at_in), free(at_out);
	return status;
}

int dw_backward_input(const float *w, const float *gy, float *gx, dw_geom g, int task0, int task1) {
	const int nb = blocks(&g), in = g.h * g.w, out = g.hout * g.wout;
	// With stride 1 and padding at most (k-1)*d, the input gradient is the
	// output gradient, padded by (k-1)*d - p, correlated with the flipped
	// filter: the forward kernel, free of scattered stores.
	const int qh = (g.kh - 1) * g.dh - g.ph, qw = (g.kw - 1) * g.dw - g.pw;
	const int gather = g.sh == 1 && g.sw == 1 && qh >= 0 && qw >= 0;
	const dw_geom t = {g.c, g.hout, g.wout, g.kh, g.kw, 1, 1, qh, qw, g.dh, g.dw, g.h, g.w};
	const int hp = gather ? g.hout + 2 * qh : g.h + 2 * g.ph;
	const int wp = gather ? g.wout + 2 * qw : g.w + 2 * g.pw;
	float *buf = alloc_floats((size_t)hp * wp * LANES);
	float *gb = alloc_floats((size_t)(gather ? in : out) * LANES);
	float *wb = alloc_floats((size_t)g.kh * g.kw * LANES);
	size_t *base = pixel_bases(gather ? &t : &g, wp);
	size_t *at_gy = gather ? place(g.hout, g.wout, wp, qh, qw) : place(g.hout, g.wout, g.wout, 0, 0);
	size_t *at_gx = gather ? place(g.h, g.w, g.w, 0, 0) : place(g.h, g.w, wp, g.ph, g.pw);
	int status = buf && gb && wb && base && at_gy && at_gx ? 0 : -1;
	for (int k = task0; k < task1 && status == 0; k++) {
		const int img = k / nb, c0 = (k % nb) * LANES;
		const float *gyi = gy + (size_t)img * g.c * out;
		float *gxi = gx + (size_t)img * g.c * in;
		pack_weights(w, &g, c0, gather, wb);
		if (gather) {
			pack(gyi, g.c, c0, out, at_gy, buf);
			block_forward(buf, wp, base, wb, &t, gb);
			unpack(gb, at_gx, gxi, g.c, c0, in);
		} else {
			pack(gyi, g.c, c0, out, at_gy, gb);
			memset(buf, 0, (size_t)hp * wp * LANES * sizeof(float));
			block_scatter(gb, wb, &g, wp, base, buf);
			unpack(buf, at_gx, gxi, g.c, c0, in);
		}
	}
	free(buf), free(gb), free(wb), free(base), free(at_gy), free(at_gx);
	return status;
}

int dw_backward_weight(const float *x, const float *gy, float *gw, dw_geom g, int n, int block0, int block1) {
	const int hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw, kk = g.kh * g.kw;
	const int in = g.h * g.w, out = g.hout * g.wout;
	float *buf = alloc_floats((size_t)hp * wp * LANES);
	float *gb = alloc_floats((size_t)out * LANES);
	float *acc = alloc_floats((size_t)kk * LANES);
	size_t *base = pixel_bases(&g, wp);
	size_t *at_x = place(g.h, g.w, wp, g.ph, g.pw), *at_gy = place(g.hout, g.wout, g.wout, 0, 0);
	int status = buf && gb && acc && base && at_x && at_gy ? 0 : -1;
	for (int b = block0; b < block1 && status == 0; b++) {
		const int c0 = b * LANES;
		memset(acc, 0, (size_t)kk * LANES * sizeof(float));
		for (int img = 0; img < n; img++) {
			pack(x + (size_t)img * g.c * in, g.c, c0, in, at_x, buf);
			pack(gy + (size_t)img * g.c * out, g.c, c0, out, at_gy, gb);
			block_backward_weight(buf, wp, base, gb, &g, acc);
		}
		for (int l = 0; l < lanes_from(g.c, c0); l++) {
			for (int j = 0; j < kk; j++) {
				gw[(size_t)(c0 + l) * kk + j] = acc[(size_t)j * LANES + l];
			}
		}
	}
	free(buf), free(gb), free(acc), free(base), free(at_x), free(at_gy);
	return status;
}
