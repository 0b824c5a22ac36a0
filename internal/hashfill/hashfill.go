// Package hashfill makes deterministic tensors and a test image from names
// alone, bit for bit the same as scripts/fixtures/hashfill.py, so that a
// PyTorch fixture can name the weights of a whole detector instead of
// shipping them (the DetNAS Faster R-CNN holds 20.8 M numbers, 83 MB in
// float32).
//
// Element i of the tensor called name is a function of (name, i) only:
// a seed from the FNV-1a hash of name, mixed with i by murmur3's 32-bit
// finalizer, turned into a float32 in [-1, 1) with 24 random bits (exact in
// float32). DetectorTensor then scales it by a rule chosen from the
// state-dict name (mmdet's naming) and the shape. Image draws an RGB
// picture with integer arithmetic only.
//
// It imports only the standard library.
package hashfill

import (
	"fmt"
	"math"
	"strings"
)

const (
	fnvOffset = 0x811C9DC5
	fnvPrime  = 0x01000193
	golden    = 0x9E3779B9
)

// seed is the 32-bit FNV-1a hash of name's bytes.
func seed(name string) uint32 {
	h := uint32(fnvOffset)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint32(name[i])) * fnvPrime
	}
	return h
}

// hash32 mixes element index i into a seed: murmur3's 32-bit finalizer
// of seed ^ i*golden, everything modulo 2^32.
func hash32(seed, i uint32) uint32 {
	x := seed ^ i*golden
	x ^= x >> 16
	x *= 0x85EBCA6B
	x ^= x >> 13
	x *= 0xC2B2AE35
	x ^= x >> 16
	return x
}

// unit turns a hash into a float32 in [-1, 1): the top 24 bits times
// 2^-23, minus 1. Every step is exact in float32.
func unit(h uint32) float32 {
	return float32(h>>8)*(1.0/(1<<23)) - 1
}

// Uniform returns n values in [-1, 1) for the tensor called name; element
// i depends on name and i only, so a prefix of a longer fill is the
// shorter fill.
func Uniform(name string, n int) []float32 {
	s := seed(name)
	out := make([]float32, n)
	for i := range out {
		out[i] = unit(hash32(s, uint32(i)))
	}
	return out
}

// headGains scale the weight rule of the detector's output layers, by
// module name; scripts/fixtures/hashfill.py says why each is what it is.
var headGains = map[string]float64{
	"rpn_head.rpn_cls":          3,
	"rpn_head.rpn_reg":          0.5,
	"roi_head.bbox_head.fc_cls": 8,
	"roi_head.bbox_head.fc_reg": 0.5,
}

// biasScale scales the biases of convolutions and linear layers.
const biasScale = 0.1

// DetectorTensor returns the deterministic value of the state-dict tensor
// name with the given shape (row-major), the weights the detector fixtures
// of models/detectors/testdata were computed with. With u = Uniform(name, n):
//
//   - *.num_batches_tracked: 0;
//   - a batch norm (module named "bn"): weight 1 + 0.1u, bias and
//     running_mean 0.1u, running_var 0.75 + 0.25u, so variances are in
//     [0.5, 1) and scales positive;
//   - a weight of two or more dimensions (convolution, linear):
//     u * float32(gain * sqrt(3 / fan_in)), fan_in the product of all but the
//     first dimension; variance gain^2/fan_in keeps activations O(1). The
//     gain is 1 except for the heads' output layers: rpn_head.rpn_cls 3,
//     rpn_head.rpn_reg 0.5, roi_head.bbox_head.fc_cls 8,
//     roi_head.bbox_head.fc_reg 0.5;
//   - a one-dimensional bias: 0.1u.
//
// Each float32 product and sum is rounded on its own, as PyTorch does, so
// the values match scripts/fixtures/hashfill.py bit for bit. The names are
// a program's own module names, not user input: a tensor no rule covers is
// a programming error and panics.
func DetectorTensor(name string, shape []int) []float32 {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if strings.HasSuffix(name, ".num_batches_tracked") {
		return make([]float32, n)
	}
	u := Uniform(name, n)
	dot := strings.LastIndexByte(name, '.')
	module, leaf := name[:max(dot, 0)], name[dot+1:]
	if module == "bn" || strings.HasSuffix(module, ".bn") {
		switch leaf {
		case "weight":
			return affine(u, 0.1, 1)
		case "running_var":
			return affine(u, 0.25, 0.75)
		case "bias", "running_mean":
			return affine(u, 0.1, 0)
		}
		panic(fmt.Sprintf("hashfill: unknown batch-norm tensor %q", name))
	}
	if leaf == "weight" && len(shape) >= 2 {
		gain, ok := headGains[module]
		if !ok {
			gain = 1
		}
		scale := float32(gain * math.Sqrt(3/float64(n/shape[0])))
		return affine(u, scale, 0)
	}
	if leaf == "bias" && len(shape) == 1 {
		return affine(u, biasScale, 0)
	}
	panic(fmt.Sprintf("hashfill: no fill rule for %q with shape %v", name, shape))
}

// affine sets u[i] = offset + scale*u[i] in place, rounding the product
// before the sum: the explicit conversion forbids a fused multiply-add.
// A zero offset is not added, as the Python side adds none.
func affine(u []float32, scale, offset float32) []float32 {
	for i, v := range u {
		u[i] = float32(v * scale)
		if offset != 0 {
			u[i] += offset
		}
	}
	return u
}
