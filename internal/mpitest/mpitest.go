// Package mpitest runs a test of the current test binary as the ranks of
// an mpirun job, for the tests of the `-tags mpi` build.
package mpitest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// RankPID finds the process of rank r of a running job (OpenMPI's
// OMPI_COMM_WORLD_RANK) whose command line and environment (NUL-separated,
// as /proc gives them) match says is the one, for a test that kills a rank.
func RankPID(t *testing.T, r int, match func(cmdline, environ string) bool) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cmdline, err1 := os.ReadFile(filepath.Join(p, "cmdline"))
		env, err2 := os.ReadFile(filepath.Join(p, "environ"))
		if err1 != nil || err2 != nil || !match(string(cmdline), string(env)) {
			continue
		}
		if !strings.Contains("\x00"+string(env)+"\x00", fmt.Sprintf("\x00OMPI_COMM_WORLD_RANK=%d\x00", r)) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(p))
		return pid
	}
	t.Fatalf("no process of rank %d matches", r)
	return 0
}
