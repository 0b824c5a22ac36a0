package nn

import (
	"strings"
	"testing"
)

func TestSequentialAndModuleDict(t *testing.T) {
	a, b := NewReLU(), NewReLU()
	s := NewSequential(a)
	s.Append(b)
	if s.Len() != 2 || s.At(1) != b || strings.Join(s.ChildNames(), ",") != "0,1" {
		t.Errorf("sequential children %v", s.ChildNames())
	}

	d := NewModuleDict()
	for _, n := range []string{"shuffle_3x3", "shuffle_xception"} {
		if err := d.Add(n, NewReLU()); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Add("shuffle_3x3", NewReLU()); err == nil || !strings.Contains(err.Error(), "already has") {
		t.Errorf("duplicate Add: %v", err)
	}
	if err := d.Add("bad.name", NewReLU()); err == nil {
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
