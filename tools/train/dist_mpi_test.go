//go:build mpi && cgo

package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gorgonia.org/tensor"

	"github.com/razorgo/razor/internal/mpitest"
	"github.com/razorgo/razor/runners/checkpoint"
)

// dpArgs is the MNIST supernet at test scale with batch `batch` per process
// and the given norm layers everywhere, with eps 1. At test scale (a
// quarter of the width, a few 32x32 digits on a constant background) many
// channels have a batch variance near 0, and batch norm's 1/sqrt(var+1e-5)
// multiplies any rounding difference by up to 300 in each layer: one
// process run with GOMAXPROCS=1 and =2 (the same maths in another order)
// already differs by 1-3% in its third step's loss. eps 1 bounds that
// gain by 1, so a comparison at 1e-5 tests the distribution, not chaos.
func dpArgs(dir string, iters, batch int, norm string) []string {
	return []string{tinyConfig, "--work-dir", dir, "--seed", "7", "--no-validate",
		"--cfg-options", "algorithm.architecture.model.backbone.widen_factor=0.25", "data.samples_per_gpu=" + strconv.Itoa(batch),
		"data.workers_per_gpu=0", fmt.Sprintf("runner.max_iters=%d", iters), "checkpoint_config.interval=3",
		"checkpoint_config.max_keep_ckpts=-1", "log_config.interval=1", "norm_cfg.type=" + norm, "norm_cfg.eps=1"}
}

// mpiTrain runs the train command (this test binary as TestMain's child) in
// n ranks under mpirun.
func mpiTrain(n int, args []string) ([]byte, error) {
	cmd := mpitest.Command(n, "-x", "RAZOR_TRAIN_CHILD=1", os.Args[0])
	cmd.Args = append(cmd.Args, append(args, "--launcher", "mpi")...)
	return cmd.CombinedOutput()
}

