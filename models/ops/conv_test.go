package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
)

// naiveConv is the definition of a convolution, loop by loop.
func naiveConv(g convGeom, x, w, b []float64) []float64 {
	y := make([]float64, g.n*g.cout*g.hout*g.wout)
	for i := 0; i < g.n; i++ {
		for co := 0; co < g.cout; co++ {
			gr := co / g.coutG
			for oy := 0; oy < g.hout; oy++ {
				for ox := 0; ox < g.wout; ox++ {
					var s float64
					if b != nil {
						s = b[co]
					}
					for ci := 0; ci < g.cinG; ci++ {
						for ky := 0; ky < g.kh; ky++ {
							for kx := 0; kx < g.kw; kx++ {
								iy, ix := oy*g.sh-g.ph+ky*g.dh, ox*g.sw-g.pw+kx*g.dw
								if iy < 0 || iy >= g.h || ix < 0 || ix >= g.w {
									continue
								}
								s += w[((co*g.cinG+ci)*g.kh+ky)*g.kw+kx] * x[((i*g.cin+gr*g.cinG+ci)*g.h+iy)*g.w+ix]
							}
						}
					}
					y[((i*g.cout+co)*g.hout+oy)*g.wout+ox] = s
				}
			}
		}
	}
	return y
}

type convCase struct {
	x, w tensor.Shape
	p    Conv2dParams
}

func (c convCase) String() string { return fmt.Sprintf("x%v_w%v_%+v", []int(c.x), []int(c.w), c.p) }

// convCases covers every kernel path: pointwise (plain and grouped),
// depthwise 3/5/7 with stride 1 and 2 (gather and scatter input gradients),
// dilated and over-padded depthwise, and general convolutions through
// im2col with stride, padding, dilation, groups and rectangular kernels.
var convCases = []convCase{
	{tensor.Shape{2, 4, 5, 6}, tensor.Shape{3, 4, 1, 1}, Conv2dParams{}},
	{tensor.Shape{2, 4, 5, 6}, tensor.Shape{6, 2, 1, 1}, Conv2dParams{Groups: 2}},
	// Planes of 72 pixels: one product per image in float64 (and the
	// OpenBLAS build), all images side by side in place in float32.
	{tensor.Shape{3, 6, 9, 8}, tensor.Shape{4, 3, 1, 1}, Conv2dParams{Groups: 2}},
	{tensor.Shape{2, 3, 7, 6}, tensor.Shape{3, 1, 3, 3}, Conv2dParams{Padding: [2]int{1, 1}, Groups: 3}},
	{tensor.Shape{2, 3, 8, 9}, tensor.Shape{3, 1, 5, 5}, Conv2dParams{Padding: [2]int{2, 2}, Groups: 3}},
	{tensor.Shape{1, 2, 9, 9}, tensor.Shape{2, 1, 7, 7}, Conv2dParams{Padding: [2]int{3, 3}, Groups: 2}},
	{tensor.Shape{2, 3, 8, 7}, tensor.Shape{3, 1, 3, 3}, Conv2dParams{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}, Groups: 3}},
	{tensor.Shape{1, 2, 11, 10}, tensor.Shape{2, 1, 7, 7}, Conv2dParams{Stride: [2]int{2, 2}, Padding: [2]int{3, 3}, Groups: 2}},
	{tensor.Shape{1, 2, 9, 8}, tensor.Shape{2, 1, 3, 3}, Conv2dParams{Padding: [2]int{2, 2}, Dilation: [2]int{2, 2}, Groups: 2}},
	{tensor.Shape{1, 2, 5, 5}, tensor.Shape{2, 1, 3, 3}, Conv2dParams{Padding: [2]int{3, 3}, Groups: 2}},
	{tensor.Shape{2, 3, 7, 8}, tensor.Shape{4, 3, 3, 3}, Conv2dParams{Stride: [2]int{2, 2}, Padding: [2]int{1, 1}}},
	{tensor.Shape{1, 2, 6, 7}, tensor.Shape{3, 2, 3, 2}, Conv2dParams{Stride: [2]int{1, 2}, Padding: [2]int{0, 1}, Dilation: [2]int{2, 1}}},
	{tensor.Shape{2, 4, 5, 5}, tensor.Shape{4, 2, 3, 3}, Conv2dParams{Padding: [2]int{1, 1}, Groups: 2}},
	{tensor.Shape{1, 3, 9, 9}, tensor.Shape{2, 3, 1, 1}, Conv2dParams{Stride: [2]int{2, 2}}},
	// Depthwise with whole and partial blocks of eight channels, for the
	// interleaving kernels (assembly on amd64, C with cgo elsewhere).
	{tensor.Shape{2, 16, 9, 7}, tensor.Shape{16, 1, 3, 3}, Conv2dParams{Padding: [2]int{1, 1}, Groups: 16}},
	{tensor.Shape{1, 11, 9, 10}, tensor.Shape{11, 1, 5, 5}, Conv2dParams{Stride: [2]int{2, 2}, Padding: [2]int{2, 2}, Groups: 11}},
	{tensor.Shape{1, 9, 6, 6}, tensor.Shape{9, 1, 3, 3}, Conv2dParams{Padding: [2]int{2, 2}, Dilation: [2]int{2, 2}, Groups: 9}},
	// Blocks of sixteen and eight channels side by side (the AVX-512
	// forward kernel's 16+16+8 for 40 channels), forward and gathered
	// input gradient.
	{tensor.Shape{2, 40, 7, 7}, tensor.Shape{40, 1, 5, 5}, Conv2dParams{Padding: [2]int{2, 2}, Groups: 40}},
	{tensor.Shape{1, 24, 6, 5}, tensor.Shape{24, 1, 3, 3}, Conv2dParams{Padding: [2]int{1, 1}, Groups: 24}},
}

func TestConvForwardMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, c := range convCases {
		t.Run(c.String(), func(t *testing.T) {
			g, err := newConvGeom(c.x, c.w, c.p)
			if err != nil {
				t.Fatal(err)
			}
			x, w, b := randSlice(rng, c.x.TotalSize()), randSlice(rng, c.w.TotalSize()), randSlice(rng, g.cout)
			y := make([]float64, g.yShape().TotalSize())
			convForward(g, x, w, b, y)
			closeTo(t, "y", y, naiveConv(g, x, w, b), 1e-12)
			// Float32 goes through the build's BLAS instead.
			y32 := make([]float32, len(y))
			convForward(g, toF32(x), toF32(w), toF32(b), y32)
			closeTo(t, "y(float32)", toF64(y32), y, 1e-5)
		})
	}
}

// TestConvForwardSplitsWork covers how the im2col path cuts its work into
// tasks: bands of output rows of an image too large for one unfolding,
// several small images side by side in one product (with a short last
// batch), and side-by-side images per group.
func TestConvForwardSplitsWork(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, c := range []convCase{
		{tensor.Shape{1, 8, 170, 200}, tensor.Shape{4, 8, 3, 3}, Conv2dParams{Padding: [2]int{1, 1}}},
		{tensor.Shape{41, 256, 7, 7}, tensor.Shape{8, 256, 3, 3}, Conv2dParams{Padding: [2]int{1, 1}}},
		{tensor.Shape{37, 4, 5, 5}, tensor.Shape{6, 2, 3, 3}, Conv2dParams{Padding: [2]int{1, 1}, Groups: 2}},
	} {
		t.Run(c.String(), func(t *testing.T) {
			g, err := newConvGeom(c.x, c.w, c.p)
			if err != nil {
				t.Fatal(err)
			}
			if g.bandRows() == g.hout && g.smallBatch() == 1 {
				t.Fatalf("%v is unfolded whole, one image at a time: not a split", g)
			}
			x, w := randSlice(rng, c.x.TotalSize()), randSlice(rng, c.w.TotalSize())
			want := naiveConv(g, x, w, nil)
			y := make([]float64, len(want))
			convForward(g, x, w, nil, y)
			closeTo(t, "y", y, want, 1e-12)
			// float32 rounding grows like the square root of the terms summed.
			y32 := make([]float32, len(want))
			convForward(g, toF32(x), toF32(w), nil, y32)
			closeTo(t, "y(float32)", toF64(y32), want, 2e-6*math.Sqrt(float64(g.kkc)))
		})
	}
}

// TestConvBackwardSplitsWork checks the gradients of the split cases:
// several small images side by side in one product (with a short last
// batch, and per group) must give what one image at a time gives (that
// path is checked against finite differences): the input gradient image
// by image, the weight gradient as the sum over images.
func TestConvBackwardSplitsWork(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, c := range []convCase{
		{tensor.Shape{41, 256, 7, 7}, tensor.Shape{8, 256, 3, 3}, Conv2dParams{Padding: [2]int{1, 1}}},
		{tensor.Shape{160, 64, 7, 7}, tensor.Shape{64, 64, 3, 3}, Conv2dParams{Padding: [2]int{1, 1}}},
		{tensor.Shape{37, 4, 5, 5}, tensor.Shape{6, 2, 3, 3}, Conv2dParams{Padding: [2]int{1, 1}, Groups: 2}},
		{tensor.Shape{3, 4, 5, 5}, tensor.Shape{6, 2, 3, 3}, Conv2dParams{Padding: [2]int{1, 1}, Groups: 2}},
	} {
		t.Run(c.String(), func(t *testing.T) {
			g, err := newConvGeom(c.x, c.w, c.p)
			if err != nil {
				t.Fatal(err)
			}
			if g.smallBatch() == 1 {
				t.Fatalf("%v is not taken several images at a time", g)
			}
			one := g
			one.n = 1
			x, w, gy := randSlice(rng, c.x.TotalSize()), randSlice(rng, c.w.TotalSize()), randSlice(rng, g.yShape().TotalSize())
			wantX, wantW := make([]float64, len(x)), make([]float64, len(w))
			inSize, outSize := len(x)/g.n, len(gy)/g.n
			gwi := make([]float64, len(w))
			for i := range g.n {
				convBackwardInput(one, w, gy[i*outSize:(i+1)*outSize], wantX[i*inSize:(i+1)*inSize])
				convBackwardWeight(one, x[i*inSize:(i+1)*inSize], gy[i*outSize:(i+1)*outSize], gwi)
				for j, v := range gwi {
					wantW[j] += v
				}
			}
			for _, f32 := range []bool{false, true} {
				gx, gw := make([]float64, len(x)), make([]float64, len(w))
				if f32 {
					gx32, gw32 := make([]float32, len(x)), make([]float32, len(w))
					convBackwardInput(g, toF32(w), toF32(gy), gx32)
					convBackwardWeight(g, toF32(x), toF32(gy), gw32)
					gx, gw = toF64(gx32), toF64(gw32)
				} else {
					convBackwardInput(g, w, gy, gx)
					convBackwardWeight(g, x, gy, gw)
				}
				tol := 1e-12
				if f32 {
					tol = 2e-6 * math.Sqrt(float64(g.n*g.hout*g.wout))
				}
				closeTo(t, fmt.Sprintf("dx (float32 %v)", f32), gx, wantX, tol)
				closeTo(t, fmt.Sprintf("dw (float32 %v)", f32), gw, wantW, tol)
			}
		})
	}
}

func TestConvGradientsMatchFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	for _, c := range convCases {
		t.Run(c.String(), func(t *testing.T) {
			g, err := newConvGeom(c.x, c.w, c.p)
			if err != nil {
				t.Fatal(err)
			}
			x, w, b := randSlice(rng, c.x.TotalSize()), randSlice(rng, c.w.TotalSize()), randSlice(rng, g.cout)
			r := randSlice(rng, g.yShape().TotalSize())
			y := make([]float64, len(r))
			loss := func() float64 {
				convForward(g, x, w, b, y)
				return dot(y, r)
			}
			gx, gw, gb := make([]float64, len(x)), make([]float64, len(w)), make([]float64, len(b))
			convBackwardInput(g, w, r, gx)
			convBackwardWeight(g, x, r, gw)
			channelSum(g.n, g.cout, g.hout*g.wout, r, gb)
			closeTo(t, "dx", gx, numericGrad(x, loss), gradTol)
			closeTo(t, "dw", gw, numericGrad(w, loss), gradTol)
			closeTo(t, "db", gb, numericGrad(b, loss), gradTol)
		})
	}
}

// TestConvFloat32MatchesFloat64 checks the float32 paths (the build's BLAS
// and the eight-wide depthwise kernels) against the float64
// Go kernels that the gradient checks validate.
func TestConvFloat32MatchesFloat64(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, c := range convCases {
		t.Run(c.String(), func(t *testing.T) {
			g, err := newConvGeom(c.x, c.w, c.p)
			if err != nil {
				t.Fatal(err)
			}
			x, w, gy := randSlice(rng, c.x.TotalSize()), randSlice(rng, c.w.TotalSize()), randSlice(rng, g.yShape().TotalSize())
			gx, gw := make([]float64, len(x)), make([]float64, len(w))
			convBackwardInput(g, w, gy, gx)
			convBackwardWeight(g, x, gy, gw)
			gx32, gw32 := make([]float32, len(x)), make([]float32, len(w))
			convBackwardInput(g, toF32(w), toF32(gy), gx32)
			convBackwardWeight(g, toF32(x), toF32(gy), gw32)
			closeTo(t, "dx(float32)", toF64(gx32), gx, 1e-5)
			closeTo(t, "dw(float32)", toF64(gw32), gw, 1e-5)
		})
	}
}

func TestConvGeometryErrors(t *testing.T) {
	cases := []struct {
		name string
		x, w tensor.Shape
		p    Conv2dParams
	}{
		{"channels", tensor.Shape{1, 3, 5, 5}, tensor.Shape{2, 2, 3, 3}, Conv2dParams{}},
		{"groups", tensor.Shape{1, 4, 5, 5}, tensor.Shape{3, 2, 1, 1}, Conv2dParams{Groups: 2}},
		{"kernel too big", tensor.Shape{1, 1, 2, 2}, tensor.Shape{1, 1, 3, 3}, Conv2dParams{}},
		{"negative padding", tensor.Shape{1, 1, 5, 5}, tensor.Shape{1, 1, 3, 3}, Conv2dParams{Padding: [2]int{-1, 0}}},
		{"negative stride", tensor.Shape{1, 1, 5, 5}, tensor.Shape{1, 1, 3, 3}, Conv2dParams{Stride: [2]int{-1, 1}}},
	}
	for _, c := range cases {
		if _, err := newConvGeom(c.x, c.w, c.p); err == nil {
			t.Errorf("%s: x %v w %v %+v accepted", c.name, c.x, c.w, c.p)
		}
	}
}

func toF32(s []float64) []float32 {
	out := make([]float32, len(s))
	for i, v := range s {
		out[i] = float32(v)
	}
	return out
}

func toF64(s []float32) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = float64(v)
	}
	return out
}
