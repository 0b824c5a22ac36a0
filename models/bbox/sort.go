package bbox

import (
	"math/bits"
	"slices"
)

// stableDescending returns the indices of scores in descending order,
// equal scores in index order: torch's sort(stable=True, descending=True),
// NaN first.
func stableDescending(scores []float32) []int {
	order := make([]int, len(scores))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case before(scores[a], scores[b]):
			return -1
		case before(scores[b], scores[a]):
			return 1
		}
		return 0
	})
	return order
}

// sortDescending returns the indices of scores in descending order of
// score, ordered exactly as PyTorch 1.x's CPU scores.sort(descending=True)
// orders them, which mmcv's batched_nms uses to order the survivors of its
// per-class path. Where scores tie, the order decides which box comes
// first; torch's default CPU sort is not stable (it runs libstdc++'s std::sort, an introsort, on (value,
// index) pairs compared by value only), so ties of more than 16 elements
// come out in an order no stable sort reproduces. This file replays that
// introsort step for step: median-of-three pivot moved to the front,
// unguarded Hoare partition, a depth limit of 2*floor(log2 n) that falls
// back to heapsort, and a final insertion sort over runs of 16. NaN sorts
// before every number, as torch's descending comparator puts it.
func sortDescending(scores []float32) []int {
	s := torchSort{v: make([]float32, len(scores)), idx: make([]int, len(scores))}
	copy(s.v, scores)
	for i := range s.idx {
		s.idx[i] = i
	}
	n := len(scores)
	if n > 1 {
		s.introsort(0, n, 2*floorLog2(n))
		s.finalInsertionSort(0, n)
	}
	return s.idx
}

// sortThreshold is libstdc++'s _S_threshold: ranges this short are left to
// the final insertion sort.
const sortThreshold = 16

// torchSort is the (value, index) array torch sorts in place.
type torchSort struct {
	v   []float32
	idx []int
}

// before is torch's descending comparator: a NaN comes before any number,
// otherwise the larger value comes first.
func before(a, b float32) bool {
	an, bn := isNaN32(a), isNaN32(b)
	return (an && !bn) || a > b
}

func isNaN32(x float32) bool { return x != x }

// floorLog2 is libstdc++'s __lg for n > 0.
func floorLog2(n int) int { return bits.Len(uint(n)) - 1 }

func (s *torchSort) less(i, j int) bool { return before(s.v[i], s.v[j]) }

func (s *torchSort) swap(i, j int) {
	s.v[i], s.v[j] = s.v[j], s.v[i]
	s.idx[i], s.idx[j] = s.idx[j], s.idx[i]
}

// introsort partitions [first, last) until ranges are short, recursing on
// the right part and looping on the left, as libstdc++ does.
func (s *torchSort) introsort(first, last, depth int) {
	for last-first > sortThreshold {
		if depth == 0 {
			s.heapSort(first, last)
			return
		}
		depth--
		cut := s.partitionPivot(first, last)
		s.introsort(cut, last, depth)
		last = cut
	}
}

// partitionPivot moves the median of the second, middle and last elements
// to first and partitions the rest around it.
func (s *torchSort) partitionPivot(first, last int) int {
	mid := first + (last-first)/2
	s.medianToFirst(first, first+1, mid, last-1)
	return s.unguardedPartition(first+1, last, first)
}

func (s *torchSort) medianToFirst(result, a, b, c int) {
	switch {
	case s.less(a, b):
		switch {
		case s.less(b, c):
			s.swap(result, b)
		case s.less(a, c):
			s.swap(result, c)
		default:
			s.swap(result, a)
		}
	case s.less(a, c):
		s.swap(result, a)
	case s.less(b, c):
		s.swap(result, c)
	default:
		s.swap(result, b)
	}
}

func (s *torchSort) unguardedPartition(first, last, pivot int) int {
	for {
		for s.less(first, pivot) {
			first++
		}
		last--
		for s.less(pivot, last) {
			last--
		}
		if first >= last {
			return first
		}
		s.swap(first, last)
		first++
	}
}

// finalInsertionSort sorts the first 16 elements with a guarded insertion
// sort and the rest unguarded: partitioning left every element at most 16
// places from home, and the first run holds a minimum.
func (s *torchSort) finalInsertionSort(first, last int) {
	if last-first > sortThreshold {
		s.insertionSort(first, first+sortThreshold)
		for i := first + sortThreshold; i < last; i++ {
			s.linearInsert(i)
		}
		return
	}
	s.insertionSort(first, last)
}

func (s *torchSort) insertionSort(first, last int) {
	for i := first + 1; i < last; i++ {
		if s.less(i, first) {
			v, idx := s.v[i], s.idx[i]
			copy(s.v[first+1:i+1], s.v[first:i])
			copy(s.idx[first+1:i+1], s.idx[first:i])
			s.v[first], s.idx[first] = v, idx
			continue
		}
		s.linearInsert(i)
	}
}

// linearInsert moves element i left past every element it sorts before;
// it relies on a smaller-or-equal element somewhere to its left.
func (s *torchSort) linearInsert(i int) {
	v, idx := s.v[i], s.idx[i]
	j := i - 1
	for before(v, s.v[j]) {
		s.v[j+1], s.idx[j+1] = s.v[j], s.idx[j]
		j--
	}
	s.v[j+1], s.idx[j+1] = v, idx
}

// heapSort is libstdc++'s partial_sort over the whole range (make_heap,
// then pop_heap until one element is left), the introsort fallback.
func (s *torchSort) heapSort(first, last int) {
	n := last - first
	if n < 2 {
		return
	}
	for parent := (n - 2) / 2; ; parent-- {
		v, idx := s.v[first+parent], s.idx[first+parent]
		s.adjustHeap(first, parent, n, v, idx)
		if parent == 0 {
			break
		}
	}
	for end := last - 1; end-first > 0; end-- {
		v, idx := s.v[end], s.idx[end]
		s.v[end], s.idx[end] = s.v[first], s.idx[first]
		s.adjustHeap(first, 0, end-first, v, idx)
	}
}

// adjustHeap sifts the hole at hole down to a leaf, always taking the
// child that sorts later, then pushes (v, idx) back up from there.
func (s *torchSort) adjustHeap(first, hole, n int, v float32, idx int) {
	top := hole
	child := hole
	for child < (n-1)/2 {
		child = 2 * (child + 1)
		if s.less(first+child, first+child-1) {
			child--
		}
		s.v[first+hole], s.idx[first+hole] = s.v[first+child], s.idx[first+child]
		hole = child
	}
	if n%2 == 0 && child == (n-2)/2 {
		child = 2 * (child + 1)
		s.v[first+hole], s.idx[first+hole] = s.v[first+child-1], s.idx[first+child-1]
		hole = child - 1
	}
	parent := (hole - 1) / 2
	for hole > top && before(s.v[first+parent], v) {
		s.v[first+hole], s.idx[first+hole] = s.v[first+parent], s.idx[first+parent]
		hole = parent
		parent = (hole - 1) / 2
	}
	s.v[first+hole], s.idx[first+hole] = v, idx
}

// SortDescending returns the indices of scores in descending order exactly
// as PyTorch 1.x's CPU scores.sort(descending=True) orders them, ties
// included (see sortDescending); mmdet's RPN takes its nms_pre best
// anchors of a level this way.
func SortDescending(scores []float32) []int { return sortDescending(scores) }
