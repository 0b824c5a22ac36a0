package nn

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/razorgo/razor/models/ops"
)

// Binding connects modules to one fresh gorgonia graph for one forward (and
// optionally backward) pass. It creates one input node per parameter the
// forward pass asks for, bound to the parameter's own tensor (no copy),
// remembers which parameters were used, and after the run adds their
// gradients to the parameters' gradient buffers. Parameters the pass did not
// use get no node and no gradient. A Binding serves one Run; build a new one
// for the next step, and Release it once its values have been read.
type Binding struct {
	g        *gorgonia.ExprGraph
	nodes    map[*Param]*gorgonia.Node
	used     []*Param
	names    map[string]bool
	grads    gorgonia.Nodes
	backward bool
	ran      bool
	counting bool
	costs    []Cost
	released bool
	// done counts the graph's nodes that have run (nodes are only ever
	// appended, so they are a prefix of AllNodes).
	done int
	// sums holds the results of the gradient additions execute computed.
	sums ops.Adder
	// keep lists the nodes whose values must outlive their last reader in
	// the graph (Keep); freed, those whose buffers Run gave back early.
	keep  map[*gorgonia.Node]bool
	freed map[*gorgonia.Node]bool
}

// NewBinding starts a binding on a new, empty graph.
func NewBinding() *Binding {
	return &Binding{
		g:     gorgonia.NewGraph(),
		nodes: map[*Param]*gorgonia.Node{},
		names: map[string]bool{},
		keep:  map[*gorgonia.Node]bool{},
		freed: map[*gorgonia.Node]bool{},
	}
}

// Graph is the graph the forward pass adds its nodes to.
func (b *Binding) Graph() *gorgonia.ExprGraph { return b.g }

// uniqueName keeps node names distinct, so gorgonia never merges two inputs
// that merely share a name.
func (b *Binding) uniqueName(name string) string {
	n := name
	for i := 1; b.names[n]; i++ {
		n = fmt.Sprintf("%s#%d", name, i)
	}
	b.names[n] = true
	return n
}

// Input adds a graph input holding t, such as a batch of images (aliased,
// not copied). A 0-d float32 tensor becomes a scalar node holding a copy of
// its value, the form gorgonia's scalar arithmetic expects.
func (b *Binding) Input(name string, t *tensor.Dense) *gorgonia.Node {
	if t.IsScalar() && t.Dtype() == tensor.Float32 {
		return gorgonia.NewScalar(b.g, tensor.Float32, gorgonia.WithName(b.uniqueName(name)), gorgonia.WithValue(gorgonia.NewF32(t.Float32s()[0])))
	}
	return gorgonia.NewTensor(b.g, t.Dtype(), t.Dims(), gorgonia.WithShape(t.Shape().Clone()...),
		gorgonia.WithName(b.uniqueName(name)), gorgonia.WithValue(t))
}

// Param returns p's node in this graph, creating it on first use. Every
// later call for the same parameter returns the same node, so a parameter
// used twice gets one gradient that sums both uses.
func (b *Binding) Param(p *Param) *gorgonia.Node {
	if n, ok := b.nodes[p]; ok {
		return n
	}
	n := gorgonia.NewTensor(b.g, tensor.Float32, p.value.Dims(), gorgonia.WithShape(p.value.Shape().Clone()...),
		gorgonia.WithName(b.uniqueName(p.name)), gorgonia.WithValue(p.value))
	b.nodes[p] = n
	b.used = append(b.used, p)
	return n
}

// Used lists the parameters the forward pass has asked for, in first-use
// order.
func (b *Binding) Used() []*Param { return append([]*Param(nil), b.used...) }

// Backward adds to the graph the symbolic gradient of the scalar loss with
// respect to every used parameter. Call it once, after the forward pass and
// before Run. Every used parameter must influence the loss.
func (b *Binding) Backward(loss *gorgonia.Node) error {
	if b.backward {
		return fmt.Errorf("backward: already called on this binding")
	}
	if len(b.used) == 0 {
		return fmt.Errorf("backward: the forward pass used no parameters")
	}
	wrt := make(gorgonia.Nodes, len(b.used))
	for i, p := range b.used {
		wrt[i] = b.nodes[p]
	}
	grads, err := gorgonia.Grad(loss, wrt...)
	if err != nil {
		return fmt.Errorf("backward: %w", err)
	}
	b.grads, b.backward = grads, true
	return nil
}

