package datasets

import (
	"slices"
	"strings"
	"testing"
)

// TestHeldOutIndices: a draw is sorted, distinct, in range and the same for
// the same seed; the complement holds every other index once.
func TestHeldOutIndices(t *testing.T) {
	a, err := HeldOutIndices(100, 10, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := HeldOutIndices(100, 10, 7)
	c, _ := HeldOutIndices(100, 10, 8)
	if !slices.Equal(a, b) || slices.Equal(a, c) {
		t.Errorf("seed 7 drew %v and %v, seed 8 %v: want one draw per seed, another for another seed", a, b, c)
	}
	if len(a) != 10 || !slices.IsSorted(a) || len(slices.Compact(slices.Clone(a))) != 10 || a[0] < 0 || a[9] >= 100 {
		t.Errorf("draw %v: want 10 sorted distinct indices in [0, 100)", a)
	}
	rest := Complement(100, a)
	all := slices.Sorted(slices.Values(append(slices.Clone(a), rest...)))
	for i, v := range all {
		if v != i {
			t.Fatalf("held-out %v and complement %v do not cover [0, 100) once each", a, rest)
		}
	}
	for _, num := range []int{0, 100, 101} {
		if _, err := HeldOutIndices(100, num, 0); err == nil || !strings.Contains(err.Error(), "leave some samples") {
			t.Errorf("%d of 100: %v, want an error", num, err)
		}
	}
}
