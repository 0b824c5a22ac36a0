package blas

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// imageMatrix is a matrix stored as channels [c0, c0+rows) of an
// images×channels×hw tensor: row r is channel c0+r, and its columns are
// the images' planes side by side.
type imageMatrix struct {
	images, channels, hw, c0, rows int
}

func (im imageMatrix) layout() Layout {
	return Layout{LD: im.hw, Width: im.hw, Stride: im.channels * im.hw}
}

func (im imageMatrix) cols() int { return im.images * im.hw }

// index is where element (r, q) lies in the tensor.
func (im imageMatrix) index(r, q int) int {
	return (q/im.hw*im.channels+im.c0+r)*im.hw + q%im.hw
}

func (im imageMatrix) size() int { return im.images * im.channels * im.hw }

type planesCase struct {
	name           string
	transA, transB bool
	m, n, k        int
	// a, b, c are the stored operands: nil is a plain matrix.
	a, b, c     *imageMatrix
	alpha, beta float64
}

func planesCases() []planesCase {
	var cases []planesCase
	for _, hw := range []int{1, 7, 49, 196} {
		for _, images := range []int{1, 3, 32} {
			cin, cout := 24, 20
			x := &imageMatrix{images, cin + 5, hw, 3, cin}
			y := &imageMatrix{images, cout + 2, hw, 1, cout}
			n := images * hw
			for _, ab := range [][2]float64{{1, 0}, {-0.5, 1}, {2, 0.25}} {
				tag := fmt.Sprintf("hw=%d,images=%d,alpha=%g,beta=%g", hw, images, ab[0], ab[1])
				cases = append(cases,
					// A convolution's forward pass and input gradient: the
					// images side by side along the columns of B and C.
					planesCase{"fwd/" + tag, false, false, cout, n, cin, nil, x, y, ab[0], ab[1]},
					planesCase{"dx/" + tag, true, false, cin, n, cout, nil, y, x, ab[0], ab[1]},
					// Its weight gradient: the images along the shared dimension.
					planesCase{"dw/" + tag, false, true, cout, cin, n, y, x, nil, ab[0], ab[1]},
				)
			}
		}
	}
	// Large enough to be split across workers: by columns, by rows, and
	// along the shared dimension.
	x := &imageMatrix{32, 170, 49, 10, 160}
	y := &imageMatrix{32, 160, 49, 0, 160}
	cases = append(cases,
		planesCase{"split/fwd", false, false, 160, 32 * 49, 160, nil, x, y, 1, 0},
		planesCase{"split/dx", true, false, 160, 32 * 49, 160, nil, y, x, 1, 0.5},
		planesCase{"split/dw", false, true, 160, 160, 32 * 49, y, x, nil, 1, 0},
		planesCase{"split/dw_beta", false, true, 160, 160, 32 * 49, y, x, nil, 0.5, 1},
		planesCase{"split/rows", false, true, 800, 40, 1024, nil, nil, nil, 1, 0})
	return cases
}

// planesOperand is one stored operand of a case: its values, layout and
// the index of each of its stored elements.
type planesOperand struct {
	data   []float64
	layout Layout
	index  func(r, q int) int
}

func newPlanesOperand(im *imageMatrix, rows, cols int, rng *rand.Rand) planesOperand {
	size, layout, index := rows*cols, Layout{LD: cols}, func(r, q int) int { return r*cols + q }
	if im != nil {
		if im.rows != rows || im.cols() != cols {
			panic(fmt.Sprintf("case: image matrix %+v is not %d×%d", *im, rows, cols))
		}
		size, layout, index = im.size(), im.layout(), im.index
	}
	data := make([]float64, size)
	for i := range data {
		data[i] = rng.Float64()*2 - 1
	}
	return planesOperand{data, layout, index}
}

// dense copies the operand into a plain rows×cols matrix.
func (o planesOperand) dense(rows, cols int) []float64 {
	out := make([]float64, rows*cols)
	for r := 0; r < rows; r++ {
		for q := 0; q < cols; q++ {
			out[r*cols+q] = o.data[o.index(r, q)]
		}
	}
	return out
}

