package ops

import (
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
	if PooledBytes() == 0 {
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
	pooled := PooledBytes()
	Release(g2)
	if n := PooledBytes(); n != pooled {
		t.Fatalf("releasing a graph again changed the pool from %d to %d bytes; its buffers were already back", pooled, n)
	}
	for range poolKeep {
		Release(gorgonia.NewGraph())
	}
	if n := PooledBytes(); n != 0 {
		t.Fatalf("the pool holds %d bytes after %d releases without use, want 0", n, poolKeep)
	}
}

// ownedBuffers lists the buffers an op holds until its graph is released.
func (o *owner) ownedBuffers() [][]float32 { return o.bufs }
