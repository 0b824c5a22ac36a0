package ops

import (
	"math"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/razorgo/razor/models/ops/blas"
)

// Output buffers are recycled between graphs. A training step builds a
// fresh graph, and its ops' results (activations, their gradients) are
// garbage once the step has added the parameter gradients up: hundreds of
// megabytes a step at MNIST scale, gigabytes at ImageNet scale. Left to the
// garbage collector, that memory goes back to the operating system and the
// next step faults every page in again and has it zeroed -- a third of the
// MNIST supernet's step time was page faults and clearing. Instead each op
// remembers the buffers it allocated, and Release hands them back to a pool
// the next graph's ops draw from. Shapes repeat from step to step, so
// nearly every draw is a hit.
//
// Ownership is what makes this safe: an op gives back only buffers it drew
// itself, each once, so a buffer that gorgonia passed on to another node
// (register reuse) or a value of gorgonia's own ops is never recycled
// twice or by mistake. A graph never released just leaves its buffers to
// the garbage collector, as before.

// poolKeep is how many releases a buffer size may go undrawn before the
// pool drops its buffers: the pool follows the shapes in use rather than
// every shape ever seen (a training step and an evaluation batch of another
// size alternate without refilling each other's buffers). A size still
// drawn keeps all its buffers, as many as a step ever held at once: a
// supernet's steps take random paths that need more or fewer buffers of a
// size, and dropping the surplus after quieter steps made the busier ones
// allocate afresh -- a fifth of a 224x224 step's memory, garbage a few
// steps later, which grew the heap towards twice its live size.
//
// Eight releases (eight steps of a training run): a size that only one of
// a search block's four choices needs goes unused for three steps in a
// row about once in 2.4 steps, and for eight only once in ten.
const poolKeep = 8

var pool = struct {
	sync.Mutex
	free map[int][][]float32
	// drawn is the release count when each size was last drawn.
	drawn map[int]uint64
	gen   uint64
}{free: map[int][][]float32{}, drawn: map[int]uint64{}}

// poison makes every drawn buffer NaN. The package's tests turn it on;
// a real run leaves buffers as the pool hands them out, since filling them
// costs time and kernels overwrite every element anyway.
var poison bool

// draw returns a buffer of n elements whose contents are undefined: kernels
// must overwrite every element.
func draw(n int) []float32 {
	pool.Lock()
	var b []float32
	if list := pool.free[n]; len(list) > 0 {
		b = list[len(list)-1]
		list[len(list)-1] = nil
		pool.free[n] = list[:len(list)-1]
	}
	pool.drawn[n] = pool.gen
	pool.Unlock()
	if b == nil {
		b = make([]float32, n)
	}
	if poison {
		nan := float32(math.NaN())
		for i := range b {
			b[i] = nan
		}
	}
	return b
}

// scratch returns a kernel's temporary buffer of n elements, contents
// undefined: for float32 drawn from the pool, so the im2col buffers of a
// detector's convolutions (megabytes per call, a hundred calls an
// inference) are not faulted in and zeroed afresh every time. Hand it
// back with putScratch once the kernel is done with it.
func scratch[T blas.Float](n int) []T {
	if _, ok := any(T(0)).(float32); ok {
		return any(draw(n)).([]T)
	}
	return make([]T, n)
}

// putScratch returns scratch buffers to the pool, as fresh as buffers
// released with the graph that is running: unlike giveBack it does not
// age the pool, since a kernel call is not a release.
func putScratch[T blas.Float](bufs ...[]T) {
	pool.Lock()
	defer pool.Unlock()
	for _, b := range bufs {
		if b32, ok := any(b).([]float32); ok && len(b32) > 0 {
			pool.free[len(b32)] = append(pool.free[len(b32)], b32)
		}
	}
}

// owner is embedded in every op that allocates results: it draws them from
// the pool and remembers them until Release takes them back.
type owner struct{ bufs [][]float32 }

