//go:build cgo && !purego && !amd64

// Batch norm kernels for the cgo build: the per-channel sums of
// the statistics and of the backward pass, the normalization and the input
// gradient over an n x c x hw tensor, with eight-wide vectors (Go's
// compiler does not vectorize, and a C compiler may not reassociate a
// scalar float sum on its own). Sums are kept in float lanes over a plane
// (or, for planes smaller than two vectors, over up to 16 images) and added
// in double, like the Go versions.
//
// The exported functions are the vectorized clones' entry points; the
// plane helpers are inlined into each clone, so a call per plane costs no
// dispatch -- the small maps of a supernet's last stages have thousands of
// planes of 4 or 16 values per call.

#include <stdlib.h>

#include "batchnorm_native.h"

typedef float v8f __attribute__((vector_size(8 * sizeof(float)), aligned(sizeof(float))));
typedef int v8i __attribute__((vector_size(8 * sizeof(int)), aligned(sizeof(int))));

#if defined(__x86_64__) && defined(__GNUC__)
#define VECTORIZED __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define VECTORIZED
#endif

#define INLINE static inline __attribute__((always_inline))

// SMALL is the plane size below which sums run across images instead of
// along planes; RUN is how many values of one image such a sum covers at a
// time, and FLUSH how many images it adds in float before moving the sums
// to double.
#define SMALL 16
#define RUN 2048
#define FLUSH 16

#define lane_sum(v) ((((v)[0] + (v)[1]) + ((v)[2] + (v)[3])) + (((v)[4] + (v)[5]) + ((v)[6] + (v)[7])))

// relu_mask is g where y is positive or NaN and +0 where y <= 0: PyTorch's
// threshold_backward after a ReLU whose output is y.
#define relu_mask(g, y) ((v8f)((v8i)(g) & ~(v8i)((y) <= (v8f){0})))

INLINE float relu_mask1(float g, float y) { return y <= 0 ? 0 : g; }

#define splat(v) ((v8f){(v), (v), (v), (v), (v), (v), (v), (v)})

// plane_shifted_sums adds sum(v-k) and sum((v-k)^2) over one plane.
INLINE void plane_shifted_sums(const float *p, int hw, float k, double *sum, double *squares) {
	const v8f kv = splat(k);
	v8f a0 = {0}, a1 = {0}, q0 = {0}, q1 = {0};
	int i = 0;
	for (; i + 16 <= hw; i += 16) {
		v8f d0 = *(const v8f *)(p + i) - kv, d1 = *(const v8f *)(p + i + 8) - kv;
		a0 += d0, a1 += d1;
		q0 += d0 * d0, q1 += d1 * d1;
	}
	a0 += a1, q0 += q1;
	double s = lane_sum(a0), s2 = lane_sum(q0);
	for (; i < hw; i++) {
		double d = (double)p[i] - k;
		s += d, s2 += d * d;
	}
	*sum += s, *squares += s2;
}

// ACROSS_IMAGES writes into s1 and s2, for channels [ch0, ch1) of small
// planes, two sums over every value of the channel, running along each
// image's contiguous values of a block of channels: value j of the block
// starting at channel a belongs to channel a + j / hw. PREPARE gives ev[j],
// a per-value constant (the channel's shift or mean); the last argument
// sets t1 and t2 from the image's values at off + j.
#define ACROSS_IMAGES(n, c, hw, ch0, ch1, s1, s2, PREPARE, ...)                                        \
	do {                                                                                               \
		float acc1[RUN], acc2[RUN], ev[RUN];                                                           \
		const int block = RUN / (hw) > 0 ? RUN / (hw) : 1;                                             \
		for (int a = (ch0); a < (ch1); a += block) {                                                   \
			const int b = a + block < (ch1) ? a + block : (ch1);                                       \
			const int len = (b - a) * (hw);                                                            \
			for (int j = 0; j < len; j++) {                                                            \
				ev[j] = PREPARE;                                                                       \
				acc1[j] = 0, acc2[j] = 0;                                                              \
			}                                                                                          \
			for (int ch = a; ch < b; ch++) {                                                           \
				s1[ch] = 0, s2[ch] = 0;                                                                \
			}                                                                                          \
			for (int i = 0; i < (n); i++) {                                                            \
				const long off = ((long)i * (c) + a) * (hw);                                           \
				for (int j = 0; j < len; j++) {                                                        \
					float t1, t2;                                                                      \
					__VA_ARGS__;                                                                       \
					acc1[j] += t1, acc2[j] += t2;                                                      \
				}                                                                                      \
				if ((i + 1) % FLUSH == 0 || i + 1 == (n)) {                                            \
					for (int j = 0; j < len; j++) {                                                    \
						s1[a + j / (hw)] += acc1[j], s2[a + j / (hw)] += acc2[j];                      \
						acc1[j] = 0, acc2[j] = 0;                                                      \
					}                                                                                  \
				}                                                                                      \
			}                                                                                          \
		}                                                                                              \
	} while (0)