// Eval runs the nodes added since the graph last ran, so that values of
// the graph built so far can be read while the pass goes on: a two-stage
// detector reads its first stage's scores and boxes, computes proposals and
// training targets from them in plain Go (constants of the graph, with no
// gradient), and then adds its second stage to the same graph. Backward
// and Run later cover the whole graph; nodes that already ran do not run
// again. Eval may be called any number of times before Run.
func (b *Binding) Eval() error {
	if b.ran {
		return fmt.Errorf("eval: this binding has already run; build a new one for the next pass")
	}
	if b.backward {
		return fmt.Errorf("eval: called after Backward; evaluate the first stage before adding the loss's gradients")
	}
	if err := b.execute(false); err != nil {
		return fmt.Errorf("eval graph: %w", err)
	}
	return nil
}

// Keep marks nodes whose values the caller reads after Run although other
// nodes of the graph read them too (a sum's terms, say). Run gives back
// the memory of every other value as soon as its last reader in the graph
// has run; values nothing in the graph reads (the loss, the gradients, a
// test forward's outputs) and values computed by Eval before Run are kept
// anyway.
func (b *Binding) Keep(nodes ...*gorgonia.Node) {
	for _, n := range nodes {
		b.keep[n] = true
	}
}

// Value is the float32 data of a node that has run (after Eval or Run),
// aliased, not copied: it stays valid until Release. Scalars give one
// value. A value Run gave back after its last reader is an error: Keep
// the node before Run to read it.
func (b *Binding) Value(n *gorgonia.Node) ([]float32, error) {
	if b.released {
		return nil, fmt.Errorf("value of %s: the binding was released", n.Name())
	}
	if b.freed[n] {
		return nil, fmt.Errorf("value of %s: its memory was reused once the graph's last reader of it had run; call Keep on the node before Run to read it afterwards", n.Name())
	}
	v, err := float32Values(n.Value())
	if err != nil {
		return nil, fmt.Errorf("value of %s: %w", n.Name(), err)
	}
	return v, nil
}

// Run executes the graph once (the nodes an Eval has not run yet). After a
// Backward it adds each used parameter's gradient to the parameter
// (creating the gradient if it was nil), so the optimizer can step.
func (b *Binding) Run() error {
	if b.ran {
		return fmt.Errorf("run: this binding has already run; build a new one for the next pass")
	}
	b.ran = true
	if err := b.execute(true); err != nil {
		return fmt.Errorf("run graph: %w", err)
	}
	if !b.backward {
		return nil
	}
	for i, p := range b.used {
		g, err := float32Values(b.grads[i].Value())
		if err != nil {
			return fmt.Errorf("gradient of %s: %w", p.name, err)
		}
		if err := p.AccumulateGrad(g); err != nil {
			return err
		}
	}
	return nil
}

// Release hands the buffers of the graph's results back to the pool the
// next graphs draw from (see ops.Release). Call it when nothing will read a
// value of this binding again: results copied out, the gradients added to
// the parameters by Run. A released binding cannot run; releasing is
// optional, and a second call does nothing.
func (b *Binding) Release() {
	if b.released {
		return
	}
	b.released, b.ran = true, true
	ops.Release(b.g, &b.sums)
}

