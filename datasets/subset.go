package datasets

import (
	"fmt"
	"math/rand/v2"
	"sort"
)

// streamHeldOut is the PCG stream that draws held-out samples.
const streamHeldOut = 0x4e1d0

// HeldOutIndices draws num of the n indices [0, n) with seed, sorted: the
// samples a search scores candidates on and, with data.hold_out, the ones
// training leaves out. The same (n, num, seed) always gives the same
// indices.
func HeldOutIndices(n, num int, seed uint64) ([]int, error) {
	if num < 1 || num >= n {
		return nil, fmt.Errorf("%d held-out samples of %d: the number must be at least 1 and leave some samples", num, n)
	}
	idx := rand.New(rand.NewPCG(seed, streamHeldOut)).Perm(n)[:num]
	sort.Ints(idx)
	return idx, nil
}

// Complement returns the indices of [0, n) not in sorted idx.
func Complement(n int, idx []int) []int {
	out := make([]int, 0, n-len(idx))
	j := 0
	for i := range n {
		if j < len(idx) && idx[j] == i {
			j++
			continue
		}
		out = append(out, i)
	}
	return out
}

// Subset is some samples of a dataset, in the order of Indices; it keeps
// the dataset's classes and pipeline.
type Subset struct {
	Dataset
	Indices []int
}

// Len is the number of chosen samples.
func (s *Subset) Len() int { return len(s.Indices) }

// Get returns the i-th chosen sample.
func (s *Subset) Get(i int) (Sample, error) {
	if i < 0 || i >= len(s.Indices) {
		return Sample{}, fmt.Errorf("sample %d is outside the subset's [0, %d)", i, len(s.Indices))
	}
	return s.Dataset.Get(s.Indices[i])
}