// output returns a buffer for an op's result of the given shape: the
// previous result of the node's register when gorgonia hands one back and
// it fits, otherwise a buffer drawn from the pool. Kernels must overwrite
// every element.
func (o *owner) output(prealloc gorgonia.Value, shape tensor.Shape) (*tensor.Dense, []float32) {
	if d, ok := prealloc.(*tensor.Dense); ok && d.Dtype() == tensor.Float32 && d.Shape().Eq(shape) && !d.IsView() {
		if data := d.Float32s(); len(data) == shape.TotalSize() {
			return d, data
		}
	}
	data := draw(shape.TotalSize())
	o.bufs = append(o.bufs, data)
	return tensor.New(tensor.WithShape(shape.Clone()...), tensor.WithBacking(data)), data
}

// giveUp removes from the owner the buffer whose first element is at p and
// returns it, or nil when the owner holds no such buffer.
func (o *owner) giveUp(p *float32) []float32 {
	for i, b := range o.bufs {
		if unsafe.SliceData(b) == p {
			last := len(o.bufs) - 1
			o.bufs[i] = o.bufs[last]
			o.bufs[last] = nil
			o.bufs = o.bufs[:last]
			return b
		}
	}
	return nil
}

func (o *owner) takeBuffers() [][]float32 {
	b := o.bufs
	o.bufs = nil
	return b
}

// Release returns to the pool every buffer the ops of g allocated, and
// those of the sums that ran with it. Call it once nothing will read a
// value of g again -- every result copied out, gradients added to the
// parameters -- and never run g afterwards. Releasing is optional: an
// unreleased graph's memory is collected as garbage. Each call counts as
// one release towards poolKeep.
func Release(g *gorgonia.ExprGraph, sums ...*Adder) {
	var bufs [][]float32
	for _, s := range sums {
		bufs = append(bufs, s.takeBuffers()...)
	}
	seen := map[*float32]bool{}
	for _, n := range g.AllNodes() {
		o, ok := n.Op().(interface{ takeBuffers() [][]float32 })
		if !ok {
			continue
		}
		for _, b := range o.takeBuffers() {
			if len(b) == 0 || seen[unsafe.SliceData(b)] {
				continue
			}
			seen[unsafe.SliceData(b)] = true
			bufs = append(bufs, b)
		}
	}
	giveBack(bufs)
}

// giveBack puts buffers in the pool and drops the sizes undrawn for
// poolKeep releases.
func giveBack(bufs [][]float32) {
	pool.Lock()
	defer pool.Unlock()
	pool.gen++
	for _, b := range bufs {
		pool.free[len(b)] = append(pool.free[len(b)], b)
		if _, ok := pool.drawn[len(b)]; !ok {
			pool.drawn[len(b)] = pool.gen
		}
	}
	for n, last := range pool.drawn {
		if last+poolKeep <= pool.gen {
			delete(pool.free, n)
			delete(pool.drawn, n)
		}
	}
}

// Owns reports whether op is one of this package's ops, whose results are
// buffers it drew from the pool and holds until ReleaseResult or Release
// takes them back. Any other op's result may share memory with its inputs.
func Owns(op gorgonia.Op) bool {
	_, ok := op.(interface{ giveUp(*float32) []float32 })
	return ok
}

// ReleaseResult hands the buffer of v, a result that op (or one of sums'
// additions, when sums is not nil) computed, back to the pool before its
// graph is released: the executor calls it once the last node that reads v
// has run, so that the same step's later ops reuse the memory. It reports
// whether a buffer went back; it does nothing for a value the op does not
// own (a scalar, a gorgonia op's result, a buffer already given back).
// Nothing may read v afterwards.
func ReleaseResult(op gorgonia.Op, sums *Adder, v gorgonia.Value) bool {
	d, ok := v.(*tensor.Dense)
	if !ok || d.Dtype() != tensor.Float32 {
		return false
	}
	data := d.Float32s()
	if len(data) == 0 {
		return false
	}
	p := unsafe.SliceData(data)
	var b []float32
	if o, ok := op.(interface{ giveUp(*float32) []float32 }); ok {
		b = o.giveUp(p)
	}
	if b == nil && sums != nil {
		b = sums.giveUp(p)
	}
	if b == nil {
		return false
	}
	if poison || poisonReleased {
		nan := float32(math.NaN())
		for i := range b {
			b[i] = nan
		}
	}
	putScratch(b)
	return true
}

