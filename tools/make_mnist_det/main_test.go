package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/razorgo/razor/tools/cli"
)

func TestMakeMNISTDet(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if err := cli.MakeMNISTDet(context.Background(), []string{"--out", out, "--train", "3", "--val", "2", "--search", "1", "--size", "64", "--seed", "5"}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	for _, p := range []string{"train/000003.png", "train/000004.png", "val/000002.png", "annotations/instances_train.json", "annotations/instances_val.json", "annotations/instances_search.json"} {
		if _, err := os.Stat(filepath.Join(out, p)); err != nil {
			t.Fatalf("missing %s: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "train/000005.png")); err == nil {
		t.Fatal("wrote more training and search images than asked")
	}
	if !strings.Contains(stdout.String(), "3 training, 2 validation and 1 held-out search images of 64x64") {
		t.Fatalf("summary %q", stdout.String())
	}
}

func TestMakeMNISTDetErrors(t *testing.T) {
	cases := []struct {
		args []string
		frag string
	}{
		{[]string{"--train", "1"}, "--out is required"},
		{[]string{"--out", t.TempDir(), "extra"}, "positional"},
		{[]string{"--out", t.TempDir(), "--size", "8"}, "size 8"},
		{[]string{"--out", t.TempDir(), "--mnist", t.TempDir()}, "train-images-idx3-ubyte"},
		{[]string{"--out", t.TempDir(), "--bogus"}, "bogus"},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		err := cli.MakeMNISTDet(context.Background(), c.args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), c.frag) {
			t.Fatalf("%v: error %v, want it to mention %q", c.args, err, c.frag)
		}
	}
}

// The search split alone reads the training digits it is made from.
func TestMakeMNISTDetSearchOnly(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if err := cli.MakeMNISTDet(context.Background(), []string{"--out", out, "--train", "0", "--val", "0", "--search", "1", "--size", "64"}, &stdout, &stderr); err != nil {
		t.Fatalf("--train 0 --search 1: %v\n%s", err, stderr.String())
	}
	// With no training split the held-out images are numbered from 1.
	for _, p := range []string{"annotations/instances_search.json", "train/000001.png"} {
		if _, err := os.Stat(filepath.Join(out, p)); err != nil {
			t.Fatal(err)
		}
	}
}
