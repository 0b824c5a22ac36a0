package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/razorgo/razor/tools/cli"
)

// TestMain lets the test binary act as the train command in a child
// process, so a test can SIGKILL a real training run.
func TestMain(m *testing.M) {
	if os.Getenv("RAZOR_TRAIN_CHILD") == "1" {
		if err := cli.Train(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
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
	out := killAndResume(t, append(tinyArgs(dir, iters), "--auto-resume"), dir, []string{"iter_3.json", "iter_6.json"}, fmt.Sprintf("iter_%d.json", iters))
	if !strings.Contains(string(out), "resumed from") {
		t.Fatalf("the last run did not resume:\n%s", out)
	}
	// A kill between a checkpoint and the log line after it loses that
	// line, so iterations before the final resume point may be missing;
	// every logged one must match, and everything after it must be there.
	var from int
	if m := regexp.MustCompile(`at iteration (\d+),`).FindStringSubmatch(string(out)); m != nil {
		from, _ = strconv.Atoi(m[1])
	}
	if from < 6 || from >= iters {
		t.Fatalf("final run resumed at iteration %d, want 6..%d:\n%s", from, iters-1, out)
	}
	got := losses(t, dir)
	for it := 1; it <= iters; it++ {
		v, ok := got[it]
		if !ok && it <= from {
			continue
		}
		if !ok || v != want[it] {
			t.Errorf("iteration %d: loss %v (logged %v) after kills and resumes, %v uninterrupted", it, v, ok, want[it])
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

// killAndResume starts the training run args (which writes to dir and
// resumes with --auto-resume) once per file of killAfter, SIGKILLs it as
// soon as that file exists, checks that the run had not reached final,
// then runs it to the end and returns that last run's output.
func killAndResume(t *testing.T, args []string, dir string, killAfter []string, final string) []byte {
	t.Helper()
	for _, marker := range killAfter {
		cmd := child(t, args)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for {
			if _, err := os.Stat(filepath.Join(dir, marker)); err == nil {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("no %s within two minutes", marker)
			}
			time.Sleep(10 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if _, err := os.Stat(filepath.Join(dir, final)); err == nil {
			t.Fatalf("the run finished before the kill after %s; the test interrupted nothing", marker)
		}
	}
	out, err := child(t, args).CombinedOutput()
	if err != nil {
		t.Fatalf("final resumed run: %v\n%s", err, out)
	}
	return out
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
		err := cli.Train(context.Background(), append(tc.args, "--work-dir", t.TempDir()), &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc.frag) {
			t.Errorf("%q: error %v, want %q", tc.args, err, tc.frag)
		}
	}
}

// TestValidationAndSaveBest trains a few iterations with evaluation on a
// small image list: the supernet is scored over fixed subnets (mean and
// spread in the JSON log), and save_best keeps exactly one best checkpoint.
func TestValidationAndSaveBest(t *testing.T) {
	dir := t.TempDir()
	var list strings.Builder
	for i := 0; i < 6; i++ {
		img := image.NewGray(image.Rect(0, 0, 28, 28))
		for p := range img.Pix {
			img.Pix[p] = uint8((i*37 + p*11) % 256)
		}
		name := fmt.Sprintf("v%d.png", i)
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		png.Encode(f, img)
		f.Close()
		fmt.Fprintf(&list, "%s %d\n", name, i)
	}
	os.WriteFile(filepath.Join(dir, "val.txt"), []byte(list.String()), 0o644)
	base, _ := filepath.Abs(tinyConfig)
	cfg := filepath.Join(dir, "cfg.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`_base_: %s
data:
  val:
    _delete_: true
    type: ImageNet
    data_prefix: %s
    ann_file: %s
    pipeline:
      - {type: LoadImageFromFile, color_type: grayscale}
      - {type: Resize, size: [32, 32]}
      - {type: GrayToColor}
      - {type: Normalize, mean: [33.3, 33.3, 33.3], std: [78.6, 78.6, 78.6], to_rgb: false}
      - {type: ImageToTensor, keys: [img]}
      - {type: ToTensor, keys: [gt_label]}
      - {type: Collect, keys: [img, gt_label]}
evaluation:
  interval: 2
  num_subnets: 3
  save_best: auto
`, base, dir, filepath.Join(dir, "val.txt"))), 0o644)
	work := filepath.Join(dir, "work")
	args := tinyArgs(work, 4)
	args[0] = cfg
	var out, errOut bytes.Buffer
	var kept []string
	for i, a := range args {
		if a != "--no-validate" {
			kept = append(kept, args[i])
		}
	}
	if err := cli.Train(context.Background(), kept, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "Iter(val) [2]\taccuracy_top-1: ") || !strings.Contains(out.String(), "accuracy_top-1_std: ") || !strings.Contains(out.String(), "num_subnets: 3.0000") {
		t.Fatalf("no supernet evaluation in the log:\n%s", out.String())
	}
	bests, _ := filepath.Glob(filepath.Join(work, "best_accuracy_top_1_iter_*.json"))
	if len(bests) != 1 {
		t.Fatalf("best checkpoints %v, want exactly one", bests)
	}
	vals := 0
	files, _ := filepath.Glob(filepath.Join(work, "*.log.json"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		vals += strings.Count(string(data), `"mode": "val"`)
	}
	if vals != 2 {
		t.Fatalf("%d val records in the JSON log, want 2 (iterations 2 and 4)", vals)
	}

	// The checkpoint of iteration 4 is saved before its evaluation runs,
	// as in mmcv; a run killed between the two resumes there with nothing
	// left to train, and must still run the evaluation it owes.
	out.Reset()
	if err := cli.Train(context.Background(), append(kept, "--auto-resume"), &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	for _, want := range []string{"resumed from " + filepath.Join(work, "iter_4.json") + " at iteration 4", "running the evaluation after iteration 4, which the interrupted run did not finish", "Iter(val) [4]\taccuracy_top-1: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the resumed run's log lacks %q:\n%s", want, out.String())
		}
	}
}

// TestSyncBNSaysSoOnce trains with norm_cfg SyncBN, which reaches every
// layer of the supernet: the run works as BN and the log says so once.
func TestSyncBNSaysSoOnce(t *testing.T) {
	var out, errOut bytes.Buffer
	args := append(tinyArgs(t.TempDir(), 1), "--cfg-options", "norm_cfg.type=SyncBN")
	if err := cli.Train(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	if n := strings.Count(out.String(), "runs as BN"); n != 1 {
		t.Fatalf("the SyncBN note appears %d times, want once:\n%s", n, out.String())
	}
}

// TestSecondRunInTheSameWorkDir: while one run trains in a work dir, a
// second run there stops at once, naming the first one's process; once
// the first has been killed, the second resumes at once (no stale lock).
func TestSecondRunInTheSameWorkDir(t *testing.T) {
	dir := t.TempDir()
	args := append(tinyArgs(dir, 100000), "--auto-resume")
	first := child(t, args)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	for i := 0; ; i++ {
		if b, _ := os.ReadFile(filepath.Join(dir, ".lock")); strings.Contains(string(b), fmt.Sprintf("process %d", first.Process.Pid)) {
			break
		}
		if i == 600 {
			t.Fatal("the first run did not take the work dir within a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var out, errOut bytes.Buffer
	err := cli.Train(context.Background(), args, &out, &errOut)
	want := fmt.Sprintf("%s is used by another run (train, process %d, since ", dir, first.Process.Pid)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("second run: %v, want %q", err, want)
	}
	first.Process.Kill()
	first.Wait()
	short := append(tinyArgs(dir, 2), "--auto-resume")
	if err := cli.Train(context.Background(), short, &out, &errOut); err != nil {
		t.Fatalf("after the first run was killed: %v\n%s", err, errOut.String())
	}
}
