// Package mpitest runs a test of the current test binary as the ranks of
// an mpirun job, for the tests of the `-tags mpi` build.
package mpitest

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// workerVar marks a process mpirun started for Run.
const workerVar = "RAZOR_MPITEST_WORKER"

// IsWorker reports whether this test binary is a rank Run started.
func IsWorker() bool { return os.Getenv(workerVar) == "1" }

// Command is the mpirun command line that starts n ranks of args: as root
// mpirun needs --allow-run-as-root, and more ranks than cores need
// --oversubscribe.
func Command(n int, args ...string) *exec.Cmd {
	full := []string{"--allow-run-as-root", "--oversubscribe", "-np", strconv.Itoa(n), "-x", workerVar + "=1"}
	return exec.Command("mpirun", append(full, args...)...)
}

// Run starts n ranks of this test binary under mpirun, each running the
// tests that match pattern (which skip unless IsWorker), and fails t with
// their output when the job fails. The tests of the mpi build need mpirun
// (Debian's openmpi-bin): its absence is a failure, not a skip.
func Run(t *testing.T, n int, pattern string, env ...string) []byte {
	t.Helper()
	if IsWorker() {
		t.Skip("a rank does not start ranks")
	}
	if _, err := exec.LookPath("mpirun"); err != nil {
		t.Fatalf("the mpi build's tests need mpirun (apt-get install openmpi-bin libopenmpi-dev): %v", err)
	}
	cmd := Command(n, os.Args[0], "-test.run", pattern, "-test.v", "-test.count=1")
	for _, e := range env {
		cmd.Args = append(cmd.Args[:1], append([]string{"-x", e}, cmd.Args[1:]...)...)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("mpirun -np %d %s: %v in %v", n, pattern, err, time.Since(start).Round(time.Millisecond))
	if err != nil || !bytes.Contains(out.Bytes(), []byte("--- PASS")) || bytes.Contains(out.Bytes(), []byte("--- FAIL")) {
		t.Fatalf("ranks failed (%v):\n%s", err, out.Bytes())
	}
	return out.Bytes()
}
