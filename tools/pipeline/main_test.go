package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/razorgo/razor/datasets"
	"github.com/razorgo/razor/runners/pipeline"
	"github.com/razorgo/razor/tools/cli"
)

const sposPipeline = "../../configs/nas/spos/spos_pipeline_mnist.yaml"

// tinyMNIST writes the first nTrain training and nTest test digits of MNIST
// as a data_prefix folder.
func tinyMNIST(t *testing.T, nTrain, nTest int) string {
	t.Helper()
	src, err := datasets.MNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, split := range []struct {
		test         bool
		n            int
		images, lbls string
	}{{false, nTrain, "train-images-idx3-ubyte", "train-labels-idx1-ubyte"}, {true, nTest, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}} {
		d, err := datasets.ReadDigits(src, split.test)
		if err != nil {
			t.Fatal(err)
		}
		px := d.Rows * d.Cols
		if err := os.WriteFile(filepath.Join(dir, split.images), idx([]int{split.n, d.Rows, d.Cols}, d.Pixels[:split.n*px]), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, split.lbls), idx([]int{split.n}, d.Labels[:split.n]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// idx encodes unsigned bytes as an IDX file.
func idx(dims []int, data []uint8) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 0x08, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(data)
	return b.Bytes()
}

// smokeArgs shrink the shipped MNIST pipeline to seconds: a quarter-width
// network, 64 training and 40 test digits, 4 iterations per training, a
// 2-epoch search over 4 candidates scored on 32 held-out training digits,
// and 3 random subnets to compare with.
func smokeArgs(work, data string) []string {
	args := []string{sposPipeline, "--work-dir", work, "--cfg-options"}
	for _, kv := range []string{
		"algorithm.architecture.model.backbone.widen_factor=0.25", "data.samples_per_gpu=8",
		"data.train.data_prefix=" + data, "data.val.data_prefix=" + data, "data.test.data_prefix=" + data,
		"runner.max_iters=4", "evaluation.interval=4", "evaluation.recalibrate_batches=2", "checkpoint_config.interval=2", "log_config.interval=2",
	} {
		args = append(args, "cfg_options."+kv)
	}
	for _, kv := range []string{
		"candidate_pool_size=4", "candidate_top_k=2", "max_epoch=2", "num_mutation=2", "num_crossover=2",
		"recalibrate_batches=2", "eval_split.num=32", "random_baseline=3",
	} {
		args = append(args, "steps.1.cfg_options.searcher."+kv)
	}
	return args
}

// TestSPOSPipelineSmoke runs the shipped SPOS pipeline at toy scale: the
// retraining is killed half way, the pipeline run again resumes it without
// repeating the supernet or the search, and a third run only reports.
func TestSPOSPipelineSmoke(t *testing.T) {
	data := tinyMNIST(t, 64, 40)
	work := filepath.Join(t.TempDir(), "work")
	args := smokeArgs(work, data)

	// The first run's retraining stops after its iteration-2 checkpoint,
	// as a killed process would.
	tools := cli.PipelineTools()
	train := tools["train"]
	train.Run = func(ctx context.Context, a []string, stdout, stderr io.Writer) error {
		if !slices.Contains(a, filepath.Join(work, "retrain")) {
			return cli.Train(ctx, a, stdout, stderr)
		}
		if err := cli.Train(ctx, append(slices.Clone(a), "--cfg-options", "runner.max_iters=2"), stdout, stderr); err != nil {
			return err
		}
		return errors.New("killed")
	}
	tools["train"] = train
	var out bytes.Buffer
	err := cli.PipelineWith(context.Background(), args, tools, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "step 3 (retrain): train failed: killed") {
		t.Fatalf("first run: %v, want the retraining killed\n%s", err, out.String())
	}

	out.Reset()
	if err := cli.Pipeline(context.Background(), args, &out, &out); err != nil {
		t.Fatalf("second run: %v\n%s", err, out.String())
	}
	log := out.String()
	for _, want := range []string{
		"== supernet [1/4]: finished earlier", "== search [2/4]: finished earlier",
		"== retrain [3/4]: resuming the interrupted run", "resumed from " + filepath.Join(work, "retrain", "iter_2.json") + " at iteration 2",
		"== test [4/4]: test ",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("second run's output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Fatal(log)
	}

	var res pipeline.Results
	b, err := os.ReadFile(filepath.Join(work, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Tested) != 1 || len(res.Searched) != 1 {
		t.Fatalf("results hold %d tested and %d searched subnets, want 1 and 1", len(res.Tested), len(res.Searched))
	}
	tested, searched := res.Tested[0], res.Searched[0]
	best := filepath.Join(work, "search", "best_subnet.yaml")
	if tested.Subnet != best || searched.Subnet != best {
		t.Errorf("tested %s and searched %s, want both %s", tested.Subnet, searched.Subnet, best)
	}
	if tested.Checkpoint != filepath.Join(work, "retrain", "iter_4.json") {
		t.Errorf("tested checkpoint %s, want the end of the retraining", tested.Checkpoint)
	}
	// The table counts the searched subnet as the search's constraint did.
	if tested.FLOPs <= 0 || tested.FLOPs != searched.FLOPs || tested.Params != searched.Params {
		t.Errorf("tested subnet: %d FLOPs, %d params; the search counted %d and %d", tested.FLOPs, tested.Params, searched.FLOPs, searched.Params)
	}
	top1, top5 := tested.Metrics["accuracy_top-1"], tested.Metrics["accuracy_top-5"]
	if k := top1 * 40 / 100; math.Abs(k-math.Round(k)) > 1e-9 || top1 < 0 || top5 < top1 || top5 > 100 {
		t.Errorf("metrics %v: top-1 must count hits among 40 digits and top-5 must not be lower", tested.Metrics)
	}
	r := searched.Random
	if r == nil || r.Num != 3 || len(r.Scores) != 3 {
		t.Fatalf("random subnets %+v, want 3", r)
	}
	above := 0
	for _, s := range r.Scores {
		if s > searched.Score {
			above++
		}
	}
	if above != r.BetterThanBest || r.Min > r.Mean || r.Mean > r.Max {
		t.Errorf("random subnets %+v against the best score %v", r, searched.Score)
	}
	md, err := os.ReadFile(filepath.Join(work, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := fmt.Sprintf("| test | search/best_subnet.yaml | %.3f | %.3f | %.2f | %.2f | retrain/iter_4.json |", float64(tested.Params)/1e6, float64(tested.FLOPs)/1e6, top1, top5)
	searchRow := fmt.Sprintf("| search | search/best_subnet.yaml | %.3f | %.3f | %s | %.2f (accuracy_top-1) | 3 | %.2f ± %.2f | %.2f / %.2f | %d of 3 |",
		float64(searched.Params)/1e6, float64(searched.FLOPs)/1e6, searched.Constraints, searched.Score, r.Mean, r.Std, r.Min, r.Max, r.BetterThanBest)
	for _, want := range []string{row, searchRow} {
		if !strings.Contains(string(md), want) || !strings.Contains(log, want) {
			t.Errorf("results.md and the output lack the row %q:\n%s", want, md)
		}
	}
	// Pictures: each training step's curves and the search's plot, drawn
	// and linked.
	for _, want := range []string{"supernet/curves.png", "retrain/curves.png", "search/search_scores.png"} {
		if !strings.Contains(string(md), "("+want+")") {
			t.Errorf("results.md does not link %s:\n%s", want, md)
		}
		if st, err := os.Stat(filepath.Join(work, want)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", want, err)
		}
	}
	if searched.Constraints != "flops < 8.8e6" {
		t.Errorf("constraint %q, want the MNIST search config's", searched.Constraints)
	}

	out.Reset()
	if err := cli.Pipeline(context.Background(), args, &out, &out); err != nil {
		t.Fatalf("third run: %v\n%s", err, out.String())
	}
	if n := strings.Count(out.String(), "skipped"); n != 4 {
		t.Errorf("third run skipped %d steps, want all 4:\n%s", n, out.String())
	}
	again, _ := os.ReadFile(filepath.Join(work, "results.json"))
	if !bytes.Equal(again, b) {
		t.Errorf("a run that only reports changed results.json:\n%s\nwas\n%s", again, b)
	}
}
