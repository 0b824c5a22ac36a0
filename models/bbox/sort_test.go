package bbox

import (
	"math"
	"slices"
	"testing"
)

// TestSortDescendingMatchesTorch replays torch 1.13's CPU
// sort(descending=True) on tie-heavy scores, NaNs included: beyond 16
// elements its introsort permutes ties, and the permutation must match.
func TestSortDescendingMatchesTorch(t *testing.T) {
	var cases []struct {
		Scores []*float64 `json:"scores"`
		Order  []int      `json:"order"`
	}
	loadFixture(t, "sort.json", &cases)
	for _, c := range cases {
		s := make([]float32, len(c.Scores))
		for i, v := range c.Scores {
			if v == nil {
				s[i] = float32(math.NaN())
			} else {
				s[i] = float32(*v)
			}
		}
		if got := sortDescending(s); !slices.Equal(got, c.Order) {
			t.Errorf("n=%d: order differs from torch at %d", len(s), firstDiff(got, c.Order))
		}
	}
}

func firstDiff(a, b []int) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestSortDescendingHeapFallback starts introsort with no depth left, so
// the heapsort fallback sorts the whole range, and checks the result is a
// descending permutation of the input.
func TestSortDescendingHeapFallback(t *testing.T) {
	s := torchSort{v: make([]float32, 300), idx: make([]int, 300)}
	for i := range s.v {
		s.v[i] = float32(i % 7)
		s.idx[i] = i
	}
	s.introsort(0, len(s.v), 0)
	s.finalInsertionSort(0, len(s.v))
	seen := make([]bool, len(s.v))
	for i, idx := range s.idx {
		if seen[idx] || s.v[i] != float32(idx%7) {
			t.Fatalf("position %d holds index %d with value %v: not a permutation", i, idx, s.v[i])
		}
		seen[idx] = true
		if i > 0 && s.v[i] > s.v[i-1] {
			t.Fatalf("position %d: %v after %v is not descending", i, s.v[i], s.v[i-1])
		}
	}
}
