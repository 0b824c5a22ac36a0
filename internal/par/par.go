// Package par splits loops across GOMAXPROCS goroutines, handing the
// pieces to helper goroutines that stay awake between calls.
//
// A kernel's loop is often done in tens of microseconds, and a goroutine
// started for it with the go statement does not start in time: the new
// goroutine waits in the starting processor's run queue until an idle
// processor's thread wakes up to steal it, and on a virtual machine that
// takes as long as the caller's own share of a small loop (30 µs median,
// measured on the 2-core development VM: the helper started only once the
// caller's 30 µs share was done). Most "parallel" kernel calls of a small
// supernet step therefore ran one piece after the other -- the step was
// barely faster with two cores than with one. Helpers here poll for work
// for a while after each piece (yielding the processor to any other
// goroutine as they poll), so a piece handed over during a run of kernel
// calls starts within a microsecond; after spinFor without work they
// sleep, and the next call wakes them through the scheduler.
//
// It imports only the standard library, so the kernels (models/ops and its
// blas) and the optimizers can share it.
package par

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// spinFor is how long a helper polls for its next piece before sleeping:
// longer than the gaps between kernel calls inside one graph execution,
// short enough that an idle program stops spinning at once.
const spinFor = time.Millisecond

// Workers is how many goroutines For uses for tasks independent units:
// one per GOMAXPROCS, never more than there are tasks.
func Workers(tasks int) int {
	return max(1, min(runtime.GOMAXPROCS(0), tasks))
}

// For runs body(worker, lo, hi) over [0, tasks) cut into Workers(tasks)
// contiguous ranges, numbered from 0 so a body can pick its own scratch
// buffers; the last range runs on the calling goroutine. It returns when
// every range is done. Calls may nest and may come from several goroutines
// at once: a call that finds the helpers busy starts goroutines instead.
func For(tasks int, body func(worker, lo, hi int)) {
	workers := Workers(tasks)
	if workers == 1 {
		body(0, 0, tasks)
		return
	}
	hs := helpersFor(workers - 1)
	if hs == nil || !busy.CompareAndSwap(false, true) {
		spawn(tasks, workers, body)
		return
	}
	var done atomic.Int32
	for w := range workers - 1 {
		hs[w].post(&piece{body: body, worker: w, lo: tasks * w / workers, hi: tasks * (w + 1) / workers, done: &done})
	}
	body(workers-1, tasks*(workers-1)/workers, tasks)
	for done.Load() != int32(workers-1) {
		runtime.Gosched()
	}
	busy.Store(false)
}

// spawn is For with fresh goroutines.
func spawn(tasks, workers int, body func(worker, lo, hi int)) {
	var wg sync.WaitGroup
	for w := range workers - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body(w, tasks*w/workers, tasks*(w+1)/workers)
		}()
	}
	body(workers-1, tasks*(workers-1)/workers, tasks)
	wg.Wait()
}

// busy is held by the call whose pieces the helpers are running.
var busy atomic.Bool

var (
	startOnce sync.Once
	helpers   []*helper
)

// helpersFor returns n helpers, or nil when fewer were started (the
// helpers are started on first use, one per GOMAXPROCS then, less one).
func helpersFor(n int) []*helper {
	startOnce.Do(func() {
		for range runtime.GOMAXPROCS(0) - 1 {
			h := &helper{wake: make(chan struct{}, 1)}
			helpers = append(helpers, h)
			go h.run()
		}
	})
	if n > len(helpers) {
		return nil
	}
	return helpers[:n]
}

// piece is one range of a For call.
type piece struct {
	body           func(worker, lo, hi int)
	worker, lo, hi int
	done           *atomic.Int32
}

const (
	polling int32 = iota
	sleeping
)

type helper struct {
	next  atomic.Pointer[piece]
	state atomic.Int32
	wake  chan struct{}
}

// post hands p to the helper, waking it if it sleeps.
func (h *helper) post(p *piece) {
	h.next.Store(p)
	if h.state.CompareAndSwap(sleeping, polling) {
		h.wake <- struct{}{}
	}
}

func (h *helper) run() {
	last := time.Now()
	for {
		if p := h.next.Swap(nil); p != nil {
			p.body(p.worker, p.lo, p.hi)
			p.done.Add(1)
			last = time.Now()
			continue
		}
		if time.Since(last) < spinFor {
			runtime.Gosched()
			continue
		}
		// Announce sleep, then look once more: a piece posted before the
		// announcement is seen here, one posted after it comes with a wake.
		h.state.Store(sleeping)
		if h.next.Load() != nil {
			h.state.Store(polling)
			continue
		}
		<-h.wake
		last = time.Now()
	}
}
