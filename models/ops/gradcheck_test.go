package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Helpers shared by the kernel tests: random data and float64 central
// differences.

func randSlice(rng *rand.Rand, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = rng.Float64()*2 - 1
	}
	return s
}

// dot is Σ a·b, the scalar loss L = Σ y·r whose gradient with respect to y
// is r; every gradient check backpropagates a random r this way.
func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// numericGrad differentiates loss with respect to every element of v by
// central differences; loss must read v.
func numericGrad(v []float64, loss func() float64) []float64 {
	const eps = 1e-6
	g := make([]float64, len(v))
	for i := range v {
		orig := v[i]
		v[i] = orig + eps
		up := loss()
		v[i] = orig - eps
		down := loss()
		v[i] = orig
		g[i] = (up - down) / (2 * eps)
	}
	return g
}

// closeTo fails the test at the first element where got and want differ by
// more than tol relative to the larger magnitude (or absolutely below 1).
func closeTo(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		scale := math.Max(1, math.Max(math.Abs(got[i]), math.Abs(want[i])))
		if d := math.Abs(got[i] - want[i]); !(d <= tol*scale) {
			t.Fatalf("%s[%d] = %.9g, want %.9g (diff %.3g > %.3g)", what, i, got[i], want[i], d, tol*scale)
		}
	}
}

// gradTol is the agreement demanded between analytic and finite-difference
// gradients in float64: the differences carry an error near 1e-9.
const gradTol = 1e-6

func shapeName(s ...int) string { return fmt.Sprint(s) }
