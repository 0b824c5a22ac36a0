package ops

import (
	"runtime"
	"sync"
)

// workersFor is how many goroutines share tasks independent units of work:
// one per GOMAXPROCS, never more than there are tasks.
func workersFor(tasks int) int {
	return max(1, min(runtime.GOMAXPROCS(0), tasks))
}

// parallel runs body(worker, lo, hi) over [0, tasks) cut into one
// contiguous range per worker; worker numbers the ranges from 0 so a body
// can pick its own scratch buffers. The last range runs on the calling
// goroutine.
func parallel(tasks int, body func(worker, lo, hi int)) {
	workers := workersFor(tasks)
	if workers == 1 {
		body(0, 0, tasks)
		return
	}
	var wg sync.WaitGroup
	for w := 0; w < workers-1; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body(w, tasks*w/workers, tasks*(w+1)/workers)
		}()
	}
	body(workers-1, tasks*(workers-1)/workers, tasks)
	wg.Wait()
}
