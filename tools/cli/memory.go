package cli

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// LimitMemory gives the Go runtime a soft memory limit of a quarter of the
// machine's memory (at least 2 GiB) unless GOMEMLIMIT sets one. Every
// training step builds a fresh graph whose tensors become garbage at once,
// and the default collector lets the heap grow to twice what is live: a
// supernet step at 32x224x224 peaked at 14.9 GB without a limit and at
// 5.2 GB with a 4 GiB one, at the same speed (BenchmarkSupernetStep). The
// limit is soft: a run that needs more keeps running, collecting more often.
func LimitMemory() {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	total := memTotal()
	if total == 0 {
		return
	}
	debug.SetMemoryLimit(max(total/4, 2<<30))
}

// memTotal is MemTotal of /proc/meminfo in bytes, 0 where unknown.
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "MemTotal:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kib << 10
		}
	}
	return 0
}
