package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// collidingNames finds two input names whose nodes (float32 vectors of
// two) share gorgonia's 32-bit hash, by the birthday bound after about
// 2^16 random names (counting names would take far longer: FNV-1a keeps
// strings that differ in their last bytes apart).
func collidingNames(t *testing.T) (string, string) {
	t.Helper()
	g := gorgonia.NewGraph()
	seen := map[uint32]string{}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1 << 20 {
		name := fmt.Sprintf("in%x", rng.Uint64())
		h := gorgonia.NewTensor(g, tensor.Float32, 1, gorgonia.WithShape(2), gorgonia.WithName(name)).Hashcode()
		if other, ok := seen[h]; ok {
			return other, name
		}
		seen[h] = name
	}
	t.Fatal("no collision among 2^20 names")
	return "", ""
}

// TestHashCollisionRunsBothNodes builds a graph whose two inputs share a
// hash. gorgonia's TapeMachine numbers values by that hash and would run
// one input in place of the other (x-y = 0); Run executes every node as
// it is and must get the true difference.
func TestHashCollisionRunsBothNodes(t *testing.T) {
	a, c := collidingNames(t)
	b := NewBinding()
	x := b.Input(a, f32([]int{2}, 1, 2))
	y := b.Input(c, f32([]int{2}, 10, 20))
	if x.Hashcode() != y.Hashcode() {
		t.Fatalf("inputs %s and %s should collide", a, c)
	}
	diff, err := gorgonia.Sub(x, y)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
	if got := diff.Value().Data().([]float32); got[0] != -9 || got[1] != -18 {
		t.Errorf("x-y = %v, want [-9 -18]", got)
	}
}
