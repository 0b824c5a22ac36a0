package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/razorgo/razor/internal/worklock"

	"github.com/razorgo/razor/datasets"
	"github.com/razorgo/razor/tools/cli"
)

const detConfig = "../../configs/nas/detnas/detnas_subnet_frcnn_shufflenetv2_fpn_mnistdet.yaml"

// digitDetSet writes a small detection set of digits (train and val
// splits, 96x96 canvases) and returns its folder, with a trailing slash as
// data_root values have.
func digitDetSet(t *testing.T, train, val int) string {
	t.Helper()
	root := t.TempDir()
	mnist, err := datasets.MNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := datasets.ReadDigits(mnist, true)
	if err != nil {
		t.Fatal(err)
	}
	te, err := datasets.ReadDigits(mnist, false)
	if err != nil {
		t.Fatal(err)
	}
	o := datasets.MNISTDetOptions{Train: train, Val: val, Size: 96, Seed: 3, MaxDigits: 3, MaxFragments: 1, Workers: 1}
	if err := datasets.GenerateMNISTDet(root, tr, te, o); err != nil {
		t.Fatal(err)
	}
	return root + "/"
}

// detArgs train the shipped digits detector on the set at root at 96x96,
// narrowed further so a step takes a fraction of a second: batches of 2,
// a log line per iteration, a checkpoint per epoch.
func detArgs(root, workDir string, epochs int) []string {
	return []string{detConfig, "--work-dir", workDir, "--seed", "11", "--deterministic",
		"--cfg-options", "data_root=" + root, "img_scale=[96,96]", "data.samples_per_gpu=2", "data.workers_per_gpu=1",
		"algorithm.architecture.model.backbone.widen_factor=0.25",
		"algorithm.architecture.model.neck.in_channels=[16,40,80,160]",
		"algorithm.architecture.model.neck.out_channels=16",
		"algorithm.architecture.model.rpn_head.in_channels=16", "algorithm.architecture.model.rpn_head.feat_channels=16",
		"algorithm.architecture.model.roi_head.bbox_roi_extractor.out_channels=16",
		"algorithm.architecture.model.roi_head.bbox_head.in_channels=16",
		"algorithm.architecture.model.roi_head.bbox_head.conv_out_channels=16",
		"algorithm.architecture.model.roi_head.bbox_head.fc_out_channels=32",
		"lr_config.warmup_iters=4", "lr_config.step=[2]",
		fmt.Sprintf("runner.max_epochs=%d", epochs), "checkpoint_config.interval=1", "checkpoint_config.max_keep_ckpts=-1",
		"log_config.interval=1"}
}

// detRecord is one training line of a detection run's JSON log.
type detRecord struct {
	Epoch, Iter int
	Values      map[string]float64
}

// detLosses reads every training record of the JSON logs in dir by
// (epoch, iteration in the epoch), as mmcv's EpochBasedRunner logs them; a
// resumed run's record replaces the killed run's.
func detLosses(t *testing.T, dir string) map[[2]int]map[string]float64 {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.log.json"))
	out := map[[2]int]map[string]float64{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) != nil || rec["mode"] != "train" {
				continue
			}
			vals := map[string]float64{}
			for _, k := range []string{"loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "acc", "loss_bbox", "loss", "lr"} {
				v, ok := rec[k].(float64)
				if !ok {
					t.Fatalf("%s: training record without %s: %s", f, k, sc.Text())
				}
				vals[k] = v
			}
			ep, _ := rec["epoch"].(float64)
			it, _ := rec["iter"].(float64)
			out[[2]int{int(ep), int(it)}] = vals
		}
	}
	return out
}

