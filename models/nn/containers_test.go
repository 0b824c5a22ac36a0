package nn

import (
	"strings"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// identity is a layer that returns its input.
type identity struct{ Base }

func (*identity) Forward(_ *Binding, x *gorgonia.Node) (*gorgonia.Node, error) { return x, nil }

func TestSequentialAndModuleDict(t *testing.T) {
	a, b := newReLU(), newReLU()
	s := NewSequential(a)
	s.Append(b)
	if s.Len() != 2 || s.At(1) != b || strings.Join(s.ChildNames(), ",") != "0,1" {
		t.Errorf("sequential children %v", s.ChildNames())
	}

	// A replaced child is the one that runs.
	x := tensor.New(tensor.WithShape(1, 1, 1, 2), tensor.WithBacking([]float32{-1, 2}))
	lin := NewSequential(newReLU())
	id := &identity{}
	if err := lin.ReplaceChild("0", id); err != nil {
		t.Fatal(err)
	}
	bd := NewBinding()
	out, err := lin.Forward(bd, bd.Input("x", x))
	if err != nil {
		t.Fatal(err)
	}
	if err := bd.Run(); err != nil {
		t.Fatal(err)
	}
	if got := out.Value().Data().([]float32); got[0] != -1 || lin.At(0) != id {
		t.Errorf("after replacing the ReLU the output is %v", got)
	}
	if err := lin.ReplaceChild("0", &box{}); err != nil {
		t.Fatal(err)
	}
	nb := NewBinding()
	if _, err := lin.Forward(nb, nb.Input("y", x)); err == nil || !strings.Contains(err.Error(), `child "0"`) || lin.At(0) != nil {
		t.Errorf("a non-layer child: %v", err)
	}

	d := NewModuleDict()
	for _, n := range []string{"shuffle_3x3", "shuffle_xception"} {
		if err := d.Add(n, newReLU()); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Add("shuffle_3x3", newReLU()); err == nil || !strings.Contains(err.Error(), "already has") {
		t.Errorf("duplicate Add: %v", err)
	}
	if err := d.Add("bad.name", newReLU()); err == nil {
		t.Errorf("Add accepted a dotted name")
	}
	if err := d.Remove("shuffle_3x3"); err != nil || strings.Join(d.Names(), ",") != "shuffle_xception" || d.Get("shuffle_3x3") != nil {
		t.Errorf("after Remove: %v, names %v", err, d.Names())
	}

	root := &box{}
	root.AddChild("seq", s)
	root.AddChild("choices", d)
	var paths []string
	Walk(root, func(p string, _ Module) { paths = append(paths, p) })
	if got := strings.Join(paths, "|"); got != "|seq|seq.0|seq.1|choices|choices.shuffle_xception" {
		t.Errorf("Walk visited %s", got)
	}
}
