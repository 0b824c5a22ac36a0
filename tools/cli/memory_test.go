package cli

import (
	"runtime/debug"
	"testing"
)

func TestLimitMemory(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	total := memTotal()
	if total == 0 {
		t.Skip("no /proc/meminfo here")
	}
	t.Setenv("GOMEMLIMIT", "")
	LimitMemory()
	if got, want := debug.SetMemoryLimit(-1), max(total/4, 2<<30); got != want {
		t.Errorf("limit %d, want %d (a quarter of %d, at least 2 GiB)", got, want, total)
	}
	debug.SetMemoryLimit(1 << 40)
	t.Setenv("GOMEMLIMIT", "1GiB")
	LimitMemory()
	if got := debug.SetMemoryLimit(-1); got != 1<<40 {
		t.Errorf("GOMEMLIMIT set, yet the limit changed to %d", got)
	}
}
