//go:build cgo && !purego && !amd64

#ifndef RAZOR_DEPTHWISE_NATIVE_H
#define RAZOR_DEPTHWISE_NATIVE_H

// dw_geom mirrors the Go convGeom of a depthwise convolution: c channels of
// h x w in, kh x kw filters, hout x wout out.
typedef struct {
	int c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, hout, wout;
} dw_geom;

// Tasks number (image, block of 8 channels) pairs as image*blocks + block.
// Each function returns 0, or -1 when it could not allocate scratch memory.
int dw_forward(const float *x, const float *w, float *y, dw_geom g, int task0, int task1);
int dw_backward_input(const float *w, const float *gy, float *gx, dw_geom g, int task0, int task1);
// dw_backward_weight sums over all n images for channel blocks [block0, block1).
int dw_backward_weight(const float *x, const float *gy, float *gw, dw_geom g, int n, int block0, int block1);

#endif
