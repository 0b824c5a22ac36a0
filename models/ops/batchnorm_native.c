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

// plane_grad_sums adds sum(g) and sum(g*(x-mu)) over one plane.
VECTORIZED
static void plane_grad_sums(const float *g, const float *x, int hw, float mu, double *sum, double *dot) {
	const v8f mv = {mu, mu, mu, mu, mu, mu, mu, mu};
	v8f a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0};
	int i = 0;
	for (; i + 16 <= hw; i += 16) {
		v8f g0 = *(const v8f *)(g + i), g1 = *(const v8f *)(g + i + 8);
		a0 += g0, a1 += g1;
		b0 += g0 * (*(const v8f *)(x + i) - mv), b1 += g1 * (*(const v8f *)(x + i + 8) - mv);
	}
	a0 += a1, b0 += b1;
	double s = lane_sum(&a0), d = lane_sum(&b0);
	for (; i < hw; i++) {
		s += g[i], d += (double)g[i] * ((double)x[i] - mu);
	}
	*sum += s, *dot += d;
}

void bn_grad_sums(const float *x, const float *gy, const float *mean, int n, int c, int hw, int ch0, int ch1,
                  double *sum, double *dot) {
	for (int ch = ch0; ch < ch1; ch++) {
		double s = 0, d = 0;
		for (int i = 0; i < n; i++) {
			const long off = ((long)i * c + ch) * hw;
			plane_grad_sums(gy + off, x + off, hw, mean[ch], &s, &d);
		}
		sum[ch] = s, dot[ch] = d;
	}
}
