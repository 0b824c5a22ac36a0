package nn

import (
	"errors"
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

// TestHashCollisionIsRetried builds a graph whose two inputs collide:
// gorgonia's compiler would run one in place of the other, so Run refuses
// it, and Retry builds it again on a salted binding and gets the right sum.
func TestHashCollisionIsRetried(t *testing.T) {
	a, c := collidingNames(t)
	tries := 0
	var sum *gorgonia.Node
	_, err := Retry(func(b *Binding) error {
		tries++
		x := b.Input(a, f32([]int{2}, 1, 2))
		y := b.Input(c, f32([]int{2}, 10, 20))
		var err error
		if sum, err = gorgonia.Sub(x, y); err != nil {
			return err
		}
		err = b.Run()
		if tries == 1 && !errors.Is(err, ErrHashCollision) {
			t.Errorf("unsalted names %s and %s: Run = %v, want ErrHashCollision", a, c, err)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := sum.Value().Data().([]float32); tries != 2 || got[0] != -9 || got[1] != -18 {
		t.Errorf("after %d tries x-y = %v, want [-9 -18] on the second", tries, got)
	}
}

func TestRetryGivesUp(t *testing.T) {
	tries := 0
	_, err := Retry(func(*Binding) error { tries++; return fmt.Errorf("build: %w", ErrHashCollision) })
	if !errors.Is(err, ErrHashCollision) || tries != retries {
		t.Errorf("%d tries, error %v", tries, err)
	}
	boom := errors.New("boom")
	if _, err := Retry(func(*Binding) error { return boom }); err != boom {
		t.Errorf("another error: %v, want it as it is", err)
	}
}