func TestSgemmPlanesMatchesNaive(t *testing.T) {
	var planars []Gemm
	for _, impl := range impls() {
		if _, ok := impl.(Planar); ok {
			planars = append(planars, impl)
		}
	}
	if len(planars) == 0 {
		t.Fatal("no implementation multiplies planes")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, pc := range planesCases() {
		rowsA, colsA := storedDims(pc.transA, pc.m, pc.k)
		rowsB, colsB := storedDims(pc.transB, pc.k, pc.n)
		a := newPlanesOperand(pc.a, rowsA, colsA, rng)
		b := newPlanesOperand(pc.b, rowsB, colsB, rng)
		c := newPlanesOperand(pc.c, pc.m, pc.n, rng)
		want := c.dense(pc.m, pc.n)
		naive(pc.transA, pc.transB, pc.m, pc.n, pc.k, pc.alpha, a.dense(rowsA, colsA), colsA, b.dense(rowsB, colsB), colsB, pc.beta, want, pc.n)
		inC := make([]bool, len(c.data))
		for i := 0; i < pc.m; i++ {
			for j := 0; j < pc.n; j++ {
				inC[c.index(i, j)] = true
			}
		}
		for _, impl := range planars {
			t.Run(impl.Name()+"/"+pc.name, func(t *testing.T) {
				// Each layout starts at its matrix's first element.
				got := toF32(c.data)
				impl.(Planar).SgemmPlanes(pc.transA, pc.transB, pc.m, pc.n, pc.k, float32(pc.alpha),
					toF32(a.data)[a.index(0, 0):], a.layout, toF32(b.data)[b.index(0, 0):], b.layout,
					float32(pc.beta), got[c.index(0, 0):], c.layout)
				tol := 1e-5 * math.Sqrt(float64(pc.k)) * 4
				for idx, v := range got {
					if !inC[idx] && v != float32(c.data[idx]) {
						t.Fatalf("element %d outside C changed from %g to %g", idx, c.data[idx], v)
					}
				}
				for i := 0; i < pc.m; i++ {
					for j := 0; j < pc.n; j++ {
						v, w := float64(got[c.index(i, j)]), want[i*pc.n+j]
						if d := math.Abs(v - w); d > tol*(1+math.Abs(w)) {
							t.Fatalf("C[%d][%d] = %g, want %g (diff %g > tol %g)", i, j, v, w, d, tol)
						}
					}
				}
			})
		}
	}
}

func TestSgemmPlanesPanicsOnShortSlice(t *testing.T) {
	im := imageMatrix{images: 2, channels: 4, hw: 9, rows: 4}
	defer func() {
		if recover() == nil {
			t.Error("no panic for a C one element short of its layout")
		}
	}()
	Go{}.SgemmPlanes(false, false, 4, im.cols(), 3, 1, make([]float32, 12), Layout{LD: 3},
		make([]float32, 3*im.cols()), Layout{LD: im.cols()}, 0, make([]float32, im.size()-1), im.layout())
}

// BenchmarkSgemmPlanes times the 1x1 convolution products of 32 images at
// ShuffleNetV2's four stages with the images read and written in place
// (forward and input gradient) or along the shared dimension (weight
// gradient).
func BenchmarkSgemmPlanes(b *testing.B) {
	for _, s := range []struct{ c, hw int }{{32, 3136}, {80, 784}, {160, 196}, {320, 49}} {
		im := imageMatrix{images: 32, channels: s.c, hw: s.hw, rows: s.c}
		x, y := make([]float32, im.size()), make([]float32, im.size())
		w := make([]float32, s.c*s.c)
		for i := range x {
			x[i] = float32(i%7) * 0.1
		}
		n := im.cols()
		run := func(name string, mul func()) {
			b.Run(fmt.Sprintf("%dx%d/%s", s.c, s.hw, name), func(b *testing.B) {
				for b.Loop() {
					mul()
				}
				b.ReportMetric(float64(2*s.c*s.c*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
		run("fwd", func() {
			Go{}.SgemmPlanes(false, false, s.c, n, s.c, 1, w, Layout{LD: s.c}, x, im.layout(), 0, y, im.layout())
		})
		run("dx", func() {
			Go{}.SgemmPlanes(true, false, s.c, n, s.c, 1, w, Layout{LD: s.c}, y, im.layout(), 0, x, im.layout())
		})
		run("dw", func() {
			Go{}.SgemmPlanes(false, true, s.c, s.c, n, 1, y, im.layout(), x, im.layout(), 0, w, Layout{LD: s.c})
		})
	}
}
