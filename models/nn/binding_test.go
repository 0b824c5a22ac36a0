package nn

import (
	"math"
	"strings"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/razorgo/razor/models/ops"
)

// linearNet has a weight used twice in its loss, a second parameter, and a
// parameter the forward pass never touches.
type linearNet struct {
	Base
	w, c, unused *Param
}

func newLinearNet() *linearNet {
	n := &linearNet{}
	n.w = n.AddParam("w", KindWeight, 2, 3)
	n.c = n.AddParam("c", KindBias, 2)
	n.unused = n.AddParam("unused", KindWeight, 4)
	copy(n.w.Data(), []float32{1, 2, 3, -1, 0.5, 2})
	copy(n.c.Data(), []float32{0.25, -3})
	return n
}

// loss = sum((w·x)^2) + sum(w) + sum(c^2), so
// dL/dw = 2·(w·x)·xᵀ + 1 and dL/dc = 2c.
func (n *linearNet) loss(b *Binding, x *tensor.Dense) (*gorgonia.Node, error) {
	xn := b.Input("x", x)
	wn := b.Param(n.w)
	out, err := gorgonia.Mul(wn, xn)
	if err != nil {
		return nil, err
	}
	sq := gorgonia.Must(gorgonia.Sum(gorgonia.Must(gorgonia.Square(out))))
	again := gorgonia.Must(gorgonia.Sum(b.Param(n.w)))
	cs := gorgonia.Must(gorgonia.Sum(gorgonia.Must(gorgonia.Square(b.Param(n.c)))))
	return gorgonia.Add(gorgonia.Must(gorgonia.Add(sq, again)), cs)
}

func step(t *testing.T, n *linearNet) *Binding {
	t.Helper()
	b := NewBinding()
	loss, err := n.loss(b, f32([]int{3, 1}, 1, -1, 2))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Backward(loss); err != nil {
		t.Fatal(err)
	}
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBindingGradients(t *testing.T) {
	n := newLinearNet()
	before := append([]float32(nil), n.w.Data()...)
	b := step(t, n)

	used := b.Used()
	if len(used) != 2 || used[0] != n.w || used[1] != n.c {
		t.Errorf("Used() = %v, want [w c]", used)
	}
	for i, v := range n.w.Data() {
		if v != before[i] {
			t.Fatalf("running the graph changed the parameter: %v -> %v", before, n.w.Data())
		}
	}
	// w·x = [1-2+6, -1-0.5+4] = [5, 2.5]
	wantW := []float32{2*5*1 + 1, 2*5*-1 + 1, 2*5*2 + 1, 2*2.5*1 + 1, 2*2.5*-1 + 1, 2*2.5*2 + 1}
	wantC := []float32{0.5, -6}
	check := func(what string, got, want []float32) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s = %v, want %v", what, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s = %v, want %v", what, got, want)
			}
		}
	}
	check("grad w", n.w.GradData(), wantW)
	check("grad c", n.c.GradData(), wantC)
	if n.unused.Grad() != nil {
		t.Errorf("an unused parameter got a gradient")
	}

	// A second pass without clearing accumulates, as PyTorch does.
	step(t, n)
	double := make([]float32, len(wantW))
	for i := range wantW {
		double[i] = 2 * wantW[i]
	}
	check("accumulated grad w", n.w.GradData(), double)

	n.w.ZeroGrad(false)
	check("grad w after ZeroGrad(false)", n.w.GradData(), make([]float32, 6))
	n.w.ZeroGrad(true)
	if n.w.Grad() != nil {
		t.Errorf("ZeroGrad(true) left a gradient")
	}
	n.unused.ZeroGrad(false)
	if n.unused.Grad() != nil {
		t.Errorf("ZeroGrad(false) created a gradient")
	}
}

