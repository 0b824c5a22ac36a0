//go:build openblas

#ifndef RAZOR_BATCHNORM_NATIVE_H
#define RAZOR_BATCHNORM_NATIVE_H

// bn_stats writes the mean and biased variance of channels [ch0, ch1) of an
// n x c x hw tensor.
void bn_stats(const float *x, int n, int c, int hw, int ch0, int ch1, double *mean, double *variance);

// bn_grad_sums writes, for channels [ch0, ch1), sum(gy) and
// sum(gy * (x - mean)).
void bn_grad_sums(const float *x, const float *gy, const float *mean, int n, int c, int hw, int ch0, int ch1,
                  double *sum, double *dot);

#endif
