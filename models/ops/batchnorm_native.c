//go:build openblas

// Batch norm reductions for the cgo (openblas) build: per-channel sums over
// an n x c x hw tensor with eight-wide vector accumulators (Go's compiler
// does not vectorize, and a C compiler may not reassociate a scalar float
// sum on its own). Each plane is summed in float lanes and the planes are
// added in double, like the Go versions.

#include "batchnorm_native.h"

typedef float v8f __attribute__((vector_size(8 * sizeof(float)), aligned(sizeof(float))));

#if defined(__x86_64__) && defined(__GNUC__)
#define VECTORIZED __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define VECTORIZED
#endif

static inline float lane_sum(const v8f *v) {
	return (((*v)[0] + (*v)[1]) + ((*v)[2] + (*v)[3])) + (((*v)[4] + (*v)[5]) + ((*v)[6] + (*v)[7]));
}

// plane_shifted_sums returns sum(v-k) and sum((v-k)^2) over one plane.
VECTORIZED
static void plane_shifted_sums(const float *p, int hw, float k, double *sum, double *squares) {
	const v8f kv = {k, k, k, k, k, k, k, k};
	v8f a0 = {0}, a1 = {0}, q0 = {0}, q1 = {0};
	int i = 0;
	for (; i + 16 <= hw; i += 16) {
		v8f d0 = *(const v8f *)(p + i) - kv, d1 = *(const v8f *)(p + i + 8) - kv;
		a0 += d0, a1 += d1;
		q0 += d0 * d0, q1 += d1 * d1;
	}
	a0 += a1, q0 += q1;
	double s = lane_sum(&a0), s2 = lane_sum(&q0);
	for (; i < hw; i++) {
		double d = (double)p[i] - k;
		s += d, s2 += d * d;
	}
	*sum += s, *squares += s2;
}

void bn_stats(const float *x, int n, int c, int hw, int ch0, int ch1, double *mean, double *variance) {
	const double m = (double)n * hw;
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

typedef int v8i __attribute__((vector_size(8 * sizeof(int)), aligned(sizeof(int))));

// relu_mask is g where y is positive or NaN and +0 where y <= 0: PyTorch's
// threshold_backward after a ReLU whose output is y. (A macro: a function
// passing vectors would need the AVX calling convention outside the
// target clones.)
#define relu_mask(g, y) ((v8f)((v8i)(g) & ~(v8i)((y) <= (v8f){0})))

static inline float relu_mask1(float g, float y) { return y <= 0 ? 0 : g; }

// plane_grad_sums adds sum(g) and sum(g*(x-mu)) over one plane, where g is
// gy masked by the ReLU output y when y is not NULL.
VECTORIZED
static void plane_grad_sums(const float *g, const float *x, const float *y, int hw, float mu, double *sum,
                            double *dot) {
	const v8f mv = {mu, mu, mu, mu, mu, mu, mu, mu};
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
	double s = lane_sum(&a0), d = lane_sum(&b0);
	for (; i < hw; i++) {
		const float gi = y ? relu_mask1(g[i], y[i]) : g[i];
		s += gi, d += (double)gi * ((double)x[i] - mu);
	}
	*sum += s, *dot += d;
}

void bn_grad_sums(const float *x, const float *gy, const float *y, const float *mean, int n, int c, int hw,
                  int ch0, int ch1, double *sum, double *dot) {
	for (int ch = ch0; ch < ch1; ch++) {
		double s = 0, d = 0;
		for (int i = 0; i < n; i++) {
			const long off = ((long)i * c + ch) * hw;
			plane_grad_sums(gy + off, x + off, y ? y + off : 0, hw, mean[ch], &s, &d);
		}
		sum[ch] = s, dot[ch] = d;
	}
}

// plane_affine writes v*a + b over one plane, negative results cleared when
// relu (NaN passes, as in PyTorch).
VECTORIZED
static void plane_affine(const float *x, float a, float b, int relu, int hw, float *y) {
	const v8f av = {a, a, a, a, a, a, a, a}, bv = {b, b, b, b, b, b, b, b}, zero = {0};
	int i = 0;
	for (; i + 8 <= hw; i += 8) {
		v8f v = *(const v8f *)(x + i) * av + bv;
		if (relu) {
			v = (v8f)((v8i)v & ~(v8i)(v < zero));
		}
		*(v8f *)(y + i) = v;
	}
	for (; i < hw; i++) {
		float v = x[i] * a + b;
		y[i] = relu && v < 0 ? 0 : v;
	}
}

void bn_normalize(const float *x, int c, int hw, int t0, int t1, const float *scale, const float *shift, int relu,
                  float *y) {
	for (int t = t0; t < t1; t++) {
		const int ch = t % c;
		const long off = (long)t * hw;
		plane_affine(x + off, scale[ch], shift[ch], relu, hw, y + off);
	}
}

// plane_input_grad writes k*g + x*a + b over one plane, g being gy masked
// by the ReLU output y when y is not NULL.
VECTORIZED
static void plane_input_grad(const float *x, const float *g, const float *y, float k, float a, float b, int hw,
                             float *gx) {
	const v8f kv = {k, k, k, k, k, k, k, k}, av = {a, a, a, a, a, a, a, a}, bv = {b, b, b, b, b, b, b, b};
	int i = 0;
	for (; i + 8 <= hw; i += 8) {
		v8f gv = *(const v8f *)(g + i);
		if (y) {
			gv = relu_mask(gv, *(const v8f *)(y + i));
		}
		*(v8f *)(gx + i) = kv * gv + *(const v8f *)(x + i) * av + bv;
	}
	for (; i < hw; i++) {
		const float gi = y ? relu_mask1(g[i], y[i]) : g[i];
		gx[i] = k * gi + x[i] * a + b;
	}
}

// plane_scale writes k*g over one plane, g masked as in plane_input_grad.
VECTORIZED
static void plane_scale(const float *g, const float *y, float k, int hw, float *gx) {
	const v8f kv = {k, k, k, k, k, k, k, k};
	int i = 0;
	for (; i + 8 <= hw; i += 8) {
		v8f gv = *(const v8f *)(g + i);
		if (y) {
			gv = relu_mask(gv, *(const v8f *)(y + i));
		}
		*(v8f *)(gx + i) = kv * gv;
	}
	for (; i < hw; i++) {
		gx[i] = k * (y ? relu_mask1(g[i], y[i]) : g[i]);
	}
}

void bn_input_grad(const float *x, const float *gy, const float *y, int c, int hw, int t0, int t1, const float *k,
                   const float *a, const float *b, float *gx) {
	for (int t = t0; t < t1; t++) {
		const int ch = t % c;
		const long off = (long)t * hw;
		if (a) {
			plane_input_grad(x + off, gy + off, y ? y + off : 0, k[ch], a[ch], b[ch], hw, gx + off);
		} else {
			plane_scale(gy + off, y ? y + off : 0, k[ch], hw, gx + off);
		}
	}
}
