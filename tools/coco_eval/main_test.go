package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var basicSet = filepath.Join("..", "..", "datasets", "metrics", "testdata", "coco", "basic")

// expected reads the pycocotools output recorded for the basic set.
func expected(t *testing.T) (stats [12]float64, summary string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(basicSet, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var exp struct {
		Stats   [12]float64 `json:"stats"`
		Summary string      `json:"summary"`
	}
	if err := json.Unmarshal(raw, &exp); err != nil {
		t.Fatal(err)
	}
	return exp.Stats, exp.Summary
}

func TestPrintsPycocotoolsSummary(t *testing.T) {
	_, want := expected(t)
	var stdout, stderr bytes.Buffer
	code := run([]string{filepath.Join(basicSet, "gt.json"), filepath.Join(basicSet, "results.json")}, &stdout, &stderr)
	if code != 0 || stderr.Len() != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	if stdout.String() != want {
		t.Errorf("stdout:\n%s\nwant pycocotools' lines:\n%s", stdout.String(), want)
	}
}

func TestPrintsJSONStats(t *testing.T) {
	stats, _ := expected(t)
	var stdout, stderr bytes.Buffer
	code := run([]string{"--json", filepath.Join(basicSet, "gt.json"), filepath.Join(basicSet, "results.json")}, &stdout, &stderr)
	if code != 0 || stderr.Len() != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	var got map[string]float64
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("stdout %q is not a JSON object of numbers: %v", stdout.String(), err)
	}
	names := []string{"bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_s", "bbox_mAP_m", "bbox_mAP_l",
		"bbox_AR@1", "bbox_AR@10", "bbox_AR@100", "bbox_AR_s@100", "bbox_AR_m@100", "bbox_AR_l@100"}
	if len(got) != len(names) {
		t.Errorf("got %d keys, want %d: %v", len(got), len(names), got)
	}
	for i, name := range names {
		if v, ok := got[name]; !ok || v != stats[i] {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, stats[i])
		}
	}
	if !strings.HasPrefix(stdout.String(), `{"bbox_mAP":`) {
		t.Errorf("keys are not in pycocotools' order: %s", stdout.String())
	}
}

func TestBadInputGivesOneErrorLine(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	gt := filepath.Join(basicSet, "gt.json")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"one file", []string{gt}, "got 1 file arguments, want 2"},
		{"unknown flag", []string{"--bogus", gt, gt}, "unknown flag: --bogus"},
		{"missing ground truth", []string{filepath.Join(dir, "none.json"), gt}, "none.json"},
		{"malformed ground truth", []string{write("broken.json", `{"images": [`), gt}, "malformed JSON"},
		{"results swapped with ground truth", []string{filepath.Join(basicSet, "results.json"), gt}, "must be an object"},
		{"unknown image in results", []string{gt, write("res.json", `[{"image_id":999,"category_id":1,"bbox":[0,0,1,1],"score":1}]`)}, "image_id 999 is not an image"},
		{"bbox of three numbers", []string{gt, write("res3.json", `[{"image_id":10,"category_id":1,"bbox":[0,0,1],"score":1}]`)}, "bbox of 3 numbers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
			msg := stderr.String()
			if strings.Count(msg, "\n") != 1 || !strings.HasSuffix(msg, "\n") || !strings.HasPrefix(msg, "coco_eval: ") || !strings.Contains(msg, tc.want) {
				t.Errorf("stderr %q, want one line starting with coco_eval: and containing %q", msg, tc.want)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "usage: coco_eval") {
		t.Errorf("exit %d, stdout %q; want 0 and the usage", code, stdout.String())
	}
}