VECTORIZED
void bn_stats(const float *x, int n, int c, int hw, int ch0, int ch1, double *mean, double *variance) {
	const double m = (double)n * hw;
	if (hw < SMALL) {
		// mean and variance hold the sums until the end.
		ACROSS_IMAGES(n, c, hw, ch0, ch1, mean, variance, x[(long)(a + j / hw) * hw],
		              {
			              const float d = x[off + j] - ev[j];
			              t1 = d, t2 = d * d;
		              });
		for (int ch = ch0; ch < ch1; ch++) {
			const double shift = x[(long)ch * hw], d = mean[ch] / m, v = variance[ch] / m - d * d;
			mean[ch] = shift + d;
			variance[ch] = v > 0 ? v : 0;
		}
		return;
	}
	for (int ch = ch0; ch < ch1; ch++) {
		const float shift = x[(long)ch * hw];
		double s = 0, s2 = 0;
		for (int i = 0; i < n; i++) {
			plane_shifted_sums(x + ((long)i * c + ch) * hw, hw, shift, &s, &s2);
		}
		const double d = s / m, v = s2 / m - d * d;
		mean[ch] = shift + d;
		variance[ch] = v > 0 ? v : 0;
	}
}

// plane_grad_sums adds sum(g) and sum(g*(x-mu)) over one plane, where g is
// gy masked by the ReLU output y when y is not NULL.
INLINE void plane_grad_sums(const float *g, const float *x, const float *y, int hw, float mu, double *sum,
                            double *dot) {
	const v8f mv = splat(mu);
	v8f a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0};
	int i = 0;
	for (; i + 16 <= hw; i += 16) {
		v8f g0 = *(const v8f *)(g + i), g1 = *(const v8f *)(g + i + 8);
		if (y) {
			g0 = relu_mask(g0, *(const v8f *)(y + i)), g1 = relu_mask(g1, *(const v8f *)(y + i + 8));
		}
		a0 += g0, a1 += g1;
		b0 += g0 * (*(const v8f *)(x + i) - mv), b1 += g1 * (*(const v8f *)(x + i + 8) - mv);
	}
	a0 += a1, b0 += b1;
	double s = lane_sum(a0), d = lane_sum(b0);
	for (; i < hw; i++) {
		const float gi = y ? relu_mask1(g[i], y[i]) : g[i];
		s += gi, d += (double)gi * ((double)x[i] - mu);
	}
	*sum += s, *dot += d;
}

VECTORIZED
void bn_grad_sums(const float *x, const float *gy, const float *y, const float *mean, int n, int c, int hw,
                  int ch0, int ch1, double *sum, double *dot) {
	if (hw < SMALL) {
		ACROSS_IMAGES(n, c, hw, ch0, ch1, sum, dot, mean[a + j / hw], {
			const float gi = y ? relu_mask1(gy[off + j], y[off + j]) : gy[off + j];
			t1 = gi, t2 = gi * (x[off + j] - ev[j]);
		});
		return;
	}
	for (int ch = ch0; ch < ch1; ch++) {
		double s = 0, d = 0;
		for (int i = 0; i < n; i++) {
			const long off = ((long)i * c + ch) * hw;
			plane_grad_sums(gy + off, x + off, y ? y + off : 0, hw, mean[ch], &s, &d);
		}
		sum[ch] = s, dot[ch] = d;
	}
}

// per_value spreads per-channel coefficients over one image's c*hw values
// (out[ch*hw + p] = v[ch]), or returns NULL when v is NULL or the planes
// are large enough to go plane by plane. The caller frees the result.
static float *per_value(const float *v, int c, int hw) {
	if (!v || hw >= SMALL || (long)c * hw > (1L << 20)) {
		return 0;
	}
	float *out = malloc(sizeof(float) * (size_t)c * hw);
	if (!out) {
		return 0;
	}
	for (int ch = 0; ch < c; ch++) {
		for (int p = 0; p < hw; p++) {
			out[ch * hw + p] = v[ch];
		}
	}
	return out;
}

