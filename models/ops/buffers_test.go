package ops

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestReleaseRecyclesBuffers runs the same forward and backward pass on
// three fresh graphs: the second must draw every result buffer from those
// the first released and compute bit-identical values in them (in a test
// binary drawn buffers are NaN-filled, so a kernel that reads before it
// writes would show); buffers unused for poolKeep releases leave the pool.
func TestReleaseRecyclesBuffers(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	x := randF32(rng, 2*4*5*7)
	w := randF32(rng, 6*4)
	fc := randF32(rng, 3*6)
	pass := func() (g *gorgonia.ExprGraph, out []float32, bufs []*float32) {
		g = gorgonia.NewGraph()
		must := must(t)
		xn := newInput(g, "x", tensor.Shape{2, 4, 5, 7}, slices.Clone(x))
		wn := newInput(g, "w", tensor.Shape{6, 4, 1, 1}, slices.Clone(w))
		gamma := newInput(g, "gamma", tensor.Shape{6}, []float32{1, 1, 1, 1, 1, 1})
		beta := newInput(g, "beta", tensor.Shape{6}, nil)
		fcn := newInput(g, "fc", tensor.Shape{3, 6}, slices.Clone(fc))
		h := must(Conv2d(xn, wn, nil, Conv2dParams{}))
		h = must(ReLU(must(BatchNorm2d(h, gamma, beta, NewBatchNormState(6), BNTrain))))
		loss := must(CrossEntropy(must(Linear(must(GlobalAvgPool2d(h)), fcn, nil)), []int{0, 2}, 0))
		grads, err := gorgonia.Grad(loss, wn, gamma, fcn)
		if err != nil {
			t.Fatal(err)
		}
		m := gorgonia.NewTapeMachine(g)
		defer m.Close()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		out = valueF32(t, loss)
		for _, gr := range grads {
			out = append(out, valueF32(t, gr)...)
		}
		for _, n := range g.AllNodes() {
			if o, ok := n.Op().(interface{ ownedBuffers() [][]float32 }); ok {
				for _, b := range o.ownedBuffers() {
					bufs = append(bufs, unsafe.SliceData(b))
				}
			}
		}
		return g, out, bufs
	}
	g1, out1, bufs1 := pass()
	if len(bufs1) < 10 {
		t.Fatalf("the ops of the pass own %d buffers, want one per result (at least 10)", len(bufs1))
	}
	Release(g1)
	if pooledBytes() == 0 {
		t.Fatal("nothing was pooled after Release")
	}
	g2, out2, bufs2 := pass()
	if !slices.Equal(out1, out2) {
		t.Fatalf("results on recycled buffers differ:\n%v\n%v", out1, out2)
	}
	for _, b := range bufs2 {
		if !slices.Contains(bufs1, b) {
			t.Fatalf("the second pass allocated a buffer (%p) although the first released one of each size", b)
		}
	}
	Release(g2)
	pooled := pooledBytes()
	Release(g2)
	if n := pooledBytes(); n != pooled {
		t.Fatalf("releasing a graph again changed the pool from %d to %d bytes; its buffers were already back", pooled, n)
	}
	for range poolKeep {
		Release(gorgonia.NewGraph())
	}
	if n := pooledBytes(); n != 0 {
		t.Fatalf("the pool holds %d bytes after %d releases without use, want 0", n, poolKeep)
	}
}

// ownedBuffers lists the buffers an op holds until its graph is released.
func (o *owner) ownedBuffers() [][]float32 { return o.bufs }