// execute runs every op of the graph that has not run yet, in the order
// the nodes were created (a node is created after its inputs, so that order
// is topological), and binds each result to its node. gorgonia's TapeMachine would compile the
// graph first -- register allocation whose free-list pass scans every
// register for every read, a cost growing with the square of the graph
// that took a fifth of a small supernet step -- for no gain here: every
// graph runs once, and results are recycled by Release instead. Nor does
// it share the compiler's flaw: value numbering by the 32-bit node hash
// alone, which ran one node in place of another whenever two hashes
// collided (about once per few thousand supernet steps).
//
// gorgonia's own additions of gradient contributions run on sums instead,
// which draws their results from the ops buffer pool.
//
// With free (the final Run, when the whole graph is known) a result goes
// back to the pool as soon as the last node reading it has run, so later
// ops of the same step reuse its memory: forward values once the backward
// pass is past them, gradients once added into the next. PyTorch frees
// autograd's saved tensors the same way. Not given back: inputs and
// parameters, nodes nothing in the graph reads (the loss, gradients,
// outputs), Kept nodes, values computed before this call (an Eval's,
// which the caller may still read), and any value some other node's
// result shares memory with (a gorgonia op may return a view of its
// input; such inputs are kept whole).
func (b *Binding) execute(free bool) error {
	g, sums := b.g, &b.sums
	var in []gorgonia.Value
	var kids []*gorgonia.Node
	all := g.AllNodes()
	from := b.done
	b.done = len(all)
	var readers map[*gorgonia.Node]int
	var early map[*gorgonia.Node]bool
	if free {
		readers = make(map[*gorgonia.Node]int, len(all)-from)
		for _, n := range all[from:] {
			if n.Op() == nil {
				continue
			}
			for children := g.From(n.ID()); children.Next(); {
				readers[children.Node().(*gorgonia.Node)]++
			}
		}
		for _, n := range b.grads {
			b.keep[n] = true
		}
		if from > 0 {
			early = make(map[*gorgonia.Node]bool, from)
			for _, n := range all[:from] {
				early[n] = true
			}
		}
	}
	for _, n := range all[from:] {
		op := n.Op()
		if op == nil {
			if n.Value() == nil {
				return fmt.Errorf("input %s has no value", n.Name())
			}
			continue
		}
		in, kids = in[:0], kids[:0]
		for children := g.From(n.ID()); children.Next(); {
			c := children.Node().(*gorgonia.Node)
			v := c.Value()
			if v == nil {
				return fmt.Errorf("%v: input %s was not computed", op, c.Name())
			}
			in = append(in, v)
			kids = append(kids, c)
		}
		var v gorgonia.Value
		var err error
		added := false
		if len(in) == 2 && ops.IsGraphAdd(op) {
			v, added = sums.Add(in[0], in[1])
		}
		if !added {
			if v, err = op.Do(in...); err != nil {
				return fmt.Errorf("%v: %w", op, err)
			}
		}
		if err := gorgonia.UnsafeLet(n, v); err != nil {
			return fmt.Errorf("%v: %w", op, err)
		}
		if !free {
			continue
		}
		if !added && !ops.Owns(op) {
			// A result in memory the op did not draw may be (part of) an
			// input's buffer: keep every input it overlaps.
			for j, c := range kids {
				if overlaps(v, in[j]) {
					b.keep[c] = true
				}
			}
		}
		for _, c := range kids {
			readers[c]--
			if readers[c] > 0 || c.Op() == nil || b.keep[c] || b.freed[c] || early[c] {
				continue
			}
			if ops.ReleaseResult(c.Op(), sums, c.Value()) {
				b.freed[c] = true
			}
		}
	}
	return nil
}

// overlaps reports whether two tensor values share any memory.
func overlaps(a, b gorgonia.Value) bool {
	x, ok1 := a.(*tensor.Dense)
	y, ok2 := b.(*tensor.Dense)
	if !ok1 || !ok2 || x.MemSize() == 0 || y.MemSize() == 0 {
		return false
	}
	xs, ys := x.Uintptr(), y.Uintptr()
	return xs < ys+y.MemSize() && ys < xs+x.MemSize()
}

// float32Values reads a gorgonia value as float32s.
func float32Values(v gorgonia.Value) ([]float32, error) {
	switch x := v.(type) {
	case *tensor.Dense:
		if x.Dtype() != tensor.Float32 {
			return nil, fmt.Errorf("dtype %v, want float32", x.Dtype())
		}
		return x.Float32s(), nil
	case *gorgonia.F32:
		return []float32{float32(*x)}, nil
	case nil:
		return nil, fmt.Errorf("no value was computed")
	}
	return nil, fmt.Errorf("value of type %T, want a float32 tensor", v)
}
