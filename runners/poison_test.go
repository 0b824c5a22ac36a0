package runners

import "github.com/razorgo/razor/models/ops"

// Values the executor gives back after their last reader become NaN in
// these tests (not in benchmarks), so that a read after the release fails
// loudly.
func init() { ops.PoisonReleasedInTests() }
