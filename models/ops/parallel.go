package ops

import "github.com/razorgo/razor/internal/par"

// workersFor is how many goroutines share tasks independent units of work:
// one per GOMAXPROCS, never more than there are tasks.
func workersFor(tasks int) int { return par.Workers(tasks) }

// parallel runs body(worker, lo, hi) over [0, tasks) cut into one
// contiguous range per worker (see par.For); worker numbers the ranges from
// 0 so a body can pick its own scratch buffers. The last range runs on the
// calling goroutine.
func parallel(tasks int, body func(worker, lo, hi int)) { par.For(tasks, body) }