// finalWeights reads the float32 tensors of dir's checkpoint name.
func finalWeights(t *testing.T, dir, name string) map[string]*tensor.Dense {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name+".safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	ts, _, err := checkpoint.ReadSafetensors(data)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// maxRelDiff is the largest |a-b| / max(|a|, |b|, floor) over two runs'
// logged losses (by iteration) and final weights.
func maxRelDiff(a, b []float64, floor float64) float64 {
	worst := 0.0
	for i := range a {
		d := math.Abs(a[i]-b[i]) / max(math.Abs(a[i]), math.Abs(b[i]), floor)
		worst = max(worst, d)
	}
	return worst
}

// TestDataParallelMatchesOneProcess: 2 ranks with batch B each train what
// one process with batch 2B trains -- the same samples per step (the
// distributed sampler deals one shuffled order), the same path (rank 0's,
// broadcast), gradients averaged -- when every norm layer is SyncBN: the
// losses of 20 iterations and the final weights agree to 1e-5. With plain
// BN each rank normalises by the statistics of its own B images, not of
// all 2B, so the same runs differ from the first step on.
func TestDataParallelMatchesOneProcess(t *testing.T) {
	const iters, batch = 20, 4
	for _, norm := range []string{"SyncBN", "BN"} {
		one, two := t.TempDir(), t.TempDir()
		if out, err := child(t, dpArgs(one, iters, 2*batch, norm)).CombinedOutput(); err != nil {
			t.Fatalf("%s, one process: %v\n%s", norm, err, out)
		}
		out, err := mpiTrain(2, dpArgs(two, iters, batch, norm))
		if err != nil {
			t.Fatalf("%s, 2 ranks: %v\n%s", norm, err, out)
		}
		if !strings.Contains(string(out), "2 ranks") || (norm == "SyncBN") != strings.Contains(string(out), "reduced over the 2 ranks") {
			t.Errorf("%s: the log does not say how the run is distributed:\n%s", norm, out)
		}
		l1, l2 := losses(t, one), losses(t, two)
		if len(l1) != iters || len(l2) != iters {
			t.Fatalf("%s: logged %d and %d iterations, want %d", norm, len(l1), len(l2), iters)
		}
		var a, b []float64
		for it := 1; it <= iters; it++ {
			a, b = append(a, l1[it]), append(b, l2[it])
		}
		// The JSON log rounds to 5 decimals: a loss near 2.3 carries a
		// relative error of up to 2e-6 from that alone.
		lossDiff := maxRelDiff(a, b, 1e-3)
		w1, w2 := finalWeights(t, one, "iter_20"), finalWeights(t, two, "iter_20")
		var x, y []float64
		for k, v := range w1 {
			if v.Dtype() != tensor.Float32 || !strings.Contains(k, "weight") {
				continue
			}
			u := w2[k]
			if u == nil {
				t.Fatalf("%s: %s missing from the 2-rank checkpoint", norm, k)
			}
			for i, f := range v.Float32s() {
				x, y = append(x, float64(f)), append(y, float64(u.Float32s()[i]))
			}
		}
		// Weights near zero compare on the scale of a typical weight.
		weightDiff := maxRelDiff(x, y, 1e-2)
		t.Logf("%s: largest relative difference, losses %.2g, weights %.2g", norm, lossDiff, weightDiff)
		if norm == "SyncBN" && (lossDiff > 1e-5 || weightDiff > 1e-6) {
			t.Errorf("SyncBN: 2 ranks x %d differ from 1 process x %d: losses by %.2g (want <= 1e-5), weights by %.2g (want <= 1e-6)", batch, 2*batch, lossDiff, weightDiff)
		}
		// With eps 1 the losses of the BN runs still agree to the log's 5
		// decimals; the weights after 20 steps show the difference (measured:
		// 4e-5 against 1.5e-9 with SyncBN).
		if norm == "BN" && weightDiff < 1e-5 {
			t.Errorf("BN: 2 ranks x %d match 1 process x %d to %.2g; each rank's BN normalises by its own %d images, which should show in the weights", batch, 2*batch, weightDiff, batch)
		}
	}
}

// TestKilledRankEndsTheJobAndResumes kills one rank of a 2-rank job with
// SIGKILL: mpirun ends the job and says which rank died; a restart with
// --auto-resume continues from rank 0's last checkpoint and ends with the
// losses of an uninterrupted 2-rank run.
func TestKilledRankEndsTheJobAndResumes(t *testing.T) {
	const iters = 15
	ref, dir := t.TempDir(), t.TempDir()
	if out, err := mpiTrain(2, dpArgs(ref, iters, 4, "SyncBN")); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}
	cmd := mpitest.Command(2, "-x", "RAZOR_TRAIN_CHILD=1", os.Args[0])
	cmd.Args = append(cmd.Args, append(dpArgs(dir, iters, 4, "SyncBN"), "--launcher", "mpi", "--auto-resume")...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(filepath.Join(dir, "iter_6.json")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no iter_6 checkpoint after 2 minutes:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	pid := rankPID(t, dir, 1)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if err == nil {
		t.Fatalf("the job ended cleanly after rank 1 was killed:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("iter_%d.json", iters))); err == nil {
		t.Fatalf("the job finished although rank 1 was killed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "rank 1") || !strings.Contains(out.String(), "signal 9") {
		t.Errorf("mpirun's message does not name the killed rank and its signal:\n%s", out.String())
	}
	again, err := mpiTrain(2, append(dpArgs(dir, iters, 4, "SyncBN"), "--auto-resume"))
	if err != nil {
		t.Fatalf("restart: %v\n%s", err, again)
	}
	if !strings.Contains(string(again), "resumed from") {
		t.Fatalf("the restart did not resume:\n%s", again)
	}
	want, got := losses(t, ref), losses(t, dir)
	for it := 7; it <= iters; it++ {
		if got[it] != want[it] {
			t.Errorf("iteration %d: loss %v after the kill and restart, %v uninterrupted", it, got[it], want[it])
		}
	}
}

// TestDistributedEvaluationMatchesOneProcess: under mpirun a supernet's
// evaluation spreads its subnets over the ranks (rank r scores subnets r,
// r+N, ...), and a single model's evaluation spreads the data (each rank
// predicts its shard; 3 ranks over the 10000 test digits exercise the
// sampler's repeated samples, which must count once); both log what one
// process logs.
func TestDistributedEvaluationMatchesOneProcess(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config string
		ranks  int
		extra  []string
	}{
		{"supernet, 3 subnets", tinyConfig, 2, []string{"evaluation.num_subnets=3", "evaluation.bn_mode=recalibrate", "evaluation.recalibrate_batches=2"}},
		{"fixed subnet", "../../configs/nas/spos/spos_subnet_shufflenetv2_mnist.yaml", 3, nil},
	} {
		one, two := t.TempDir(), t.TempDir()
		evalArgs := func(dir string, batch int) []string {
			a := dpArgs(dir, 4, batch, "SyncBN")[1:]
			a = slices.DeleteFunc(a, func(s string) bool { return s == "--no-validate" })
			return append([]string{tc.config}, append(append(a, "evaluation.interval=4"), tc.extra...)...)
		}
		if out, err := child(t, evalArgs(one, 2*tc.ranks)).CombinedOutput(); err != nil {
			t.Fatalf("%s, one process: %v\n%s", tc.name, err, out)
		}
		if out, err := mpiTrain(tc.ranks, evalArgs(two, 2)); err != nil {
			t.Fatalf("%s, %d ranks: %v\n%s", tc.name, tc.ranks, err, out)
		}
		a, b := valRecord(t, one), valRecord(t, two)
		if len(a) < 3 {
			t.Fatalf("%s: one process logged no evaluation: %v", tc.name, a)
		}
		for k, v := range a {
			if math.Abs(v-b[k]) > 1e-4 {
				t.Errorf("%s: %s: %v in one process, %v in %d ranks", tc.name, k, v, b[k], tc.ranks)
			}
		}
		t.Logf("%s: %v", tc.name, b)
	}
}

// valRecord is the last validation record of dir's JSON log.
func valRecord(t *testing.T, dir string) map[string]float64 {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.log.json"))
	var last map[string]float64
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if !strings.Contains(line, `"mode": "val"`) {
				continue
			}
			rec := map[string]any{}
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatal(err)
			}
			last = map[string]float64{}
			for k, v := range rec {
				if f, ok := v.(float64); ok && k != "lr" {
					last[k] = f
				}
			}
		}
	}
	return last
}

// rankPID finds the process of rank r of the job training into dir.
func rankPID(t *testing.T, dir string, r int) int {
	t.Helper()
	return mpitest.RankPID(t, r, func(cmdline, _ string) bool {
		return strings.Contains(cmdline, dir) && strings.Contains(cmdline, "--launcher")
	})
}

// TestRankErrorEndsTheJob: a rank that fails prints its error and aborts
// the job, instead of finalizing while the other ranks wait for it.
func TestRankErrorEndsTheJob(t *testing.T) {
	start := time.Now()
	args := append(dpArgs(t.TempDir(), 4, 4, "BN"), "algorithm.architecture.model.backbone.widen_factor=-1")
	out, err := mpiTrain(2, args)
	if err == nil {
		t.Fatalf("the job succeeded with a bad config:\n%s", out)
	}
	if !strings.Contains(string(out), "of 2: config") || !strings.Contains(string(out), "widen_factor -1 must be positive") {
		t.Errorf("the error does not name the rank and the problem:\n%s", out)
	}
	t.Logf("ended in %v", time.Since(start).Round(time.Millisecond))
}
