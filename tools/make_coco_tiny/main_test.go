package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/runners"
)

func TestMakeCocoTiny(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if err := run([]string{"--out", out, "--train", "3", "--val", "2", "--seed", "5"}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	for _, p := range []string{"train2017/000000000003.jpg", "val2017/000000000002.jpg", "annotations/instances_train2017.json", "annotations/instances_val2017.json"} {
		if _, err := os.Stat(filepath.Join(out, p)); err != nil {
			t.Fatalf("missing %s: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "train2017/000000000004.jpg")); err == nil {
		t.Fatal("wrote more training images than asked")
	}
	if !strings.Contains(stdout.String(), "3 training and 2 validation images") {
		t.Fatalf("summary %q", stdout.String())
	}
}

// TestCOCOConfigRunsOnTinySet reads the generated set through mmdet's COCO
// data config, moved there by data_root alone, and draws training batches:
// 1333x800 resizing, padding to 32, batches of one aspect group.
func TestCOCOConfigRunsOnTinySet(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if err := run([]string{"--out", out, "--train", "6", "--val", "2", "--min-side", "64", "--max-side", "128"}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	cfg, err := config.Load("../../configs/_base_/datasets/mmdet/coco_detection.yaml", config.Options{
		Overrides: []string{"data_root=" + out + "/", "data.workers_per_gpu=0"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, split := range []string{"train", "val"} {
		ds, err := runners.BuildDataset(cfg, split)
		if err != nil {
			t.Fatalf("data.%s: %v", split, err)
		}
		if split == "val" {
			if ds.Len() != 2 {
				t.Fatalf("val has %d images", ds.Len())
			}
			continue
		}
		l, err := runners.BuildLoader(cfg, split, ds, true, 1)
		if err != nil {
			t.Fatal(err)
		}
		if l.Options().Groups == nil {
			t.Fatal("the COCO training loader does not group by aspect ratio")
		}
		n := 0
		for b, err := range l.Epoch(context.Background(), 0) {
			if err != nil {
				t.Fatal(err)
			}
			n++
			if b.Shape[0] != 2 || b.Shape[1] != 3 || b.Shape[2]%32 != 0 || b.Shape[3]%32 != 0 || max(b.Shape[2], b.Shape[3]) > 1344 || min(b.Shape[2], b.Shape[3]) > 800 {
				t.Fatalf("batch shape %v", b.Shape)
			}
			wide := func(m int) bool { return b.Metas[m].OriShape[1] > b.Metas[m].OriShape[0] }
			if wide(0) != wide(1) {
				t.Fatalf("batch %v mixes landscape and portrait: %v %v", b.Indices, b.Metas[0].OriShape, b.Metas[1].OriShape)
			}
			if len(b.GT) != 2 || len(b.GT[0].BBoxes) == 0 || len(b.GT[0].BBoxes) != len(b.GT[0].Labels) {
				t.Fatalf("batch GT %+v", b.GT)
			}
		}
		if n != l.Len() || n < 3 {
			t.Fatalf("%d batches, loader length %d", n, l.Len())
		}
	}
}

func TestMakeCocoTinyErrors(t *testing.T) {
	cases := []struct {
		args []string
		frag string
	}{
		{[]string{"--train", "1"}, "--out is required"},
		{[]string{"--out", t.TempDir(), "extra"}, "positional"},
		{[]string{"--out", t.TempDir(), "--min-side", "8"}, "min side 8"},
		{[]string{"--out", t.TempDir(), "--bogus"}, "bogus"},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		err := run(c.args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), c.frag) {
			t.Fatalf("%v: error %v, want it to mention %q", c.args, err, c.frag)
		}
	}
}