// affine writes v*a + b over len values, negative results cleared when
// relu (NaN passes, as in PyTorch); a and b are vectors over the values
// (step 1) or one coefficient each (step 0).
INLINE void affine(const float *x, const float *a, const float *b, int step, int relu, int len, float *y) {
	int i = 0;
	if (step == 0) {
		const v8f av = splat(*a), bv = splat(*b);
		for (; i + 8 <= len; i += 8) {
			v8f v = *(const v8f *)(x + i) * av + bv;
			if (relu) {
				v = (v8f)((v8i)v & ~(v8i)(v < (v8f){0}));
			}
			*(v8f *)(y + i) = v;
		}
	} else {
		for (; i + 8 <= len; i += 8) {
			v8f v = *(const v8f *)(x + i) * *(const v8f *)(a + i) + *(const v8f *)(b + i);
			if (relu) {
				v = (v8f)((v8i)v & ~(v8i)(v < (v8f){0}));
			}
			*(v8f *)(y + i) = v;
		}
	}
	for (; i < len; i++) {
		float v = x[i] * a[i * step] + b[i * step];
		y[i] = relu && v < 0 ? 0 : v;
	}
}

VECTORIZED
void bn_normalize(const float *x, int c, int hw, int t0, int t1, const float *scale, const float *shift, int relu,
                  float *y) {
	float *se = per_value(scale, c, hw), *sh = se ? per_value(shift, c, hw) : 0;
	if (se && sh) {
		// Runs of whole images' values: element j of an image is channel j / hw.
		const long image = (long)c * hw;
		for (long j = (long)t0 * hw, end = (long)t1 * hw; j < end;) {
			const long at = j % image, len = end - j < image - at ? end - j : image - at;
			affine(x + j, se + at, sh + at, 1, relu, (int)len, y + j);
			j += len;
		}
	} else {
		for (int t = t0; t < t1; t++) {
			const int ch = t % c;
			const long off = (long)t * hw;
			affine(x + off, scale + ch, shift + ch, 0, relu, hw, y + off);
		}
	}
	free(se);
	free(sh);
}

// input_grad writes k*g + x*a + b over len values, or k*g when a is NULL
// (x is then not read), g being gy masked by the ReLU output y when y is
// not NULL; k, a and b step as in affine.
INLINE void input_grad(const float *x, const float *g, const float *y, const float *k, const float *a,
                       const float *b, int step, int len, float *gx) {
	int i = 0;
	for (; i + 8 <= len; i += 8) {
		v8f gv = *(const v8f *)(g + i);
		if (y) {
			gv = relu_mask(gv, *(const v8f *)(y + i));
		}
		const v8f kv = step ? *(const v8f *)(k + i) : splat(*k);
		if (a) {
			const v8f av = step ? *(const v8f *)(a + i) : splat(*a), bv = step ? *(const v8f *)(b + i) : splat(*b);
			*(v8f *)(gx + i) = kv * gv + *(const v8f *)(x + i) * av + bv;
		} else {
			*(v8f *)(gx + i) = kv * gv;
		}
	}
	for (; i < len; i++) {
		const float gi = y ? relu_mask1(g[i], y[i]) : g[i];
		gx[i] = a ? k[i * step] * gi + x[i] * a[i * step] + b[i * step] : k[i * step] * gi;
	}
}

VECTORIZED
void bn_input_grad(const float *x, const float *gy, const float *y, int c, int hw, int t0, int t1, const float *k,
                   const float *a, const float *b, float *gx) {
	float *ke = per_value(k, c, hw), *ae = ke ? per_value(a, c, hw) : 0, *be = ae ? per_value(b, c, hw) : 0;
	if (ke && (!a || (ae && be))) {
		const long image = (long)c * hw;
		for (long j = (long)t0 * hw, end = (long)t1 * hw; j < end;) {
			const long at = j % image, len = end - j < image - at ? end - j : image - at;
			input_grad(x + j, gy + j, y ? y + j : 0, ke + at, a ? ae + at : 0, a ? be + at : 0, 1, (int)len, gx + j);
			j += len;
		}
	} else {
		for (int t = t0; t < t1; t++) {
			const int ch = t % c;
			const long off = (long)t * hw;
			input_grad(x + off, gy + off, y ? y + off : 0, k + ch, a ? a + ch : 0, a ? b + ch : 0, 0, hw, gx + off);
		}
	}
	free(ke);
	free(ae);
	free(be);
}