// TestDetectorKilledRunResumesExactly trains the digits detector by epochs,
// SIGKILLs the process after its first and second epoch checkpoints,
// resumes with --auto-resume, and checks that every logged loss (the RPN's
// and the RoI head's, whose anchors and proposals are sampled from the
// iteration's seed) and the final weights equal an uninterrupted run's.
func TestDetectorKilledRunResumesExactly(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a small detector three times")
	}
	root := digitDetSet(t, 8, 2)
	const epochs = 3
	ref := t.TempDir()
	if out, err := child(t, append(detArgs(root, ref, epochs), "--no-validate")).CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}
	want := detLosses(t, ref)
	if len(want) != epochs*4 {
		t.Fatalf("uninterrupted run logged %d iterations, want %d", len(want), epochs*4)
	}

	dir := t.TempDir()
	out := killAndResume(t, append(detArgs(root, dir, epochs), "--no-validate", "--auto-resume"), dir,
		[]string{"epoch_1.json", "epoch_2.json"}, fmt.Sprintf("epoch_%d.json", epochs))
	m := regexp.MustCompile(`at iteration (\d+), epoch (\d+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("the last run did not resume:\n%s", out)
	}
	from, _ := strconv.Atoi(m[2])
	if from < 2 || from >= epochs {
		t.Fatalf("final run resumed at epoch %d, want 2..%d:\n%s", from, epochs-1, out)
	}
	got := detLosses(t, dir)
	for key, w := range want {
		g, ok := got[key]
		if !ok && key[0] <= from {
			continue // a kill can take the log lines after the last checkpoint
		}
		if !ok {
			t.Errorf("epoch %d iteration %d: not logged after the resume", key[0], key[1])
			continue
		}
		for k, v := range w {
			if g[k] != v {
				t.Errorf("epoch %d iteration %d: %s %v after kills and resumes, %v uninterrupted", key[0], key[1], k, g[k], v)
			}
		}
	}
	a, err := os.ReadFile(filepath.Join(ref, fmt.Sprintf("epoch_%d.safetensors", epochs)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("epoch_%d.safetensors", epochs)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("final weights differ from the uninterrupted run's")
	}
}

// TestDetectorTrainsAndEvaluates runs the digits detector's recipe as a
// user does (validation each epoch, save_best: bbox_mAP) and checks the
// mmdet log format: Epoch [e][i/n] lines with the six loss names, bbox
// metric records in the JSON log, one best checkpoint.
func TestDetectorTrainsAndEvaluates(t *testing.T) {
	root := digitDetSet(t, 4, 2)
	work := t.TempDir()
	var out, errOut bytes.Buffer
	if err := cli.Train(context.Background(), detArgs(root, work, 2), &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	log := out.String()
	for _, want := range []string{"Epoch [1][1/2]\tlr: ", "loss_rpn_cls: ", "loss_rpn_bbox: ", "loss_cls: ", "acc: ", "loss_bbox: ", "loss: ",
		"Epoch(val) [2][", "bbox_mAP: ", "bbox_mAP_50: ", "bbox_mAP_l: ", "Now best checkpoint is saved as"} {
		if !strings.Contains(log, want) {
			t.Fatalf("the log lacks %q:\n%s", want, log)
		}
	}
	bests, _ := filepath.Glob(filepath.Join(work, "best_bbox_mAP_epoch_*.json"))
	if len(bests) != 1 {
		t.Fatalf("best checkpoints %v, want exactly one", bests)
	}
}

// TestDetectorDataErrors: a set that is not there says how to make it; a
// head with COCO's 80 classes on the digits is refused before training; an
// image that does not decode stops the run with its name, leaving the work
// dir with whole files only.
func TestDetectorDataErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	missing := filepath.Join(t.TempDir(), "nothere") + "/"
	err := cli.Train(context.Background(), detArgs(missing, t.TempDir(), 1), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "go run ./tools/make_mnist_det --out "+filepath.Clean(missing)) {
		t.Fatalf("missing set: %v", err)
	}

	root := digitDetSet(t, 4, 2)
	args := append(detArgs(root, t.TempDir(), 1), "algorithm.architecture.model.roi_head.bbox_head.num_classes=80")
	err = cli.Train(context.Background(), args, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "roi_head.bbox_head.num_classes is 80 but data.train has 10 classes") {
		t.Fatalf("80 classes on the digits: %v", err)
	}

	files, _ := filepath.Glob(filepath.Join(root, datasets.MNISTDetLayout.TrainImages, "*.png"))
	if len(files) == 0 {
		t.Fatal("no training images")
	}
	if err := os.WriteFile(files[1], []byte("\x89PNG\r\n\x1a\nnot really"), 0o644); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	err = cli.Train(context.Background(), append(detArgs(root, work, 2), "--no-validate"), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), filepath.Base(files[1])) {
		t.Fatalf("undecodable image: %v", err)
	}
	entries, _ := os.ReadDir(work)
	for _, e := range entries {
		// The work dir's lock file stays, naming its last holder.
		if e.Name() != worklock.File && (strings.HasPrefix(e.Name(), ".") || strings.Contains(e.Name(), ".tmp")) {
			t.Errorf("work dir keeps a partial file %s", e.Name())
		}
	}
}
