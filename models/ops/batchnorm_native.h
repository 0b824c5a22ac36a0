//go:build cgo && !purego && !amd64

#ifndef RAZOR_BATCHNORM_NATIVE_H
#define RAZOR_BATCHNORM_NATIVE_H

// bn_stats writes the mean and biased variance of channels [ch0, ch1) of an
// n x c x hw tensor.
void bn_stats(const float *x, int n, int c, int hw, int ch0, int ch1, double *mean, double *variance);

// bn_grad_sums writes, for channels [ch0, ch1), sum(g) and
// sum(g * (x - mean)), where g is gy, or gy masked by the ReLU output y
// (zero where y <= 0) when y is not NULL.
void bn_grad_sums(const float *x, const float *gy, const float *y, const float *mean, int n, int c, int hw,
                  int ch0, int ch1, double *sum, double *dot);

// bn_normalize writes y = x*scale[ch] + shift[ch] for planes [t0, t1) of an
// n x c x hw tensor (plane t has channel t % c), clearing negative values
// when relu is not 0.
void bn_normalize(const float *x, int c, int hw, int t0, int t1, const float *scale, const float *shift, int relu,
                  float *y);

// bn_input_grad writes gx = k[ch]*g + x*a[ch] + b[ch] for planes [t0, t1),
// or k[ch]*g when a is NULL (x is then not read); g is gy masked by the
// ReLU output y when y is not NULL.
void bn_input_grad(const float *x, const float *gy, const float *y, int c, int hw, int t0, int t1, const float *k,
                   const float *a, const float *b, float *gx);

#endif
