//go:build mpi && cgo

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/razorgo/razor/internal/mpitest"
	"github.com/razorgo/razor/runners/logplot"
)

// mpiPipeline runs the pipeline command (this test binary as TestMain's
// child) on args in n ranks under mpirun.
func mpiPipeline(t *testing.T, n int, args []string) (string, error) {
	t.Helper()
	cmd := mpiStart(t, n, args)
	err := cmd.Wait()
	return fmt.Sprint(cmd.Stdout), err
}

// mpiStart starts the pipeline command on args in n ranks, its output
// collected in cmd.Stdout (a *syncBuffer).
func mpiStart(t *testing.T, n int, args []string) *exec.Cmd {
	t.Helper()
	js, err := json.Marshal(append(slices.Clip(args), "--launcher", "mpi"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := mpitest.Command(n, "-x", childArgs, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childArgs+"="+string(js))
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// syncBuffer is a buffer a running command writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// rankPID finds the process of rank r of the pipeline job working in work.
func rankPID(t *testing.T, work string, r int) int {
	t.Helper()
	return mpitest.RankPID(t, r, func(_, environ string) bool {
		return strings.Contains("\x00"+environ, "\x00"+childArgs+"=") && strings.Contains(environ, work)
	})
}

// TestDistributedPipeline runs the shipped DetNAS pipeline at toy scale
// under mpirun -np 2, killed once (rank 1, in the supernet detector's
// training) and started again: the training, search and test steps run on both
// ranks (data-parallel training logs comm_time), the data and infer steps
// on rank 0 alone; rank 0 alone prints the steps and writes the records,
// the logs and the results, which hold every step; the same pipeline run
// again in one process skips every step.
func TestDistributedPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the DetNAS pipeline twice under mpirun")
	}
	digits := tinyMNIST(t, 64, 40)
	root := t.TempDir()
	work := filepath.Join(root, "work")
	args := detnasToyArgs(work, filepath.Join(root, "det"), digits)

	// Rank 1 killed in the supernet detector's second epoch ends the job;
	// the same command resumes that step and finishes.
	killed := mpiStart(t, 2, args)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if _, err := os.Stat(filepath.Join(work, "supernet_det", "epoch_1.json")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			killed.Process.Kill()
			t.Fatalf("no epoch_1 checkpoint of the supernet detector after 3 minutes:\n%s", killed.Stdout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(rankPID(t, work, 1), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := killed.Wait(); err == nil {
		t.Fatalf("the job ended cleanly after rank 1 was killed:\n%s", killed.Stdout)
	}
	if msg := fmt.Sprint(killed.Stdout); !strings.Contains(msg, "rank 1") || !strings.Contains(msg, "signal 9") {
		t.Errorf("mpirun's message does not name the killed rank and its signal:\n%s", msg)
	}
	if _, err := os.Stat(filepath.Join(work, "supernet_det", "done.json")); err == nil {
		t.Fatalf("the supernet detector finished although rank 1 was killed:\n%s", killed.Stdout)
	}
	out, err := mpiPipeline(t, 2, args)
	if err != nil {
		t.Fatalf("2 ranks after the kill: %v\n%s", err, out)
	}
	for _, want := range []string{"== supernet_det [3/8]: resuming the interrupted run", "resumed from", "== supernet_cls [2/8]: finished earlier"} {
		if !strings.Contains(out, want) {
			t.Errorf("the restart did not say %q:\n%s", want, out)
		}
	}
	for _, head := range []string{"== data [1/8]: make_mnist_det", "== supernet_cls [2/8]: train", "== search [4/8]: search", "== show [8/8]: infer", "## Tested models"} {
		if n := strings.Count(fmt.Sprint(killed.Stdout)+out, head); n != 1 {
			t.Errorf("%q printed %d times in the two runs, want once (rank 0)\n%s\n%s", head, n, killed.Stdout, out)
		}
	}
	ref := readOutcome(t, work)
	if len(ref.results.Steps) != 8 || len(ref.results.Tested) != 1 || len(ref.results.Searched) != 1 {
		t.Fatalf("the results: %+v", ref.results)
	}
	for _, s := range []string{"supernet_cls", "supernet_det", "subnet_cls", "subnet_det"} {
		runs := 1
		if s == "supernet_det" {
			runs = 2 // killed and resumed
		}
		logs, _ := filepath.Glob(filepath.Join(work, s, "*.log"))
		if len(logs) != runs {
			t.Errorf("step %s has %d text logs, want rank 0's of its %d runs alone", s, len(logs), runs)
		}
		l, err := logplot.ReadRun(filepath.Join(work, s))
		if err != nil {
			t.Fatal(err)
		}
		dp := false
		for _, e := range l.Entries {
			if _, ok := e.Values["comm_time"]; ok && e.Mode == "train" {
				dp = true
			}
		}
		if !dp {
			t.Errorf("step %s logged no comm_time: it did not train data-parallel", s)
		}
	}
	for _, f := range []string{"results.json", "results.md", "test/metrics.json", "search/best_subnet.yaml", "show/000001_result.png"} {
		if _, err := os.Stat(filepath.Join(work, f)); err != nil {
			t.Errorf("missing output: %v", err)
		}
	}

	// The records hold no launcher: one process finds every step done.
	var again bytes.Buffer
	if err := runChild(t, args, &again).Wait(); err != nil {
		t.Fatalf("one process after 2 ranks: %v\n%s", err, again.String())
	}
	if n := strings.Count(again.String(), "finished earlier"); n != 8 {
		t.Errorf("the second run skipped %d steps, want all 8\n%s", n, again.String())
	}
	if got := readOutcome(t, work); got.md != ref.md {
		t.Errorf("results.md changed on the second run: %s", firstDiff(got.md, ref.md))
	}
}