// TestAdderMatchesGorgoniaAdd checks that IsGraphAdd picks out gorgonia's
// tensor addition and nothing else, that Adder.Add gives gorgonia's sums
// bit for bit (NaN and infinities included) and declines operands it does
// not handle, and that Release hands its buffers back to the pool.
func TestAdderMatchesGorgoniaAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 2))
	shape := tensor.Shape{3, 4, 5}
	a, b := randF32(rng, shape.TotalSize()), randF32(rng, shape.TotalSize())
	a[0], b[1], a[2], b[2] = float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Inf(1))
	g := gorgonia.NewGraph()
	an, bn := newInput(g, "a", shape, slices.Clone(a)), newInput(g, "b", shape, slices.Clone(b))
	must := must(t)
	sum := must(gorgonia.Add(an, bn))
	if !IsGraphAdd(sum.Op()) {
		t.Fatalf("IsGraphAdd(%v) = false for gorgonia.Add of two tensors", sum.Op())
	}
	for _, other := range []*gorgonia.Node{must(gorgonia.Sub(an, bn)), must(gorgonia.HadamardProd(an, bn)), must(ReLU(an))} {
		if IsGraphAdd(other.Op()) {
			t.Errorf("IsGraphAdd(%v) = true", other.Op())
		}
	}
	want, err := sum.Op().Do(an.Value(), bn.Value())
	if err != nil {
		t.Fatal(err)
	}
	var s Adder
	got, ok := s.Add(an.Value(), bn.Value())
	if !ok {
		t.Fatal("Adder.Add declined two float32 tensors of one shape")
	}
	w, gv := want.(*tensor.Dense).Float32s(), got.(*tensor.Dense).Float32s()
	if !got.Shape().Eq(shape) {
		t.Fatalf("sum has shape %v, want %v", got.Shape(), shape)
	}
	for i := range w {
		if math.Float32bits(w[i]) != math.Float32bits(gv[i]) && !(w[i] != w[i] && gv[i] != gv[i]) {
			t.Fatalf("sum[%d] = %v, gorgonia gives %v", i, gv[i], w[i])
		}
	}
	other := tensor.New(tensor.WithShape(4, 3, 5), tensor.WithBacking(slices.Clone(b)))
	f64 := tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float64))
	for _, bad := range []gorgonia.Value{other, f64} {
		if _, ok := s.Add(an.Value(), bad); ok {
			t.Errorf("Adder.Add accepted %v %v", bad.Shape(), bad.Dtype())
		}
	}
	first := unsafe.SliceData(gv)
	s.Release()
	again, _ := s.Add(an.Value(), bn.Value())
	if unsafe.SliceData(again.(*tensor.Dense).Float32s()) != first {
		t.Error("the second sum did not reuse the released buffer")
	}
	s.Release()
}

// TestPoolKeepsASizeInUse checks the pool's policy: a size still drawn
// keeps as many buffers as were ever given back at once (a busier step
// after quieter ones draws them all again), and a size undrawn for
// poolKeep releases leaves the pool.
func TestPoolKeepsASizeInUse(t *testing.T) {
	const n = 12345 // a size no other test uses
	count := func() int {
		pool.Lock()
		defer pool.Unlock()
		return len(pool.free[n])
	}
	busy := [][]float32{draw(n), draw(n), draw(n)}
	giveBack(busy)
	for range 2 * poolKeep {
		giveBack([][]float32{draw(n)})
	}
	if c := count(); c != 3 {
		t.Fatalf("after quieter releases the pool holds %d buffers of the size, want the 3 of the busiest", c)
	}
	for i, b := range [][]float32{draw(n), draw(n), draw(n)} {
		if !slices.ContainsFunc(busy, func(x []float32) bool { return unsafe.SliceData(x) == unsafe.SliceData(b) }) {
			t.Fatalf("draw %d allocated afresh", i)
		}
		putScratch(b)
	}
	for range poolKeep {
		giveBack(nil)
	}
	if c := count(); c != 0 {
		t.Fatalf("%d buffers of a size undrawn for %d releases stay pooled, want 0", c, poolKeep)
	}
}

// pooledBytes is the memory the pool holds for the next graphs.
func pooledBytes() int64 {
	pool.Lock()
	defer pool.Unlock()
	var n int64
	for size, list := range pool.free {
		n += int64(size) * 4 * int64(len(list))
	}
	return n
}

// init poisons drawn buffers in this package's tests, where the kernels
// are tested, so a kernel that reads its output before writing all of it
// fails them instead of quietly depending on zeroed memory. Not in
// benchmarks, whose times the extra pass over every buffer would inflate.
func init() { poison = !runsBenchmarks() }
