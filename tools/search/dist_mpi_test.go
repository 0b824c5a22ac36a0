//go:build mpi && cgo

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/razorgo/razor/internal/mpitest"
	"github.com/razorgo/razor/runners/search"
)

// TestDistributedSearchMatchesOneProcess runs the tiny MNIST search in one
// process and in 2 ranks (each scoring half of every group of candidates)
// with the same seed: the same candidates in the same order with the same
// scores, the same random baseline and the same best subnet.
func TestDistributedSearchMatchesOneProcess(t *testing.T) {
	ckpt := tinySupernet(t)
	one, two := t.TempDir(), t.TempDir()
	cmd := exec.Command(os.Args[0], args(ckpt, one)...)
	cmd.Env = append(os.Environ(), "RAZOR_SEARCH_CHILD=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("one process: %v\n%s", err, out)
	}
	mpi := mpitest.Command(2, "-x", "RAZOR_SEARCH_CHILD=1", os.Args[0])
	mpi.Args = append(mpi.Args, append(args(ckpt, two), "--launcher", "mpi")...)
	out, err := mpi.CombinedOutput()
	if err != nil {
		t.Fatalf("2 ranks: %v\n%s", err, out)
	}
	a, err := search.LoadState(filepath.Join(one, search.StateFile))
	if err != nil {
		t.Fatal(err)
	}
	b, err := search.LoadState(filepath.Join(two, search.StateFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Candidates) != len(b.Candidates) || len(a.Candidates) == 0 {
		t.Fatalf("%d candidates in one process, %d in 2 ranks", len(a.Candidates), len(b.Candidates))
	}
	for i, c := range a.Candidates {
		d := b.Candidates[i]
		if c.Key != d.Key || c.Score != d.Score || c.Origin != d.Origin {
			t.Errorf("candidate %d: %s %s %v in one process, %s %s %v in 2 ranks", i, c.Key, c.Origin, c.Score, d.Key, d.Origin, d.Score)
		}
	}
	for _, f := range []string{search.BestSubnetFile} {
		x, err1 := os.ReadFile(filepath.Join(one, f))
		y, err2 := os.ReadFile(filepath.Join(two, f))
		if err1 != nil || err2 != nil || string(x) != string(y) {
			t.Errorf("%s differs: %v %v\n%s\n%s", f, err1, err2, x, y)
		}
	}
	matches, _ := filepath.Glob(filepath.Join(two, "*.log"))
	if len(matches) != 1 {
		t.Fatalf("2 ranks wrote %d text logs, want rank 0's alone", len(matches))
	}
	if text, _ := os.ReadFile(matches[0]); !strings.Contains(string(text), "Distributed search") {
		t.Errorf("the log does not say the search is distributed:\n%s", text)
	}
}