// poisonReleased makes every result ReleaseResult gives back all NaN, so
// that a value read after its early release shows up as NaN instead of as
// whatever the next op wrote there. It is on in every test binary of the
// project (any package whose tests run graphs), and off when the binary
// is asked to run benchmarks (-test.bench), whose times the extra pass
// over every released buffer would distort.
var poisonReleased = testing.Testing() && !runsBenchmarks()

// runsBenchmarks reports whether the process is a test binary asked to run
// benchmarks.
func runsBenchmarks() bool {
	for _, a := range os.Args[1:] {
		if a == "-test.bench" || (strings.HasPrefix(a, "-test.bench=") && a != "-test.bench=") {
			return true
		}
	}
	return false
}

// Adder computes, into pooled buffers, the elementwise sums that
// gorgonia.Grad inserts where a value feeds several ops (its gradient
// contributions are added by gorgonia.Add nodes, whose own op allocates a
// fresh result every time). An executor asks IsGraphAdd for each op and
// lets Add compute the ones it recognizes; Release returns the results'
// buffers with the rest of the graph's.
type Adder struct{ owner }

// graphAddType and graphAddName identify gorgonia's tensor addition op.
var graphAddType, graphAddName = func() (reflect.Type, string) {
	g := gorgonia.NewGraph()
	a := gorgonia.NewVector(g, tensor.Float32, gorgonia.WithShape(2), gorgonia.WithName("a"))
	b := gorgonia.NewVector(g, tensor.Float32, gorgonia.WithShape(2), gorgonia.WithName("b"))
	sum, err := gorgonia.Add(a, b)
	if err != nil {
		panic(err)
	}
	return reflect.TypeOf(sum.Op()), sum.Op().String()
}()

// IsGraphAdd reports whether op is gorgonia's elementwise addition of two
// tensors (the op gorgonia.Add and gorgonia.Grad build).
func IsGraphAdd(op gorgonia.Op) bool {
	return reflect.TypeOf(op) == graphAddType && op.String() == graphAddName
}

// Add returns a + b for two float32 tensors of one shape, in a pooled
// buffer, with the arithmetic of gorgonia's op (one float32 addition per
// element). It reports false, computing nothing, for any other operands:
// the caller then runs gorgonia's op.
func (s *Adder) Add(a, b gorgonia.Value) (gorgonia.Value, bool) {
	x, ok1 := a.(*tensor.Dense)
	y, ok2 := b.(*tensor.Dense)
	if !ok1 || !ok2 || x.Dtype() != tensor.Float32 || y.Dtype() != tensor.Float32 ||
		!x.Shape().Eq(y.Shape()) || x.IsView() || y.IsView() {
		return nil, false
	}
	xs, ys := x.Float32s(), y.Float32s()
	if len(xs) != len(ys) || len(xs) != x.Shape().TotalSize() {
		return nil, false
	}
	out, z := s.output(nil, x.Shape())
	parallel(len(xs)/elemBlock+1, func(_, lo, hi int) {
		lo, hi = lo*elemBlock, min(hi*elemBlock, len(xs))
		a, b, c := xs[lo:hi], ys[lo:hi], z[lo:hi]
		b, c = b[:len(a)], c[:len(a)]
		for i, v := range a {
			c[i] = v + b[i]
		}
	})
	return out, true
}

// Release hands the buffers of every sum Add returned back to the pool.
// Call it when nothing will read those sums again.
func (s *Adder) Release() { giveBack(s.takeBuffers()) }
