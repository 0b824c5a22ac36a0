//go:build mpi && cgo

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/razorgo/razor/internal/mpitest"
	"github.com/razorgo/razor/tools/cli"
)

// init lets this test binary act as the test command in the ranks mpirun
// starts.
func init() {
	if os.Getenv("RAZOR_TEST_CHILD") != "1" {
		return
	}
	if err := cli.Test(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "test:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestDistributedTestMatchesOneProcess: 5 ranks each predict a shard of
// the 12 images (3 of them repeated by the sampler to give every rank 3)
// and report the one process's metrics; rank 0 alone writes them.
func TestDistributedTestMatchesOneProcess(t *testing.T) {
	cfgPath, ckpt := fixture(t)
	dir := t.TempDir()
	one, five := filepath.Join(dir, "one.json"), filepath.Join(dir, "five.json")
	var stdout, stderr bytes.Buffer
	if err := cli.Test(context.Background(), []string{cfgPath, ckpt, "--metrics-out", one}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	cmd := mpitest.Command(5, "-x", "RAZOR_TEST_CHILD=1", os.Args[0], cfgPath, ckpt, "--metrics-out", five, "--launcher", "mpi",
		"--cfg-options", "data.samples_per_gpu=2")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("5 ranks: %v\n%s", err, out)
	}
	a, err1 := os.ReadFile(one)
	b, err2 := os.ReadFile(five)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("metrics differ:\none process: %s\n5 ranks: %s", a, b)
	}
	if n := bytes.Count(out, []byte("accuracy_top-1:")); n != 1 {
		t.Errorf("the metrics were printed %d times, want once (rank 0):\n%s", n, out)
	}
}
