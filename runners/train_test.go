package runners

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/datasets"
)

func TestConfigMetric(t *testing.T) {
	cases := []struct {
		tree map[string]any
		want string
		err  bool
	}{
		{map[string]any{}, "accuracy", false},
		{map[string]any{"evaluation": map[string]any{"metric": "bbox"}}, "bbox", false},
		{map[string]any{"evaluation": map[string]any{"metric": []any{"accuracy"}}}, "accuracy", false},
		{map[string]any{"evaluation": map[string]any{"metric": []any{}}}, "", true},
		{map[string]any{"evaluation": map[string]any{"metric": []any{"a", "b"}}}, "", true},
	}
	for _, tc := range cases {
		cfg, err := config.FromMap(tc.tree)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ConfigMetric(cfg)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%v: %q, %v", tc.tree, got, err)
		}
	}
}

// cocoTrainConfig is a config whose training set is a small COCO file of
// landscape and portrait images, some annotations of it bad; the image
// files exist unless missing names one.
func cocoTrainConfig(t *testing.T, spg int, missing string) *config.Config {
	t.Helper()
	root := t.TempDir()
	var images, anns []any
	for i := range 6 {
		w, h := 64, 48
		if i%2 == 1 {
			w, h = 48, 64
		}
		name := fmt.Sprintf("%d.jpg", i)
		images = append(images, map[string]any{"id": i + 1, "file_name": name, "width": w, "height": h})
		anns = append(anns, map[string]any{"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": []any{4, 4, 20, 20}, "area": 400, "iscrowd": 0})
		if name != missing {
			if err := os.WriteFile(filepath.Join(root, name), []byte("not decoded here"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	anns = append(anns, map[string]any{"id": 99, "image_id": 2, "category_id": 1, "bbox": []any{60, 4, -3, 20}, "area": 60, "iscrowd": 0})
	doc, _ := json.Marshal(map[string]any{"images": images, "annotations": anns, "categories": []any{map[string]any{"id": 1, "name": "thing"}}})
	annFile := filepath.Join(root, "instances.json")
	if err := os.WriteFile(annFile, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.FromMap(map[string]any{"data": map[string]any{
		"samples_per_gpu": spg,
		"train":           map[string]any{"type": "CocoDataset", "ann_file": annFile, "img_prefix": root},
		"val":             map[string]any{"type": "MNIST", "test_mode": true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestBuildLoaderGroupsDetectionTraining(t *testing.T) {
	for _, tc := range []struct {
		spg     int
		shuffle bool
		grouped bool
	}{{2, true, true}, {1, true, false}, {2, false, false}} {
		cfg := cocoTrainConfig(t, tc.spg, "")
		ds, err := BuildDataset(cfg, "train")
		if err != nil {
			t.Fatal(err)
		}
		l, err := BuildLoader(cfg, "train", ds, tc.shuffle, 3)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.Options().Groups; (got != nil) != tc.grouped {
			t.Fatalf("samples_per_gpu %d, shuffle %v: groups %v, want grouped %v", tc.spg, tc.shuffle, got, tc.grouped)
		}
		if !tc.grouped {
			continue
		}
		idx := l.Indices(0)
		for k := 0; k < len(idx); k += 2 {
			if idx[k]%2 != idx[k+1]%2 {
				t.Fatalf("batch %v mixes landscape (even) and portrait (odd) images", idx[k:k+2])
			}
		}
	}
	// A classification set has no flags: its loader is unchanged.
	cfg := cocoTrainConfig(t, 2, "")
	ds, err := BuildDataset(cfg, "val")
	if err != nil {
		t.Skipf("MNIST unavailable: %v", err)
	}
	l, err := BuildLoader(cfg, "train", ds, true, 3)
	if err != nil {
		t.Fatal(err)
	}
	if l.Options().Groups != nil {
		t.Fatal("a classification loader is grouped")
	}
}

func TestCheckTrainSet(t *testing.T) {
	var out bytes.Buffer
	log, err := NewLogger(t.TempDir(), time.Now(), &out)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cfg := cocoTrainConfig(t, 2, "")
	ds, err := BuildDataset(cfg, "train")
	if err != nil {
		t.Fatal(err)
	}
	if err := checkTrainSet(&datasets.Subset{Dataset: ds, Indices: []int{0, 1}}, log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "data.train: CocoDataset ann_file") || !strings.Contains(out.String(), "skipped 1 boxes") || !strings.Contains(out.String(), "image id 2 (1.jpg)") {
		t.Fatalf("log %q does not note the skipped box of image 2", out.String())
	}
	cfg = cocoTrainConfig(t, 2, "3.jpg")
	ds, err = BuildDataset(cfg, "train")
	if err != nil {
		t.Fatal(err)
	}
	err = checkTrainSet(ds, log)
	if err == nil || !strings.Contains(err.Error(), "data.train") || !strings.Contains(err.Error(), "3.jpg") {
		t.Fatalf("a missing image: %v", err)
	}
}