func TestBindingForwardOnly(t *testing.T) {
	n := newLinearNet()
	b := NewBinding()
	out, err := gorgonia.Mul(b.Param(n.w), b.Input("x", f32([]int{3, 1}, 1, 1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
	got := out.Value().Data().([]float32)
	if got[0] != 6 || got[1] != 1.5 {
		t.Errorf("forward = %v, want [6 1.5]", got)
	}
	if n.w.Grad() != nil {
		t.Errorf("a forward-only run produced a gradient")
	}
}

func TestBindingMisuse(t *testing.T) {
	n := newLinearNet()
	b := step(t, n)
	if err := b.Run(); err == nil || !strings.Contains(err.Error(), "already run") {
		t.Errorf("second Run: %v", err)
	}

	b = NewBinding()
	loss, _ := n.loss(b, f32([]int{3, 1}, 1, 1, 1))
	if err := b.Backward(loss); err != nil {
		t.Fatal(err)
	}
	if err := b.Backward(loss); err == nil || !strings.Contains(err.Error(), "already called") {
		t.Errorf("second Backward: %v", err)
	}

	b = NewBinding()
	x := b.Input("x", f32([]int{2}, 1, 2))
	if err := b.Backward(gorgonia.Must(gorgonia.Sum(x))); err == nil || !strings.Contains(err.Error(), "no parameters") {
		t.Errorf("Backward without parameters: %v", err)
	}

	// A used parameter that does not reach the loss cannot be differentiated.
	b = NewBinding()
	b.Param(n.unused)
	loss = gorgonia.Must(gorgonia.Sum(gorgonia.Must(gorgonia.Square(b.Param(n.c)))))
	if err := b.Backward(loss); err == nil || !strings.Contains(err.Error(), "backward") {
		t.Errorf("Backward with a parameter off the loss path: %v", err)
	}
}

func TestBindingKeepsNamesDistinct(t *testing.T) {
	a, c := &box{}, &box{}
	pa := a.AddParam("w", KindWeight, 1)
	pc := c.AddParam("w", KindWeight, 1)
	b := NewBinding()
	na, nc := b.Param(pa), b.Param(pc)
	if na == nc || na.Name() == nc.Name() {
		t.Errorf("two parameters named %q share node or name: %q, %q", pa.Name(), na.Name(), nc.Name())
	}
	if b.Param(pa) != na {
		t.Errorf("a second Param call made a second node")
	}
}

func TestBindingScalarInput(t *testing.T) {
	n := newLinearNet()
	b := NewBinding()
	scale := b.Input("scale", tensor.New(tensor.WithShape(), tensor.WithBacking([]float32{3})))
	loss := gorgonia.Must(gorgonia.Mul(scale, gorgonia.Must(gorgonia.Sum(b.Param(n.c)))))
	if err := b.Backward(loss); err != nil {
		t.Fatal(err)
	}
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
	if g := n.c.GradData(); g[0] != 3 || g[1] != 3 {
		t.Errorf("grad through a scalar input = %v, want [3 3]", g)
	}
}

// TestBindingTwoStages evaluates a first stage, derives a constant of the
// second stage from its value (as a detector derives proposals), and
// checks the gradients equal those of the same loss built in one pass with
// that constant known in advance.
func TestBindingTwoStages(t *testing.T) {
	x := f32([]int{3, 1}, 1, -1, 2)
	secondStage := func(b *Binding, n *linearNet, out *gorgonia.Node, k float32) *gorgonia.Node {
		scaled := gorgonia.Must(gorgonia.Mul(out, gorgonia.NewScalar(b.Graph(), tensor.Float32, gorgonia.WithValue(k))))
		sq := gorgonia.Must(gorgonia.Sum(gorgonia.Must(gorgonia.Square(scaled))))
		return gorgonia.Must(gorgonia.Add(sq, gorgonia.Must(gorgonia.Sum(b.Param(n.c)))))
	}

	staged := newLinearNet()
	b := NewBinding()
	out := gorgonia.Must(gorgonia.Mul(b.Param(staged.w), b.Input("x", x)))
	if err := b.Eval(); err != nil {
		t.Fatal(err)
	}
	v, err := b.Value(out)
	if err != nil {
		t.Fatal(err)
	}
	// w·x = (1-2+6, -1-0.5+4) = (5, 2.5); the second stage's constant is
	// their maximum, read from the first stage.
	if v[0] != 5 || v[1] != 2.5 {
		t.Fatalf("first stage = %v, want [5 2.5]", v)
	}
	k := max(v[0], v[1])
	loss := secondStage(b, staged, out, k)
	if err := b.Backward(loss); err != nil {
		t.Fatal(err)
	}
	if err := b.Eval(); err == nil || !strings.Contains(err.Error(), "after Backward") {
		t.Fatalf("Eval after Backward: err = %v, want one saying so", err)
	}
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}

	whole := newLinearNet()
	b2 := NewBinding()
	out2 := gorgonia.Must(gorgonia.Mul(b2.Param(whole.w), b2.Input("x", x)))
	loss2 := secondStage(b2, whole, out2, 5)
	if err := b2.Backward(loss2); err != nil {
		t.Fatal(err)
	}
	if err := b2.Run(); err != nil {
		t.Fatal(err)
	}
	if loss.Value().Data() != loss2.Value().Data() {
		t.Fatalf("staged loss %v, one-pass loss %v", loss.Value(), loss2.Value())
	}
	for i, g := range staged.w.Grad().Float32s() {
		if g != whole.w.Grad().Float32s()[i] {
			t.Fatalf("w grad staged %v, one pass %v", staged.w.Grad(), whole.w.Grad())
		}
	}
	// d/dc sum(c) = 1 for each element.
	if c := staged.c.Grad().Float32s(); c[0] != 1 || c[1] != 1 {
		t.Fatalf("c grad = %v, want [1 1]", c)
	}
	if err := b.Eval(); err == nil {
		t.Fatal("Eval after Run succeeded")
	}
}

// sigmoidChain adds k sigmoids in a row after x and returns every one.
func sigmoidChain(t *testing.T, x *gorgonia.Node, k int) []*gorgonia.Node {
	t.Helper()
	chain := make([]*gorgonia.Node, k)
	for i := range chain {
		var err error
		if x, err = ops.Sigmoid(x); err != nil {
			t.Fatal(err)
		}
		chain[i] = x
	}
	return chain
}

// TestBindingReleasesAfterLastUse checks that Run hands a result's memory
// back as soon as the graph's last reader of it has run: a chain of ten
// ops computes in two or three buffers, the gradients are the same bit for
// bit as with every value kept, reading a released value is an error that
// names Keep, and Kept values, outputs and the loss stay readable.
func TestBindingReleasesAfterLastUse(t *testing.T) {
	data := make([]float32, 1000)
	for i := range data {
		data[i] = float32(i%17)/8 - 1
	}
	run := func(keep bool) (*Binding, []*gorgonia.Node, *gorgonia.Node, *Param) {
		p := newParam("p", KindWeight, tensor.Shape{10, 100})
		copy(p.Data(), data)
		b := NewBinding()
		chain := sigmoidChain(t, b.Param(p), 10)
		loss := gorgonia.Must(gorgonia.Sum(gorgonia.Must(gorgonia.Square(chain[len(chain)-1]))))
		if err := b.Backward(loss); err != nil {
			t.Fatal(err)
		}
		if keep {
			b.Keep(chain...)
		}
		if err := b.Run(); err != nil {
			t.Fatal(err)
		}
		return b, chain, loss, p
	}
	freed, chain, loss, p := run(false)
	defer freed.Release()
	kept, keptChain, keptLoss, keptP := run(true)
	defer kept.Release()

	if loss.Value().Data() != keptLoss.Value().Data() {
		t.Fatalf("loss %v with releases, %v without", loss.Value(), keptLoss.Value())
	}
	for i, g := range p.Grad().Float32s() {
		if g != keptP.Grad().Float32s()[i] || g != g {
			t.Fatalf("gradient %d: %v with releases, %v without", i, g, keptP.Grad().Float32s()[i])
		}
	}
	if _, err := freed.Value(chain[0]); err == nil || !strings.Contains(err.Error(), "Keep") {
		t.Fatalf("reading a released value: err = %v, want one naming Keep", err)
	}
	for _, n := range keptChain {
		if _, err := kept.Value(n); err != nil {
			t.Fatalf("kept value: %v", err)
		}
	}
	if len(freed.freed) == 0 {
		t.Fatal("nothing was released early")
	}

	// Forward only: the chain reuses buffers as it goes.
	b := NewBinding()
	defer b.Release()
	fwd := sigmoidChain(t, b.Input("x", f32([]int{10, 100}, data...)), 10)
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
	bufs := map[uintptr]bool{}
	for _, n := range fwd {
		bufs[n.Value().(*tensor.Dense).Uintptr()] = true
	}
	if len(bufs) > 3 {
		t.Fatalf("a chain of %d ops used %d buffers, want at most 3", len(fwd), len(bufs))
	}
	if _, err := b.Value(fwd[len(fwd)-1]); err != nil {
		t.Fatalf("the output, which nothing in the graph reads, was released: %v", err)
	}
}

// TestBindingKeepsViewedValues checks that a value some gorgonia op
// returned a view of stays whole while the view is read: gorgonia's
// reshape shares its input's memory, which the release would otherwise
// reuse.
func TestBindingKeepsViewedValues(t *testing.T) {
	b := NewBinding()
	defer b.Release()
	x := b.Input("x", f32([]int{2, 3}, 0, 1, 2, 3, 4, 5))
	h := sigmoidChain(t, x, 1)[0]
	flat := gorgonia.Must(gorgonia.Reshape(h, tensor.Shape{3, 2}))
	// Enough ops after the reshape to draw h's buffer again were it given
	// back.
	out := sigmoidChain(t, flat, 4)
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
	got, err := b.Value(out[len(out)-1])
	if err != nil {
		t.Fatal(err)
	}
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	for i, v := range got {
		want := float64(i)
		for range 5 {
			want = sig(want)
		}
		if !(math.Abs(float64(v)-want) <= 1e-6) { // NaN fails too
			t.Fatalf("values after the view = %v, want element %d = %v", got, i, want)
		}
	}
}
