//go:build openblas

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/razorgo/razor/datasets"
	"github.com/razorgo/razor/tools/cli"
)

// TestCOCOConfigTrains takes the path of a COCO user: the shipped DetNAS
// subnet detector config, unchanged but for data_root and the length of
// the run, trains two iterations of one image each on a COCO 2017 look-alike (JPEG images,
// the real 80 categories and ids, COCO's folder layout; made by
// tools/make_coco_tiny's generator) at the config's 1333x800 and full
// widths, then evaluates it with the bbox metric. Boxes of a detector two
// steps old are guesses; the test checks that every stage runs, the six
// losses are logged and finite, and the evaluation reports bbox_mAP. Only
// the OpenBLAS build runs it: a step at this size takes minutes in pure Go.
func TestCOCOConfigTrains(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the full-size COCO detector")
	}
	// As tools/train's main does: a soft memory limit keeps the garbage of
	// these large steps from doubling the heap.
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	cli.LimitMemory()
	root := t.TempDir()
	o := datasets.DefaultCocoTinyOptions()
	o.Train, o.Val, o.Seed = 2, 1, 5
	if err := datasets.GenerateCocoTiny(root, o); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	args := []string{"../../configs/nas/detnas/detnas_subnet_frcnn_shufflenetv2_fpn_1x_coco.yaml", "--work-dir", work, "--seed", "3",
		"--cfg-options", "data_root=" + root + "/", "runner.max_epochs=1", "log_config.interval=1", "data.workers_per_gpu=1",
		// One image a batch halves the step's memory (about 8 GB of live
		// tensors for two images at this size).
		"data.samples_per_gpu=1"}
	var out, errOut bytes.Buffer
	if err := cli.Train(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s\n%s", err, out.String(), errOut.String())
	}
	log := out.String()
	for _, want := range []string{"Epoch [1][1/2]", "Epoch [1][2/2]", "loss_rpn_cls: ", "loss_rpn_bbox: ", "loss_cls: ", "acc: ", "loss_bbox: ",
		"Epoch(val) [1][", "bbox_mAP: ", "bbox_AR_l@1000: ", "runs as BN"} {
		if !strings.Contains(log, want) {
			t.Fatalf("the log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "NaN") || strings.Contains(log, "Inf") {
		t.Fatalf("a logged value is not finite:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(work, "epoch_1.safetensors")); err != nil {
		t.Fatalf("no checkpoint after the epoch: %v", err)
	}
}
