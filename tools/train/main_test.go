package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary act as the train command in a child
// process, so a test can SIGKILL a real training run.
func TestMain(m *testing.M) {
	if os.Getenv("RAZOR_TRAIN_CHILD") == "1" {
		if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "train:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const tinyConfig = "../../configs/nas/spos/spos_supernet_shufflenetv2_mnist.yaml"

// tinyArgs shrink the MNIST supernet run to seconds: a narrow network,
// small batches, a checkpoint every 3 iterations and a log line each.
func tinyArgs(workDir string, iters int) []string {
	return []string{tinyConfig, "--work-dir", workDir, "--seed", "7", "--deterministic", "--no-validate",
		"--cfg-options", "algorithm.architecture.model.backbone.widen_factor=0.25", "data.samples_per_gpu=8",
		fmt.Sprintf("runner.max_iters=%d", iters), "checkpoint_config.interval=3", "checkpoint_config.max_keep_ckpts=-1",
		"log_config.interval=1"}
}

func child(t *testing.T, args []string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "RAZOR_TRAIN_CHILD=1")
	return cmd
}

// losses reads every training record of the JSON logs in dir, by
// iteration; a resumed run's record replaces the killed run's.
func losses(t *testing.T, dir string) map[int]float64 {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.log.json"))
	out := map[int]float64{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			var rec struct {
				Mode string   `json:"mode"`
				Iter int      `json:"iter"`
				Loss *float64 `json:"loss"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Mode != "train" || rec.Loss == nil {
				continue
			}
			out[rec.Iter] = *rec.Loss
		}
	}
	return out
}

// TestKilledRunResumesExactly kills a real training process with SIGKILL
// twice at moments it does not choose, resumes each time with
// --auto-resume, and checks that the final weights and every logged loss
// equal those of an uninterrupted run with the same seed.
func TestKilledRunResumesExactly(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a small network three times")
	}
	const iters = 24
	ref := t.TempDir()
	if out, err := child(t, tinyArgs(ref, iters)).CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}
	want := losses(t, ref)
	if len(want) != iters {
		t.Fatalf("uninterrupted run logged %d iterations, want %d", len(want), iters)
	}

	dir := t.TempDir()
	for _, killAfter := range []string{"iter_3.json", "iter_6.json"} {
		cmd := child(t, append(tinyArgs(dir, iters), "--auto-resume"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for {
			if _, err := os.Stat(filepath.Join(dir, killAfter)); err == nil {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("no %s within two minutes", killAfter)
			}
			time.Sleep(20 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("iter_%d.json", iters))); err == nil {
			t.Fatalf("the run finished before the kill after %s; the test interrupted nothing", killAfter)
		}
	}
	out, err := child(t, append(tinyArgs(dir, iters), "--auto-resume")).CombinedOutput()
	if err != nil {
		t.Fatalf("final resumed run: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "resumed from") {
		t.Fatalf("the last run did not resume:\n%s", out)
	}
	got := losses(t, dir)
	for it := 1; it <= iters; it++ {
		if got[it] != want[it] {
			t.Errorf("iteration %d: loss %v after kills and resumes, %v uninterrupted", it, got[it], want[it])
		}
	}
	a, err := os.ReadFile(filepath.Join(ref, fmt.Sprintf("iter_%d.safetensors", iters)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("iter_%d.safetensors", iters)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("final weights differ from the uninterrupted run's")
	}
}

func TestTrainErrors(t *testing.T) {
	cases := []struct {
		args []string
		frag string
	}{
		{[]string{}, "expected one CONFIG file"},
		{[]string{tinyConfig, "--launcher", "slurm"}, `--launcher "slurm"`},
		{[]string{"nothere.yaml"}, "does not exist"},
		{[]string{tinyConfig, "--cfg-options", "runner.type=FooRunner"}, `runner.type "FooRunner" is not supported`},
		{[]string{tinyConfig, "--cfg-options", "optimizer.type=Adam"}, `optimizer.type "Adam" is not supported`},
		{[]string{tinyConfig, "--cfg-options", "lr_config.policy=OneCycle"}, `policy "OneCycle" is not supported`},
		{[]string{tinyConfig, "--cfg-options", "algorithm.architecture.model.backbone.widen=2"}, `unknown key "widen"`},
	}
	for _, tc := range cases {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append(tc.args, "--work-dir", t.TempDir()), &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc.frag) {
			t.Errorf("%q: error %v, want %q", tc.args, err, tc.frag)
		}
	}
}
