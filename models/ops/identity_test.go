package ops

import (
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestOpsOfEqualDescriptionHashApart guards against gorgonia's node
// merging: it treats two nodes whose tree hashes collide as one node when
// their ops hash alike, without looking at their children. Ops here hash by
// identity, so two ReLUs of one shape on different inputs never compare
// equal, and a rare 32-bit collision cannot fuse them.
func TestOpsOfEqualDescriptionHashApart(t *testing.T) {
	g := gorgonia.NewGraph()
	a := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(2, 3, 4, 4), gorgonia.WithName("a"), gorgonia.WithInit(gorgonia.Zeroes()))
	b := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(2, 3, 4, 4), gorgonia.WithName("b"), gorgonia.WithInit(gorgonia.Zeroes()))
	ra, err := ReLU(a)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := ReLU(b)
	if err != nil {
		t.Fatal(err)
	}
	if ra.Op().Hashcode() == rb.Op().Hashcode() {
		t.Fatal("two ReLU ops hash alike; gorgonia would merge their nodes on a tree-hash collision")
	}
	ca, err := Conv2d(a, b, nil, Conv2dParams{})
	if err != nil {
		t.Fatal(err)
	}
	cb, err := Conv2d(b, a, nil, Conv2dParams{})
	if err != nil {
		t.Fatal(err)
	}
	if ca.Op().Hashcode() == cb.Op().Hashcode() {
		t.Fatal("two conv ops hash alike")
	}
}
