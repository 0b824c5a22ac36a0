package par

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// check runs For over tasks and verifies every index is visited exactly
// once, by contiguous ranges numbered from 0 in order.
func check(t *testing.T, tasks int) {
	t.Helper()
	seen := make([]atomic.Int32, tasks)
	var mu sync.Mutex
	ranges := map[int][2]int{}
	For(tasks, func(w, lo, hi int) {
		for i := lo; i < hi; i++ {
			seen[i].Add(1)
		}
		mu.Lock()
		defer mu.Unlock()
		if _, dup := ranges[w]; dup {
			t.Errorf("%d tasks: worker %d ran twice", tasks, w)
		}
		ranges[w] = [2]int{lo, hi}
	})
	for i := range seen {
		if n := seen[i].Load(); n != 1 {
			t.Fatalf("%d tasks: index %d visited %d times", tasks, i, n)
		}
	}
	if len(ranges) != Workers(tasks) {
		t.Fatalf("%d tasks: %d ranges, want %d", tasks, len(ranges), Workers(tasks))
	}
	next := 0
	for w := range len(ranges) {
		r := ranges[w]
		if r[0] != next {
			t.Fatalf("%d tasks: worker %d starts at %d, want %d", tasks, w, r[0], next)
		}
		next = r[1]
	}
}

func TestForVisitsEveryIndexOnce(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 3, 4} {
		runtime.GOMAXPROCS(procs)
		for _, tasks := range []int{0, 1, 2, 3, 7, 100, 1001} {
			check(t, tasks)
		}
	}
}

// TestForNestedAndConcurrent runs For inside For bodies and from several
// goroutines at once: the helpers serve one call, the others start
// goroutines, and every call completes with every index visited once.
func TestForNestedAndConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 50 {
				For(4, func(_, lo, hi int) {
					for range hi - lo {
						check(t, 10+g+r)
					}
				})
			}
		}()
	}
	wg.Wait()
}

// TestForAfterHelpersSleep calls For again after the helpers have stopped
// polling: the call must wake them and complete.
func TestForAfterHelpersSleep(t *testing.T) {
	for range 3 {
		check(t, 64)
		time.Sleep(3 * spinFor)
	}
}

// busy20 spins for 20 µs per task, standing in for a kernel's share of a loop.
func busy20(lo, hi int) {
	end := time.Now().Add(time.Duration(hi-lo) * 20 * time.Microsecond)
	for time.Now().Before(end) {
	}
}

// BenchmarkForTwoPieces times a call of two 20 µs pieces: 20 µs when the
// pieces run side by side, 40 µs when one waits for the other.
func BenchmarkForTwoPieces(b *testing.B) {
	for b.Loop() {
		For(2, func(_, lo, hi int) { busy20(lo, hi) })
	}
}

// BenchmarkSpawnTwoPieces is BenchmarkForTwoPieces with a goroutine
// started per call, as kernels did before the helpers.
func BenchmarkSpawnTwoPieces(b *testing.B) {
	for b.Loop() {
		spawn(2, Workers(2), func(_, lo, hi int) { busy20(lo, hi) })
	}
}
